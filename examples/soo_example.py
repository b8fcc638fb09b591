"""Optimise Branin with SOOSampler; run this script several times at once (or on several
machines) against one storage to get that many workers on one shared SOO tree.

    python examples/soo_example.py                                   # in-memory
    python examples/soo_example.py --storage postgresql://host/db    # shared study
"""

from __future__ import annotations

import argparse
import math

import optuna

from optuna_llm.samplers import SOOSampler


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 10)
    y = trial.suggest_float("y", 0, 15)
    a = y - 5.1 / (4 * math.pi**2) * x**2 + 5 / math.pi * x - 6
    return a**2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--storage", default=None)
    parser.add_argument("--n-trials", type=int, default=100)
    args = parser.parse_args()
    study = optuna.create_study(
        study_name="soo-branin",
        storage=args.storage,
        load_if_exists=True,
        sampler=SOOSampler(k=3, seed=0),
    )
    study.optimize(objective, n_trials=args.n_trials)
    best = study.best_trial
    node = best.user_attrs.get("node")
    print(f"best value {best.value:.5f} (optimum 0.39789) at {best.params}, node {node}")
