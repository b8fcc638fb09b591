"""``optuna-llm run``: one worker of a (shared) study; start it on N machines for N workers.

It creates or joins the study (``load_if_exists``), turns on heartbeats and the retry of trials
whose worker died for RDB storages, and runs trials until the study holds ``--n-trials``
finished trials in total, whichever workers ran them. A failed trial that was retried does not
count (its retry does); the same retried trial keeps its parameters and user attrs (an SOO node
stays claimed).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

BUILTIN_OBJECTIVES = ("branin", "rosenbrock", "ackley", "himmelblau", "quadratic", "digits")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run one worker of a study (start it on N machines for N workers)",
        description=(
            "Create or join a study in STORAGE and run trials until it holds --n-trials "
            "finished trials in total across all workers."
        ),
    )
    parser.add_argument(
        "--objective",
        required=True,
        help=(
            "a built-in objective (branin, rosenbrock, ackley, himmelblau, quadratic, "
            "quadratic<D>, digits), module:function, or path/to/file.py:function"
        ),
    )
    parser.add_argument(
        "--objective-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=(
            "keyword for the objective's constructor (digits: arch=mlp, epochs=2, ...; for "
            "module:function the function is then called with these keywords and must return "
            "the objective); VALUE is parsed as JSON when it can be, repeatable"
        ),
    )
    parser.add_argument("--sampler", default="tpe", help="sampler name (default: tpe)")
    parser.add_argument(
        "--sampler-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword for the sampler (e.g. n_samples=20 for lhs); JSON values, repeatable",
    )
    parser.add_argument(
        "--storage",
        required=True,
        help=(
            "postgresql://user@host/db, mysql+pymysql://user@host/db, sqlite:///file.db, or a "
            "journal file path ending in .log"
        ),
    )
    parser.add_argument("--study_name", "--study-name", dest="study_name", required=True)
    parser.add_argument(
        "--n-trials",
        "--n_trials",
        dest="n_trials",
        type=int,
        required=True,
        help="finished trials the study should hold in total, across all workers",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="sampler seed (same on every worker)"
    )
    parser.add_argument(
        "--direction",
        action="append",
        choices=("minimize", "maximize"),
        default=None,
        help="minimize (default) or maximize; repeat for multi-objective studies",
    )
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=60,
        metavar="SECONDS",
        help="heartbeat interval for RDB storages (0 turns heartbeats and retries off)",
    )
    parser.add_argument(
        "--grace-period",
        type=int,
        default=None,
        metavar="SECONDS",
        help="a RUNNING trial without heartbeat for this long is failed (default 2x heartbeat)",
    )
    parser.add_argument(
        "--max-retry", type=int, default=3, help="retries of a trial whose worker died (default 3)"
    )
    parser.add_argument(
        "--catch",
        action="store_true",
        help="record an exception in the objective as a FAIL trial and go on (default: stop)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-trial progress lines")
    parser.set_defaults(func=main)


def parse_kwargs(pairs: Sequence[str], flag: str) -> dict[str, Any]:
    """``["a=1", "b=mlp"]`` -> ``{"a": 1, "b": "mlp"}`` (values parsed as JSON when possible)."""
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(
                f"{flag} expects KEY=VALUE with a Python identifier as KEY, got {pair!r}."
            )
        try:
            kwargs[key] = json.loads(raw)
        except json.JSONDecodeError:
            kwargs[key] = raw
    return kwargs


def _load_attr(spec: str) -> Any:
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise ValueError(
            f"Objective {spec!r} is neither a built-in ({', '.join(BUILTIN_OBJECTIVES)}) nor "
            "module:function nor path/to/file.py:function."
        )
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise ValueError(f"Objective file {module_name!r} does not exist.")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        module_spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise ValueError(
                f"Cannot import {module_name!r} for --objective {spec!r} ({exc}); run from the "
                "folder that holds it or put it on PYTHONPATH."
            ) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"Module {module_name!r} has no attribute {attr!r}.") from None


def resolve_objective(spec: str, kwargs: dict[str, Any] | None = None) -> Callable[..., Any]:
    """The objective callable named by ``--objective`` (built-ins are imported lazily)."""
    kwargs = dict(kwargs or {})
    if spec == "digits":
        from optuna_llm.objectives.image_classification import ImageClassificationObjective

        return ImageClassificationObjective(**{"dataset": "digits", **kwargs})
    if ":" not in spec:
        from optuna_llm.objectives.toy import get_toy_function

        try:
            toy = get_toy_function(spec)
        except ValueError as exc:
            raise ValueError(
                f"{exc} Built-in objectives: {', '.join(BUILTIN_OBJECTIVES)}; or give "
                "module:function."
            ) from None
        if kwargs:
            raise ValueError(f"The toy objective {spec!r} takes no --objective-arg.")
        return toy.objective
    attr = _load_attr(spec)
    objective = attr(**kwargs) if kwargs else attr
    if not callable(objective):
        raise ValueError(f"{spec!r} is not callable: give a function taking an optuna.Trial.")
    return objective


def _budget(study: optuna.Study) -> tuple[int, int, int]:
    """(counted, running, waiting): finished trials that count toward --n-trials, and the rest.

    A FAIL trial that was retried is replaced by its retry and does not count.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.system_attrs["failed_trial"] for t in trials if "failed_trial" in t.system_attrs}
    counted = running = waiting = 0
    for t in trials:
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            counted += 1
        elif t.state == TrialState.FAIL and t.number not in retried:
            counted += 1
        elif t.state == TrialState.RUNNING:
            running += 1
        elif t.state == TrialState.WAITING:
            waiting += 1
    return counted, running, waiting


