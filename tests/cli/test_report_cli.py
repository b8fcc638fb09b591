"""``optuna-llm report``: Optuna's flags (``--storage``, ``--study-name``), the old positional form,
and a missing storage file that is refused instead of created."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from optuna_llm.cli import main

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def storage(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(
        storage=url, study_name="quad", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    study.optimize(lambda t: (t.suggest_float("x", -2, 2) - 1) ** 2, n_trials=4)
    return url


def test_report_takes_storage_and_study_name(
    storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new"
    argv = ["report", "--storage", storage, "--study-name", "quad", "--out", str(out)]
    assert main([*argv, "--format", "html"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert any(out.glob("*.html")) and str(out) in captured.out


def test_the_positional_storage_and_study_still_work_with_a_warning(
    storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "old"
    assert main(["report", storage, "--study", "quad", "--out", str(out), "--format", "html"]) == 0
    err = capsys.readouterr().err
    assert "positional argument is deprecated, use --storage" in err
    assert "--study is deprecated, use --study-name" in err
    assert any(out.glob("*.html"))


def test_a_missing_sqlite_file_is_an_error_and_stays_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo.db"
    argv = ["report", "--storage", f"sqlite:///{missing}", "--study-name", "quad",
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"SQLite database {str(missing)!r} does not exist" in err
    assert not missing.exists() and not (tmp_path / "out").exists()
