"""``optuna-llm run``: real worker processes on one PostgreSQL database."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from optuna_llm.cli import _run
from optuna_llm.samplers._lhs import latin_hypercube_design
from optuna_llm.worker import run_worker

optuna.logging.set_verbosity(optuna.logging.WARNING)


def cli_main(argv: list[str]) -> int:
    """The sub-command's own parser and handler, as ``optuna-llm`` dispatches to them."""
    parser = argparse.ArgumentParser(prog="optuna-llm")
    _run.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


OBJECTIVE = textwrap.dedent(
    """
    import os
    import time

    from optuna_llm.objectives.toy import TOY_FUNCTIONS


    def objective(trial):
        value = TOY_FUNCTIONS["branin"].objective(trial)
        if os.environ.get("HANG_ON_FIRST_TRIAL") and trial.number == 0:
            time.sleep(600)  # this worker gets killed here
        time.sleep(0.2)  # long enough for the two workers to interleave
        return value
    """
)


def _run_cmd(objective: Path, url: str, n_trials: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "optuna_llm.cli._run",
        "--objective", f"{objective}:objective",
        "--storage", url, "--study-name", "shared", "--n-trials", str(n_trials),
        *extra,
    ]  # fmt: skip


@pytest.fixture
def objective_file(tmp_path: Path) -> Path:
    path = tmp_path / "slow_branin.py"
    path.write_text(OBJECTIVE)
    return path


def test_two_workers_finish_n_trials_together(postgres_url: str, objective_file: Path) -> None:
    cmd = _run_cmd(
        objective_file, postgres_url, 16,
        "--sampler", "lhs", "--sampler-arg", "n_samples=10", "--seed", "0",
    )  # fmt: skip
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs

    study = optuna.load_study(study_name="shared", storage=postgres_url)
    trials = study.get_trials()
    assert len(trials) == 16, outputs
    assert all(t.state == TrialState.COMPLETE for t in trials)
    ran = [int(out.split("this worker ran ")[1].split()[0]) for out in outputs]
    assert sum(ran) == 16 and min(ran) > 0, outputs  # both workers took part
    assert "[16/16]" in "".join(outputs)  # progress lines

    # Both workers followed one Latin hypercube design: block 0 (10 rows) then block 1.
    space = {"x0": FloatDistribution(-5, 10), "x1": FloatDistribution(0, 15)}
    design = latin_hypercube_design(space, 10, seed=0) + latin_hypercube_design(
        space, 10, seed=0, block=1
    )
    assert [t.params for t in sorted(trials, key=lambda t: t.number)] == design[:16]
    assert {t.user_attrs["source"] for t in trials} == {"lhs"}


def _wait_for_beating_trial(
    url: str, doomed: subprocess.Popen[bytes], *, with_params: bool = False
) -> None:
    """Return once trial 0 is RUNNING with a heartbeat recorded (and, ``with_params``, its
    parameters suggested); kill ``doomed`` at any rate.

    RUNNING alone is not enough: Optuna's stale check skips a trial that never had a heartbeat,
    and a kill between trial creation and the first beat (milliseconds) leaves such a trial.
    A kill between the first beat and the first suggest leaves a trial with no parameters,
    whose retry has none to repeat.
    """
    params = (
        " AND EXISTS (SELECT 1 FROM trial_params p WHERE p.trial_id = t.trial_id)"
        if with_params
        else ""
    )
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert doomed.poll() is None, "the first worker exited before it was killed"
            try:
                with engine.connect() as conn:
                    beats = conn.execute(
                        sqlalchemy.text(
                            "SELECT count(*) FROM trial_heartbeats h JOIN trials t "
                            "ON t.trial_id = h.trial_id WHERE t.number = 0 AND t.state = 'RUNNING'"
                            + params
                        )
                    ).scalar()
            except sqlalchemy.exc.ProgrammingError:  # the tables do not exist yet
                beats = 0
            if beats:
                return
            time.sleep(0.2)
        pytest.fail("trial 0 of the first worker never had a heartbeat")
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        engine.dispose()


