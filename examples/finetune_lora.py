"""
Optuna example: tune LoRA fine-tuning of an LLM with LitGPT, scored by lm-eval.

The slides' study: Llama-3.2-3B fine-tuned with LoRA on Alpaca for one epoch; the objective is
HellaSwag accuracy (validation), MMLU is recorded as the held-out test. The search space is the
slides' (learning rate, LoRA rank, alpha, dropout, weight decay); SOO explores it.

On GPUs (after `litgpt download meta-llama/Llama-3.2-3B --checkpoint_dir checkpoints`):

    python examples/finetune_lora.py --devices 4 --n-trials 50

On a CPU, in a minute, with a tiny random-initialised model and local data built on the fly
(tests/helpers/shims holds the torchvision workaround CPU-only machines need to import lightning):

    PYTHONPATH=tests/helpers/shims:tests/helpers python examples/finetune_lora.py --tiny
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import optuna

from optuna_llm.objectives.finetune import FinetuneError, LoRAFinetuneObjective
from optuna_llm.samplers import SOOSampler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true", help="tiny model and local data, CPU")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--n-trials", type=int, default=None)
    args = parser.parse_args()

    if args.tiny:
        import tiny_llm  # tests/helpers/tiny_llm.py

        setup = tiny_llm.build(Path(tempfile.mkdtemp(prefix="tiny_llm_")))
        objective = LoRAFinetuneObjective(
            out_dir=setup.checkpoint_dir.parent / "runs", **tiny_llm.tiny_objective_kwargs(setup)
        )
        n_trials = args.n_trials or 2
        storage = f"sqlite:///{setup.checkpoint_dir.parent / 'finetune_lora.db'}"
    else:
        objective = LoRAFinetuneObjective(
            "checkpoints/meta-llama/Llama-3.2-3B", devices=args.devices
        )
        n_trials = args.n_trials or 50
        storage = "sqlite:///finetune_lora.db"

    objective.check()  # missing checkpoint/data, or no GPU for the configuration: fail now
    study = optuna.create_study(
        direction="maximize",
        sampler=SOOSampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
        storage=storage,
        study_name="tiny-lora" if args.tiny else "llama-3.2-3b-lora",
        load_if_exists=True,
    )
    # A failed fine-tune marks its trial FAIL (its log path is in the user attrs); go on.
    study.optimize(objective, n_trials=n_trials, catch=(FinetuneError,))

    best = study.best_trial
    print(f"Best {objective.val_task} {objective.metric}: {best.value:.4f}")
    print(f"  params: {best.params}")
    for task in objective.test_tasks:
        print(f"  {task} (test): {best.user_attrs.get(f'{task}_acc')}")


if __name__ == "__main__":
    main()
