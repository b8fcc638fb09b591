"""One command-line dialect for every sub-command: Optuna's own (the ``optuna`` CLI).

The rules, which ``tests/cli/test_flags.py`` checks on every sub-command's parser:

- A flag is spelled in lower case with hyphens (``--study-name``, ``--n-trials``).
- The same thing has the same spelling and the same help line in every sub-command: the
  ``add_*`` helpers below define the shared ones (storage, study, trials, sampler, seed, LLM,
  heartbeat).
- An old spelling keeps working, with a deprecation warning on stderr (``deprecated=``); it is
  not shown in ``--help``.
- ``cifar`` also takes the seed ``train.py``'s spellings (``--dataset_dir``, ...) as aliases,
  without a warning (``aliases=``; shown in ``--help``).
- Every flag has a help line; its default is shown once.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="optuna-llm x", formatter_class=HelpFormatter)
    >>> _ = add_study_name(parser, required=True)
    >>> parser.parse_args(["--study-name", "a"]).study_name
    'a'
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

FLAG_PATTERN = r"--[a-z][a-z0-9]*(-[a-z0-9]+)*"
"""How a canonical flag is spelled."""


class HelpFormatter(argparse.HelpFormatter):
    """Hides deprecated spellings, shows a flag's default once (unless its help already says
    what the default is, or there is none to show), and wraps a description paragraph by
    paragraph, keeping indented lines (examples) as they are.

    Example:
        >>> parser = argparse.ArgumentParser(prog="x", formatter_class=HelpFormatter)
        >>> _ = add_flag(parser, "--n-trials", deprecated=("--n_trials",), type=int, default=5,
        ...              help="trials")
        >>> print(parser.format_help().splitlines()[-1].strip())
        --n-trials N_TRIALS  trials (default: 5)
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        paragraphs = []
        text = text.replace("``", "")  # the docstring's literal markup
        for paragraph in textwrap.dedent(text).strip().split("\n\n"):
            lines = paragraph.splitlines()
            if any(line.startswith(" ") for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(
                    textwrap.fill(
                        " ".join(paragraph.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                    )
                )
        return "\n\n".join(paragraphs)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        hidden = getattr(action, "deprecated_strings", ())
        if not hidden:
            return super()._format_action_invocation(action)
        shown = copy_action(action, [s for s in action.option_strings if s not in hidden])
        return super()._format_action_invocation(shown)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or default is None
            or default is False
            or default == argparse.SUPPRESS
            or default == []
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


def copy_action(action: argparse.Action, option_strings: list[str]) -> argparse.Action:
    """A shallow copy of ``action`` with other option strings (for display only)."""
    import copy

    shown = copy.copy(action)
    shown.option_strings = option_strings
    return shown


_DEPRECATING: dict[type, type] = {}


def _deprecating(cls: type[argparse.Action]) -> type[argparse.Action]:
    """``cls`` that warns on stderr when the flag is given by a deprecated spelling."""
    if cls not in _DEPRECATING:

        def __call__(
            self: Any,
            parser: argparse.ArgumentParser,
            namespace: argparse.Namespace,
            values: Any,
            option_string: str | None = None,
        ) -> None:
            if option_string in self.deprecated_strings:
                print(
                    f"{parser.prog}: warning: {option_string} is deprecated, use "
                    f"{self.option_strings[0]} (the old spelling will be removed)",
                    file=sys.stderr,
                )
            cls.__call__(self, parser, namespace, values, option_string)

        _DEPRECATING[cls] = type(f"Deprecating{cls.__name__}", (cls,), {"__call__": __call__})
    return _DEPRECATING[cls]


def add_flag(
    container: Any,
    canonical: str,
    *,
    aliases: Sequence[str] = (),
    deprecated: Sequence[str] = (),
    **kwargs: Any,
) -> argparse.Action:
    """``container.add_argument(canonical, *aliases, *deprecated, **kwargs)``, where the
    ``deprecated`` spellings warn when used and are hidden from ``--help``."""
    action: argparse.Action = container.add_argument(canonical, *aliases, *deprecated, **kwargs)
    action.deprecated_strings = tuple(deprecated)  # type: ignore[attr-defined]
    action.alias_strings = tuple(aliases)  # type: ignore[attr-defined]
    if deprecated:
        action.__class__ = _deprecating(type(action))
    return action


# -- the shared flags ---------------------------------------------------------------------------


def add_storage(
    container: Any, *, default: str | None = None, required: bool = False, help: str = ""
) -> argparse.Action:
    return add_flag(
        container,
        "--storage",
        default=default,
        required=required,
        metavar="URL",
        help=help
        or "Optuna storage: postgresql://user@host/db, mysql+pymysql://user@host/db, "
        "sqlite:///file.db, or a journal file ending in .log",
    )


def add_study_name(
    container: Any,
    *,
    default: str | None = None,
    required: bool = False,
    deprecated: Sequence[str] = ("--study_name",),
    **kw: Any,
) -> argparse.Action:
    return add_flag(
        container,
        "--study-name",
        deprecated=deprecated,
        dest=kw.pop("dest", "study_name"),
        default=default,
        required=required,
        metavar="NAME",
        help=kw.pop("help", "study name; workers given the same one share the study"),
        **kw,
    )


def add_n_trials(
    container: Any,
    *,
    default: int | None = None,
    required: bool = False,
    aliases: Sequence[str] = (),
    deprecated: Sequence[str] = ("--n_trials",),
    help: str = "finished trials the study should hold in total, across all workers",
) -> argparse.Action:
    return add_flag(
        container,
        "--n-trials",
        aliases=aliases,
        deprecated=deprecated,
        dest="n_trials",
        type=int,
        default=default,
        required=required,
        metavar="N",
        help=help,
    )


def add_sampler(
    container: Any, *, default: str | None = "tpe", purpose: str = "sampler"
) -> argparse.Action:
    """``--sampler NAME``; the names come from :data:`optuna_llm.samplers._factory.SAMPLERS`."""
    from optuna_llm.samplers._factory import SAMPLERS

    return add_flag(
        container,
        "--sampler",
        default=default,
        metavar="NAME",
        help=f"{purpose}: {', '.join(SAMPLERS)}",
    )


def add_seed(
    container: Any,
    *,
    default: int | None = None,
    help: str = "sampler seed (give every worker of a study the same one)",
) -> argparse.Action:
    return add_flag(container, "--seed", type=int, default=default, metavar="N", help=help)


def add_llm(
    container: Any,
    *,
    model: Sequence[str] = (),
    base_url: Sequence[str] = (),
    cache: Sequence[str] = (),
) -> None:
    """``--llm-model``, ``--llm-base-url``, ``--llm-cache`` (the arguments are the deprecated
    spellings of each)."""
    add_flag(
        container,
        "--llm-model",
        deprecated=model,
        dest="llm_model",
        default=None,
        metavar="NAME",
        help="model of the LLM samplers (default: OPTUNA_LLM_MODEL, else the embedded Gemma 3 "
        "270M, or the server's model)",
    )
    add_flag(
        container,
        "--llm-base-url",
        deprecated=base_url,
        dest="llm_base_url",
        default=None,
        metavar="URL",
        help="OpenAI-compatible endpoint of the LLM samplers (default: OPENAI_BASE_URL, else "
        "the embedded model)",
    )
    add_flag(
        container,
        "--llm-cache",
        deprecated=cache,
        dest="llm_cache",
        default=None,
        metavar="PATH",
        help="record/replay file of the LLM exchanges (a rerun with it needs no LLM)",
    )


def add_heartbeat(
    container: Any,
    *,
    interval: Sequence[str] = (),
    grace: Sequence[str] = (),
    retry: Sequence[str] = (),
) -> None:
    """``--heartbeat-interval``, ``--grace-period``, ``--max-retry`` (the arguments are the
    deprecated spellings of each)."""
    add_flag(
        container,
        "--heartbeat-interval",
        deprecated=interval,
        dest="heartbeat_interval",
        type=int,
        default=60,
        metavar="SECONDS",
        help="heartbeat interval of RDB storages, so the trial of a dead worker is retried; "
        "0 turns heartbeats and retries off",
    )
    add_flag(
        container,
        "--grace-period",
        deprecated=grace,
        dest="grace_period",
        type=int,
        default=None,
        metavar="SECONDS",
        help="a RUNNING trial without a heartbeat for this long is failed and retried "
        "(default: 2x the heartbeat interval)",
    )
    add_flag(
        container,
        "--max-retry",
        deprecated=retry,
        dest="max_retry",
        type=int,
        default=3,
        metavar="N",
        help="retries of a trial whose worker died",
    )


def llm_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--llm-*`` values given, as LLMSampler keywords (``model``, ``base_url``,
    ``cache``)."""
    pairs = (("model", args.llm_model), ("base_url", args.llm_base_url), ("cache", args.llm_cache))
    return {k: v for k, v in pairs if v}


def sampler_kwargs(name: str, args: argparse.Namespace, problem: str = "") -> dict[str, Any]:
    """Keywords of sampler ``name`` from the ``--llm-*`` flags and a problem description:
    LLMSampler takes them itself, the LLM-seeded samplers an LLMSampler as ``llm=``; the
    other samplers take none."""
    from optuna_llm.samplers._factory import LLM_SAMPLERS

    if name not in LLM_SAMPLERS:
        return {}
    llm = llm_kwargs(args)
    if problem:
        llm["problem"] = problem
    if name == "llm":
        return llm
    if not llm:
        return {}
    from optuna_llm.samplers import LLMSampler

    return {"llm": LLMSampler(**llm)}
