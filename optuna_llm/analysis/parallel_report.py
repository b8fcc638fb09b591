"""Tables and figures of the parallel benchmark (runs with simulated ``workers``).

Definitions (also in docs/benchmarks.md, *Parallel*):

* **at n evaluations**: a run's chosen regret after its first ``n`` *completed* evaluations
  (finishing order). A run with a larger budget counts for ``n`` too, by its prefix (a run with
  budget exactly ``n`` is preferred when both exist).
* **at equal simulated time** (two samplers, same task, seed and worker count): both are cut at
  ``T = min`` of the simulated times at which each completed its ``n``-th evaluation; each
  sampler's regret is that of its best-seen trial among those finished by ``T``.
* **loss to parallelism** of a sampler at ``W`` workers: per task, the mean over seeds of its
  regret at ``n`` evaluations with ``W`` workers divided by the same with 1 worker (the seeds
  both ran), median over tasks (both 0: ratio 1; only the 1-worker mean 0: left out).
* **speed-up**: median over runs of (time to ``n`` evaluations with 1 worker) / (with ``W``).

Example:
    >>> run = {"curve": [3.0, 2.0, 1.0], "finish_time": [1.0, 1.5, 4.0]}
    >>> regret_at_time(run, 2.0, 3), regret_at_time(run, 0.5, 3)
    (2.0, inf)
"""

from __future__ import annotations

import bisect
import math
import os
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optuna_llm.analysis.stats import change_vs, compare_pairs, per_task_means
from optuna_llm.analysis.tables import markdown, num, pct

Runs = dict[tuple[str, int], Mapping[str, Any]]  # (task, seed) -> record
BASELINES = ("random", "tpe", "gp")


def is_parallel(records: Sequence[Mapping[str, Any]]) -> bool:
    """Whether any record is a run with more than one simulated worker."""
    return any(int(r.get("workers", 1)) > 1 for r in records)


def regret_at_time(run: Mapping[str, Any], t: float, evals: int) -> float:
    """Chosen regret of ``run`` among its first ``evals`` evaluations finished by time ``t``
    (``inf`` when none had finished)."""
    i = bisect.bisect_right(run["finish_time"][:evals], t) - 1
    return float(run["curve"][i]) if i >= 0 else math.inf


def runs_at(
    records: Sequence[Mapping[str, Any]], *, group: str, evals: int, group_of: Any
) -> dict[tuple[str, int], Runs]:
    """``{(sampler, workers): {(task, seed): record}}`` of the clean, successful runs with at
    least ``evals`` completed evaluations in ``group`` (``group_of(task)`` names a task's group;
    ``"all"`` takes every group)."""
    out: dict[tuple[str, int], Runs] = defaultdict(dict)
    for r in sorted(records, key=lambda r: int(r["budget"]) != evals):  # exact budget first
        if (
            r.get("error") is None
            and not r.get("noise", False)
            and len(r.get("curve", [])) >= evals
            and len(r.get("finish_time", [])) >= evals
            and (group == "all" or group_of(r["task"]) == group)
        ):
            out[(r["sampler"], int(r.get("workers", 1)))].setdefault((r["task"], int(r["seed"])), r)
    return dict(out)


def at_evals(runs: Runs, evals: int) -> dict[tuple[str, int], float]:
    return {k: float(r["curve"][evals - 1]) for k, r in runs.items()}


def at_equal_time(
    a: Runs, b: Runs, evals: int
) -> tuple[dict[tuple[str, int], float], dict[tuple[str, int], float]]:
    """Regrets of ``a`` and ``b`` on their shared (task, seed), each cut at the earlier of the
    two times to ``evals`` completed evaluations."""
    ra, rb = {}, {}
    for key in a.keys() & b.keys():
        t = min(a[key]["finish_time"][evals - 1], b[key]["finish_time"][evals - 1])
        ra[key] = regret_at_time(a[key], t, evals)
        rb[key] = regret_at_time(b[key], t, evals)
    return ra, rb


def loss_to_parallelism(parallel: Runs, serial: Runs, evals: int) -> float:
    """Median over tasks of mean regret at ``W`` workers / at 1 worker, equal evaluations.

    >>> run = lambda r: {"curve": [r], "finish_time": [1.0]}
    >>> loss_to_parallelism({("t", 0): run(3.0)}, {("t", 0): run(2.0)}, 1)
    1.5
    """
    shared = parallel.keys() & serial.keys()
    change = change_vs(
        per_task_means(at_evals(parallel, evals), shared),
        per_task_means(at_evals(serial, evals), shared),
    )
    return 1.0 + change.median / 100.0 if not math.isnan(change.median) else math.nan


