"""Latin hypercube sampling: one space-filling design of ``n_samples`` rows, shared by all workers.

A Latin hypercube is, per dimension, an independent random permutation of ``n`` strata of
``[0, 1)`` with a uniform offset inside each stratum (what ``scipy.stats.qmc.LatinHypercube``
does with ``scramble=True``). Because the dimensions are independent, the column of a parameter
is a pure function of ``(seed, parameter name, n, block)``: any worker, in any order, in
``sample_independent`` as well as ``sample_relative``, gets the same value for row ``k``.

**Rows are claimed.** Global row ``g`` is row ``g mod n`` of block ``g // n``. A trial takes the
lowest row no live trial holds (the ``p``-th free one when ``p`` trials without a row are
starting at once, so simultaneous workers pick different rows), writes it into its system
attr ``lhs:row`` and re-reads the study: if another trial holds that row it yields and picks
again. A row is *held* by a RUNNING, WAITING, COMPLETE or PRUNED trial; a FAIL trial's row is
free again, unless the storage has a stale-trial callback (heartbeat +
``RetryFailedTrialCallback``): its retry copies the trial's params and system attrs, so it
keeps the row. So after a worker dies (kill -9) no row is evaluated twice and none is skipped:
every block of ``n`` completed trials is a Latin hypercube. A trial whose retry chain was given
up at ``--max-retry`` frees its row (:func:`holds_row`): the fresh trial that takes its budget
slot takes its row too.

Mapping a unit-interval value to a distribution (the "normalised space"):

* continuous floats (linear or log): the value at ``(stratum + offset) / n``, through Optuna's
  own ``_SearchSpaceTransform`` (log scale for ``log=True``);
* discrete, evenly spaced choices (``suggest_int`` without log, ``suggest_float`` with ``step``,
  ``suggest_categorical``) with ``m`` choices: each choice is a bin of width ``1 / m`` and the
  ``n`` strata are mapped onto the bins evenly. With ``m >= n`` the ``n`` rows take ``n``
  distinct choices (one from each group of about ``m / n`` neighbouring choices); with
  ``m < n`` every choice is taken ``floor(n / m)`` or ``ceil(n / m)`` times;
* ``suggest_int(..., log=True)``: stratified in the padded log space as Optuna normalises it
  (``optuna/_gp/search_space.py``), then rounded; neighbouring strata can round to the same
  integer where log-bins are narrower than strata.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from optuna_llm._attrs import GIVEN_UP, SOURCE, set_system_attrs, set_user_attrs
from optuna_llm._compat import _SearchSpaceTransform, stale_trial_callback

_logger = optuna.logging.get_logger(__name__)

SOURCE_LHS = "lhs"
ROW = "lhs:row"
"""System attr: the global row a trial claimed (``block * n_samples + row``)."""
_HOLDING = (TrialState.RUNNING, TrialState.WAITING, TrialState.COMPLETE, TrialState.PRUNED)


def holds_row(trial: FrozenTrial, fail_holds: bool) -> bool:
    """Whether ``trial`` keeps its row from other trials: a live or finished one always; a
    FAIL one only when a retry will take the row over (``fail_holds``: the storage retries
    stale trials) and its chain was not given up at ``--max-retry`` (then a fresh trial takes
    its budget slot, and must take its row too, or the block stops being Latin).

    Example:
        >>> from optuna.trial import TrialState, create_trial
        >>> failed = create_trial(state=TrialState.FAIL, system_attrs={"lhs:row": 3})
        >>> holds_row(failed, fail_holds=True), holds_row(failed, fail_holds=False)
        (True, False)
        >>> gone = create_trial(
        ...     state=TrialState.FAIL, system_attrs={"lhs:row": 3, "optuna_llm:given_up": 7}
        ... )
        >>> gone.number = 7
        >>> holds_row(gone, fail_holds=True)
        False
    """
    if trial.state in _HOLDING:
        return True
    return fail_holds and trial.system_attrs.get(GIVEN_UP) != trial.number


def free_rows(taken: set[int], count: int) -> list[int]:
    """The ``count`` lowest rows not in ``taken``.

    Example:
        >>> free_rows({0, 1, 3}, 3)
        [2, 4, 5]
    """
    out: list[int] = []
    g = 0
    while len(out) < count:
        if g not in taken:
            out.append(g)
        g += 1
    return out


@functools.lru_cache(maxsize=1024)
def lhs_column(
    seed: int, name: str, n_samples: int, block: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Strata and in-stratum offsets of one parameter's column of a Latin hypercube.

    Returns ``(strata, offsets)``: ``strata`` is a permutation of ``0..n_samples-1`` and
    ``offsets`` lie in ``[0, 1)``; row ``k`` is at ``(strata[k] + offsets[k]) / n_samples``.
    Strata are kept as exact integers (``(p + u) / n`` in floating point can lose ``p``).

    Example:
        >>> strata, offsets = lhs_column(0, "x", 4)
        >>> sorted(strata.tolist())
        [0, 1, 2, 3]
    """
    name_key = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")
    rng = np.random.default_rng(np.random.SeedSequence([seed, name_key, n_samples, block]))
    strata = rng.permutation(n_samples)
    offsets = rng.random(n_samples)
    strata.setflags(write=False)
    offsets.setflags(write=False)
    return strata, offsets


