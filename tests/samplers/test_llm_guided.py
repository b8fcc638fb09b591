"""LLMGuidedSampler against real HTTP servers on loopback (good, garbage, hostile, dead), with
PostgreSQL workers, constraints, the GP gate and Optuna's conformance suites."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    MultiObjectiveSamplerTestCase,
    RelativeSamplerTestCase,
)
from optuna.trial import TrialState

from optuna_llm.llm import OpenAIChatClient
from optuna_llm.samplers import LLMGuidedSampler, make_sampler
from optuna_llm.samplers._llm_guided import (
    gate_accepts,
    is_llm_trial,
    rank_trials,
    region_around_best,
)
from tests.helpers.hostile import contains, hostile_responder
from tests.helpers.llm_servers import (
    Reply,
    ScriptedOpenAIServer,
    free_port,
    random_valid_responder,
    request_schema,
)

SPACE = {
    "x": FloatDistribution(-5.0, 10.0),
    "n": IntDistribution(1, 64, log=True),
    "c": CategoricalDistribution(["a", "b", None]),
}


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 10.0)
    n = trial.suggest_int("n", 1, 64, log=True)
    c = trial.suggest_categorical("c", ["a", "b", None])
    return (x - 2.0) ** 2 + abs(math.log(n) - 2.0) + (c is None)


def client_for(url: str, **kw: Any) -> OpenAIChatClient:
    return OpenAIChatClient("scripted-model", base_url=url, max_retries=0, timeout=5.0, **kw)


def run(client: OpenAIChatClient | None, n_trials: int = 20, **kw: Any) -> optuna.Study:
    kw.setdefault("base", "tpe")  # fast; the default (GP) runs in the conformance suites
    sampler = LLMGuidedSampler(
        "test", client=client, search_space=SPACE, seed=0, n_trials=n_trials, **kw
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    return study


def llm_numbers(n_trials: int, n_startup: int = 5, share: float = 0.3) -> list[int]:
    return [k for k in range(n_trials) if is_llm_trial(k, n_startup, share)]


def test_llm_trials_are_decided_by_the_trial_number_and_capped() -> None:
    assert llm_numbers(10) == [5, 9]
    assert len(llm_numbers(50)) == 14  # 30 % of the 45 trials after the start, rounded up
    assert llm_numbers(50, share=0.0) == []
    assert all(is_llm_trial(k, 0, 1.0) for k in range(10))


def test_good_answers_are_used_inside_the_box_with_the_state_in_the_prompt() -> None:
    with ScriptedOpenAIServer(random_valid_responder(seed=3)) as server:
        study = run(client_for(server.base_url), gate_tolerance=None)
        requests = list(server.requests)
    sources = {t.number: t.user_attrs["source"] for t in study.trials}
    wanted = llm_numbers(20)
    assert [k for k, s in sources.items() if s.startswith("llm")] == wanted
    assert {sources[k] for k in range(5)} == {"lhs"}
    assert {s for k, s in sources.items() if k >= 5 and k not in wanted} == {"tpe"}
    assert len(requests) == len(wanted)
    prompt = requests[-1]["messages"][-1]["content"]
    assert "TPE runs this study" in prompt and "Trials left after this one: " in prompt
    assert "best so far: trial #" in prompt and "full range [-5, 10]" in prompt
    # Each LLM point lies inside the box its request's schema gave (the region it was shown).
    for request, number in zip(requests, wanted, strict=True):
        box = request_schema(request)["properties"]["config"]["properties"]  # type: ignore[index]
        x = study.trials[number].params["x"]
        assert box["x"]["minimum"] <= x <= box["x"]["maximum"]
        assert box["x"]["maximum"] - box["x"]["minimum"] < 15.0  # narrower than the space
        assert study.trials[number].user_attrs["rationale"] == "random but valid"


def test_a_client_that_enforces_the_schema_is_asked_without_values_to_copy() -> None:
    with ScriptedOpenAIServer(random_valid_responder(seed=3)) as server:
        client = client_for(server.base_url)
        client.enforces_schema = True  # type: ignore[misc]  # as the embedded model declares
        run(client, n_trials=6, gate_tolerance=None, action="propose")
        [request] = server.requests
    ask = request["messages"][-1]["content"]
    assert "the values below only show the format" not in ask
    assert 'with a value for each of "x", "n", "c"' in ask


@pytest.mark.parametrize(
    ("enforces", "action", "temperature", "sent"),
    [
        (True, "auto", None, 1.0),  # the embedded model proposes, and copies its context at 0
        (True, "propose", None, 1.0),
        (False, "propose", None, 0.0),  # a server: the paper's 0
        (True, "choose", None, 0.0),  # a pick: the likeliest label
        (True, "propose", 0.3, 0.3),  # a given temperature is kept
    ],
)
def test_the_first_request_of_an_llm_trial_samples_at_the_clients_default(
    enforces: bool, action: str, temperature: float | None, sent: float
) -> None:
    with ScriptedOpenAIServer(random_valid_responder(seed=3)) as server:
        client = client_for(server.base_url)
        client.enforces_schema = enforces  # type: ignore[misc]  # as the embedded model declares
        run(client, n_trials=6, action=action, temperature=temperature)
        [request] = server.requests
    assert request["temperature"] == sent


@pytest.mark.parametrize("server_kind", ["garbage", "dead", "http500"])
def test_a_failing_llm_gives_the_optimizers_own_proposal_never_a_random_one(
    server_kind: str,
) -> None:
    alone = run(None, llm_share=0.0)
    if server_kind == "dead":
        study = run(client_for(f"http://127.0.0.1:{free_port()}/v1"))
    else:
        reply = Reply("not json at all {") if server_kind == "garbage" else Reply(status=500)
        with ScriptedOpenAIServer([reply]) as server:
            study = run(client_for(server.base_url))
    # Same seed, same history: every trial, the LLM trials included, is what the optimizer
    # alone chose; none comes from a random sampler.
    assert [t.params for t in study.trials] == [t.params for t in alone.trials]
    for k in llm_numbers(20):
        trial = study.trials[k]
        assert trial.user_attrs["source"] == "fallback:tpe"
        assert "the LLM gave no usable point" in trial.user_attrs["fallback_reason"]


def test_an_answer_cut_off_in_its_rationale_keeps_its_config() -> None:
    # What Gemma 3 270M does here: a valid config, then "Why? Why? ..." until max_tokens.
    def respond(request: dict[str, Any]) -> Reply:
        box = request_schema(request)["properties"]["config"]["properties"]  # type: ignore[index]
        config = {"x": box["x"]["minimum"], "n": box["n"]["minimum"], "c": box["c"]["enum"][0]}
        return Reply(json.dumps({"config": config})[:-1] + ', "rationale": "Why? Why? Why? Wh')

    with ScriptedOpenAIServer(respond) as server:
        study = run(client_for(server.base_url), n_trials=10, gate_tolerance=None)
    for k in llm_numbers(10):
        trial = study.trials[k]
        assert trial.user_attrs["source"] == "llm", trial.user_attrs.get("fallback_reason")
        assert "cut off after its config" in trial.user_attrs["rationale"]


def test_the_gp_gate_can_refuse_the_llms_point() -> None:
    assert gate_accepts(1.0, 1.2, value_std=1.0, tolerance=0.5)
    assert not gate_accepts(0.0, 1.2, value_std=1.0, tolerance=0.5)
    with ScriptedOpenAIServer(random_valid_responder(seed=3)) as server:
        # A tolerance no point can meet: every LLM point after the gate's start is refused.
        study = run(client_for(server.base_url), gate_tolerance=-1e9)
    gated = [t for t in study.trials if "GP gate" in t.user_attrs.get("fallback_reason", "")]
    assert gated and all(t.user_attrs["source"] == "fallback:tpe" for t in gated)
    assert all("llm_answer" in t.user_attrs for t in gated)  # what it refused stays visible


def test_hostile_answers_never_break_the_study_or_leave_the_space() -> None:
    with ScriptedOpenAIServer(hostile_responder(seed=5, p_hostile=0.9)) as server:
        study = run(client_for(server.base_url), n_trials=30, llm_share=1.0, gate_tolerance=None)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    for trial in study.trials:
        assert all(contains(SPACE[k], v) for k, v in trial.params.items()), trial.params
        source = trial.user_attrs["source"]
        assert source in ("lhs", "llm", "llm-repaired", "fallback:tpe"), source
    configs = [json.dumps(t.params, sort_keys=True) for t in study.trials]
    assert len(set(configs)) == len(configs)


@pytest.mark.skipif(
    not hasattr(optuna.Trial, "set_constraint"), reason="Optuna 5's trial.set_constraint"
)
def test_infeasible_trials_rank_below_every_feasible_one() -> None:
    def constrained(trial: optuna.Trial) -> float:
        value = objective(trial)
        trial.set_constraint("x_at_most_0", trial.params["x"])  # Optuna 5: feasible if <= 0
        return value

    sampler = LLMGuidedSampler(search_space=SPACE, seed=0, llm_share=0.0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(constrained, n_trials=15)
    ranked = rank_trials(study.trials, study.direction)
    feasible = [t.params["x"] <= 0.0 for t in ranked]
    assert any(feasible) and not all(feasible)
    assert feasible == sorted(feasible, reverse=True)  # every feasible trial first
    # The unconstrained best (x near 2) is infeasible: the box is drawn around feasible ones.
    region = region_around_best(SPACE, ranked)
    assert ranked[0].params["x"] <= 0.0
    assert region.space["x"].low <= ranked[0].params["x"] <= region.space["x"].high


def test_bad_arguments_say_what_to_pass() -> None:
    with pytest.raises(ValueError, match="llm_share must be in"):
        LLMGuidedSampler(llm_share=1.5)
    with pytest.raises(ValueError, match="base must be 'tpe', 'gp'"):
        LLMGuidedSampler(base="cma", llm_share=0.0)
    assert isinstance(make_sampler("guided-base", seed=0), LLMGuidedSampler)


# -- four workers on one PostgreSQL study ------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import sys, optuna
    from optuna.distributions import FloatDistribution, IntDistribution
    from optuna_llm.samplers import LLMGuidedSampler

    storage, base_url, n_trials, action = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    space = {"x": IntDistribution(0, 9), "y": FloatDistribution(0.0, 1.0, step=0.25)}

    def objective(trial):
        return trial.suggest_int("x", 0, 9) + trial.suggest_float("y", 0.0, 1.0, step=0.25)

    sampler = LLMGuidedSampler("shared study", base_url=base_url, model="scripted-model",
                               search_space=space, llm_share=0.5, n_startup_trials=4,
                               action=action, base="tpe")
    study = optuna.load_study(study_name="shared", storage=storage, sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    """
)


