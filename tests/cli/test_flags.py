"""One CLI dialect, Optuna's own: every sub-command's parser, walked flag by flag.

Fails on a flag without a help line, a spelling outside the dialect (lower case, hyphens), the
same thing spelled two ways in two sub-commands, an old spelling that stopped working or does
not warn, and a default shown twice in ``--help``.
"""

from __future__ import annotations

import argparse
import re

import pytest

from optuna_llm.cli import _SUBCOMMANDS, _flags, build_parser

SEED_SPELLINGS = {
    "--random_hparams", "--rounds", "--search_space", "--dataset_dir", "--save_dir",
    "--train_batch_size", "--eval_batch_size", "--learning_rate", "--weight_decay",
    "--label_smoothing", "--num_train_epochs",
}  # fmt: skip
"""The seed train.py's spellings (DESIGN.md), which ``cifar`` keeps as aliases, unwarned."""

SHARED = {
    "storage": "--storage", "study_name": "--study-name", "study_names": "--study-name",
    "n_trials": "--n-trials", "sampler": "--sampler", "seed": "--seed",
    "llm_model": "--llm-model", "llm_base_url": "--llm-base-url", "llm_cache": "--llm-cache",
    "heartbeat_interval": "--heartbeat-interval", "grace_period": "--grace-period",
    "max_retry": "--max-retry",
}  # fmt: skip
"""Optuna's spellings (``optuna`` CLI) and ours for the things several sub-commands take."""

REQUIRED = {
    "run": ["--objective", "branin", "--storage", "sqlite://", "--study-name", "s",
            "--n-trials", "1"],
    "report": ["--out", "out"],
}  # fmt: skip


def _parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _flags_of(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def test_every_sub_command_is_walked() -> None:
    assert set(_parsers()) == set(_SUBCOMMANDS) == {
        "demo", "cifar", "finetune", "run", "bench", "report",
    }  # fmt: skip


@pytest.mark.parametrize("name", _SUBCOMMANDS)
def test_every_flag_has_a_help_line(name: str) -> None:
    parser = _parsers()[name]
    assert parser.formatter_class is _flags.HelpFormatter
    for action in _flags_of(parser):
        assert action.help and action.help != argparse.SUPPRESS and action.help.strip(), (
            f"optuna-llm {name}: {action.option_strings or action.dest} has no help line"
        )
        shown = _flags.HelpFormatter(f"optuna-llm {name}")._get_help_string(action)
        assert shown.replace("%(default)s", "").lower().count("default") <= 1, shown


@pytest.mark.parametrize("name", _SUBCOMMANDS)
def test_every_spelling_follows_the_dialect(name: str) -> None:
    for action in _flags_of(_parsers()[name]):
        if not action.option_strings:
            continue
        canonical, *others = action.option_strings
        assert re.fullmatch(_flags.FLAG_PATTERN, canonical), (
            f"optuna-llm {name}: {canonical} is not lower case with hyphens"
        )
        deprecated = set(getattr(action, "deprecated_strings", ()))
        for other in others:
            if other in deprecated:
                continue
            assert name == "cifar" and other in SEED_SPELLINGS, (
                f"optuna-llm {name}: {other} (for {canonical}) is neither deprecated nor one of "
                "the seed train.py's spellings"
            )


def test_the_same_thing_is_spelled_the_same_in_every_sub_command() -> None:
    spellings: dict[str, set[str]] = {}
    for parser in _parsers().values():
        for action in _flags_of(parser):
            if action.option_strings:
                spellings.setdefault(action.dest, set()).add(action.option_strings[0])
    for dest, canonical in spellings.items():
        assert len(canonical) == 1, f"{dest} is spelled {sorted(canonical)}"
        if dest in SHARED:
            assert canonical == {SHARED[dest]}, f"{dest}: {canonical} is not Optuna's spelling"
    for dest in ("storage", "study_name", "n_trials", "sampler", "seed"):
        assert dest in spellings


def _value(action: argparse.Action) -> list[str]:
    if action.nargs == 0:
        return []
    if action.choices:
        return [str(next(iter(action.choices)))]
    if action.type in (int, float):
        return ["3"]
    return ["k=v"] if action.metavar == "KEY=VALUE" else ["x"]


def _deprecated_cases() -> list[tuple[str, str, str]]:
    return [
        (name, action.dest, old)
        for name, parser in _parsers().items()
        for action in _flags_of(parser)
        for old in getattr(action, "deprecated_strings", ())
    ]


def test_there_are_deprecated_spellings_to_check() -> None:
    olds = {old for _, _, old in _deprecated_cases()}
    assert {"--study_name", "--n_trials", "--heartbeat", "--llm_base_url", "--base-url"} <= olds


@pytest.mark.parametrize(("name", "dest", "old"), _deprecated_cases())
def test_an_old_spelling_still_works_with_a_warning(
    name: str, dest: str, old: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = build_parser()
    action = next(a for a in _flags_of(_parsers()[name]) if old in a.option_strings)
    value = _value(action)
    args = parser.parse_args([name, *REQUIRED.get(name, []), old, *value])
    err = capsys.readouterr().err
    assert f"{old} is deprecated, use {action.option_strings[0]}" in err
    got = getattr(args, dest)
    expected: object = True if action.nargs == 0 else (action.type or str)(value[0])
    if isinstance(got, list):
        got = got[-1]
    if isinstance(got, tuple):  # KEY=VALUE pairs
        expected = ("k", "v")
    assert got == expected
    # The new spelling gives the same and says nothing.
    again = parser.parse_args([name, *REQUIRED.get(name, []), action.option_strings[0], *value])
    assert getattr(again, dest) == getattr(args, dest)
    assert "deprecated" not in capsys.readouterr().err


def test_the_seed_spellings_are_aliases_without_a_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    args = parser.parse_args(["cifar", "--random_hparams", "--dataset_dir", "d", "--rounds", "4",
                              "--train_batch_size", "64", "--num_train_epochs", "2"])  # fmt: skip
    assert (args.random_hparams, args.dataset_dir, args.n_trials) == (True, "d", 4)
    assert (args.train_batch_size, args.num_train_epochs) == (64, 2)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("name", _SUBCOMMANDS)
def test_help_shows_no_deprecated_spelling(name: str) -> None:
    parser = _parsers()[name]
    formatter = _flags.HelpFormatter(f"optuna-llm {name}")
    shown = parser.format_usage() + " ".join(
        formatter._format_action_invocation(a) for a in _flags_of(parser)
    )
    for _, _, old in (c for c in _deprecated_cases() if c[0] == name):
        assert re.search(rf"(?<![\w-]){re.escape(old)}(?![\w-])", shown) is None, old
