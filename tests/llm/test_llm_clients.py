"""The OpenAI-compatible client, the factory and record/replay against real HTTP servers on
loopback: no model-name round trip that can end a study, replay needing only the cache file,
one capability probe per server."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution, IntDistribution

from optuna_llm.llm import LLMCache, OpenAIChatClient, make_client
from optuna_llm.samplers import LLMSampler
from tests.helpers.llm_servers import Reply, ScriptedOpenAIServer, free_port, random_valid_responder

optuna.logging.set_verbosity(optuna.logging.ERROR)

SPACE = {"x": FloatDistribution(-5.0, 5.0), "n": IntDistribution(1, 20)}
GOOD = json.dumps({"rationale": "near the middle", "config": {"x": 0.5, "n": 3}})


def objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", -5.0, 5.0) ** 2 + trial.suggest_int("n", 1, 20)


def test_a_dead_server_with_no_model_falls_back_and_the_study_goes_on() -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    client = make_client(base_url=dead, max_retries=0)
    assert client.model == ""  # no network for the name
    sampler = LLMSampler("test", client=client, search_space=SPACE, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=2)
    assert len(study.trials) == 2
    for trial in study.trials:
        assert trial.user_attrs["source"] == "fallback:random"
        assert "did not list one" in trial.user_attrs["fallback_reason"]


def test_the_model_is_listed_once_at_the_first_request() -> None:
    with ScriptedOpenAIServer([Reply(GOOD)], model="served-model") as server:
        client = OpenAIChatClient(base_url=server.base_url)
        assert client.model == ""
        client.chat([{"role": "user", "content": "hi"}])
        client.chat([{"role": "user", "content": "hi again"}])
        assert client.model == "served-model"
        assert [r["model"] for r in server.requests] == ["served-model", "served-model"]


def test_replay_with_the_server_stopped_needs_only_the_cache_file(tmp_path: Path) -> None:
    cache = tmp_path / "exchanges.jsonl"
    with ScriptedOpenAIServer(random_valid_responder(3)) as server:
        url = server.base_url
        recorded = optuna.create_study(
            sampler=LLMSampler("test", base_url=url, cache=str(cache), search_space=SPACE, seed=0)
        )
        recorded.optimize(objective, n_trials=4)
    # The same URL, nothing listening, no model= anywhere.
    replay = LLMSampler(
        "test", base_url=url, cache=LLMCache(cache, mode="replay"), search_space=SPACE, seed=0
    )
    again = optuna.create_study(sampler=replay)
    again.optimize(objective, n_trials=4)
    assert [t.params for t in again.trials] == [t.params for t in recorded.trials]
    assert all(t.user_attrs["source"] == "llm" for t in again.trials)


def test_one_capability_probe_per_server_without_retries() -> None:
    with ScriptedOpenAIServer(random_valid_responder(5), reject_json_schema=True) as server:
        for _ in range(2):  # two clients (two samplers) in one process
            client = OpenAIChatClient("scripted-model", base_url=server.base_url, max_retries=3)
            study = optuna.create_study(
                sampler=LLMSampler("test", client=client, search_space=SPACE, seed=0)
            )
            study.optimize(objective, n_trials=2)
            assert all(t.user_attrs["source"] == "llm" for t in study.trials)
        formats = [r["response_format"]["type"] for r in server.requests]
    assert len(formats) == 5  # the probe, then one request a trial
    assert formats.count("json_schema") == 1
    assert formats[0] == "json_schema" and set(formats[1:]) == {"json_object"}
