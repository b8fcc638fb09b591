"""Statistics of benchmark results: plain functions on numbers, checkable by hand.

Definitions (also in docs/benchmarks.md):

* **chosen regret** after ``t`` trials: the noiseless regret of the trial with the best value the
  sampler *saw* among the first ``t`` (first one on ties). With a noisy or seed-drawn objective
  this can be worse than the best regret evaluated: it is what a user would deploy.
* **beats X %**: over the (task, seed) pairs both samplers ran, the share where the sampler's
  final chosen regret is strictly lower than X's; equal regrets (``math.isclose``) are counted
  apart as **ties**, never as wins.
* **change vs X**: per task, the relative change of the mean final regret over seeds,
  ``(mean_s - mean_X) / mean_X * 100`` (negative = lower regret than X). A task where both are 0
  counts 0; a task where X's mean is 0 and the sampler's is not has no finite change and is left
  out (and counted). The median and mean are over tasks.
* **mean rank**: per task, samplers ranked by mean final regret (1 = best, ties share the
  average rank, ``scipy.stats.rankdata``), averaged over the tasks every sampler ran.

Example:
    >>> compare_pairs({("t", 0): 1.0, ("t", 1): 2.0}, {("t", 0): 2.0, ("t", 1): 2.0}).beats_pct
    50.0
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import scipy.stats


def chosen_regret_curve(seen: Sequence[float], regret: Sequence[float]) -> np.ndarray:
    """Regret of the best-*seen* trial after each trial: ``out[t] = regret[argmin(seen[:t+1])]``.

    >>> chosen_regret_curve([3.0, 1.0, 2.0], [0.3, 0.2, 0.0]).tolist()
    [0.3, 0.2, 0.2]
    """
    if len(seen) != len(regret):
        raise ValueError(f"seen and regret differ in length ({len(seen)} != {len(regret)}).")
    out = np.empty(len(seen))
    best_i = 0
    for t, value in enumerate(seen):
        if value < seen[best_i]:
            best_i = t
        out[t] = regret[best_i]
    return out


def is_tie(a: float, b: float) -> bool:
    """Equal up to float noise: such a pair is a tie, not a win for either side."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@dataclass(frozen=True)
class WinTieLoss:
    """Counts of a paired comparison (lower is better)."""

    wins: int
    ties: int
    losses: int

    @property
    def n(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def beats_pct(self) -> float:
        return 100.0 * self.wins / self.n if self.n else math.nan

    @property
    def ties_pct(self) -> float:
        return 100.0 * self.ties / self.n if self.n else math.nan


K = TypeVar("K", bound=Hashable)


def compare_pairs(sampler: Mapping[K, float], baseline: Mapping[K, float]) -> WinTieLoss:
    """Win/tie/loss of ``sampler`` against ``baseline`` over their common keys (e.g. (task, seed)).

    >>> compare_pairs({1: 0.0, 2: 0.5, 3: 0.9}, {1: 0.0, 2: 0.7, 3: 0.1})
    WinTieLoss(wins=1, ties=1, losses=1)
    """
    wins = ties = losses = 0
    for key in sampler.keys() & baseline.keys():
        a, b = sampler[key], baseline[key]
        if is_tie(a, b):
            ties += 1
        elif a < b:
            wins += 1
        else:
            losses += 1
    return WinTieLoss(wins, ties, losses)


def relative_change(value: float, base: float) -> float:
    """``(value - base) / base`` in percent; 0 when both are 0; NaN when only ``base`` is 0.

    >>> relative_change(0.5, 2.0)
    -75.0
    """
    if is_tie(value, base):
        return 0.0
    if base == 0.0:
        return math.nan
    return 100.0 * (value - base) / base


@dataclass(frozen=True)
class ChangeSummary:
    """Median and mean relative change over tasks, and how many tasks had no finite change."""

    median: float
    mean: float
    n_tasks: int
    n_undefined: int


def change_vs(sampler: Mapping[str, float], baseline: Mapping[str, float]) -> ChangeSummary:
    """Summarise :func:`relative_change` of per-task means over the tasks both have.

    >>> change_vs({"a": 1.0, "b": 3.0, "c": 1.0}, {"a": 2.0, "b": 2.0, "c": 0.0})
    ChangeSummary(median=0.0, mean=0.0, n_tasks=2, n_undefined=1)
    """
    changes = [relative_change(sampler[t], baseline[t]) for t in sampler.keys() & baseline.keys()]
    finite = [c for c in changes if not math.isnan(c)]
    if not finite:
        return ChangeSummary(math.nan, math.nan, 0, len(changes))
    return ChangeSummary(
        float(np.median(finite)), float(np.mean(finite)), len(finite), len(changes) - len(finite)
    )


def per_task_means(
    values: Mapping[tuple[str, int], float], keys: Collection[tuple[str, int]] | None = None
) -> dict[str, float]:
    """Mean over seeds per task, over ``keys`` only when given (the pairs two samplers share).

    >>> per_task_means({("t", 0): 1.0, ("t", 1): 3.0, ("u", 0): 2.0}, keys={("t", 0), ("t", 1)})
    {'t': 2.0}
    """
    acc: dict[str, list[float]] = defaultdict(list)
    for (task, seed), v in values.items():
        if keys is None or (task, seed) in keys:
            acc[task].append(v)
    return {t: float(np.mean(v)) for t, v in acc.items()}


def mean_ranks(table: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Mean rank per sampler; ``table[task][sampler]`` is a score (lower is better).

    Only tasks where every sampler has a score count; ties share the average rank.

    >>> mean_ranks({"t1": {"a": 1.0, "b": 2.0}, "t2": {"a": 3.0, "b": 3.0}})
    {'a': 1.25, 'b': 1.75}
    """
    samplers = sorted({s for row in table.values() for s in row})
    ranks: dict[str, list[float]] = {s: [] for s in samplers}
    for row in table.values():
        if not all(s in row for s in samplers):
            continue
        values = np.array([row[s] for s in samplers])
        # Round so that float noise does not break a tie that is_tie would call a tie.
        r = scipy.stats.rankdata(np.round(values, 12), method="average")
        for s, rank in zip(samplers, r, strict=True):
            ranks[s].append(float(rank))
    return {s: float(np.mean(v)) if v else math.nan for s, v in ranks.items()}


def bootstrap_band(
    curves: np.ndarray, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean curve over runs (rows) and a percentile bootstrap band of that mean.

    Rows are resampled with replacement ``n_boot`` times; the band is the central ``level``
    interval of the resampled means at every step.

    >>> mean, lo, hi = bootstrap_band(np.array([[1.0, 1.0], [1.0, 1.0]]))
    >>> mean.tolist(), lo.tolist(), hi.tolist()
    ([1.0, 1.0], [1.0, 1.0], [1.0, 1.0])
    """
    curves = np.atleast_2d(np.asarray(curves, dtype=float))
    if curves.shape[0] == 0:
        raise ValueError("bootstrap_band needs at least one curve.")
    rng = np.random.default_rng(seed)
    rows = rng.integers(curves.shape[0], size=(n_boot, curves.shape[0]))
    means = curves[rows].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    return curves.mean(axis=0), lo, hi
