"""A 16-point Latin hypercube design with LatinHypercubeSampler loaded from OptunaHub."""

from __future__ import annotations

import optuna
import optunahub


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    optimizer = trial.suggest_categorical("optimizer", ["adam", "sgd"])
    return x**2 + (lr - 1e-3) ** 2 + (0.5 if optimizer == "sgd" else 0.0)


if __name__ == "__main__":
    module = optunahub.load_module(package="samplers/latin_hypercube")
    study = optuna.create_study(sampler=module.LatinHypercubeSampler(16, seed=0))
    study.optimize(objective, n_trials=16)
    print(study.best_params, study.best_value)
