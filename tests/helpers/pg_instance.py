"""A PostgreSQL server of our own: a temporary data directory, another port, stopped at will.

The fault benchmark stops the database in the middle of a study; doing that to the shared
server at 5432 would break every other test on the machine. :class:`PgInstance` runs the
installed server's own ``initdb``/``pg_ctl`` (``/usr/lib/postgresql/<version>/bin``) in a
directory of its own. PostgreSQL refuses to run as root, so as root every command runs as the
``postgres`` user (``runuser -u postgres --``) in a directory that user owns.

Cleanup always happens: leaving the ``with`` block (an exception included) stops the server and
removes the directory, and a new instance first removes what an instance whose owning process
died (SIGKILL) left behind.

Example:
    >>> with PgInstance() as pg:  # doctest: +SKIP
    ...     url = pg.create_database("demo")
    ...     pg.stop(); pg.start()   # the database restarts; clients reconnect
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

_PREFIX = "optuna_llm_pg_"  # + owner pid + "_" + random: how stale instances are found


def postgres_bin_dir() -> Path:
    """The ``bin`` folder of the newest installed PostgreSQL server (Debian layout)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parts[-3].split(".")],
    )
    if not found:
        raise RuntimeError(
            "No PostgreSQL server binaries under /usr/lib/postgresql/*/bin: install the "
            "Debian package postgresql (it provides initdb and pg_ctl)."
        )
    return Path(found[-1]).parent


def free_port() -> int:
    """A TCP port nobody listens on right now (never the shared server's 5432)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != 5432:
            return port


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PgInstance:
    """A throwaway PostgreSQL server on 127.0.0.1:``port`` with trust authentication."""

    def __init__(self, port: int | None = None, *, base_dir: str | None = None) -> None:
        self.bin_dir = postgres_bin_dir()
        self.port = port or free_port()
        self._as_postgres = os.geteuid() == 0
        self._base = base_dir or tempfile.gettempdir()
        self.root = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}_", dir=self._base))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._running = False
        if self._as_postgres:
            shutil.chown(self.root, user="postgres", group="postgres")

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> PgInstance:
        try:
            remove_stale_instances(self._base)
            self.init()
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def _cmd(self, *argv: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if self._as_postgres else list(argv)

    def _run(self, *argv: str, timeout: float = 600.0) -> None:
        # Minutes, not seconds: at nice 19 beside a nice -15 job on 2 cores, initdb alone took
        # over 120 s (the fault bench's bamsoo / db-restart case never started).
        proc = subprocess.run(self._cmd(*argv), capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(argv[:2])} failed ({proc.returncode}): {proc.stderr.strip()}\n{log}"
            )

    def init(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres",
            "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions",
        )  # fmt: skip

    def start(self) -> None:
        """Start (or restart after :meth:`stop`) the server and wait until it accepts clients."""
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.root}",
                "-c max_connections=300",
                # A throwaway database: durability across an OS crash is not needed here (a
                # stop/start of the server keeps every committed row).
                "-c fsync=off",
                "-c full_page_writes=off",
            ]
        )
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-w", "-t", "120", "-o", options, "start",
        )  # fmt: skip
        self._running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` disconnects every client (a restart as an operator does
        it), ``immediate`` is a crash of the server process."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"mode must be smart, fast or immediate, got {mode!r}.")
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "120",
            "stop",
        )  # fmt: skip
        self._running = False

    def cleanup(self) -> None:
        """Stop the server if it runs and remove its directory; safe to call twice."""
        if self._running or (self.data / "postmaster.pid").exists():
            try:
                self.stop("immediate")
            except (RuntimeError, subprocess.TimeoutExpired):
                _kill_postmaster(self.data)
        self._running = False
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases ---------------------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> Any:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres")
        conn.autocommit = True
        return conn

    def create_database(self, name: str | None = None) -> str:
        """Create a database (a fresh name by default) and return its SQLAlchemy URL."""
        name = name or f"db_{uuid.uuid4().hex[:12]}"
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)

    def drop_database(self, name: str) -> None:
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
                cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            conn.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._admin().close()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def _kill_postmaster(data: Path) -> None:
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, signal.SIGKILL)  # the postmaster of *our* data directory, nothing else
    except ProcessLookupError:
        pass


def remove_stale_instances(base: str | None = None) -> list[Path]:
    """Stop and remove instances whose owning process is gone (it was SIGKILLed before it
    could clean up); return the directories removed. Live owners' instances are left alone."""
    removed = []
    for root in Path(base or tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        try:
            owner = int(root.name[len(_PREFIX) :].split("_")[0])
        except ValueError:
            continue
        if owner == os.getpid() or _pid_alive(owner):
            continue
        _kill_postmaster(root / "data")
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed
