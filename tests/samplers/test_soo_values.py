"""SOO/BaMSOO (and LHS) with inf/-inf/NaN values, infeasible trials, and why they fell back."""

from __future__ import annotations

import math
import warnings

import optuna
import pytest
from optuna.trial import TrialState

from optuna_llm._compat import constraint_values
from optuna_llm.samplers import BaMSOOSampler, LatinHypercubeSampler, SOOSampler
from optuna_llm.samplers._bamsoo import finite_targets
from optuna_llm.samplers._soo_base import draw_seed

SAMPLERS = [SOOSampler, BaMSOOSampler]


def _quadratic(trial: optuna.Trial) -> float:
    x, y = trial.suggest_float("x", -3, 3), trial.suggest_float("y", -3, 3)
    return (x - 1) ** 2 + (y + 0.5) ** 2


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("cls", [*SAMPLERS, LatinHypercubeSampler])
def test_non_finite_values_do_not_turn_the_sampler_into_random_search(
    cls: type, bad: float
) -> None:
    sampler = cls(10, seed=0) if cls is LatinHypercubeSampler else cls(seed=0)
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        value = _quadratic(trial)
        return bad if trial.number in (2, 5) else value

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # e.g. (y - mean) / std with an inf
        study.optimize(objective, n_trials=25)
    sources = [t.user_attrs["source"] for t in study.trials]
    fallbacks = [s for s in sources[1:] if s.startswith("fallback")]
    assert fallbacks == [], sources
    finite = [t.value for t in study.trials if t.value is not None and math.isfinite(t.value)]
    if cls is not LatinHypercubeSampler and bad != -math.inf:
        assert min(finite) < 0.1
    for t in study.trials[1:]:
        assert "fallback_reason" not in t.user_attrs or "GP" in t.user_attrs["fallback_reason"]


def test_finite_targets_clip_to_the_range_seen() -> None:
    import numpy as np

    y = np.array([2.0, -np.inf, np.nan, np.inf, -1.0])
    assert finite_targets(y).tolist() == [2.0, -1.0, -1.0, 2.0, -1.0]
    assert finite_targets(np.array([-np.inf, -np.inf])) is None


def test_bamsoo_says_why_it_decided_without_a_gp() -> None:
    """Only infinite values so far: no GP can be fitted; BaMSOO evaluates as SOO, says so."""
    study = optuna.create_study(sampler=BaMSOOSampler(seed=0, n_startup_trials=2))
    study.optimize(lambda t: math.inf + 0 * _quadratic(t), n_trials=6)
    later = study.trials[3:]
    assert all(t.user_attrs["source"] == "bamsoo" for t in later)
    assert all("no completed trial has a finite" in t.user_attrs["fallback_reason"] for t in later)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_every_fallback_says_why(cls: type) -> None:
    study = optuna.create_study(sampler=cls(seed=0))

    def objective(trial: optuna.Trial) -> float:
        n = trial.suggest_int("n", 0, 2)
        extra = trial.suggest_float("extra", 0, 1) if trial.number in (1, 6) else 0.0
        return n + extra

    study.optimize(objective, n_trials=8)  # 3 points: the tree is exhausted after 3 trials
    first = study.trials[0].user_attrs
    assert first["source"] == "fallback:random"
    assert "search space is unknown" in first["fallback_reason"]
    # A node for the tree's parameters, a random draw for the one outside its space.
    partial = study.trials[1].user_attrs
    assert partial["source"] == "soo" if cls is SOOSampler else "bamsoo"
    assert "'extra' is outside the tree's search space" in partial["fallback_reason"]
    tail = [t.user_attrs for t in study.trials[3:]]
    assert all(a["source"] == "fallback:random" for a in tail), tail
    assert all("no node of the tree is left" in a["fallback_reason"] for a in tail), tail
    # Claimed draws: once every point is taken, a draw repeats only after every redraw did.
    assert all("repeats a taken point" in a["fallback_reason"] for a in tail), tail


@pytest.mark.parametrize("cls", SAMPLERS)
def test_fallback_draws_are_claimed_and_do_not_repeat_a_point(cls: type) -> None:
    study = optuna.create_study(sampler=cls(seed=0))
    # 9 points; a 3x3 tree is exhausted well before 9 trials end when the first is random.
    study.optimize(lambda t: t.suggest_int("a", 0, 2) * 3 + t.suggest_int("b", 0, 2), n_trials=9)
    points = [tuple(t.params.values()) for t in study.trials]
    assert len(set(points)) == 9, points


def test_fallback_draws_depend_on_the_trial_number_not_only_the_seed() -> None:
    """Two processes with seed 0 ask for trials 0 and 1: different first points."""
    firsts = []
    for number in (0, 1):
        study = optuna.create_study(sampler=SOOSampler(seed=0))
        for _ in range(number):
            study.enqueue_trial({"x": 0.0})
        study.optimize(lambda t: t.suggest_float("x", -5, 5), n_trials=number + 1)
        firsts.append(study.trials[number].params["x"])
    assert firsts[0] != firsts[1]
    assert draw_seed(0, 0) == draw_seed(0, 0) != draw_seed(1, 0)


@pytest.mark.parametrize("cls", SAMPLERS)
@pytest.mark.parametrize(
    "how",
    [
        pytest.param(
            "set_constraint",
            marks=pytest.mark.skipif(
                not hasattr(optuna.Trial, "set_constraint"), reason="Optuna 5's set_constraint"
            ),
        ),
        "constraints_func",
    ],
)
def test_an_infeasible_trial_is_worse_than_every_feasible_one(cls: type, how: str) -> None:
    """The objective's best region (x near 1) is infeasible: the tree must not go there."""

    def violation(x: float) -> float:
        return 0.5 - abs(x - 1.0)  # infeasible within 0.5 of the unconstrained optimum

    kwargs = {}
    if how == "constraints_func":
        kwargs["constraints_func"] = lambda t: (violation(t.params["x"]),)
    study = optuna.create_study(sampler=cls(seed=0, **kwargs))

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -3, 3)
        if how == "set_constraint":
            trial.set_constraint("c", violation(x))
        return (x - 1) ** 2

    study.optimize(objective, n_trials=30)
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    feasible = [t for t in done if all(c <= 0 for c in constraint_values(t))]
    assert len(feasible) < len(done)  # the infeasible region was met
    best_feasible = min(t.value for t in feasible)
    # The tree went to the feasible edges (|x - 1| = 0.5 gives 0.25) instead of the middle.
    assert best_feasible < 0.6
    # Unconstrained, the tree would spend the late trials next to x = 1 (all infeasible).
    late = done[15:]
    share = sum(1 for t in late if t not in feasible) / len(late)
    assert share < 0.3, share
