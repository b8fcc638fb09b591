"""``optuna-llm report``: the figures of finished studies, checked as real image files."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from PIL import Image

from optuna_llm.analysis.study_report import STUDY_FIGURES, slug
from optuna_llm.cli import _report
from optuna_llm.samplers import LatinHypercubeSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


def cli_main(argv: list[str]) -> int:
    """The sub-command's own parser and handler, as ``optuna-llm`` dispatches to them."""
    parser = argparse.ArgumentParser(prog="optuna-llm")
    _report.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def _objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    width = trial.suggest_int("width", 8, 64)
    opt = trial.suggest_categorical("optimizer", ["adam", "sgd"])
    return (math.log10(lr) + 2.5) ** 2 + abs(width - 40) / 20 + (0.3 if opt == "sgd" else 0.0)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('report')}/studies.db"
    lhs = optuna.create_study(
        storage=url, study_name="cifar lhs", sampler=LatinHypercubeSampler(12, seed=0)
    )
    lhs.optimize(_objective, n_trials=12)
    tpe = optuna.create_study(
        storage=url, study_name="cifar-tpe", sampler=optuna.samplers.TPESampler(seed=0)
    )
    tpe.optimize(_objective, n_trials=15)
    optuna.create_study(storage=url, study_name="empty")
    return url


def _check_png(path: Path) -> np.ndarray:
    assert path.stat().st_size > 5_000, path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"))
    assert pixels.shape[0] > 200 and pixels.shape[1] > 300, (path, pixels.shape)
    assert pixels.std() > 5, f"{path} looks blank"  # a figure, not an empty canvas
    return pixels


def test_report_two_studies(
    storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert (
        cli_main(
            ["report", storage, "--study", "cifar lhs", "--study", "cifar-tpe", "--out", str(out)]
        )
        == 0
    )
    printed = capsys.readouterr().out.split()

    pngs = sorted(out.glob("*.png"))
    htmls = sorted(p for p in out.glob("*.html") if p.name != "index.html")
    expected = {f"{slug(s)}_{f}" for s in ("cifar lhs", "cifar-tpe") for f in STUDY_FIGURES}
    expected.add("comparison")
    assert {p.stem for p in pngs} == expected
    assert {p.stem for p in htmls} == expected
    assert len(pngs) == 2 * len(STUDY_FIGURES) + 1 == 13
    for png in pngs:
        _check_png(png)
    for page in htmls:
        text = page.read_text()
        assert len(text) > 2_000 and "plotly.min.js" in text and "Plotly.newPlot" in text
    assert (out / "plotly.min.js").stat().st_size > 1_000_000  # offline: the JS ships alongside
    assert {str(p) for p in pngs} <= set(printed)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped"] == []
    lhs = summary["studies"]["cifar lhs"]
    assert lhs["trials"] == {"COMPLETE": 12} and lhs["sources"] == {"lhs": 12}
    assert summary["studies"]["cifar-tpe"]["sources"] == {"(no source)": 15}
    best = optuna.load_study(study_name="cifar-tpe", storage=storage).best_trial
    assert summary["studies"]["cifar-tpe"]["best"]["number"] == best.number
    index = (out / "index.html").read_text()
    assert all(p.name in index for p in pngs)


def test_report_single_study_png_only(storage: str, tmp_path: Path) -> None:
    out = tmp_path / "one"
    assert (
        cli_main(["report", storage, "--study", "cifar-tpe", "--out", str(out), "--format", "png"])
        == 0
    )
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(
        f"cifar-tpe_{f}" for f in STUDY_FIGURES
    )
    assert not [p for p in out.glob("*.html") if p.name != "index.html"]


def test_report_errors_name_the_fix(
    storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["report", storage, "--study", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "No study named 'nope'" in err and "cifar-tpe" in err
    # A study without completed trials is reported as skipped, not as a crash.
    assert cli_main(["report", storage, "--study", "empty", "--out", str(tmp_path / "e")]) == 0
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert summary["skipped"][0]["reason"] == "no completed trials"
