"""One seed for every worker, as the README says, without every worker drawing the same points.

Workers of a shared study are started with the same ``--seed``. A sampler that draws from its
own random stream (Optuna's random, TPE, GP, CMA-ES; the fallback and base samplers inside the
LLM samplers) would then draw the same points in every worker. So each worker takes a rank when
it joins the study (study system attr ``optuna_llm:workers_joined``, incremented under the
study lock: 0 for the first worker, 1 for the next, ...) and uses :func:`worker_seed` of the
given seed and its rank: the first worker uses the seed itself (a one-worker run is exactly as
reproducible as before), every other one a seed derived from both.

Samplers whose draws are a function of ``(seed, trial number)`` and that need the same seed in
every worker to split one design between them keep the given seed (:data:`SHARED_SEED`):
LHS, whose Latin design is fixed by the seed, QMC, whose sequence is, and SOO/BaMSOO, whose
tree is deterministic and whose random draws derive from the trial number.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import optuna

from optuna_llm._attrs import WORKERS_JOINED
from optuna_llm.worker._lock import StudyLock

SHARED_SEED = ("lhs", "lhs-gp", "qmc", "soo", "bamsoo")
"""Sampler names (``make_sampler``) that every worker must build with the same seed."""


def worker_seed(seed: int, rank: int) -> int:
    """The seed worker ``rank`` of a study uses: ``seed`` itself for rank 0.

    Example:
        >>> worker_seed(0, 0)
        0
        >>> len({worker_seed(0, rank) for rank in range(8)})
        8
    """
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint32)[0])


def join_rank(study: optuna.Study) -> int:
    """This worker's rank among the workers that joined ``study`` (0 for the first).

    Example:
        >>> study = optuna.create_study()
        >>> join_rank(study), join_rank(study)
        (0, 1)
    """
    storage = study._storage
    lock = StudyLock(storage, study._study_id)
    try:
        with lock:
            joined = storage.get_study_system_attrs(study._study_id).get(WORKERS_JOINED, 0)
            rank = int(joined) if isinstance(joined, int) else 0
            storage.set_study_system_attr(study._study_id, WORKERS_JOINED, rank + 1)
    finally:
        lock.close()
    return rank


def needs_own_seed(sampler_name: str) -> bool:
    """Whether workers built ``sampler_name`` with their own :func:`worker_seed`.

    Example:
        >>> needs_own_seed("tpe"), needs_own_seed("lhs")
        (True, False)
    """
    return sampler_name not in SHARED_SEED


def reseed_for_worker(
    study: optuna.Study,
    sampler_name: str,
    seed: int | None,
    build: Callable[[int], optuna.samplers.BaseSampler],
) -> int | None:
    """Give this worker of ``study`` a sampler of its own seed (``build(seed)``); return that
    seed, or ``None`` where the sampler keeps ``seed`` (no seed, the first worker, or a
    :data:`SHARED_SEED` sampler). ``optuna-llm run``, ``cifar`` and ``finetune`` call it once
    the study is open.

    Example:
        >>> study = optuna.create_study()
        >>> build = lambda s: optuna.samplers.TPESampler(seed=s)
        >>> reseed_for_worker(study, "tpe", 0, build) is None  # the first worker keeps 0
        True
        >>> reseed_for_worker(study, "tpe", 0, build) == worker_seed(0, 1)
        True
    """
    if seed is None or not needs_own_seed(sampler_name):
        return None
    rank = join_rank(study)
    if rank == 0:
        return None
    own = worker_seed(seed, rank)
    study.sampler = build(own)
    return own
