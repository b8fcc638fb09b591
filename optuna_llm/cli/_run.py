"""``optuna-llm run``: one worker of a (shared) study; start it on N machines for N workers.

It creates or joins the study (``load_if_exists``), turns on heartbeats and the retry of trials
whose worker died for RDB storages, and runs trials until the study holds ``--n-trials``
finished trials in total, whichever workers ran them. The worker itself (budget, study lock,
heartbeats, objective loading) is :mod:`optuna_llm.worker`; this module only parses arguments.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from optuna_llm._attrs import STUDY_N_TRIALS
from optuna_llm.cli._flags import (
    HelpFormatter,
    add_flag,
    add_heartbeat,
    add_llm,
    add_n_trials,
    add_sampler,
    add_seed,
    add_storage,
    add_study_name,
    sampler_kwargs,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run one worker of a study (start it on N machines for N workers)",
        description=(
            "Create or join a study in --storage and run trials until it holds --n-trials "
            "finished trials in total across all workers."
        ),
        formatter_class=HelpFormatter,
    )
    # Not optuna_llm.worker: it imports _compat, hence torch, and --help must stay quick.
    from optuna_llm.objectives.toy import TOY_FUNCTIONS

    add_flag(
        parser,
        "--objective",
        required=True,
        metavar="NAME",
        help=f"a built-in objective ({', '.join(TOY_FUNCTIONS)}, quadratic<D>, digits), "
        "module:function, or path/to/file.py:function",
    )
    add_flag(
        parser,
        "--objective-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword for the objective's constructor (digits: arch=mlp, epochs=2, ...; for "
        "module:function the function is then called with these keywords and must return "
        "the objective); VALUE is parsed as JSON when it can be, repeatable",
    )
    add_sampler(parser)
    add_flag(
        parser,
        "--sampler-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword for the sampler (e.g. n_samples=20 for lhs); JSON values, repeatable",
    )
    add_storage(parser, required=True)
    add_study_name(parser, required=True)
    add_n_trials(parser, required=True)
    add_seed(
        parser,
        help="sampler seed: give every worker of a study the same one (the first worker uses "
        "it, each later one a seed derived from it and its rank, so that workers do not draw "
        "the same points; lhs, lhs-gp, qmc, soo and bamsoo use it as given)",
    )
    add_flag(
        parser,
        "--direction",
        action="append",
        choices=("minimize", "maximize"),
        default=None,
        help="minimize (the default) or maximize; repeat for multi-objective studies",
    )
    add_heartbeat(parser, interval=("--heartbeat",))
    add_llm(parser)
    add_flag(
        parser,
        "--catch",
        action="store_true",
        help="record an exception in the objective as a FAIL trial and go on (default: stop)",
    )
    add_flag(
        parser,
        "--storage-patience",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long a storage that does not answer (a database restarting, or not started "
        "yet when the worker starts) is waited for, with back-off, before the worker gives up "
        "(exit code 1); rerunning it resumes the study; 0 gives up at once",
    )
    add_flag(parser, "--quiet", action="store_true", help="print nothing but errors")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import warnings

    import optuna

    # Heartbeat, retry and stale-trial checks are "experimental" in Optuna since 2.9: quiet.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # This command prints its own line a trial (none with --quiet): not Optuna's too.
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    from optuna_llm.samplers import make_sampler
    from optuna_llm.storage import StorageError, make_storage
    from optuna_llm.worker import (
        StorageRetry,
        StorageUnavailableError,
        count_budget,
        open_study,
        parse_kwargs,
        reseed_for_worker,
        resolve_objective,
        run_worker,
    )

    if args.n_trials < 1:
        print(f"error: --n-trials must be at least 1, got {args.n_trials}.", file=sys.stderr)
        return 2
    if not args.storage_patience >= 0:
        print(
            f"error: --storage-patience must be 0 or more seconds, got {args.storage_patience}; "
            "e.g. --storage-patience 60.",
            file=sys.stderr,
        )
        return 2
    directions = args.direction or ["minimize"]
    try:
        objective_kwargs = parse_kwargs(args.objective_arg, "--objective-arg")
        extra = parse_kwargs(args.sampler_arg, "--sampler-arg")
        objective = resolve_objective(args.objective, objective_kwargs)
        kwargs = {**sampler_kwargs(args.sampler, args), **extra}
        sampler = make_sampler(args.sampler, seed=args.seed, **kwargs)
        # A worker started before its database (or during a restart) waits for it.
        storage = make_storage(
            args.storage,
            heartbeat=args.heartbeat_interval,
            grace_period=args.grace_period,
            max_retry=args.max_retry,
            patience=args.storage_patience,
            patience_flag="--storage-patience",
            log=_print_error,
        )
        retry = StorageRetry(args.storage_patience, reset=getattr(storage, "remove_session", None))
        study = retry(
            "opening the study",
            lambda: open_study(storage, args.study_name, sampler, directions),
        )
        # LLM samplers state the budget.
        retry("writing the budget", lambda: study.set_user_attr(STUDY_N_TRIALS, args.n_trials))
        # The same --seed on every worker must not mean the same draws in every worker.
        own = retry(
            "joining the study",
            lambda: reseed_for_worker(
                study,
                args.sampler,
                args.seed,
                lambda s: make_sampler(args.sampler, seed=s, **kwargs),
            ),
        )
        seed_note = "" if own is None else f", seed {own}: its own from --seed {args.seed}"
    except StorageUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        # 1: nothing answered at the URL (rerun when the database is up); 2: a wrong argument.
        return 1 if isinstance(exc, StorageError) and exc.unreachable else 2

    progress = None if args.quiet else _flush_print
    if progress is not None:
        progress(
            f"worker {socket.gethostname()}:{os.getpid()} on study {args.study_name!r} "
            f"(sampler {args.sampler}{seed_note}, {args.n_trials} trials in total)"
        )
    try:
        ran = run_worker(
            study,
            objective,
            args.n_trials,
            catch=(Exception,) if args.catch else (),
            poll_interval=max(1.0, min(5.0, args.heartbeat_interval / 2 or 5.0)),
            progress=progress,
            storage_patience=args.storage_patience,
        )
    except StorageUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if progress is not None:
        counted = count_budget(study, args.n_trials).counted
        progress(f"done: this worker ran {ran} trial(s); the study holds {counted}/{args.n_trials}")
    return 0


def _flush_print(line: str) -> None:
    print(line, flush=True)


def _print_error(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    # `python -m optuna_llm.cli._run ...` = `optuna-llm run ...` without the other sub-commands.
    _parser = argparse.ArgumentParser(prog="optuna-llm")
    register(_parser.add_subparsers(dest="command", required=True))
    _args = _parser.parse_args(["run", *sys.argv[1:]])
    sys.exit(_args.func(_args))
