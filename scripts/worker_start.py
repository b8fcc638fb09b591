"""How long a worker of ``optuna-llm run`` takes to start, and what it imports, per sampler.

In the fault benchmark a killed worker is replaced every few seconds, so its start-up time is
time the study runs short of a worker. Each run is a fresh process of the real command on a
fresh SQLite study, ``--n-trials 1`` (so: imports, opening the study, one trial, exit); the
table gives the median wall time over ``--repeat`` runs and the heavy packages the process had
imported at the end (from ``sys.modules``). ``--code DIR`` runs another checkout of the package
(e.g. ``git archive <commit> | tar -x -C DIR``) to compare before and after a change.

    nice -n 19 .venv/bin/python scripts/worker_start.py
    nice -n 19 .venv/bin/python scripts/worker_start.py --code /tmp/before --code . --samplers soo
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "scipy", "sklearn", "openai", "llama_cpp")

PROBE = """
import optuna_llm
import json, sys
from optuna_llm.cli import main
rc = main(sys.argv[1:])
print("CODE " + optuna_llm.__file__)
print("IMPORTED " + json.dumps([m for m in {heavy!r} if m in sys.modules]))
sys.exit(rc)
"""


def one_start(code: Path, sampler: str, folder: Path, index: int) -> tuple[float, list[str]]:
    url = f"sqlite:///{folder / f'{sampler}-{index}.db'}"
    cmd = [
        sys.executable, "-c", PROBE.format(heavy=HEAVY), "run", "--objective", "branin",
        "--sampler", sampler, "--storage", url, "--study-name", "s", "--n-trials", "1",
        "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(code)}
    started = time.perf_counter()
    # cwd: `python -c` puts the current folder first on sys.path, before PYTHONPATH.
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=folder, timeout=600)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"{sampler}: exit {out.returncode}\n{out.stderr[-2000:]}")
    lines = out.stdout.splitlines()
    ran = next(x for x in lines if x.startswith("CODE "))[len("CODE ") :]
    if not Path(ran).resolve().is_relative_to(code):
        raise SystemExit(f"the worker ran {ran}, not the code under {code}")
    line = next(x for x in lines if x.startswith("IMPORTED "))
    return wall, json.loads(line[len("IMPORTED ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samplers", default="random,tpe,lhs,soo,bamsoo,gp")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--code", type=Path, action="append", default=None,
        help="checkout to run (PYTHONPATH); repeat to compare: the runs alternate between "
        "them, so a change of load hits each alike (default: this checkout)",
    )  # fmt: skip
    args = parser.parse_args()
    codes = [c.resolve() for c in (args.code or [ROOT])]
    print(f"{args.repeat} starts each, alternating; load average {os.getloadavg()[0]:.1f}")
    print()
    print(
        "| code | sampler | median start + 1 trial, s | min s | max s | heavy packages imported |"
    )
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for sampler in args.samplers.split(","):
            walls: dict[Path, list[float]] = {c: [] for c in codes}
            imported: dict[Path, list[str]] = {}
            for code in codes:
                one_start(code, sampler, Path(tmp), -1)  # warm the page cache and .pyc files
                os.remove(Path(tmp) / f"{sampler}--1.db")
            for i in range(args.repeat):
                for code in codes:
                    wall, imported[code] = one_start(code, sampler, Path(tmp), i)
                    walls[code].append(wall)
                    os.remove(Path(tmp) / f"{sampler}-{i}.db")
            for code in codes:
                w = walls[code]
                print(
                    f"| {code} | {sampler} | {statistics.median(w):.2f} | {min(w):.2f} | "
                    f"{max(w):.2f} | {', '.join(imported[code]) or 'none'} |",
                    flush=True,
                )
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
