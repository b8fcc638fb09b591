"""The one boundary to Optuna's private API and to its version differences.

Everything ``optuna_llm`` needs from ``optuna._*`` modules, and every branch on Optuna's
version, is here and nowhere else, so that an Optuna upgrade that moves a private name breaks
one module, with a test (``tests/test_compat.py``) that says which name moved. The range of
Optuna versions the test suite has run against is the ``optuna`` bound in ``pyproject.toml``.

Example:
    >>> from optuna_llm._compat import OPTUNA_VERSION
    >>> OPTUNA_VERSION >= (4, 2)
    True
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna._gp import gp as optuna_gp
from optuna._gp import prior as optuna_gp_prior
from optuna._gp.gp import GPRegressor
from optuna._gp.search_space import (
    SearchSpace,
    _normalize_one_param,
    _round_one_normalized_param,
    _ScaleType,
    _unnormalize_one_param,
)
from optuna._transform import _SearchSpaceTransform
from optuna.artifacts._protocol import ArtifactStore  # the store type; optuna does not export it
from optuna.storages import BaseStorage
from optuna.storages._cached_storage import _CachedStorage
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.study._constrained_optimization import _CONSTRAINTS_KEY as CONSTRAINTS_KEY

OPTUNA_VERSION: tuple[int, ...] = tuple(
    int(part) for part in optuna.__version__.split(".")[:2] if part.isdigit()
)

__all__ = [
    "CONSTRAINTS_KEY",
    "OPTUNA_VERSION",
    "ArtifactStore",
    "BaseHeartbeat",
    "GPRegressor",
    "SearchSpace",
    "_ScaleType",
    "_SearchSpaceTransform",
    "_normalize_one_param",
    "_round_one_normalized_param",
    "_unnormalize_one_param",
    "heartbeat_trial_ids",
    "is_heartbeat_enabled",
    "journal_file_path",
    "optuna_gp",
    "optuna_gp_prior",
    "retry_stale_trial_callback",
    "stale_trial_callback",
    "unwrap_storage",
]


def retry_stale_trial_callback(max_retry: int) -> tuple[str, Any]:
    """``(keyword, callback)`` for ``RDBStorage``: the callback that retries a trial whose
    worker died, under the keyword this Optuna version takes it by (4.9 renamed both)."""
    with warnings.catch_warnings():  # "experimental" since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            from optuna.storages import RetryHeartbeatStaleTrialCallback
        except ImportError:  # optuna < 4.9
            from optuna.storages import RetryFailedTrialCallback

            return "failed_trial_callback", RetryFailedTrialCallback(max_retry=max_retry)
        return "heartbeat_stale_trial_callback", RetryHeartbeatStaleTrialCallback(
            max_retry=max_retry
        )


def stale_trial_callback(storage: BaseStorage) -> Any:
    """The storage's stale-trial callback, or None (no heartbeat, or no callback)."""
    if not isinstance(storage, BaseHeartbeat) or storage.get_heartbeat_interval() is None:
        return None
    # Optuna 4.9 renamed the getter (the old name warns); 4.2 to 4.8 have only the old one.
    getter = getattr(storage, "get_heartbeat_stale_trial_callback", None)
    if getter is None:
        getter = storage.get_failed_trial_callback
    return getter()


# -- storages: what the worker loop needs to see under Optuna's wrappers ---------------------


def unwrap_storage(storage: BaseStorage) -> BaseStorage:
    """The storage a study really writes to: an ``RDBStorage`` comes wrapped in Optuna's
    private ``_CachedStorage`` (``study._storage``), which has no ``url`` or ``engine``.

    Example:
        >>> import optuna
        >>> study = optuna.create_study(storage="sqlite:///:memory:")
        >>> type(unwrap_storage(study._storage)).__name__
        'RDBStorage'
    """
    while isinstance(storage, _CachedStorage):
        storage = storage._backend
    return storage


def journal_file_path(storage: BaseStorage) -> str | None:
    """The file of a ``JournalStorage`` on a ``JournalFileBackend``, else ``None``."""
    storage = unwrap_storage(storage)
    if not isinstance(storage, optuna.storages.JournalStorage):
        return None
    path = getattr(storage._backend, "_file_path", None)
    return str(path) if path is not None else None


def heartbeat_trial_ids(storage: BaseStorage, trial_ids: list[int]) -> set[int]:
    """Which of ``trial_ids`` have a heartbeat recorded (RDB storages only; Optuna has no
    public reader for its ``trial_heartbeats`` table)."""
    import sqlalchemy

    backend = unwrap_storage(storage)
    engine = getattr(backend, "engine", None)
    if engine is None or not trial_ids:
        return set()
    query = sqlalchemy.text(
        "SELECT trial_id FROM trial_heartbeats WHERE trial_id IN :ids"
    ).bindparams(sqlalchemy.bindparam("ids", expanding=True))
    with engine.connect() as conn:
        return {int(v) for v in conn.execute(query, {"ids": list(trial_ids)}).scalars()}
