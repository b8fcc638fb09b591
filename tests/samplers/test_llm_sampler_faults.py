"""LLMSampler against a real HTTP server that answers nonsense: every study completes and every
parameter is valid."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from optuna_llm.llm import CacheMissError, LLMCache, OpenAIChatClient
from optuna_llm.samplers import LLMSampler
from optuna_llm.samplers._llm import study_token_total
from tests.helpers.llm_servers import Reply, ScriptedOpenAIServer, free_port, random_valid_responder

SPACE = {
    "x": FloatDistribution(-5.0, 10.0),
    "n": IntDistribution(1, 64, log=True),
    "c": CategoricalDistribution(["a", "b", None]),
}
GOOD = json.dumps({"rationale": "fine", "config": {"x": 1.5, "n": 8, "c": "b"}})


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 10.0)
    n = trial.suggest_int("n", 1, 64, log=True)
    c = trial.suggest_categorical("c", ["a", "b", None])
    return (x - 2.0) ** 2 + abs(n - 8) + (c is None)


def run_study(client: OpenAIChatClient, n_trials: int = 3, **kw: object) -> optuna.Study:
    sampler = LLMSampler("test", client=client, search_space=SPACE, seed=0, **kw)  # type: ignore[arg-type]
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    return study


def assert_valid(study: optuna.Study) -> None:
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        for name, dist in SPACE.items():
            assert dist._contains(dist.to_internal_repr(trial.params[name]))
        assert trial.user_attrs["source"] in ("llm", "llm-repaired", "fallback:random")


def client_for(server: ScriptedOpenAIServer, **kw: object) -> OpenAIChatClient:
    return OpenAIChatClient(
        "scripted-model",
        base_url=server.base_url,
        max_retries=1,
        timeout=kw.pop("timeout", 5.0),
        **kw,
    )  # type: ignore[arg-type]


FAULTS = {
    "invalid_json": Reply('{"config": {"x": 1.0, "n": '),
    "wrong_types": Reply(json.dumps({"config": {"x": "abc", "n": [3], "c": {"a": 1}}})),
    "nan_inf": Reply('{"rationale": "", "config": {"x": NaN, "n": Infinity, "c": "a"}}'),
    "missing_keys": Reply(json.dumps({"config": {"x": 1.0}})),
    "huge_answer": Reply(json.dumps({"rationale": "z" * 100_000, "config": {"x": "y" * 100_000}})),
    "empty_choice": Reply(json.dumps({"config": {"x": 1.0, "n": 4, "c": ""}})),
    "not_an_object": Reply("[1, 2, 3]"),
    "empty_body": Reply(""),
    "server_error_500": Reply(status=500),
    "garbage_http_body": Reply(raw=b"<html>oops</html>"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_nonsense_answers_fall_back_and_the_study_completes(fault: str) -> None:
    with ScriptedOpenAIServer([FAULTS[fault]]) as server:
        study = run_study(client_for(server))
    assert_valid(study)
    assert {t.user_attrs["source"] for t in study.trials} == {"fallback:random"}
    assert all(t.user_attrs["fallback_reason"] for t in study.trials)


@pytest.mark.parametrize(
    ("reply", "repair"),
    [
        (Reply(json.dumps({"config": {"x": 10.3, "n": 8, "c": "b"}})), "clipped"),
        (Reply(json.dumps({"config": {"x": 1.0, "n": 8, "c": "b", "lr": 3}})), "unknown keys"),
        (Reply(json.dumps({"config": {"x": "2.5", "n": 7.6, "c": "None"}})), "coerced"),
        (Reply("```json\n" + GOOD + "\n```"), None),
    ],
)
def test_near_misses_are_repaired_and_marked(reply: Reply, repair: str | None) -> None:
    with ScriptedOpenAIServer([reply]) as server:
        study = run_study(client_for(server), n_trials=1)
    assert_valid(study)
    trial = study.trials[0]
    if repair is None:
        assert trial.user_attrs["source"] == "llm"
    else:
        assert trial.user_attrs["source"] == "llm-repaired"
        assert any(repair in r for r in trial.user_attrs["llm_repairs"])


def test_a_far_miss_is_refused_not_clipped_and_never_the_llms_choice() -> None:
    far = Reply(json.dumps({"config": {"x": 1e9, "n": 8, "c": "b"}}))
    with ScriptedOpenAIServer([far]) as server:
        study = run_study(client_for(server), n_trials=1)
        feedback = server.requests[1]["messages"][-1]["content"]
    assert_valid(study)
    assert study.trials[0].user_attrs["source"] == "fallback:random"
    assert "outside [-5.0, 10.0]" in feedback


def test_bad_answer_is_fed_back_then_accepted() -> None:
    with ScriptedOpenAIServer([Reply("nonsense"), Reply(GOOD)]) as server:
        study = run_study(client_for(server), n_trials=1)
        second = server.requests[1]["messages"]
    trial = study.trials[0]
    assert trial.user_attrs["source"] == "llm"
    assert trial.params == {"x": 1.5, "n": 8, "c": "b"}
    assert trial.user_attrs["llm_calls"] == 2
    assert second[-2] == {"role": "assistant", "content": "nonsense"}
    assert "not valid JSON" in second[-1]["content"]


def test_repeated_configuration_is_refused_and_asked_again() -> None:
    other = json.dumps({"config": {"x": -1.0, "n": 2, "c": "a"}})
    with ScriptedOpenAIServer([Reply(GOOD), Reply(GOOD), Reply(other)]) as server:
        study = run_study(client_for(server), n_trials=2)
        retry = server.requests[2]
    assert [t.params["x"] for t in study.trials] == [1.5, -1.0]
    assert "already evaluated" in retry["messages"][-1]["content"]
    assert retry["temperature"] > 0  # a retry samples hotter than temperature=0


def test_a_server_is_asked_at_the_papers_temperature_unless_one_is_given() -> None:
    with ScriptedOpenAIServer([Reply(GOOD)]) as server:
        run_study(client_for(server), n_trials=1)
        default = server.requests[0]["temperature"]
    with ScriptedOpenAIServer([Reply(GOOD)]) as server:
        run_study(client_for(server), n_trials=1, temperature=0.7)
        given = server.requests[0]["temperature"]
    assert (default, given) == (0.0, 0.7)
    with pytest.raises(ValueError, match=r"\[0, 2\].*got 5"):
        LLMSampler("test", client=OpenAIChatClient("m", base_url="http://127.0.0.1:9/v1"),
                   temperature=5)  # fmt: skip


def test_a_configuration_repeated_up_to_rounding_is_refused_too() -> None:
    # Trial 0 is at full precision (a fallback's draw); the model writes it back shortened
    # to 4 decimals, as Gemma 270M did with the prompt's history: that is no choice.
    space = {"x": SPACE["x"]}
    study = optuna.create_study()
    study.add_trial(
        optuna.trial.create_trial(params={"x": 3.232202558909872}, distributions=space, value=1.0)
    )
    replies = [
        Reply(json.dumps({"config": {"x": 3.2322}})),
        Reply(json.dumps({"config": {"x": 3.3}})),
    ]
    with ScriptedOpenAIServer(replies) as server:
        study.sampler = LLMSampler("p", client=client_for(server), search_space=space, seed=0)
        study.optimize(lambda t: t.suggest_float("x", -5.0, 10.0), n_trials=1)
        retry = server.requests[1]
    assert study.trials[1].params["x"] == 3.3 and study.trials[1].user_attrs["source"] == "llm"
    assert "up to rounding" in retry["messages"][-1]["content"]


def test_with_candidates_a_repeat_in_the_answer_is_skipped_without_another_request() -> None:
    first = {"x": 1.5, "n": 8, "c": "b"}
    second = {"x": -1.0, "n": 2, "c": "a"}
    replies = [
        Reply(json.dumps({"configs": [first, second, first]})),
        Reply(json.dumps({"configs": [first, second, {"x": 7.0, "n": 3, "c": None}]})),
    ]
    with ScriptedOpenAIServer(replies) as server:
        study = run_study(client_for(server), n_trials=2, candidates=3)
        assert len(server.requests) == 2  # one request per trial
    assert [t.params["x"] for t in study.trials] == [1.5, -1.0]  # the second is new
    assert [t.user_attrs["source"] for t in study.trials] == ["llm", "llm"]
    assert [t.user_attrs["llm_calls"] for t in study.trials] == [1, 1]


def test_rate_limit_then_success_is_retried_by_the_client() -> None:
    replies = [Reply(status=429, headers={"retry-after-ms": "10"}), Reply(GOOD)]
    with ScriptedOpenAIServer(replies) as server:
        study = run_study(client_for(server), n_trials=1)
    assert study.trials[0].user_attrs["source"] == "llm"
    assert len(server.requests) == 2


def test_timeout_falls_back() -> None:
    with ScriptedOpenAIServer([Reply(GOOD, delay=2.0)]) as server:
        study = run_study(client_for(server, timeout=0.3), n_trials=1)
    assert_valid(study)
    assert study.trials[0].user_attrs["source"] == "fallback:random"
    assert "Timeout" in study.trials[0].user_attrs["fallback_reason"]


def test_connection_refused_falls_back() -> None:
    client = OpenAIChatClient("m", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0)
    study = run_study(client, n_trials=2)
    assert_valid(study)
    assert "Connection" in study.trials[0].user_attrs["fallback_reason"]


def test_server_without_json_schema_support_gets_json_object() -> None:
    with ScriptedOpenAIServer([Reply(GOOD)], reject_json_schema=True) as server:
        study = run_study(client_for(server), n_trials=1)
        formats = [r["response_format"]["type"] for r in server.requests]
    assert study.trials[0].user_attrs["source"] == "llm"
    assert formats[0] == "json_schema" and formats[-1] == "json_object"
    assert "schema" in server.requests[-1]["response_format"]


def test_token_budget_caps_the_study_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        ScriptedOpenAIServer(random_valid_responder(3)) as server,
        caplog.at_level(logging.WARNING),
    ):
        study = run_study(client_for(server), n_trials=6, max_total_tokens=40)
    assert_valid(study)
    sources = [t.user_attrs["source"] for t in study.trials]
    assert sources[:3] == ["llm"] * 3  # 18 tokens a call: 3 calls reach 54 >= 40
    assert set(sources[3:]) == {"fallback:random"}
    assert study_token_total(study) == 3 * 18
    assert sum("token budget" in r.getMessage() for r in caplog.records) == 1


def test_attrs_record_prompt_answer_and_tokens_but_never_the_key(tmp_path: Path) -> None:
    secret = "sk-test-SECRET-0123456789"
    cache = tmp_path / "cache.jsonl"
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    with ScriptedOpenAIServer(random_valid_responder(5)) as server:
        sampler = LLMSampler(
            "Key test",
            base_url=server.base_url,
            api_key=secret,
            model="scripted-model",
            cache=str(cache),
            search_space=SPACE,
        )
        study = optuna.create_study(sampler=sampler, storage=storage)
        study.optimize(objective, n_trials=2)
        assert len(server.requests) == 2
    trial = study.trials[1]
    assert trial.user_attrs["llm_prompt_tokens"] == 11
    assert trial.user_attrs["llm_completion_tokens"] == 7
    assert "#0 " in trial.user_attrs["llm_prompt"]  # the history shows trial 0
    assert json.loads(trial.user_attrs["llm_answer"])["config"] == {
        k: v for k, v in trial.params.items()
    }
    dump = json.dumps([t.user_attrs | t.system_attrs for t in study.trials], default=str)
    assert secret not in dump
    assert secret not in cache.read_text()
    assert secret not in (tmp_path / "study.db").read_bytes().decode("latin-1")


def test_replay_reproduces_a_study_without_the_server(tmp_path: Path) -> None:
    cache = tmp_path / "exchanges.jsonl"
    with ScriptedOpenAIServer(random_valid_responder(11)) as server:
        first = run_study(
            OpenAIChatClient("scripted-model", base_url=server.base_url),
            n_trials=5,
            history="chat",
        )
    # Record through the cache (the client above answered live); now record a second run.
    with ScriptedOpenAIServer(random_valid_responder(11)) as server:
        recorded = LLMSampler(
            "test",
            base_url=server.base_url,
            model="scripted-model",
            cache=str(cache),
            search_space=SPACE,
            seed=0,
        )
        study = optuna.create_study(sampler=recorded)
        study.optimize(objective, n_trials=5)
    assert [t.params for t in study.trials] == [t.params for t in first.trials]

    dead_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: the network is gone
    replay = LLMSampler(
        "test",
        base_url=dead_url,
        model="scripted-model",
        cache=LLMCache(cache, mode="replay"),
        search_space=SPACE,
        seed=0,
    )
    again = optuna.create_study(sampler=replay)
    again.optimize(objective, n_trials=5)
    assert [t.params for t in again.trials] == [t.params for t in study.trials]
    assert all(t.user_attrs["source"] == "llm" for t in again.trials)

    more = optuna.create_study(
        sampler=LLMSampler(
            "a different problem",
            base_url=dead_url,
            model="scripted-model",
            cache=LLMCache(cache, mode="replay"),
            search_space=SPACE,
        )
    )
    with pytest.raises(CacheMissError, match="not in the replay cache"):
        more.optimize(objective, n_trials=1)


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    yield


def test_environment_configures_the_endpoint(monkeypatch: pytest.MonkeyPatch, no_env: None) -> None:
    with ScriptedOpenAIServer([Reply(GOOD)]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPTUNA_LLM_MODEL", "scripted-model")
        study = optuna.create_study(sampler=LLMSampler(search_space=SPACE))
        study.optimize(objective, n_trials=1)
        assert server.requests[0]["model"] == "scripted-model"
    assert study.trials[0].user_attrs["source"] == "llm"


def test_wrong_arguments_say_how_to_fix() -> None:
    with pytest.raises(ValueError, match="'compressed' or 'chat'"):
        LLMSampler(history="full", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(TypeError, match="fallback must be an Optuna sampler"):
        LLMSampler(fallback="random", base_url="http://127.0.0.1:9/v1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode must be one of"):
        LLMCache("x.jsonl", mode="replay-only")
