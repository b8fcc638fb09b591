"""Tests of samplers/latin_hypercube: loaded with ``optunahub.load_local_module`` (no network), it
re-exports optuna-llm's LatinHypercubeSampler and runs a short study; example.py runs as published."""

from __future__ import annotations

from pathlib import Path
import runpy
from typing import Any

import optuna
import optunahub
import pytest


# The registry root: ``package/`` in optunahub-registry, ``optunahub/`` in optuna-llm.
REGISTRY_ROOT = Path(__file__).resolve().parents[3]
PACKAGE = "samplers/latin_hypercube"
module = optunahub.load_local_module(package=PACKAGE, registry_root=str(REGISTRY_ROOT))
LatinHypercubeSampler = module.LatinHypercubeSampler


def _run_example(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run example.py as published, with ``load_module`` served from this checkout."""

    def load_module(package: str, **_: Any) -> Any:
        return optunahub.load_local_module(package=package, registry_root=str(REGISTRY_ROOT))

    monkeypatch.setattr(optunahub, "load_module", load_module)
    example = REGISTRY_ROOT / PACKAGE / "example.py"
    return runpy.run_path(str(example), run_name="__main__")


def test_is_the_optuna_llm_sampler() -> None:
    from optuna_llm.samplers import LatinHypercubeSampler as original

    assert LatinHypercubeSampler is original
    assert module.__all__ == ["LatinHypercubeSampler"]


def test_short_study_is_a_latin_hypercube() -> None:
    n = 12

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5, 5)
        y = trial.suggest_float("y", 0, 1)
        return x**2 + y

    study = optuna.create_study(sampler=LatinHypercubeSampler(n, seed=0))
    study.optimize(objective, n_trials=n)
    assert {t.user_attrs["source"] for t in study.trials} == {"lhs"}
    for name, low, high in (("x", -5.0, 5.0), ("y", 0.0, 1.0)):
        strata = sorted(int((t.params[name] - low) / (high - low) * n) for t in study.trials)
        assert strata == list(range(n)), name  # one point in every stratum


def test_example_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _run_example(monkeypatch)
    assert "'optimizer'" in capsys.readouterr().out
