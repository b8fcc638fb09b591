"""Best-error-so-far curves with bootstrap confidence bands (the paper's random baseline).

The paper runs random search as many independent one-trial runs (``optuna-llm cifar
--random_hparams --seed S`` for 100 seeds) and bootstraps: the expected best error after
``k`` random trials is the expected minimum of ``k`` draws with replacement from that pool.
Sequential searches (LLM, TPE, ...) are a few runs of many trials each: their curve is the mean
over runs of the running minimum. In both cases the band is a percentile bootstrap over the
data (pool values or runs), i.e. the uncertainty of the curve given how many runs you made.

Runs come from Optuna studies or from ``--save_dir`` folders of JSON records.

Example:
    >>> import numpy as np
    >>> curve = random_search_curve([0.3, 0.1], n_trials=3)
    >>> np.round(curve.mean, 4).tolist()
    [0.2, 0.15, 0.125]
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import optuna

from optuna_llm.analysis.stats import bootstrap_band

Values = Sequence[float] | npt.NDArray[np.floating[Any]]


@dataclass(frozen=True)
class BestSoFarCurve:
    """Mean best-so-far value after 1..n trials, with a ``confidence`` bootstrap band.

    Example:
        >>> curve = sequential_curve([[0.5, 0.2, 0.3], [0.4, 0.4, 0.1]], label="tpe")
        >>> curve.steps.tolist(), [round(float(v), 2) for v in curve.mean]
        ([1, 2, 3], [0.45, 0.3, 0.15])
    """

    label: str
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n_runs: int
    """Runs behind the curve (pool size for random search)."""
    confidence: float

    @property
    def steps(self) -> np.ndarray:
        return np.arange(1, len(self.mean) + 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "steps": self.steps.tolist(),
            "mean": self.mean.tolist(),
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
            "n_runs": self.n_runs,
            "confidence": self.confidence,
        }


def best_so_far(values: Values) -> np.ndarray:
    """The running minimum of ``values``."""
    return np.minimum.accumulate(np.asarray(values, dtype=float))


def expected_best_of_k(pool: Values, n_trials: int) -> np.ndarray:
    """Exact ``E[min of k draws with replacement from pool]`` for ``k = 1..n_trials``.

    With the pool sorted ``v_1 <= ... <= v_m``, the minimum is at least ``v_i`` with
    probability ``((m - i + 1) / m) ** k``, so ``E = sum_i v_i * (((m-i+1)/m)**k - ((m-i)/m)**k)``.
    """
    v = np.sort(_check_values(pool, "pool"))
    m = len(v)
    k = np.arange(1, n_trials + 1)[:, None]
    at_least = ((m - np.arange(m)) / m)[None, :] ** k  # P(min >= v_i), shape (n, m)
    strictly_more = ((m - 1 - np.arange(m)) / m)[None, :] ** k  # P(min >= v_{i+1})
    return np.asarray((at_least - strictly_more) @ v)


def _check_values(values: Values, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or len(arr) == 0:
        raise ValueError(f"The {what} must be a non-empty list of numbers, got {values!r}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            f"The {what} holds non-finite values: drop failed or diverged trials first."
        )
    return arr


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence}.")


def _band(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    _check_confidence(confidence)
    alpha = (1.0 - confidence) / 2.0
    lower, upper = np.quantile(samples, [alpha, 1.0 - alpha], axis=0)
    return lower, upper


def random_search_curve(
    errors: Values,
    n_trials: int | None = None,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    label: str = "random search",
) -> BestSoFarCurve:
    """Expected best error after 1..n random trials drawn from a pool of one-trial runs.

    The mean is exact (:func:`expected_best_of_k`); the band resamples the pool
    ``n_bootstrap`` times.
    """
    pool = _check_values(errors, "pool of random-search errors")
    n = len(pool) if n_trials is None else n_trials
    if n < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}.")
    rng = np.random.default_rng(seed)
    boots = np.stack(
        [
            expected_best_of_k(rng.choice(pool, size=len(pool), replace=True), n)
            for _ in range(n_bootstrap)
        ]
    )
    lower, upper = _band(boots, confidence)
    return BestSoFarCurve(label, expected_best_of_k(pool, n), lower, upper, len(pool), confidence)


def sequential_curve(
    runs: Sequence[Values],
    n_trials: int | None = None,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    label: str = "search",
) -> BestSoFarCurve:
    """Mean over runs of the best-so-far error after 1..n trials; the band resamples runs."""
    if not runs:
        raise ValueError("No runs given: pass one list of errors (in trial order) per run.")
    checked = [_check_values(r, f"run {i}") for i, r in enumerate(runs)]
    shortest = min(len(r) for r in checked)
    n = shortest if n_trials is None else n_trials
    if n < 1 or n > shortest:
        raise ValueError(
            f"n_trials={n_trials} but the shortest run has {shortest} trials: pass n_trials "
            f"between 1 and {shortest}, or drop the short runs."
        )
    curves = np.stack([best_so_far(r[:n]) for r in checked])
    _check_confidence(confidence)
    # The benchmark report's band (analysis.stats): one resampling of runs for both.
    mean, lower, upper = bootstrap_band(curves, n_boot=n_bootstrap, level=confidence, seed=seed)
    return BestSoFarCurve(label, mean, lower, upper, len(curves), confidence)


def runs_from_studies(studies: optuna.Study | Iterable[optuna.Study]) -> list[list[float]]:
    """One run per study: the values of its COMPLETE trials in trial-number order."""
    if isinstance(studies, optuna.Study):
        studies = [studies]
    runs = []
    for study in studies:
        if study._is_multi_objective():
            raise ValueError(
                f"Study {study.study_name!r} is multi-objective: best-so-far curves need one "
                "objective value per trial."
            )
        trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        values = [t.value for t in sorted(trials, key=lambda t: t.number)]
        if study.direction == optuna.study.StudyDirection.MAXIMIZE:
            raise ValueError(
                f"Study {study.study_name!r} maximises: curves here are for errors to minimise; "
                "pass the negated values with sequential_curve instead."
            )
        runs.append([float(v) for v in values if v is not None])
    return [r for r in runs if r]


def runs_from_json(
    folders: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], key: str = "val_error"
) -> list[list[float]]:
    """Runs from ``--save_dir`` folders: records grouped by ``study_name`` (one run per study),
    ordered by ``trial``; only ``COMPLETE`` records count."""
    if isinstance(folders, (str, os.PathLike)):
        folders = [folders]
    grouped: dict[str, list[tuple[int, float]]] = defaultdict(list)
    n_files = 0
    for folder in folders:
        path = Path(folder)
        if not path.is_dir():
            raise FileNotFoundError(f"{os.fspath(folder)!r} is not a folder of JSON records.")
        for file in sorted(path.glob("*.json")):
            n_files += 1
            try:
                record = json.loads(file.read_text())
            except json.JSONDecodeError as exc:
                raise ValueError(f"{file} is not valid JSON: {exc}") from exc
            if record.get("state", "COMPLETE") != "COMPLETE" or record.get(key) is None:
                continue
            run = f"{path}:{record.get('study_name', file.stem)}"
            grouped[run].append((int(record.get("trial", 0)), float(record[key])))
    if not grouped:
        raise ValueError(
            f"No completed records with {key!r} in {n_files} JSON file(s) under "
            f"{[os.fspath(f) for f in folders]}."
        )
    return [[v for _, v in sorted(items)] for _, items in sorted(grouped.items())]


def best_so_far_curve(
    source: Any,
    *,
    random_search: bool | None = None,
    label: str | None = None,
    **kwargs: Any,
) -> BestSoFarCurve:
    """The curve for a study, a list of studies, a JSON folder or a list of folders.

    ``random_search`` pools every value as independent draws (the paper's 100 one-trial
    seeds); by default it is chosen when every run has exactly one trial.

    Example:
        >>> curve = best_so_far_curve("runs/random", n_trials=30)  # doctest: +SKIP
        >>> plot_curves([curve], "random.png")  # doctest: +SKIP
    """
    if isinstance(source, optuna.Study) or (
        isinstance(source, (list, tuple)) and source and isinstance(source[0], optuna.Study)
    ):
        runs = runs_from_studies(source)
    else:
        runs = runs_from_json(source)
    if not runs:
        raise ValueError("No completed trials to build a curve from.")
    pooled = all(len(r) == 1 for r in runs) if random_search is None else random_search
    if pooled:
        pool = [v for r in runs for v in r]
        return random_search_curve(pool, label=label or "random search", **kwargs)
    return sequential_curve(runs, label=label or "search", **kwargs)


def plot_curves(
    curves: Sequence[BestSoFarCurve] | Mapping[str, BestSoFarCurve],
    path: str | os.PathLike[str],
    *,
    title: str = "Best error so far",
    ylabel: str = "validation error",
    log_y: bool = False,
) -> Path:
    """Plot curves with their bands to a PNG file (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = list(curves.values()) if isinstance(curves, Mapping) else list(curves)
    if not items:
        raise ValueError("No curves to plot.")
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for curve in items:
        (line,) = ax.plot(curve.steps, curve.mean, label=f"{curve.label} (n={curve.n_runs})")
        ax.fill_between(
            curve.steps, curve.lower, curve.upper, color=line.get_color(), alpha=0.2, linewidth=0
        )
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trials")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log_y:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, format="png")
    plt.close(fig)
    return out
