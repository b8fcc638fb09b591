"""LLMSampler against any OpenAI-compatible endpoint, with record/replay.

    # a local llama.cpp server, vLLM or Ollama:
    python examples/llm_sampler_openai.py --base-url http://127.0.0.1:8080/v1 --model gemma
    # OpenAI itself (the key is read from the environment and never stored):
    OPENAI_API_KEY=... python examples/llm_sampler_openai.py --model gpt-4o-mini

Run it twice with the same --cache: the second run replays every exchange and gives the same
trials without calling the LLM.
"""

from __future__ import annotations

import argparse

import optuna

from optuna_llm.samplers import LLMSampler


def objective(trial: optuna.Trial) -> float:
    optimizer = trial.suggest_categorical("optimizer", ["adam", "sgd"])
    lr = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
    wd = trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True)
    # A stand-in for a training run: best near lr=3e-3 (adam) / 3e-2 (sgd), wd=5e-4.
    import math

    best_lr = 3e-3 if optimizer == "adam" else 3e-2
    return (math.log10(lr / best_lr)) ** 2 + 0.3 * (math.log10(wd / 5e-4)) ** 2


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--cache", default="llm-exchanges.jsonl")
    parser.add_argument("--storage", default="sqlite:///llm-openai-example.db")
    args = parser.parse_args()
    sampler = LLMSampler(
        "A classifier's validation loss as a function of optimizer, learning rate and weight "
        "decay; minimise it.",
        base_url=args.base_url,
        model=args.model,
        cache=args.cache,
        max_total_tokens=50_000,
    )
    study = optuna.create_study(
        sampler=sampler, storage=args.storage, study_name="llm-openai-example", load_if_exists=True
    )
    study.optimize(objective, n_trials=15)
    print(study.best_trial.params, study.best_value)
    print("rationale:", study.best_trial.user_attrs.get("rationale"))
