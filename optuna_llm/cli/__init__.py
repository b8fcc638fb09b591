"""The ``optuna-llm`` command: one sub-command a module, registered in ``_SUBCOMMANDS``.

Each module ``optuna_llm.cli._<name>`` defines ``register(subparsers) -> None`` which adds its
parser and sets ``func`` (a callable taking the parsed namespace and returning an exit code).
Heavy imports (torch, litgpt, ...) stay inside ``func`` so ``optuna-llm --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

_SUBCOMMANDS = ("demo", "cifar", "finetune", "run", "bench", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optuna-llm",
        description="Optuna samplers and objectives: LLM-driven search, SOO/BaMSOO, LHS.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in _SUBCOMMANDS:
        module = importlib.import_module(f"optuna_llm.cli._{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
