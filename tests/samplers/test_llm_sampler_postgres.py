"""Three worker processes share one PostgreSQL study through LLMSampler."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_llm.samplers._llm import study_token_total
from tests.helpers.llm_servers import Reply, ScriptedOpenAIServer, request_schema

WORKER = textwrap.dedent(
    """
    import sys, optuna
    from optuna.distributions import FloatDistribution, IntDistribution
    from optuna_llm.samplers import LLMSampler

    storage, base_url, n_trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    space = {"x": IntDistribution(0, 9), "y": FloatDistribution(0.0, 1.0, step=0.25)}

    def objective(trial):
        return trial.suggest_int("x", 0, 9) + trial.suggest_float("y", 0.0, 1.0, step=0.25)

    sampler = LLMSampler("shared study", base_url=base_url, model="scripted-model",
                         search_space=space)
    study = optuna.load_study(study_name="shared", storage=storage, sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    """
)


def pool_responder(seed: int) -> Any:
    """Picks from 12 configurations at random: duplicates and simultaneous claims are common."""
    rng = random.Random(seed)
    pool = [{"x": x, "y": y} for x in range(4) for y in (0.0, 0.5, 1.0)]
    lock = threading.Lock()

    def respond(request: dict[str, Any]) -> Reply:
        assert request_schema(request) is not None
        with lock:
            config = rng.choice(pool)
        return Reply(json.dumps({"rationale": "from the pool", "config": config}))

    return respond


def test_three_workers_share_one_study_without_duplicates(
    postgres_url: str, tmp_path: Path
) -> None:
    optuna.create_study(study_name="shared", storage=postgres_url)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    root = Path(__file__).resolve().parents[2]
    with ScriptedOpenAIServer(pool_responder(0)) as server:
        workers = [
            subprocess.Popen(
                [sys.executable, str(script), postgres_url, server.base_url, "10"],
                cwd=root,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        errors = [w.communicate(timeout=600)[1] for w in workers]
        n_requests = len(server.requests)
    assert [w.returncode for w in workers] == [0, 0, 0], errors

    study = optuna.load_study(study_name="shared", storage=postgres_url)
    trials = study.trials
    assert len(trials) == 30
    assert all(t.state == TrialState.COMPLETE for t in trials)
    configs = [(t.params["x"], t.params["y"]) for t in trials]
    assert len(set(configs)) == 30, "two trials evaluated the same configuration"
    # Only 12 pool configurations exist: the LLM ran out and the fallback covered the rest
    # (the random fallback may itself take a pool configuration first, so at most 12 are llm).
    sources = [t.user_attrs["source"] for t in trials]
    pool = {(x, y) for x in range(4) for y in (0.0, 0.5, 1.0)}
    from_llm = [c for c, s in zip(configs, sources, strict=True) if s == "llm"]
    assert 1 <= len(from_llm) <= 12 and set(from_llm) <= pool
    assert set(sources) == {"llm", "fallback:random"}
    # Token accounting summed from the trials equals what the server served (18 a request).
    assert study_token_total(study) == 18 * n_requests
