"""A worker started while its database is down waits for it (``--storage-patience``).

Seen in the fault benchmark's db-restart scenario: the driver's replacement for a killed worker
started during the 10 s restart and exited at once ("Cannot connect ... connection refused").
A worker started by a scheduler before its database, or during a restart, must wait for it as
a worker already running does, and give up after ``--storage-patience`` seconds with one line
that names the URL and the flag. Real processes on a PostgreSQL server of the test's own
(``tests/helpers/pg_instance.py``), stopped and started; the shared server is not touched.
"""

from __future__ import annotations

import subprocess
import sys
import time

import optuna
from optuna.trial import TrialState

from tests.helpers.pg_instance import PgInstance


def _worker(url: str, *extra: str) -> subprocess.Popen[str]:
    cmd = [
        sys.executable, "-m", "optuna_llm.cli._run", "--objective", "branin",
        "--sampler", "soo", "--storage", url, "--study-name", "late", "--n-trials", "6",
        "--heartbeat-interval", "1", "--quiet", *extra,
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_worker_started_before_its_database_waits_for_it_and_completes() -> None:
    with PgInstance() as pg:
        url = pg.create_database("late")
        pg.stop()
        proc = _worker(url, "--storage-patience", "120")
        assert proc.stderr is not None
        # The worker says at once that it waits, naming the URL and the flag.
        warning = proc.stderr.readline()
        assert warning.startswith("warning: Cannot connect to postgresql"), warning
        assert f"127.0.0.1:{pg.port}" in warning and "--storage-patience" in warning, warning
        time.sleep(2.0)  # it keeps waiting (it exited at once before the fix)
        assert proc.poll() is None, proc.communicate()
        pg.start()
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, warning + err
        assert out == ""  # --quiet
        trials = optuna.load_study(study_name="late", storage=url).get_trials()
        assert [t.state for t in trials] == [TrialState.COMPLETE] * 6


def test_a_worker_gives_up_after_storage_patience_with_the_url_and_the_flag() -> None:
    with PgInstance() as pg:
        url = pg.create_database("never")
        pg.stop()
        started = time.monotonic()
        proc = _worker(url, "--storage-patience", "3")
        out, err = proc.communicate(timeout=120)
        waited = time.monotonic() - started
    assert proc.returncode == 1, err  # 1: the storage did not answer (2 is a wrong argument)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 2, err  # the warning when the wait began, the error when it ended
    assert lines[0].startswith("warning: ") and lines[1].startswith("error: "), err
    assert f"127.0.0.1:{pg.port}/never" in lines[1], lines[1]
    assert "--storage-patience 3" in lines[1] and "connection refused" in lines[1], lines[1]
    assert waited >= 3.0, waited  # it waited its patience (tries at 0, 0.25, 0.75, 1.75 and 3 s)
