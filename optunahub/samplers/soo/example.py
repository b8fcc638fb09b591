"""Minimise a two-parameter function with SOOSampler loaded from OptunaHub."""

from __future__ import annotations

import optuna
import optunahub


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    y = trial.suggest_int("y", -5, 5)
    return (x - 1.3) ** 2 + (y + 2) ** 2


if __name__ == "__main__":
    module = optunahub.load_module(package="samplers/soo")
    study = optuna.create_study(sampler=module.SOOSampler(k=3, seed=0))
    study.optimize(objective, n_trials=60)
    print(study.best_params, study.best_value)
