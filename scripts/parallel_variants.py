"""BaMSOO variants at 16 simulated workers: issue 13's parallel goals for each, side by side.

Each ``--variant NAME=FILE`` is an ``optuna-llm bench --workers ...`` results file of one
BaMSOO setting (the run key does not record sampler kwargs, so one file a setting). TPE's runs
and, where a variant file has none, BaMSOO's 1-worker runs come from ``--base`` (the default
setting's file; a variant whose 1-worker runs are the default's, such as one that only changes
how running trials are treated, needs no 1-worker runs of its own). Prints one Markdown table
per suite at ``--evals`` evaluations: BaMSOO at 16 workers against TPE at 16 at equal
simulated time, its loss to parallelism (16 vs 1 worker, equal evaluations) and, against the
first variant at 16 workers, wins and the median regret change. Example:

    python scripts/parallel_variants.py --base k3.jsonl --variant k3=k3.jsonl k5=k5.jsonl \\
        --evals 50
"""

from __future__ import annotations

import argparse

from optuna_llm.analysis.bench_report import task_group
from optuna_llm.analysis.parallel_report import (
    at_equal_time,
    at_evals,
    loss_to_parallelism,
    runs_at,
)
from optuna_llm.analysis.stats import change_vs, compare_pairs, per_task_means
from optuna_llm.analysis.tables import markdown, pct
from optuna_llm.bench._runner import load_records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="results file with TPE's runs")
    parser.add_argument("--variant", nargs="+", required=True, metavar="NAME=FILE")
    parser.add_argument("--evals", type=int, default=50)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    w, n = args.workers, args.evals
    base = load_records([args.base])
    variants = [v.split("=", 1) for v in args.variant]
    groups = sorted({task_group(r["task"]) for r in base if int(r.get("workers", 1)) == w})
    for group in (*groups, "all"):
        base_runs = runs_at(base, group=group, evals=n, group_of=task_group)
        tpe = base_runs.get(("tpe", w), {})
        first = None
        rows = []
        for name, path in variants:
            runs = runs_at(load_records([path]), group=group, evals=n, group_of=task_group)
            mine = runs.get(("bamsoo", w), {})
            serial = runs.get(("bamsoo", 1)) or base_runs.get(("bamsoo", 1), {})
            wtl = compare_pairs(*at_equal_time(mine, tpe, n))
            shared = mine.keys() & serial.keys()
            loss = loss_to_parallelism(mine, serial, n) if shared else float("nan")
            if first is None:
                first = mine
            pair = first.keys() & mine.keys()
            a = {k: v for k, v in at_evals(mine, n).items() if k in pair}
            b = {k: v for k, v in at_evals(first, n).items() if k in pair}
            rows.append(
                (
                    name,
                    len(mine),
                    pct(wtl.beats_pct),
                    f"{loss:.2f}x ({len(shared)})",
                    pct(compare_pairs(a, b).beats_pct),
                    pct(compare_pairs(b, a).beats_pct),
                    pct(change_vs(per_task_means(a), per_task_means(b)).median, True),
                )
            )
        first_name = variants[0][0]
        header = (
            "variant", "runs", f"beats TPE at {w} workers (equal time)",
            f"loss to parallelism {w} vs 1 (pairs)", f"beats {first_name} at {w}",
            f"{first_name} beats it at {w}", f"median regret change vs {first_name} at {w}",
        )  # fmt: skip
        print(f"### {group}, {n} evaluations, BaMSOO at {w} workers\n")
        print(markdown(header, rows) + "\n")


if __name__ == "__main__":
    main()
