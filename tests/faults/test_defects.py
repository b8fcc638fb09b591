"""Defects the fault benchmark found, each reduced to a deterministic test on the real component.
Each was a strict xfail naming the defect until its fix (the strict mark then fails, so it is
removed with the fix)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from optuna_llm.storage import make_storage
from optuna_llm.worker import run_worker
from optuna_llm.worker._heartbeat import Heartbeat
from tests.helpers.fault_driver import ROOT, cli_command, read_trial_log
from tests.helpers.fault_objective import LOG_ENV, SLEEP_ENV
from tests.helpers.pg_instance import PgInstance

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE: dict[str, BaseDistribution] = {"x": FloatDistribution(0.0, 1.0)}


def test_a_retry_that_failed_again_does_not_count_toward_n_trials(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'chain.db'}", study_name="chain")
    # What two kills of the same trial leave: 0 FAIL -> its retry 1 FAIL -> its retry 2 WAITING.
    study.add_trial(create_trial(state=TrialState.FAIL, params={"x": 0.5}, distributions=SPACE))
    study.add_trial(
        create_trial(
            state=TrialState.FAIL, params={"x": 0.5}, distributions=SPACE,
            system_attrs={"failed_trial": 0, "retry_history": [0]},
        )
    )  # fmt: skip
    study.add_trial(
        create_trial(
            state=TrialState.WAITING, params={"x": 0.5}, distributions=SPACE,
            system_attrs={"failed_trial": 0, "retry_history": [0, 1]},
        )
    )  # fmt: skip
    run_worker(study, lambda t: t.suggest_float("x", 0.0, 1.0), 2, progress=None)
    states = [t.state for t in study.get_trials()]
    # Trial 0 and 1 were retried: the study needs two COMPLETE trials, trial 2 and a new one.
    assert states[2] == TrialState.COMPLETE
    assert states.count(TrialState.COMPLETE) == 2


def test_a_worker_survives_a_database_restart(tmp_path: Path) -> None:
    log = tmp_path / "trials.log"
    with PgInstance() as pg:
        url = pg.create_database("restart")
        worker = subprocess.Popen(
            [
                *cli_command(), "run", "--objective", "tests.helpers.fault_objective:objective",
                "--storage", url, "--study-name", "s", "--n-trials", "3", "--sampler", "random",
                "--heartbeat", "1", "--grace-period", "2", "--quiet",
            ],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, LOG_ENV: str(log), SLEEP_ENV: "3,3",
                 "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while not any(read_trial_log(log).values()):  # trial 0 is inside its 3 s sleep
                assert worker.poll() is None, worker.communicate()[1]
                assert time.monotonic() < deadline, "the worker never started a trial"
                time.sleep(0.1)
            pg.stop("fast")
            time.sleep(5)  # trial 0 ends while the server is down
            pg.start()
            _, err = worker.communicate(timeout=180)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        assert worker.returncode == 0, err[-2000:]
        study = optuna.load_study(study_name="s", storage=url)
        assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 3


def test_a_restart_right_after_a_trials_first_heartbeat_leaves_no_beating_orphan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stuck worker of the db-restart cases: the database went away after a new trial's
    first heartbeat and before the worker cleared its start note, the worker retried the
    whole step and started another trial, but the first trial's heartbeat thread was never
    stopped. That trial stayed RUNNING with a live heartbeat for ever, no stale check could
    fail it, and every worker (its own too) waited for it at the end of the study."""
    with PgInstance() as pg:
        url = pg.create_database("beat")
        study = optuna.create_study(
            storage=make_storage(url, heartbeat=1, grace_period=2), study_name="s"
        )
        first_beat = Heartbeat.start
        hit: list[int] = []

        def beat_then_lose_the_database(self: Heartbeat) -> None:
            first_beat(self)
            if not hit:  # the first trial: a real stop of the server, at exactly this point
                hit.append(self._trial_id)
                pg.stop("fast")
                threading.Timer(3.0, pg.start).start()

        monkeypatch.setattr(Heartbeat, "start", beat_then_lose_the_database)
        ran: list[int] = []
        worker = threading.Thread(
            target=lambda: ran.append(
                run_worker(
                    study, lambda t: t.suggest_float("x", 0.0, 1.0), 3, progress=None,
                    poll_interval=0.5,
                )
            ),
            daemon=True,
        )  # fmt: skip
        worker.start()
        worker.join(120)
        beating = [t.name for t in threading.enumerate() if t.name.startswith("heartbeat-")]
        assert not worker.is_alive(), (
            f"the worker still waits, for a trial its own leaked heartbeat keeps RUNNING: {beating}"
        )
        assert not beating
        trials = optuna.load_study(study_name="s", storage=url).get_trials()
        first = next(t for t in trials if t._trial_id == hit[0])
        assert first.state == TrialState.FAIL
        retries = [t for t in trials if t.system_attrs.get("retry_history") == [first.number]]
        assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
        assert sum(t.state == TrialState.COMPLETE for t in trials) == 3


