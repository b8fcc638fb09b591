"""Minimise the Branin function with LLMSampler loaded from OptunaHub.

The LLM is any OpenAI-compatible server named by OPENAI_BASE_URL, OPENAI_API_KEY and
OPTUNA_LLM_MODEL; with none of them, the embedded Gemma 3 270M of ``optuna-llm[local]`` runs
in-process (no network, no key).
"""

from __future__ import annotations

import math

import optuna
import optunahub


def branin(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 10)
    y = trial.suggest_float("y", 0, 15)
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


if __name__ == "__main__":
    module = optunahub.load_module(package="samplers/llm_sampler")
    sampler = module.LLMSampler(problem="Minimise the Branin function of x and y.", seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(branin, n_trials=20)
    for trial in study.trials:
        print(trial.number, trial.user_attrs.get("source"), trial.user_attrs.get("rationale"))
    print(study.best_params, study.best_value)
