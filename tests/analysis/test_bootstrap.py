"""Best-so-far curves: exact values on hand-checked examples, bootstrap bands, and loading runs
from real Optuna studies (PostgreSQL) and from --save_dir JSON folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest

from optuna_llm.analysis.bootstrap import (
    best_so_far,
    best_so_far_curve,
    expected_best_of_k,
    plot_curves,
    random_search_curve,
    runs_from_json,
    runs_from_studies,
    sequential_curve,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_two_value_pool_by_hand() -> None:
    # Best of k draws from {0.1, 0.3}: 0.3 only if every draw is 0.3 (prob 1/2**k).
    curve = random_search_curve([0.3, 0.1], n_trials=3, n_bootstrap=200)
    np.testing.assert_allclose(curve.mean, [0.2, 0.15, 0.125])
    np.testing.assert_array_equal(curve.steps, [1, 2, 3])
    assert curve.n_runs == 2
    assert np.all(curve.lower <= curve.mean + 1e-12) and np.all(curve.mean <= curve.upper + 1e-12)
    # Resampling the pool can give {0.1, 0.1} or {0.3, 0.3}: the band spans those extremes.
    np.testing.assert_allclose(curve.lower, [0.1, 0.1, 0.1])
    np.testing.assert_allclose(curve.upper, [0.3, 0.3, 0.3])


def test_ties_and_three_values_by_hand() -> None:
    # Pool {1, 2, 2}: min of 2 draws is 2 with prob (2/3)**2 = 4/9 -> E = 1*5/9 + 2*4/9 = 13/9.
    np.testing.assert_allclose(expected_best_of_k([2, 1, 2], 2), [5 / 3, 13 / 9])


def test_exact_curve_matches_direct_simulation() -> None:
    pool = np.array([0.42, 0.17, 0.33, 0.25, 0.61])
    rng = np.random.default_rng(0)
    draws = rng.choice(pool, size=(200_000, 6), replace=True)
    simulated = np.minimum.accumulate(draws, axis=1).mean(axis=0)
    np.testing.assert_allclose(expected_best_of_k(pool, 6), simulated, atol=2e-3)


def test_sequential_runs_by_hand() -> None:
    runs = [[0.5, 0.4, 0.6], [0.3, 0.35, 0.1]]
    np.testing.assert_array_equal(best_so_far(runs[0]), [0.5, 0.4, 0.4])
    curve = sequential_curve(runs, n_bootstrap=2000, seed=1)
    np.testing.assert_allclose(curve.mean, [0.4, 0.35, 0.25])
    # Bootstrap over two runs: both copies of one run have probability 1/4 each.
    np.testing.assert_allclose(curve.lower, [0.3, 0.3, 0.1])
    np.testing.assert_allclose(curve.upper, [0.5, 0.4, 0.4])
    assert sequential_curve(runs, n_trials=2).mean.tolist() == pytest.approx([0.4, 0.35])


def test_band_narrows_with_more_runs() -> None:
    rng = np.random.default_rng(3)
    small = random_search_curve(rng.uniform(0.1, 0.9, 10), n_trials=10, seed=0)
    large = random_search_curve(rng.uniform(0.1, 0.9, 400), n_trials=10, seed=0)
    assert np.all((large.upper - large.lower) < (small.upper - small.lower))


def test_runs_from_studies_in_postgres(postgres_url: str) -> None:
    study = optuna.create_study(storage=postgres_url, study_name="llm-seed0")
    for value in (0.5, None, 0.4, 0.45):
        trial = study.ask()
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)
    other = optuna.create_study(storage=postgres_url, study_name="llm-seed1")
    for value in (0.3, 0.2, 0.25):
        other.tell(other.ask(), value)
    names = ("llm-seed0", "llm-seed1")
    loaded = [optuna.load_study(study_name=n, storage=postgres_url) for n in names]
    assert runs_from_studies(loaded) == [[0.5, 0.4, 0.45], [0.3, 0.2, 0.25]]
    curve = best_so_far_curve(loaded, label="llm", n_bootstrap=100)
    np.testing.assert_allclose(curve.mean, [0.4, 0.3, 0.3])
    assert curve.label == "llm" and curve.n_runs == 2


def _write(folder: Path, study: str, trial: int, val_error: float | None, state: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    record = {"study_name": study, "trial": trial, "val_error": val_error, "state": state}
    (folder / f"{study}-trial{trial:04d}.json").write_text(json.dumps(record))


def test_runs_from_json_folders_and_plot(tmp_path: Path) -> None:
    random_dir = tmp_path / "random"
    for seed, err in enumerate([0.3, 0.1]):
        _write(random_dir, f"cifar-random-seed{seed}", 0, err, "COMPLETE")
    _write(random_dir, "cifar-random-seed9", 0, None, "PRUNED")
    llm_dir = tmp_path / "llm"
    for trial, err in enumerate([0.5, 0.4, 0.6]):
        _write(llm_dir, "llm-seed0", trial, err, "COMPLETE")
    for trial, err in reversed(list(enumerate([0.3, 0.35, 0.1]))):  # file order must not matter
        _write(llm_dir, "llm-seed1", trial, err, "COMPLETE")

    assert sorted(runs_from_json(random_dir)) == [[0.1], [0.3]]
    random_curve = best_so_far_curve(random_dir, n_trials=3, n_bootstrap=100)
    assert random_curve.label == "random search"
    np.testing.assert_allclose(random_curve.mean, [0.2, 0.15, 0.125])
    llm_curve = best_so_far_curve(llm_dir, label="llm")
    np.testing.assert_allclose(llm_curve.mean, [0.4, 0.35, 0.25])

    png = plot_curves([random_curve, llm_curve], tmp_path / "curves.png", title="CIFAR-10")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert json.loads(json.dumps(llm_curve.to_dict()))["mean"] == pytest.approx([0.4, 0.35, 0.25])


def test_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shortest run has 2"):
        sequential_curve([[0.1, 0.2], [0.3, 0.2, 0.1]], n_trials=3)
    with pytest.raises(ValueError, match="non-finite"):
        random_search_curve([0.1, float("nan")])
    with pytest.raises(ValueError, match="non-empty"):
        random_search_curve([])
    with pytest.raises(ValueError, match="confidence"):
        random_search_curve([0.1, 0.2], confidence=95)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        runs_from_json(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No completed records"):
        runs_from_json(tmp_path / "empty")
