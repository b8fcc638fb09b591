"""The embedded Gemma 3 270M: in-process (the default) and behind llama.cpp's own
OpenAI-compatible server, reached through the ``openai`` client."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from optuna_llm.llm.client import OpenAIChatClient
from optuna_llm.llm.embedded import (
    GEMMA_SHA256,
    EmbeddedLlamaClient,
    default_model_path,
    sha256_of,
)
from optuna_llm.samplers import LLMSampler
from tests.helpers.llm_servers import start_llama_server

pytestmark = [pytest.mark.slow, pytest.mark.llama]


def branin(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 10.0)
    y = trial.suggest_float("y", 0.0, 15.0)
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


def test_model_file_is_verified() -> None:
    path = default_model_path()
    assert path.stat().st_size == 253_113_024
    assert sha256_of(path) == GEMMA_SHA256


def test_branin_study_through_llama_cpp_server() -> None:
    with start_llama_server() as base_url:
        sampler = LLMSampler(
            "Minimise the 2-D Branin function.", base_url=base_url, model="gemma", seed=0
        )
        study = optuna.create_study(sampler=sampler)
        study.optimize(branin, n_trials=4)
    assert len(study.trials) == 4
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        assert -5.0 <= trial.params["x"] <= 10.0 and 0.0 <= trial.params["y"] <= 15.0
        assert trial.user_attrs["source"] in ("llm", "llm-repaired", "fallback:random")
        assert trial.user_attrs["llm_calls"] >= 1
        assert trial.user_attrs["llm_prompt_tokens"] > 0
        assert isinstance(trial.user_attrs.get("rationale", ""), str)
        if not trial.user_attrs["source"].startswith("llm"):
            assert trial.user_attrs["fallback_reason"], trial.user_attrs
    # The answers reach the sampler as JSON (the server's JSON mode), so the refusals are
    # about the values: with this model, repeats of tried configurations and copies of the
    # format example (docs/llm.md), which are never counted as its choice.
    parsed = [_json_or_none(t.user_attrs.get("llm_answer", "")) for t in study.trials]
    assert any(isinstance(answer, dict) for answer in parsed), parsed


def _json_or_none(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


def test_demo_runs_on_the_embedded_default(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "optuna_llm",
            "demo",
            "--n-trials",
            "3",
            "--epochs",
            "1",
            "--storage",
            f"sqlite:///{db}",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Exception ignored" not in out.stderr  # llama-cpp-python's __del__ at exit
    assert "Best trial #" in out.stdout
    assert f"optuna-dashboard sqlite:///{db}" in out.stdout
    study = optuna.load_study(study_name="digits-llm-demo", storage=f"sqlite:///{db}")
    assert len(study.trials) == 3
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert all("source" in t.user_attrs for t in study.trials)


# -- issue 16 items 1, 2 and 6: sampling settings, grammar, prefix reuse --------------------------

SYSTEM = {
    "role": "system",
    "content": "You are a helpful assistant. " * 40 + "Answer briefly.",
}


@pytest.fixture(scope="module")
def embedded() -> EmbeddedLlamaClient:
    return EmbeddedLlamaClient()


def test_the_schema_grammar_is_applied_in_process(embedded: EmbeddedLlamaClient) -> None:
    schema = {
        "type": "object",
        "properties": {"poem": {"type": "string"}, "word": {"enum": ["zebra-42"]}},
        "required": ["poem", "word"],
        "additionalProperties": False,
    }
    ask = {"role": "user", "content": "Write a poem of four lines in 'poem', one per line."}
    result = embedded.chat([SYSTEM, ask], json_schema=schema, max_tokens=120, temperature=0.7)
    answer = json.loads(result.text)  # strict: a raw line break inside a string fails here
    assert answer["word"] == "zebra-42" and list(answer) == ["poem", "word"]


def test_temperature_and_seed_reach_llama_cpp(embedded: EmbeddedLlamaClient) -> None:
    ask = [SYSTEM, {"role": "user", "content": "Name one animal and say something about it."}]

    def say(seed: int, temperature: float = 1.0) -> str:
        return embedded.chat(ask, temperature=temperature, seed=seed, max_tokens=24).text

    # The first call evaluates the whole prompt, later ones reuse its KV cache and evaluate
    # only the tail: the logits differ in the last bits and, at temperature 1, so can the text
    # (measured: first call differs, every later one is identical). Compare warm calls.
    say(1)
    assert say(1) == say(1)
    assert len({say(1), say(2), say(3)}) >= 2
    assert say(1, 0.0) == say(2, 0.0)  # greedy: the seed does not matter


def test_the_unchanged_prefix_is_not_evaluated_again(embedded: EmbeddedLlamaClient) -> None:
    # Gemma's chat format has no system turn (llama-cpp-python drops it): the shared prefix
    # is the start of the user's turn, as the problem and search space are in a real prompt.
    prefix = "Problem: minimise the Branin function over x in [-5, 10], y in [0, 15]. " * 12
    embedded.chat([{"role": "user", "content": prefix + "Say one."}], max_tokens=4)
    result = embedded.chat([{"role": "user", "content": prefix + "Say two."}], max_tokens=4)
    stats = embedded.last_prefill
    assert stats is not None and stats.prompt_tokens == result.prompt_tokens
    assert stats.reused_tokens > result.prompt_tokens // 2  # the system prompt came from cache


def test_seed_and_temperature_reach_llama_cpps_server() -> None:
    with start_llama_server() as base_url:
        client = OpenAIChatClient("gemma", base_url=base_url)
        ask = [SYSTEM, {"role": "user", "content": "Name one animal and say something about it."}]

        def say(seed: int) -> str:
            return client.chat(ask, temperature=1.0, seed=seed, max_tokens=24).text

        say(1)  # warm the server's prompt cache (see the in-process test above)
        first = say(1)
        assert say(1) == first
        assert len({first, say(2), say(3)}) >= 2


def test_the_answer_grammar_refuses_raw_control_characters_in_strings() -> None:
    from optuna.distributions import FloatDistribution

    from optuna_llm.llm.embedded import schema_gbnf
    from optuna_llm.llm.schema import answer_schema

    gbnf = schema_gbnf(answer_schema({"x": FloatDistribution(0.0, 1.0)}))
    [rule] = [line for line in gbnf.splitlines() if line.startswith("char ::=")]
    assert rule.startswith('char ::= [^"\\\\\\x7F\\x00-\\x1F]')
    # The answer keeps the schema's key order (rationale first by default).
    [root] = [line for line in gbnf.splitlines() if line.startswith("root ::=")]
    assert root.index("rationale-kv") < root.index("config-kv")


def test_the_answer_grammar_lets_an_exponent_start_with_zero(embedded: EmbeddedLlamaClient) -> None:
    # llama-cpp-python's number rule cut "1e-05" to "1e-0" (= 1): small learning rates arrived
    # 100,000 times too large and were refused as out of range.
    schema = {
        "type": "object",
        "properties": {"learning_rate": {"type": "number"}},
        "required": ["learning_rate"],
        "additionalProperties": False,
    }
    ask = {"role": "user", "content": 'Copy this JSON exactly: {"learning_rate": 1e-05}'}
    result = embedded.chat([SYSTEM, ask], json_schema=schema, max_tokens=20, temperature=0.0)
    assert json.loads(result.text)["learning_rate"] < 1e-3, result.text


def test_the_answer_grammar_keeps_numbers_inside_their_range(embedded: EmbeddedLlamaClient) -> None:
    # llama-cpp-python ignores minimum/maximum: asked for out-of-range values, the model wrote
    # "depth": 16 for [1, 3] and "alpha": 0 for a log-scale [1e-08, 1], and each such answer
    # cost a request (docs/llm.md). The grammar now keeps them inside.
    from optuna.distributions import FloatDistribution, IntDistribution

    from optuna_llm.llm.schema import answer_schema

    space = {
        "depth": IntDistribution(1, 3),
        "width": IntDistribution(16, 1024, log=True),
        "alpha": FloatDistribution(1e-08, 1.0, log=True),
        "x": FloatDistribution(-5.0, 10.0),
    }
    schema = answer_schema(space, 1, "none")
    ask = {
        "role": "user",
        "content": 'Copy this JSON exactly: {"config": {"depth": 16, "width": 2000, "alpha": 0, '
        '"x": 45}}',
    }
    for seed in range(4):
        result = embedded.chat(
            [SYSTEM, ask], json_schema=schema, max_tokens=80, temperature=1.0, seed=seed
        )
        config = json.loads(result.text)["config"]
        assert 1 <= config["depth"] <= 3 and 16 <= config["width"] <= 1024, result.text
        assert 0 < config["alpha"] <= 1.0 and -5.0 <= config["x"] <= 10.0, result.text


def test_the_lazy_grammar_answers_as_llama_cpps_own_grammar(embedded: EmbeddedLlamaClient) -> None:
    # The client checks the likeliest 256 tokens against the grammar before the whole
    # vocabulary (llm/lazy_grammar.py): at temperature 0 the answer must be the one that
    # llama-cpp-python's grammar (every token checked) gives, token for token.
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from optuna_llm.llm.embedded import grammar_for_schema, merge_system_turn
    from optuna_llm.llm.schema import answer_schema

    space = {
        "optimizer": CategoricalDistribution(["adam", "sgd"]),
        "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
        "weight_decay": FloatDistribution(1e-5, 1e-1, log=True),
    }
    schema = answer_schema(space, 1, "first")
    ask = {"role": "user", "content": "Propose a training configuration for ResNet-9."}
    messages = merge_system_turn([SYSTEM, ask])
    llama = embedded._llama()
    other = [{"role": "user", "content": "Say a word."}]
    for temperature in (0.0, 1.0):
        # llama.cpp's logits depend a little on how much of the prompt it reuses from its
        # cache (a reused prefix is evaluated in other batches): the same request after a
        # different one, and right after itself, can differ at a near tie. Both paths below
        # start from the same state: after another prompt.
        embedded.chat(other, max_tokens=4)
        lazy = embedded.chat(
            [SYSTEM, ask], json_schema=schema, max_tokens=160, temperature=temperature, seed=5
        ).text
        embedded.chat(other, max_tokens=4)
        whole = llama.create_chat_completion(
            messages=messages,
            grammar=grammar_for_schema(schema),
            max_tokens=160,
            temperature=temperature,
            top_p=1.0 if temperature else 0.95,
            min_p=0.0 if temperature else 0.05,
            seed=5,
        )["choices"][0]["message"]["content"]
        assert set(json.loads(lazy)["config"]) == set(space), lazy  # valid at either temperature
        if temperature == 0.0:
            assert lazy == whole


def test_llm_sampler_asks_the_embedded_model_at_temperature_one(tmp_path: Path) -> None:
    # At temperature 0 the 270M model wrote back a configuration of its prompt on nearly every
    # trial (docs/llm.md): on the embedded model the default first request samples at 1.
    from optuna_llm.llm import LLMCache

    cache = tmp_path / "exchanges.jsonl"
    sampler = LLMSampler("Minimise the 2-D Branin function.", cache=LLMCache(cache), seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(branin, n_trials=2)
    requests = [json.loads(line)["request"] for line in cache.read_text().splitlines()]
    assert requests and all(r["temperature"] == 1.0 for r in requests), requests
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_a_hot_request_samples_beyond_the_tail_that_llama_cpp_cuts(
    embedded: EmbeddedLlamaClient,
) -> None:
    # llama.cpp applies top_p 0.95 and min_p 0.05 before the temperature: a copy the model is
    # sure of came back as the same configuration at every seed (10 of 10 here, measured with
    # the cut; 3 distinct configurations without it). Sampling from the whole distribution,
    # new seeds give new configurations.
    from optuna.distributions import FloatDistribution

    from optuna_llm.llm.schema import answer_schema

    space = {"x": FloatDistribution(-5.0, 10.0), "y": FloatDistribution(0.0, 15.0)}
    schema = answer_schema(space, 1, "none")
    system = {"role": "system", "content": "You answer with JSON only."}
    ask = {"role": "user", "content": 'Copy this JSON exactly: {"config": {"x": 3.2322, "y": 1.5}}'}
    configs = set()
    for seed in range(10):
        text = embedded.chat(
            [system, ask], json_schema=schema, max_tokens=40, temperature=1.0, seed=seed
        ).text
        configs.add(json.dumps(json.loads(text)["config"], sort_keys=True))
    assert len(configs) >= 2, configs


def first_guided_llm_trial(embedded: EmbeddedLlamaClient, **kw: Any) -> FrozenTrial:
    """Trial 5 of a 7-trial LLMGuidedSampler study on Branin (TPE after a 5-point start): the
    first LLM trial."""
    from optuna_llm.samplers import LLMGuidedSampler

    sampler = LLMGuidedSampler(
        "Minimise the Branin function.", client=embedded, seed=0, n_trials=7, base="tpe", **kw
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(branin, n_trials=7)
    return study.trials[5]


def test_the_guided_sampler_picks_a_candidate_with_the_embedded_model(
    embedded: EmbeddedLlamaClient,
) -> None:
    trial = first_guided_llm_trial(embedded, action="choose")
    # The grammar makes every answer one of the labels: the pick is always usable.
    assert trial.user_attrs["source"] == "llm-choice", trial.user_attrs.get("fallback_reason")
    [shown] = [
        o for o in trial.user_attrs["llm_options"] if o["params"] == trial.params
    ]  # the trial runs the candidate it picked
    assert trial.user_attrs["choice_origin"] == shown["origin"]
    assert trial.user_attrs["llm_calls"] == 1 and trial.user_attrs["llm_seconds"] > 0
    # No reason is asked of the embedded model (its reasons were nonsense, docs/llm.md).
    assert json.loads(trial.user_attrs["llm_answer"]).keys() == {"choice"}


def test_the_guided_sampler_proposes_inside_its_box_with_the_embedded_model(
    embedded: EmbeddedLlamaClient,
) -> None:
    # The default action on the embedded model: a point written inside the box, sampled at
    # temperature 1 (docs/benchmarks.md); the gate is off so the point itself is checked.
    trial = first_guided_llm_trial(embedded, gate_tolerance=None)
    answer = json.loads(trial.user_attrs["llm_answer"])  # the grammar: always this shape
    assert set(answer["config"]) == {"x", "y"}
    assert trial.user_attrs["source"] in ("llm", "llm-repaired"), trial.user_attrs
    assert trial.params == pytest.approx(answer["config"], rel=0.05, abs=0.5)
    prompt = trial.user_attrs["llm_prompt"]
    assert "TPE runs this study; you propose one trial inside its region." in prompt
