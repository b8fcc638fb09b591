"""Shared fixtures: real PostgreSQL databases, created and dropped per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Tests never talk to a real provider: an inherited key or URL must not leak into them.
os.environ.pop("OPENAI_API_KEY", None)
os.environ.pop("OPENAI_BASE_URL", None)

PG_ADMIN_DSN = os.environ.get("OPTUNA_LLM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin_connection():  # type: ignore[no-untyped-def]
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_DSN)
    conn.autocommit = True
    return conn


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    name = f"optuna_llm_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = _admin_connection()
    except Exception as exc:  # pragma: no cover - environment problem, reported loudly
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN_DSN} ({exc}). Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`."
        )
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the postgres extra ships psycopg2.
    base = base.replace("postgresql://", "postgresql+psycopg2://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        conn = _admin_connection()
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.close()


# The torchvision workaround for CPU-only machines (see tests/helpers/shims/sitecustomize.py):
# active in this process and, through PYTHONPATH, in every subprocess the tests start.
_SHIMS = os.path.join(os.path.dirname(__file__), "helpers", "shims")
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_SHIMS, os.environ.get("PYTHONPATH", "")) if p
)
import sys as _sys  # noqa: E402

if _SHIMS not in _sys.path:
    _sys.path.insert(0, _SHIMS)
import sitecustomize as _shim  # type: ignore[import-not-found]  # noqa: E402,F401