def _worker(url: str, log: Path, sleep: str, max_retry: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *cli_command(), "run", "--objective", "tests.helpers.fault_objective:objective",
            "--storage", url, "--study-name", "chain", "--n-trials", "1", "--sampler", "random",
            "--heartbeat", "1", "--grace-period", "2", "--max-retry", str(max_retry), "--quiet",
        ],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, LOG_ENV: str(log), SLEEP_ENV: sleep, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def test_a_retry_chain_given_up_at_max_retry_gives_its_slot_to_a_fresh_trial(
    postgres_url: str, tmp_path: Path
) -> None:
    """llm / kill ended 28/40: retry chains killed max-retry + 1 times counted toward
    --n-trials, so the study ended short of COMPLETE trials. Each worker here is SIGKILLed
    inside the objective of the chain's newest trial, until the chain is at --max-retry 1; the
    next worker must give the lost slot to a fresh trial and complete it."""
    log = tmp_path / "trials.log"
    for kill in range(2):  # trial 0, then its retry 1
        worker = _worker(postgres_url, log, "60,60", max_retry=1)
        try:
            deadline = time.monotonic() + 120
            while worker.pid not in read_trial_log(log):  # inside its objective: kill it
                assert worker.poll() is None, worker.communicate()[1]
                assert time.monotonic() < deadline, f"kill {kill}: no trial started"
                time.sleep(0.1)
        finally:
            worker.kill()
            worker.wait()
    last = _worker(postgres_url, log, "0,0", max_retry=1)
    _, err = last.communicate(timeout=180)
    assert last.returncode == 0, err[-2000:]
    trials = optuna.load_study(study_name="chain", storage=postgres_url).get_trials()
    assert [t.state for t in trials[:2]] == [TrialState.FAIL, TrialState.FAIL]
    assert trials[1].system_attrs["retry_history"] == [0]
    assert [t.state for t in trials[2:]] == [TrialState.COMPLETE]  # a fresh trial, not a retry
    assert "retry_history" not in trials[2].system_attrs
    assert trials[1].system_attrs.get("optuna_llm:given_up") == 1  # not retried a second time
    assert "--max-retry 1" in trials[1].user_attrs["given_up"]


def test_a_trial_failed_by_another_workers_check_while_it_samples_does_not_end_the_worker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The 8 x 200 BaMSOO kill case at load 16: a worker's heartbeats came later than the grace
    # period, another worker's stale check failed its trial, and the sampler's next write to
    # that trial (SOO's node claim, inside suggest_float) raised UpdateFinishedTrialError in
    # the objective; the worker re-raised it and exited 1 (12 crashes in one case). Here the
    # other worker's check is done by hand between the start of trial 0 and its first suggest.
    storage = make_storage(f"sqlite:///{tmp_path / 'late.db'}", heartbeat=1, grace_period=2)
    study = optuna.create_study(storage=storage, study_name="late")

    def objective(trial: optuna.Trial) -> float:
        if trial.number == 0:
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        return trial.suggest_float("x", 0.0, 1.0)

    run_worker(study, objective, 3, progress=None)  # raised UpdateFinishedTrialError before
    states = [t.state for t in study.get_trials()]
    assert states[0] == TrialState.FAIL
    assert states.count(TrialState.COMPLETE) >= 2
    err = capsys.readouterr().err
    assert "trial 0 was failed by another worker's heartbeat check" in err, err


