"""The SOO tree rebuilt from trial records, and the SOO sweep that picks the next node.

Plain functions and data, no Optuna glue: ``SOOSampler`` and ``BaMSOOSampler`` turn trials into
:class:`Records`, build a :class:`Tree`, and call :meth:`Tree.plan`.

Values are in the *maximising* convention (a minimised objective is negated first).

How the tree follows from the records (nothing else is stored):

* a node is *expanded* iff some descendant has a record (a trial, or a GP estimate);
* the tree's nodes are the root and the children of expanded nodes; its leaves are the nodes
  that are not expanded;
* a child whose centre stands for the same params as its parent's (the middle child when ``k``
  is odd, or a discrete collapse) *inherits* the parent's value without an evaluation;
* a leaf with a COMPLETE trial has that value; with a RUNNING/WAITING trial it is *pending* and
  takes a liar value; with a GP estimate it takes the estimate; a leaf with only FAIL trials is
  free again (up to ``max_failures`` failures, then, like a PRUNED one, it is *dead*: never
  re-evaluated nor expanded); a leaf with no record at all is *free*: an expansion is under way
  and the leaf still needs its evaluation.

Every record also carries the *sweep* number of the expansion that created it. SOO sweeps the
depths ``0..min(depth(T), h_max(n))`` expanding, at each depth, the best leaf if it is at least
as good as everything expanded earlier in the sweep. The sweep's position is the expansion with
the largest ``(sweep, depth)``, so a sweep interrupted between two calls (or two workers)
resumes where it stopped, and one worker replays sequential SOO exactly.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from optuna_llm.samplers._partition import ROOT, Node, children, h_max, parent


@dataclass
class Records:
    """What storage says about each node of one tree."""

    values: dict[Node, float] = field(default_factory=dict)
    pending: set[Node] = field(default_factory=set)
    failures: dict[Node, int] = field(default_factory=dict)
    pruned: set[Node] = field(default_factory=set)
    estimates: dict[Node, float] = field(default_factory=dict)
    sweeps: dict[Node, int] = field(default_factory=dict)
    n_evaluations: int = 0

    def add_trial(self, node: Node, state: str, value: float | None, sweep: int) -> None:
        """``state`` is ``complete``, ``pending``, ``fail`` or ``pruned``."""
        self.sweeps[node] = max(self.sweeps.get(node, -1), sweep)
        if state == "complete":
            assert value is not None
            self.values.setdefault(node, value)
            self.n_evaluations += 1
        elif state == "pending":
            self.pending.add(node)
            self.n_evaluations += 1
        elif state == "fail":
            self.failures[node] = self.failures.get(node, 0) + 1
        else:
            self.pruned.add(node)

    def add_estimate(self, node: Node, value: float, sweep: int) -> None:
        # Callers add estimates in trial-number order: the first writer wins, so a node
        # estimated by two racing workers gets one value everywhere.
        if node not in self.estimates:
            self.estimates[node] = value
            self.sweeps[node] = max(self.sweeps.get(node, -1), sweep)


@dataclass
class Plan:
    """Result of :meth:`Tree.plan`: the node to evaluate (or None) and what it decided."""

    node: Node | None
    sweep: int
    estimates: dict[Node, tuple[float, int]]


class Tree:
    """The SOO tree at one instant, rebuilt from :class:`Records`.

    Example:
        >>> records = Records()
        >>> records.add_trial((0, 0), "complete", 1.0, 0)
        >>> tree = Tree(records, k=3, inherits=lambda n: n[1] % 3 == 1,
        ...             expandable=lambda n: True, liar=lambda n: -math.inf)
        >>> tree.plan(decide=lambda n, N: None).node
        (1, 0)
    """

    def __init__(
        self,
        records: Records,
        *,
        k: int,
        inherits: Callable[[Node], bool],
        expandable: Callable[[Node], bool],
        liar: Callable[[Node], float],
        max_failures: int = 3,
        count_estimates: bool = False,
    ) -> None:
        self.k = k
        self._count_estimates = count_estimates
        self._cursor: tuple[int, int, float] | None = None
        self.records = records
        self._inherits = inherits
        self._expandable = expandable
        self._liar = liar
        self._max_failures = max_failures
        self.expanded: dict[Node, int] = {}
        for node, sweep in records.sweeps.items():
            if node != ROOT:
                p = parent(node, k)
                self.expanded[p] = max(self.expanded.get(p, -1), sweep)
        for node in list(self.expanded):
            while node != ROOT:
                node = parent(node, k)
                if node in self.expanded:
                    break
                self.expanded[node] = -1
        self._g: dict[Node, float | None] = {}
        self.free: list[tuple[int, int, int]] = []  # (sweep, depth, index)
        self._by_depth: dict[int, list[tuple[float, int]]] = {}  # depth -> heap of (-g, i)
        self.max_depth = 0
        for p, sweep in self.expanded.items():
            for child in children(p, k):
                if child not in self.expanded:
                    self._add_leaf(child, sweep)
            # An expanded node whose own evaluation was freed (FAIL, or its claimant yielded
            # after others had expanded it speculatively) still needs a value.
            if self.g(p) is None:
                self._classify(p, 0 if p == ROOT else self.expanded.get(parent(p, k), -1))
        if ROOT not in self.expanded:
            self._add_leaf(ROOT, 0)

    # -- node values -------------------------------------------------------------------------

    def is_dead(self, node: Node) -> bool:
        r = self.records
        return node not in r.values and (
            node in r.pruned or r.failures.get(node, 0) >= self._max_failures
        )

    def g(self, node: Node) -> float | None:
        """The value SOO uses for ``node``: real, estimated, inherited or liar; None if free."""
        if node in self._g:
            return self._g[node]
        r = self.records
        value: float | None
        if node in r.values:
            value = r.values[node]
        elif node != ROOT and self._inherits(node):
            value = self.g(parent(node, self.k))
        elif node in r.pending:
            value = self._liar(node)
        elif node in r.estimates:
            value = r.estimates[node]
        else:
            value = None
        self._g[node] = value
        return value

    def _add_leaf(self, node: Node, sweep: int) -> None:
        self.max_depth = max(self.max_depth, node[0])
        value = self._classify(node, sweep)
        if value is not None:
            heapq.heappush(self._by_depth.setdefault(node[0], []), (-value, node[1]))

    def _classify(self, node: Node, sweep: int) -> float | None:
        """Queue ``node`` as free if it still needs a value; return its value otherwise."""
        if self.is_dead(node):
            return None
        value = self.g(node)
        # An inherited node without value waits for its parent's evaluation.
        if value is None and (node == ROOT or not self._inherits(node)):
            heapq.heappush(self.free, (sweep, node[0], node[1]))
        return value

    def _expand(self, node: Node, sweep: int) -> None:
        self.expanded[node] = sweep
        value = self.g(node)
        self._cursor = (sweep, node[0], -math.inf if value is None else value)
        for child in children(node, self.k):
            self._add_leaf(child, sweep)

    # -- the sweep ---------------------------------------------------------------------------

    def cursor(self) -> tuple[int, int, float]:
        """``(sweep, depth, v_max)`` of the last expansion (``(0, -1, -inf)`` before any)."""
        if self._cursor is not None:
            return self._cursor
        if not self.expanded:
            return 0, -1, -math.inf
        sweep, depth = max((s, n[0]) for n, s in self.expanded.items())
        values = [
            self.g(n) for n, s in self.expanded.items() if s == sweep and n[0] == depth
        ]
        v_max = max((v for v in values if v is not None), default=-math.inf)
        self._cursor = (sweep, depth, v_max)
        return self._cursor

    def n_for_depth_limit(self) -> int:
        """``n`` of ``h_max(n)``: evaluations, plus GP estimates when ``count_estimates``."""
        n = self.records.n_evaluations
        return n + len(self.records.estimates) if self._count_estimates else n

    def _best_leaf(self, depth: int) -> Node | None:
        heap = self._by_depth.get(depth, [])
        while heap:
            _, i = heap[0]
            node = (depth, i)
            if node in self.expanded or not self._expandable(node):
                heapq.heappop(heap)
                continue
            return node
        return None

    def _advance_sweep(self) -> bool:
        sweep, depth, v_max = self.cursor()
        for _ in range(2):  # finish the current sweep, else start the next one
            limit = min(self.max_depth, h_max(self.n_for_depth_limit()))
            for h in range(depth + 1, limit + 1):
                best = self._best_leaf(h)
                if best is None:
                    continue
                value = self.g(best)
                assert value is not None
                if value >= v_max:
                    self._expand(best, sweep)
                    return True
            sweep, depth, v_max = sweep + 1, -1, -math.inf
        return False

    def plan(self, decide: Callable[[Node, int], float | None], max_steps: int = 10_000) -> Plan:
        """Next node to evaluate.

        ``decide(node, N)`` returns None to evaluate a free node, or a value to take instead
        (BaMSOO's GP estimate); ``N`` counts the nodes decided so far, this one included.
        Returns ``Plan(node=None)`` when no leaf within ``h_max`` can be expanded.
        """
        r = self.records
        estimates: dict[Node, tuple[float, int]] = {}
        n_decided = len(r.values) + len(r.pending) + len(r.estimates)
        for _ in range(max_steps):
            while self.free:
                sweep, h, i = heapq.heappop(self.free)
                node = (h, i)
                estimate = decide(node, n_decided + 1)
                if estimate is None:
                    return Plan(node, sweep, estimates)
                n_decided += 1
                r.estimates[node] = estimate
                r.sweeps[node] = sweep
                estimates[node] = (estimate, sweep)
                self._g.pop(node, None)
                heapq.heappush(self._by_depth.setdefault(h, []), (-estimate, i))
            if not self._advance_sweep():
                break
        return Plan(None, 0, estimates)