@dataclass(frozen=True)
class ParallelRow:
    sampler: str
    workers: int
    runs: int
    tasks: int
    beats_evals: dict[str, float]  # baseline -> beats % at equal evaluations
    beats_time: dict[str, float]  # baseline -> beats % at equal simulated time
    ties_time: dict[str, float]
    loss: float
    speedup: float


def parallel_rows(
    records: Sequence[Mapping[str, Any]],
    *,
    group: str,
    evals: int,
    group_of: Any,
    order: Callable[[set[str]], list[str]] = sorted,
) -> list[ParallelRow]:
    """One row per (sampler, workers): beats random/TPE/GP at equal evaluations and at equal
    simulated time (baseline at the same worker count), loss to parallelism, speed-up."""
    runs = runs_at(records, group=group, evals=evals, group_of=group_of)
    rows = []
    for sampler in order({s for s, _ in runs}):
        for workers in sorted(w for s, w in runs if s == sampler):
            mine = runs[(sampler, workers)]
            beats_e, beats_t, ties_t = {}, {}, {}
            for base in BASELINES:
                other = runs.get((base, workers))
                if not other or not (mine.keys() & other.keys()):
                    continue
                beats_e[base] = compare_pairs(
                    at_evals(mine, evals), at_evals(other, evals)
                ).beats_pct
                wtl = compare_pairs(*at_equal_time(mine, other, evals))
                beats_t[base], ties_t[base] = wtl.beats_pct, wtl.ties_pct
            serial = runs.get((sampler, 1), {})
            shared = mine.keys() & serial.keys()
            speed = [
                serial[k]["finish_time"][evals - 1] / mine[k]["finish_time"][evals - 1]
                for k in shared
            ]
            rows.append(
                ParallelRow(
                    sampler=sampler,
                    workers=workers,
                    runs=len(mine),
                    tasks=len({t for t, _ in mine}),
                    beats_evals=beats_e,
                    beats_time=beats_t,
                    ties_time=ties_t,
                    loss=loss_to_parallelism(mine, serial, evals) if shared else math.nan,
                    speedup=float(np.median(speed)) if speed else math.nan,
                )
            )
    return rows


def parallel_markdown(rows: Sequence[ParallelRow]) -> str:
    """The parallel table; ``-`` where a baseline did not run the same (task, seed, workers)."""
    header = (
        "sampler", "workers", "runs", "tasks", "beats random (evals)", "beats TPE (evals)",
        "beats random (time)", "beats TPE (time)", "ties TPE (time)", "beats GP (time)",
        "loss to parallelism", "speed-up",
    )  # fmt: skip
    return markdown(
        header,
        (
            (
                r.sampler,
                r.workers,
                r.runs,
                r.tasks,
                pct(r.beats_evals.get("random")),
                pct(r.beats_evals.get("tpe")),
                pct(r.beats_time.get("random")),
                pct(r.beats_time.get("tpe")),
                pct(r.ties_time.get("tpe")),
                pct(r.beats_time.get("gp")),
                num(r.loss, 2, "x"),
                num(r.speedup, 1, "x"),
            )
            for r in rows
        ),
    )


@dataclass(frozen=True)
class Goal:
    text: str
    value: float
    target: float
    at_most: bool  # met when value <= target (else >=)
    runs: int

    @property
    def met(self) -> bool | None:
        if math.isnan(self.value):
            return None
        return self.value <= self.target if self.at_most else self.value >= self.target


def parallel_goals(
    records: Sequence[Mapping[str, Any]], *, group: str, evals: int, group_of: Any
) -> list[Goal]:
    """Issue 13's parallel goals on ``group`` at ``evals`` evaluations and 16 workers."""
    runs = runs_at(records, group=group, evals=evals, group_of=group_of)
    bam = runs.get(("bamsoo", 16), {})
    goals = []
    for base, target in (("tpe", 60.0), ("gp", 50.0)):
        other = runs.get((base, 16), {})
        wtl = compare_pairs(*at_equal_time(bam, other, evals))
        goals.append(
            Goal(
                f"16 workers, equal simulated time: BaMSOO beats {base.upper()} on >= "
                f"{target:.0f} % of runs",
                wtl.beats_pct,
                target,
                False,
                wtl.n,
            )
        )
    serial = runs.get(("bamsoo", 1), {})
    shared = bam.keys() & serial.keys()
    goals.append(
        Goal(
            "BaMSOO's regret at 16 workers within 1.2x of 1 worker (equal evaluations)",
            loss_to_parallelism(bam, serial, evals) if shared else math.nan,
            1.2,
            True,
            len(shared),
        )
    )
    return goals


