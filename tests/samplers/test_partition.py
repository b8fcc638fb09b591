"""Partition-tree maths of SOO/BaMSOO: cells, centres, node ids, unit-cube mapping."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from optuna_llm.samplers._partition import (
    ROOT,
    UnitSpace,
    children,
    h_max,
    node_cell,
    node_centre,
    node_key,
    parent,
    parse_node_key,
    space_hash,
)

MIXED = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "x": FloatDistribution(-2.0, 3.0),
    "layers": IntDistribution(1, 6),
    "batch": IntDistribution(8, 512, log=True),
    "drop": FloatDistribution(0.0, 0.5, step=0.1),
    "opt": CategoricalDistribution(["sgd", "adam", "rmsprop"]),
}


def _tree(space: UnitSpace, k: int, depth: int) -> list[tuple[int, int]]:
    """Every non-terminal-descendant node down to ``depth``."""
    nodes, frontier = [ROOT], [ROOT]
    for _ in range(depth):
        nxt = []
        for node in frontier:
            low, width = node_cell(space, k, *node)
            if space.split_dim(low, width) is not None:
                nxt.extend(children(node, k))
        nodes += nxt
        frontier = nxt
    return nodes


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize(
    "space", [MIXED, {"a": FloatDistribution(0, 1), "b": FloatDistribution(0, 1)}]
)
def test_children_tile_parent_and_centres_lie_in_cells(k: int, space: dict) -> None:
    unit = UnitSpace(space)
    for node in _tree(unit, k, 5 if k < 4 else 4):
        low, width = node_cell(unit, k, *node)
        centre = node_centre(unit, k, node)
        assert np.all(centre >= low) and np.all(centre <= low + width)
        j = unit.split_dim(low, width)
        if j is None:
            continue
        kids = [node_cell(unit, k, *c) for c in children(node, k)]
        # Children share the parent's cell except along the split side, where they are k
        # contiguous equal slabs covering it exactly.
        for c_low, c_width in kids:
            others = np.arange(unit.dim) != j
            np.testing.assert_allclose(c_low[others], low[others])
            np.testing.assert_allclose(c_width[others], width[others])
            assert c_width[j] == pytest.approx(width[j] / k)
        starts = sorted(c_low[j] for c_low, _ in kids)
        np.testing.assert_allclose(starts, low[j] + np.arange(k) * width[j] / k)
        assert all(parent(c, k) == node for c in children(node, k))


def test_node_ids_map_to_cells_one_to_one() -> None:
    unit = UnitSpace({"a": FloatDistribution(0, 1), "b": FloatDistribution(0, 1)})
    k = 3
    for depth in range(5):
        cells = [node_cell(unit, k, depth, i) for i in range(k**depth)]
        keys = {tuple(np.round(np.concatenate([lo, w]), 12)) for lo, w in cells}
        assert len(keys) == k**depth  # distinct ids -> distinct cells
        assert sum(float(np.prod(w)) for _, w in cells) == pytest.approx(1.0)  # they tile
    for node in [(0, 0), (3, 17), (12, 3**12 - 1)]:
        assert parse_node_key(node_key(node)) == node


def test_split_rule_is_round_robin_on_continuous_spaces() -> None:
    unit = UnitSpace({n: FloatDistribution(0, 1) for n in "abc"})
    low, width = np.zeros(3), np.ones(3)
    dims = []
    for _ in range(7):
        j = unit.split_dim(low, width)
        assert j is not None
        dims.append(j)
        width[j] /= 3
    assert dims == [0, 1, 2, 0, 1, 2, 0]


def test_discrete_sides_stop_splitting_and_small_spaces_are_terminal() -> None:
    unit = UnitSpace({"n": IntDistribution(0, 2), "c": CategoricalDistribution(["a", "b"])})
    nodes = _tree(unit, 3, 6)
    leaves = [n for n in nodes if unit.split_dim(*node_cell(unit, 3, *n)) is None]
    assert max(n[0] for n in nodes) <= 3  # no splitting below one value per side
    values = {tuple(sorted(unit.to_params(node_centre(unit, 3, n)).items())) for n in leaves}
    assert len(values) == 3 * 2  # every combination is reachable


def test_deterministic_and_hash_identifies_the_tree() -> None:
    a, b = UnitSpace(MIXED), UnitSpace(dict(reversed(list(MIXED.items()))))
    assert space_hash(MIXED, 3, "soo") == space_hash(dict(MIXED), 3, "soo")
    assert space_hash(MIXED, 3, "soo") != space_hash(MIXED, 2, "soo")
    assert space_hash(MIXED, 3, "soo") != space_hash(MIXED, 3, "bamsoo")
    for node in [(2, 5), (6, 400)]:
        again = node_cell(UnitSpace(MIXED), 3, *node)[0]
        np.testing.assert_array_equal(node_cell(a, 3, *node)[0], again)
    assert b.names != a.names


def test_int_log_step_categorical_round_trip() -> None:
    unit = UnitSpace(MIXED)
    rng = np.random.default_rng(0)
    choices = {
        "lr": [1e-5, 3e-4, 1e-1],
        "x": [-2.0, 0.5, 3.0],
        "layers": list(range(1, 7)),
        "batch": list(range(8, 513)),
        "drop": [0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5],
        "opt": ["sgd", "adam", "rmsprop"],
    }
    for _ in range(200):
        params = {n: c[rng.integers(len(c))] for n, c in choices.items()}
        back = unit.to_params(unit.to_unit(params))
        for name, value in params.items():
            assert back[name] == pytest.approx(value), name
            assert type(back[name]) is type(value) or isinstance(value, float)
    # Every point of the cube maps to a legal value.
    for u in itertools.product([0.0, 0.2, 0.5, 0.999, 1.0], repeat=1):
        p = unit.to_params(np.full(unit.dim, u[0]))
        for name, dist in MIXED.items():
            assert dist._contains(dist.to_internal_repr(p[name]))


def test_h_max_schedule() -> None:
    assert [h_max(n) for n in (0, 1, 3, 4, 15, 16, 100, 1000)] == [1, 1, 1, 2, 3, 4, 10, 31]
