"""BaMSOOSampler: conformance, convergence, GP savings over SOO, estimates in storage."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import optuna
import pytest
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)

from optuna_llm.samplers import BaMSOOSampler, SOOSampler
from optuna_llm.samplers._bamsoo import confidence_width, gp_subset
from optuna_llm.samplers._partition import parent, parse_node_key
from tests.samplers.test_soo import BRANIN_MIN, branin, quadratic5, rosenbrock

optuna.logging.set_verbosity(optuna.logging.WARNING)


class TestBaMSOOConformance(
    BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase
):
    @pytest.fixture
    def sampler(self) -> Callable[[], optuna.samplers.BaseSampler]:
        return lambda: BaMSOOSampler(seed=0)


def _regret_curve(study: optuna.Study, optimum: float) -> list[float]:
    best, curve = math.inf, []
    for t in study.trials:
        best = min(best, t.value if t.value is not None else math.inf)
        curve.append(best - optimum)
    return curve


@pytest.mark.slow
def test_needs_no_more_evaluations_than_soo_on_branin() -> None:
    soo = optuna.create_study(sampler=SOOSampler(seed=0))
    soo.optimize(branin, n_trials=100)
    target = soo.best_value - BRANIN_MIN
    bamsoo = optuna.create_study(sampler=BaMSOOSampler(seed=0))
    bamsoo.optimize(branin, n_trials=100)
    # Every trial is one real evaluation; GP-estimated nodes cost none.
    soo_evals = next(i for i, r in enumerate(_regret_curve(soo, BRANIN_MIN), 1) if r <= target)
    bamsoo_evals = next(
        i for i, r in enumerate(_regret_curve(bamsoo, BRANIN_MIN), 1) if r <= target
    )
    assert bamsoo_evals <= soo_evals, (bamsoo_evals, soo_evals)
    assert bamsoo.best_value - BRANIN_MIN <= 2e-3
    estimated = estimated_nodes(bamsoo)
    assert estimated > 0


@pytest.mark.parametrize(
    "objective, budget, regret", [(rosenbrock, 100, 1e-2), (quadratic5, 100, 2e-2)]
)
def test_converges(objective: Callable[[optuna.Trial], float], budget: int, regret: float) -> None:
    study = optuna.create_study(sampler=BaMSOOSampler(seed=0))
    study.optimize(objective, n_trials=budget)
    assert study.best_value <= regret  # both optima are 0


def test_estimates_are_stored_per_node_and_never_evaluated() -> None:
    study = optuna.create_study(sampler=BaMSOOSampler(seed=0))
    study.optimize(branin, n_trials=45)
    evaluated = [t.user_attrs["node"] for t in study.trials if "node" in t.user_attrs]
    assert len(evaluated) == len(set(evaluated))
    estimated: dict[str, float] = {}
    for t in study.trials:
        stored = t.system_attrs.get("bamsoo:est", {})
        assert {k: v[0] for k, v in stored.items()} == t.user_attrs.get("gp_estimated", {})
        for key, (value, _sweep) in stored.items():
            estimated.setdefault(key, value)
    assert estimated and not set(estimated) & set(evaluated)
    # Estimated nodes are children of expanded nodes (part of the tree), and some were
    # expanded themselves: the tree goes on without evaluating them.
    tree_nodes = {parse_node_key(k) for k in [*evaluated, *estimated]}
    for node in tree_nodes - {(0, 0)}:
        # The parent is in the tree: evaluated, estimated, or an inherited middle child.
        p = parent(node, 3)
        assert p == (0, 0) or p in tree_nodes or p[1] % 3 == 1
    assert all(t.user_attrs["evaluation"] == "evaluated" for t in study.trials[1:])


def test_trials_without_a_node_feed_the_gp() -> None:
    study = optuna.create_study(sampler=BaMSOOSampler(seed=0))
    study.optimize(branin, n_trials=5)
    study.enqueue_trial({"x": math.pi, "y": 2.275})  # an optimum, proposed by someone else
    study.optimize(branin, n_trials=1)
    assert "node" not in study.trials[-1].user_attrs
    sampler = study.sampler
    assert isinstance(sampler, BaMSOOSampler)
    space = sampler.infer_relative_search_space(study, study.trials[-1])
    trials = study.get_trials(deepcopy=False)
    model = sampler._fit(study, trials, sampler._context(space))
    assert model is not None
    assert model.gpr._X_train.shape[0] == 6
    assert model.best == pytest.approx(-branin_value(math.pi, 2.275))


def branin_value(x: float, y: float) -> float:
    return branin(optuna.trial.FixedTrial({"x": x, "y": y}))  # type: ignore[arg-type]


def estimated_nodes(study: optuna.Study) -> int:
    return sum(len(t.user_attrs.get("gp_estimated", {})) for t in study.trials)


def test_a_narrower_width_skips_more_evaluations() -> None:
    """The same budget on Branin: a quarter of B_N lets the GP decide more nodes without an
    evaluation than Wang et al.'s width does."""
    counts = {}
    for scale in (1.0, 0.25):
        study = optuna.create_study(sampler=BaMSOOSampler(seed=0, width_scale=scale))
        study.optimize(branin, n_trials=30)
        counts[scale] = estimated_nodes(study)
    assert counts[0.25] > counts[1.0]


def test_confidence_width_and_errors() -> None:
    assert confidence_width(1, 0.05) == pytest.approx(math.sqrt(2 * math.log(math.pi**2 / 0.3)))
    assert confidence_width(100, 0.05) > confidence_width(10, 0.05)
    assert confidence_width(10, 0.05, 0.5) == pytest.approx(confidence_width(10, 0.05) / 2)
    with pytest.raises(ValueError, match="eta must be a number in"):
        BaMSOOSampler(eta=1.5)
    for bad in (0, -1.0, float("inf"), float("nan"), True, "0.5"):
        with pytest.raises(ValueError, match="width_scale must be a finite number > 0"):
            BaMSOOSampler(width_scale=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_startup_trials"):
        BaMSOOSampler(n_startup_trials=1)
    with pytest.raises(ValueError, match="max_gp_points must be an integer >= n_startup"):
        BaMSOOSampler(max_gp_points=2)


def test_gp_is_fitted_on_the_best_and_the_most_recent_points() -> None:
    y = np.array([5.0, 1.0, 9.0, 3.0, 8.0, 2.0, 0.0, 4.0])
    assert list(gp_subset(y, 10)) == list(range(8))
    # The 2 best (9 at 2, 8 at 4), then the 2 most recent others (6, 7).
    assert list(gp_subset(y, 4)) == [2, 4, 6, 7]
    study = optuna.create_study(sampler=BaMSOOSampler(seed=0, max_gp_points=10))
    study.optimize(branin, n_trials=25)
    sampler = study.sampler
    assert isinstance(sampler, BaMSOOSampler)
    trials = study.get_trials(deepcopy=False)
    space = sampler.infer_relative_search_space(study, trials[-1])
    model = sampler._fit(study, trials, sampler._context(space))
    assert model is not None and model.gpr._X_train.shape[0] == 10
    assert model.best == pytest.approx(-study.best_value)
