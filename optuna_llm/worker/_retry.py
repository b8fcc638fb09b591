"""Riding out a storage outage: a database restart must not end a worker.

Every storage operation of the worker loop (the budget check, the study lock, starting and
telling a trial, heartbeats) goes through a :class:`StorageRetry`. An error that says the
database cannot be reached right now (:func:`is_transient`: connection refused or cut, the
server shutting down or starting up, Optuna's ``StorageInternalError`` around one of those) is
retried with back-off (0.25 s doubling to 5 s) for at most ``patience`` seconds (60 by default,
``--storage-patience`` of ``optuna-llm run``); anything else, and an outage that lasts longer,
is raised (:class:`StorageUnavailableError`, a one-line message).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import optuna

T = TypeVar("T")

DEFAULT_PATIENCE = 60.0
"""Seconds a worker waits for an unreachable storage before it gives up."""


class StorageUnavailableError(RuntimeError):
    """The storage stayed unreachable for longer than the worker's patience."""


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now (worth retrying), as opposed to
    an error that a retry would only repeat.

    Example:
        >>> import sqlalchemy.exc
        >>> is_transient(sqlalchemy.exc.OperationalError("SELECT 1", {}, OSError("refused")))
        True
        >>> is_transient(ValueError("Cannot tell a COMPLETE trial."))
        False
    """
    import sqlalchemy.exc

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current,
            (
                sqlalchemy.exc.OperationalError,
                sqlalchemy.exc.InterfaceError,
                sqlalchemy.exc.DisconnectionError,
                sqlalchemy.exc.PendingRollbackError,  # a session whose connection died
                sqlalchemy.exc.ResourceClosedError,
            ),
        ):
            return True
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sqlalchemy.exc.TimeoutError):  # no pooled connection came back
            return True
        current = current.__cause__
    return False


def _first_line(exc: BaseException) -> str:
    # Optuna's StorageInternalError says "invalid data in the commit" whatever the cause: name
    # the cause (the driver's own words) instead.
    while isinstance(exc, optuna.exceptions.StorageInternalError) and exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(getattr(exc, "orig", None) or exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return f"{type(exc).__name__}: {line}"


class StorageRetry:
    """Call storage operations, riding out an outage of up to ``patience`` seconds.

    ``log`` gets one line when an outage begins and one when the storage answers again;
    ``reset`` (the worker passes the storage's ``remove_session``) runs after each failed call,
    so that a retry starts from a fresh database session.
    :meth:`outage_within` tells whether this process saw the storage fail recently (the worker
    loop then holds back Optuna's stale-trial check, so that the workers that are alive get to
    record a heartbeat before anyone's trial is judged dead).

    Example:
        >>> retry = StorageRetry(patience=5.0, log=None)
        >>> calls = []
        >>> def flaky() -> str:
        ...     calls.append(1)
        ...     if len(calls) < 3:
        ...         raise optuna.exceptions.StorageInternalError("commit") from ConnectionError()
        ...     return "ok"
        >>> retry("reading the study", flaky), len(calls)
        ('ok', 3)
    """

    def __init__(
        self,
        patience: float = DEFAULT_PATIENCE,
        *,
        log: Callable[[str], None] | None = lambda line: print(line, file=sys.stderr, flush=True),
        reset: Callable[[], None] | None = None,
    ) -> None:
        if patience < 0:
            raise ValueError(f"patience must be >= 0 seconds, got {patience}.")
        self.patience = patience
        self._log = log
        self._reset = reset
        self._last_outage: float | None = None
        self._lock = threading.Lock()

    def mark_outage(self) -> None:
        """Record that the storage failed just now (the heartbeat thread reports here too)."""
        with self._lock:
            self._last_outage = time.monotonic()

    def outage_within(self, seconds: float) -> bool:
        """Whether the storage failed in this process within the last ``seconds``."""
        with self._lock:
            last = self._last_outage
        return last is not None and time.monotonic() - last < seconds

    def __call__(self, what: str, operation: Callable[[], T]) -> T:
        """``operation()``, retried while the storage is unreachable; ``what`` names it in
        the log lines and in the error (``"telling trial 3"``)."""
        started: float | None = None
        delay = 0.25
        while True:
            try:
                result = operation()
            except Exception as exc:
                if not _counts_as_outage(exc):
                    raise
                self.mark_outage()
                if self._reset is not None:
                    try:  # a session left in a failed transaction would fail every retry
                        self._reset()
                    except Exception:
                        pass
                now = time.monotonic()
                if started is None:
                    started = now
                    if self._log is not None:
                        self._log(
                            f"warning: the storage did not answer while {what} "
                            f"({_first_line(exc)}); retrying for up to {self.patience:.0f} s"
                        )
                if now - started + delay > self.patience:
                    raise StorageUnavailableError(
                        f"the storage did not answer for {now - started:.0f} s while {what} "
                        f"({_first_line(exc)}). Start the database again and rerun the same "
                        "command: the study resumes, and the trials this worker left RUNNING "
                        "are failed and retried by the heartbeat check."
                    ) from exc
                time.sleep(delay)
                delay = min(2 * delay, 5.0)
                continue
            if started is not None and self._log is not None:
                self._log(
                    f"the storage answers again after {time.monotonic() - started:.0f} s ({what})"
                )
            return result


def _counts_as_outage(exc: BaseException) -> bool:
    if is_transient(exc):
        return True
    if not isinstance(exc, optuna.exceptions.StorageInternalError):
        return False
    # Optuna wraps every SQLAlchemy error of a storage call in StorageInternalError. Retried:
    # all but those a retry would repeat (invalid data, a constraint, a bad statement).
    import sqlalchemy.exc

    cause = exc.__cause__
    if isinstance(cause, (ConnectionError, OSError)):
        return True
    return isinstance(cause, sqlalchemy.exc.SQLAlchemyError) and not isinstance(
        cause,
        (
            sqlalchemy.exc.IntegrityError,
            sqlalchemy.exc.DataError,
            sqlalchemy.exc.ProgrammingError,
            sqlalchemy.exc.NotSupportedError,
            sqlalchemy.exc.ArgumentError,
            sqlalchemy.exc.CompileError,
        ),
    )