class StudyLock:
    """A lock shared by every worker of one study, held from the budget check to trial creation.

    PostgreSQL: a session advisory lock; MySQL: ``GET_LOCK``; SQLite and journal files: an
    ``flock`` on a file beside the database. Other storages (in-memory) need none. The database
    releases it when a worker dies, so a killed worker never blocks the others.
    """

    def __init__(self, storage: optuna.storages.BaseStorage, study_id: int) -> None:
        self._conn: Any = None
        self._file: Any = None
        self._sql: tuple[str, str] | None = None
        url = str(getattr(storage, "url", ""))
        if url.startswith("postgresql"):
            key = f"{_LOCK_NAMESPACE}, {int(study_id)}"
            self._sql = (f"SELECT pg_advisory_lock({key})", f"SELECT pg_advisory_unlock({key})")
        elif url.startswith("mysql"):
            name = f"'optuna_llm_study_{int(study_id)}'"
            self._sql = (f"SELECT GET_LOCK({name}, -1)", f"SELECT RELEASE_LOCK({name})")
        if self._sql is not None:
            self._conn = storage.engine.connect()  # type: ignore[attr-defined]
            return
        path = None
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            path = url[len("sqlite:///") :]
        backend = getattr(storage, "_backend", None)
        if path is None and backend is not None and hasattr(backend, "_file_path"):
            path = backend._file_path
        if path:
            self._file = open(f"{path}.optuna-llm.lock", "a")

    def acquire(self) -> None:
        if self._sql is not None:
            import sqlalchemy

            self._conn.execute(sqlalchemy.text(self._sql[0]))
            self._conn.commit()
        elif self._file is not None:
            import fcntl

            fcntl.flock(self._file, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._sql is not None:
            import sqlalchemy

            self._conn.execute(sqlalchemy.text(self._sql[1]))
            self._conn.commit()
        elif self._file is not None:
            import fcntl

            fcntl.flock(self._file, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._file is not None:
            self._file.close()


_LOCK_NAMESPACE = 0x4F4C4C  # first key of the two-key advisory lock: "OLL"


def run_worker(
    study: optuna.Study,
    objective: Callable[..., Any],
    n_trials: int,
    *,
    catch: bool = False,
    poll_interval: float = 5.0,
    wait_for_running: bool = True,
    progress: Callable[[str], None] | None = print,
) -> int:
    """Run trials until ``study`` holds ``n_trials`` counted trials; return how many ran here.

    Before each trial the worker re-reads the study under a :class:`StudyLock` (released once
    the new trial exists): it starts one if counted + running + waiting < ``n_trials`` or a
    retried/enqueued trial is waiting, so several workers together run exactly ``n_trials``.
    When the budget is taken by trials still running elsewhere it waits
    (``wait_for_running``, with heartbeats on) so that a trial whose worker dies is retried
    here instead of being lost.
    """
    from optuna.storages import fail_stale_trials

    from optuna_llm._compat import is_heartbeat_enabled

    heartbeat = is_heartbeat_enabled(study._storage)
    lock = StudyLock(study._storage, study._study_id)
    warned: set[int] = set()
    ran = 0
    try:
        while True:
            fail_stale_trials(study)
            lock.acquire()
            held = True
            try:
                counted, running, waiting = _budget(study)
                if counted >= n_trials:
                    break
                if counted + running + waiting >= n_trials and waiting == 0:
                    if not (heartbeat and wait_for_running and running):
                        break
                    for trial in never_beaten_trials(study):
                        if trial.number not in warned:
                            warned.add(trial.number)
                            print(_never_beaten_warning(study, trial), file=sys.stderr)
                    lock.release()
                    held = False
                    time.sleep(poll_interval)
                    continue

                def locked_objective(trial: optuna.Trial) -> Any:
                    # The trial exists (RUNNING) now, so the next worker's count includes it.
                    nonlocal held
                    if held:
                        lock.release()
                        held = False
                    return objective(trial)

                finished: list[optuna.trial.FrozenTrial] = []

                def record(_study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
                    finished.append(trial)  # noqa: B023 - called before the loop moves on

                study.optimize(
                    locked_objective,
                    n_trials=1,
                    catch=(Exception,) if catch else (),
                    callbacks=[record],
                )
            finally:
                if held:
                    lock.release()
            ran += 1
            if progress is not None:
                done = _budget(study)[0]
                for trial in finished:
                    progress(_progress_line(study, trial, done, n_trials))
    finally:
        lock.close()
    return ran


def never_beaten_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """RUNNING trials with no heartbeat ever recorded, older than the grace period.

    Optuna's stale check never fails such a trial: its worker died between creating it and its
    first heartbeat (milliseconds), or runs without a heartbeat (``ask``/``tell`` or a storage
    made without ``heartbeat_interval``). Only RDB storages record heartbeats.
    """
    import datetime

    import sqlalchemy
    from optuna.trial import TrialState

    backend: Any = getattr(study._storage, "_backend", study._storage)  # under Optuna's cache
    interval = getattr(backend, "heartbeat_interval", None)
    if interval is None or not hasattr(backend, "engine"):
        return []
    grace = backend.grace_period or 2 * interval
    oldest = datetime.datetime.now() - datetime.timedelta(seconds=grace + interval)
    running = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.datetime_start is not None and t.datetime_start < oldest
    ]
    if not running:
        return []
    with backend.engine.connect() as conn:
        beaten = set(
            conn.execute(
                sqlalchemy.text(
                    "SELECT trial_id FROM trial_heartbeats WHERE trial_id IN :ids"
                ).bindparams(sqlalchemy.bindparam("ids", expanding=True)),
                {"ids": [t._trial_id for t in running]},
            ).scalars()
        )
    return [t for t in running if t._trial_id not in beaten]


def _never_beaten_warning(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    return (
        f"warning: this worker waits for trial {trial.number}, RUNNING since "
        f"{trial.datetime_start:%Y-%m-%d %H:%M:%S} without ever recording a heartbeat, so "
        "Optuna's stale check will never fail and retry it. If a process without heartbeats "
        "runs it, let it finish. If its worker died (killed between creating the trial and its "
        "first heartbeat), mark it failed and this worker stops waiting for it: python -c "
        f"\"import optuna; s = optuna.load_study(study_name='{study.study_name}', storage=URL); "
        f's._storage.set_trial_state_values({trial._trial_id}, optuna.trial.TrialState.FAIL)"'
    )


def _progress_line(study: optuna.Study, trial: optuna.trial.FrozenTrial, done: int, n: int) -> str:
    value = trial.values if trial.values is None or len(trial.values) > 1 else trial.values[0]
    source = trial.user_attrs.get("source")
    parts = [f"[{done}/{n}] trial {trial.number} {trial.state.name.lower()}", f"value={value}"]
    if source:
        parts.append(f"source={source}")
    if len(study.directions) == 1:
        try:
            best = study.best_trial
            parts.append(f"best={best.value} (trial {best.number})")
        except ValueError:
            pass
    return "  ".join(parts)


def main(args: argparse.Namespace) -> int:
    import warnings

    import optuna

    # Heartbeat, retry and stale-trial checks are "experimental" in Optuna since 2.9: quiet.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    from optuna_llm.samplers import make_sampler
    from optuna_llm.storage import make_storage

    if args.n_trials < 1:
        print(f"error: --n-trials must be at least 1, got {args.n_trials}.", file=sys.stderr)
        return 2
    try:
        objective_kwargs = parse_kwargs(args.objective_arg, "--objective-arg")
        sampler_kwargs = parse_kwargs(args.sampler_arg, "--sampler-arg")
        objective = resolve_objective(args.objective, objective_kwargs)
        sampler = make_sampler(args.sampler, seed=args.seed, **sampler_kwargs)
        storage = make_storage(
            args.storage,
            heartbeat=args.heartbeat,
            grace_period=args.grace_period,
            max_retry=args.max_retry,
        )
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    directions = args.direction or ["minimize"]
    study = optuna.create_study(
        storage=storage,
        study_name=args.study_name,
        sampler=sampler,
        directions=directions,
        load_if_exists=True,
    )
    existing = [d.name.lower() for d in study.directions]
    if existing != directions:
        print(
            f"error: study {args.study_name!r} already exists with directions {existing}; "
            f"pass the same --direction flags (got {directions}) or another --study_name.",
            file=sys.stderr,
        )
        return 2

    if args.quiet:
        progress = None
    else:
        progress = _flush_print
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        progress(
            f"worker {socket.gethostname()}:{os.getpid()} on study {args.study_name!r} "
            f"(sampler {args.sampler}, {args.n_trials} trials in total)"
        )
    ran = run_worker(
        study,
        objective,
        args.n_trials,
        catch=args.catch,
        poll_interval=max(1.0, min(5.0, args.heartbeat / 2 or 5.0)),
        progress=progress,
    )
    if progress is not None:
        counted = _budget(study)[0]
        progress(f"done: this worker ran {ran} trial(s); the study holds {counted}/{args.n_trials}")
    return 0


def _flush_print(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    # `python -m optuna_llm.cli._run ...` = `optuna-llm run ...` without the other sub-commands.
    _parser = argparse.ArgumentParser(prog="optuna-llm")
    register(_parser.add_subparsers(dest="command", required=True))
    _args = _parser.parse_args(["run", *sys.argv[1:]])
    sys.exit(_args.func(_args))
