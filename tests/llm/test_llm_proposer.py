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
    assert sent == [(0.2, 7), (0.6, 8), (1.0, 9)]  # each retry 0.4 hotter


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


def candidates_answer(*configs: dict[str, object]) -> Reply:
    return Reply(json.dumps({"configs": list(configs)}))


def test_with_candidates_the_first_usable_one_of_one_answer_is_taken() -> None:
    tried = {"x": 1.0, "n": 10, "c": "a"}
    new = {"x": 2.0, "n": 20, "c": "b"}
    with ScriptedOpenAIServer([candidates_answer(tried, new, {"x": 3.0, "n": 30, "c": "c"})]) as s:
        proposer = proposer_for(s, candidates=3)
        [p] = proposer.propose(
            SPACE, [], forbidden=lambda params: "tried" if params == tried else None
        )
        [request] = s.requests
    assert p.params == new and p.source == "llm"
    schema = request["response_format"]["json_schema"]["schema"]["properties"]["configs"]
    assert schema["minItems"] == schema["maxItems"] == 3
    assert "Propose 3 candidates for the next configuration" in request["messages"][-1]["content"]


def test_all_candidates_returns_every_usable_one_and_a_bad_answer_is_retried() -> None:
    a, b = {"x": 2.0, "n": 20, "c": "b"}, {"x": 3.0, "n": 30, "c": "c"}
    replies = [Reply("not json"), candidates_answer(a, {"x": 99.0, "n": 0, "c": "a"}, b)]
    with ScriptedOpenAIServer(replies) as server:
        proposals = proposer_for(server, candidates=3).propose(SPACE, [], all_candidates=True)
        assert len(server.requests) == 2
    assert [p.params for p in proposals] == [a, b]  # x=99 is far outside: refused


def test_a_copy_of_the_format_example_is_refused_and_never_the_llms_choice() -> None:
    from optuna_llm.llm.prompts import example_answer

    space = {"x": SPACE["x"], "n": SPACE["n"]}
    example = example_answer(space, 1, "first")["config"]
    with ScriptedOpenAIServer([answer(**example), answer(**example)]) as server:
        with pytest.raises(ProposalFailed, match="format example"):
            proposer_for(server, max_attempts=2).propose(space, [])
        assert "format example" in server.requests[1]["messages"][-1]["content"]


def test_with_example_keys_the_values_example_is_a_choice_like_any_other() -> None:
    from optuna_llm.llm.prompts import example_answer

    space = {"x": SPACE["x"], "n": SPACE["n"]}
    example = example_answer(space, 1, "first")["config"]
    with ScriptedOpenAIServer([answer(**example)]) as server:
        client = OpenAIChatClient("scripted-model", base_url=server.base_url, max_retries=0)
        proposer = Proposer(client, PromptSettings(problem="test", example="keys"))
        [proposal] = proposer.propose(space, [])
        assert "the values below only show the format" not in json.dumps(server.requests[0])
    assert proposal.params == example and proposal.source == "llm"


def test_example_auto_shows_keys_only_to_a_client_that_enforces_the_schema(tmp_path) -> None:
    from optuna_llm.llm.factory import make_client

    space = {"x": SPACE["x"], "n": SPACE["n"]}
    with ScriptedOpenAIServer([answer(x=1.0, n=10), answer(x=2.0, n=20)]) as server:
        plain = OpenAIChatClient("scripted-model", base_url=server.base_url, max_retries=0)
        assert Proposer(plain).settings.example == "values"
        Proposer(plain).propose(space, [])
        constrained = OpenAIChatClient("scripted-model", base_url=server.base_url, max_retries=0)
        constrained.enforces_schema = True  # type: ignore[misc]  # as a grammar-backed server
        assert Proposer(constrained).settings.example == "keys"
        Proposer(constrained).propose(space, [])
        first, second = (json.dumps(r["messages"]) for r in server.requests)
    assert "the values below only show the format" in first
    assert "the values below only show the format" not in second and '\\"x\\"' in second
    # The record/replay wrapper of the embedded model says so without loading the model.
    cached = make_client(cache=tmp_path / "c.jsonl")
    assert Proposer(cached).settings.example == "keys"
    assert Proposer(cached, PromptSettings(example="values")).settings.example == "values"


def test_candidates_must_be_positive() -> None:
    with pytest.raises(ValueError, match="candidates must be a positive number"):
        Proposer(OpenAIChatClient("m", base_url="http://127.0.0.1:9/v1"), candidates=0)
