"""The embedded Gemma 3 270M: in-process (the default) and behind llama.cpp's own
OpenAI-compatible server, reached through the ``openai`` client."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optuna_llm.llm.embedded import GEMMA_SHA256, default_model_path, sha256_of
from optuna_llm.samplers import LLMSampler
from tests.helpers.llm_servers import start_llama_server

pytestmark = [pytest.mark.slow, pytest.mark.llama]


def branin(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 10.0)
    y = trial.suggest_float("y", 0.0, 15.0)
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


def test_model_file_is_verified() -> None:
    path = default_model_path()
    assert path.stat().st_size == 253_113_024
    assert sha256_of(path) == GEMMA_SHA256


def test_branin_study_through_llama_cpp_server() -> None:
    with start_llama_server() as base_url:
        sampler = LLMSampler(
            "Minimise the 2-D Branin function.", base_url=base_url, model="gemma", seed=0
        )
        study = optuna.create_study(sampler=sampler)
        study.optimize(branin, n_trials=8)
    assert len(study.trials) == 8
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        assert -5.0 <= trial.params["x"] <= 10.0 and 0.0 <= trial.params["y"] <= 15.0
        assert trial.user_attrs["source"] in ("llm", "llm-repaired", "fallback:random")
        assert trial.user_attrs["llm_calls"] >= 1
    from_llm = [t for t in study.trials if t.user_attrs["source"].startswith("llm")]
    assert from_llm, "the real model never produced a usable configuration"
    assert all(isinstance(t.user_attrs.get("rationale", ""), str) for t in from_llm)
    assert all(t.user_attrs["llm_prompt_tokens"] > 0 for t in from_llm)


def test_demo_runs_on_the_embedded_default(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "optuna_llm",
            "demo",
            "--n-trials",
            "3",
            "--epochs",
            "1",
            "--storage",
            f"sqlite:///{db}",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Exception ignored" not in out.stderr  # llama-cpp-python's __del__ at exit
    assert "Best trial #" in out.stdout
    assert f"optuna-dashboard sqlite:///{db}" in out.stdout
    study = optuna.load_study(study_name="digits-llm-demo", storage=f"sqlite:///{db}")
    assert len(study.trials) == 3
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert all("source" in t.user_attrs for t in study.trials)
