"""Optuna glue shared by SOOSampler and BaMSOOSampler: records, claims, attrs, fallbacks.

The tree lives in storage: each ``sample_relative`` reads the study's trials once, builds the
tree (``_soo_tree``; the part made of finished trials is cached between calls, see
``_FinishedTree``), picks a node, *claims* it by writing the node into the trial's system
attrs, then re-reads the unfinished trials. If another live trial (RUNNING, WAITING or COMPLETE)
holds the same node, this trial yields and picks another node. Writing before reading means
that of two racing workers at least one sees the other, so no node is evaluated twice (if both
see each other both yield, and plan again after a short random pause).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.storages import BaseStorage
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_llm._attrs import (
    DEPTH,
    FALLBACK_REASON,
    NODE,
    SOURCE,
    sampler_name,
    set_system_attrs,
    set_user_attrs,
    tree_attr,
)
from optuna_llm._compat import (
    _process_constraints_after_trial,
    constraint_values,
    stale_trial_callback,
)
from optuna_llm.samplers._partition import (
    ROOT,
    Cell,
    Node,
    UnitSpace,
    node_key,
    parent,
    parse_node_key,
    space_hash,
)
from optuna_llm.samplers._soo_space import unfinished_search_space
from optuna_llm.samplers._soo_tree import Plan, Tree

_STATES = {
    TrialState.COMPLETE: "complete",
    TrialState.RUNNING: "pending",
    TrialState.WAITING: "pending",
    TrialState.FAIL: "fail",
    TrialState.PRUNED: "pruned",
}


def retries_stale_trials(storage: BaseStorage) -> bool:
    """Whether the storage's heartbeat hands each stale (FAIL) trial to a callback, such as
    ``RetryHeartbeatStaleTrialCallback``, which queues a retry holding the same node."""
    return stale_trial_callback(storage) is not None


def tree_value(t: FrozenTrial, sign: float) -> float:
    """The value a COMPLETE trial gives its node, maximising: ``sign * value``; NaN counts as
    ``-inf`` (the worst), and so does an *infeasible* trial (a constraint > 0, from
    ``trial.set_constraint`` or a ``constraints_func``), so it is worse than every feasible one
    whatever its objective value (all infeasible trials tie)."""
    assert t.value is not None
    if any(c > 0.0 for c in constraint_values(t)):
        return -math.inf
    value = sign * float(t.value)
    return -math.inf if math.isnan(value) else value


def draw_seed(seed: int, number: int) -> int:
    """Seed of trial ``number``'s own fallback draws: workers started with the same seed draw
    different points for different trials, and one trial draws the same in every process.

    Example:
        >>> draw_seed(0, 1) != draw_seed(0, 2)
        True
    """
    digest = hashlib.sha256(f"{seed}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def params_key(params: Mapping[str, Any]) -> str:
    """Canonical text of a parameter vector (what a fallback draw claims)."""
    return json.dumps(sorted((k, repr(v)) for k, v in params.items()))


class _SpaceContext:
    """One tree's search space with memoised node maths (pure functions of the node)."""

    def __init__(self, search_space: dict[str, BaseDistribution], k: int, tag: str) -> None:
        self.k = k
        self.space = UnitSpace(search_space)
        self.hash = space_hash(search_space, k, tag)
        self._cells: dict[Node, Cell | None] = {ROOT: self.space.root()}
        self._params: dict[Node, dict[str, Any]] = {}
        self.discrete = bool(any(self.space.n_values(j) for j in range(self.space.dim)))

    def cell(self, node: Node) -> Cell | None:
        """The node's cell (from its parent's, memoised); None below a terminal or empty cell."""
        if node not in self._cells:
            up = self.cell(parent(node, self.k))
            if up is None or up.empty or up.split is None:
                self._cells[node] = None
            else:
                self._cells[node] = self.space.child(up, self.k, node[1] % self.k)
        return self._cells[node]

    def point(self, node: Node) -> np.ndarray:
        """The unit-cube point the node is evaluated at."""
        cell = self.cell(node)
        if cell is None:
            raise ValueError(f"Node {node_key(node)} is not in the tree of this search space.")
        return cell.point

    def params(self, node: Node) -> dict[str, Any]:
        if node not in self._params:
            self._params[node] = self.space.to_params(self.point(node))
        return self._params[node]

    def inherits(self, node: Node) -> bool:
        """Same point as its parent (or an empty cell): takes the parent's value."""
        cell = self.cell(node)
        return cell is None or cell.inherits

    def expandable(self, node: Node) -> bool:
        cell = self.cell(node)
        return cell is not None and not cell.empty and cell.split is not None