def goals_markdown(goals: Sequence[Goal]) -> str:
    met = {True: "met", False: "**missed**", None: "not measured"}
    return markdown(
        ("goal", "measured", "runs", "met?"),
        ((g.text, num(g.value, 2, "x" if g.at_most else " %"), g.runs, met[g.met]) for g in goals),
    )


_STYLES = {1: "-", 4: "--", 16: ":"}


def plot_parallel(
    records: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    group: str,
    evals: int,
    group_of: Any,
    against: str = "time",
    order: Callable[[set[str]], list[str]] = sorted,
) -> bool:
    """Mean over seeds of the chosen regret against simulated time (log-log) or evaluations,
    one panel per task, colour = sampler, line style = workers. False when nothing to plot."""
    runs = runs_at(records, group=group, evals=evals, group_of=group_of)
    if not runs:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({t for rs in runs.values() for t, _ in rs})
    samplers = order({s for s, _ in runs})
    palette = [plt.get_cmap("tab10")(i) for i in range(10)]
    colors = {s: palette[i % len(palette)] for i, s in enumerate(samplers)}
    ncols = min(4, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, task in zip(axes.flat, tasks, strict=False):
        mine = {sw: [r for (t, _), r in rs.items() if t == task] for sw, rs in runs.items()}
        ends = [r["finish_time"][evals - 1] for rs in mine.values() for r in rs]
        firsts = [r["finish_time"][0] for rs in mine.values() for r in rs]
        if not ends:
            continue
        grid = np.geomspace(max(min(firsts), 1e-9), max(ends), 80)
        positive = [
            float(v) for rs in mine.values() for r in rs for v in r["curve"][:evals] if v > 0
        ]
        floor = min(positive) / 2 if positive else 1e-8
        for (sampler, workers), rs in sorted(mine.items()):
            if not rs:
                continue
            if against == "time":
                x = grid
                ys = np.array([[regret_at_time(r, t, evals) for t in grid] for r in rs])
                ys[~np.isfinite(ys)] = np.nan
                y = np.mean(ys, axis=0)  # NaN until every seed has a finished evaluation
            else:
                x = np.arange(1, evals + 1)
                y = np.mean([r["curve"][:evals] for r in rs], axis=0)
            ax.plot(
                x,
                np.maximum(y, floor),
                color=colors[sampler],
                ls=_STYLES.get(workers, "-."),
                lw=1.3,
                label=f"{sampler} x{workers}",
            )
        ax.set_yscale("log")
        if against == "time":
            ax.set_xscale("log")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("simulated time" if against == "time" else "evaluations", fontsize=8)
        ax.set_ylabel("regret of best-seen trial", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(tasks) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 8), fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / nrows))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def parallel_sections(
    records: Sequence[Mapping[str, Any]],
    out: Path,
    *,
    group_of: Any,
    order: Callable[[set[str]], list[str]] = sorted,
) -> list[str]:
    """The Markdown of the parallel part of ``summary.md`` (figures written into ``out``)."""
    par = [r for r in records if "finish_time" in r and r.get("error") is None]
    groups = sorted({group_of(r["task"]) for r in par})
    budgets = sorted({int(r["budget"]) for r in par})
    checkpoints = sorted({b for b in budgets} | {b // 2 for b in budgets if b >= 100})
    parts: list[str] = []
    for group in groups:
        for evals in checkpoints:
            rows = parallel_rows(par, group=group, evals=evals, group_of=group_of, order=order)
            if not rows:
                continue
            parts += [
                f"## Parallel: {group}, {evals} evaluations",
                "",
                parallel_markdown(rows),
                "",
                goals_markdown(parallel_goals(par, group=group, evals=evals, group_of=group_of)),
                "",
            ]
        top = max(checkpoints)
        for against in ("time", "evals"):
            name = f"parallel-{group}-{top}-{against}.png"
            if plot_parallel(
                par,
                out / name,
                group=group,
                evals=top,
                group_of=group_of,
                against=against,
                order=order,
            ):
                parts += [f"![{group}, {top} evaluations, against {against}]({name})", ""]
    for evals in checkpoints:
        goals = parallel_goals(par, group="all", evals=evals, group_of=group_of)
        if any(g.runs for g in goals):
            parts += [
                f"## Parallel goals, all suites together, {evals} evaluations",
                "",
                goals_markdown(goals),
                "",
            ]
    return parts