def test_dead_worker_trial_is_retried_by_another(postgres_url: str, objective_file: Path) -> None:
    cmd = _run_cmd(objective_file, postgres_url, 4, "--sampler", "random", "--seed", "1",
                   "--heartbeat-interval", "1", "--grace-period", "2")  # fmt: skip
    doomed = subprocess.Popen(
        cmd, env={**os.environ, "HANG_ON_FIRST_TRIAL": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_for_beating_trial(postgres_url, doomed, with_params=True)

    survivor = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert survivor.returncode == 0, survivor.stdout + survivor.stderr

    study = optuna.load_study(study_name="shared", storage=postgres_url)
    trials = {t.number: t for t in study.get_trials()}
    assert trials[0].state == TrialState.FAIL  # failed by the heartbeat check
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == 0]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == trials[0].params  # retried with the same parameters
    assert sum(t.state == TrialState.COMPLETE for t in trials.values()) == 4


def test_a_trial_that_never_had_a_heartbeat_is_named_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import threading

    from optuna_llm.storage import make_storage

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    study = optuna.create_study(
        storage=make_storage(url, heartbeat=1, grace_period=1), study_name="shared"
    )
    # What a worker killed between creating its trial and its first heartbeat leaves behind.
    orphan = study._storage.create_new_trial(study._study_id)
    ran: list[int] = []
    worker = threading.Thread(
        target=lambda: ran.append(
            run_worker(
                study, lambda t: t.suggest_float("x", 0, 1), 3, poll_interval=0.2, progress=None
            )
        ),
        daemon=True,
    )
    worker.start()
    err = ""
    deadline = time.monotonic() + 30
    while "warning: this worker waits for trial 0" not in err and time.monotonic() < deadline:
        time.sleep(0.2)
        err += capsys.readouterr().err
    assert "without ever recording a heartbeat" in err, err
    assert worker.is_alive()  # still waiting: the orphan may belong to a live worker

    fix = err.split("python -c ")[1].strip().strip('"').replace("URL", repr(url))
    subprocess.run([sys.executable, "-c", fix], check=True, timeout=60)
    worker.join(timeout=30)
    assert ran == [2]
    states = {t._trial_id: t.state for t in study.get_trials()}
    assert states[orphan] == TrialState.FAIL
    assert sorted(s.name for s in states.values()) == ["COMPLETE", "COMPLETE", "FAIL"]
    assert err.count("warning:") == 1  # once per trial, not once per poll


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--objective", "nosuchthing"], "Built-in objectives"),
        (["--objective", "branin", "--sampler", "nosuch"], "Choose one of"),
        (["--objective", "branin", "--objective-arg", "x"], "KEY=VALUE"),
        (["--objective", "branin", "--n-trials", "0"], "at least 1"),
    ],
)
def test_bad_arguments_name_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    base = ["run", "--storage", f"sqlite:///{tmp_path}/s.db", "--study-name", "s"]
    if "--n-trials" not in argv:
        base += ["--n-trials", "2"]
    assert cli_main([*base, *argv]) == 2
    assert message in capsys.readouterr().err


def test_joining_with_other_direction_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["run", "--storage", f"sqlite:///{tmp_path}/s.db", "--study-name", "s",
            "--objective", "quadratic", "--n-trials", "3", "--seed", "0"]  # fmt: skip
    assert cli_main(base) == 0
    assert "[3/3]" in capsys.readouterr().out
    assert cli_main([*base, "--direction", "maximize"]) == 2
    assert "--direction" in capsys.readouterr().err
    # Running again resumes: the study already holds 3 trials, nothing more to do.
    assert cli_main(base) == 0
    assert len(optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/s.db").trials) == 3


# -- issue 12 item 1: --n-trials is exact on every storage ------------------------------------


def _storage_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'exact.db'}"
    return str(tmp_path / "exact.log")


@pytest.mark.parametrize("kind", ["postgresql", "sqlite", "journal"])
def test_four_worker_processes_run_exactly_n_trials(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Four real `optuna-llm run` processes on one study, a fast objective so that they race for
    # the last trials: before StudyLock looked through Optuna's _CachedStorage, only journal
    # files were locked and PostgreSQL/SQLite studies ended with 13 or 14 of 12 trials.
    url = _storage_url(kind, tmp_path, request)
    cmd = [
        sys.executable, "-m", "optuna_llm.cli._run", "--objective", "branin",
        "--sampler", "random", "--storage", url, "--study-name", "exact",
        "--n-trials", "12", "--heartbeat-interval", "2", "--quiet",
    ]  # fmt: skip
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(url)
    ) if kind == "journal" else url  # fmt: skip
    trials = optuna.load_study(study_name="exact", storage=storage).get_trials()
    assert len(trials) == 12, outputs
    assert all(t.state == TrialState.COMPLETE for t in trials)


