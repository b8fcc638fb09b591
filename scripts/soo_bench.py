"""SOO/BaMSOO benchmark: seconds per suggestion, and regret on BBOB (cocoex) f1-f24 in 5-D.

Prints two tables (markdown). Examples:

    python scripts/soo_bench.py                      # everything (long: GPSampler is slow)
    python scripts/soo_bench.py --part timing
    python scripts/soo_bench.py --part bbob --seeds 5 --samplers soo bamsoo random tpe gp

Timing: a 5-D sphere study is pre-filled with ``n`` finished trials (``study.add_trials``),
then the median wall time of ``ask`` + the five suggestions of the next ``--repeats`` trials is
taken (the first call of a fresh sampler also builds its caches: SOO's tree of finished trials,
the GP's kernel parameters; later calls update them, as in a long-running worker). Pre-fills
(``--prefill``): ``own`` = SOO's own run for SOO and BaMSOO (BaMSOO gets SOO's trials
relabelled as its nodes: a valid BaMSOO tree with no GP estimates), random trials for TPE and
GPSampler; ``soo`` = every sampler gets SOO's run; ``random`` = every sampler gets the same
random trials (SOO/BaMSOO then have no tree yet, but BaMSOO's GP is fitted on all of them).
The last two compare like for like.

BBOB: ``cocoex.BareProblem("bbob", f, 5, 1)`` on ``[-5, 5]^5``; regret = best value after 50
evaluations - the exact optimum; the table shows the mean over seeds per function and the
geometric mean of the regret ratios to Random over all functions.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
import optuna

from optuna_llm.samplers import make_sampler
from optuna_llm.samplers._partition import space_hash

optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.filterwarnings("ignore")

DIM = 5


def sphere(trial: optuna.Trial) -> float:
    x = np.array([trial.suggest_float(f"x{i}", -5, 5) for i in range(DIM)])
    return float(((x - 1.234) ** 2).sum())


def _relabel_soo_as_bamsoo(
    trials: list[optuna.trial.FrozenTrial],
) -> list[optuna.trial.FrozenTrial]:
    space = {f"x{i}": optuna.distributions.FloatDistribution(-5, 5) for i in range(DIM)}
    new_hash = space_hash(space, 3, "bamsoo")
    out = []
    for t in trials:
        attrs = {k.replace("soo:", "bamsoo:", 1): v for k, v in t.system_attrs.items()}
        if "bamsoo:space" in attrs:
            attrs["bamsoo:space"] = new_hash
        out.append(
            optuna.trial.create_trial(
                params=t.params,
                distributions=t.distributions,
                value=t.value,
                system_attrs=attrs,
                user_attrs=t.user_attrs,
            )
        )
    return out


def _history(source: str, n: int, cache: dict) -> list[optuna.trial.FrozenTrial]:
    if (source, n) not in cache:
        sampler = make_sampler("soo", seed=0) if source == "soo" else make_sampler("random", seed=0)
        study = optuna.create_study(sampler=sampler)
        study.optimize(sphere, n_trials=n)
        cache[source, n] = study.trials
    return cache[source, n]


def _prefilled(name: str, n: int, prefill: str, cache: dict) -> optuna.Study:
    """A study of sampler ``name`` pre-filled with ``n`` finished trials: SOO's own run
    (``soo``), random ones (``random``), or ``own``: SOO's run for SOO/BaMSOO and random
    trials for the others (what each sampler would have produced, roughly)."""
    own_tree = name in ("soo", "bamsoo")
    source = "soo" if prefill == "soo" or (prefill == "own" and own_tree) else "random"
    trials = _history(source, n, cache)
    study = optuna.create_study(sampler=make_sampler(name, seed=0))
    if name == "bamsoo" and source == "soo":
        trials = _relabel_soo_as_bamsoo(trials)  # a valid BaMSOO tree with no GP estimates
    study.add_trials(trials)
    return study


def timing(sizes: list[int], samplers: list[str], repeats: int, prefills: list[str]) -> None:
    cache: dict = {}
    for prefill in prefills:
        print(
            f"\nSeconds per suggestion (5-D, median of {repeats}; study pre-filled with n "
            f"finished trials: {prefill})\n"
        )
        print("| sampler | " + " | ".join(f"n={n}" for n in sizes) + " |")
        print("|---|" + "---|" * len(sizes))
        for name in samplers:
            row = []
            for n in sizes:
                study = _prefilled(name, n, prefill, cache)
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    trial = study.ask()
                    value = sphere(trial)  # the suggestions are where samplers work
                    times.append(time.perf_counter() - t0)
                    study.tell(trial, value)
                row.append(f"{statistics.median(times):.4f}")
            print(f"| {name} | " + " | ".join(row) + " |", flush=True)


def _bbob_objective(problem: Callable[[list[float]], float]) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        return float(problem([trial.suggest_float(f"x{i}", -5, 5) for i in range(DIM)]))

    return objective


def bbob(
    samplers: list[str], seeds: int, budget: int, functions: list[int], first_seed: int = 0
) -> None:
    import cocoex

    print(f"\nBBOB 5-D regret after {budget} evaluations (mean over {seeds} seeds)\n")
    print("| f | " + " | ".join(samplers) + " |")
    print("|---|" + "---|" * len(samplers))
    ratios: dict[str, list[float]] = {s: [] for s in samplers}
    for f in functions:
        problem = cocoex.BareProblem("bbob", f, DIM, 1)
        means = {}
        for name in samplers:
            regrets = []
            for seed in range(first_seed, first_seed + seeds):
                study = optuna.create_study(sampler=make_sampler(name, seed=seed))
                study.optimize(_bbob_objective(problem), n_trials=budget)
                regrets.append(study.best_value - problem.best_value())
            means[name] = statistics.mean(regrets)
        print(f"| f{f} | " + " | ".join(f"{means[s]:.3g}" for s in samplers) + " |", flush=True)
        if "random" in means:
            for s in samplers:
                ratios[s].append(max(means[s], 1e-12) / max(means["random"], 1e-12))
    if "random" in samplers:
        geo = {s: math.exp(statistics.mean(math.log(r) for r in ratios[s])) for s in samplers}
        cells = " | ".join(f"{geo[s]:.3f}" for s in samplers)
        print(f"| geo-mean regret / random | {cells} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["timing", "bbob", "all"], default="all")
    parser.add_argument("--samplers", nargs="+", default=["soo", "bamsoo", "random", "tpe", "gp"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 1000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--prefill", nargs="+", choices=["own", "soo", "random"], default=["own", "soo", "random"]
    )
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--functions", nargs="+", type=int, default=list(range(1, 25)))
    args = parser.parse_args()
    if args.part in ("timing", "all"):
        samplers = [s for s in args.samplers if s != "random"]
        timing(args.sizes, samplers, args.repeats, args.prefill)
    if args.part in ("bbob", "all"):
        bbob(args.samplers, args.seeds, args.budget, args.functions, args.first_seed)


if __name__ == "__main__":
    main()
