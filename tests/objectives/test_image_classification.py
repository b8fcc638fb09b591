"""The image-classification objective on real data paths: scikit-learn digits, and a tiny
CIFAR-10 in the real on-disk format loaded by torchvision's own CIFAR10 class."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from optuna_llm.objectives.image_classification import (
    DEFAULT_SEARCH_SPACE,
    ImageClassificationObjective,
    load_search_space,
    parse_search_space,
    search_space_to_json,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _record(save_dir: Path, trial: optuna.trial.FrozenTrial) -> dict:
    files = sorted(save_dir.glob(f"*-trial{trial.number:04d}.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def test_default_search_space_is_the_seeds() -> None:
    space = DEFAULT_SEARCH_SPACE
    assert set(space) == {
        "optimizer", "learning_rate", "train_batch_size", "weight_decay", "label_smoothing",
    }  # fmt: skip
    assert space["optimizer"].choices == ("adam", "sgd")  # type: ignore[attr-defined]
    assert space["train_batch_size"].choices == (32, 64, 128, 256, 512)  # type: ignore[attr-defined]
    lr, wd, ls = space["learning_rate"], space["weight_decay"], space["label_smoothing"]
    assert (lr.low, lr.high, lr.log) == (1e-4, 1e-1, True)  # type: ignore[attr-defined]
    assert (wd.low, wd.high, wd.log) == (1e-5, 1e-1, True)  # type: ignore[attr-defined]
    assert (ls.low, ls.high, ls.log) == (0.0, 0.2, False)  # type: ignore[attr-defined]


def test_digits_learns_and_reports_every_epoch(tmp_path: Path) -> None:
    objective = ImageClassificationObjective(
        dataset="digits",
        arch="mlp",
        search_space={},
        hparams={"learning_rate": 3e-3, "train_batch_size": 64, "num_train_epochs": 4},
        save_dir=tmp_path,
    )
    study = optuna.create_study(study_name="digits-run")
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.params == {}
    # A real MLP on real digits: far better than chance (0.9) after 4 epochs.
    assert trial.value < 0.2
    assert sorted(trial.intermediate_values) == [0, 1, 2, 3]
    assert trial.intermediate_values[3] == trial.value
    attrs = trial.user_attrs
    assert attrs["test_error"] < 0.25
    assert attrs["val_accuracy"] == pytest.approx(1 - trial.value)
    assert attrs["hparams"]["learning_rate"] == 3e-3
    assert [e["epoch"] for e in attrs["epochs"]] == [0, 1, 2, 3]
    record = _record(tmp_path, trial)
    assert record["state"] == "COMPLETE"
    assert record["study_name"] == "digits-run"
    assert record["val_error"] == trial.value
    assert record["val_loss"] == attrs["val_loss"] > 0
    assert record["test_error"] == attrs["test_error"]
    assert record["hparams"] == attrs["hparams"]


def test_digits_path_never_imports_torchvision() -> None:
    code = (
        "import sys, optuna\n"
        "from optuna_llm.objectives import ImageClassificationObjective\n"
        "obj = ImageClassificationObjective(dataset='digits', arch='cnn', epochs=1)\n"
        "s = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))\n"
        "s.optimize(obj, n_trials=1)\n"
        "assert s.trials[0].state.name == 'COMPLETE', s.trials[0]\n"
        "assert 'torchvision' not in sys.modules\n"
        "print('ok', s.best_value)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok ")


def test_pruners_see_the_reported_epochs(tmp_path: Path) -> None:
    objective = ImageClassificationObjective(
        dataset="digits", arch="mlp", epochs=3, save_dir=tmp_path
    )
    study = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.ThresholdPruner(upper=0.0),  # every error is above 0: prune
    )
    study.optimize(objective, n_trials=2)
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.PRUNED
        assert list(trial.intermediate_values) == [0]
        assert set(trial.params) == set(DEFAULT_SEARCH_SPACE)
        assert _record(tmp_path, trial)["state"] == "PRUNED"


def test_custom_search_space_file(tmp_path: Path) -> None:
    spec = {
        "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
        "num_train_epochs": {"type": "int", "low": 1, "high": 2},
        "optimizer": {"type": "categorical", "choices": ["adamw", "sgd"]},
        "weight_decay": json.loads(
            optuna.distributions.distribution_to_json(
                optuna.distributions.FloatDistribution(0, 0.1)
            )
        ),
    }
    path = tmp_path / "space.json"
    path.write_text(json.dumps(spec))
    space = load_search_space(path)
    assert space["num_train_epochs"] == optuna.distributions.IntDistribution(1, 2)
    assert space["weight_decay"] == optuna.distributions.FloatDistribution(0, 0.1)
    assert parse_search_space(search_space_to_json(space)) == space
    objective = ImageClassificationObjective(dataset="digits", arch="mlp", search_space=space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(objective, n_trials=2)
    for trial in study.trials:
        assert set(trial.params) == set(spec)
        assert len(trial.intermediate_values) == trial.params["num_train_epochs"]
        assert trial.user_attrs["hparams"]["train_batch_size"] == 128  # the fixed default


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"lr": {"type": "float", "low": 0.1, "high": 1}}, "Unknown hyperparameter"),
        ({"learning_rate": {"type": "uniform", "low": 0.1, "high": 1}}, "use one of"),
        ({"learning_rate": {"type": "float", "low": 0.1}}, "missing 'high'"),
        ({"optimizer": {"type": "categorical", "choices": ["adam", "lion"]}}, "subset"),
        ({"learning_rate": 0.1}, "must be an object"),
        ({}, "non-empty"),
    ],
)
def test_search_space_errors_name_the_fix(spec: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_search_space(spec)


def test_bad_files_and_arguments(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_search_space(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_search_space(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="needs dataset_dir"):
        ImageClassificationObjective(dataset="cifar10")
    with pytest.raises(ValueError, match="Choose one of"):
        ImageClassificationObjective(dataset="digits", arch="resnet50")
    with pytest.raises(ValueError, match="Unknown hyperparameter"):
        ImageClassificationObjective(dataset="digits", hparams={"lr": 0.1})


# --- CIFAR-10 through torchvision ------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[np.ndarray, ...]]:
    from tests.helpers.cifar_format import make_tiny_cifar10

    root = tmp_path_factory.mktemp("cifar")
    arrays = make_tiny_cifar10(root, n_train=200, n_test=64)
    return root, arrays


def test_tiny_cifar_loads_through_torchvision(tiny_cifar) -> None:  # type: ignore[no-untyped-def]
    import torchvision

    from optuna_llm.objectives import _data

    root, (_, train_y, test_x, test_y) = tiny_cifar
    assert issubclass(_data._cifar10_class(False), torchvision.datasets.CIFAR10)
    data = _data.load_cifar10(root, verify_checksums=False)
    assert data.name == "cifar10" and data.augment
    assert len(data.train_y) == 180 and len(data.val_y) == 20 and len(data.test_y) == 64
    assert data.train_x.shape[1:] == (3, 32, 32)
    # The test batch round-trips pixel for pixel through the on-disk format and the loader.
    np.testing.assert_array_equal(data.test_x.permute(0, 2, 3, 1).numpy(), test_x)
    np.testing.assert_array_equal(data.test_y.numpy(), test_y)
    # Train + validation together are exactly the training batches.
    all_y = np.sort(np.concatenate([data.train_y.numpy(), data.val_y.numpy()]))
    np.testing.assert_array_equal(all_y, np.sort(train_y))
    limited = _data.load_cifar10(root, verify_checksums=False, max_train_samples=50)
    assert len(limited.train_y) == 50


def test_cifar_errors_name_the_fix(tiny_cifar, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from optuna_llm.objectives import _data

    root, _ = tiny_cifar
    with pytest.raises(FileNotFoundError, match=r"curl -L https://www\.cs\.toronto\.edu"):
        _data.load_cifar10(tmp_path / "empty")
    # Our files do not carry the official MD5 sums: the default check rejects them.
    with pytest.raises(RuntimeError, match="--no-verify-checksums"):
        _data.load_cifar10(root)


@pytest.mark.parametrize("arch", ["resnet9", "vit"])
def test_one_epoch_on_cifar(tiny_cifar, tmp_path: Path, arch: str) -> None:  # type: ignore[no-untyped-def]
    root, _ = tiny_cifar
    objective = ImageClassificationObjective(
        dataset="cifar10",
        arch=arch,
        dataset_dir=root,
        epochs=1,
        max_train_samples=128,
        save_dir=tmp_path,
        verify_checksums=False,
        eval_batch_size=64,
    )
    study = optuna.create_study(
        study_name=f"tiny-{arch}", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    study.enqueue_trial(
        {"optimizer": "adam", "learning_rate": 1e-3, "train_batch_size": 32,
         "weight_decay": 1e-4, "label_smoothing": 0.1}
    )  # fmt: skip
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE, trial
    attrs = trial.user_attrs
    assert 0.0 <= trial.value <= 1.0
    assert trial.intermediate_values == {0: trial.value}
    assert attrs["n_params"] > (6_000_000 if arch == "resnet9" else 500_000)
    assert attrs["precision"] == "fp32"  # the CPU default (bf16 measured slower here)
    assert attrs["device"] == "cpu"
    # 20 validation and 64 test images: errors are multiples of 1/20 and 1/64.
    assert round(trial.value * 20, 6).is_integer()
    assert round(attrs["test_error"] * 64, 6).is_integer()
    record = _record(tmp_path, trial)
    assert record["arch"] == arch and record["dataset"] == "cifar10"
    assert record["hparams"]["train_batch_size"] == 32 == trial.params["train_batch_size"]
    assert record["hparams"]["label_smoothing"] == 0.1
    assert record["val_error"] == trial.value
    assert record["val_accuracy"] == pytest.approx(1 - trial.value)
    assert record["test_error"] == attrs["test_error"]
    assert record["val_loss"] == attrs["val_loss"] and np.isfinite(record["val_loss"])
    assert len(record["epochs"]) == 1 and record["epochs"][0]["val_error"] == trial.value
