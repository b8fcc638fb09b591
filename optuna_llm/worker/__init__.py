"""One worker of a shared study: the loop that ``optuna-llm run``, ``cifar`` and ``finetune``
share, so every worker of every command counts the budget the same way, takes the same study
lock, beats and retries the same.

- :func:`open_study`: create or join a study, after checking that the sampler can optimise its
  directions and that an existing study has the same ones (before anything is written).
- :func:`run_worker`: run trials until the study holds ``n_trials`` counted trials in total,
  whichever workers ran them (:func:`count_budget`), under a :class:`StudyLock`.
- :func:`join_rank` and :func:`worker_seed`: each worker's own seed from the one ``--seed``
  all workers are given, so that they do not draw the same points.
- :func:`resolve_objective`: the callable ``--objective`` names.

Example:
    >>> import optuna
    >>> from optuna_llm.storage import make_storage
    >>> storage = make_storage("sqlite:///:memory:", heartbeat=0)
    >>> sampler = optuna.samplers.RandomSampler(seed=0)
    >>> study = open_study(storage, "demo", sampler, ["minimize"])
    >>> run_worker(study, resolve_objective("branin"), 4, progress=None)
    4
"""

from __future__ import annotations

from optuna_llm.worker._budget import Budget, count_budget
from optuna_llm.worker._lock import StudyLock
from optuna_llm.worker._loop import never_beaten_trials, progress_line, run_worker
from optuna_llm.worker._objective import (
    builtin_objectives,
    load_attr,
    parse_kwargs,
    resolve_objective,
)
from optuna_llm.worker._retry import StorageRetry, StorageUnavailableError, is_transient
from optuna_llm.worker._seed import (
    SHARED_SEED,
    join_rank,
    needs_own_seed,
    reseed_for_worker,
    worker_seed,
)
from optuna_llm.worker._study import check_sampler_directions, open_study

__all__ = [
    "SHARED_SEED",
    "Budget",
    "StorageRetry",
    "StorageUnavailableError",
    "StudyLock",
    "builtin_objectives",
    "check_sampler_directions",
    "count_budget",
    "is_transient",
    "join_rank",
    "load_attr",
    "needs_own_seed",
    "never_beaten_trials",
    "open_study",
    "parse_kwargs",
    "progress_line",
    "reseed_for_worker",
    "resolve_objective",
    "run_worker",
    "worker_seed",
]
