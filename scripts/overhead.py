"""Suggestion overhead: seconds a sampler takes to propose one trial, against the number of
finished trials in the study (10, 100, 1000 by default). Prints a Markdown table.

The history is the HPOBench-NN search space of ``hpobench/car`` (2 log-floats, 2 log-ints, 1 int,
the space a user tuning an MLP has). For Optuna's samplers and LHS it is filled with random
trials (``study.add_trials``). SOO reads its tree from its own trials, so its history is made by
SOO itself; BaMSOO's cost is its GP fitted on every finished trial, so it gets the random
history (a history of its own 1000 trials would take hours to build). Each cell is the
median over ``--repeats`` ask/tell cycles; a cell where one suggestion exceeds ``--max-seconds``
is stopped and reported as ``> N s`` and the larger histories of that sampler are skipped.

Run:
    nice .venv/bin/python scripts/overhead.py --samplers random tpe gp --sizes 10 100 1000
"""

from __future__ import annotations

import argparse
import signal
import statistics
import time
from types import FrameType

import optuna

from optuna_llm.bench._tasks import get_task
from optuna_llm.samplers import make_sampler

DEFAULT_SAMPLERS = (
    "random",
    "tpe",
    "gp",
    "qmc",
    "cmaes",
    "lhs",
    "lhs-gp",
    "soo",
    "bamsoo",
    "llm-seeded-tpe",
    "llm-seeded-gp",
    "llm",
)
OWN_HISTORY = ("soo",)


def history(n: int, sampler_name: str | None) -> optuna.Study:
    """A study with ``n`` finished trials on the HPOBench-NN space, by random or by the sampler."""
    task = get_task("hpobench/car")
    task.reseed(0)
    sampler = (
        make_sampler(sampler_name, seed=0)
        if sampler_name
        else optuna.samplers.RandomSampler(seed=0)
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: task.evaluate(t).seen, n_trials=n)
    return study


class TooSlow(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise TooSlow


def seconds_per_suggestion(
    name: str, n: int, repeats: int, max_seconds: float, kwargs: dict
) -> tuple[float, bool]:
    """Median seconds of up to ``repeats`` ask/evaluate cycles; True if one exceeded the cap."""
    base = history(n, name if name in OWN_HISTORY else None)
    task = get_task("hpobench/car")
    task.reseed(1)
    study = optuna.create_study(sampler=make_sampler(name, seed=0, **kwargs))
    if name not in OWN_HISTORY:
        study.add_trials(base.trials)
    else:
        study = base
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, max_seconds)  # a GP on 1000 trials can take minutes
        try:
            trial = study.ask()
            evaluation = task.evaluate(trial)  # suggestions happen here, lazily
        except TooSlow:
            return time.perf_counter() - start, True
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        times.append(time.perf_counter() - start)
        study.tell(trial, evaluation.seen)
        if times[-1] > max_seconds:
            return times[-1], True
    return statistics.median(times), False


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--samplers", nargs="+", default=list(DEFAULT_SAMPLERS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    signal.signal(signal.SIGALRM, _alarm)

    print("| sampler | " + " | ".join(f"{n} trials" for n in args.sizes) + " |")
    print("|---|" + "---|" * len(args.sizes))
    for name in args.samplers:
        cells = []
        skip = False
        for n in args.sizes:
            if skip:
                cells.append("-")
                continue
            # LHS plans one design over the whole study: size it to the history plus the asks.
            kwargs = {"n_samples": n + args.repeats} if name == "lhs" else {}
            try:
                value, over = seconds_per_suggestion(
                    name, n, args.repeats, args.max_seconds, kwargs
                )
                cells.append(f"> {args.max_seconds:.0f} s" if over else f"{value:.4f}")
                skip = over
            except Exception as exc:  # report, keep measuring the others
                cells.append(f"error: {type(exc).__name__}: {str(exc)[:60]}")
                skip = True
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
