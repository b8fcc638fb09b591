"""``optuna-llm cifar``: the seed's ``train.py`` on Optuna.

``--llm`` runs an LLMSampler study, ``--random-hparams`` one random trial (run it with 100
seeds for the random-search baseline), ``--sampler NAME`` any of our samplers, and none of them
a single run with the hyperparameters given by the flags. ``--n-trials`` (the seed's
``--rounds``) is the study's total: start the same command with the same ``--storage`` and
``--study-name`` on several machines and they share the work, with heartbeats and the retry of
a dead worker's trial as in ``optuna-llm run``. ``--save-dir`` gets one JSON file a trial.

The seed's spellings (``--random_hparams``, ``--dataset_dir``, ``--train_batch_size``, ...)
work as they are.
"""

from __future__ import annotations

import argparse
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
from optuna_llm.objectives._choices import ARCHITECTURES, DATASETS, OPTIMIZERS, PRECISIONS

_HPARAM_FLAGS = (
    "optimizer", "learning_rate", "train_batch_size", "weight_decay", "label_smoothing",
    "num_train_epochs",
)  # fmt: skip


def _seed_flag(container: Any, canonical: str, **kwargs: Any) -> argparse.Action:
    """A flag of the seed's train.py: the hyphenated spelling, and the seed's as an alias."""
    seed = "--" + canonical[2:].replace("-", "_")
    return add_flag(container, canonical, aliases=(seed,) if seed != canonical else (), **kwargs)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "cifar",
        help="tune ResNet-9/ViT on CIFAR-10 (the seed train.py's flags)",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    mode = p.add_mutually_exclusive_group()
    _seed_flag(mode, "--random-hparams", action="store_true", help="one random trial")
    _seed_flag(mode, "--llm", action="store_true", help="an LLMSampler study (--n-trials trials)")
    add_n_trials(
        p,
        aliases=("--rounds",),
        help="trials the study should hold in total, across all workers (default: 10 with "
        "--llm/--sampler, else 1)",
    )
    _seed_flag(
        p,
        "--search-space",
        default=None,
        metavar="FILE",
        help="JSON file with the space to search (default: the seed's space)",
    )
    add_flag(
        p,
        "--dataset",
        default="cifar10",
        choices=DATASETS,
        help="cifar10, or digits (ships with scikit-learn: a quick CPU check of the workflow)",
    )
    _seed_flag(
        p,
        "--dataset-dir",
        default="./data",
        metavar="DIR",
        help="folder holding cifar-10-batches-py (never downloaded)",
    )
    _seed_flag(p, "--arch", default="resnet9", choices=ARCHITECTURES, help="the network")
    _seed_flag(
        p, "--save-dir", default=None, metavar="DIR", help="write one JSON file a trial here"
    )
    _seed_flag(
        p, "--train-batch-size", type=int, default=128, metavar="N", help="training batch size"
    )
    _seed_flag(
        p, "--eval-batch-size", type=int, default=512, metavar="N", help="evaluation batch size"
    )
    _seed_flag(
        p, "--learning-rate", type=float, default=1e-3, metavar="LR", help="peak learning rate"
    )
    _seed_flag(p, "--weight-decay", type=float, default=5e-4, metavar="WD", help="weight decay")
    _seed_flag(
        p,
        "--label-smoothing",
        type=float,
        default=0.0,
        metavar="EPS",
        help="label smoothing of the training loss",
    )
    _seed_flag(p, "--optimizer", default="adam", choices=OPTIMIZERS, help="the optimizer")
    _seed_flag(p, "--num-train-epochs", type=int, default=10, metavar="N", help="training epochs")
    add_seed(p, default=0, help="seed of weight init, data order and the sampler")
    add_flag(
        p,
        "--max-train-samples",
        deprecated=("--max_train_samples",),
        type=int,
        default=None,
        metavar="N",
        help="train on the first N training images only",
    )
    add_flag(
        p,
        "--no-verify-checksums",
        deprecated=("--no_verify_checksums",),
        action="store_true",
        help="skip CIFAR-10's MD5 check (data you packed in its format yourself)",
    )
    add_flag(
        p, "--device", default=None, help="cuda, cpu, cuda:1 ... (default: cuda when available)"
    )
    add_flag(
        p,
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto: bf16 (or fp16) autocast on CUDA, fp32 on the CPU",
    )
    add_storage(
        p,
        help="Optuna storage of a shared study: postgresql://user@host/db, sqlite:///file.db, "
        "... (default: in memory, this process only)",
    )
    add_study_name(p, help="study name (default: cifar-DATASET-ARCH-MODE-seedSEED)")
    add_sampler(p, default=None, purpose="a sampler for --n-trials trials (--llm: llm)")
    add_heartbeat(p)
    add_llm(p, model=("--llm_model",), base_url=("--llm_base_url",), cache=("--llm_cache",))
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
                f"--random-hparams and --sampler {args.sampler} disagree: give one of them."
            )
        return "random"
    return args.sampler


