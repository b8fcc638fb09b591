"""``optuna-llm bench`` as the tests start it: a subprocess of this interpreter that imports
this checkout (not an installed copy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bench_command(*args: str | os.PathLike[str]) -> list[str]:
    """The argv of ``optuna-llm bench ARGS``."""
    return [sys.executable, "-m", "optuna_llm", "bench", *map(str, args)]


def bench_env() -> dict[str, str]:
    """The environment with this checkout first on ``PYTHONPATH``."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def run_bench(
    *args: str | os.PathLike[str], cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``optuna-llm bench ARGS`` to its end, capturing its text output."""
    return subprocess.run(
        bench_command(*args),
        capture_output=True,
        text=True,
        env=bench_env(),
        cwd=cwd,
        timeout=timeout,
    )
