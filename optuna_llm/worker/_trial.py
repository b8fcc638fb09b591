"""Starting and finishing one trial of a shared study, as ``Study.optimize`` does, plus what a
worker among others needs that ``optimize`` lacks.

``Study.optimize`` creates a trial, builds it (the sampler's ``before_trial``), and only then
starts its heartbeat, so a worker killed in between leaves a RUNNING trial that never beats and
that Optuna's stale check never fails; and when ``tell`` meets a stopped database, Optuna's
``_run_trial`` raises (``StorageInternalError``, or ``UnboundLocalError`` from its own error
path) and ends the worker. Here instead:

- :func:`start_trial` (called under the study lock) first writes down what it is about to
  start (study system attr ``optuna_llm:creating``: the number the next new trial gets and the
  waiting trials it may pop), pops a waiting trial or creates one, records its first heartbeat
  and clears the note. A worker that dies in between leaves the note behind, and the next
  worker that takes the lock fails that trial and hands it to the storage's retry callback
  (:func:`fail_orphans`), exactly as Optuna's stale check does for a trial that stopped
  beating.
- :func:`finish_trial` runs the objective and tells the result, riding out a storage outage
  (:class:`~optuna_llm.worker._retry.StorageRetry`); a trial whose objective failed because
  the storage was unreachable is failed and retried like a dead worker's, and the worker goes
  on; a trial that another worker failed as stale meanwhile is reported, not an error.
"""

from __future__ import annotations

import copy
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_llm._attrs import RETRY_HISTORY, WORKER_CREATING
from optuna_llm._compat import (
    forget_trial_cache,
    heartbeat_trial_ids,
    stale_trial_callback,
    stale_trial_ids,
)
from optuna_llm.worker._heartbeat import Heartbeat
from optuna_llm.worker._retry import StorageRetry, _counts_as_outage

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Started:
    """A trial this worker started: the trial and its heartbeat (``None`` without one)."""

    trial: optuna.Trial
    beat: Heartbeat | None


def fail_stale(
    study: optuna.Study, trials: Sequence[FrozenTrial], *, log: Log | None = None
) -> list[int]:
    """Optuna's ``fail_stale_trials``, in the order that a kill cannot break: retry first.

    Optuna marks a stale trial FAIL and then runs the retry callback: a worker killed in
    between leaves a FAIL trial that is never retried (the fault benchmark lost trials this
    way). Here, under the study lock, the retry is queued first (unless one already names the
    trial: the last holder died after queuing it) and the trial is marked FAIL after, so a kill
    at any point leaves either a stale RUNNING trial (the next lock holder finishes the job) or
    a FAIL trial with its retry. Returns the numbers of the trials failed.
    """
    storage = study._storage
    stale = set(stale_trial_ids(storage, study._study_id))
    if not stale:
        return []
    callback = stale_trial_callback(storage)
    retried = {
        int(t.system_attrs[RETRY_HISTORY][-1])
        for t in trials
        if isinstance(t.system_attrs.get(RETRY_HISTORY), list) and t.system_attrs[RETRY_HISTORY]
    }
    failed: list[int] = []
    for t in trials:
        if t._trial_id not in stale or t.state != TrialState.RUNNING:
            continue
        frozen = storage.get_trial(t._trial_id)
        if frozen.state != TrialState.RUNNING:
            continue
        if callback is not None and frozen.number not in retried:
            callback(study, copy.deepcopy(frozen))  # it copies params and attrs, not state
        try:
            if storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                failed.append(t.number)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass
    if failed and log is not None:
        log(f"failed stale trial(s) {failed} (no heartbeat within the grace period)")
    return failed


def fail_orphans(
    study: optuna.Study, trials: Sequence[FrozenTrial], *, log: Log = _stderr
) -> list[int]:
    """Fail and retry the trial a worker started but died before its first heartbeat.

    Only the trials the last lock holder's note names are considered (it is cleared once the
    trial beats), and only those still RUNNING without a heartbeat: the study lock makes sure
    no other worker is between those two steps now. Returns the numbers of the trials failed.
    """
    storage = study._storage
    note = storage.get_study_system_attrs(study._study_id).get(WORKER_CREATING)
    if not isinstance(note, dict):
        return []
    first_new = int(note.get("next", 0))
    popped = {int(n) for n in note.get("pop") or []}
    candidates = [
        t
        for t in trials
        if t.state == TrialState.RUNNING and (t.number >= first_new or t.number in popped)
    ]
    beaten = heartbeat_trial_ids(storage, [t._trial_id for t in candidates])
    callback = stale_trial_callback(storage)
    failed: list[int] = []
    for t in candidates:
        if t._trial_id in beaten:
            continue
        try:
            if not storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        failed.append(t.number)
        if callback is not None:
            callback(study, copy.deepcopy(storage.get_trial(t._trial_id)))
        log(
            f"warning: trial {t.number} was started by a worker that died before the trial's "
            "first heartbeat; failed it"
            + (" and queued its retry" if callback is not None else " (no retry callback)")
        )
    storage.set_study_system_attr(study._study_id, WORKER_CREATING, None)
    return failed


