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
            self._conn = backend.engine.connect()  # type: ignore[attr-defined]
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
        if self._sql is not None:
            import sqlalchemy

            self._conn.execute(sqlalchemy.text(self._sql[0]))
            self._conn.commit()
        elif self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._sql is not None:
            import sqlalchemy

            self._conn.execute(sqlalchemy.text(self._sql[1]))
            self._conn.commit()
        elif self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
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
