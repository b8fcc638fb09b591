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

from optuna_llm._attrs import GIVEN_UP, GIVEN_UP_NOTE, RETRY_HISTORY, WORKER_CREATING
from optuna_llm._compat import (
    forget_trial_cache,
    heartbeat_trial_ids,
    retry_gives_up,
    stale_trial_callback,
    stale_trial_ids,
)
from optuna_llm.worker._budget import retried_trials
from optuna_llm.worker._heartbeat import Heartbeat
from optuna_llm.worker._lock import StudyLock
from optuna_llm.worker._retry import StorageRetry, _counts_as_outage

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Started:
    """A trial this worker started: the trial and its heartbeat (``None`` without one)."""

    trial: optuna.Trial
    beat: Heartbeat | None


def retry_first(
    study: optuna.Study,
    frozen: FrozenTrial,
    retried: set[int],
    *,
    why: str,
    log: Log | None = _stderr,
) -> str:
    """Hand a trial whose worker is gone to the storage's retry callback, *before* it is marked
    FAIL (a kill in between then leaves a RUNNING trial that the next holder of the study lock
    finishes, never a FAIL trial without its retry). Returns what became of it:

    - ``"retried"``: a retry is queued (WAITING, ``retry_history`` ending with its number);
    - ``"already"``: a retry named it already (``retried``: the trials a retry replaces);
    - ``"given up"``: the chain reached ``--max-retry``; the trial is marked
      :data:`~optuna_llm._attrs.GIVEN_UP`, so that its slot in ``--n-trials`` goes to a fresh
      trial (:func:`~optuna_llm.worker.budget_of`) instead of being lost;
    - ``"none"``: the storage has no retry callback.
    """
    storage = study._storage
    callback = stale_trial_callback(storage)
    if callback is None:
        return "none"
    if frozen.number in retried:
        return "already"
    if retry_gives_up(callback, frozen):
        chain = [*(frozen.system_attrs.get(RETRY_HISTORY) or []), frozen.number]
        note = (
            f"{why} {len(chain)} times (retry chain {chain}, --max-retry {len(chain) - 1}): not "
            "retried again; its slot in --n-trials went to a new trial"
        )
        storage.set_trial_user_attr(frozen._trial_id, GIVEN_UP_NOTE, note)
        storage.set_trial_system_attr(frozen._trial_id, GIVEN_UP, frozen.number)
        if log is not None:
            log(f"warning: trial {frozen.number}: {note}")
        return "given up"
    callback(study, copy.deepcopy(frozen))  # it copies params and attrs, not state
    return "retried"