def start_trial(
    study: optuna.Study,
    trials: Sequence[FrozenTrial],
    *,
    heartbeat_interval: float | None,
    retry: StorageRetry,
) -> Started:
    """Pop a waiting trial (a retry, an enqueued trial) or create one, beat, and build it.

    Called under the study lock, with ``trials`` read under it. ``heartbeat_interval=None``:
    the storage records no heartbeats, and no note is written.
    """
    storage = study._storage
    waiting = sorted((t for t in trials if t.state == TrialState.WAITING), key=lambda t: t.number)
    if heartbeat_interval is not None:
        note: dict[str, Any] = {"next": len(trials), "pop": [t.number for t in waiting]}
        storage.set_study_system_attr(study._study_id, WORKER_CREATING, note)
    trial_id: int | None = None
    for t in waiting:  # as Study.ask pops them: the first one this worker gets to RUNNING
        try:
            if storage.set_trial_state_values(t._trial_id, TrialState.RUNNING):
                trial_id = t._trial_id
                break
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    if trial_id is None:
        trial_id = storage.create_new_trial(study._study_id)
    beat: Heartbeat | None = None
    if heartbeat_interval is not None:
        beat = Heartbeat(storage, trial_id, heartbeat_interval, retry)
        beat.start()
    # From here on the trial beats: whatever goes wrong before it is handed back must stop the
    # beat. A storage outage makes the caller retry the whole step (another trial); a beat left
    # running would keep this one RUNNING for ever, past every stale check, and every worker
    # would wait for it at the end of the study. Stopped, it goes stale and is failed and
    # retried like a dead worker's trial.
    try:
        if beat is not None:
            storage.set_study_system_attr(study._study_id, WORKER_CREATING, None)
        forget_trial_cache(study)
        trial = optuna.Trial(study, trial_id)  # the sampler's before_trial runs here
    except BaseException as exc:
        if beat is not None:
            beat.stop()
        if not _counts_as_outage(exc):  # a sampler error: the trial fails, as in optimize
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
        raise
    return Started(trial, beat)


def finish_trial(
    study: optuna.Study,
    started: Started,
    objective: Callable[[optuna.Trial], Any],
    *,
    catch: tuple[type[Exception], ...],
    retry: StorageRetry,
    log: Log = _stderr,
) -> FrozenTrial:
    """Run ``objective`` on the started trial and tell its result; return the finished trial.

    Like ``Study.optimize``: ``TrialPruned`` prunes, an exception fails the trial and is raised
    again unless its type is in ``catch``, an invalid value fails the trial. Unlike it: the
    heartbeat goes on until the result is stored; telling rides out a storage outage; a trial
    whose objective failed because the storage was unreachable is handed to the retry callback
    (it is retried like a dead worker's trial) and the worker goes on.
    """
    trial = started.trial
    state: TrialState | None = None
    values: Any = None
    error: BaseException | None = None
    try:
        try:
            values = objective(trial)
        except optuna.TrialPruned as exc:
            state, error = TrialState.PRUNED, exc
        except (Exception, KeyboardInterrupt) as exc:
            state, error = TrialState.FAIL, exc
        outage = error is not None and _counts_as_outage(error)

        def tell() -> tuple[FrozenTrial, list[str]]:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                frozen = study.tell(
                    trial, None if state is not None else values, state=state,
                    skip_if_finished=True,
                )  # fmt: skip
            return frozen, [str(w.message) for w in caught]

        frozen, warned = retry(f"telling trial {trial.number}", tell)
    finally:
        if started.beat is not None:
            started.beat.stop()
    if frozen.state == TrialState.FAIL and error is None:
        if warned:
            log(f"warning: trial {trial.number} failed: {warned[-1]}")
        else:
            log(
                f"warning: trial {trial.number} was failed by another worker's heartbeat check "
                "while this worker ran it (its heartbeats did not reach the storage); its "
                "retry runs it again"
            )
    elif outage and frozen.state == TrialState.FAIL:
        callback = stale_trial_callback(study._storage)
        if callback is not None:
            retry(f"retrying trial {trial.number}", lambda: callback(study, copy.deepcopy(frozen)))
        log(
            f"warning: trial {trial.number} failed because the storage did not answer inside "
            f"the objective ({type(error).__name__}); "
            + ("queued its retry" if callback is not None else "no retry callback to retry it")
        )
    elif frozen.state == TrialState.FAIL and error is not None:
        if not isinstance(error, catch):
            raise error
        log(f"warning: trial {trial.number} failed: {type(error).__name__}: {error}")
    return frozen
