"""PgInstance: a PostgreSQL server of our own that can be stopped and started, always removed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from tests.helpers.pg_instance import PgInstance, remove_stale_instances

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_restart_keeps_the_study_and_cleanup_removes_everything() -> None:
    with PgInstance() as pg:
        assert pg.port != 5432
        url = pg.create_database("restart")
        study = optuna.create_study(storage=url, study_name="s")
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        pg.stop()
        with pytest.raises(Exception):  # noqa: B017 - any driver error: the server is down
            optuna.load_study(study_name="s", storage=url)
        pg.start()
        assert len(optuna.load_study(study_name="s", storage=url).trials) == 2
        root = pg.root
    assert not root.exists()


@pytest.fixture
def base() -> Iterator[Path]:
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as
    # postgres, which must be able to enter the directory.
    folder = Path(tempfile.mkdtemp(prefix="pg_instance_test_"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_an_instance_left_by_a_killed_owner_is_removed(base: Path) -> None:
    # An owner that starts an instance and dies without cleaning up (SIGKILL-like: os._exit).
    owner = textwrap.dedent(
        f"""
        import os
        from tests.helpers.pg_instance import PgInstance
        pg = PgInstance(base_dir={str(base)!r})
        pg.__enter__()
        print(pg.root, flush=True)
        os._exit(0)
        """
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", owner], cwd=root, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    left = Path(out.stdout.strip())
    assert left.exists() and (left / "data" / "postmaster.pid").exists()
    assert remove_stale_instances(str(base)) == [left]
    assert not left.exists()