def n_choices(distribution: BaseDistribution) -> int | None:
    """Number of evenly spaced choices of a discrete distribution, ``None`` if continuous/log."""
    if isinstance(distribution, CategoricalDistribution):
        return len(distribution.choices)
    if isinstance(distribution, IntDistribution) and not distribution.log:
        return (distribution.high - distribution.low) // distribution.step + 1
    if isinstance(distribution, FloatDistribution) and distribution.step is not None:
        return round((distribution.high - distribution.low) / distribution.step) + 1
    return None


def stratum_to_choice(stratum: int, offset: float, n_samples: int, n_choices: int) -> int:
    """Index of the choice that stratum ``stratum`` (offset ``offset``) of ``n_samples`` takes.

    The ``n_choices`` choices are split into ``n_samples`` contiguous groups of near-equal size
    (some empty when ``n_choices < n_samples``, then the stratum takes the choice its start
    falls in); the offset picks uniformly inside the group.

    Example:
        >>> [stratum_to_choice(j, 0.0, 4, 2) for j in range(4)]
        [0, 0, 1, 1]
    """
    start = stratum * n_choices // n_samples
    size = (stratum + 1) * n_choices // n_samples - start
    return start + min(int(offset * max(size, 1)), max(size, 1) - 1)


def unit_to_param(
    stratum: int, offset: float, n_samples: int, distribution: BaseDistribution
) -> Any:
    """The parameter value (external representation) of one design cell for ``distribution``."""
    m = n_choices(distribution)
    if m is not None:
        index = stratum_to_choice(stratum, offset, n_samples, m)
        if isinstance(distribution, CategoricalDistribution):
            return distribution.to_external_repr(index)
        assert isinstance(distribution, (IntDistribution, FloatDistribution))
        assert distribution.step is not None
        if isinstance(distribution, IntDistribution):
            return int(distribution.low + index * distribution.step)
        value = distribution.low + index * distribution.step
        return float(min(max(value, distribution.low), distribution.high))
    unit = (stratum + offset) / n_samples
    trans = _SearchSpaceTransform({"x": distribution}, transform_0_1=True)
    value = trans.untransform(np.array([min(unit, math.nextafter(1.0, 0.0))]))["x"]
    return int(value) if isinstance(distribution, IntDistribution) else float(value)


def latin_hypercube_design(
    search_space: Mapping[str, BaseDistribution], n_samples: int, seed: int, block: int = 0
) -> list[dict[str, Any]]:
    """The ``n_samples`` rows of the design a :class:`LatinHypercubeSampler` walks through.

    Row ``k`` of block ``b`` is what the trial that claims global row ``b * n_samples + k``
    receives (without failures, trial number ``b * n_samples + k``).

    Example:
        >>> from optuna.distributions import FloatDistribution
        >>> rows = latin_hypercube_design({"x": FloatDistribution(0, 1)}, 5, seed=0)
        >>> sorted(int(r["x"] * 5) for r in rows)
        [0, 1, 2, 3, 4]
    """
    rows: list[dict[str, Any]] = [{} for _ in range(n_samples)]
    for name, distribution in search_space.items():
        strata, offsets = lhs_column(seed, name, n_samples, block)
        for k in range(n_samples):
            rows[k][name] = unit_to_param(
                int(strata[k]), float(offsets[k]), n_samples, distribution
            )
    return rows


