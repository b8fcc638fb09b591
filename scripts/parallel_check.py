"""Real check of the simulated clock: 4 real ``optuna-llm run`` processes on one PostgreSQL
study against ``optuna-llm bench --workers 4`` on the same tasks, samplers and seeds.

    .venv/bin/python scripts/parallel_check.py                    # bamsoo, tpe; 2 BBOB tasks
    .venv/bin/python scripts/parallel_check.py --samplers soo bamsoo tpe --seeds 3 --scale 0.5

Each real worker evaluates the BBOB task and then *sleeps* for the evaluation time of the
simulation's model (``exp(0.5 z)`` units, ``z`` the draw of the trial's number from the run's
seed, exactly as :mod:`optuna_llm.bench._parallel` draws it) times ``--scale`` seconds, so the
real study and the simulation wait alike; what differs is real: four processes, four sampler
instances (each worker gets its own seed, ``seed * 100 + worker``: with one seed each of them
would draw the same random start-up points), PostgreSQL, and the samplers' own compute time
on the clock. The curve of the real study is read in order of ``datetime_complete``; BBOB's
value is its regret (``f(x) - f_opt``, noiseless).

It prints a Markdown table: per (sampler, task), the mean over seeds of the final regret
after ``--budget`` evaluations, real and simulated, and how many pairs of samplers order the
same way in both (the "same picture" question). A database of its own is created on the
server at 127.0.0.1:5432 (user postgres, trust) and dropped at the end.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEED_SALT = 104729  # the salt of optuna_llm.bench._parallel's duration generator


def make_objective(task: str, seed: int, scale: float):
    """The objective of one real worker: evaluate ``task``, sleep the simulated time."""
    from optuna_llm.bench._parallel import JITTER_SIGMA
    from optuna_llm.bench._tasks import get_task

    bench_task = get_task(task)
    bench_task.reseed(seed)

    def objective(trial):
        value = bench_task.evaluate(trial).seen
        z = np.random.default_rng([seed, SEED_SALT]).standard_normal(trial.number + 1)[-1]
        time.sleep(math.exp(JITTER_SIGMA * z) * scale)
        return value

    return objective


def _psql(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


def real_run(url: str, sampler: str, task: str, seed: int, budget: int, scale: float) -> dict:
    """4 ``optuna-llm run`` processes on one study; the study's curve in completion order."""
    import optuna

    name = f"{sampler}-{task}-{seed}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "optuna_llm",
                "run",
                "--objective",
                f"{Path(__file__).resolve()}:make_objective",
                "--objective-arg",
                f"task={json.dumps(task)}",
                "--objective-arg",
                f"seed={seed}",
                "--objective-arg",
                f"scale={scale}",
                "--sampler",
                sampler,
                "--seed",
                str(seed * 100 + w),
                "--storage",
                url,
                "--study-name",
                name,
                "--n-trials",
                str(budget),
                "--quiet",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    errors = [p.communicate(timeout=1800)[1] for p in procs]
    wall = time.monotonic() - started
    bad = [e for p, e in zip(procs, errors, strict=True) if p.returncode != 0]
    if bad:
        raise RuntimeError(f"a worker of {name} failed:\n{bad[0][-2000:]}")
    from optuna_llm.storage import make_storage

    study = optuna.load_study(study_name=name, storage=make_storage(url))
    done = sorted(
        (t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE),
        key=lambda t: t.datetime_complete,
    )[:budget]
    curve = np.minimum.accumulate([t.value for t in done]).tolist()
    return {"curve": curve, "wall_s": wall, "trials": len(study.trials)}


def sim_run(sampler: str, task: str, seed: int, budget: int) -> dict:
    from optuna_llm.bench._runner import RunKey, run_one

    record = run_one(RunKey(sampler, task, seed, budget, workers=4))
    if record["error"]:
        raise RuntimeError(f"simulation of {sampler} {task} {seed}: {record['error']}")
    return {"curve": record["curve"], "wall_s": record["wall_s"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samplers", nargs="+", default=["bamsoo", "tpe"])
    parser.add_argument("--tasks", nargs="+", default=["bbob/f01-d5-i1", "bbob/f15-d5-i1"])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--scale", type=float, default=0.3, help="seconds per simulated unit")
    parser.add_argument("--json", type=Path, help="write every curve here")
    args = parser.parse_args(argv)
    if any(not t.startswith("bbob/") for t in args.tasks):
        parser.error("--tasks: BBOB tasks only (their value is their regret).")

    db = f"parallel_check_{os.getpid()}"
    _psql(f"CREATE DATABASE {db}")
    url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    out: dict[str, dict] = {}
    try:
        for sampler, task, seed in itertools.product(args.samplers, args.tasks, range(args.seeds)):
            key = f"{sampler} {task} {seed}"
            out[key] = {
                "real": real_run(url, sampler, task, seed, args.budget, args.scale),
                "sim": sim_run(sampler, task, seed, args.budget),
            }
            r, s = out[key]["real"], out[key]["sim"]
            print(
                f"{key}: real {r['curve'][-1]:.4g} ({r['wall_s']:.0f} s), sim {s['curve'][-1]:.4g}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        _psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))

    def final(kind: str, sampler: str, task: str, seed: int) -> float:
        return float(out[f"{sampler} {task} {seed}"][kind]["curve"][-1])

    print(f"| sampler | task | mean final regret, 4 real workers | mean, simulated 4 workers "
          f"| real/sim |  ({args.seeds} seeds, {args.budget} evaluations)")  # fmt: skip
    print("|---|---|---|---|---|")
    for sampler, task in itertools.product(args.samplers, args.tasks):
        real = np.mean([final("real", sampler, task, s) for s in range(args.seeds)])
        sim = np.mean([final("sim", sampler, task, s) for s in range(args.seeds)])
        print(f"| {sampler} | {task} | {real:.4g} | {sim:.4g} | {real / sim:.2f} |")
    same = total = 0
    for a, b in itertools.combinations(args.samplers, 2):
        for task, seed in itertools.product(args.tasks, range(args.seeds)):
            real = final("real", a, task, seed) < final("real", b, task, seed)
            sim = final("sim", a, task, seed) < final("sim", b, task, seed)
            same += real == sim
            total += 1
    print(f"\nPairs (two samplers, task, seed) ordered alike, real and simulated: {same}/{total}.")
    for a, b in itertools.combinations(args.samplers, 2):
        for kind in ("real", "sim"):
            wins = sum(
                final(kind, a, t, s) < final(kind, b, t, s)
                for t, s in itertools.product(args.tasks, range(args.seeds))
            )
            print(f"{kind}: {a} beats {b} on {wins}/{len(args.tasks) * args.seeds} runs.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
