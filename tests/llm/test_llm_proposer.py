"""The shared Proposer: box restriction, the optimizer state in the prompt, and the sampling
settings it sends, against a real HTTP server on loopback."""

from __future__ import annotations

import json

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from optuna_llm.llm import OpenAIChatClient
from optuna_llm.llm.prompts import PromptSettings
from optuna_llm.llm.proposer import ProposalFailed, Proposer, restrict
from tests.helpers.llm_servers import Reply, ScriptedOpenAIServer

SPACE = {
    "x": FloatDistribution(-5.0, 5.0),
    "n": IntDistribution(0, 100, step=10),
    "c": CategoricalDistribution(["a", "b", "c"]),
}


def answer(**config: object) -> Reply:
    return Reply(json.dumps({"config": config}))


def proposer_for(server: ScriptedOpenAIServer, **kw: object) -> Proposer:
    client = OpenAIChatClient("scripted-model", base_url=server.base_url, max_retries=0)
    return Proposer(client, PromptSettings(problem="test"), **kw)  # type: ignore[arg-type]


def test_restrict_cuts_ranges_keeps_grids_and_subsets_choices() -> None:
    box = restrict(SPACE, {"x": (-1.0, 9.0), "n": (15, 62), "c": ["b", "z"]})
    assert box["x"] == FloatDistribution(-1.0, 5.0)
    assert box["n"] == IntDistribution(20, 60, step=10)
    assert box["c"] == CategoricalDistribution(["b"])
    with pytest.raises(ValueError, match="outside its range"):
        restrict(SPACE, {"x": (6.0, 7.0)})
    with pytest.raises(ValueError, match="not in the search space"):
        restrict(SPACE, {"y": (0.0, 1.0)})


def test_box_bounds_the_schema_and_the_answer_and_state_reaches_the_prompt() -> None:
    far = answer(x=-4.0, n=30, c="b")  # inside the space, far outside the box
    good = answer(x=0.5, n=30, c="b")
    with ScriptedOpenAIServer([far, good]) as server:
        proposer = proposer_for(server)
        [p] = proposer.propose(
            SPACE, [], box={"x": (0.0, 1.0), "n": (20, 40)}, state="CMA-ES mean x=0.4, sigma=0.2"
        )
        first = server.requests[0]
    assert p.params == {"x": 0.5, "n": 30, "c": "b"} and p.source == "llm"
    schema = first["response_format"]["json_schema"]["schema"]["properties"]["config"]
    assert schema["properties"]["x"] == {"type": "number", "minimum": 0.0, "maximum": 1.0}
    prompt = first["messages"][-1]["content"]
    assert "CMA-ES mean x=0.4, sigma=0.2" in prompt
    assert "propose inside it only" in prompt
    assert "-4" in server.requests[1]["messages"][-1]["content"]  # the refusal was fed back


def test_temperature_and_seed_are_sent_and_change_on_each_retry() -> None:
    bad = Reply("not json")
    with ScriptedOpenAIServer([bad, bad, bad]) as server:
        proposer = proposer_for(server, temperature=0.2, seed=7, max_attempts=3)
        with pytest.raises(ProposalFailed):
            proposer.propose(SPACE, [])
        sent = [(r["temperature"], r["seed"]) for r in server.requests]
    assert sent == [(0.2, 7), (0.4, 8), (0.8, 9)]


def test_with_no_seed_the_retries_still_get_distinct_seeds() -> None:
    bad = Reply("not json")
    with ScriptedOpenAIServer([bad, bad, bad]) as server:
        with pytest.raises(ProposalFailed):
            proposer_for(server, max_attempts=3).propose(SPACE, [])
        seeds = [r.get("seed") for r in server.requests]
    assert seeds[0] is None and len({*seeds[1:]}) == 2 and None not in seeds[1:]


def test_a_copy_of_the_examples_rationale_is_stored_as_no_rationale() -> None:
    copied = Reply(json.dumps({"rationale": "One short reason", "config": {"x": 1.0, "n": 10}}))
    own = Reply(json.dumps({"rationale": "x near 1 was best so far", "config": {"x": 2.0}}))
    space = {"x": SPACE["x"], "n": SPACE["n"]}
    with ScriptedOpenAIServer([copied, own]) as server:
        proposer = proposer_for(server)
        [first] = proposer.propose(space, [])
        [second] = proposer.propose({"x": SPACE["x"]}, [])
    assert first.params == {"x": 1.0, "n": 10} and first.rationale == ""
    assert second.rationale == "x near 1 was best so far"
