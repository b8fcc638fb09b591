"""The SOO tree built from trial records, and the SOO sweep that picks the next node.

Plain functions and data, no Optuna glue: ``SOOSampler`` and ``BaMSOOSampler`` add the records
of trials to a :class:`Tree` and call :meth:`Tree.plan`.

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
depths ``0..min(depth(T), h_max(n))`` (``h_max`` at least the number of parameters; all depths
when nothing within ``h_max`` is left to expand) expanding, at each depth, the best leaf if it
is at least as good as everything expanded earlier in the sweep. The sweep's position is the
expansion with the largest ``(sweep, depth)``, so a sweep interrupted between two calls (or two
workers) resumes where it stopped, and one worker replays sequential SOO exactly.

The tree is *incremental*: records can be added in any order and give the same tree, so the
samplers keep the part built from finished trials (which never change) and, at each call, copy
it and add the running trials on top (:meth:`Tree.copy` is a few shallow container copies).
The per-depth heaps of leaves and the heap of free nodes are validated lazily: an entry whose
node has since been expanded or changed value is dropped when it reaches the top.
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
    estimate_owners: dict[Node, float] = field(default_factory=dict)
    sweeps: dict[Node, int] = field(default_factory=dict)
    n_evaluations: int = 0

    def add_trial(self, node: Node, state: str, value: float | None, sweep: int) -> None:
        """``state`` is ``complete``, ``pending``, ``fail`` or ``pruned``.

        Two COMPLETE trials never share a node (claims prevent it); if storage held two
        anyway, callers add finished trials in trial-number order and the first one counts.
        """
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

    def add_estimate(self, node: Node, value: float, sweep: int, owner: float) -> bool:
        """A GP estimate written by trial number ``owner``; the lowest owner's value wins
        whatever the order of the calls, so racing workers agree. True if it changed."""
        self.sweeps[node] = max(self.sweeps.get(node, -1), sweep)
        if node not in self.estimates or owner < self.estimate_owners[node]:
            self.estimates[node] = value
            self.estimate_owners[node] = owner
            return True
        return False

    def copy(self) -> Records:
        return Records(
            dict(self.values),
            set(self.pending),
            dict(self.failures),
            set(self.pruned),
            dict(self.estimates),
            dict(self.estimate_owners),
            dict(self.sweeps),
            self.n_evaluations,
        )


@dataclass
class Plan:
    """Result of :meth:`Tree.plan`: the node to evaluate (or None) and what it decided."""

    node: Node | None
    sweep: int
    estimates: dict[Node, tuple[float, int]]
    reason: str = ""  # why the plan fell back on something simpler (BaMSOO: no GP)


class Tree:
    """The SOO tree at one instant, built from records added with :meth:`add_trial` and
    :meth:`add_estimate` (in any order).

    Example:
        >>> tree = Tree(k=3, inherits=lambda n: n[1] % 3 == 1, expandable=lambda n: True)
        >>> tree.add_trial((0, 0), "complete", 1.0, 0)
        >>> tree.plan(decide=lambda n, N: None).node
        (1, 0)
    """

    def __init__(
        self,
        *,
        k: int,
        inherits: Callable[[Node], bool],
        expandable: Callable[[Node], bool],
        max_failures: int = 3,
        count_estimates: bool = False,
        n_params: int = 0,
    ) -> None:
        self.k = k
        self.n_params = n_params  # the depth limit is at least this (see h_max)
        self._inherits = inherits
        self._expandable = expandable
        self._max_failures = max_failures
        self._count_estimates = count_estimates
        self.records = Records()
        self.liar: Callable[[Node], float] = lambda node: -math.inf
        self._liar_cache: dict[Node, float] = {}
        self.expanded: dict[Node, int] = {}  # node -> sweep of its expansion (-1: unknown)
        self._top: tuple[int, int] = (-2, -1)  # largest (sweep, depth) of an expansion
        self._at_top: list[Node] = []  # the expanded nodes at ``_top``
        self._cursor: tuple[int, int, float] | None = None
        self.free: list[tuple[int, int, int]] = []  # (sweep, depth, index), lazily validated
        self._by_depth: dict[int, list[tuple[float, int]]] = {}  # depth -> heap of (-g, i)
        self.max_depth = 0
        self._refresh(ROOT)

    def copy(self) -> Tree:
        """An independent copy (the per-call overlay of the cached finished tree)."""
        new = Tree.__new__(Tree)
        new.__dict__.update(self.__dict__)
        new.records = self.records.copy()
        new._liar_cache = {}
        new.expanded = dict(self.expanded)
        new._at_top = list(self._at_top)
        new.free = list(self.free)
        new._by_depth = {h: list(heap) for h, heap in self._by_depth.items()}
        return new

    # -- adding records ----------------------------------------------------------------------

    def add_trial(self, node: Node, state: str, value: float | None, sweep: int) -> None:
        self.records.add_trial(node, state, value, sweep)
        self._touch(node, sweep)

    def add_estimate(self, node: Node, value: float, sweep: int, owner: float) -> None:
        self.records.add_estimate(node, value, sweep, owner)
        self._touch(node, sweep)

    def set_liar(self, liar: Callable[[Node], float]) -> None:
        """The value of pending nodes (set once every record is in: it may depend on them)."""
        self.liar = liar
        self._liar_cache = {}
        for node in self.records.pending:
            self._refresh(node)

    def mark_pending(self, node: Node) -> None:
        """Treat ``node`` as taken (a claim this call yielded) without counting it."""
        self.records.pending.add(node)
        self._liar_cache.pop(node, None)
        self._refresh(node)

    def _touch(self, node: Node, sweep: int) -> None:
        self._liar_cache.pop(node, None)
        if node != ROOT:
            self._mark_expanded(parent(node, self.k), sweep)
        self._refresh(node)

    def _mark_expanded(self, node: Node, sweep: int) -> None:
        old = self.expanded.get(node)
        if old is not None and old >= sweep:
            return
        self.expanded[node] = sweep
        key = (sweep, node[0])
        if key > self._top:
            self._top, self._at_top = key, [node]
        elif key == self._top:
            self._at_top.append(node)
        if old is not None:
            return  # only the sweep changed: free entries re-key themselves when popped
        if node != ROOT:
            self._mark_expanded(parent(node, self.k), -1)  # ancestors are expanded too
        self.max_depth = max(self.max_depth, node[0] + 1)
        for child in children(node, self.k):
            self._refresh(child)
        self._refresh(node)

    def _refresh(self, node: Node) -> None:
        """(Re)queue ``node`` for its current value; entries for older values go stale."""
        dead = self.is_dead(node)
        value = self.g(node)
        needs_value = value is None and not dead and (node == ROOT or not self._inherits(node))
        if needs_value:
            heapq.heappush(self.free, (self._free_key(node), node[0], node[1]))
        if node in self.expanded:
            # Inherited values follow their parent's.
            for child in children(node, self.k):
                if self._inherits(child):
                    self._refresh(child)
        elif value is not None and not dead:
            heapq.heappush(self._by_depth.setdefault(node[0], []), (-value, node[1]))

    def _free_key(self, node: Node) -> int:
        return 0 if node == ROOT else self.expanded.get(parent(node, self.k), -1)

    def prune(self) -> None:
        """Drop heap tops that no record added later can make valid again (cached trees)."""
        while self.free and self._free_is_stale(self.free[0]):
            heapq.heappop(self.free)
        for h, heap in self._by_depth.items():
            while heap and self._unexpandable((h, heap[0][1])):
                heapq.heappop(heap)

    def _unexpandable(self, node: Node) -> bool:
        return node in self.expanded or self.is_dead(node) or not self._expandable(node)

    def _free_is_stale(self, entry: tuple[int, int, int]) -> bool:
        node = (entry[1], entry[2])
        return self.is_dead(node) or self.g(node) is not None

    # -- node values -------------------------------------------------------------------------

    def is_dead(self, node: Node) -> bool:
        r = self.records
        return node not in r.values and (
            node in r.pruned or r.failures.get(node, 0) >= self._max_failures
        )

    def g(self, node: Node) -> float | None:
        """The value SOO uses for ``node``: real, inherited, liar or estimated; None if free."""
        r = self.records
        while True:
            if node in r.values:
                return r.values[node]
            if node != ROOT and self._inherits(node):
                node = parent(node, self.k)
                continue
            if node in r.pending:
                if node not in self._liar_cache:
                    self._liar_cache[node] = self.liar(node)
                return self._liar_cache[node]
            return r.estimates.get(node)

    # -- the sweep ---------------------------------------------------------------------------

    def cursor(self) -> tuple[int, int, float]:
        """``(sweep, depth, v_max)`` of the last expansion (``(0, -1, -inf)`` before any)."""
        if self._cursor is not None:
            return self._cursor
        if not self.expanded:
            return 0, -1, -math.inf
        sweep, depth = self._top
        values = [self.g(n) for n in self._at_top]
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
            neg_value, i = heap[0]
            node = (depth, i)
            if self._unexpandable(node) or self.g(node) != -neg_value:
                heapq.heappop(heap)
                continue
            return node
        return None

    def _expand(self, node: Node, sweep: int) -> None:
        value = self.g(node)
        self._mark_expanded(node, sweep)
        self._cursor = (sweep, node[0], -math.inf if value is None else value)

    def _advance_sweep(self) -> bool:
        limit = min(self.max_depth, h_max(self.n_for_depth_limit(), self.n_params))
        # Past h_max only when nothing within it can be expanded (in a small discrete space
        # the shallow cells are soon exhausted): the deeper leaves are the points left.
        for depth_limit in dict.fromkeys((limit, self.max_depth)):
            sweep, depth, v_max = self.cursor()
            for _ in range(2):  # finish the current sweep, else start the next one
                for h in range(depth + 1, depth_limit + 1):
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

    def _next_free(self) -> tuple[int, Node] | None:
        while self.free:
            entry = heapq.heappop(self.free)
            if self._free_is_stale(entry):
                continue
            node = (entry[1], entry[2])
            key = self._free_key(node)
            if key != entry[0]:  # its parent's sweep grew since it was queued
                heapq.heappush(self.free, (key, node[0], node[1]))
                continue
            return key, node
        return None

    def plan(self, decide: Callable[[Node, int], float | None], max_steps: int = 10_000) -> Plan:
        """Next node to evaluate.

        ``decide(node, N)`` returns None to evaluate a free node, or a value to take instead
        (BaMSOO's GP estimate); ``N`` counts the nodes decided so far, this one included.
        Returns ``Plan(node=None)`` when no leaf within ``h_max`` can be expanded. Plans on a
        copy if the tree must stay as it is: planning expands nodes and records estimates.
        """
        r = self.records
        estimates: dict[Node, tuple[float, int]] = {}
        n_decided = len(r.values) + len(r.pending) + len(r.estimates)
        for _ in range(max_steps):
            while (item := self._next_free()) is not None:
                sweep, node = item
                estimate = decide(node, n_decided + 1)
                if estimate is None:
                    return Plan(node, sweep, estimates)
                n_decided += 1
                self.add_estimate(node, estimate, sweep, math.inf)
                estimates[node] = (estimate, sweep)
            if not self._advance_sweep():
                break
        return Plan(None, 0, estimates)
