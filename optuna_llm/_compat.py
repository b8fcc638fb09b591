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

import importlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import optuna
from optuna._transform import _SearchSpaceTransform
from optuna.artifacts._protocol import ArtifactStore  # the store type; optuna does not export it
from optuna.samplers._base import _process_constraints_after_trial
from optuna.storages import BaseStorage
from optuna.storages._cached_storage import _CachedStorage
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.study._constrained_optimization import _CONSTRAINTS_KEY as CONSTRAINTS_KEY

if TYPE_CHECKING:
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

# Optuna's GP code imports torch (seconds, and hundreds of MB, for a worker of any sampler):
# these names are imported when first used (PEP 562), so that only BaMSOO's GP and the SOO
# partition pay for it. ``name: (module, attribute or None for the module itself)``.
_LAZY: dict[str, tuple[str, str | None]] = {
    "optuna_gp": ("optuna._gp.gp", None),
    "optuna_gp_prior": ("optuna._gp.prior", None),
    "GPRegressor": ("optuna._gp.gp", "GPRegressor"),
    "SearchSpace": ("optuna._gp.search_space", "SearchSpace"),
    "_normalize_one_param": ("optuna._gp.search_space", "_normalize_one_param"),
    "_round_one_normalized_param": ("optuna._gp.search_space", "_round_one_normalized_param"),
    "_ScaleType": ("optuna._gp.search_space", "_ScaleType"),
    "_unnormalize_one_param": ("optuna._gp.search_space", "_unnormalize_one_param"),
}


def __getattr__(name: str) -> Any:
    """The names of :data:`_LAZY`, imported on first use (and kept as module attributes)."""
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


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
    "_process_constraints_after_trial",
    "_round_one_normalized_param",
    "_unnormalize_one_param",
    "constraint_values",
    "forget_trial_cache",
    "heartbeat_trial_ids",
    "is_heartbeat_enabled",
    "journal_file_path",
    "optuna_gp",
    "optuna_gp_prior",
    "retry_stale_trial_callback",
    "stale_trial_callback",
    "stale_trial_ids",
    "stop_requested",
    "trial_loop",
    "unwrap_storage",
]


def constraint_values(trial: Any) -> list[float]:
    """The trial's constraint values, a constraint holding when its value is <= 0: the list a
    ``constraints_func`` stored (system attr ``constraints``, every Optuna) and the values of
    Optuna 5's ``trial.set_constraint`` (system attrs ``constraints:<name>``), which
    ``FrozenTrial.constraints`` reads on Optuna 5 but which Optuna 4.8 has no reader for.

    Example:
        >>> import optuna
        >>> trial = optuna.trial.create_trial(value=1.0, system_attrs={CONSTRAINTS_KEY: [0.5]})
        >>> constraint_values(trial)
        [0.5]
    """
    attrs = trial.system_attrs
    values = [float(c) for c in attrs.get(CONSTRAINTS_KEY) or ()]
    prefix = f"{CONSTRAINTS_KEY}:"
    values += [float(v) for key, v in attrs.items() if key.startswith(prefix)]
    return values


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


def retry_gives_up(callback: Any, trial: optuna.trial.FrozenTrial) -> bool:
    """Whether Optuna's stale-trial retry ``callback`` would decline to retry ``trial``: its
    retry chain has reached ``max_retry`` (the callback then returns without queuing
    anything). ``False`` for a callback of another kind (it may retry: nothing is known).

    Example:
        >>> from optuna.trial import create_trial
        >>> _, callback = retry_stale_trial_callback(max_retry=1)
        >>> retry_gives_up(callback, create_trial(value=0.0))
        False
        >>> retry_gives_up(callback, create_trial(value=0.0, system_attrs={"retry_history": [0]}))
        True
    """
    max_retry = getattr(callback, "_max_retry", None)  # Optuna's Retry*TrialCallback
    if max_retry is None:
        return False
    history = trial.system_attrs.get("retry_history")
    done = len(history) if isinstance(history, list) else 0
    return int(max_retry) < done + 1  # Optuna's own test, on the history it would write


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


# -- the worker's own trial loop: what Study.optimize sets around the trials it runs ----------


@contextmanager
def trial_loop(study: optuna.Study) -> Iterator[None]:
    """Mark ``study`` as inside an optimize loop for this thread, as ``Study.optimize`` does,
    so that ``study.stop()`` works in an objective or callback and Optuna's per-trial caches
    behave as they do under ``optimize`` (:mod:`optuna_llm.worker` runs its own trial loop).

    Example:
        >>> study = optuna.create_study()
        >>> with trial_loop(study):
        ...     study.stop()
        >>> stop_requested(study)
        True
    """
    lock = getattr(study, "_optimize_lock", None)  # Optuna < 5: a lock instead of a flag
    if lock is not None and not lock.acquire(False):
        raise RuntimeError("Nested invocation of a trial loop on one study isn't allowed.")
    local = getattr(study, "_thread_local", None)
    before = getattr(local, "in_optimize_loop", False)
    if local is not None:
        local.in_optimize_loop = True
    study._stop_flag = False
    try:
        yield
    finally:
        if local is not None:
            local.in_optimize_loop = before
        if lock is not None:
            lock.release()


def forget_trial_cache(study: optuna.Study) -> None:
    """Drop the trial list Optuna caches for the current trial (``Study.ask`` does this)."""
    local = getattr(study, "_thread_local", None)
    if local is not None and hasattr(local, "cached_all_trials"):
        local.cached_all_trials = None


def stop_requested(study: optuna.Study) -> bool:
    """Whether ``study.stop()`` was called in the current trial loop."""
    return bool(getattr(study, "_stop_flag", False))


def stale_trial_ids(storage: BaseStorage, study_id: int) -> list[int]:
    """RUNNING trials of the study whose heartbeat is older than the grace period (what
    Optuna's ``fail_stale_trials`` fails); ``[]`` without heartbeats."""
    if not is_heartbeat_enabled(storage):
        return []
    return list(storage._get_stale_trial_ids(study_id))  # type: ignore[attr-defined]
