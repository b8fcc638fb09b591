"""SOO/BaMSOO with k=3 against k=5 from `optuna-llm bench` results files (1 worker).

Each results file holds one k (the run key does not record sampler kwargs), so the k=3 runs
and the k=5 runs come from two files; random (the baseline) from either. Prints one Markdown
table per suite at ``--evals`` evaluations (a longer run counts by its prefix: at 1 worker the
first n trials of a longer run are the n-trial run). Example:

    python scripts/soo_k.py --k3 parallel.jsonl --k5 k5.jsonl --evals 50
"""

from __future__ import annotations

import argparse

from optuna_llm.analysis.bench_report import task_group
from optuna_llm.analysis.stats import change_vs, compare_pairs, per_task_means
from optuna_llm.analysis.tables import markdown, pct
from optuna_llm.bench._runner import load_records

Finals = dict[tuple[str, int], float]


def finals(records: list[dict], sampler: str, group: str, evals: int) -> Finals:
    """``{(task, seed): regret at evals}`` of the clean 1-worker runs of ``sampler``."""
    out: Finals = {}
    for r in sorted(records, key=lambda r: int(r["budget"]) != evals):
        if (
            r["sampler"] == sampler
            and r.get("error") is None
            and not r.get("noise", False)
            and int(r.get("workers", 1)) == 1
            and task_group(r["task"]) == group
            and len(r.get("curve", [])) >= evals
        ):
            out.setdefault((r["task"], int(r["seed"])), float(r["curve"][evals - 1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k3", nargs="+", required=True, help="results files of the k=3 runs")
    parser.add_argument("--k5", nargs="+", required=True, help="results files of the k=5 runs")
    parser.add_argument("--evals", type=int, default=50)
    args = parser.parse_args()
    k3, k5 = load_records(args.k3), load_records(args.k5)
    groups = sorted({task_group(r["task"]) for r in k5})
    for group in groups:
        rows = []
        for sampler in ("soo", "bamsoo"):
            a, b = finals(k3, sampler, group, args.evals), finals(k5, sampler, group, args.evals)
            rand = finals(k3, "random", group, args.evals) or finals(
                k5, "random", group, args.evals
            )
            shared = a.keys() & b.keys() & rand.keys()
            a, b, rand = ({k: d[k] for k in shared} for d in (a, b, rand))
            change = change_vs(per_task_means(b), per_task_means(a))
            rows.append(
                (
                    sampler,
                    len(shared),
                    pct(compare_pairs(a, rand).beats_pct),
                    pct(compare_pairs(b, rand).beats_pct),
                    pct(compare_pairs(b, a).beats_pct),
                    pct(compare_pairs(a, b).beats_pct),
                    pct(change.median, True),
                )
            )
        print(f"### {group}, {args.evals} evaluations, 1 worker\n")
        header = (
            "sampler", "runs", "k=3 beats random", "k=5 beats random", "k=5 beats k=3",
            "k=3 beats k=5", "median regret change k=5 vs k=3",
        )  # fmt: skip
        print(markdown(header, rows) + "\n")


if __name__ == "__main__":
    main()
