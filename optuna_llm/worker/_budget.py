"""The budget count of a shared study: which finished trials count toward ``--n-trials``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_llm._attrs import GIVEN_UP, RETRIED_TRIAL, RETRY_HISTORY


@dataclass(frozen=True)
class Budget:
    """Trials of a study as the worker loop counts them.

    ``counted``: COMPLETE, PRUNED, and FAIL trials that were not retried (a retried FAIL trial
    is replaced by its retry, which counts instead), except those ``given_up``: a trial whose
    worker died and whose retry chain had reached ``--max-retry`` gives its slot to a fresh
    trial (see :func:`budget_of` for the bound); ``running`` and ``waiting``: the rest.

    Example:
        >>> Budget(counted=10, running=2, waiting=1).taken()
        13
    """

    counted: int
    running: int
    waiting: int
    given_up: int = 0

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


def given_up_trials(trials: Iterable[FrozenTrial]) -> list[int]:
    """Numbers of the FAIL trials given up at ``--max-retry`` (system attr
    :data:`~optuna_llm._attrs.GIVEN_UP` holding the trial's own number), oldest first."""
    return sorted(
        t.number
        for t in trials
        if t.state == TrialState.FAIL and t.system_attrs.get(GIVEN_UP) == t.number
    )


def count_budget(study: optuna.Study, n_trials: int | None = None) -> Budget:
    """The :class:`Budget` of ``study`` now (``n_trials``: as :func:`budget_of`).

    Example:
        >>> study = optuna.create_study()
        >>> study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        >>> count_budget(study)
        Budget(counted=2, running=0, waiting=0, given_up=0)
    """
    return budget_of(study.get_trials(deepcopy=False), n_trials)


def budget_of(trials: Sequence[FrozenTrial], n_trials: int | None = None) -> Budget:
    """The :class:`Budget` of a study holding ``trials``, for a budget of ``n_trials``.

    A trial given up at ``--max-retry`` (its worker died on it ``--max-retry`` + 1 times)
    does not count: a fresh trial takes its slot, so the study still ends with ``n_trials``
    finished trials that count. At most ``n_trials`` given-up trials give their slot back (the
    oldest; ``None``: all), so a study whose every trial kills its worker still ends, after at
    most twice its budget of retry chains.

    Example:
        >>> from optuna.trial import create_trial
        >>> done = create_trial(value=1.0)
        >>> lost = create_trial(state=TrialState.FAIL, system_attrs={"retry_history": [0, 1, 2]})
        >>> lost.number = 3
        >>> lost.system_attrs[GIVEN_UP] = 3  # what the worker writes when the chain ends
        >>> budget_of([done, lost], n_trials=2)
        Budget(counted=1, running=0, waiting=0, given_up=1)
        >>> budget_of([done, lost], n_trials=0)  # no slot to give back
        Budget(counted=2, running=0, waiting=0, given_up=0)
    """
    retried = retried_trials(trials)
    given_up = given_up_trials(trials)
    back = set(given_up if n_trials is None else given_up[: max(n_trials, 0)])
    counted = running = waiting = 0
    for t in trials:
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            counted += 1
        elif t.state == TrialState.FAIL and t.number not in retried and t.number not in back:
            counted += 1
        elif t.state == TrialState.RUNNING:
            running += 1
        elif t.state == TrialState.WAITING:
            waiting += 1
    return Budget(counted, running, waiting, len(back))