class LatinHypercubeSampler(BaseSampler):
    """Latin hypercube design of ``n_samples`` points; trial ``k`` takes row ``k``.

    The design covers every parameter the objective suggests (also conditional ones: a
    parameter's column depends only on its name), is fixed by ``seed``, and is shared by every
    worker of a study started with the same ``n_samples`` and ``seed``: trial numbers are
    unique, so four workers on one PostgreSQL study evaluate exactly the design's rows. Rows
    are claimed (system attr ``lhs:row``), so a retried trial keeps its row and no row is
    skipped or evaluated twice after a worker dies (see the module docstring).
    After ``n_samples`` trials the sampler continues with a fresh design for each following
    block of ``n_samples`` trials (its seed derived from ``seed`` and the block number), so a
    long study is a sequence of Latin hypercubes. Every trial it samples carries the user attr
    ``source = "lhs"``.

    Use it as the initial design of a model-based sampler, e.g. the BO-GP of the slides (a GP
    after 10 Latin hypercube points)::

        optuna.samplers.GPSampler(
            n_startup_trials=10, independent_sampler=LatinHypercubeSampler(10, seed=0), seed=0
        )

    (also ``make_sampler("lhs-gp", seed=0)``).

    Args:
        n_samples: Rows in one design (the number of strata per dimension).
        seed: Seed of the design. Workers of one study must pass the same seed; without one a
            random seed is drawn and each process gets its own design.

    Example:
        .. code-block:: python

            import optuna
            from optuna_llm.samplers import LatinHypercubeSampler

            def objective(trial):
                x = trial.suggest_float("x", -5, 5)
                n = trial.suggest_int("n", 1, 8)
                return x**2 + n

            study = optuna.create_study(sampler=LatinHypercubeSampler(8, seed=0))
            study.optimize(objective, n_trials=8)
    """

    def __init__(self, n_samples: int, *, seed: int | None = None) -> None:
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
            raise TypeError(
                f"n_samples must be an int (the number of design rows), got {n_samples!r}."
            )
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}.")
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0
        ):
            raise ValueError(
                f"seed must be a non-negative int or None, got {seed!r}; pass e.g. seed=0."
            )
        self._n_samples = int(n_samples)
        if seed is None:
            self._seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
            _logger.warning(
                "No seed given to LatinHypercubeSampler: this process uses its own random design. "
                "Pass the same seed to every worker of a shared study so they split one design."
            )
        else:
            self._seed = int(seed)
        self._search_space = IntersectionSearchSpace(include_pruned=True)
        self._labelled: set[int] = set()
        self._rows: dict[int, int] = {}
        self._jitter = random.Random()
        self._max_claim_attempts = 20

    @property
    def n_samples(self) -> int:
        return self._n_samples

    @property
    def seed(self) -> int:
        return self._seed

    def reseed_rng(self) -> None:
        # Deliberately a no-op: the design must stay the same in every worker and thread
        # (Optuna calls this when n_jobs > 1), as QMCSampler does.
        pass

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {
            name: dist
            for name, dist in self._search_space.calculate(study).items()
            if not dist.single()
        }

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space or "fixed_params" in trial.system_attrs:
            return {}  # an enqueued trial claims a row only for a parameter it does not fix
        self._label(study, trial)
        return {name: self._value(study, trial, name, dist) for name, dist in search_space.items()}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        self._label(study, trial)
        return self._value(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._labelled.discard(trial._trial_id)
        self._rows.pop(trial._trial_id, None)

    def _row(self, study: Study, trial: FrozenTrial) -> int:
        """This trial's global row: the one it holds (a retry copies it), else a claimed one."""
        if trial._trial_id in self._rows:
            return self._rows[trial._trial_id]
        held = trial.system_attrs.get(ROW)
        if isinstance(held, int) and not isinstance(held, bool):
            self._rows[trial._trial_id] = held
            return held
        fail_holds = stale_trial_callback(study._storage) is not None
        yielded: set[int] = set()
        row = -1
        for _ in range(self._max_claim_attempts):
            trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
            taken = set(yielded)
            starting = []
            for t in trials:
                if t._trial_id == trial._trial_id:
                    continue
                g = t.system_attrs.get(ROW)
                if isinstance(g, int) and holds_row(t, fail_holds):
                    taken.add(g)
                elif g is None and t.state == TrialState.RUNNING and t.number < trial.number:
                    starting.append(t)
            # Trials starting at the same time take the free rows in trial-number order.
            row = free_rows(taken, len(starting) + 1)[-1]
            set_system_attrs(study, trial, {ROW: row})
            if not self._row_conflict(study, trial, row, fail_holds):
                break
            yielded.add(row)
            time.sleep(self._jitter.uniform(0.0, 0.02))
        self._rows[trial._trial_id] = row
        return row

    def _row_conflict(self, study: Study, me: FrozenTrial, row: int, fail_holds: bool) -> bool:
        # Whoever sees another holder yields; both wrote before reading, so at least one sees
        # the other (at worst both yield and pick again).
        for t in study._storage.get_all_trials(study._study_id, deepcopy=False):
            if t._trial_id != me._trial_id and t.system_attrs.get(ROW) == row:
                if holds_row(t, fail_holds):
                    return True
        return False

    def _value(
        self, study: Study, trial: FrozenTrial, name: str, distribution: BaseDistribution
    ) -> Any:
        block, row = divmod(self._row(study, trial), self._n_samples)
        strata, offsets = lhs_column(self._seed, name, self._n_samples, block)
        return unit_to_param(int(strata[row]), float(offsets[row]), self._n_samples, distribution)

    def _label(self, study: Study, trial: FrozenTrial) -> None:
        # One storage write per trial, not per parameter; the set is only a cache.
        if trial._trial_id not in self._labelled:
            self._labelled.add(trial._trial_id)
            set_user_attrs(study, trial, {SOURCE: SOURCE_LHS})
