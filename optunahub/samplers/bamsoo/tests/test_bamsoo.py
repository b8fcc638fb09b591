"""Tests of samplers/bamsoo: loaded with ``optunahub.load_local_module`` (no network), it
re-exports optuna-llm's BaMSOOSampler and runs a short study; example.py runs as published."""

from __future__ import annotations

from pathlib import Path
import runpy
from typing import Any

import optuna
import optunahub
import pytest


# The registry root: ``package/`` in optunahub-registry, ``optunahub/`` in optuna-llm.
REGISTRY_ROOT = Path(__file__).resolve().parents[3]
PACKAGE = "samplers/bamsoo"
module = optunahub.load_local_module(package=PACKAGE, registry_root=str(REGISTRY_ROOT))
BaMSOOSampler = module.BaMSOOSampler


def _run_example(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run example.py as published, with ``load_module`` served from this checkout."""

    def load_module(package: str, **_: Any) -> Any:
        return optunahub.load_local_module(package=package, registry_root=str(REGISTRY_ROOT))

    monkeypatch.setattr(optunahub, "load_module", load_module)
    example = REGISTRY_ROOT / PACKAGE / "example.py"
    return runpy.run_path(str(example), run_name="__main__")


def test_is_the_optuna_llm_sampler() -> None:
    from optuna_llm.samplers import BaMSOOSampler as original

    assert BaMSOOSampler is original
    assert module.__all__ == ["BaMSOOSampler"]


def test_short_study_finds_the_minimum_and_labels_every_trial() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5, 5)
        y = trial.suggest_float("y", -5, 5)
        return (x - 1.3) ** 2 + (y + 2) ** 2

    study = optuna.create_study(sampler=BaMSOOSampler(seed=0))
    study.optimize(objective, n_trials=25)
    assert study.best_value < 1.0
    tree = [t for t in study.trials if t.user_attrs["source"] == "bamsoo"]
    assert len(tree) >= 20
    assert all(t.user_attrs["evaluation"] == "evaluated" for t in tree)


def test_rejects_a_bad_eta_with_the_fix() -> None:
    with pytest.raises(ValueError, match="eta=0.05"):
        BaMSOOSampler(eta=2.0)


def test_example_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _run_example(monkeypatch)
    assert "trials chosen by the tree" in capsys.readouterr().out
