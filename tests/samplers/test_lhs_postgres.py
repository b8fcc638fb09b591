"""LatinHypercubeSampler with worker processes on one PostgreSQL study: a worker killed with
SIGKILL mid-trial, its trial retried (heartbeat + RetryFailedTrialCallback), and every block of
the design still Latin: each row evaluated once, ``n_samples`` strata per dimension."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optuna_llm._compat import retry_stale_trial_callback
from optuna_llm.samplers._lhs import ROW

pytestmark = pytest.mark.postgres

ROOT_DIR = Path(__file__).resolve().parents[2]
N = 12


def _storage(url: str) -> optuna.storages.RDBStorage:
    keyword, callback = retry_stale_trial_callback(max_retry=2)
    kwargs = {keyword: callback}
    return optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=3, **kwargs)


def _worker(url: str, n_trials: int, hang_file: str) -> None:
    """One worker: with ``hang_file`` it hangs inside its second trial (to be killed)."""
    from optuna_llm.samplers import LatinHypercubeSampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name="lhs", storage=_storage(url), sampler=LatinHypercubeSampler(N, seed=0)
    )
    count = [0]

    def objective(trial: optuna.Trial) -> float:
        x, y = trial.suggest_float("x", 0, 1), trial.suggest_float("y", 0, 1)
        count[0] += 1
        if hang_file and count[0] == 2:
            Path(hang_file).write_text(str(trial.number))
            time.sleep(600)
        time.sleep(0.05)
        return x + y

    study.optimize(objective, n_trials=n_trials)


def _spawn(url: str, n_trials: int, hang_file: str = "") -> subprocess.Popen:
    path = os.pathsep.join([str(ROOT_DIR), os.environ.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [sys.executable, __file__, url, str(n_trials), hang_file],
        cwd=ROOT_DIR,
        env=dict(os.environ, PYTHONPATH=path),
    )


@pytest.mark.slow
def test_the_design_stays_latin_after_a_kill_minus_9(postgres_url: str, tmp_path: Path) -> None:
    optuna.create_study(study_name="lhs", storage=postgres_url)
    hang = tmp_path / "hang"
    victim = _spawn(postgres_url, 10, str(hang))
    others = [_spawn(postgres_url, 6) for _ in range(3)]
    deadline = time.time() + 120
    while not hang.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert hang.exists(), "the victim never reached its second trial"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    dead = int(hang.read_text())
    assert [w.wait(timeout=300) for w in others] == [0, 0, 0]
    # One more worker after the grace period, so that the stale trial is failed and retried.
    time.sleep(4)
    late = _spawn(postgres_url, 6)
    assert late.wait(timeout=300) == 0

    trials = optuna.load_study(study_name="lhs", storage=postgres_url).trials
    assert trials[dead].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == dead]
    assert [t.state for t in retries] == [TrialState.COMPLETE]
    assert retries[0].params == trials[dead].params
    assert retries[0].system_attrs[ROW] == trials[dead].system_attrs[ROW]  # keeps its row
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    rows = [t.system_attrs[ROW] for t in done]
    assert len(rows) == len(set(rows)), sorted(rows)  # no row evaluated twice
    assert sorted(rows)[:N] == list(range(N)), sorted(rows)  # no row of block 0 skipped
    block0 = [t for t in done if t.system_attrs[ROW] < N]
    for name in ("x", "y"):
        strata = {int(t.params[name] * N) for t in block0}
        assert strata == set(range(N)), (name, sorted(strata))


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]), sys.argv[3])