def test_a_trial_failed_by_another_workers_check_while_it_is_told_does_not_end_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The 8 x 200 BaMSOO db-restart case on f8307a1: `study.tell(..., skip_if_finished=True)`
    # read the trial RUNNING, another worker's stale check failed it, then tell's write raised
    # UpdateFinishedTrialError and the worker exited 1. Here the other worker's write lands
    # (through the real storage) just before this worker's first state write.
    from optuna_llm._compat import unwrap_storage

    storage = make_storage(f"sqlite:///{tmp_path / 'told.db'}", heartbeat=1, grace_period=2)
    study = optuna.create_study(storage=storage, study_name="told")
    backend = unwrap_storage(study._storage)
    write = backend.set_trial_state_values
    raced: list[int] = []

    def late_write(trial_id: int, state: TrialState, values: object = None) -> bool:
        if state == TrialState.COMPLETE and not raced:
            raced.append(trial_id)
            write(trial_id, TrialState.FAIL)  # the other worker's check, first
        return write(trial_id, state, values)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "set_trial_state_values", late_write)
    run_worker(study, lambda t: t.suggest_float("x", 0.0, 1.0), 3, progress=None)
    states = [t.state for t in study.get_trials()]
    assert raced and states[0] == TrialState.FAIL
    assert states.count(TrialState.COMPLETE) >= 2
    err = capsys.readouterr().err
    assert "trial 0 was failed by another worker's heartbeat check" in err, err


@pytest.mark.parametrize("tag", ["soo", "bamsoo"])
def test_a_retry_of_a_trial_cut_off_before_its_record_still_records_its_source(
    tag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bamsoo / db-restart at 8 x 200: one COMPLETE trial without a ``source``. A trial wrote its
    node claim (system attrs), then the database stopped before its record (user attrs
    ``source``, ``node``, ``depth``) was written; the trial failed on the outage and was
    retried, and the retry kept the node it had copied without writing the record. Here the
    real server is stopped at exactly that point, for 3 s."""
    from optuna_llm._attrs import NODE, SOURCE
    from optuna_llm.samplers import BaMSOOSampler, SOOSampler, _soo_base

    with PgInstance() as pg:
        url = pg.create_database("source")
        sampler = (SOOSampler if tag == "soo" else BaMSOOSampler)(seed=0)
        storage = make_storage(url, heartbeat=1, grace_period=2)
        study = optuna.create_study(storage=storage, study_name="s", sampler=sampler)
        write = _soo_base.set_user_attrs
        cut: list[int] = []

        def lose_the_database_before_the_record(
            study_: optuna.Study, trial: optuna.trial.FrozenTrial, attrs: dict[str, object]
        ) -> None:
            if NODE in attrs and not cut:  # the record of the first trial that claimed a node
                cut.append(trial.number)
                pg.stop("fast")
                threading.Timer(3.0, pg.start).start()
            write(study_, trial, attrs)

        monkeypatch.setattr(_soo_base, "set_user_attrs", lose_the_database_before_the_record)

        def objective(trial: optuna.Trial) -> float:
            return trial.suggest_float("x", 0.0, 1.0) + trial.suggest_float("y", 0.0, 1.0)

        worker = threading.Thread(
            target=lambda: run_worker(study, objective, 5, progress=None, poll_interval=0.5),
            daemon=True,
        )
        worker.start()
        worker.join(180)
        assert not worker.is_alive(), "the worker did not finish within 180 s"
        trials = optuna.load_study(study_name="s", storage=url).get_trials()
    assert cut, "no trial claimed a node"
    retry = next(t for t in trials if (t.system_attrs.get("retry_history") or [None])[-1] == cut[0])
    assert retry.state == TrialState.COMPLETE
    assert retry.system_attrs.get(f"{tag}:node")  # it kept the node its cut-off trial claimed
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 5
    unsourced = [(t.number, sorted(t.user_attrs)) for t in complete if SOURCE not in t.user_attrs]
    assert not unsourced, f"COMPLETE trials without a source: {unsourced}"
    assert (
        retry.user_attrs[SOURCE] == tag
        and retry.user_attrs[NODE] == retry.system_attrs[f"{tag}:node"]
    )
