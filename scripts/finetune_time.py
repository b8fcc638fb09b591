"""Wall time of one LoRA-objective trial on this machine, split into its stages.

Builds the tiny random-initialised Llama, its tokenizer, a local Alpaca file and local
HellaSwag/MMLU-format tasks (tests/helpers/tiny_llm.py), then runs ``--trials`` trials of
``LoRAFinetuneObjective`` and prints a table: the ``litgpt finetune_lora`` subprocess (start-up,
training, final validation, LoRA merge), the conversion to a Hugging Face model, the lm-eval
scoring, the evaluation process's start-up (imports) and the total; then one LoRA optimizer
step, from LitGPT's own ``iter_time`` log (the micro-batches of a step summed): the first step
(on CUDA: kernel loading and the allocator's warm-up included) and the later ones.

    .venv/bin/python scripts/finetune_time.py --trials 3 --steps 4 [--device cpu|cuda]

LitGPT and lm-eval pick CUDA themselves when torch sees a GPU; ``--device cpu`` hides the GPUs
from them (``CUDA_VISIBLE_DEVICES=``), ``--device cuda`` fails unless torch sees one.
"""

from __future__ import annotations

import argparse
import csv
import math
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

from optuna_llm.objectives._litgpt import metrics_file  # noqa: E402
from optuna_llm.objectives.finetune import LoRAFinetuneObjective  # noqa: E402


def step_seconds(metrics_csv: Path, accumulation: int) -> list[float]:
    """Seconds of each optimizer step: LitGPT's ``iter_time`` of its micro-batches, summed.

    ``metrics_csv`` is LitGPT's CSV log (``logs/csv/version_*/metrics.csv``), one row an
    iteration when ``log_interval`` is 1 (its default); a step is ``accumulation`` iterations.
    """
    steps: dict[int, float] = {}
    with metrics_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("iter") and row.get("iter_time"):
                step = math.ceil(int(float(row["iter"])) / accumulation)
                steps[step] = steps.get(step, 0.0) + float(row["iter_time"])
    return [steps[s] for s in sorted(steps)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps a fine-tune")
    parser.add_argument("--eval_examples", type=int, default=12, help="examples a task")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--precision", default="32-true", help="LitGPT's --precision")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # LitGPT's and lm-eval's subprocesses inherit it
    import torch

    cuda = args.device != "cpu" and torch.cuda.is_available()
    if args.device == "cuda" and not cuda:
        raise SystemExit(
            f"--device cuda: torch {torch.__version__} sees no CUDA device (built for CUDA "
            f"{torch.version.cuda}). Use --device cpu, or a CUDA build of torch on a GPU machine."
        )
    device = f"cuda ({torch.cuda.get_device_name(0)})" if cuda else "cpu"

    with tempfile.TemporaryDirectory(prefix="finetune_time_") as tmp:
        t0 = time.perf_counter()
        setup = tiny_llm.build(Path(tmp), n_eval=args.eval_examples)
        build_s = time.perf_counter() - t0
        kwargs = tiny_llm.tiny_objective_kwargs(setup)
        kwargs["max_steps"] = args.steps
        kwargs["precision"] = args.precision
        train_args = kwargs["train_args"]
        assert isinstance(train_args, dict)
        accumulation = train_args["global_batch_size"] // train_args["micro_batch_size"]
        objective = LoRAFinetuneObjective(out_dir=Path(tmp) / "runs", **kwargs)  # type: ignore[arg-type]
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
        rows, steps = [], []
        for _ in range(args.trials):
            t0 = time.perf_counter()
            study.optimize(objective, n_trials=1)
            total = time.perf_counter() - t0
            a = study.trials[-1].user_attrs
            startup = a["time_eval_stage_s"] - a["time_convert_s"] - a["time_eval_s"]
            rows.append((a["time_finetune_s"], a["time_convert_s"], a["time_eval_s"], startup,
                         total))  # fmt: skip
            log = metrics_file(Path(a["trial_dir"]) / "finetune")
            if log is None:
                raise SystemExit(f"LitGPT wrote no metrics.csv under {a['trial_dir']}/finetune")
            steps.append(step_seconds(log, accumulation))

    names = ("fine-tune (litgpt subprocess)", "conversion to HF", "lm-eval scoring",
             "eval process start-up", "trial total")  # fmt: skip
    print(f"tiny Llama (2 layers, 64 wide), {args.steps} steps, {args.eval_examples} examples "
          f"x 2 tasks, {args.trials} trials, device {device}, precision {args.precision}; "
          f"fixture build {build_s:.1f} s")  # fmt: skip
    print(f"| {'stage':<30} | {'median s':>8} | {'min s':>7} | {'max s':>7} |")
    print(f"|{'-' * 32}|{'-' * 10}|{'-' * 9}|{'-' * 9}|")
    for i, name in enumerate(names):
        col = [r[i] for r in rows]
        print(f"| {name:<30} | {statistics.median(col):8.2f} | {min(col):7.2f} | {max(col):7.2f} |")
    size, length = train_args["global_batch_size"], train_args["max_seq_length"]
    batch = f"{size} sequences of <= {length} tokens"
    step_rows = [("LoRA step, first", [s[0] for s in steps if s])]
    step_rows.append(("LoRA step, later ones", [x for s in steps for x in s[1:]]))
    print(f"\none LoRA optimizer step ({batch}, {accumulation} micro-batches), LitGPT's iter_time:")
    print(f"| {'step':<30} | {'median s':>8} | {'min s':>7} | {'max s':>7} |")
    print(f"|{'-' * 32}|{'-' * 10}|{'-' * 9}|{'-' * 9}|")
    for name, col in step_rows:
        if col:
            print(f"| {name:<30} | {statistics.median(col):8.4f} | {min(col):7.4f} "
                  f"| {max(col):7.4f} |")  # fmt: skip


if __name__ == "__main__":
    main()