@dataclass
class _FinishedTree:
    """The tree of one study's finished trials, kept between calls.

    Finished trials never change, so this is a cache of storage, rebuilt from it by any process
    (DESIGN.md decision 1): each call adds the trials that finished since, copies it and adds
    the running ones on top.
    """

    storage: Callable[[], object | None]  # weak reference: a new storage is a new cache
    tree: Tree
    seen: set[int] = field(default_factory=set)
    known_seen: set[int] = field(default_factory=set)  # see _TreeSampler._known_points
    known: dict[str, float] = field(default_factory=dict)


class _TreeSampler(BaseSampler):
    """Base of SOOSampler/BaMSOOSampler; subclasses set ``_tag`` and may override
    ``_plan`` (how free nodes are decided) and ``_user_attrs``."""

    _tag = "soo"
    _count_estimates = False

    def __init__(
        self,
        *,
        k: int = 3,
        seed: int | None = None,
        independent_sampler: BaseSampler | None = None,
        max_failures: int = 3,
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
    ) -> None:
        if not isinstance(k, int) or isinstance(k, bool) or k < 2:
            raise ValueError(
                f"k must be an integer >= 2 (the number of children per split), got {k!r}."
            )
        if not isinstance(max_failures, int) or max_failures < 1:
            raise ValueError(f"max_failures must be an integer >= 1, got {max_failures!r}.")
        self._k = k
        self._seed = seed
        self._max_failures = max_failures
        self._own_draws = independent_sampler is None
        self._draw_base = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self._independent_sampler = independent_sampler or RandomSampler(seed=seed)
        self._draws: dict[int, BaseSampler] = {}
        self._no_space: set[int] = set()
        self._explained: set[int] = set()
        self._constraints_func = constraints_func
        self._intersection = IntersectionSearchSpace()
        self._contexts: dict[tuple[Any, ...], _SpaceContext] = {}
        self._sourced: set[int] = set()
        self._max_claim_attempts = 20
        self._jitter = random.Random()
        self._finished: dict[tuple[int, str], _FinishedTree] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_finished"] = {}  # a cache, and weak references do not pickle
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def _key_node(self) -> str:
        return tree_attr(self._tag, "node")

    @property
    def _key_space(self) -> str:
        return tree_attr(self._tag, "space")

    @property
    def _key_sweep(self) -> str:
        return tree_attr(self._tag, "sweep")

    @property
    def _key_draw(self) -> str:
        return tree_attr(self._tag, "draw")

    def _drawer(self, trial: FrozenTrial) -> BaseSampler:
        """Who draws the points outside the tree for ``trial``: the given independent sampler,
        or by default a RandomSampler seeded from (seed, trial number) (:func:`draw_seed`)."""
        if not self._own_draws:
            return self._independent_sampler
        if trial._trial_id not in self._draws:
            seed = draw_seed(self._draw_base, trial.number)
            self._draws[trial._trial_id] = RandomSampler(seed=seed)
        return self._draws[trial._trial_id]

    def _check_single_objective(self, study: Study) -> None:
        if len(study.directions) > 1:
            raise ValueError(
                f"{type(self).__name__} optimises a single objective, but this study has "
                f"{len(study.directions)}. Use optuna.samplers.TPESampler or NSGAIISampler for "
                "multi-objective studies."
            )

    def reseed_rng(self) -> None:
        self._independent_sampler.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        self._check_single_objective(study)
        # Before any trial completes, the running trials' distributions (issue 13: otherwise the
        # first N trials at N workers are all random).
        space = self._intersection.calculate(study) or unfinished_search_space(study, trial)
        return {name: dist for name, dist in space.items() if not dist.single()}

    def _context(self, search_space: dict[str, BaseDistribution]) -> _SpaceContext:
        # Distributions are hashable: this skips hashing the JSON of the space on every call.
        probe = tuple(sorted(search_space.items()))
        if probe not in self._contexts:
            digest = space_hash(search_space, self._k, self._tag)
            same = next((c for c in self._contexts.values() if c.hash == digest), None)
            self._contexts[probe] = same or _SpaceContext(search_space, self._k, self._tag)
        return self._contexts[probe]

    # -- records -----------------------------------------------------------------------------

    @staticmethod
    def _sign(study: Study) -> float:
        return 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0

    def _tree(
        self, study: Study, trials: Sequence[FrozenTrial], ctx: _SpaceContext, me: FrozenTrial
    ) -> tuple[Tree, set[int]]:
        """The tree of ``trials`` (``me`` holds no node yet): the cached finished part, updated
        with the trials that finished since the last call, copied, plus the running ones; and
        the ids of the finished trials it holds."""
        sign = self._sign(study)
        storage = study._storage
        with self._lock:
            key = (study._study_id, ctx.hash)
            cached = self._finished.get(key)
            if cached is None or cached.storage() is not storage:
                try:
                    ref: Callable[[], object | None] = weakref.ref(storage)
                except TypeError:  # a storage without weak references: rebuild every call
                    ref = lambda: None  # noqa: E731
                cached = _FinishedTree(ref, self._new_tree(ctx, storage))
                self._finished[key] = cached
            running = []
            seen = cached.seen
            for t in trials:  # in trial-number order
                if t.state is TrialState.RUNNING or t.state is TrialState.WAITING:
                    running.append(t)
                elif t._trial_id not in seen:
                    seen.add(t._trial_id)
                    self._add(cached.tree, t, ctx, sign, own_record=True)
            cached.tree.prune()
            tree = cached.tree.copy()
            known = set(seen)
        for t in running:
            self._add(tree, t, ctx, sign, own_record=t._trial_id != me._trial_id)
        return tree, known

    def _new_tree(self, ctx: _SpaceContext, storage: BaseStorage) -> Tree:
        # With a stale-trial callback, a failed node belongs to that callback: Optuna marks the
        # trial FAIL and only then adds its retry, so a fresh claim in between would evaluate
        # the node a second time. Such a node is given up at its first failure unless the
        # callback's retry (which copies the node's system attrs) evaluates it.
        max_failures = 1 if retries_stale_trials(storage) else self._max_failures
        return Tree(
            k=self._k,
            inherits=ctx.inherits,
            expandable=ctx.expandable,
            max_failures=max_failures,
            count_estimates=self._count_estimates,
            n_params=ctx.space.dim,
        )

    def _add(
        self, tree: Tree, t: FrozenTrial, ctx: _SpaceContext, sign: float, own_record: bool
    ) -> None:
        """Add what trial ``t`` says about the tree (BaMSOO adds its GP estimates too)."""
        record = self._parse(t, ctx, sign) if own_record else None
        if record is not None:
            tree.add_trial(*record)

    def _parse(
        self, t: FrozenTrial, ctx: _SpaceContext, sign: float
    ) -> tuple[Node, str, float | None, int] | None:
        attrs = t.system_attrs
        key = attrs.get(self._key_node)
        if not key or attrs.get(self._key_space) != ctx.hash:
            return None
        value = None
        if t.state == TrialState.COMPLETE:
            value = tree_value(t, sign)
        return parse_node_key(key), _STATES[t.state], value, int(attrs.get(self._key_sweep, 0))

    def _liar(self, tree: Tree) -> float:
        # Pessimistic constant liar: a pending leaf is chosen for expansion only when nothing
        # evaluated at its depth is better, so workers spread instead of stacking up.
        return min(tree.records.values.values(), default=-math.inf)

    def _plan(
        self,
        study: Study,
        trials: Sequence[FrozenTrial],
        tree: Tree,
        ctx: _SpaceContext,
        search_space: dict[str, BaseDistribution],
    ) -> Plan:
        worst = self._liar(tree)
        tree.set_liar(lambda node: worst)
        known = self._known_points(study, trials, ctx)
        return tree.plan(decide=lambda node, n: known.get(params_key(ctx.params(node))))

    def _known_points(
        self, study: Study, trials: Sequence[FrozenTrial], ctx: _SpaceContext
    ) -> dict[str, float]:
        """Tree values of the completed trials that hold no node of this tree (the first
        random trials, enqueued ones, fallback draws), keyed by their params: a node that
        stands for one of these points takes its value instead of evaluating it again."""
        if not ctx.discrete:
            return {}  # a continuous point never equals a node's point exactly
        sign = self._sign(study)
        names = ctx.space.names
        # Finished trials never change: keep what was read (a cache, rebuilt by any process).
        cached = self._finished.get((study._study_id, ctx.hash))
        if cached is None or cached.storage() is not study._storage:
            cached = _FinishedTree(lambda: None, self._new_tree(ctx, study._storage))
        seen, known = cached.known_seen, cached.known
        for t in trials:
            if t.state != TrialState.COMPLETE or t._trial_id in seen:
                continue
            seen.add(t._trial_id)
            if not all(n in t.params for n in names):
                continue
            attrs = t.system_attrs
            if attrs.get(self._key_node) and attrs.get(self._key_space) == ctx.hash:
                continue
            known.setdefault(params_key({n: t.params[n] for n in names}), tree_value(t, sign))
        return known

    def _extra_claim_attrs(self, plan: Plan, written: dict[str, Any]) -> dict[str, Any]:
        """System attrs to write with a claim; ``written`` holds this call's earlier ones."""
        return {}

    def _user_attrs(self, plan: Plan) -> dict[str, Any]:
        assert plan.node is not None
        attrs: dict[str, Any] = {SOURCE: self._tag, NODE: node_key(plan.node), DEPTH: plan.node[0]}
        if plan.reason:
            attrs[FALLBACK_REASON] = plan.reason
        return attrs

    # -- claims ------------------------------------------------------------------------------

    def _conflict(
        self,
        study: Study,
        me: FrozenTrial,
        ctx: _SpaceContext,
        key: str,
        known: set[int] | frozenset[int] = frozenset(),
    ) -> bool:
        """Whether another live trial holds node ``key``. ``known``: trials that were finished
        when the tree was read; the plan already kept away from their nodes."""
        live = study._storage.get_all_trials(
            study._study_id,
            deepcopy=False,
            states=(TrialState.RUNNING, TrialState.WAITING, TrialState.COMPLETE),
        )
        key_node, key_space = self._key_node, self._key_space
        for t in live:
            if t._trial_id == me._trial_id or t._trial_id in known:
                continue
            attrs = t.system_attrs
            if attrs.get(key_node) != key or attrs.get(key_space) != ctx.hash:
                continue
            # Whoever sees another holder yields. Both wrote before reading, so at least one
            # sees the other: never two evaluations (at worst both yield and plan again).
            return True
        return False

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._check_single_objective(study)
        if "fixed_params" in trial.system_attrs:
            # Enqueued trials keep the user's params: they get no node (BaMSOO's GP still
            # learns from them once they complete).
            return {}
        if not search_space:
            self._no_space.add(trial._trial_id)  # no other trial has suggested anything yet
            return {}
        ctx = self._context(search_space)
        held = trial.system_attrs.get(self._key_node)
        if (
            held
            and trial.system_attrs.get(self._key_space) == ctx.hash
            and not self._conflict(study, trial, ctx, held)
        ):
            # A heartbeat retry (or a repeated call) keeps the node it already holds, unless
            # another live trial holds it: the killed trial may have written its claim after
            # that trial checked, and died before checking it itself; the copy then yields.
            node = parse_node_key(held)
            if SOURCE not in trial.user_attrs:
                # The killed (or outage-failed) trial wrote its claim but not its record: the
                # retry copied the node without a ``source``, so it writes the record itself.
                plan = Plan(node, int(trial.system_attrs.get(self._key_sweep, 0)), {})
                set_user_attrs(study, trial, self._user_attrs(plan))
            self._sourced.add(trial._trial_id)
            return dict(ctx.params(node))

        yielded: set[Node] = set()
        written: dict[str, Any] = {}
        claimed = False
        for _ in range(self._max_claim_attempts):
            trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
            tree, known = self._tree(study, trials, ctx, trial)
            for node in yielded:
                tree.mark_pending(node)
            plan = self._plan(study, trials, tree, ctx, search_space)
            if plan.node is None:
                break
            key = node_key(plan.node)
            set_system_attrs(
                study,
                trial,
                {
                    self._key_space: ctx.hash,
                    self._key_sweep: plan.sweep,
                    **self._extra_claim_attrs(plan, written),
                    self._key_node: key,
                },
            )
            claimed = True
            if not self._conflict(study, trial, ctx, key, known):
                set_user_attrs(study, trial, self._user_attrs(plan))
                self._sourced.add(trial._trial_id)
                return dict(ctx.params(plan.node))
            yielded.add(plan.node)
            # Jitter so that two workers that yielded together do not collide again.
            time.sleep(self._jitter.uniform(0.0, 0.02))
        if claimed:
            set_system_attrs(study, trial, {self._key_node: ""})
        # No node left to evaluate (a small discrete space is exhausted, or every leaf is dead):
        # the independent sampler proposes the point instead, claimed like a node.
        reason = (
            "no node of the tree is left to evaluate (every leaf is evaluated, terminal or "
            "given up after failures)"
        )
        return self._claimed_draw(study, trial, search_space, reason)

    def _claimed_draw(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        reason: str,
    ) -> dict[str, Any]:
        """A fallback point, claimed: written to the trial's system attrs, then checked against
        the other live trials' claims and every completed trial's params; redrawn on a
        conflict (after ``_max_claim_attempts`` draws, kept: the space is then exhausted)."""
        self._sourced.add(trial._trial_id)
        drawer = self._drawer(trial)
        name = sampler_name(drawer)
        params: dict[str, Any] = {}
        repeated = False
        for _ in range(self._max_claim_attempts):
            params = {
                param: drawer.sample_independent(study, trial, param, dist)
                for param, dist in search_space.items()
            }
            key = params_key(params)
            set_system_attrs(study, trial, {self._key_draw: key})
            if not self._draw_taken(study, trial, key, list(search_space)):
                break
        else:
            repeated = True
        if repeated:
            reason += f"; every one of {self._max_claim_attempts} draws repeats a taken point"
        self._explained.add(trial._trial_id)
        set_user_attrs(study, trial, {SOURCE: f"fallback:{name}", FALLBACK_REASON: reason})
        return params

    def _draw_taken(self, study: Study, me: FrozenTrial, key: str, names: list[str]) -> bool:
        """Whether another live trial claimed the point ``key`` or a completed one has it (in
        the parameters ``names``)."""
        live = study._storage.get_all_trials(
            study._study_id,
            deepcopy=False,
            states=(TrialState.RUNNING, TrialState.WAITING, TrialState.COMPLETE),
        )
        for t in live:
            if t._trial_id == me._trial_id:
                continue
            if t.system_attrs.get(self._key_draw) == key:
                return True
            if t.state == TrialState.COMPLETE and all(n in t.params for n in names):
                if params_key({n: t.params[n] for n in names}) == key:
                    return True
        return False

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        self._check_single_objective(study)
        drawer = self._drawer(trial)
        if trial._trial_id in self._explained or "fixed_params" in trial.system_attrs:
            pass
        elif trial._trial_id in self._no_space:
            reason = (
                "no trial had completed or suggested parameters yet, so the tree's search "
                "space is unknown"
            )
            self._explain(study, trial, drawer, reason)
        else:
            reason = (
                f"parameter {param_name!r} is outside the tree's search space (a conditional "
                f"or newly added parameter): drawn by {sampler_name(drawer)}"
            )
            self._explain(study, trial, drawer, reason)
        return drawer.sample_independent(study, trial, param_name, param_distribution)

    def _explain(self, study: Study, trial: FrozenTrial, drawer: BaseSampler, reason: str) -> None:
        """Say once per trial why (part of) it was drawn outside the tree; ``source`` names the
        drawer unless the tree chose the trial's other parameters."""
        self._explained.add(trial._trial_id)
        attrs: dict[str, Any] = {FALLBACK_REASON: reason}
        if trial._trial_id not in self._sourced and SOURCE not in trial.user_attrs:
            attrs[SOURCE] = f"fallback:{sampler_name(drawer)}"
        self._sourced.add(trial._trial_id)
        set_user_attrs(study, trial, attrs)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._independent_sampler.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        if self._constraints_func is not None:
            _process_constraints_after_trial(self._constraints_func, study, trial, state)
        self._sourced.discard(trial._trial_id)
        self._no_space.discard(trial._trial_id)
        self._explained.discard(trial._trial_id)
        drawer = self._draws.pop(trial._trial_id, None)
        if drawer is not None:
            drawer.after_trial(study, trial, state, values)
        self._independent_sampler.after_trial(study, trial, state, values)
