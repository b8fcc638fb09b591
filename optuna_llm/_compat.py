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
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled

OPTUNA_VERSION: tuple[int, ...] = tuple(
    int(part) for part in optuna.__version__.split(".")[:2] if part.isdigit()
)

__all__ = [
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
    "is_heartbeat_enabled",
    "optuna_gp",
    "optuna_gp_prior",
    "retry_stale_trial_callback",
    "stale_trial_callback",
]


def retry_stale_trial_callback(max_retry: int) -> tuple[str, Any]:
    """``(keyword, callback)`` for ``RDBStorage``: the callback that retries a trial whose
    worker died, under the keyword this Optuna version takes it by (4.9 renamed both)."""
    try:
        from optuna.storages import RetryHeartbeatStaleTrialCallback
    except ImportError:  # optuna < 4.9
        from optuna.storages import RetryFailedTrialCallback

        return "failed_trial_callback", RetryFailedTrialCallback(max_retry=max_retry)
    return "heartbeat_stale_trial_callback", RetryHeartbeatStaleTrialCallback(max_retry=max_retry)


def stale_trial_callback(storage: BaseStorage) -> Any:
    """The storage's stale-trial callback, or None (no heartbeat, or no callback)."""
    if not isinstance(storage, BaseHeartbeat) or storage.get_heartbeat_interval() is None:
        return None
    # Optuna 4.9 renamed the getter (the old name warns); 4.2 to 4.8 have only the old one.
    getter = getattr(storage, "get_heartbeat_stale_trial_callback", None)
    if getter is None:
        getter = storage.get_failed_trial_callback
    return getter()
