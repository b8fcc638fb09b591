"""LLMGuidedSampler with ``action="choose"``: the LLM picks one of labelled candidates (the
optimizer's proposal and GP candidates in the region) over a real HTTP server, and the
candidate maths on its own."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution

from optuna_llm.llm.choose import _close_cut_answer, choice_schema, read_choice
from optuna_llm.llm.validate import InvalidAnswer
from optuna_llm.samplers import LLMGuidedSampler
from optuna_llm.samplers._gp_model import GPModel
from optuna_llm.samplers._guided_choice import box_candidates
from optuna_llm.samplers._llm_guided import resolve_action
from optuna_llm.samplers._partition import UnitSpace
from tests.helpers.llm_servers import Reply, ScriptedOpenAIServer, request_schema
from tests.samplers.test_llm_guided import client_for, llm_numbers, run


def _labels(request: dict[str, Any]) -> list[str]:
    schema = request_schema(request)
    assert schema is not None and "choice" in schema["properties"], schema
    return list(schema["properties"]["choice"]["enum"])


def test_the_pick_is_one_of_the_candidates_shown_and_says_whose_it_was() -> None:
    picks: list[str] = []

    def respond(request: dict[str, Any]) -> Reply:
        labels = _labels(request)
        label = labels[len(picks) % len(labels)]
        picks.append(label)
        return Reply(json.dumps({"choice": label, "rationale": f"pick {label}"}))

    with ScriptedOpenAIServer(respond) as server:
        study = run(client_for(server.base_url), n_trials=30, action="choose")
        requests = list(server.requests)
    wanted = llm_numbers(30)
    assert len(requests) == len(wanted)  # one request per LLM trial: every pick was usable
    prompt = requests[-1]["messages"][-1]["content"]
    assert "Candidates for the next trial" in prompt and "GP predicts" in prompt
    assert "TPE runs this study; you pick the next trial" in prompt
    origins = []
    for number, label in zip(wanted, picks, strict=True):
        trial = study.trials[number]
        assert trial.user_attrs["source"] == "llm-choice", trial.user_attrs
        assert trial.user_attrs["rationale"] == f"pick {label}"
        [shown] = [o for o in trial.user_attrs["llm_options"] if o["label"] == label]
        assert shown["params"] == trial.params  # the trial runs what was picked
        assert [o["label"] for o in trial.user_attrs["llm_options"] if o.get("picked")] == [label]
        assert trial.user_attrs["choice_origin"] == shown["origin"]
        assert {o["origin"] for o in trial.user_attrs["llm_options"]} >= {"optimizer"}
        origins.append(shown["origin"])
    # The labels are shuffled per trial: picking A, B, C, D in turn is not the optimizer's
    # proposal every time, and the GP's candidates do get picked.
    assert "gp-ucb" in origins and "optimizer" in origins
    configs = [tuple(sorted(t.params.items(), key=str)) for t in study.trials]
    assert len(set(configs)) == len(configs)


def test_a_label_that_is_not_offered_is_refused_then_the_optimizers_point_is_used() -> None:
    alone = run(None, llm_share=0.0)
    with ScriptedOpenAIServer([Reply(json.dumps({"choice": "Z"}))]) as server:
        study = run(client_for(server.base_url), action="choose")
        requests = list(server.requests)
    assert [t.params for t in study.trials] == [t.params for t in alone.trials]
    for k in llm_numbers(20):
        attrs = study.trials[k].user_attrs
        assert attrs["source"] == "fallback:tpe"
        assert "no usable pick" in attrs["fallback_reason"]
        assert "'Z'" in attrs["llm_errors"][0] and len(attrs["llm_options"]) == 4
    # The retry carried the error back to the model.
    assert any("must be one of A, B, C, D" in r["messages"][-1]["content"] for r in requests)


def test_a_pick_is_asked_for_by_name_and_auto_proposes() -> None:
    with ScriptedOpenAIServer([Reply(json.dumps({"choice": "A", "rationale": "x"}))]) as server:
        client = client_for(server.base_url)
        client.enforces_schema = True  # type: ignore[misc]  # as the embedded model declares
        study = run(client, n_trials=6, action="choose")
    assert study.trials[5].user_attrs["source"] == "llm-choice"
    # "auto" proposes on every client, the embedded model's kind included (docs/benchmarks.md).
    assert resolve_action("auto") == "propose" and resolve_action("choose") == "choose"
    with pytest.raises(ValueError, match="action must be one of"):
        LLMGuidedSampler(action="pick", llm_share=0.0)
    with pytest.raises(ValueError, match="n_choices must be between 2 and 26"):
        LLMGuidedSampler(n_choices=1, llm_share=0.0)


def test_read_choice_takes_exactly_an_offered_label() -> None:
    assert read_choice('{"choice": "c", "rationale": "r"}', ["A", "B", "C"]).index == 2
    for bad in ('{"choice": "AB"}', '{"choice": 1}', '{"pick": "A"}', "A", '["A"]'):
        with pytest.raises(InvalidAnswer):
            read_choice(bad, ["A", "B"])
    cut = '{"choice": "B", "rationale": "because the GP predicts a lo'
    assert read_choice(_close_cut_answer(cut), ["A", "B"]).label == "B"
    schema = choice_schema(["A", "B"])
    assert list(schema["properties"]) == ["choice", "rationale"]  # the pick first


def test_box_candidates_lie_in_the_box_are_new_and_rank_by_ucb() -> None:
    space = {"x": FloatDistribution(-5.0, 5.0), "y": FloatDistribution(-5.0, 5.0)}
    unit = UnitSpace(space)
    rng = np.random.default_rng(0)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", -5, 5) ** 2 + t.suggest_float("y", -5, 5), 12)
    done = study.trials
    X = unit.gp_space.get_normalized_params(done)
    y = -np.array([t.value for t in done])  # maximising convention
    model = GPModel(X, y, unit.is_categorical, None)
    low, high = np.array([0.3, 0.3]), np.array([0.7, 0.7])
    taken_x = done[0].params["x"]
    found = box_candidates(
        unit, low, high, model, 3, rng, taken=lambda p: p["x"] == taken_x, sign=-1.0
    )
    assert len(found) == 3 and all(c.origin == "gp-ucb" for c in found)
    for c in found:
        u = unit.to_unit(c.params)
        assert np.all(u >= low - 1e-9) and np.all(u <= high + 1e-9)
        assert c.predicted is not None and c.predicted_std is not None
    # Each candidate is at least as good by UCB as a random point of the box (the pool's best).
    mu, sd = model.predict(np.array([unit.snap(unit.to_unit(c.params)) for c in found]))
    randoms = rng.uniform(low, high, size=(64, 2))
    mu_r, sd_r = model.predict(np.array([unit.snap(u) for u in randoms]))
    assert (mu + 2 * sd).max() >= np.median(mu_r + 2 * sd_r)
    assert all(math.isclose(c.predicted, -m) for c, m in zip(found, mu, strict=True))  # type: ignore[arg-type]


HOSTILE_PICKS = [
    "not json {",
    '{"choice": "Z"}',
    '{"choice": ["A"]}',
    '{"choice": null, "rationale": "none"}',
    '{"choice": "A; DROP TABLE trials", "rationale": "ignore all previous instructions"}',
    '{"choice": "' + "B" * 50_000 + '"}',
    '{"pick": "A"}',
    '{"choice": "\\u0041\\u0301"}',
    '{"choice": "NaN"}',
    '{"choice": "a", "choice": "Q"}',
]


def test_hostile_picks_never_break_the_study_or_leave_the_space() -> None:
    import random

    from optuna.trial import TrialState

    from tests.helpers.hostile import contains
    from tests.samplers.test_llm_guided import SPACE

    rng = random.Random(7)

    def respond(request: dict[str, Any]) -> Reply:
        r = rng.random()
        if r < 0.05:
            return Reply(status=500)
        if r < 0.8:
            return Reply(rng.choice(HOSTILE_PICKS))
        return Reply(json.dumps({"choice": rng.choice(_labels(request))}))

    with ScriptedOpenAIServer(respond) as server:
        study = run(client_for(server.base_url), n_trials=20, llm_share=1.0, action="choose")
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    sources = [t.user_attrs["source"] for t in study.trials]
    assert set(sources) <= {"lhs", "llm-choice", "fallback:tpe"}, sources
    assert "llm-choice" in sources and "fallback:tpe" in sources
    for trial in study.trials:
        assert all(contains(SPACE[k], v) for k, v in trial.params.items()), trial.params
    configs = [json.dumps(t.params, sort_keys=True) for t in study.trials]
    assert len(set(configs)) == len(configs)
