"""The worker loop: run trials until a shared study holds ``n_trials`` counted trials."""

from __future__ import annotations

import datetime
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_llm._attrs import SOURCE
from optuna_llm._compat import heartbeat_trial_ids, is_heartbeat_enabled, unwrap_storage
from optuna_llm.worker._budget import count_budget
from optuna_llm.worker._lock import StudyLock

Callback = Callable[[optuna.Study, FrozenTrial], None]


def run_worker(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
    n_trials: int,
    *,
    catch: Sequence[type[Exception]] = (),
    callbacks: Sequence[Callback] = (),
    poll_interval: float = 5.0,
    wait_for_running: bool = True,
    progress: Callable[[str], None] | None = print,
) -> int:
    """Run trials until ``study`` holds ``n_trials`` counted trials; return how many ran here.

    Before each trial the worker re-reads the study under a :class:`StudyLock` (released once
    the new trial exists): it starts one if counted + running + waiting < ``n_trials`` or a
    retried/enqueued trial is waiting, so several workers together run exactly ``n_trials``
    (:func:`~optuna_llm.worker.count_budget` says what counts). When the budget is taken by
    trials still running elsewhere it waits (``wait_for_running``, with heartbeats on) so that
    a trial whose worker dies is retried here instead of being lost. An exception of a type in
    ``catch`` makes the trial FAIL and the worker goes on; any other stops it. ``callbacks``
    are Optuna's (called after each trial of this worker); ``progress`` gets one line a trial.

    Example:
        >>> study = optuna.create_study()
        >>> run_worker(study, lambda t: t.suggest_float("x", 0, 1), 3, progress=None)
        3
        >>> run_worker(study, lambda t: t.suggest_float("x", 0, 1), 3, progress=None)
        0
    """
    from optuna.storages import fail_stale_trials

    heartbeat = is_heartbeat_enabled(study._storage)
    lock = StudyLock(study._storage, study._study_id)
    warned: set[int] = set()
    ran = 0
    try:
        while True:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                fail_stale_trials(study)
            lock.acquire()
            held = True
            try:
                budget = count_budget(study)
                if budget.counted >= n_trials:
                    break
                if budget.taken() >= n_trials and budget.waiting == 0:
                    if not (heartbeat and wait_for_running and budget.running):
                        break
                    for trial in never_beaten_trials(study):
                        if trial.number not in warned:
                            warned.add(trial.number)
                            print(_never_beaten_warning(study, trial), file=sys.stderr)
                    lock.release()
                    held = False
                    time.sleep(poll_interval)
                    continue

                def locked_objective(trial: optuna.Trial) -> Any:
                    # The trial exists (RUNNING) now, so the next worker's count includes it.
                    nonlocal held
                    if held:
                        lock.release()
                        held = False
                    return objective(trial)

                finished: list[FrozenTrial] = []

                def record(_study: optuna.Study, trial: FrozenTrial) -> None:
                    finished.append(trial)  # noqa: B023 - called before the loop moves on

                study.optimize(
                    locked_objective,
                    n_trials=1,
                    catch=tuple(catch),
                    callbacks=[record, *callbacks],
                )
            finally:
                if held:
                    lock.release()
            ran += 1
            if progress is not None:
                done = count_budget(study).counted
                for trial in finished:
                    progress(progress_line(study, trial, done, n_trials))
    finally:
        lock.close()
    return ran


def never_beaten_trials(study: optuna.Study) -> list[FrozenTrial]:
    """RUNNING trials with no heartbeat ever recorded, older than the grace period.

    Optuna's stale check never fails such a trial: its worker died between creating it and its
    first heartbeat (milliseconds), or runs without a heartbeat (``ask``/``tell`` or a storage
    made without ``heartbeat_interval``). Only RDB storages record heartbeats.
    """
    backend = unwrap_storage(study._storage)
    interval = getattr(backend, "heartbeat_interval", None)
    if interval is None or not hasattr(backend, "engine"):
        return []
    grace = getattr(backend, "grace_period", None) or 2 * interval
    oldest = datetime.datetime.now() - datetime.timedelta(seconds=grace + interval)
    running = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.datetime_start is not None and t.datetime_start < oldest
    ]
    if not running:
        return []
    beaten = heartbeat_trial_ids(backend, [t._trial_id for t in running])
    return [t for t in running if t._trial_id not in beaten]


def _never_beaten_warning(study: optuna.Study, trial: FrozenTrial) -> str:
    return (
        f"warning: this worker waits for trial {trial.number}, RUNNING since "
        f"{trial.datetime_start:%Y-%m-%d %H:%M:%S} without ever recording a heartbeat, so "
        "Optuna's stale check will never fail and retry it. If a process without heartbeats "
        "runs it, let it finish. If its worker died (killed between creating the trial and its "
        "first heartbeat), mark it failed and this worker stops waiting for it: python -c "
        f"\"import optuna; s = optuna.load_study(study_name='{study.study_name}', storage=URL); "
        f's._storage.set_trial_state_values({trial._trial_id}, optuna.trial.TrialState.FAIL)"'
    )


def progress_line(study: optuna.Study, trial: FrozenTrial, done: int, n: int) -> str:
    """``[done/n] trial 3 complete  value=0.12  source=llm  best=0.1 (trial 2)``."""
    value = trial.values if trial.values is None or len(trial.values) > 1 else trial.values[0]
    source = trial.user_attrs.get(SOURCE)
    parts = [f"[{done}/{n}] trial {trial.number} {trial.state.name.lower()}", f"value={value}"]
    if source:
        parts.append(f"source={source}")
    if len(study.directions) == 1:
        try:
            best = study.best_trial
            parts.append(f"best={best.value} (trial {best.number})")
        except ValueError:
            pass
    return "  ".join(parts)
