"""``optuna-llm finetune``: tune LitGPT LoRA fine-tuning, scored by lm-eval, in a shared study.

Start the same command on several machines (same ``--storage`` and ``--study_name``) and they
share the study; start it again after a crash and it resumes. ``--n-trials`` is the study's
total: a worker stops when that many trials have finished, counting every worker's.

Example:
    litgpt download meta-llama/Llama-3.2-3B --checkpoint_dir checkpoints
    optuna-llm finetune --sampler bamsoo --devices 4 --n-trials 50 \\
        --storage postgresql://host/db --study_name llama32-3b-lora
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

_SAMPLERS = ("llm", "soo", "bamsoo", "lhs", "lhs-gp", "gp", "tpe", "random",
             "llm-seeded", "llm-seeded-tpe", "llm-seeded-gp")  # fmt: skip


def _key_value(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "finetune",
        help="tune LoRA fine-tuning (LitGPT) scored on HellaSwag/MMLU (lm-eval)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    s = p.add_argument_group("study")
    s.add_argument("--sampler", choices=_SAMPLERS, default="tpe")
    s.add_argument(
        "--n-trials",
        "--n_trials",
        dest="n_trials",
        type=int,
        default=50,
        help="total finished trials in the study (all workers together)",
    )
    s.add_argument(
        "--storage",
        default="sqlite:///optuna-llm-finetune.db",
        help="RDB URL (sqlite:///, postgresql://, mysql://) or a journal file *.log",
    )
    s.add_argument("--study_name", "--study-name", default="lora-finetune")
    s.add_argument(
        "--pruner",
        choices=("none", "median", "hyperband"),
        default="none",
        help="stop trials early on LitGPT's validation loss",
    )
    s.add_argument("--seed", type=int, default=None, help="sampler seed")
    s.add_argument(
        "--heartbeat_interval",
        type=int,
        default=60,
        help="seconds; a worker silent for 3x this has its trial retried (RDB only)",
    )
    s.add_argument("--max_retry", type=int, default=3, help="retries of a trial whose worker died")
    s.add_argument("--llm_model", default=None, help="model of the llm sampler (default embedded)")
    s.add_argument("--llm_base_url", default=None, help="OpenAI-compatible URL for llm sampler")
    s.add_argument("--llm_cache", default=None, help="record/replay cache file for the llm sampler")

    t = p.add_argument_group("fine-tuning (litgpt finetune_lora)")
    t.add_argument("--checkpoint_dir", default="checkpoints/meta-llama/Llama-3.2-3B")
    t.add_argument("--out_dir", default="out/optuna-llm-finetune", help="per-trial directories")
    t.add_argument("--data", default="Alpaca", help="LitGPT data module")
    t.add_argument(
        "--data_dir",
        default=None,
        help="directory of alpaca_data_cleaned_archive.json (default data/alpaca)",
    )
    t.add_argument("--devices", type=int, default=1, help="GPUs a trial (more than 1: FSDP)")
    t.add_argument("--num_nodes", type=int, default=1)
    t.add_argument(
        "--precision", default=None, help="default bf16-true on GPUs that have it, else 32-true"
    )
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--max_steps", type=int, default=None)
    t.add_argument("--micro_batch_size", type=int, default=None)
    t.add_argument("--global_batch_size", type=int, default=None)
    t.add_argument("--max_seq_length", type=int, default=None)
    t.add_argument(
        "--lora_targets",
        nargs="+",
        default=["query", "value"],
        choices=("query", "key", "value", "projection", "mlp", "head"),
    )
    t.add_argument(
        "--train",
        dest="train_kv",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more --train.KEY flags (repeatable)",
    )
    t.add_argument(
        "--eval",
        dest="eval_kv",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more --eval.KEY flags (repeatable)",
    )
    t.add_argument(
        "--data_arg",
        dest="data_kv",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more --data.KEY flags (repeatable)",
    )
    t.add_argument(
        "--trial_timeout",
        type=float,
        default=None,
        help="seconds a fine-tune may take before its trial fails",
    )
    t.add_argument(
        "--keep_weights",
        action="store_true",
        help="keep each trial's merged and HF weights (the LoRA adapter is kept always)",
    )

    e = p.add_argument_group("evaluation (lm-eval)")
    e.add_argument("--val_task", default="hellaswag", help="the task whose score is optimised")
    e.add_argument("--test_tasks", nargs="*", default=["mmlu"], help="recorded, never optimised")
    e.add_argument("--metric", default="acc_norm", help="metric of --val_task to maximise")
    e.add_argument("--include_path", default=None, help="directory of extra task YAMLs")
    e.add_argument("--eval_limit", type=float, default=None, help="examples a task")
    e.add_argument("--num_fewshot", type=int, default=None)
    e.add_argument("--eval_batch_size", default="8", help="an int or 'auto'")
    p.set_defaults(func=main)


def _pruner(name: str) -> Any:
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def main(args: argparse.Namespace) -> int:
    import optuna
    from optuna.trial import TrialState

    from optuna_llm.objectives.finetune import FinetuneError, LoRAFinetuneObjective
    from optuna_llm.samplers import make_sampler
    from optuna_llm.storage import make_storage

    train_args = dict(args.train_kv)
    for key in ("micro_batch_size", "global_batch_size", "max_seq_length"):
        if getattr(args, key) is not None:
            train_args[key] = getattr(args, key)
    batch = args.eval_batch_size
    objective = LoRAFinetuneObjective(
        args.checkpoint_dir,
        out_dir=args.out_dir,
        data=args.data,
        data_dir=args.data_dir,
        data_args=dict(args.data_kv),
        epochs=args.epochs,
        max_steps=args.max_steps,
        devices=args.devices,
        num_nodes=args.num_nodes,
        precision=args.precision,
        lora_targets=args.lora_targets,
        train_args=train_args,
        eval_args=dict(args.eval_kv),
        val_task=args.val_task,
        test_tasks=args.test_tasks,
        metric=args.metric,
        include_path=args.include_path,
        eval_limit=args.eval_limit,
        num_fewshot=args.num_fewshot,
        eval_batch_size=int(batch) if batch.isdigit() else batch,
        keep_weights=args.keep_weights,
        timeout=args.trial_timeout,
    )
    try:
        objective.check()
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"optuna-llm finetune: {exc}", file=sys.stderr)
        return 2

    kwargs: dict[str, Any] = {}
    if args.sampler == "llm":
        kwargs = {
            "problem": (
                f"LoRA fine-tuning of {objective.checkpoint_dir.name} with LitGPT on "
                f"{args.data}; maximise {args.val_task} {args.metric}."
            ),
            "model": args.llm_model,
            "base_url": args.llm_base_url,
            "cache": args.llm_cache,
        }
    sampler = make_sampler(args.sampler, seed=args.seed, **kwargs)
    study = optuna.create_study(
        storage=make_storage(
            args.storage,
            heartbeat=args.heartbeat_interval,
            grace_period=3 * args.heartbeat_interval,
            max_retry=args.max_retry,
        ),
        study_name=args.study_name,
        sampler=sampler,
        pruner=_pruner(args.pruner),
        direction="maximize",
        load_if_exists=True,
    )
    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    done = len(study.get_trials(deepcopy=False, states=counted))
    remaining = args.n_trials - done
    if remaining > 0:
        study.optimize(
            objective,
            n_trials=remaining,
            catch=(FinetuneError,),
            callbacks=[optuna.study.MaxTrialsCallback(args.n_trials, states=counted)],
        )
    else:
        print(f"Study {args.study_name!r} already has {done} finished trials.")
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        print("No trial completed; see the finetune_log/eval_log user attrs of the failed ones.")
        return 1
    best = study.best_trial
    print(f"Best trial {best.number}: {args.val_task} {args.metric} = {best.value:.4f}")
    print(f"  params: {json.dumps(best.params)}")
    tests = {k: v for k, v in best.user_attrs.items()
             if any(k.startswith(f"{t}_") for t in args.test_tasks)}  # fmt: skip
    if tests:
        print(f"  test scores: {json.dumps(tests)}")
    return 0
