"""``optuna-llm finetune``: tune LitGPT LoRA fine-tuning, scored by lm-eval, in a shared study.

Start the same command on several machines (same ``--storage`` and ``--study-name``) and they
share the study; start it again after a crash and it resumes. ``--n-trials`` is the study's
total: a worker stops when that many trials have finished, counting every worker's. Workers
beat and retry the trial of a dead worker as ``optuna-llm run`` does.

Example:
    litgpt download meta-llama/Llama-3.2-3B --checkpoint_dir checkpoints
    optuna-llm finetune --sampler bamsoo --devices 4 --n-trials 50 \\
        --storage postgresql://host/db --study-name llama32-3b-lora
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from optuna_llm.cli._flags import (
    HelpFormatter,
    add_flag,
    add_heartbeat,
    add_llm,
    add_n_trials,
    add_sampler,
    add_seed,
    add_storage,
    add_study_name,
    sampler_kwargs,
)
from optuna_llm.objectives._litgpt import LORA_TARGETS


def _key_value(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def _old(flag: str) -> tuple[str, ...]:
    """The underscore spelling this sub-command took before (deprecated)."""
    old = flag.replace("-", "_").replace("__", "--", 1)
    return (old,) if old != flag else ()


def _flag(container: Any, canonical: str, **kwargs: Any) -> argparse.Action:
    return add_flag(container, canonical, deprecated=_old(canonical), **kwargs)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "finetune",
        help="tune LoRA fine-tuning (LitGPT) scored on HellaSwag/MMLU (lm-eval)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=HelpFormatter,
    )
    s = p.add_argument_group("study")
    add_sampler(s, default="tpe")
    add_n_trials(s, default=50)
    add_storage(s, default="sqlite:///optuna-llm-finetune.db")
    add_study_name(s, default="lora-finetune")
    s.add_argument(
        "--pruner",
        choices=("none", "median", "hyperband"),
        default="none",
        help="stop trials early on LitGPT's validation loss",
    )
    add_seed(s)
    add_heartbeat(
        s, interval=("--heartbeat_interval",), grace=("--grace_period",), retry=("--max_retry",)
    )
    add_llm(s, model=("--llm_model",), base_url=("--llm_base_url",), cache=("--llm_cache",))

    t = p.add_argument_group("fine-tuning (litgpt finetune_lora)")
    _flag(
        t,
        "--checkpoint-dir",
        default="checkpoints/meta-llama/Llama-3.2-3B",
        metavar="DIR",
        help="LitGPT checkpoint of the base model (litgpt download makes it)",
    )
    _flag(
        t,
        "--out-dir",
        default="out/optuna-llm-finetune",
        metavar="DIR",
        help="root of the per-trial directories",
    )
    t.add_argument("--data", default="Alpaca", help="LitGPT data module")
    _flag(
        t,
        "--data-dir",
        default=None,
        metavar="DIR",
        help="directory of alpaca_data_cleaned_archive.json (default: data/alpaca)",
    )
    t.add_argument(
        "--devices", type=int, default=1, metavar="N", help="GPUs a trial (more than 1: FSDP)"
    )
    _flag(t, "--num-nodes", type=int, default=1, metavar="N", help="machines a trial")
    t.add_argument(
        "--precision",
        default=None,
        help="LitGPT precision (default: bf16-true on GPUs that have it, else 32-true)",
    )
    t.add_argument("--epochs", type=int, default=1, metavar="N", help="training epochs")
    _flag(t, "--max-steps", type=int, default=None, metavar="N", help="stop after N steps")
    _flag(t, "--micro-batch-size", type=int, default=None, metavar="N", help="LitGPT micro batch")
    _flag(t, "--global-batch-size", type=int, default=None, metavar="N", help="LitGPT global batch")
    _flag(t, "--max-seq-length", type=int, default=None, metavar="N", help="truncate examples to N")
    _flag(
        t,
        "--lora-targets",
        nargs="+",
        default=["query", "value"],
        choices=LORA_TARGETS,
        metavar="TARGET",
        help=f"weights that get LoRA: {', '.join(LORA_TARGETS)}",
    )
    t.add_argument(
        "--train",
        dest="train_kv",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more --train.KEY flags for LitGPT (repeatable)",
    )
    t.add_argument(
        "--eval",
        dest="eval_kv",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more --eval.KEY flags for LitGPT (repeatable)",
    )
    _flag(
        t,
        "--data-arg",
        dest="data_kv",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more --data.KEY flags for LitGPT (repeatable)",
    )
    _flag(
        t,
        "--trial-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds a fine-tune may take before its trial fails",
    )
    _flag(
        t,
        "--keep-weights",
        action="store_true",
        help="keep each trial's merged and HF weights (the LoRA adapter is kept always)",
    )

    e = p.add_argument_group("evaluation (lm-eval)")
    _flag(
        e,
        "--val-task",
        default="hellaswag",
        metavar="TASK",
        help="the task whose score is optimised",
    )
    _flag(
        e,
        "--test-tasks",
        nargs="*",
        default=["mmlu"],
        metavar="TASK",
        help="tasks scored and recorded, never optimised",
    )
    e.add_argument("--metric", default="acc_norm", help="metric of --val-task to maximise")
    _flag(e, "--include-path", default=None, metavar="DIR", help="directory of extra task YAMLs")
    _flag(
        e,
        "--eval-limit",
        type=float,
        default=None,
        metavar="N",
        help="examples a task (a fraction when below 1; default: all)",
    )
    _flag(e, "--num-fewshot", type=int, default=None, metavar="N", help="few-shot examples")
    _flag(e, "--eval-batch-size", default="8", metavar="N", help="an int or 'auto'")
    p.set_defaults(func=main)


def _pruner(name: str) -> Any:
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def main(args: argparse.Namespace) -> int:
    import warnings

    import optuna
    from optuna.trial import TrialState

    from optuna_llm.objectives.finetune import FinetuneError, LoRAFinetuneObjective
    from optuna_llm.samplers import make_sampler
    from optuna_llm.storage import make_storage
    from optuna_llm.worker import open_study, reseed_for_worker, run_worker

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the worker prints a line a trial

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

    problem = (
        f"LoRA fine-tuning of {objective.checkpoint_dir.name} with LitGPT on "
        f"{args.data}; maximise {args.val_task} {args.metric}."
    )
    try:
        sampler = make_sampler(
            args.sampler, seed=args.seed, **sampler_kwargs(args.sampler, args, problem=problem)
        )
        storage = make_storage(
            args.storage,
            heartbeat=args.heartbeat_interval,
            grace_period=args.grace_period,
            max_retry=args.max_retry,
        )
        study = open_study(
            storage, args.study_name, sampler, ["maximize"], pruner=_pruner(args.pruner)
        )
        reseed_for_worker(  # workers given one --seed draw different points
            study,
            args.sampler,
            args.seed,
            lambda s: make_sampler(
                args.sampler, seed=s, **sampler_kwargs(args.sampler, args, problem=problem)
            ),
        )
    except (ValueError, TypeError) as exc:
        print(f"optuna-llm finetune: {exc}", file=sys.stderr)
        return 2
    ran = run_worker(
        study,
        objective,
        args.n_trials,
        catch=(FinetuneError,),
        poll_interval=max(1.0, min(5.0, args.heartbeat_interval / 2 or 5.0)),
    )
    if ran == 0:
        print(f"Study {args.study_name!r} already has {args.n_trials} finished trials.")
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
