"""Analysis of finished studies and benchmark results: best-so-far curves with bootstrap bands
(:mod:`~optuna_llm.analysis.bootstrap`), study reports (:mod:`~optuna_llm.analysis.study_report`,
behind ``optuna-llm report``), benchmark statistics and tables
(:mod:`~optuna_llm.analysis.stats`, :mod:`~optuna_llm.analysis.bench_report`).

Imports are lazy: ``import optuna_llm.analysis`` does not import matplotlib or plotly.

Example:
    >>> from optuna_llm.analysis import random_search_curve
    >>> [round(float(v), 3) for v in random_search_curve([0.3, 0.1], n_trials=2).mean]
    [0.2, 0.15]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna_llm.analysis.bootstrap import (
        BestSoFarCurve,
        best_so_far_curve,
        plot_curves,
        random_search_curve,
        sequential_curve,
    )
    from optuna_llm.analysis.study_report import write_report

_LAZY = {
    "BestSoFarCurve": "optuna_llm.analysis.bootstrap",
    "best_so_far_curve": "optuna_llm.analysis.bootstrap",
    "plot_curves": "optuna_llm.analysis.bootstrap",
    "random_search_curve": "optuna_llm.analysis.bootstrap",
    "sequential_curve": "optuna_llm.analysis.bootstrap",
    "write_report": "optuna_llm.analysis.study_report",
}

__all__ = [
    "BestSoFarCurve",
    "best_so_far_curve",
    "plot_curves",
    "random_search_curve",
    "sequential_curve",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'optuna_llm.analysis' has no attribute {name!r}")
