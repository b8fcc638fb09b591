"""LatinHypercubeSampler: Optuna's conformance suite, the Latin property, 4 PostgreSQL workers."""

from __future__ import annotations

import math
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import optuna
import pytest
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    MultiObjectiveSamplerTestCase,
    RelativeSamplerTestCase,
)
from optuna.trial import TrialState

from optuna_llm.samplers import LatinHypercubeSampler, make_sampler
from optuna_llm.samplers._lhs import latin_hypercube_design, lhs_column, stratum_to_choice

optuna.logging.set_verbosity(optuna.logging.WARNING)


class TestLHSConformance(
    BasicSamplerTestCase, RelativeSamplerTestCase, MultiObjectiveSamplerTestCase
):
    @pytest.fixture
    def sampler(self) -> Callable[[], optuna.samplers.BaseSampler]:
        return lambda: LatinHypercubeSampler(10, seed=0)


N = 20
SPACE: dict[str, BaseDistribution] = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "dropout": FloatDistribution(0.0, 0.5),
    "width": IntDistribution(16, 215),  # 200 choices >= N: N distinct values
    "layers": IntDistribution(1, 3),  # 3 choices < N: spread evenly
    "opt": CategoricalDistribution(["adam", "sgd", "rmsprop", "lion"]),
    "wd": FloatDistribution(0.0, 0.1, step=0.01),  # 11 choices < N
    "batch": IntDistribution(8, 512, log=True),
}


def _objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    trial.suggest_int("width", 16, 215)
    layers = trial.suggest_int("layers", 1, 3)
    trial.suggest_categorical("opt", ["adam", "sgd", "rmsprop", "lion"])
    trial.suggest_float("wd", 0.0, 0.1, step=0.01)
    trial.suggest_int("batch", 8, 512, log=True)
    return math.log10(lr) ** 2 + dropout + layers


def _stratum(value: float, low: float, high: float, n: int, log: bool = False) -> int:
    if log:
        value, low, high = math.log(value), math.log(low), math.log(high)
    return min(int((value - low) / (high - low) * n), n - 1)


