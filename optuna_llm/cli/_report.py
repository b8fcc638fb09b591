"""``optuna-llm report --storage URL --study-name NAME [--study-name NAME2 ...] --out DIR``:
PNG/HTML figures of finished studies."""

from __future__ import annotations

import argparse
import sys

from optuna_llm.cli._flags import HelpFormatter, add_flag, add_storage, add_study_name


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="figures of finished studies (score evolution, by hyperparameter, comparison)",
        description=(
            "Write the slides' figures (score evolution, score by hyperparameter, "
            "hyperparameters over iterations), Optuna's history/importances/slice plots and, "
            "for several studies, a side-by-side comparison, as PNG and HTML."
        ),
        formatter_class=HelpFormatter,
    )
    add_storage(parser)
    add_study_name(
        parser,
        action="append",
        deprecated=("--study_name", "--study"),
        dest="study_names",
        help="a study to report, repeatable (several: also a comparison)",
    )
    add_flag(parser, "--out", required=True, metavar="DIR", help="output folder")
    add_flag(
        parser,
        "--format",
        action="append",
        choices=("png", "html"),
        default=None,
        help="png and/or html, repeatable (default: both)",
    )
    parser.add_argument(
        "storage_positional",
        nargs="?",
        default=None,
        metavar="STORAGE",
        help="deprecated: the storage URL as the first argument (use --storage)",
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from optuna_llm.analysis.study_report import write_report
    from optuna_llm.storage import make_storage

    url = args.storage
    if args.storage_positional is not None:
        print(
            "optuna-llm report: warning: the storage as a positional argument is deprecated, "
            "use --storage (the old form will be removed)",
            file=sys.stderr,
        )
        if url is not None and url != args.storage_positional:
            print("error: give the storage once, with --storage.", file=sys.stderr)
            return 2
        url = args.storage_positional
    if url is None:
        print("error: --storage is required (the storage URL of the studies).", file=sys.stderr)
        return 2
    if not args.study_names:
        print("error: --study-name is required (repeat it for several studies).", file=sys.stderr)
        return 2
    try:
        # A report only reads: no heartbeat, and a missing SQLite or journal file is an error
        # (instead of a new empty one).
        storage = make_storage(url, heartbeat=0, must_exist=True)
        paths = write_report(
            storage, args.study_names, args.out, formats=args.format or ("png", "html")
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0
