"""SOO/BaMSOO with N trials in flight before any completes (issue 13: the first N were random)."""

from __future__ import annotations

from collections.abc import Callable

import optuna
import pytest
from optuna.trial import TrialState

from optuna_llm.bench._parallel import simulate
from optuna_llm.bench._tasks import get_task
from optuna_llm.samplers import BaMSOOSampler, SOOSampler
from optuna_llm.samplers._partition import parent, parse_node_key
from optuna_llm.samplers._soo_base import _TreeSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)

SAMPLERS: list[tuple[Callable[[], _TreeSampler], str]] = [
    (lambda: SOOSampler(seed=0), "soo"),
    (lambda: BaMSOOSampler(seed=0), "bamsoo"),
]


def _suggest(trial: optuna.Trial) -> None:
    for i in range(3):
        trial.suggest_float(f"x{i}", -5.0, 5.0)
    trial.suggest_int("n", 1, 8)
    trial.suggest_categorical("act", ["relu", "tanh", "gelu"])


@pytest.mark.parametrize("make, tag", SAMPLERS)
def test_asks_before_any_tell_get_distinct_tree_nodes(
    make: Callable[[], _TreeSampler], tag: str
) -> None:
    study = optuna.create_study(sampler=make())
    asked = []
    for _ in range(8):  # 8 workers start, none finishes
        trial = study.ask()
        _suggest(trial)
        asked.append(trial)
    first, *rest = study.get_trials(deepcopy=False)
    # The very first trial cannot know the space (define-by-run: nothing was suggested yet).
    assert first.user_attrs["source"] == "fallback:random"
    assert "suggested parameters yet" in first.user_attrs["fallback_reason"]
    assert [t.user_attrs["source"] for t in rest] == [tag] * 7
    assert all("fallback_reason" not in t.user_attrs for t in rest)
    nodes = [parse_node_key(t.user_attrs["node"]) for t in rest]
    assert nodes[0] == (0, 0)  # the root while nobody has a value
    assert len(set(nodes)) == len(nodes), "a node was handed out twice"
    # Every node hangs from the root (expanded while pending): a valid tree.
    for node in nodes[1:]:
        up = parent(node, 3)
        assert up == (0, 0) or up in nodes or parent(up, 3) in nodes
    vectors = {tuple(sorted(t.params.items())) for t in study.get_trials(deepcopy=False)}
    assert len(vectors) == 8, "a parameter vector was evaluated twice"
    # The run goes on from there as one tree: nodes keep their space after the tells.
    for i, trial in enumerate(asked):
        study.tell(trial, float(i))
    study.optimize(lambda t: (_suggest(t), float(t.number % 7))[1], n_trials=20)
    later = study.get_trials(deepcopy=False)[8:]
    assert all(t.user_attrs["source"] == tag for t in later)
    held = [t.user_attrs["node"] for t in study.get_trials(deepcopy=False)[1:]]
    assert len(set(held)) == len(held)


def test_a_trial_still_suggesting_does_not_shrink_the_space() -> None:
    study = optuna.create_study(sampler=SOOSampler(seed=0))
    full = study.ask()
    _suggest(full)
    half = study.ask()
    half.suggest_float("x0", -5.0, 5.0)  # still in its objective
    third = study.ask()
    frozen = study._storage.get_trial(third._trial_id)
    space = study.sampler.infer_relative_search_space(study, frozen)
    assert sorted(space) == ["act", "n", "x0", "x1", "x2"]
    # Once a trial completes, the completed trials' intersection decides, as in Optuna.
    study.tell(half, 1.0)
    assert sorted(study.sampler.infer_relative_search_space(study, frozen)) == ["x0"]


def test_a_claim_in_a_half_suggested_space_belongs_to_that_space_only() -> None:
    # The only running trial is still suggesting when the next one asks: that one sees a smaller
    # space and holds a node of that space's own tree, the rest drawn at random and said so.
    # Once a trial completes, the full space's tree starts at its own root. (On a loaded machine
    # 4 PostgreSQL workers hit this; the node checks must compare (space, node), not node.)
    study = optuna.create_study(sampler=SOOSampler(seed=0))
    half = study.ask()
    half.suggest_float("x0", -5.0, 5.0)  # still in its objective
    early = study.ask()
    _suggest(early)
    _suggest(half)
    study.tell(half, 1.0)
    study.tell(early, 2.0)
    full = study.ask()
    _suggest(full)
    _, early_t, full_t = study.get_trials(deepcopy=False)
    assert early_t.user_attrs["node"] == "0:0" and early_t.params["x0"] == 0.0
    assert "outside the tree's search space" in early_t.user_attrs["fallback_reason"]
    assert full_t.user_attrs["node"] == "0:0" and "fallback_reason" not in full_t.user_attrs
    assert early_t.system_attrs["soo:space"] != full_t.system_attrs["soo:space"]
    assert early_t.params != full_t.params


@pytest.mark.parametrize("make, tag", SAMPLERS)
def test_sixteen_simulated_workers_draw_only_the_first_trial_at_random(
    make: Callable[[], _TreeSampler], tag: str
) -> None:
    task = get_task("toy/branin")  # no optional benchmark package: runs on the oldest Optuna too
    study = optuna.create_study(sampler=make())
    simulate(study, task.evaluate, budget=40, workers=16, seed=0)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 40 and all(t.state == TrialState.COMPLETE for t in trials)
    sources = [t.user_attrs["source"] for t in trials]
    assert sources.count("fallback:random") == 1, sources
    nodes = [t.user_attrs["node"] for t in trials if "node" in t.user_attrs]
    assert len(nodes) == 39 and len(set(nodes)) == 39
