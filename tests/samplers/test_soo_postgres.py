"""SOO/BaMSOO with worker processes sharing one PostgreSQL study, including a kill -9."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optuna_llm.samplers._partition import children, parent, parse_node_key

pytestmark = pytest.mark.postgres

ROOT_DIR = Path(__file__).resolve().parents[2]


def _storage(url: str, heartbeat: bool) -> optuna.storages.RDBStorage:
    if not heartbeat:
        return optuna.storages.RDBStorage(url)
    return optuna.storages.RDBStorage(
        url,
        heartbeat_interval=1,
        grace_period=3,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
            max_retry=2
        ),
    )


def _worker(url: str, sampler_name: str, n_trials: int, sleep: float, hang_file: str) -> None:
    """One worker process: ``hang_file`` makes it hang on its third trial (to be killed)."""
    from optuna_llm.samplers import make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name="shared",
        storage=_storage(url, heartbeat=bool(hang_file) or os.environ.get("SOO_HB") == "1"),
        sampler=make_sampler(sampler_name, seed=0),
    )
    count = [0]

    def objective(trial: optuna.Trial) -> float:
        x, y = trial.suggest_float("x", -5, 10), trial.suggest_float("y", 0, 15)
        count[0] += 1
        if hang_file and count[0] == 3:
            node = study._storage.get_trial(trial._trial_id).user_attrs.get("node")
            Path(hang_file).write_text(json.dumps({"number": trial.number, "node": node}))
            time.sleep(600)
        time.sleep(sleep)
        a = y - 5.1 / (4 * math.pi**2) * x**2 + 5 / math.pi * x - 6
        return a**2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10

    study.optimize(objective, n_trials=n_trials)


def _spawn(
    url: str, sampler: str, n_trials: int, sleep: float, hang_file: str = ""
) -> subprocess.Popen:
    path = os.pathsep.join([str(ROOT_DIR), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    return subprocess.Popen(
        [sys.executable, __file__, url, sampler, str(n_trials), str(sleep), hang_file],
        cwd=ROOT_DIR,
        env=env,
    )


def _check_tree(trials: list[optuna.trial.FrozenTrial], tag: str, max_incomplete: int) -> None:
    # A trial that starts before any trial completes takes its space from the running trials;
    # if the only one it sees is still suggesting, that space is smaller and the trial holds a
    # node of that space's own tree (it is then as good as a random draw: see _soo_space.py).
    # Nodes are (space hash, node): the tree checked is the one the completed trials define.
    space_key = f"{tag}:space"
    first_done = min(t.datetime_complete for t in trials)  # type: ignore[type-var]
    main = Counter(t.system_attrs.get(space_key) for t in trials).most_common(1)[0][0]
    other = [t for t in trials if t.system_attrs.get(space_key, main) != main]
    assert all(t.datetime_start <= first_done for t in other), [t.number for t in other]
    trials = [t for t in trials if t.system_attrs.get(space_key) == main]
    done = [
        parse_node_key(t.user_attrs["node"])
        for t in trials
        if t.state == TrialState.COMPLETE and "node" in t.user_attrs
    ]
    assert len(done) == len(set(done)), "a node was evaluated twice"
    estimated = {parse_node_key(k) for t in trials for k in t.system_attrs.get("bamsoo:est", {})}
    # (A node may be both: a worker whose GP saw more data evaluated a node another worker had
    # estimated; the evaluation then supersedes the estimate. It is never evaluated twice.)
    evaluated = set(done) | estimated  # BaMSOO: GP-estimated nodes have values too
    expanded = {parent(n, 3) for n in evaluated if n != (0, 0)}
    assert (0, 0) in evaluated
    for p in expanded:
        # A valid SOO tree: expanded nodes hang from expanded nodes, middle children inherit.
        assert p == (0, 0) or parent(p, 3) in expanded
        assert children(p, 3)[1] not in evaluated
    incomplete = [p for p in expanded if not set(children(p, 3)[::2]) <= evaluated]
    assert len(incomplete) <= max_incomplete


@pytest.mark.slow
@pytest.mark.parametrize("sampler, n_trials", [("soo", 25), ("bamsoo", 6)])
def test_four_workers_share_one_tree(postgres_url: str, sampler: str, n_trials: int) -> None:
    # BaMSOO runs fewer trials only to keep the suite's time: each call fits a GP.
    optuna.create_study(study_name="shared", storage=postgres_url)
    workers = [_spawn(postgres_url, sampler, n_trials, 0.02) for _ in range(4)]
    assert [w.wait(timeout=300) for w in workers] == [0] * 4
    trials = optuna.load_study(study_name="shared", storage=postgres_url).trials
    assert len(trials) == 4 * n_trials
    assert all(t.state == TrialState.COMPLETE for t in trials)
    # Trials that start before any trial has completed do not know the search space yet.
    first_done = min(t.datetime_complete for t in trials)  # type: ignore[type-var]
    random = [t for t in trials if "node" not in t.user_attrs]
    assert all(t.datetime_start <= first_done for t in random), [t.number for t in random]
    # Every worker has seed 0 (as the README says to start them): the random draws of the
    # trials that start before the search space is known still differ (issue 12 item 2).
    assert all("fallback_reason" in t.user_attrs for t in random)
    vectors = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(vectors)) == len(vectors), "a parameter vector was evaluated twice"
    _check_tree(trials, sampler, max_incomplete=4)


@pytest.mark.slow
def test_kill_minus_9_mid_trial(postgres_url: str, tmp_path: Path) -> None:
    optuna.create_study(study_name="shared", storage=postgres_url)
    hang = tmp_path / "hang.json"
    victim = _spawn(postgres_url, "soo", 10, 0.02, str(hang))
    deadline = time.time() + 120
    while not hang.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert hang.exists(), "the victim never reached its third trial"
    time.sleep(0.2)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    dead = json.loads(hang.read_text())
    assert dead["node"]
    time.sleep(4)  # past the grace period: the next trial started fails it and retries it
    env_hb = dict(os.environ, SOO_HB="1")
    os.environ.update(env_hb)
    try:
        workers = [_spawn(postgres_url, "soo", 12, 0.02) for _ in range(2)]
        assert [w.wait(timeout=300) for w in workers] == [0, 0]
    finally:
        os.environ.pop("SOO_HB", None)
    trials = optuna.load_study(study_name="shared", storage=postgres_url).trials
    dead_trial = trials[dead["number"]]
    assert dead_trial.state == TrialState.FAIL
    same_node = [t for t in trials if t.user_attrs.get("node") == dead["node"]]
    after = [t for t in same_node if t.number > dead["number"]]
    assert [t.state for t in after] == [TrialState.COMPLETE]  # evaluated exactly once again
    assert after[0].params == dead_trial.params
    assert all(t.state == TrialState.COMPLETE for t in trials if t.number != dead["number"])
    assert len(trials) == 2 + 1 + 24  # victim's 2 done + the dead one + 24 (retry included)
    _check_tree(trials, "soo", max_incomplete=2)


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
