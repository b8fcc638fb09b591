"""Image classification as an Optuna objective: the paper's CIFAR-10 ResNet-9/ViT task.

The objective trains ``arch`` on ``dataset`` with hyperparameters suggested from a search
space (the seed's by default), reports the validation error after every epoch with
``trial.report`` (so Optuna's pruners work), and returns the final validation error. The
validation loss, test error, hyperparameters and timings are stored as user attrs, and with
``save_dir`` one JSON file per trial is written, as the seed's ``train.py --save_dir`` does.

``dataset="digits"`` (scikit-learn's 8x8 digits, shipped with the install) runs a trial in a
few seconds on a CPU and never imports torchvision.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from optuna_llm import _attrs
from optuna_llm.objectives._choices import ARCHITECTURES, DATASETS, OPTIMIZERS, PRECISIONS
from optuna_llm.objectives._suggest import suggest as _suggest

if TYPE_CHECKING:
    from optuna_llm.objectives._train import EpochResult

DEFAULT_SEARCH_SPACE: dict[str, BaseDistribution] = {
    "optimizer": CategoricalDistribution(["adam", "sgd"]),
    "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
    "train_batch_size": CategoricalDistribution([32, 64, 128, 256, 512]),
    "weight_decay": FloatDistribution(1e-5, 1e-1, log=True),
    "label_smoothing": FloatDistribution(0.0, 0.2),
}
"""The seed's default space (``train.py`` without ``--search_space``)."""

DEFAULT_HPARAMS: dict[str, Any] = {
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "train_batch_size": 128,
    "weight_decay": 5e-4,
    "label_smoothing": 0.0,
    "momentum": 0.9,
    "num_train_epochs": 10,
}
"""Values used for every hyperparameter the search space leaves out."""

_KINDS = {"float", "int", "categorical"}


def _check_names(hp: Mapping[str, Any]) -> None:
    unknown = set(hp) - set(DEFAULT_HPARAMS)
    if unknown:
        raise ValueError(
            f"Unknown hyperparameter(s) {sorted(unknown)}: the objective tunes "
            f"{', '.join(DEFAULT_HPARAMS)}."
        )


def _check_hparams(hp: Mapping[str, Any]) -> None:
    _check_names(hp)
    if "optimizer" in hp and hp["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {hp['optimizer']!r}.")


def parse_search_space(spec: Mapping[str, Any]) -> dict[str, BaseDistribution]:
    """Turn a JSON-style description into Optuna distributions.

    Each entry is either ``{"type": "float", "low": 1e-4, "high": 0.1, "log": true}``,
    ``{"type": "int", "low": 1, "high": 20, "step": 1}``, ``{"type": "categorical",
    "choices": ["adam", "sgd"]}``, or Optuna's own ``distribution_to_json`` form
    (``{"name": "FloatDistribution", "attributes": {...}}``). Names are the objective's
    hyperparameters (see :data:`DEFAULT_HPARAMS`).

    Example:
        >>> space = parse_search_space({"learning_rate": {"type": "float", "low": 1e-4,
        ...                                               "high": 1e-1, "log": True}})
    """
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError(
            "A search space is a non-empty JSON object mapping hyperparameter names to "
            'distributions, e.g. {"learning_rate": {"type": "float", "low": 1e-4, '
            '"high": 0.1, "log": true}}.'
        )
    _check_names(spec)
    space: dict[str, BaseDistribution] = {}
    for name, entry in spec.items():
        if isinstance(entry, BaseDistribution):
            space[name] = entry
            continue
        if not isinstance(entry, Mapping):
            raise ValueError(f"Search space entry {name!r} must be an object, got {entry!r}.")
        if "name" in entry and "attributes" in entry:
            space[name] = optuna.distributions.json_to_distribution(json.dumps(entry))
            continue
        kind = entry.get("type")
        try:
            if kind == "float":
                space[name] = FloatDistribution(
                    float(entry["low"]),
                    float(entry["high"]),
                    log=bool(entry.get("log", False)),
                    step=entry.get("step"),
                )
            elif kind == "int":
                space[name] = IntDistribution(
                    int(entry["low"]),
                    int(entry["high"]),
                    log=bool(entry.get("log", False)),
                    step=int(entry.get("step", 1)),
                )
            elif kind == "categorical":
                space[name] = CategoricalDistribution(list(entry["choices"]))
            else:
                raise ValueError(
                    f"Search space entry {name!r} has type {kind!r}; use one of {sorted(_KINDS)}."
                )
        except KeyError as exc:
            raise ValueError(
                f"Search space entry {name!r} (type {kind!r}) is missing {exc.args[0]!r}."
            ) from None
    if "optimizer" in space:
        dist = space["optimizer"]
        if not isinstance(dist, CategoricalDistribution) or set(dist.choices) - set(OPTIMIZERS):
            raise ValueError(f"optimizer must be categorical over a subset of {OPTIMIZERS}.")
    return space


