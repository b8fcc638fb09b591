"""BaMSOOSampler: Bayesian Multi-Scale Optimistic Optimization (Wang et al. 2014)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from optuna_llm._attrs import (
    DEPTH,
    EVALUATION,
    FALLBACK_REASON,
    GP_ESTIMATED,
    NODE,
    SOURCE,
    tree_attr,
)
from optuna_llm.samplers._gp_model import GPModel as _GPModel
from optuna_llm.samplers._partition import Node, node_key, parse_node_key
from optuna_llm.samplers._soo_base import _SpaceContext, _TreeSampler, params_key, tree_value
from optuna_llm.samplers._soo_tree import Plan, Tree

if TYPE_CHECKING:
    from optuna_llm._compat import GPRegressor


def confidence_width(n_decided: int, eta: float, scale: float = 1.0) -> float:
    """``scale * B_N`` with ``B_N = sqrt(2 log(pi^2 N^2 / (6 eta)))`` (Wang et al. 2014).

    Example:
        >>> round(confidence_width(50, 0.05), 2), round(confidence_width(50, 0.05, 0.5), 2)
        (4.76, 2.38)
    """
    return scale * math.sqrt(2.0 * math.log(math.pi**2 * n_decided**2 / (6.0 * eta)))


def finite_targets(y: np.ndarray) -> np.ndarray | None:
    """GP targets from tree values (maximising): ``-inf`` (infeasible, NaN or a minimised
    ``inf``) becomes the worst finite value and ``+inf`` the best, so the GP learns that the
    point is as bad (good) as anything seen without its fit blowing up; None if no value is
    finite.

    Example:
        >>> finite_targets(np.array([1.0, -np.inf, 3.0])).tolist()
        [1.0, 1.0, 3.0]
    """
    finite = y[np.isfinite(y)]
    if len(finite) == 0:
        return None
    return np.clip(np.nan_to_num(y, nan=finite.min()), finite.min(), finite.max())


def gp_subset(y: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the points the GP is fitted on when there are more than ``limit``.

    ``y`` is in trial order (maximising). Keeps the ``limit // 2`` best points (where the tree
    goes deep, and the best value the UCB test compares with) and fills up with the most
    recent others (where the sweep is now). The fit costs O(n^3) per L-BFGS step, so this
    bounds BaMSOO's time per call however long the study runs.
    """
    n = len(y)
    if n <= limit:
        return np.arange(n)
    best = np.argsort(-y, kind="stable")[: limit // 2]
    rest = np.setdiff1d(np.arange(n), best)[-(limit - len(best)) :]
    return np.sort(np.concatenate([best, rest]))


class _NoGP(Exception):
    """Why BaMSOO decides this call without a GP (it then evaluates nodes as SOO does)."""


class BaMSOOSampler(_TreeSampler):
    """Bayesian Multi-Scale Optimistic Optimization, safe for many workers on one study.

    BaMSOO (Wang, Shakibi, Jin and de Freitas, 2014) runs the SOO sweep of
    :class:`~optuna_llm.samplers.SOOSampler` (same tree, split rule, ``h_max(n) =
    max(floor(sqrt(n)), number of parameters)`` with ``n`` the real evaluations plus the
    GP-estimated nodes, same claims and recovery in shared studies), but a GP over all
    completed trials decides which new nodes deserve a real evaluation: a node is evaluated
    only if its upper confidence bound
    ``UCB = mu + B_N sigma`` reaches the best value seen so far; otherwise it takes its lower
    bound ``LCB = mu - B_N sigma`` as a *GP-estimated* value and the tree goes on without an
    evaluation. ``B_N = width_scale * sqrt(2 log(pi^2 N^2 / (6 eta)))`` where ``N`` counts the
    nodes whose value has been decided so far (evaluated, running or GP-estimated), the node
    being decided included; Wang et al.'s width is ``width_scale=1``.

    * The GP is Optuna's own (``optuna._gp``: Matern 5/2 with ARD, its priors and marginal
      likelihood fit), on the same normalisation GPSampler uses; every completed trial whose
      params lie in the search space feeds it, with or without a node (enqueued, seeded), up
      to ``max_gp_points`` (then the best half and the most recent others).
    * GP-estimated nodes are written, keyed by node, into the system attrs of the trial whose
      call decided them (and shown in its ``gp_estimated`` user attr); when two workers
      estimate the same node, the lower trial number's value is used everywhere.
    * A running trial's node takes its LCB as a liar value; a worker never waits.
    * Until ``n_startup_trials`` trials have completed, every node is evaluated (no GP).
    * Non-finite values and constraints: the tree takes values as SOOSampler does (NaN and
      infeasible trials are worse than every feasible one); the GP is fitted on them clipped
      to the finite range seen (:func:`finite_targets`: ``-inf`` as the worst finite value).
      If no value is finite yet, or the GP fit fails, the call evaluates nodes as plain SOO
      and says so in the trial's ``fallback_reason`` user attr.

    Args:
        k: Number of children of a split (>= 2).
        eta: Confidence parameter in ``(0, 1)`` of ``B_N``; smaller is more cautious (more
            real evaluations).
        width_scale: Factor (> 0) on ``B_N`` in both bounds. The theoretical ``B_N`` is wide
            (4.8 at ``N = 50``), so nearly every node's UCB reaches the best value and few
            evaluations are skipped; Srinivas et al. (2010) scale their ``beta`` by 1/5 in
            practice for the same reason. Below 1 the GP skips more nodes (and trusts its
            estimates more). The default 0.5 (near Srinivas et al.'s ``1/sqrt(5)`` on the
            width) beat Wang et al.'s 1 on the tables in both encodings and on BBOB 5-D, out
            of sample too (docs/soo.md, "BaMSOO's confidence width").
        seed: Seed of the independent sampler. The tree and GP decisions are deterministic.
        independent_sampler: Sampler for parameters outside the relative search space.
        max_failures: Failures after which a node is given up rather than retried.
        n_startup_trials: Completed trials needed before the GP is used.
        max_gp_points: Most points the GP is fitted on: past it, the ``max_gp_points // 2``
            best completed trials and the most recent others (see :func:`gp_subset`). This
            bounds the time per call (the kernel fit is cubic in the points).
        constraints_func: As Optuna's samplers take it (see SOOSampler).

    Example:
        >>> import optuna
        >>> from optuna_llm.samplers import BaMSOOSampler
        >>> study = optuna.create_study(sampler=BaMSOOSampler(seed=0))
        >>> study.optimize(lambda t: (t.suggest_float("x", -3, 3) - 1) ** 2, n_trials=15)
        >>> study.best_value < 0.1
        True
    """

    _tag = "bamsoo"
    _count_estimates = True

    def __init__(
        self,
        *,
        k: int = 3,
        eta: float = 0.05,
        width_scale: float = 0.5,
        seed: int | None = None,
        independent_sampler: BaseSampler | None = None,
        max_failures: int = 3,
        n_startup_trials: int = 3,
        max_gp_points: int = 300,
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
    ) -> None:
        super().__init__(
            k=k,
            seed=seed,
            independent_sampler=independent_sampler,
            max_failures=max_failures,
            constraints_func=constraints_func,
        )
        if not (isinstance(eta, (int, float)) and 0.0 < eta < 1.0):
            raise ValueError(f"eta must be a number in (0, 1), got {eta!r} (try eta=0.05).")
        if not (
            isinstance(width_scale, (int, float))
            and not isinstance(width_scale, bool)
            and 0.0 < width_scale < math.inf
        ):
            raise ValueError(
                f"width_scale must be a finite number > 0, got {width_scale!r} (1 is Wang et "
                "al.'s width; the default is 0.5)."
            )
        if not isinstance(n_startup_trials, int) or n_startup_trials < 2:
            raise ValueError(
                f"n_startup_trials must be an integer >= 2 (a GP needs data), got "
                f"{n_startup_trials!r}."
            )
        if not isinstance(max_gp_points, int) or max_gp_points < n_startup_trials:
            raise ValueError(
                f"max_gp_points must be an integer >= n_startup_trials ({n_startup_trials}), "
                f"got {max_gp_points!r} (try the default, 300)."
            )
        self._max_gp_points = max_gp_points
        self._eta = float(eta)
        self._width_scale = float(width_scale)
        self._n_startup_trials = n_startup_trials
        self._gpr_cache: GPRegressor | None = None

    @property
    def _key_estimates(self) -> str:
        return tree_attr(self._tag, "est")

    def _add(
        self, tree: Tree, t: FrozenTrial, ctx: _SpaceContext, sign: float, own_record: bool
    ) -> None:
        super()._add(tree, t, ctx, sign, own_record)
        attrs = t.system_attrs
        if attrs.get(self._key_space) != ctx.hash:
            return
        # The lowest trial number's estimate of a node wins, in whatever order trials come.
        for key, (value, sweep) in attrs.get(self._key_estimates, {}).items():
            tree.add_estimate(parse_node_key(key), float(value), int(sweep), t.number)

    def _fit(
        self, study: Study, trials: Sequence[FrozenTrial], ctx: _SpaceContext
    ) -> _GPModel | None:
        space = ctx.space.search_space
        usable = [
            t
            for t in trials
            if t.state == TrialState.COMPLETE
            and all(
                name in t.params and dist._contains(dist.to_internal_repr(t.params[name]))
                for name, dist in space.items()
            )
        ]
        if len(usable) < self._n_startup_trials:
            return None
        sign = self._sign(study)
        targets = finite_targets(np.array([tree_value(t, sign) for t in usable], dtype=float))
        if targets is None:
            raise _NoGP("no completed trial has a finite feasible value yet")
        y = targets
        keep = gp_subset(y, self._max_gp_points)
        X = ctx.space.gp_space.get_normalized_params([usable[j] for j in keep])
        y = y[keep]
        cache = self._gpr_cache
        if cache is not None and len(cache.inverse_squared_lengthscales) != ctx.space.dim:
            cache = None
        try:
            model = _GPModel(X, y, ctx.space.is_categorical, cache)
        except Exception as exc:  # a GP that cannot be fitted must not end the study
            self._gpr_cache = None
            raise _NoGP(f"the GP fit failed ({type(exc).__name__}: {exc})") from exc
        self._gpr_cache = model.gpr
        return model

    def _plan(
        self,
        study: Study,
        trials: Sequence[FrozenTrial],
        tree: Tree,
        ctx: _SpaceContext,
        search_space: dict[str, BaseDistribution],
    ) -> Plan:
        reason = ""
        try:
            model = self._fit(study, trials, ctx)
        except _NoGP as exc:
            model = None
            reason = f"{exc}: nodes are evaluated without the GP test (plain SOO)"
        worst = self._liar(tree)
        records = tree.records
        n_decided = len(records.values) + len(records.pending) + len(records.estimates)
        width_now = confidence_width(max(n_decided, 1), self._eta, self._width_scale)

        def point(node: Node) -> np.ndarray:
            return ctx.space.snap(ctx.point(node))

        def liar(node: Node) -> float:
            if model is None:
                return worst
            return model.bounds(point(node), width_now)[0]

        known = self._known_points(study, trials, ctx)

        def decide(node: Node, n: int) -> float | None:
            value = known.get(params_key(ctx.params(node)))
            if value is not None or model is None:
                return value  # a point a trial without a node evaluated, or no GP yet
            lcb, ucb = model.bounds(point(node), confidence_width(n, self._eta, self._width_scale))
            return None if ucb >= model.best else lcb

        tree.set_liar(liar)
        plan = tree.plan(decide=decide)
        plan.reason = reason
        return plan

    def _extra_claim_attrs(self, plan: Plan, written: dict[str, Any]) -> dict[str, Any]:
        # Keep the estimates of this call's earlier (yielded) plans: others may build on them.
        estimates = written.setdefault(self._key_estimates, {})
        estimates.update(
            {node_key(node): [value, sweep] for node, (value, sweep) in plan.estimates.items()}
        )
        return {self._key_estimates: dict(estimates)} if estimates else {}

    def _user_attrs(self, plan: Plan) -> dict[str, Any]:
        assert plan.node is not None
        attrs: dict[str, Any] = {
            SOURCE: self._tag,
            NODE: node_key(plan.node),
            DEPTH: plan.node[0],
            EVALUATION: "evaluated",
        }
        if plan.reason:
            attrs[FALLBACK_REASON] = plan.reason
        if plan.estimates:
            attrs[GP_ESTIMATED] = {
                node_key(node): value for node, (value, _) in plan.estimates.items()
            }
        return attrs