def test_every_dimension_fills_its_strata() -> None:
    study = optuna.create_study(sampler=LatinHypercubeSampler(N, seed=3))
    study.optimize(_objective, n_trials=N)
    trials = study.trials
    assert [t.user_attrs["source"] for t in trials] == ["lhs"] * N

    lr = [t.params["lr"] for t in trials]
    assert sorted(_stratum(v, 1e-5, 1e-1, N, log=True) for v in lr) == list(range(N))
    dropout = [t.params["dropout"] for t in trials]
    assert sorted(_stratum(v, 0.0, 0.5, N) for v in dropout) == list(range(N))
    # 200 integer choices, 20 rows: 20 distinct values, one from each group of 10 neighbours.
    width = [t.params["width"] for t in trials]
    assert sorted((v - 16) // 10 for v in width) == list(range(N))
    # Fewer choices than rows: every choice floor(N/m) or ceil(N/m) times.
    for name, m in (("layers", 3), ("opt", 4), ("wd", 11)):
        counts = Counter(t.params[name] for t in trials)
        assert len(counts) == m, name
        assert set(counts.values()) <= {N // m, -(-N // m)}, (name, counts)
    # Log-int: stratified in log space, so it spans the range.
    batch = [t.params["batch"] for t in trials]
    assert min(batch) < 16 and max(batch) > 256

    # Trial k took row k of the design the module-level function computes.
    design = latin_hypercube_design(SPACE, N, seed=3)
    assert [t.params for t in trials] == design


def test_stratum_to_choice_is_even_and_distinct() -> None:
    for n in (1, 3, 7, 10):
        for m in (1, 2, 3, 7, 10, 25):
            choices = [stratum_to_choice(j, 0.999, n, m) for j in range(n)]
            assert all(0 <= c < m for c in choices)
            if m >= n:
                assert len(set(choices)) == n
            else:
                assert set(Counter(choices).values()) <= {n // m, -(-n // m)}


def test_same_seed_same_design_other_seed_other_design() -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        study = optuna.create_study(sampler=LatinHypercubeSampler(8, seed=seed))
        study.optimize(_objective, n_trials=8)
        return [t.params for t in study.trials]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_design_ignores_suggest_order_and_conditions() -> None:
    """A column depends on (seed, name, n) only: order and conditional parameters do not move it."""

    def forward(trial: optuna.Trial) -> float:
        return trial.suggest_float("a", 0, 1) + trial.suggest_float("b", 0, 1)

    def backward(trial: optuna.Trial) -> float:
        b = trial.suggest_float("b", 0, 1)
        a = trial.suggest_float("a", 0, 1) if trial.number % 2 == 0 else 0.0
        return a + b

    s1 = optuna.create_study(sampler=LatinHypercubeSampler(6, seed=1))
    s1.optimize(forward, n_trials=6)
    s2 = optuna.create_study(sampler=LatinHypercubeSampler(6, seed=1))
    s2.optimize(backward, n_trials=6)
    for t1, t2 in zip(s1.trials, s2.trials, strict=True):
        assert t1.params["b"] == t2.params["b"]
        if t2.number % 2 == 0:
            assert t1.params["a"] == t2.params["a"]


def test_after_the_design_a_fresh_design_per_block() -> None:
    study = optuna.create_study(sampler=LatinHypercubeSampler(5, seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=15)
    xs = [t.params["x"] for t in study.trials]
    blocks = [xs[0:5], xs[5:10], xs[10:15]]
    for block in blocks:
        assert sorted(int(x * 5) for x in block) == [0, 1, 2, 3, 4]
    assert blocks[0] != blocks[1] != blocks[2]
    strata, _ = lhs_column(0, "x", 5, block=1)
    assert [int(x * 5) for x in blocks[1]] == strata.tolist()


def test_lhs_gp_factory_is_gp_after_lhs() -> None:
    sampler = make_sampler("lhs-gp", seed=0, n_startup_trials=6)
    assert isinstance(sampler, optuna.samplers.GPSampler)
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        return (trial.suggest_float("x", -5, 5) - 1) ** 2 + trial.suggest_float("y", -5, 5) ** 2

    study.optimize(objective, n_trials=8)
    design = latin_hypercube_design(
        {"x": FloatDistribution(-5, 5), "y": FloatDistribution(-5, 5)}, 6, seed=0
    )
    assert [t.params for t in study.trials[:6]] == design
    assert all(t.user_attrs.get("source") == "lhs" for t in study.trials[:6])
    # From trial 6 on the GP proposes; those trials are not labelled as LHS.
    assert all("source" not in t.user_attrs for t in study.trials[6:])


@pytest.mark.parametrize(
    ("kwargs", "error", "fix"),
    [
        ({"n_samples": 0}, ValueError, "at least 1"),
        ({"n_samples": 2.5}, TypeError, "must be an int"),
        ({"n_samples": 4, "seed": -1}, ValueError, "seed=0"),
        ({"n_samples": 4, "seed": "a"}, ValueError, "non-negative int"),
    ],
)
def test_bad_arguments_name_the_fix(kwargs: dict[str, Any], error: type, fix: str) -> None:
    with pytest.raises(error, match=fix):
        LatinHypercubeSampler(**kwargs)


def _worker(url: str, n_trials: int) -> None:
    study = optuna.load_study(
        study_name="lhs", storage=url, sampler=LatinHypercubeSampler(12, seed=7)
    )

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1, 1)
        k = trial.suggest_int("k", 0, 99)
        c = trial.suggest_categorical("c", ["a", "b", "c"])
        time.sleep(0.05)  # keep the four workers interleaved
        return x + k + len(c)

    study.optimize(objective, n_trials=n_trials)


def test_four_postgres_workers_evaluate_exactly_the_design(postgres_url: str) -> None:
    optuna.create_study(study_name="lhs", storage=postgres_url)
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_worker, args=(postgres_url, 3)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]

    study = optuna.load_study(study_name="lhs", storage=postgres_url)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert sorted(t.number for t in trials) == list(range(12))
    space = {
        "x": FloatDistribution(-1, 1),
        "k": IntDistribution(0, 99),
        "c": CategoricalDistribution(["a", "b", "c"]),
    }
    design = latin_hypercube_design(space, 12, seed=7)
    assert {t.number: t.params for t in trials} == dict(enumerate(design))
    assert {t.user_attrs["source"] for t in trials} == {"lhs"}
    assert sorted(_stratum(t.params["x"], -1, 1, 12) for t in trials) == list(range(12))


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")  # ask/tell here
def test_a_row_given_up_at_max_retry_goes_to_the_fresh_trial(tmp_path: Any) -> None:
    from optuna_llm._attrs import GIVEN_UP
    from optuna_llm._compat import retry_stale_trial_callback
    from optuna_llm.samplers._lhs import ROW

    keyword, callback = retry_stale_trial_callback(3)
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path / 'lhs.db'}",
        heartbeat_interval=60,
        grace_period=120,
        **{keyword: callback},
    )
    study = optuna.create_study(storage=storage, sampler=LatinHypercubeSampler(8, seed=0))
    study.optimize(_objective, n_trials=3)
    kept = study.ask()  # its worker died; a retry may still come, so it keeps its row
    _objective(kept)
    study._storage.set_trial_state_values(kept._trial_id, TrialState.FAIL)
    gone = study.ask()  # its worker died on the last retry the chain allows: given up
    _objective(gone)
    study._storage.set_trial_system_attr(gone._trial_id, GIVEN_UP, gone.number)
    study._storage.set_trial_state_values(gone._trial_id, TrialState.FAIL)
    fresh = study.ask()
    _objective(fresh)
    rows = {
        t.number: study._storage.get_trial(t._trial_id).system_attrs[ROW]
        for t in (kept, gone, fresh)
    }
    assert rows[fresh.number] == rows[gone.number] != rows[kept.number]
