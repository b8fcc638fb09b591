"""``optuna-llm report STORAGE --study NAME [--study NAME2 ...] --out DIR``: PNG/HTML figures."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="figures of finished studies (score evolution, by hyperparameter, comparison)",
        description=(
            "Write the slides' figures (score evolution, score by hyperparameter, "
            "hyperparameters over iterations), Optuna's history/importances/slice plots and, "
            "for several studies, a side-by-side comparison, as PNG and HTML."
        ),
    )
    parser.add_argument("storage", help="storage URL, e.g. postgresql://host/db or sqlite:///x.db")
    parser.add_argument(
        "--study", action="append", required=True, metavar="NAME", help="study name, repeatable"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--format",
        action="append",
        choices=("png", "html"),
        default=None,
        help="png and/or html (default: both)",
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from optuna_llm.analysis.study_report import write_report
    from optuna_llm.storage import normalize_url

    storage: Any = normalize_url(args.storage)
    if "://" not in storage and storage.endswith(".log"):
        import optuna
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(storage))
    try:
        paths = write_report(storage, args.study, args.out, formats=args.format or ("png", "html"))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0
