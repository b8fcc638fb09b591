"""The candidates an LLM picks from on a guided trial, when it does not write numbers itself.

A 270M model asked for a point writes back a configuration of its history (measured in
docs/llm.md); asked to pick one of a few labelled configurations, it answers with one letter
that its grammar makes valid. The candidates are whole, new configurations: the optimizer's
own proposal, and the points of highest GP upper confidence bound inside the region around
the best trials (HOLLM's "propose inside the chosen region", with the acquisition choosing
the region's candidates as LLINBO's gate would). Which label each gets is shuffled per trial,
so a model that always answers "A" picks the optimizer's point only a fair share of the time.

Example:
    >>> import numpy as np, optuna
    >>> from optuna_llm.samplers._partition import UnitSpace
    >>> unit = UnitSpace({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
    >>> points = box_candidates(unit, np.array([0.2]), np.array([0.4]), None, 3,
    ...                         np.random.default_rng(0), taken=lambda p: False)
    >>> len(points), all(0.2 <= p.params["x"] <= 0.4 for p in points)
    (3, True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optuna_llm.samplers._gp_model import GPModel
from optuna_llm.samplers._partition import UnitSpace

_POOL = 512  # points scored in the region per trial (half uniform, half around the best)
_MIN_GAP = 0.05  # smallest distance between two candidates, in the unit cube per sqrt(dim)


@dataclass(frozen=True)
class Candidate:
    """One configuration offered to the LLM, where it came from, and the GP's prediction
    (in the study's own direction and units; None before the GP can be fitted)."""

    params: dict[str, Any]
    origin: str
    predicted: float | None = None
    predicted_std: float | None = None


def box_candidates(
    unit: UnitSpace,
    low: np.ndarray,
    high: np.ndarray,
    model: GPModel | None,
    n: int,
    rng: np.random.Generator,
    *,
    taken: Callable[[Mapping[str, Any]], bool],
    centre: np.ndarray | None = None,
    beta: float = 2.0,
    sign: float = 1.0,
) -> list[Candidate]:
    """Up to ``n`` distinct configurations inside the unit-cube box ``[low, high]`` that
    ``taken`` does not refuse: with a GP ``model`` (maximising convention), those of highest
    ``mu + beta * sigma`` among a pool drawn uniformly in the box and around ``centre`` (the
    best trial), kept at least ``_MIN_GAP * sqrt(dim)`` apart; without one, the first draws
    of the pool. ``sign`` turns the model's maximising prediction into the study's (``-1``
    for a minimised objective).
    """
    dim = unit.dim
    pool = rng.uniform(low, high, size=(_POOL, dim))
    if centre is not None:
        local = centre + rng.normal(0.0, 0.1, size=(_POOL // 2, dim)) * np.maximum(high - low, 1e-3)
        pool[: _POOL // 2] = np.clip(local, low, high)
    snapped = np.array([unit.snap(u) for u in pool])
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None
    order = np.arange(_POOL)
    if model is not None:
        mu, sigma = model.predict(snapped)
        order = np.argsort(-(mu + beta * sigma), kind="stable")
    gap = _MIN_GAP * np.sqrt(dim)
    chosen: list[Candidate] = []
    kept: list[np.ndarray] = []
    seen: set[str] = set()
    for i in order:
        if len(chosen) == n:
            break
        params = unit.to_params(pool[i])
        key = repr(sorted(params.items()))
        if key in seen or taken(params):
            continue
        if any(np.linalg.norm(pool[i] - k) < gap for k in kept):
            continue
        seen.add(key)
        kept.append(pool[i])
        chosen.append(
            Candidate(
                params,
                "gp-ucb" if model is not None else "random-in-region",
                None if mu is None else float(sign * mu[i]),
                None if sigma is None else float(sigma[i]),
            )
        )
    return chosen


def shuffled(candidates: Sequence[Candidate], rng: np.random.Generator) -> list[Candidate]:
    """The candidates in an order drawn from ``rng`` (the labels a model sees).

    Example:
        >>> c = [Candidate({"x": i}, "o") for i in range(3)]
        >>> sorted(x.params["x"] for x in shuffled(c, np.random.default_rng(1)))
        [0, 1, 2]
    """
    return [candidates[i] for i in rng.permutation(len(candidates))]


def describe_candidate(candidate: Candidate) -> str:
    """One line for the prompt: the parameters, and the GP's prediction when there is one.

    Example:
        >>> describe_candidate(Candidate({"x": 0.123456789, "n": 3}, "gp-ucb", 1.5, 0.25))
        'x=0.123457, n=3 (GP predicts 1.5 +- 0.25)'
    """
    text = ", ".join(f"{k}={_num(v)}" for k, v in candidate.params.items())
    if candidate.predicted is not None and candidate.predicted_std is not None:
        text += f" (GP predicts {_num(candidate.predicted)} +- {_num(candidate.predicted_std)})"
    return text


def _num(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


__all__ = ["Candidate", "box_candidates", "describe_candidate", "shuffled"]
