"""Minimise a two-parameter function with BaMSOOSampler loaded from OptunaHub."""

from __future__ import annotations

import optuna
import optunahub


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    y = trial.suggest_float("y", -5, 5)
    return (x - 1.3) ** 2 + (y + 2) ** 2


if __name__ == "__main__":
    module = optunahub.load_module(package="samplers/bamsoo")
    study = optuna.create_study(sampler=module.BaMSOOSampler(seed=0))
    study.optimize(objective, n_trials=40)
    evaluated = sum(t.user_attrs.get("source") == "bamsoo" for t in study.trials)
    print(study.best_params, study.best_value, f"{evaluated} trials chosen by the tree")