def run(args: argparse.Namespace) -> int:
    import warnings

    import optuna

    from optuna_llm._attrs import HPARAMS, STUDY_PROBLEM, TEST_ERROR, VAL_LOSS
    from optuna_llm.objectives.image_classification import (
        ImageClassificationObjective,
        load_search_space,
    )
    from optuna_llm.samplers._factory import make_sampler
    from optuna_llm.storage import make_storage
    from optuna_llm.worker import open_study, reseed_for_worker, run_worker

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line a trial of our own below
    try:
        name = _sampler_name(args)
        if args.n_trials is not None and args.n_trials < 1:
            raise ValueError(f"--n-trials (--rounds) must be at least 1, got {args.n_trials}.")
        n_trials = args.n_trials or (10 if name not in (None, "random") else 1)
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
        sampler = make_sampler(
            name or "random",
            seed=args.seed,
            **sampler_kwargs(name or "random", args, problem=objective.describe()),
        )
        storage = (
            make_storage(
                args.storage,
                heartbeat=args.heartbeat_interval,
                grace_period=args.grace_period,
                max_retry=args.max_retry,
            )
            if args.storage
            else optuna.storages.InMemoryStorage()
        )
        mode = name or "single"
        study_name = args.study_name or f"cifar-{args.dataset}-{args.arch}-{mode}-seed{args.seed}"
        study = open_study(storage, study_name, sampler, ["minimize"])
        reseed_for_worker(  # workers given one --seed draw different points
            study,
            name or "random",
            args.seed,
            lambda s: make_sampler(
                name or "random",
                seed=s,
                **sampler_kwargs(name or "random", args, problem=objective.describe()),
            ),
        )
    except (ValueError, TypeError, FileNotFoundError, RuntimeError, ImportError) as exc:
        return _fail(str(exc))
    study.set_user_attr(STUDY_PROBLEM, objective.describe())

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        attrs = trial.user_attrs
        hp = attrs.get(HPARAMS, trial.params)
        print(
            f"trial {trial.number} {trial.state.name}: val_error={trial.value} "
            f"val_loss={attrs.get(VAL_LOSS)} test_error={attrs.get(TEST_ERROR)} "
            f"hparams={hp}",
            flush=True,
        )

    run_worker(
        study,
        objective,
        n_trials,
        catch=(RuntimeError,),
        callbacks=[report],
        poll_interval=max(1.0, min(5.0, args.heartbeat_interval / 2 or 5.0)),
        progress=None,
    )
    completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not completed:
        return _fail(f"no trial of study {study_name!r} completed.")
    best = study.best_trial
    print(
        f"best trial {best.number}: val_error={best.value} "
        f"test_error={best.user_attrs.get(TEST_ERROR)} hparams={best.user_attrs.get(HPARAMS)}"
    )
    return 0
