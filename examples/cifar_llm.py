"""Tune ResNet-9 on CIFAR-10 with the LLM sampler, then compare with a random-search baseline.

Needs CIFAR-10 under ./data (the error message gives the one-line fetch command) and an LLM:
the embedded Gemma by default, or any OpenAI-compatible server via OPENAI_BASE_URL. Without
CIFAR-10, pass --dataset digits to run the same workflow on scikit-learn's digits in seconds.

    python examples/cifar_llm.py --dataset digits --arch mlp --n-trials 5 --epochs 2
"""

from __future__ import annotations

import argparse

import optuna

from optuna_llm.analysis import best_so_far_curve, plot_curves
from optuna_llm.objectives import ImageClassificationObjective
from optuna_llm.objectives._choices import ARCHITECTURES, DATASETS
from optuna_llm.samplers import LLMSampler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="cifar10", choices=DATASETS)
    parser.add_argument(
        "--dataset-dir", "--dataset_dir", default="./data", help="CIFAR-10's folder"
    )
    parser.add_argument("--arch", default="resnet9", choices=ARCHITECTURES)
    parser.add_argument("--n-trials", type=int, default=10, help="trials of the LLM study")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--random-seeds", type=int, default=20, help="one-trial random runs")
    args = parser.parse_args()

    objective = ImageClassificationObjective(
        dataset=args.dataset,
        arch=args.arch,
        dataset_dir=args.dataset_dir if args.dataset == "cifar10" else None,
        epochs=args.epochs,
    )
    llm = optuna.create_study(sampler=LLMSampler(problem=objective.describe(), seed=0))
    llm.optimize(objective, n_trials=args.n_trials)
    print("LLM best:", llm.best_value, llm.best_params)

    # The paper's baseline: many one-trial random runs, bootstrapped.
    baseline = []
    for seed in range(args.random_seeds):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        study.optimize(objective, n_trials=1)
        baseline.append(study)
    curves = [
        best_so_far_curve(baseline, n_trials=args.n_trials),
        best_so_far_curve(llm, label="LLM", random_search=False),
    ]
    print("plot:", plot_curves(curves, "best_so_far.png", title=f"{args.arch} on {args.dataset}"))


if __name__ == "__main__":
    main()
