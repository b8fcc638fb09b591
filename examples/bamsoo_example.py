"""Optimise a 5-D quadratic with BaMSOOSampler: SOO's tree, with a GP that spares evaluations.

python examples/bamsoo_example.py
"""

from __future__ import annotations

import optuna

from optuna_llm.samplers import BaMSOOSampler

CENTRE = [0.3, -0.7, 1.1, 0.2, -1.4]


def objective(trial: optuna.Trial) -> float:
    return sum((trial.suggest_float(f"x{i}", -2, 2) - c) ** 2 for i, c in enumerate(CENTRE))


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=BaMSOOSampler(k=3, eta=0.05, seed=0))
    study.optimize(objective, n_trials=60)
    estimated = sum(len(t.user_attrs.get("gp_estimated", {})) for t in study.trials)
    print(
        f"best value {study.best_value:.5f} after {len(study.trials)} evaluations; "
        f"{estimated} nodes were GP-estimated instead of evaluated"
    )
