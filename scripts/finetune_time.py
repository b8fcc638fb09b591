"""Wall time of one LoRA-objective trial on this machine, split into its stages.

Builds the tiny random-initialised Llama, its tokenizer, a local Alpaca file and local
HellaSwag/MMLU-format tasks (tests/helpers/tiny_llm.py), then runs ``--trials`` trials of
``LoRAFinetuneObjective`` and prints a table: the ``litgpt finetune_lora`` subprocess (start-up,
training, final validation, LoRA merge), the conversion to a Hugging Face model, the lm-eval
scoring, the evaluation process's start-up (imports) and the total.

    .venv/bin/python scripts/finetune_time.py --trials 3 --steps 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The torchvision workaround for CPU-only machines (tests/helpers/shims/sitecustomize.py;
# inert where torchvision matches torch), here and, through PYTHONPATH, in the LitGPT/lm-eval
# subprocesses.
_SHIMS = str(ROOT / "tests" / "helpers" / "shims")
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_SHIMS, os.environ.get("PYTHONPATH")) if p)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path[:0] = [_SHIMS, str(ROOT / "tests" / "helpers")]
import optuna  # noqa: E402
import sitecustomize  # noqa: E402, F401
import tiny_llm  # noqa: E402

from optuna_llm.objectives.finetune import LoRAFinetuneObjective  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps a fine-tune")
    parser.add_argument("--eval_examples", type=int, default=12, help="examples a task")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="finetune_time_") as tmp:
        t0 = time.perf_counter()
        setup = tiny_llm.build(Path(tmp), n_eval=args.eval_examples)
        build_s = time.perf_counter() - t0
        kwargs = tiny_llm.tiny_objective_kwargs(setup)
        kwargs["max_steps"] = args.steps
        objective = LoRAFinetuneObjective(out_dir=Path(tmp) / "runs", **kwargs)  # type: ignore[arg-type]
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
        rows = []
        for _ in range(args.trials):
            t0 = time.perf_counter()
            study.optimize(objective, n_trials=1)
            total = time.perf_counter() - t0
            a = study.trials[-1].user_attrs
            startup = a["time_eval_stage_s"] - a["time_convert_s"] - a["time_eval_s"]
            rows.append((a["time_finetune_s"], a["time_convert_s"], a["time_eval_s"], startup,
                         total))  # fmt: skip

    names = ("fine-tune (litgpt subprocess)", "conversion to HF", "lm-eval scoring",
             "eval process start-up", "trial total")  # fmt: skip
    print(f"tiny Llama (2 layers, 64 wide), {args.steps} steps, {args.eval_examples} examples "
          f"x 2 tasks, {args.trials} trials; fixture build {build_s:.1f} s")  # fmt: skip
    print(f"| {'stage':<30} | {'median s':>8} | {'min s':>7} | {'max s':>7} |")
    print(f"|{'-' * 32}|{'-' * 10}|{'-' * 9}|{'-' * 9}|")
    for i, name in enumerate(names):
        col = [r[i] for r in rows]
        print(f"| {name:<30} | {statistics.median(col):8.2f} | {min(col):7.2f} | {max(col):7.2f} |")


if __name__ == "__main__":
    main()
