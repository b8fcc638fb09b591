"""A lock shared by every worker of one study, across processes and machines."""

from __future__ import annotations

import fcntl
from types import TracebackType
from typing import IO, Any

import optuna

from optuna_llm._compat import journal_file_path, unwrap_storage

_LOCK_NAMESPACE = 0x4F4C4C  # first key of PostgreSQL's two-key advisory lock: "OLL"


class StudyLock:
    """A lock shared by every worker of one study, held from the budget check to trial creation.

    PostgreSQL: a session advisory lock; MySQL: ``GET_LOCK``; SQLite and journal files: an
    ``flock`` on a file beside the database (``<file>.optuna-llm.lock``). In-memory storages
    need none (one process). The database or the kernel releases it when a worker dies, so a
    killed worker never blocks the others.

    ``storage`` may be ``study._storage`` as Optuna hands it out (an ``RDBStorage`` wrapped in
    Optuna's cache): the lock looks through the wrapper.

    Example:
        >>> study = optuna.create_study(storage="sqlite:///:memory:")
        >>> with StudyLock(study._storage, study._study_id):
        ...     pass
    """

    def __init__(self, storage: optuna.storages.BaseStorage, study_id: int) -> None:
        self._conn: Any = None
        self._engine: Any = None
        self._file: IO[str] | None = None
        self._sql: tuple[str, str] | None = None
        backend = unwrap_storage(storage)
        url = str(getattr(backend, "url", ""))
        if url.startswith("postgresql"):
            key = f"{_LOCK_NAMESPACE}, {int(study_id)}"
            self._sql = (f"SELECT pg_advisory_lock({key})", f"SELECT pg_advisory_unlock({key})")
        elif url.startswith("mysql"):
            name = f"'optuna_llm_study_{int(study_id)}'"
            self._sql = (f"SELECT GET_LOCK({name}, -1)", f"SELECT RELEASE_LOCK({name})")
        if self._sql is not None:
            self._engine = backend.engine  # type: ignore[attr-defined]
            return
        path = journal_file_path(backend)
        if path is None and url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            path = url[len("sqlite:///") :]
        if path:
            self._file = open(f"{path}.optuna-llm.lock", "a")

    @property
    def kind(self) -> str:
        """``"sql"`` (a database lock), ``"file"`` (flock) or ``"none"``."""
        return "sql" if self._sql is not None else "file" if self._file is not None else "none"

    def acquire(self) -> None:
        """Wait for the lock. A database lock lives in a connection of its own, opened on
        first use and again after the database went away (an error here drops it, so the
        next call reconnects)."""
        if self._sql is not None:
            import sqlalchemy

            try:
                if self._conn is None:
                    self._conn = self._engine.connect()
                self._conn.execute(sqlalchemy.text(self._sql[0]))
                self._conn.commit()
            except Exception:
                self._drop()
                raise
        elif self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_EX)

    def release(self) -> None:
        """Let go. If the database cannot be told, the lock's connection is dropped instead:
        a session lock ends with its session, so the lock is free either way."""
        if self._sql is not None:
            import sqlalchemy

            if self._conn is None:
                return
            try:
                self._conn.execute(sqlalchemy.text(self._sql[1]))
                self._conn.commit()
            except Exception:  # dropping the session releases the lock
                self._drop()
        elif self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:  # the connection is gone already
                pass

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # a dead connection: nothing to close
                pass
            self._conn = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> StudyLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
