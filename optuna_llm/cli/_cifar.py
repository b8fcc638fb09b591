"""``optuna-llm cifar``: the seed's ``train.py`` on Optuna.

``--llm`` runs an LLMSampler study for ``--rounds`` trials, ``--random_hparams`` one random
trial (run it with 100 seeds for the random-search baseline), ``--sampler NAME`` any of our
samplers, and none of them a single run with the hyperparameters given by the flags.
``--save_dir`` gets one JSON file per trial; ``--storage``/``--study_name`` put the trials in a
shared study (start the same command on several machines for parallel workers).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

_HPARAM_FLAGS = (
    "optimizer", "learning_rate", "train_batch_size", "weight_decay", "label_smoothing",
    "num_train_epochs",
)  # fmt: skip


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "cifar",
        help="Tune ResNet-9/ViT on CIFAR-10 (the paper's train.py flags).",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--random_hparams", action="store_true", help="One random trial.")
    mode.add_argument("--llm", action="store_true", help="LLM search for --rounds trials.")
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="Trials to run (default: 10 with --llm/--sampler, else 1).",
    )
    p.add_argument(
        "--search_space",
        default=None,
        help="JSON file with the space to search (default: the seed's space).",
    )
    p.add_argument(
        "--dataset",
        default="cifar10",
        choices=("cifar10", "digits"),
        help="digits ships with scikit-learn: a quick CPU check of the workflow.",
    )
    p.add_argument(
        "--dataset_dir",
        default="./data",
        help="Folder holding cifar-10-batches-py (never downloaded).",
    )
    p.add_argument("--arch", default="resnet9", choices=("resnet9", "vit", "cnn", "mlp"))
    p.add_argument("--save_dir", default=None, help="Write one JSON file per trial here.")
    p.add_argument("--train_batch_size", type=int, default=128)
    p.add_argument("--eval_batch_size", type=int, default=512)
    p.add_argument("--learning_rate", type=float, default=1e-3)
    p.add_argument("--weight_decay", type=float, default=5e-4)
    p.add_argument("--label_smoothing", type=float, default=0.0)
    p.add_argument("--optimizer", default="adam", choices=("adam", "adamw", "sgd"))
    p.add_argument("--num_train_epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--max_train_samples",
        type=int,
        default=None,
        help="Train on the first N training images only.",
    )
    p.add_argument(
        "--no_verify_checksums",
        action="store_true",
        help="Skip CIFAR-10's MD5 check (data you packed in its format yourself).",
    )
    p.add_argument("--device", default=None, help="cuda, cpu, cuda:1 ... (default: auto).")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    p.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL (postgresql://..., sqlite:///...): a shared study.",
    )
    p.add_argument("--study_name", default=None)
    p.add_argument(
        "--sampler",
        default=None,
        help="Sampler name (tpe, gp, soo, bamsoo, lhs, llm, ...) for --rounds trials.",
    )
    p.add_argument("--llm_model", default=None, help="Model name for --llm (default: embedded).")
    p.add_argument(
        "--llm_base_url",
        default=None,
        help="OpenAI-compatible URL for --llm (default: OPENAI_BASE_URL or embedded).",
    )
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"optuna-llm cifar: error: {message}", file=sys.stderr)
    return 2


def _sampler_name(args: argparse.Namespace) -> str | None:
    if args.llm:
        if args.sampler not in (None, "llm"):
            raise ValueError(f"--llm and --sampler {args.sampler} disagree: give one of them.")
        return "llm"
    if args.random_hparams:
        if args.sampler not in (None, "random"):
            raise ValueError(
                f"--random_hparams and --sampler {args.sampler} disagree: give one of them."
            )
        return "random"
    return args.sampler


def run(args: argparse.Namespace) -> int:
    import optuna

    from optuna_llm.objectives.image_classification import (
        ImageClassificationObjective,
        load_search_space,
    )
    from optuna_llm.samplers._factory import make_sampler

    try:
        name = _sampler_name(args)
        if args.rounds is not None and args.rounds < 1:
            raise ValueError(f"--rounds must be at least 1, got {args.rounds}.")
        n_trials = args.rounds or (10 if name not in (None, "random") else 1)
        space = load_search_space(args.search_space) if args.search_space else None
        fixed = {flag: getattr(args, flag) for flag in _HPARAM_FLAGS}
        objective = ImageClassificationObjective(
            dataset=args.dataset,
            arch=args.arch,
            dataset_dir=args.dataset_dir,
            epochs=args.num_train_epochs,
            max_train_samples=args.max_train_samples,
            # A single run tunes nothing: every value comes from the flags.
            search_space=space if name is not None else {},
            hparams=fixed,
            eval_batch_size=args.eval_batch_size,
            save_dir=args.save_dir,
            device=args.device,
            precision=args.precision,
            seed=args.seed,
            verify_checksums=not args.no_verify_checksums,
        )
        objective.load_data()  # fail fast, before a study is created, when data is missing
        sampler_kwargs: dict[str, Any] = {}
        if name == "llm":
            sampler_kwargs["problem"] = objective.describe()
            if args.llm_model:
                sampler_kwargs["model"] = args.llm_model
            if args.llm_base_url:
                sampler_kwargs["base_url"] = args.llm_base_url
        sampler = make_sampler(name or "random", seed=args.seed, **sampler_kwargs)
    except (ValueError, FileNotFoundError, RuntimeError, ImportError) as exc:
        return _fail(str(exc))

    mode = name or "single"
    study_name = args.study_name or f"cifar-{args.dataset}-{args.arch}-{mode}-seed{args.seed}"
    study = optuna.create_study(
        storage=args.storage,
        study_name=study_name,
        sampler=sampler,
        direction="minimize",
        load_if_exists=True,
    )
    study.set_user_attr("problem", objective.describe())

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        attrs = trial.user_attrs
        hp = attrs.get("hparams", trial.params)
        print(
            f"trial {trial.number} {trial.state.name}: val_error={trial.value} "
            f"val_loss={attrs.get('val_loss')} test_error={attrs.get('test_error')} "
            f"hparams={hp}",
            flush=True,
        )

    study.optimize(objective, n_trials=n_trials, callbacks=[report], catch=(RuntimeError,))
    completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not completed:
        return _fail(f"no trial of study {study_name!r} completed.")
    best = study.best_trial
    print(
        f"best trial {best.number}: val_error={best.value} "
        f"test_error={best.user_attrs.get('test_error')} hparams={best.user_attrs.get('hparams')}"
    )
    return 0
