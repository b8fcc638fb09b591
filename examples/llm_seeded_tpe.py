"""LLM-seeded TPE: the LLM chooses the first 10 trials in one request, then TPE.

python examples/llm_seeded_tpe.py            # embedded model
OPENAI_BASE_URL=http://127.0.0.1:8080/v1 python examples/llm_seeded_tpe.py
"""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution, IntDistribution

from optuna_llm.samplers import LLMSeededSampler

SPACE = {
    "n_layers": IntDistribution(1, 6),
    "units": IntDistribution(16, 512, log=True),
    "dropout": FloatDistribution(0.0, 0.5),
}


def objective(trial: optuna.Trial) -> float:
    n_layers = trial.suggest_int("n_layers", 1, 6)
    units = trial.suggest_int("units", 16, 512, log=True)
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    return (n_layers - 3) ** 2 + (units / 128 - 1) ** 2 + 4 * (dropout - 0.2) ** 2


if __name__ == "__main__":
    sampler = LLMSeededSampler(
        optuna.samplers.TPESampler(seed=0),
        n_seed_trials=10,
        search_space=SPACE,
        problem="An MLP's validation loss over depth, width and dropout; minimise it.",
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=30)
    print([t.user_attrs["source"] for t in study.trials])
    print(study.best_params, study.best_value)
