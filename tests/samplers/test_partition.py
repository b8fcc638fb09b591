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
    """Every non-empty node down to ``depth``."""
    nodes, frontier = [ROOT], [ROOT]
    for _ in range(depth):
        nxt = []
        for node in frontier:
            cell = node_cell(space, k, *node)
            if cell.split is not None and not cell.empty:
                nxt.extend(c for c in children(node, k) if not node_cell(space, k, *c).empty)
        nodes += nxt
        frontier = nxt
    return nodes


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize(
    "space", [MIXED, {"a": FloatDistribution(0, 1), "b": FloatDistribution(0, 1)}]
)
def test_children_tile_parent_and_points_lie_in_cells(k: int, space: dict) -> None:
    unit = UnitSpace(space)
    for node in _tree(unit, k, 5 if k < 4 else 4):
        cell = node_cell(unit, k, *node)
        assert np.all(cell.point >= cell.low) and np.all(cell.point <= cell.low + cell.width)
        j = cell.split
        if j is None:
            continue
        kids = [node_cell(unit, k, *c) for c in children(node, k)]
        # Children share the parent's cell except along the split side, where they are k
        # contiguous pieces covering it exactly: equal slabs on a continuous side, runs of
        # whole values on a discrete one.
        others = np.arange(unit.dim) != j
        for kid in kids:
            np.testing.assert_allclose(kid.low[others], cell.low[others])
            np.testing.assert_allclose(kid.width[others], cell.width[others])
        starts = [kid.low[j] for kid in kids]
        ends = [kid.low[j] + kid.width[j] for kid in kids]
        assert starts[0] == pytest.approx(cell.low[j])
        np.testing.assert_allclose(starts[1:], ends[:-1])
        assert ends[-1] == pytest.approx(cell.low[j] + cell.width[j])
        if unit.n_values(j) == 0:
            for kid in kids:
                assert kid.width[j] == pytest.approx(cell.width[j] / k)
        else:
            runs = [(int(kid.lo[j]), int(kid.hi[j])) for kid in kids]
            assert runs[0][0] == cell.lo[j] and runs[-1][1] == cell.hi[j]
            assert all(a[1] == b[0] for a, b in itertools.pairwise(runs))
            if cell.hi[j] - cell.lo[j] >= k:
                assert all(hi > lo for lo, hi in runs)  # no empty child
        # Exactly one child keeps the parent's point (odd k, or a discrete side).
        keeps = [kid.inherits and not kid.empty for kid in kids]
        if unit.n_values(j) or k % 2 == 1:
            assert sum(keeps) == 1
        assert all(parent(c, k) == node for c in children(node, k))


def test_node_ids_map_to_cells_one_to_one() -> None:
    unit = UnitSpace({"a": FloatDistribution(0, 1), "b": FloatDistribution(0, 1)})
    k = 3
    for depth in range(5):
        cells = [node_cell(unit, k, depth, i) for i in range(k**depth)]
        keys = {tuple(np.round(np.concatenate([c.low, c.width]), 12)) for c in cells}
        assert len(keys) == k**depth  # distinct ids -> distinct cells
        assert sum(float(np.prod(c.width)) for c in cells) == pytest.approx(1.0)  # they tile
    for node in [(0, 0), (3, 17), (12, 3**12 - 1)]:
        assert parse_node_key(node_key(node)) == node


def test_split_rule_is_round_robin_on_continuous_spaces() -> None:
    unit = UnitSpace({n: FloatDistribution(0, 1) for n in "abc"})
    dims = [node_cell(unit, 3, h, 0).split for h in range(7)]
    assert dims == [0, 1, 2, 0, 1, 2, 0]


def test_discrete_sides_stop_splitting_and_small_spaces_are_terminal() -> None:
    unit = UnitSpace({"n": IntDistribution(0, 2), "c": CategoricalDistribution(["a", "b"])})
    nodes = _tree(unit, 3, 6)
    leaves = [n for n in nodes if node_cell(unit, 3, *n).split is None]
    assert max(n[0] for n in nodes) <= 2  # one split per side reaches single values
    values = {tuple(sorted(unit.to_params(node_centre(unit, 3, n)).items())) for n in leaves}
    assert len(values) == len(leaves) == 3 * 2  # every combination, each in one leaf


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize(
    "space",
    [
        {
            "i": IntDistribution(0, 9),
            "j": IntDistribution(0, 4),
            "c": CategoricalDistribution([1, 2]),
        },
        {"b": IntDistribution(4, 256, log=True), "d": FloatDistribution(0.0, 0.6, step=0.3)},
    ],
)
def test_no_two_evaluated_nodes_share_params(k: int, space: dict) -> None:
    """Discrete sides are split between values and a child holding its parent's value keeps
    it, so the nodes that cost an evaluation (root, children that do not inherit) all stand
    for different params: a full tree evaluates every point of the space exactly once."""
    unit = UnitSpace(space)
    nodes = _tree(unit, k, 40)
    evaluated = [n for n in nodes if n == ROOT or not node_cell(unit, k, *n).inherits]
    points = [tuple(sorted(unit.to_params(node_centre(unit, k, n)).items())) for n in evaluated]
    assert len(set(points)) == len(points)
    size = int(np.prod([unit.n_values(j) for j in range(unit.dim)]))
    assert len(points) == size


def test_deterministic_and_hash_identifies_the_tree() -> None:
    a, b = UnitSpace(MIXED), UnitSpace(dict(reversed(list(MIXED.items()))))
    assert space_hash(MIXED, 3, "soo") == space_hash(dict(MIXED), 3, "soo")
    assert space_hash(MIXED, 3, "soo") != space_hash(MIXED, 2, "soo")
    assert space_hash(MIXED, 3, "soo") != space_hash(MIXED, 3, "bamsoo")
    for node in [(2, 5), (6, 400)]:
        again = node_cell(UnitSpace(MIXED), 3, *node).low
        np.testing.assert_array_equal(node_cell(a, 3, *node).low, again)
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
    # Never below the number of parameters: each one is split at least once (issue 13).
    assert [h_max(n, n_params=9) for n in (1, 50, 81, 100)] == [9, 9, 9, 10]
