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

**Split rule.** A cell is split into ``k`` equal slabs along its widest *splittable* side
(ties: the lowest parameter index). A side is splittable if it is continuous, or discrete and
wider than the bin of the value at the cell's centre (splitting a side that already lies within
one value would only repeat evaluations). With only continuous parameters this is round-robin
over the dimensions. A cell with no splittable side is terminal.

**Depth limit.** ``h_max(n) = floor(sqrt(n))`` (Munos 2011, the choice used in his and Wang
et al.'s experiments): a leaf at depth ``h`` may be expanded only if ``h <= h_max(n)``, where
``n`` is the number of function evaluations made so far.

Example:
    >>> import optuna
    >>> space = UnitSpace({"x": optuna.distributions.FloatDistribution(-5, 5)})
    >>> low, width = node_cell(space, 3, 1, 2)
    >>> space.to_params(low + width / 2)
    {'x': 3.3333333333333335}
"""

from __future__ import annotations

import hashlib
import json
import math
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


def h_max(n: int) -> int:
    """Deepest depth a leaf may have and still be expanded after ``n`` evaluations."""
    return math.isqrt(max(n, 1))


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

    def bin_width(self, j: int, u: float) -> float:
        """Width, in the unit cube, of the bin of the discrete value at ``u`` (0 if continuous)."""
        if self.is_categorical[j]:
            return 1.0 / float(self.n_choices[j])
        if not self.is_discrete[j]:
            return 0.0
        scale = _ScaleType(self._scale[j])
        low, high, step = self._bounds[j, 0], self._bounds[j, 1], self._steps[j]
        value = float(_unnormalize_one_param(np.array(u), scale, (low, high), step))
        value = min(max(round((value - low) / step) * step + low, low), high)
        # Log bins differ in width, so measure the bin of this very value.
        edges = _normalize_one_param(
            np.array([value - 0.5 * step, value + 0.5 * step]), scale, (low, high), step
        )
        return float(edges[1] - edges[0])

    def split_dim(self, low: np.ndarray, width: np.ndarray) -> int | None:
        """The split rule: widest splittable side, lowest index on ties; None if terminal."""
        best, best_width = None, 0.0
        for j in range(self.dim):
            w = float(width[j])
            if w <= best_width + 1e-12:
                continue
            if (self.is_discrete[j] or self.is_categorical[j]) and w <= self.bin_width(
                j, float(low[j] + w / 2)
            ) * (1 + 1e-9):
                continue
            best, best_width = j, w
        return best


def node_cell(space: UnitSpace, k: int, h: int, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell ``(low, width)`` of node ``(h, i)``; raises ValueError past a terminal cell."""
    low = np.zeros(space.dim)
    width = np.ones(space.dim)
    for level in range(h):
        digit = (i // k ** (h - 1 - level)) % k
        j = space.split_dim(low, width)
        if j is None:
            raise ValueError(f"Node {h}:{i} lies below a terminal cell at depth {level}.")
        width[j] /= k
        low[j] += digit * width[j]
    return low, width


def node_centre(space: UnitSpace, k: int, node: Node) -> np.ndarray:
    low, width = node_cell(space, k, *node)
    return low + width / 2