def fail_stale(
    study: optuna.Study, trials: Sequence[FrozenTrial], *, log: Log | None = None
) -> list[int]:
    """Optuna's ``fail_stale_trials``, in the order that a kill cannot break: retry first.

    Optuna marks a stale trial FAIL and then runs the retry callback: a worker killed in
    between leaves a FAIL trial that is never retried (the fault benchmark lost trials this
    way). Here, under the study lock, the retry is queued first (:func:`retry_first`: unless
    one already names the trial, the last holder having died after queuing it) and the trial
    is marked FAIL after, so a kill at any point leaves either a stale RUNNING trial (the next
    lock holder finishes the job) or a FAIL trial with its retry (or given up at
    ``--max-retry``). Returns the numbers of the trials failed.
    """
    storage = study._storage
    stale = set(stale_trial_ids(storage, study._study_id))
    if not stale:
        return []
    retried = retried_trials(trials)
    failed: list[int] = []
    for t in trials:
        if t._trial_id not in stale or t.state != TrialState.RUNNING:
            continue
        frozen = storage.get_trial(t._trial_id)
        if frozen.state != TrialState.RUNNING:
            continue
        # A given-up chain is worth a line even where the routine failures are not logged.
        retry_first(study, frozen, retried, why="its worker stopped beating", log=log or _stderr)
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
    no other worker is between those two steps now. Retry first, FAIL after, as in
    :func:`fail_stale`. Returns the numbers of the trials failed.
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
    retried = retried_trials(trials)
    failed: list[int] = []
    for t in candidates:
        if t._trial_id in beaten:
            continue
        frozen = storage.get_trial(t._trial_id)
        if frozen.state != TrialState.RUNNING:
            continue
        done = retry_first(
            study, frozen, retried, why="its worker died before its first heartbeat", log=log
        )
        try:
            if not storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        failed.append(t.number)
        log(
            f"warning: trial {t.number} was started by a worker that died before the trial's "
            "first heartbeat; failed it"
            + {"retried": " and queued its retry", "none": " (no retry callback)"}.get(done, "")
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
    lock: StudyLock | None = None,
    log: Log = _stderr,
) -> FrozenTrial:
    """Run ``objective`` on the started trial and tell its result; return the finished trial.

    Like ``Study.optimize``: ``TrialPruned`` prunes, an exception fails the trial and is raised
    again unless its type is in ``catch``, an invalid value fails the trial. Unlike it: the
    heartbeat goes on until the result is stored; telling rides out a storage outage; a trial
    whose objective failed because the storage was unreachable is handed to the retry callback
    (it is retried like a dead worker's trial: under the study ``lock``, retry first, FAIL
    after, as :func:`fail_stale` does, so that the two never both retry it) and the worker
    goes on.
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
        # The objective (or the sampler inside it) wrote to the trial after another worker's
        # heartbeat check had failed it: not an error of the objective, the worker goes on.
        finished_elsewhere = False

        def tell() -> tuple[FrozenTrial, list[str]]:
            nonlocal finished_elsewhere
            if isinstance(error, optuna.exceptions.UpdateFinishedTrialError):
                current = study._storage.get_trial(trial._trial_id)
                finished_elsewhere = current.state.is_finished()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    frozen = study.tell(
                        trial, None if state is not None else values, state=state,
                        skip_if_finished=True,
                    )  # fmt: skip
                except optuna.exceptions.UpdateFinishedTrialError:
                    # Another worker's heartbeat check failed the trial between Optuna's
                    # finished-check of skip_if_finished and its write: as if it had come first.
                    frozen = study._storage.get_trial(trial._trial_id)
                    if not frozen.state.is_finished():
                        raise
                    return frozen, []
            return frozen, [str(w.message) for w in caught]

        def fail_and_retry() -> tuple[FrozenTrial, list[str], str]:
            if lock is not None:
                lock.acquire()
            try:
                done = "already"  # another worker's stale check failed it meanwhile
                current = study._storage.get_trial(trial._trial_id)
                if current.state == TrialState.RUNNING:
                    retried = retried_trials(
                        study._storage.get_all_trials(study._study_id, deepcopy=False)
                    )
                    why = "the storage did not answer inside its objective"
                    done = retry_first(study, current, retried, why=why, log=log)
                return (*tell(), done)
            finally:
                if lock is not None:
                    lock.release()

        done = ""
        if outage:
            frozen, warned, done = retry(f"failing trial {trial.number}", fail_and_retry)
        else:
            frozen, warned = retry(f"telling trial {trial.number}", tell)
    finally:
        if started.beat is not None:
            started.beat.stop()
    if frozen.state == TrialState.FAIL and (error is None or finished_elsewhere):
        if warned and error is None:
            log(f"warning: trial {trial.number} failed: {warned[-1]}")
        else:
            log(
                f"warning: trial {trial.number} was failed by another worker's heartbeat check "
                "while this worker ran it (its heartbeats did not reach the storage); its "
                "retry runs it again"
            )
    elif outage and frozen.state == TrialState.FAIL:
        what = {
            "retried": "queued its retry",
            "already": "its retry was queued already",
            "given up": "its retry chain is at --max-retry",
            "none": "no retry callback to retry it",
        }[done]
        log(
            f"warning: trial {trial.number} failed because the storage did not answer inside "
            f"the objective ({type(error).__name__}); {what}"
        )
    elif frozen.state == TrialState.FAIL and error is not None:
        if not isinstance(error, catch):
            raise error
        log(f"warning: trial {trial.number} failed: {type(error).__name__}: {error}")
    return frozen
