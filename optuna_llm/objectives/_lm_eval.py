"""Convert a fine-tuned LitGPT checkpoint to a Hugging Face model and score it with lm-eval.

Run as a subprocess by the objective (``python -m optuna_llm.objectives._lm_eval``) so the
evaluation's GPU memory is released with the process; it writes one JSON file with the scores
and the time each stage took.

Example:
    python -m optuna_llm.objectives._lm_eval --finetuned out/final --hf_dir out/hf \
        --tasks hellaswag mmlu --output out/eval.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
)


def convert_to_hf(finetuned_dir: Path, hf_dir: Path) -> Path:
    """``litgpt convert_from_litgpt`` plus ``save_pretrained``: a model dir lm-eval can load.

    ``finetuned_dir`` is LitGPT's ``out_dir/final`` (merged ``lit_model.pth`` plus the config
    and tokenizer files copied from the base checkpoint, ``config.json`` included).
    """
    import torch
    from litgpt.scripts.convert_lit_checkpoint import convert_lit_checkpoint
    from transformers import AutoConfig, AutoModelForCausalLM

    convert_lit_checkpoint(finetuned_dir, hf_dir)
    state_path = hf_dir / "model.pth"
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    config = AutoConfig.from_pretrained(finetuned_dir)
    dtype = next(iter(state.values())).dtype
    # Built on the meta device and filled with the converted tensors (assign=True): no second
    # copy of a multi-GB model in memory, and it stays in the precision it was trained in.
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise RuntimeError(
            f"Converted weights do not match {finetuned_dir / 'config.json'}: missing "
            f"{sorted(set(missing) - tied)[:5]}, unexpected {sorted(unexpected)[:5]}. The "
            "checkpoint's config.json must describe the same model as its model_config.yaml."
        )
    if tied:
        model.tie_weights()
    model.save_pretrained(hf_dir)
    state_path.unlink()
    for name in _TOKENIZER_FILES:
        if (finetuned_dir / name).is_file():
            shutil.copy(finetuned_dir / name, hf_dir / name)
    return hf_dir


def task_scores(results: Mapping[str, Any], task: str) -> dict[str, float]:
    """``{"acc": .., "acc_norm": ..}`` for ``task`` (or group) from lm-eval's results dict."""
    for section in ("results", "groups"):
        entry = (results.get(section) or {}).get(task)
        if entry:
            return {
                key.split(",")[0]: float(value)
                for key, value in entry.items()
                if "," in key and "stderr" not in key and isinstance(value, (int, float))
            }
    raise KeyError(f"lm-eval returned no scores for task {task!r}")


def evaluate(
    hf_dir: Path,
    tasks: Sequence[str],
    *,
    include_path: Path | None = None,
    limit: float | None = None,
    num_fewshot: int | None = None,
    batch_size: int | str = 8,
    device: str | None = None,
) -> dict[str, dict[str, float]]:
    """Score ``hf_dir`` on ``tasks`` with ``lm_eval.simple_evaluate``."""
    import lm_eval
    import torch
    from lm_eval.tasks import TaskManager

    if device is None:
        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    manager = TaskManager(include_path=str(include_path) if include_path else None)
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": str(hf_dir), "dtype": "auto"},
        tasks=list(tasks),
        num_fewshot=num_fewshot,
        batch_size=batch_size,
        device=device,
        limit=limit,
        task_manager=manager,
        log_samples=False,
        bootstrap_iters=0,
    )
    if results is None:  # only on non-zero ranks, which we never start
        raise RuntimeError("lm-eval returned no results")
    return {task: task_scores(results, task) for task in tasks}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--finetuned", type=Path, required=True)
    parser.add_argument("--hf_dir", type=Path, required=True)
    parser.add_argument("--tasks", nargs="+", required=True)
    parser.add_argument("--include_path", type=Path, default=None)
    parser.add_argument("--limit", type=float, default=None)
    parser.add_argument("--num_fewshot", type=int, default=None)
    parser.add_argument("--batch_size", default="8")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    convert_to_hf(args.finetuned, args.hf_dir)
    t1 = time.perf_counter()
    limit = args.limit
    if limit is not None and limit >= 1:
        limit = int(limit)
    batch_size: int | str = int(args.batch_size) if args.batch_size.isdigit() else args.batch_size
    scores = evaluate(
        args.hf_dir,
        args.tasks,
        include_path=args.include_path,
        limit=limit,
        num_fewshot=args.num_fewshot,
        batch_size=batch_size,
    )
    t2 = time.perf_counter()
    args.output.write_text(
        json.dumps({"scores": scores, "convert_s": t1 - t0, "eval_s": t2 - t1}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