def load_search_space(path: str | os.PathLike[str]) -> dict[str, BaseDistribution]:
    """Read a search space JSON file (the ``--search_space`` flag); see
    :func:`parse_search_space` for the format."""
    try:
        with open(path) as fh:
            spec = json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"Search space file {os.fspath(path)!r} does not exist.") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"Search space file {os.fspath(path)!r} is not valid JSON: {exc}") from exc
    return parse_search_space(spec)


def search_space_to_json(space: Mapping[str, BaseDistribution]) -> dict[str, Any]:
    """The inverse of :func:`parse_search_space` in Optuna's distribution JSON form."""
    return {k: json.loads(optuna.distributions.distribution_to_json(d)) for k, d in space.items()}


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


class ImageClassificationObjective:
    """Train an image classifier per trial and return its validation error (to minimise).

    Args:
        dataset: ``"cifar10"`` (from ``dataset_dir``) or ``"digits"`` (ships with
            scikit-learn; for demos and CPU smoke tests).
        arch: ``"resnet9"``, ``"vit"``, ``"cnn"`` or ``"mlp"``.
        dataset_dir: Folder holding ``cifar-10-batches-py``. Never downloaded.
        epochs: Training epochs when ``num_train_epochs`` is not in the search space.
        max_train_samples: Train on the first N training images only.
        search_space: Distributions to tune (default :data:`DEFAULT_SEARCH_SPACE`); ``{}``
            tunes nothing and trains with ``hparams``.
        hparams: Fixed values for hyperparameters not in the search space.
        save_dir: Write one JSON record per trial here.
        device: ``"cuda"``, ``"cpu"``, ... (default: CUDA when available).
        precision: ``"auto"`` (bf16/fp16 autocast + channels_last on CUDA, fp32 on CPU),
            ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        seed: Seed of weight init and data order (the same for every trial, so trials differ
            only by their hyperparameters).
        verify_checksums: Compare CIFAR-10 files to the official MD5 sums (turn off for data
            you packed yourself with :func:`write_cifar10_format`).

    Example:
        >>> objective = ImageClassificationObjective(dataset="digits", arch="mlp", epochs=2)
        >>> study = optuna.create_study()
        >>> study.optimize(objective, n_trials=3)
    """

    def __init__(
        self,
        dataset: str = "cifar10",
        arch: str = "resnet9",
        *,
        dataset_dir: str | os.PathLike[str] | None = None,
        epochs: int = 10,
        max_train_samples: int | None = None,
        search_space: Mapping[str, Any] | None = None,
        hparams: Mapping[str, Any] | None = None,
        eval_batch_size: int = 512,
        save_dir: str | os.PathLike[str] | None = None,
        device: str | None = None,
        precision: str = "auto",
        seed: int = 0,
        verify_checksums: bool = True,
    ) -> None:
        if dataset not in DATASETS:
            raise ValueError(f"Unknown dataset {dataset!r}. Choose one of: {', '.join(DATASETS)}.")
        if arch not in ARCHITECTURES:
            raise ValueError(f"Unknown arch {arch!r}. Choose one of: {', '.join(ARCHITECTURES)}.")
        if dataset == "cifar10" and dataset_dir is None:
            raise ValueError(
                "dataset='cifar10' needs dataset_dir (the folder holding cifar-10-batches-py); "
                "use dataset='digits' for data that ships with the install."
            )
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}.")
        if precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}."
            )
        self.dataset = dataset
        self.arch = arch
        self.dataset_dir = None if dataset_dir is None else os.fspath(dataset_dir)
        self.epochs = epochs
        self.max_train_samples = max_train_samples
        self.search_space = (
            dict(DEFAULT_SEARCH_SPACE)
            if search_space is None
            else (parse_search_space(search_space) if search_space else {})
        )
        fixed = dict(hparams or {})
        _check_hparams(fixed)
        self.hparams = {**DEFAULT_HPARAMS, "num_train_epochs": epochs, **fixed}
        self.eval_batch_size = eval_batch_size
        self.save_dir = None if save_dir is None else os.fspath(save_dir)
        self.device = device
        self.precision = precision
        self.seed = seed
        self.verify_checksums = verify_checksums
        self._data: Any = None

    def describe(self) -> str:
        """A one-paragraph problem description for an LLM sampler's prompt."""
        if self.dataset == "cifar10":
            data = "CIFAR-10 (32x32 RGB images, 10 classes, random-crop and flip augmentation)"
        else:
            data = "scikit-learn digits (8x8 grayscale images, 10 classes)"
        return (
            f"Train a {self.arch} classifier on {data} for {self.hparams['num_train_epochs']} "
            "epochs with a linearly decaying learning rate. Minimise the validation error "
            "(fraction of misclassified validation images, 0 to 1)."
        )

    def load_data(self) -> Any:
        """Load (once) and return the dataset as an ``ImageData``."""
        if self._data is None:
            from optuna_llm.objectives import _data

            if self.dataset == "digits":
                self._data = _data.load_digits(max_train_samples=self.max_train_samples)
            else:
                assert self.dataset_dir is not None
                self._data = _data.load_cifar10(
                    self.dataset_dir,
                    max_train_samples=self.max_train_samples,
                    verify_checksums=self.verify_checksums,
                )
        return self._data

    def hyperparameters(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest the search space and fill in the fixed values."""
        hp = dict(self.hparams)
        for name, dist in self.search_space.items():
            hp[name] = _suggest(trial, name, dist)
        return hp

    def __call__(self, trial: optuna.Trial) -> float:
        from optuna_llm.objectives import _train

        hp = self.hyperparameters(trial)
        data = self.load_data()
        record: dict[str, Any] = {
            "trial": trial.number,
            "study_name": _study_name(trial),
            "dataset": self.dataset,
            "arch": self.arch,
            "seed": self.seed,
            "hparams": hp,
        }
        trial.set_user_attr(_attrs.HPARAMS, hp)
        history: list[dict[str, Any]] = []

        def on_epoch(result: EpochResult) -> None:
            history.append(
                {
                    "epoch": result.epoch,
                    "train_loss": _finite(result.train_loss),
                    "val_loss": _finite(result.val_loss),
                    "val_error": result.val_error,
                    "seconds": round(result.seconds, 3),
                }
            )
            trial.report(result.val_error, result.epoch)
            if trial.should_prune():
                record.update(state="PRUNED", epochs=history)
                self._save(record)
                trial.set_user_attr(_attrs.EPOCHS, history)
                raise optuna.TrialPruned(f"pruned after epoch {result.epoch}")

        outcome = _train.train_and_evaluate(
            data,
            arch=self.arch,
            hparams=hp,
            eval_batch_size=self.eval_batch_size,
            device=self.device,
            precision=self.precision,
            seed=self.seed,
            on_epoch=on_epoch,
        )
        # The user attrs, and the same names in the --save_dir record.
        metrics = {
            _attrs.VAL_ERROR: outcome.val_error,
            _attrs.VAL_ACCURACY: 1.0 - outcome.val_error,
            _attrs.VAL_LOSS: _finite(outcome.val_loss),
            _attrs.TEST_ERROR: outcome.test_error,
            _attrs.TEST_ACCURACY: 1.0 - outcome.test_error,
            _attrs.TEST_LOSS: _finite(outcome.test_loss),
            _attrs.DIVERGED: outcome.diverged,
            _attrs.N_PARAMS: outcome.n_params,
            _attrs.DEVICE: outcome.device,
            _attrs.PRECISION: outcome.precision,
            _attrs.SECONDS_PER_EPOCH: round(outcome.seconds_per_epoch, 3),
        }
        for key, value in metrics.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr(_attrs.EPOCHS, history)
        record.update(state="COMPLETE", epochs=history, **metrics)
        self._save(record)
        return outcome.val_error

    def _save(self, record: Mapping[str, Any]) -> None:
        if self.save_dir is None:
            return
        os.makedirs(self.save_dir, exist_ok=True)
        name = f"{record['study_name']}-trial{record['trial']:04d}.json"
        path = os.path.join(self.save_dir, name)
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(record, fh, indent=2)
        os.replace(tmp, path)


def _study_name(trial: optuna.Trial) -> str:
    study = getattr(trial, "study", None)
    name = getattr(study, "study_name", None) or "fixed"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