# -- issue 12 item 6: a message, not a traceback ----------------------------------------------


def _refused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: nothing listens there


@pytest.mark.parametrize(
    ("url", "fix", "code"),
    [
        ("sqlite:///{tmp}/no/such/folder/s.db", "mkdir -p {tmp}/no/such/folder", 2),
        ("postgresql+psycopg2://postgres@127.0.0.1:5432/optuna_llm_no_such_db", "createdb", 2),
        # Nothing answers: exit 1, as for a storage lost during the run (rerun it later).
        ("postgresql+psycopg2://postgres@127.0.0.1:{port}/db", "connection refused", 1),
        ("foo://host/db", "unknown database 'foo'", 2),
    ],
    ids=["sqlite-folder", "postgres-database", "port-refused", "unknown-scheme"],
)
def test_a_bad_storage_url_prints_one_line_with_the_fix(
    tmp_path: Path, url: str, fix: str, code: int
) -> None:
    port = _refused_port()
    url = url.format(tmp=tmp_path, port=port)
    # --storage-patience 0: a refused port is not waited for (the default waits 60 s for a
    # database that is starting: tests/faults/test_start_before_database.py).
    cmd = [sys.executable, "-m", "optuna_llm.cli._run", "--objective", "branin",
           "--storage", url, "--study-name", "s", "--n-trials", "2",
           "--storage-patience", "0"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == code, out.stdout + out.stderr
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert fix.format(tmp=tmp_path) in lines[0], lines[0]


def test_soo_with_two_directions_is_refused_before_the_study_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    argv = ["run", "--storage", url, "--study-name", "mo", "--objective", "branin",
            "--n-trials", "3", "--direction", "minimize", "--direction", "minimize"]  # fmt: skip
    for sampler in ("soo", "bamsoo", "cmaes"):
        assert cli_main([*argv, "--sampler", sampler]) == 2
        err = capsys.readouterr().err
        assert "cannot run a study with 2 objectives" in err, err
    assert optuna.get_all_study_names(url) == []  # no study, no FAIL trial left behind


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "optuna_llm.cli._run", "--objective", "branin",
           "--storage", f"sqlite:///{tmp_path / 'q.db'}", "--study-name", "q",
           "--n-trials", "3", "--quiet"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (out.stdout, out.stderr) == ("", "")  # Optuna's "Trial 0 finished" lines included
    loud = subprocess.run(
        [*cmd[:-3], "--n-trials", "4"], capture_output=True, text=True, timeout=120
    )
    assert "[4/4] trial 3 complete" in loud.stdout and "Trial 3 finished" not in loud.stderr


# -- issue 12 item 2, Optuna's samplers: the same --seed in every worker, different draws -------


def test_workers_given_the_same_seed_draw_different_points(postgres_url: str) -> None:
    # TPE's first 10 trials are random draws from its own stream: with --seed 0 on each of 4
    # workers they were the same 4 points, one per worker, before each worker got its own seed.
    cmd = [
        sys.executable, "-m", "optuna_llm.cli._run", "--objective", "branin",
        "--sampler", "tpe", "--seed", "0", "--storage", postgres_url,
        "--study-name", "seeded", "--n-trials", "12", "--heartbeat-interval", "2", "--quiet",
    ]  # fmt: skip
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    study = optuna.load_study(study_name="seeded", storage=postgres_url)
    vectors = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(vectors) == 12 and len(set(vectors)) == 12, vectors
    assert study._storage.get_study_system_attrs(study._study_id)["optuna_llm:workers_joined"] == 4


def test_one_worker_keeps_the_seed_it_was_given(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    argv = ["run", "--storage", url, "--objective", "branin", "--sampler", "tpe",
            "--seed", "3", "--n-trials", "4", "--quiet"]  # fmt: skip
    assert cli_main([*argv, "--study-name", "a"]) == 0
    direct = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=3))
    from optuna_llm.objectives.toy import TOY_FUNCTIONS

    direct.optimize(TOY_FUNCTIONS["branin"].objective, n_trials=4)
    ran = optuna.load_study(study_name="a", storage=url)
    assert [t.params for t in ran.trials] == [t.params for t in direct.trials]
