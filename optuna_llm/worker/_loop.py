"""The worker loop: run trials until a shared study holds ``n_trials`` counted trials."""

from __future__ import annotations

import copy
import datetime
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_llm._attrs import SOURCE
from optuna_llm._compat import (
    heartbeat_trial_ids,
    is_heartbeat_enabled,
    stop_requested,
    trial_loop,
    unwrap_storage,
)
from optuna_llm.worker._budget import budget_of, count_budget
from optuna_llm.worker._lock import StudyLock
from optuna_llm.worker._retry import DEFAULT_PATIENCE, StorageRetry
from optuna_llm.worker._trial import (
    Started,
    fail_orphans,
    fail_stale,
    finish_trial,
    start_trial,
)

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
    storage_patience: float = DEFAULT_PATIENCE,
) -> int:
    """Run trials until ``study`` holds ``n_trials`` counted trials; return how many ran here.

    Before each trial the worker re-reads the study under a :class:`StudyLock` (released once
    the new trial exists and beats): it starts one if counted + running + waiting <
    ``n_trials`` or a retried/enqueued trial is waiting, so several workers together run
    exactly ``n_trials`` (:func:`~optuna_llm.worker.count_budget` says what counts). When the
    budget is taken by trials still running elsewhere it waits (``wait_for_running``, with
    heartbeats on) so that a trial whose worker dies is retried here instead of being lost;
    a trial whose worker died before its first heartbeat is failed and retried too
    (:func:`~optuna_llm.worker._trial.fail_orphans`). An exception of a type in ``catch``
    makes the trial FAIL and the worker goes on; any other stops it. ``callbacks`` are
    Optuna's (called after each trial of this worker); ``progress`` gets one line a trial.

    A storage that stops answering (a database restart) is waited for, with back-off, up to
    ``storage_patience`` seconds per operation (:class:`~optuna_llm.worker._retry.StorageRetry`);
    after a longer outage :class:`~optuna_llm.worker._retry.StorageUnavailableError` ends the
    worker, and rerunning it resumes the study.

    Example:
        >>> study = optuna.create_study()
        >>> run_worker(study, lambda t: t.suggest_float("x", 0, 1), 3, progress=None)
        3
        >>> run_worker(study, lambda t: t.suggest_float("x", 0, 1), 3, progress=None)
        0
    """
    storage = study._storage
    interval = _heartbeat_interval(study)
    backend = unwrap_storage(storage)
    grace = float(getattr(backend, "grace_period", None) or 2 * (interval or 0))
    retry = StorageRetry(storage_patience, reset=storage.remove_session)
    lock = StudyLock(storage, study._study_id)
    warned: set[int] = set()
    caught = tuple(catch)
    ran = 0

    def locked_step() -> Started | str:
        """Under the lock: ``"done"``, ``"wait"``, or the trial this worker starts."""
        lock.acquire()
        try:
            trials = study.get_trials(deepcopy=False)
            # After an outage, give the live workers time to beat before judging anyone's
            # trial dead: their heartbeats stopped reaching the database too.
            if interval is not None and not retry.outage_within(grace + 2 * interval):
                if fail_stale(study, trials):
                    trials = study.get_trials(deepcopy=False)
            if interval is not None and fail_orphans(study, trials):
                trials = study.get_trials(deepcopy=False)
            budget = budget_of(trials, n_trials)
            if budget.counted >= n_trials:
                return "done"
            if budget.taken() >= n_trials and budget.waiting == 0:
                if not (interval is not None and wait_for_running and budget.running):
                    return "done"
                return "wait"
            return start_trial(study, trials, heartbeat_interval=interval, retry=retry)
        finally:
            lock.release()

    try:
        with trial_loop(study):
            while True:
                step = retry("starting a trial", locked_step)
                if step == "done":
                    break
                if step == "wait":
                    for trial in retry("reading the study", lambda: never_beaten_trials(study)):
                        if trial.number not in warned:
                            warned.add(trial.number)
                            print(_never_beaten_warning(study, trial), file=sys.stderr)
                    time.sleep(poll_interval)
                    continue
                assert isinstance(step, Started)
                frozen = finish_trial(study, step, objective, catch=caught, retry=retry, lock=lock)
                ran += 1
                for callback in callbacks:
                    callback(study, copy.deepcopy(frozen))
                if progress is not None:
                    done = retry("reading the study", lambda: count_budget(study, n_trials)).counted
                    progress(progress_line(study, frozen, done, n_trials))
                if stop_requested(study):
                    break
    finally:
        lock.close()
        try:
            storage.remove_session()
        except Exception:  # nothing left to clean up on a dead connection
            pass
    return ran


def _heartbeat_interval(study: optuna.Study) -> float | None:
    if not is_heartbeat_enabled(study._storage):
        return None
    interval = study._storage.get_heartbeat_interval()  # type: ignore[attr-defined]
    return float(interval) if interval else None


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
