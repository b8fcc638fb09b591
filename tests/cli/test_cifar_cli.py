"""``optuna-llm cifar``: the seed's train.py workflow, end to end on real data and storage."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from optuna_llm.cli import _cifar
from optuna_llm.objectives.image_classification import DEFAULT_SEARCH_SPACE
from tests.helpers.cifar_format import make_tiny_cifar10
from tests.helpers.llm_servers import ScriptedOpenAIServer, random_valid_responder

optuna.logging.set_verbosity(optuna.logging.WARNING)


def cifar_main(argv: list[str]) -> int:
    """Parse with the sub-command's own parser (independent of the other sub-commands)."""
    parser = argparse.ArgumentParser(prog="optuna-llm")
    _cifar.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["cifar", *argv])
    return int(args.func(args))


def _records(save_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(save_dir.glob("*.json"))]


@pytest.mark.slow
def test_random_hparams_end_to_end(tmp_path: Path, postgres_url: str) -> None:
    make_tiny_cifar10(tmp_path / "data", n_train=160, n_test=48)
    command = os.path.join(os.path.dirname(sys.executable), "optuna-llm")
    common = [
        command, "cifar", "--random_hparams", "--dataset_dir", str(tmp_path / "data"),
        "--no-verify-checksums", "--arch", "resnet9", "--num_train_epochs", "1",
        "--max-train-samples", "128", "--eval_batch_size", "64",
        "--save_dir", str(tmp_path / "runs"), "--storage", postgres_url,
        "--study-name", "random-baseline", "--seed", "7",
    ]  # fmt: skip
    out = subprocess.run(common, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "trial 0 COMPLETE" in out.stdout and "best trial 0" in out.stdout
    assert "deprecated" not in out.stderr  # the seed's spellings are aliases, not deprecated

    study = optuna.load_study(study_name="random-baseline", storage=postgres_url)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.distributions == DEFAULT_SEARCH_SPACE
    assert trial.intermediate_values == {0: trial.value}
    (record,) = _records(tmp_path / "runs")
    assert record["study_name"] == "random-baseline" and record["trial"] == 0
    assert record["arch"] == "resnet9" and record["seed"] == 7
    assert {k: record["hparams"][k] for k in trial.params} == trial.params
    assert record["hparams"]["num_train_epochs"] == 1
    assert record["val_error"] == trial.value
    assert record["val_loss"] == trial.user_attrs["val_loss"]
    assert record["test_error"] == trial.user_attrs["test_error"]
    assert record["val_accuracy"] == pytest.approx(1 - trial.value)
    # The same sampler seed proposes the same hyperparameters (reproducible baselines).
    again = optuna.samplers.RandomSampler(seed=7)
    replay = optuna.create_study(sampler=again)
    assert replay.ask(DEFAULT_SEARCH_SPACE).params == trial.params


def test_single_run_uses_the_flags(tmp_path: Path) -> None:
    rc = cifar_main([
        "--dataset", "digits", "--arch", "mlp", "--optimizer", "sgd", "--learning_rate", "0.05",
        "--train_batch_size", "32", "--weight_decay", "1e-4", "--label_smoothing", "0.05",
        "--num_train_epochs", "2", "--save_dir", str(tmp_path), "--seed", "1",
    ])  # fmt: skip
    assert rc == 0
    (record,) = _records(tmp_path)
    assert record["study_name"] == "cifar-digits-mlp-single-seed1"
    assert record["hparams"] == {
        "optimizer": "sgd", "learning_rate": 0.05, "train_batch_size": 32,
        "weight_decay": 1e-4, "label_smoothing": 0.05, "momentum": 0.9, "num_train_epochs": 2,
    }  # fmt: skip
    assert len(record["epochs"]) == 2
    assert record["val_error"] < 0.3  # SGD at these settings learns digits in two epochs


def test_llm_rounds_through_an_openai_compatible_server(tmp_path: Path) -> None:
    space = tmp_path / "space.json"
    space.write_text(json.dumps({
        "learning_rate": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
        "train_batch_size": {"type": "categorical", "choices": [32, 64]},
    }))  # fmt: skip
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    with ScriptedOpenAIServer(random_valid_responder(seed=0)) as server:
        rc = cifar_main([
            "--llm", "--rounds", "3", "--dataset", "digits", "--arch", "mlp",
            "--num-train-epochs", "1", "--search-space", str(space), "--storage", storage,
            "--study-name", "llm-digits", "--llm-base-url", server.base_url,
        ])  # fmt: skip
    assert rc == 0
    study = optuna.load_study(study_name="llm-digits", storage=storage)
    assert len(study.trials) == 3
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert set(trial.params) == {"learning_rate", "train_batch_size"}
        assert trial.user_attrs["source"].startswith("llm")
    # The problem description reached the model.
    prompts = " ".join(
        m["content"] for r in server.requests for m in r["messages"] if m.get("content")
    )
    assert "scikit-learn digits" in prompts


def test_errors_name_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cifar_main(["--dataset_dir", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "cifar-10-python.tar.gz" in err and str(tmp_path / "missing") in err
    assert cifar_main(["--llm", "--sampler", "tpe", "--dataset", "digits"]) == 2
    assert "disagree" in capsys.readouterr().err
    assert cifar_main(["--dataset", "digits", "--search_space", str(tmp_path / "x.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cifar_main(["--dataset", "digits", "--rounds", "0", "--sampler", "tpe"]) == 2
    assert "--rounds" in capsys.readouterr().err


def test_shared_study_workers_beat_and_share_the_total(tmp_path: Path) -> None:
    # The worker of `optuna-llm run`: the storage comes from make_storage (heartbeats on), and
    # --n-trials is the study's total, so a second run of the same command adds nothing.
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    argv = ["--sampler", "random", "--n-trials", "2", "--dataset", "digits", "--arch", "mlp",
            "--num-train-epochs", "1", "--storage", storage, "--study-name", "shared",
            "--heartbeat-interval", "5"]  # fmt: skip
    assert cifar_main(argv) == 0
    assert cifar_main(argv) == 0
    study = optuna.load_study(study_name="shared", storage=storage)
    assert len(study.trials) == 2
    from optuna_llm._compat import is_heartbeat_enabled, unwrap_storage
    from optuna_llm.storage import make_storage

    assert is_heartbeat_enabled(unwrap_storage(make_storage(storage, heartbeat=5)))
    # Each trial was beaten: Optuna recorded heartbeats for them.
    import sqlalchemy

    engine = sqlalchemy.create_engine(storage)
    with engine.connect() as conn:
        beats = conn.execute(sqlalchemy.text("SELECT count(*) FROM trial_heartbeats")).scalar()
    engine.dispose()
    assert beats == 2


def _write_pickle(path: Path, obj: object) -> None:
    import pickle

    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("wrong-keys", "lacks the key(s) ['data']"),
        ("text-file", "is not a pickle (a text file?)"),
    ],
)
def test_a_broken_batch_is_named_with_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, message: str
) -> None:
    make_tiny_cifar10(tmp_path / "data", n_train=40, n_test=10)
    batch = tmp_path / "data" / "cifar-10-batches-py" / "data_batch_3"
    if damage == "wrong-keys":
        _write_pickle(batch, {"images": [[0] * 3072], "labels": [1]})
    else:
        batch.write_text("12,34,56\n78,90,12\n")
    rc = cifar_main(["--dataset_dir", str(tmp_path / "data"), "--no-verify-checksums"])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(batch) in err and message in err, err
    assert "Traceback" not in err
