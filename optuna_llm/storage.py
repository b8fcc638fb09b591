"""Storages for shared studies: the right driver for a URL, heartbeats and retries on.

Used by every command that runs trials (``run``, ``finetune``, ``cifar``) so that a study
started from any of them behaves the same when a worker dies.
"""

from __future__ import annotations

import time
from typing import Any

import optuna

from optuna_llm._compat import retry_stale_trial_callback


def normalize_url(url: str) -> str:
    """Pick the installed driver for a bare ``postgresql://`` or ``mysql://`` URL.

    SQLAlchemy 2.1 maps ``postgresql://`` to psycopg 3 and ``mysql://`` to mysqlclient; the
    ``postgres``/``mysql`` extras install psycopg2 and PyMySQL.
    """
    import importlib.util

    for bare, modern, fallback, driver in (
        ("postgresql://", "psycopg", "psycopg2", "postgresql+psycopg2://"),
        ("mysql://", "MySQLdb", "pymysql", "mysql+pymysql://"),
    ):
        if url.startswith(bare) and importlib.util.find_spec(modern) is None:
            if importlib.util.find_spec(fallback) is not None:
                return driver + url[len(bare) :]
    return url


def make_storage(
    url: str, *, heartbeat: int = 60, grace_period: int | None = None, max_retry: int = 3
) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeat and retry of dead workers' trials, or a journal file."""
    import optuna

    if "://" not in url:
        if url.endswith(".log"):
            from optuna.storages.journal import JournalFileBackend

            return optuna.storages.JournalStorage(JournalFileBackend(url))
        raise ValueError(
            f"Storage {url!r} is not a URL. Use e.g. postgresql://user@host/db, "
            "mysql+pymysql://user@host/db, sqlite:///study.db, or a journal file ending in .log."
        )
    url = normalize_url(url)
    if heartbeat < 0:
        raise ValueError(f"--heartbeat must be 0 (off) or a number of seconds, got {heartbeat}.")
    if heartbeat == 0:
        return _rdb_storage(url)
    callback_kw, callback = retry_stale_trial_callback(max_retry)
    kwargs: dict[str, Any] = {
        "heartbeat_interval": heartbeat,
        "grace_period": grace_period,
        callback_kw: callback,
    }
    return _rdb_storage(url, **kwargs)


def _rdb_storage(url: str, **kwargs: Any) -> optuna.storages.RDBStorage:
    import warnings

    import optuna
    import sqlalchemy.exc

    # Workers started together on an empty database race to create its tables; the losers
    # see "already exists" errors and succeed on a second try once the tables are there.
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **kwargs)
        except sqlalchemy.exc.DBAPIError:
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")
