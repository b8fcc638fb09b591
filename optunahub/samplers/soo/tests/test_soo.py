"""Tests of samplers/soo: loaded with ``optunahub.load_local_module`` (no network), it
re-exports optuna-llm's SOOSampler and runs a short study; example.py runs as published."""

from __future__ import annotations

from pathlib import Path
import runpy
from typing import Any

import optuna
import optunahub
import pytest


# The registry root: ``package/`` in optunahub-registry, ``optunahub/`` in optuna-llm.
REGISTRY_ROOT = Path(__file__).resolve().parents[3]
PACKAGE = "samplers/soo"
module = optunahub.load_local_module(package=PACKAGE, registry_root=str(REGISTRY_ROOT))
SOOSampler = module.SOOSampler


def _run_example(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run example.py as published, with ``load_module`` served from this checkout."""

    def load_module(package: str, **_: Any) -> Any:
        return optunahub.load_local_module(package=package, registry_root=str(REGISTRY_ROOT))

    monkeypatch.setattr(optunahub, "load_module", load_module)
    example = REGISTRY_ROOT / PACKAGE / "example.py"
    return runpy.run_path(str(example), run_name="__main__")


def test_is_the_optuna_llm_sampler() -> None:
    from optuna_llm.samplers import SOOSampler as original

    assert SOOSampler is original
    assert module.__all__ == ["SOOSampler"]


def test_short_study_finds_the_minimum_and_labels_every_trial() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5, 5)
        y = trial.suggest_int("y", -5, 5)
        return (x - 1.3) ** 2 + (y + 2) ** 2

    study = optuna.create_study(sampler=SOOSampler(seed=0))
    study.optimize(objective, n_trials=40)
    assert study.best_value < 0.5
    tree = [t for t in study.trials if t.user_attrs["source"] == "soo"]
    assert len(tree) >= 35  # only the first trial comes from outside the tree
    assert all(":" in t.user_attrs["node"] for t in tree)
    assert {t.user_attrs["source"] for t in study.trials} <= {"soo", "fallback:random"}


def test_example_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _run_example(monkeypatch)
    assert "'x'" in capsys.readouterr().out
