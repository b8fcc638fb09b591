"""What a worker of ``optuna-llm run`` imports: only what its sampler needs.

Optuna's GP code (``optuna._gp``) imports torch, which takes seconds to import (4.8 s against
0.45 s for a worker start, measured at load 9): when ``optuna_llm/_compat.py`` imported it at
module level, every worker paid that, and so did every replacement of a killed worker in the
fault benchmark. The same for scipy.stats (seconds too), which building the ``optuna-llm``
parser imported through ``optuna_llm.bench`` (the ``bench`` sub-command's presets). Each test
runs a real worker process to the end of its trials, through the ``optuna-llm`` entry point
(``optuna_llm.cli.main``), and reads ``sys.modules`` afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

# Runs `optuna-llm ARGS...` in this process, then prints which heavy packages it imported.
PROBE = textwrap.dedent(
    """
    import json, sys
    from optuna_llm.cli import main
    rc = main(sys.argv[1:])
    heavy = ("torch", "scipy", "openai", "llama_cpp", "litgpt")
    heavy = [name for name in heavy if name in sys.modules]
    print("IMPORTED " + json.dumps(heavy))
    sys.exit(rc)
    """
)


def _run_worker(tmp_path: Path, sampler: str, n_trials: int) -> list[str]:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    cmd = [
        sys.executable, "-c", PROBE, "run", "--objective", "branin", "--sampler", sampler,
        "--storage", url, "--study-name", "w", "--n-trials", str(n_trials), "--seed", "0",
        "--quiet",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("IMPORTED ")]
    assert len(lines) == 1, out.stdout
    trials = optuna.load_study(study_name="w", storage=url).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * n_trials
    imported: list[str] = json.loads(lines[0][len("IMPORTED ") :])
    return imported


@pytest.mark.parametrize("sampler", ["soo", "lhs", "random", "tpe"])
def test_a_worker_of_a_sampler_without_a_gp_never_imports_torch(
    tmp_path: Path, sampler: str
) -> None:
    # 12 trials: SOO past its first expansions, TPE past its 10 random start-up trials.
    imported = _run_worker(tmp_path, sampler, 12)
    assert imported == [], f"a {sampler} worker imported {imported}"


def test_bamsoo_imports_torch_only_once_it_fits_its_gp(tmp_path: Path) -> None:
    # BaMSOO's first trial is the root cell's centre: no GP yet, so no torch. Once it has
    # evaluated points it fits Optuna's GP (torch) to decide which cells to evaluate.
    first = _run_worker(tmp_path, "bamsoo", 1)
    assert first == []
    later = _run_worker(tmp_path, "bamsoo", 12)
    assert "torch" in later  # the GP ran: the probe can see torch when it is there
    assert "openai" not in later and "llama_cpp" not in later
