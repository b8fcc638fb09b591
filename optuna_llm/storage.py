"""Storages for shared studies: the right driver for a URL, heartbeats and retries on, and one
clear line instead of a driver traceback when the URL cannot work.

The commands that run workers of a shared study (``run``, ``finetune``, ``cifar``) build their
storage with :func:`make_storage`, so a study started from any of them behaves the same when a
worker dies; ``report`` opens one with ``must_exist=True`` so that a mistyped path creates
nothing. (``demo`` runs one process on its own SQLite file and passes the URL to Optuna.)

Example:
    >>> storage = make_storage("sqlite:///:memory:", heartbeat=0)
    >>> make_storage("foo://host/db")
    Traceback (most recent call last):
    ...
    optuna_llm.storage.StorageError: Storage 'foo://host/db' names an unknown database ...
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import optuna

from optuna_llm._compat import retry_stale_trial_callback

EXAMPLES = (
    "postgresql://user@host/db, mysql+pymysql://user@host/db, sqlite:///study.db, or a "
    "journal file ending in .log"
)


class StorageError(ValueError):
    """A storage URL that cannot work, with a one-line message that says how to fix it.

    ``unreachable`` is true when the URL may be right but nothing answered there (connection
    refused, the server starting up or shutting down): waiting may help, fixing the URL may not.
    """

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def normalize_url(url: str) -> str:
    """Pick the installed driver for a bare ``postgresql://`` or ``mysql://`` URL.

    SQLAlchemy 2.1 maps ``postgresql://`` to psycopg 3 and ``mysql://`` to mysqlclient; the
    ``postgres``/``mysql`` extras install psycopg2 and PyMySQL.

    Example:
        >>> normalize_url("sqlite:///x.db")
        'sqlite:///x.db'
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
    url: str,
    *,
    heartbeat: int = 60,
    grace_period: int | None = None,
    max_retry: int = 3,
    must_exist: bool = False,
    patience: float = 0.0,
    patience_flag: str | None = None,
    log: Callable[[str], None] | None = None,
) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeat and retry of dead workers' trials, or a journal file.

    ``heartbeat=0`` turns heartbeats (and so the retry of a dead worker's trial) off.
    ``must_exist`` refuses a SQLite or journal file that does not exist yet (instead of
    creating an empty one). Raises :class:`StorageError` for a URL that cannot work.

    A database server that does not answer yet (connection refused, starting up: a worker
    started before its database, or during a restart) is waited for up to ``patience``
    seconds, with back-off (0.25 s doubling to 5 s, the last try at ``patience``); ``log`` gets
    one line when the wait
    begins. Then the error is raised with ``unreachable=True``; its message names the URL and,
    if given, ``patience_flag`` (the option that set the wait: ``--storage-patience`` of
    ``run``).

    Example:
        >>> try:
        ...     make_storage("postgresql+psycopg2://u@127.0.0.1:1/db", patience=0.3,
        ...                  patience_flag="--storage-patience")
        ... except StorageError as exc:
        ...     print(exc.unreachable, "Waited 0 s for it (--storage-patience 0.3)" in str(exc))
        True True
    """
    if not patience >= 0:
        raise StorageError(
            f"{patience_flag or 'patience'} must be 0 or more seconds, got {patience}."
        )
    if heartbeat < 0:
        raise StorageError(
            f"--heartbeat-interval must be 0 (off) or a number of seconds, got {heartbeat}."
        )
    if "://" not in url:
        if url.endswith(".log"):
            return _journal_storage(url, must_exist=must_exist)
        raise StorageError(f"Storage {url!r} is not a URL. Use {EXAMPLES}.")
    url = normalize_url(url)
    _check_url(url, must_exist=must_exist)
    kwargs: dict[str, Any] = {}
    if heartbeat != 0:
        callback_kw, callback = retry_stale_trial_callback(max_retry)
        kwargs = {
            "heartbeat_interval": heartbeat,
            "grace_period": grace_period,
            callback_kw: callback,
        }
    return _wait_for_rdb_storage(url, kwargs, patience, patience_flag, log)


def _wait_for_rdb_storage(
    url: str,
    kwargs: dict[str, Any],
    patience: float,
    flag: str | None,
    log: Callable[[str], None] | None,
) -> optuna.storages.RDBStorage:
    started = time.monotonic()
    delay = 0.25
    while True:
        try:
            return _rdb_storage(url, **kwargs)
        except StorageError as exc:
            if not exc.unreachable:
                raise
            waited = time.monotonic() - started
            if waited >= patience:
                if flag is None:
                    raise
                raise StorageError(
                    f"{exc} Waited {waited:.0f} s for it ({flag} {patience:g}); a longer "
                    f"{flag} waits longer for a database that is still starting.",
                    unreachable=True,
                ) from None
            if delay == 0.25 and log is not None:
                how = f" ({flag}); Ctrl-C or {flag} 0 to stop at once" if flag else ""
                log(f"warning: {exc} Waiting up to {patience:g} s for it{how}.")
            time.sleep(min(delay, patience - waited))
            delay = min(2 * delay, 5.0)


def _journal_storage(path: str, *, must_exist: bool) -> optuna.storages.BaseStorage:
    from optuna.storages.journal import JournalFileBackend

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise StorageError(
            f"Journal file {path!r}: folder {folder!r} does not exist; create it "
            f"(mkdir -p {folder}) or give another path."
        )
    if must_exist and not os.path.isfile(path):
        raise StorageError(f"Journal file {path!r} does not exist: check the path.")
    return optuna.storages.JournalStorage(JournalFileBackend(path))


def _check_url(url: str, *, must_exist: bool) -> None:
    """Refuse, before connecting, what the URL alone shows to be wrong."""
    import sqlalchemy.engine
    import sqlalchemy.exc

    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise StorageError(
            f"Storage {url!r} is not a valid database URL. Use {EXAMPLES}."
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    try:
        parsed.get_dialect().import_dbapi()
    except sqlalchemy.exc.NoSuchModuleError:
        raise StorageError(
            f"Storage {shown!r} names an unknown database {parsed.drivername!r}. Use {EXAMPLES}."
        ) from None
    except ImportError as exc:
        driver = exc.name or parsed.drivername
        bundled = {
            "postgresql": "pip install 'optuna-llm[postgres]' and use postgresql+psycopg2://",
            "mysql": "pip install 'optuna-llm[mysql]' and use mysql+pymysql://",
        }.get(parsed.get_backend_name())
        fix = f"pip install {driver}" + (f", or {bundled}" if bundled else "")
        raise StorageError(
            f"Storage {shown!r} needs the database driver {driver!r}, which is not installed: "
            f"{fix}."
        ) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = str(parsed.database)
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise StorageError(
                f"SQLite database {path!r}: folder {folder!r} does not exist; create it "
                f"(mkdir -p {folder}) or give another path."
            )
        if must_exist and not os.path.isfile(path):
            raise StorageError(
                f"SQLite database {path!r} does not exist: check the path (nothing was created)."
            )


def _connection_error(url: str, exc: BaseException) -> StorageError | None:
    """A one-line explanation of a failed connection, or ``None`` if it is not one."""
    import sqlalchemy.engine

    parsed = sqlalchemy.engine.make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    text = str(getattr(exc, "orig", None) or exc)
    lowered = text.lower()
    where = f"{parsed.host or 'localhost'}:{parsed.port or _DEFAULT_PORTS.get(backend, '')}"
    name = parsed.database
    if ("does not exist" in lowered and "database" in lowered) or "unknown database" in lowered:
        create = {
            "postgresql": f"createdb -h {parsed.host or 'localhost'} -p "
            f"{parsed.port or 5432} -U {parsed.username or 'postgres'} {name}",
            "mysql": f"mysql -h {parsed.host or 'localhost'} -P {parsed.port or 3306} -u "
            f"{parsed.username or 'root'} -e 'CREATE DATABASE {name}'",
        }.get(backend, f"create the database {name!r}")
        return StorageError(
            f"Database {name!r} does not exist on {where} ({shown}). Create it once with "
            f"`{create}` (Optuna creates its tables), or fix the name in the URL."
        )
    if "connection refused" in lowered or "can't connect" in lowered:
        return StorageError(
            f"Cannot connect to {backend} at {where} ({shown}): connection refused. Start the "
            "server there, or fix the host and port in the URL.",
            unreachable=True,
        )
    if any(s in lowered for s in _NOT_ANSWERING):
        return StorageError(
            f"The {backend} server at {where} ({shown}) does not accept connections now: "
            f"{text.strip().splitlines()[0] if text.strip() else type(exc).__name__}. Wait "
            "for it to finish starting (or start it again).",
            unreachable=True,
        )
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return StorageError(
            f"Cannot resolve the host {parsed.host!r} of {shown}: fix the host name in the URL."
        )
    if "authentication failed" in lowered or "access denied" in lowered:
        return StorageError(
            f"The server at {where} refused the user {parsed.username!r} ({shown}): fix the user "
            "or password in the URL."
        )
    if "unable to open database file" in lowered:
        return StorageError(
            f"Cannot open the SQLite database {name!r} ({shown}): check that its folder exists "
            "and is writable."
        )
    return None


_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}

_NOT_ANSWERING = (
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "server closed the connection unexpectedly",
    "connection reset by peer",
    "lost connection to mysql server",
)
"""What a server says (PostgreSQL, MySQL) while it starts, stops or restarts: worth a wait."""


def _rdb_storage(url: str, **kwargs: Any) -> optuna.storages.RDBStorage:
    import warnings

    import sqlalchemy.engine
    import sqlalchemy.exc

    # Workers started together on an empty database race to create its tables; the losers
    # see "already exists" errors and succeed on a second try once the tables are there.
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **kwargs)
        except sqlalchemy.exc.DBAPIError as exc:
            error = _connection_error(url, exc)
            if error is not None:
                raise error from None
            if attempt == 4:
                first_line = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
                shown = sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
                raise StorageError(f"Cannot open storage {shown!r}: {first_line}") from exc
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")
