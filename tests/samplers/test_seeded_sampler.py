"""LLMSeededSampler: conformance, exact seed counts with 4 PostgreSQL workers, one batch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.testing.pytest_samplers import BasicSamplerTestCase, RelativeSamplerTestCase
from optuna.trial import TrialState

from optuna_llm._attrs import SEED_BATCH
from optuna_llm.llm import OpenAIChatClient
from optuna_llm.samplers import LLMSampler, LLMSeededSampler
from tests.helpers.llm_servers import Reply, ScriptedOpenAIServer, random_valid_responder

SEED_SOURCES = {"llm", "llm-repaired", "fallback:random"}


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer(random_valid_responder(seed=2)) as srv:
        yield srv


class _WithSeededSampler:
    @pytest.fixture
    def sampler(self, server: ScriptedOpenAIServer) -> Callable[[], LLMSeededSampler]:
        def make() -> LLMSeededSampler:
            client = OpenAIChatClient("scripted-model", base_url=server.base_url)
            # Multivariate TPE samples relatively, so the Relative cases apply after the seeds.
            base = optuna.samplers.TPESampler(seed=0, n_startup_trials=1, multivariate=True)
            return LLMSeededSampler(base, n_seed_trials=3, llm=client, seed=0)

        return make


class TestSeededBasic(_WithSeededSampler, BasicSamplerTestCase):
    pass


class TestSeededRelative(_WithSeededSampler, RelativeSamplerTestCase):
    pass


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    n = trial.suggest_int("n", 1, 20)
    return x**2 + (n - 3) ** 2


SPACE = {"x": FloatDistribution(-5.0, 5.0), "n": IntDistribution(1, 20)}


def test_single_worker_seeds_then_hands_over(server: ScriptedOpenAIServer) -> None:
    before = len(server.requests)
    client = OpenAIChatClient("scripted-model", base_url=server.base_url)
    sampler = LLMSeededSampler(
        optuna.samplers.TPESampler(seed=1), n_seed_trials=5, llm=client, search_space=SPACE
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=12)
    sources = [t.user_attrs["source"] for t in study.trials]
    assert sources[:5] == ["llm"] * 5 and sources[5:] == ["tpe"] * 7
    batch_requests = [
        r
        for r in server.requests[before:]
        if "configs" in r["response_format"]["json_schema"]["schema"]["properties"]
    ]
    assert len(batch_requests) == len(server.requests) - before == 1
    assert SEED_BATCH in study.trials[0].system_attrs
    assert study.trials[0].user_attrs["llm_calls"] == 1
    seeds = {(t.params["x"], t.params["n"]) for t in study.trials[:5]}
    assert len(seeds) == 5


def test_the_batch_request_keeps_the_given_samplers_settings(
    server: ScriptedOpenAIServer,
) -> None:
    before = len(server.requests)
    client = OpenAIChatClient("scripted-model", base_url=server.base_url)
    llm = LLMSampler("minimise x^2", client=client, temperature=0.3, seed=7)
    sampler = LLMSeededSampler(
        optuna.samplers.RandomSampler(seed=0), n_seed_trials=3, llm=llm, search_space=SPACE
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=3)
    [batch] = server.requests[before:]
    assert (batch["temperature"], batch["seed"]) == (0.3, 7)
    assert "minimise x^2" in batch["messages"][-1]["content"]


def test_the_batch_request_respects_the_given_samplers_token_cap(
    server: ScriptedOpenAIServer,
) -> None:
    before = len(server.requests)
    client = OpenAIChatClient("scripted-model", base_url=server.base_url)
    llm = LLMSampler("p", client=client, max_total_tokens=0)
    sampler = LLMSeededSampler(
        optuna.samplers.RandomSampler(seed=0), n_seed_trials=2, llm=llm, search_space=SPACE
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=2)
    assert len(server.requests) == before
    assert {t.user_attrs["source"] for t in study.trials} == {"fallback:random"}


def test_duplicate_seeds_in_the_answer_are_refused_and_replaced() -> None:
    dup = {"x": 1.0, "n": 2}
    replies = [
        Reply(json.dumps({"rationale": "r", "configs": [dup, dup, {"x": 2.0, "n": 3}]})),
        Reply(json.dumps({"rationale": "r", "configs": [{"x": -1.0, "n": 4}]})),
    ]
    with ScriptedOpenAIServer(replies) as srv:
        client = OpenAIChatClient("scripted-model", base_url=srv.base_url)
        sampler = LLMSeededSampler(
            optuna.samplers.RandomSampler(seed=0), n_seed_trials=3, llm=client, search_space=SPACE
        )
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=3)
        assert "repeats another configuration" in srv.requests[1]["messages"][-1]["content"]
    assert [t.params for t in study.trials] == [dup, {"x": 2.0, "n": 3}, {"x": -1.0, "n": 4}]


WORKER = textwrap.dedent(
    """
    import sys, optuna
    from optuna.distributions import FloatDistribution, IntDistribution
    from optuna_llm.llm import make_client
    from optuna_llm.samplers import LLMSampler, LLMSeededSampler

    storage, base_url = sys.argv[1], sys.argv[2]
    n_trials, n_seed = int(sys.argv[3]), int(sys.argv[4])
    space = {"x": FloatDistribution(-5.0, 5.0), "n": IntDistribution(1, 20)}

    def objective(trial):
        x = trial.suggest_float("x", -5.0, 5.0)
        n = trial.suggest_int("n", 1, 20)
        return x ** 2 + (n - 3) ** 2

    client = make_client(base_url=base_url or None, model="scripted-model" if base_url else None)
    sampler = LLMSeededSampler(optuna.samplers.TPESampler(), n_seed_trials=n_seed, llm=client,
                               search_space=space, problem="minimise x^2 + (n-3)^2")
    study = optuna.load_study(study_name="seeded", storage=storage, sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    """
)


def run_workers(postgres_url: str, tmp_path: Path, base_url: str, n_seed: int) -> optuna.Study:
    optuna.create_study(study_name="seeded", storage=postgres_url)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    root = Path(__file__).resolve().parents[2]
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), postgres_url, base_url, "4", str(n_seed)],
            cwd=root,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    errors = [w.communicate(timeout=900)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0, 0], errors
    return optuna.load_study(study_name="seeded", storage=postgres_url)


def check_seeding(study: optuna.Study, n_seed: int) -> None:
    trials = study.trials
    assert len(trials) == 16 and all(t.state == TrialState.COMPLETE for t in trials)
    seeded = [t for t in trials if t.user_attrs["source"] in SEED_SOURCES]
    assert len(seeded) == n_seed
    assert {t.number for t in seeded} == set(range(n_seed))
    assert len({(t.params["x"], t.params["n"]) for t in seeded}) == n_seed
    assert {t.user_attrs["source"] for t in trials if t.number >= n_seed} == {"tpe"}


def test_four_postgres_workers_seed_exactly_n(postgres_url: str, tmp_path: Path) -> None:
    with ScriptedOpenAIServer(random_valid_responder(seed=9)) as srv:
        study = run_workers(postgres_url, tmp_path, srv.base_url, n_seed=6)
        n_requests = len(srv.requests)
    check_seeding(study, 6)
    assert sum(SEED_BATCH in t.system_attrs for t in study.trials) == n_requests == 1


@pytest.mark.slow
@pytest.mark.llama
def test_four_postgres_workers_with_the_embedded_model(postgres_url: str, tmp_path: Path) -> None:
    study = run_workers(postgres_url, tmp_path, "", n_seed=5)
    check_seeding(study, 5)
