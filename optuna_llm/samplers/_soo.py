"""SOOSampler: Simultaneous Optimistic Optimization (Munos 2011) for Optuna studies."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial

from optuna_llm.samplers._soo_base import _TreeSampler


class SOOSampler(_TreeSampler):
    """Simultaneous Optimistic Optimization, safe for many workers on one shared study.

    SOO (Munos 2011) partitions the normalised search space into a ``k``-ary tree and, sweeping
    the depths ``h = 0 .. min(depth(T), h_max(n))``, expands at each depth the leaf whose centre
    has the best value, provided it is at least as good as every node expanded earlier in the
    sweep. Expanding a node evaluates the centres of its ``k`` children; a child that keeps
    its parent's centre (the middle one when ``k`` is odd) inherits the parent's value instead
    of costing an evaluation. Minimisation and maximisation both work.

    * **Split rule:** a cell is cut into ``k`` children along its widest splittable side,
      lowest parameter index on ties (round-robin for continuous spaces): equal slabs on a
      continuous side; on a discrete side (int, stepped float, categorical) runs of whole
      values, cut *between* values, so no value lies in two cells. A side holding one value is
      not split further, and a cell with no splittable side is terminal. A node stands for one
      point of its cell: a child that still holds its parent's value keeps it (no
      evaluation), the others take the middle value of their run, so no two nodes are ever
      evaluated at the same parameters (see ``optuna_llm.samplers._partition``).
    * **Depth limit:** ``h_max(n) = floor(sqrt(n))`` with ``n`` the number of evaluations so
      far (Munos 2011), but at least the number of parameters (the split rule cuts one side
      per level, so with more parameters than ``sqrt(n)`` the last ones would never be
      varied): leaves deeper than that are not expanded yet, unless no leaf within
      ``h_max`` is left to expand (small discrete spaces): then the sweep goes deeper instead
      of falling back to the independent sampler.
    * **Mixed spaces:** float/int/log use Optuna's padded normalisation
      (``optuna/_gp/search_space.py``); a categorical with ``n`` choices maps choice ``j`` to
      ``[j/n, (j+1)/n)``. See ``optuna_llm.samplers._partition``.
    * **Shared studies:** the tree lives in storage. Each trial stores its node (user attrs
      ``node`` = ``"h:i"``, ``depth``, ``source`` = ``"soo"``; system attrs with the node, the
      search-space hash and the sweep number) and every call reads the trials once; the part
      of the tree made of finished trials is kept in memory and updated with the trials that
      finished since (a cache: any process rebuilds it from storage), running trials are
      added on a copy. A node is claimed, then the running trials are re-read; a trial that sees
      another holder of its node yields and picks another node. A FAIL frees its node (after
      ``max_failures`` failures the node is given up), a trial retried by
      ``optuna.storages.RetryHeartbeatStaleTrialCallback`` keeps its node (with such a
      stale-trial callback on the storage, a failed node is left to it), and running
      trials' nodes take a pessimistic liar value (the worst value seen) so a worker never
      waits for another.
    * **Outside the tree:** the first trial (before the search space is known), parameters
      outside the relative search space (define-by-run additions, conditional parameters)
      and the trials asked once no node is left are sampled by ``independent_sampler``
      (default: a ``RandomSampler`` seeded from ``seed`` *and the trial number*, so workers
      started with the same seed draw different points); such trials carry ``source =
      "fallback:random"`` and ``fallback_reason`` (why). A draw for a whole trial is claimed
      like a node (system attr ``soo:draw``) and redrawn if another trial holds that point.
      Enqueued trials keep their params and get no node.
    * **Non-finite values and constraints:** ``inf``/``-inf`` are kept in the tree as they are
      (the best or the worst value); a NaN, and an *infeasible* trial (any constraint > 0,
      from ``trial.set_constraint`` or ``constraints_func``), count as ``-inf`` in the
      maximising convention: worse than every feasible trial, whatever its value.

    Args:
        k: Number of children of a split (>= 2; 3 gives the classic inherited middle child).
        seed: Seed of the independent sampler. The tree itself is deterministic.
        independent_sampler: Sampler for parameters outside the relative search space.
        max_failures: Failures after which a node is given up rather than retried.
        constraints_func: As Optuna's samplers take it: ``trial -> sequence of floats``,
            feasible iff every value is <= 0, stored as the trial's constraints after it ends.

    Example:
        >>> import optuna
        >>> from optuna_llm.samplers import SOOSampler
        >>> study = optuna.create_study(sampler=SOOSampler(seed=0))
        >>> study.optimize(lambda t: (t.suggest_float("x", -3, 3) - 1) ** 2, n_trials=20)
        >>> study.best_value < 0.01
        True
    """

    _tag = "soo"

    def __init__(
        self,
        *,
        k: int = 3,
        seed: int | None = None,
        independent_sampler: BaseSampler | None = None,
        max_failures: int = 3,
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
    ) -> None:
        super().__init__(
            k=k,
            seed=seed,
            independent_sampler=independent_sampler,
            max_failures=max_failures,
            constraints_func=constraints_func,
        )
