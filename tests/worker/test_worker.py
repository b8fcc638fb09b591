"""The worker module on real storages: the study lock on PostgreSQL, SQLite and a journal file,
the budget count, the up-front sampler check and the objective loader."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optuna_llm._attrs import RETRIED_TRIAL
from optuna_llm.samplers import make_sampler
from optuna_llm.storage import make_storage
from optuna_llm.worker import (
    StudyLock,
    check_sampler_directions,
    count_budget,
    resolve_objective,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'lock.db'}"
    return str(tmp_path / "lock.log")


@pytest.mark.parametrize(("kind", "lock"), [("postgresql", "sql"), ("sqlite", "file"),
                                            ("journal", "file")])  # fmt: skip
def test_the_lock_sees_through_optunas_storage_cache(
    kind: str, lock: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    study = optuna.create_study(storage=make_storage(_url(kind, tmp_path, request), heartbeat=0))
    # study._storage is Optuna's _CachedStorage for RDB storages: no url, no file path.
    held = StudyLock(study._storage, study._study_id)
    try:
        assert held.kind == lock
    finally:
        held.close()
    assert StudyLock(optuna.create_study()._storage, 0).kind == "none"


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_a_second_worker_waits_for_the_lock(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = _url(kind, tmp_path, request)
    study = optuna.create_study(storage=make_storage(url, heartbeat=0), study_name="s")
    other = optuna.load_study(storage=make_storage(url, heartbeat=0), study_name="s")
    first = StudyLock(study._storage, study._study_id)
    second = StudyLock(other._storage, other._study_id)
    got = threading.Event()

    def take() -> None:
        second.acquire()
        got.set()
        second.release()

    first.acquire()
    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    try:
        assert not got.wait(0.5)  # held by the first worker
    finally:
        first.release()
    assert got.wait(60)  # and free again once it lets go
    thread.join(60)
    first.close()
    second.close()


def test_a_retried_failure_counts_once_through_its_retry() -> None:
    study = optuna.create_study()
    storage = study._storage
    dead = storage.create_new_trial(study._study_id)
    storage.set_trial_state_values(dead, TrialState.FAIL)
    retry = storage.create_new_trial(study._study_id)
    storage.set_trial_system_attr(retry, RETRIED_TRIAL, 0)
    lost = storage.create_new_trial(study._study_id)
    storage.set_trial_state_values(lost, TrialState.FAIL)  # never retried: it counts
    waiting = study.enqueue_trial({"x": 1.0})  # noqa: F841 - a WAITING trial
    budget = count_budget(study)
    assert (budget.counted, budget.running, budget.waiting) == (1, 1, 1)
    storage.set_trial_state_values(retry, TrialState.COMPLETE, [0.0])
    assert count_budget(study).counted == 2


@pytest.mark.parametrize(
    ("sampler", "ok"),
    [("soo", False), ("bamsoo", False), ("cmaes", False), ("tpe", True), ("random", True)],
)
def test_samplers_are_asked_about_directions_before_any_study(sampler: str, ok: bool) -> None:
    built = make_sampler(sampler, seed=0)
    check_sampler_directions(built, ["minimize"])
    if ok:
        check_sampler_directions(built, ["minimize", "maximize"])
    else:
        with pytest.raises(ValueError, match="cannot run a study with 2 objectives"):
            check_sampler_directions(built, ["minimize", "maximize"])


def test_loading_an_objective_leaves_sys_path_and_modules_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_objective.py").write_text(
        "def objective(trial):\n    return trial.suggest_float('x', 0, 1)\n"
    )
    # A file named like a standard module must not replace it.
    (tmp_path / "json.py").write_text("def objective(trial):\n    return 1.0\n")
    monkeypatch.chdir(tmp_path)
    path_before = list(sys.path)
    import json

    objective = resolve_objective("my_objective:objective")
    assert resolve_objective(f"{tmp_path / 'json.py'}:objective")(None) == 1.0
    assert sys.path == path_before
    assert sys.modules["json"] is json
    optuna.create_study().optimize(objective, n_trials=1)


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
@pytest.mark.parametrize("popped", [False, True], ids=["new-trial", "popped-retry"])
def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_failed_and_retried(
    kind: str, popped: bool, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from optuna_llm._attrs import RETRY_HISTORY, WORKER_CREATING
    from optuna_llm.worker import run_worker

    url = _url(kind, tmp_path, request)
    study = optuna.create_study(
        storage=make_storage(url, heartbeat=1, grace_period=1), study_name="orphan"
    )
    storage = study._storage
    if popped:  # a retry the dead worker had popped (WAITING -> RUNNING)
        study.enqueue_trial({"x": 0.25})
    # What a worker killed between starting its trial and the first heartbeat leaves: the
    # note it wrote under the lock, and a RUNNING trial with no heartbeat row.
    storage.set_study_system_attr(
        study._study_id, WORKER_CREATING, {"next": 1 if popped else 0, "pop": [0] if popped else []}
    )
    if popped:
        orphan = study.trials[0]._trial_id
        assert storage.set_trial_state_values(orphan, TrialState.RUNNING)
    else:
        orphan = storage.create_new_trial(study._study_id)
    ran = run_worker(study, lambda t: t.suggest_float("x", 0, 1), 3, progress=None)
    trials = study.get_trials()
    by_id = {t._trial_id: t for t in trials}
    assert by_id[orphan].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get(RETRY_HISTORY) == [by_id[orphan].number]]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    if popped:
        assert retries[0].params == {"x": 0.25}
    assert ran == 3 and count_budget(study).counted == 3
    assert storage.get_study_system_attrs(study._study_id)[WORKER_CREATING] is None


def test_what_counts_as_a_storage_outage() -> None:
    import sqlalchemy.exc

    from optuna_llm.worker._retry import _counts_as_outage

    def wrapped(cause: BaseException) -> BaseException:
        try:
            raise optuna.exceptions.StorageInternalError("commit") from cause
        except optuna.exceptions.StorageInternalError as exc:
            return exc

    # What a PostgreSQL restart raised inside a trial's sampling (fault benchmark, db-restart):
    # the worker crashed on it before it was counted as an outage.
    assert _counts_as_outage(wrapped(sqlalchemy.exc.PendingRollbackError("rollback first")))
    assert _counts_as_outage(sqlalchemy.exc.OperationalError("SELECT 1", {}, OSError("closed")))
    assert not _counts_as_outage(wrapped(sqlalchemy.exc.IntegrityError("INSERT", {}, OSError())))
    assert not _counts_as_outage(wrapped(sqlalchemy.exc.DataError("INSERT", {}, OSError())))
    assert not _counts_as_outage(ValueError("Cannot tell a COMPLETE trial."))


def test_a_stale_trial_is_retried_once_even_when_its_retry_was_queued_already(
    tmp_path: Path,
) -> None:
    import time

    from optuna.trial import create_trial

    from optuna_llm._attrs import RETRY_HISTORY
    from optuna_llm.worker import run_worker

    study = optuna.create_study(
        storage=make_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat=1, grace_period=1),
        study_name="stale",
    )
    storage = study._storage
    # What a worker killed in the middle of failing a stale trial leaves, in the order the
    # worker does it (retry first, then FAIL): the stale trial still RUNNING, its retry queued.
    # (Optuna's order, FAIL first, left a FAIL trial without a retry when killed there.)
    dead = storage.create_new_trial(study._study_id)
    storage.set_trial_param(dead, "x", 0.5, optuna.distributions.FloatDistribution(0, 1))
    storage.record_heartbeat(dead)  # type: ignore[attr-defined]
    study.add_trial(
        create_trial(
            state=TrialState.WAITING, params={"x": 0.5},
            distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
            system_attrs={"failed_trial": 0, RETRY_HISTORY: [0]},
        )
    )  # fmt: skip
    time.sleep(3)  # the heartbeat is older than the grace period now
    run_worker(study, lambda t: t.suggest_float("x", 0, 1), 2, progress=None)
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get(RETRY_HISTORY) == [0]]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 2
