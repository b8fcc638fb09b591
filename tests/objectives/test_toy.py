"""Toy functions: known optima, standard bounds, and the Optuna objective wiring."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from optuna_llm.objectives.toy import TOY_FUNCTIONS, get_toy_function, make_quadratic

EXPECTED_NAMES = {"branin", "rosenbrock", "ackley", "himmelblau", "quadratic"}


def test_registry_has_the_papers_functions() -> None:
    assert set(TOY_FUNCTIONS) == EXPECTED_NAMES
    for name, f in TOY_FUNCTIONS.items():
        assert f.name == name
        assert f.dim == 2 == len(f.bounds)


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_minimizers_attain_the_optimum(name: str) -> None:
    f = TOY_FUNCTIONS[name]
    assert f.minimizers
    for point in f.minimizers:
        assert all(lo <= v <= hi for v, (lo, hi) in zip(point, f.bounds, strict=True))
        # Himmelblau's three irrational minimizers are tabulated to 6 decimals.
        assert f(np.array(point)) == pytest.approx(f.optimum, abs=1e-4)


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_no_grid_point_beats_the_optimum(name: str) -> None:
    f = TOY_FUNCTIONS[name]
    axes = [np.linspace(lo, hi, 151) for lo, hi in f.bounds]
    values = [f(np.array([a, b])) for a in axes[0] for b in axes[1]]
    assert min(values) >= f.optimum - 1e-9
    # The grid is fine enough to come within a few units of the minimum (not a flat function).
    assert min(values) - f.optimum < 5.0
    assert max(values) - f.optimum > 1.0


def test_hand_computed_values() -> None:
    assert TOY_FUNCTIONS["rosenbrock"]([0.0, 0.0]) == 1.0
    assert TOY_FUNCTIONS["rosenbrock"]([2.0, 1.0]) == pytest.approx(100 * 9 + 1)
    assert TOY_FUNCTIONS["himmelblau"]([0.0, 0.0]) == 121 + 49
    expected_branin_origin = 36 + 10 * (1 - 1 / (8 * math.pi)) + 10
    assert TOY_FUNCTIONS["branin"]([0.0, 0.0]) == pytest.approx(expected_branin_origin)
    assert TOY_FUNCTIONS["ackley"]([0.0, 0.0]) == pytest.approx(0.0, abs=1e-12)
    assert TOY_FUNCTIONS["quadratic"]([0.0, 0.0]) == 2.0


def test_objective_suggests_in_bounds_and_returns_the_function_value() -> None:
    f = TOY_FUNCTIONS["branin"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(f.objective, n_trials=25)
    for t in study.trials:
        assert set(t.params) == {"x0", "x1"}
        assert t.distributions == f.search_space()
        assert t.value == pytest.approx(f([t.params["x0"], t.params["x1"]]))
    assert study.best_value >= f.optimum


def test_quadratic_of_any_dimension() -> None:
    q = make_quadratic(5)
    assert q.dim == 5 and q.optimum == 0.0
    assert q(np.ones(5)) == 0.0
    assert q(np.zeros(5)) == 5.0
    assert get_toy_function("quadratic5").dim == 5
    shifted = make_quadratic(3, center=[0.5, -1.0, 2.0])
    assert shifted(np.array([0.5, -1.0, 2.0])) == 0.0
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(q.objective, n_trials=5)
    assert set(study.best_params) == {f"x{i}" for i in range(5)}


def test_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        TOY_FUNCTIONS["branin"](np.zeros(3))
    with pytest.raises(ValueError, match="positive integer"):
        make_quadratic(0)
    with pytest.raises(ValueError, match="outside"):
        make_quadratic(2, center=10.0)
    with pytest.raises(ValueError, match="Choose one of"):
        get_toy_function("sphere")
