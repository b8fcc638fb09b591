"""The budget count of a shared study: which finished trials count toward ``--n-trials``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_llm._attrs import RETRIED_TRIAL, RETRY_HISTORY


@dataclass(frozen=True)
class Budget:
    """Trials of a study as the worker loop counts them.

    ``counted``: COMPLETE, PRUNED, and FAIL trials that were not retried (a retried FAIL trial
    is replaced by its retry, which counts instead); ``running`` and ``waiting``: the rest.

    Example:
        >>> Budget(counted=10, running=2, waiting=1).taken()
        13
    """

    counted: int
    running: int
    waiting: int

    def taken(self) -> int:
        """Trials that count, or will once they finish: a new trial beyond ``n`` overshoots."""
        return self.counted + self.running + self.waiting


def retried_trials(trials: Iterable[FrozenTrial]) -> set[int]:
    """Numbers of the trials that a retry replaces.

    A retry names the trial it replaces as the last entry of Optuna's ``retry_history``; its
    ``failed_trial`` is the chain's *original* trial, so a retry that failed again (and was
    retried in turn) is only found through ``retry_history``. ``failed_trial`` alone is used
    where there is no history.

    Example:
        >>> from optuna.trial import create_trial
        >>> chain = [
        ...     create_trial(state=TrialState.FAIL),
        ...     create_trial(state=TrialState.FAIL, system_attrs={"failed_trial": 0,
        ...                                                      "retry_history": [0]}),
        ...     create_trial(state=TrialState.WAITING, system_attrs={"failed_trial": 0,
        ...                                                         "retry_history": [0, 1]}),
        ... ]
        >>> sorted(retried_trials(chain))
        [0, 1]
    """
    retried: set[int] = set()
    for t in trials:
        history = t.system_attrs.get(RETRY_HISTORY)
        if isinstance(history, list) and history:
            retried.add(int(history[-1]))
        elif RETRIED_TRIAL in t.system_attrs:
            retried.add(int(t.system_attrs[RETRIED_TRIAL]))
    return retried


def count_budget(study: optuna.Study) -> Budget:
    """The :class:`Budget` of ``study`` now.

    Example:
        >>> study = optuna.create_study()
        >>> study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        >>> count_budget(study)
        Budget(counted=2, running=0, waiting=0)
    """
    return budget_of(study.get_trials(deepcopy=False))


def budget_of(trials: Sequence[FrozenTrial]) -> Budget:
    """The :class:`Budget` of a study holding ``trials``."""
    retried = retried_trials(trials)
    counted = running = waiting = 0
    for t in trials:
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            counted += 1
        elif t.state == TrialState.FAIL and t.number not in retried:
            counted += 1
        elif t.state == TrialState.RUNNING:
            running += 1
        elif t.state == TrialState.WAITING:
            waiting += 1
    return Budget(counted, running, waiting)