def pool_responder(seed: int) -> Callable[[dict[str, Any]], Reply]:
    """A few configurations at random, in the box when one of them fits: duplicates and
    simultaneous claims are common."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def respond(request: dict[str, Any]) -> Reply:
        properties = request_schema(request)["properties"]  # type: ignore[index]
        if "choice" in properties:  # action="choose": a random label
            with lock:
                label = rng.choice(properties["choice"]["enum"])
            return Reply(json.dumps({"choice": label, "rationale": "a pick"}))
        box = properties["config"]["properties"]
        xs = list(range(int(box["x"]["minimum"]), int(box["x"]["maximum"]) + 1))
        with lock:
            config = {"x": rng.choice(xs[:3]), "y": rng.choice([0.0, 0.5])}
        return Reply(json.dumps({"rationale": "from the pool", "config": config}))

    return respond


@pytest.mark.parametrize("action", ["propose", "choose"])
def test_four_postgres_workers_share_one_study_without_duplicates(
    postgres_url: str, tmp_path: Path, action: str
) -> None:
    optuna.create_study(study_name="shared", storage=postgres_url)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    root = Path(__file__).resolve().parents[2]
    with ScriptedOpenAIServer(pool_responder(0)) as server:
        workers = [
            subprocess.Popen(
                [sys.executable, str(script), postgres_url, server.base_url, "8", action],
                cwd=root,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        errors = [w.communicate(timeout=600)[1] for w in workers]
        n_requests = len(server.requests)
    assert [w.returncode for w in workers] == [0, 0, 0, 0], errors
    trials = optuna.load_study(study_name="shared", storage=postgres_url).trials
    assert len(trials) == 32 and all(t.state == TrialState.COMPLETE for t in trials)
    configs = [(t.params["x"], t.params["y"]) for t in trials]
    assert len(set(configs)) == 32, "two trials evaluated the same configuration"
    sources = [t.user_attrs["source"] for t in trials]
    llm_sources = ("llm", "llm-repaired") if action == "propose" else ("llm-choice",)
    assert set(llm_sources) & set(sources) and n_requests >= 1
    llm_trials = [t.number for t in trials if is_llm_trial(t.number, 4, 0.5)]
    assert all(
        t.user_attrs["source"] in (*llm_sources, "fallback:tpe")
        for t in trials
        if t.number in llm_trials
    )


# -- Optuna's conformance suites ------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer(random_valid_responder(seed=1)) as srv:
        yield srv


class _WithGuidedSampler:
    @pytest.fixture
    def sampler(self, server: ScriptedOpenAIServer) -> Callable[[], LLMGuidedSampler]:
        return lambda: LLMGuidedSampler(
            "conformance", base_url=server.base_url, seed=0, n_startup_trials=2, llm_share=0.5
        )


class TestLLMGuidedSamplerBasic(_WithGuidedSampler, BasicSamplerTestCase):
    pass


class TestLLMGuidedSamplerRelative(_WithGuidedSampler, RelativeSamplerTestCase):
    pass


class TestLLMGuidedSamplerMultiObjective(_WithGuidedSampler, MultiObjectiveSamplerTestCase):
    pass


def test_with_candidates_one_request_per_llm_trial_and_the_point_is_a_candidate() -> None:
    offered: list[list[dict[str, Any]]] = []

    def respond(request: dict[str, Any]) -> Reply:
        items = request_schema(request)["properties"]["configs"]  # type: ignore[index]
        assert items["minItems"] == 3
        box = items["items"]["properties"]
        lo, hi = box["x"]["minimum"], box["x"]["maximum"]
        configs = [
            {"x": lo + (hi - lo) * f, "n": box["n"]["minimum"], "c": box["c"]["enum"][0]}
            for f in (0.1, 0.5, 0.9)
        ]
        offered.append(configs)
        # Cut off in the rationale, as the 270M model does: the configs are salvaged.
        return Reply(json.dumps({"configs": configs})[:-1] + ', "rationale": "Why? Why? Wh')

    with ScriptedOpenAIServer(respond) as server:
        study = run(client_for(server.base_url), n_trials=16, candidates=3)
    assert len(offered) == len(llm_numbers(16))
    for trial, configs in zip([study.trials[k] for k in llm_numbers(16)], offered, strict=True):
        assert trial.user_attrs["source"] in ("llm", "fallback:tpe"), trial.user_attrs
        if trial.user_attrs["source"] == "llm":
            assert any(math.isclose(trial.params["x"], c["x"]) for c in configs)
    assert any(study.trials[k].user_attrs["source"] == "llm" for k in llm_numbers(16))


def test_the_gate_takes_the_candidate_of_highest_ucb() -> None:
    from optuna_llm.llm.propose import Proposal

    study = run(None, n_trials=12, llm_share=0.0)
    ranked = rank_trials(study.trials, study.direction)
    worst, best = ranked[-1].params, ranked[0].params
    sampler = LLMGuidedSampler("test", client=client_for("http://127.0.0.1:9/v1"), seed=0)
    candidates = [Proposal(dict(worst), "llm", ""), Proposal(dict(best), "llm", "")]
    chosen, verdict = sampler._gate(study, ranked, SPACE, candidates, own=dict(worst))
    assert chosen.params == best and verdict is None  # evaluated points: the mean decides
    chosen, verdict = sampler._gate(study, ranked, SPACE, candidates[:1], own=dict(best))
    assert chosen.params == worst and verdict is not None and "GP gate refused" in verdict
