"""Prompts rebuilt from trials: content, bounded size, pending trials, multi-objective."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from optuna_llm._attrs import PROPOSAL
from optuna_llm.llm.base import estimate_tokens
from optuna_llm.llm.prompts import PromptBuilder, PromptSettings

SPACE = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "layers": IntDistribution(1, 9, step=2),
    "opt": CategoricalDistribution(["adam", "sgd"]),
}


def study_with(n: int, directions: list[str] | None = None) -> optuna.Study:
    study = optuna.create_study(directions=directions or ["minimize"])
    trials = []
    for i in range(n):
        params = {
            "lr": 10 ** (-5 + 4 * (i % 97) / 97),
            "layers": 1 + 2 * (i % 5),
            "opt": ["adam", "sgd"][i % 2],
        }
        values = [float(i % 13)] * len(study.directions)
        trials.append(
            create_trial(
                params=params, distributions=SPACE, values=values, user_attrs={"source": "llm"}
            )
        )
    study.add_trials(trials)
    return study


def build(study: optuna.Study, history: str, **kw: object) -> list[dict[str, str]]:
    builder = PromptBuilder(PromptSettings(problem="Tune a CNN", history=history))
    return builder.build(SPACE, study.trials, study.directions, None, **kw)  # type: ignore[arg-type]


def test_prompt_states_problem_space_goal_and_history() -> None:
    study = study_with(3)
    study.add_trial(
        create_trial(
            params={"lr": 0.01, "layers": 3, "opt": "sgd"},
            distributions=SPACE,
            state=TrialState.FAIL,
        )
    )
    study.add_trial(
        create_trial(
            params={"lr": 0.02, "layers": 5, "opt": "adam"},
            distributions=SPACE,
            state=TrialState.PRUNED,
            intermediate_values={0: 0.9, 3: 0.7},
        )
    )
    text = build(study, "compressed")[-1]["content"]
    assert "Problem: Tune a CNN" in text
    assert "Goal: minimize objective." in text
    assert "- lr: float in [1e-05, 0.1], log scale" in text
    assert "- layers: integer in [1, 9], multiple of 2 from 1" in text
    assert '- opt: one of ["adam", "sgd"]' in text
    assert "5 trials finished (3 complete, 1 pruned, 1 failed)" in text
    assert "FAILED" in text and "PRUNED (last reported 0.7 at step 3)" in text


def test_compressed_stays_bounded_while_chat_grows() -> None:
    sizes = {}
    for n in (10, 100, 1000):
        study = study_with(n)
        sizes[n] = (
            estimate_tokens("".join(m["content"] for m in build(study, "compressed"))),
            estimate_tokens("".join(m["content"] for m in build(study, "chat"))),
        )
    assert sizes[1000][0] <= 3000 and sizes[1000][0] < 1.5 * sizes[100][0]
    assert sizes[1000][1] > 8 * sizes[100][1] > 8 * 8 * sizes[10][1] / 10
    chat = build(study_with(4), "chat")
    assert [m["role"] for m in chat] == ["system", "user"] + ["assistant", "user"] * 4


def test_compressed_keeps_the_best_trials() -> None:
    study = study_with(300)
    text = build(study, "compressed")[-1]["content"]
    best = sorted(study.trials, key=lambda t: t.value)[:5]
    assert all(f"#{t.number} " in text for t in best)
    assert "Budget used: 300 trials finished" in text


def test_running_trials_are_listed_as_pending() -> None:
    study = study_with(2)
    running = study.ask()
    study._storage.set_trial_system_attr(
        running._trial_id, PROPOSAL, {"lr": 0.001, "layers": 3, "opt": "adam"}
    )
    me = study.ask()
    text = build(study, "compressed", current_trial_number=me.number)[-1]["content"]
    assert "Being evaluated right now by other workers" in text
    assert f'#{running.number} {{"lr": 0.001, "layers": 3, "opt": "adam"}}' in text
    assert f"#{me.number} " not in text


def test_multi_objective_prompt_names_each_direction_and_value() -> None:
    study = study_with(3, directions=["minimize", "maximize"])
    builder = PromptBuilder(PromptSettings(problem="p"))
    text = builder.build(SPACE, study.trials, study.directions, ["loss", "accuracy"])[-1]["content"]
    assert "minimize loss; maximize accuracy" in text and "Pareto front" in text
    assert "-> 1, 1" in text  # both values of trial 1


def test_chain_of_thought_and_batch_requests() -> None:
    builder = PromptBuilder(PromptSettings(problem="p", chain_of_thought=True))
    text = builder.build(SPACE, [], [optuna.study.StudyDirection.MINIMIZE], None, n_configs=5)[-1][
        "content"
    ]
    assert "reason step by step" in text
    assert "Propose 5 different configurations" in text and '"configs"' in text


# -- issue 16 item 3 and 8: no placeholders, budget, conditions, constraints, who chose ---------


def test_the_ask_has_a_concrete_example_and_no_placeholders() -> None:
    for history in ("compressed", "chat"):
        for n_configs in (1, 3):
            text = build(study_with(2), history, n_configs=n_configs)[-1]["content"]
            assert "<why>" not in text and "<number>" not in text and "<integer>" not in text
            example = json.loads(text[text.rindex("\n") + 1 :])  # the last line: the example
            configs = [example["config"]] if n_configs == 1 else example["configs"]
            for config in configs:  # real values from the space, not placeholders
                assert 1e-5 <= config["lr"] <= 0.1 and config["layers"] in (1, 3, 5, 7, 9)
                assert config["opt"] in ("adam", "sgd")


def test_example_keys_shows_the_keys_and_no_value_to_copy() -> None:
    study = study_with(2)
    for n_configs in (1, 3):
        builder = PromptBuilder(PromptSettings(problem="p", example="keys"))
        text = builder.build(SPACE, study.trials, study.directions, None, n_configs=n_configs)
        ask = text[-1]["content"].split("Results so far")[-1].split("\n\n", 1)[-1]
        assert "the values below only show the format" not in ask
        assert all(f'"{name}"' in ask for name in SPACE)
        assert ('"configs"' in ask) == (n_configs > 1)
        values = build(study, "compressed", n_configs=n_configs)[-1]["content"]
        example = json.loads(values[values.rindex("\n") + 1 :])
        shown = example["config"] if n_configs == 1 else example["configs"][0]
        assert json.dumps(shown["lr"]) not in ask  # the concrete example's value is gone
    with pytest.raises(ValueError, match="example must be one of"):
        PromptBuilder(PromptSettings(example="none"))


def test_rationale_order_is_a_setting() -> None:
    def ask(order: str) -> str:
        builder = PromptBuilder(PromptSettings(problem="p", rationale=order))
        messages = builder.build(SPACE, [], [optuna.study.StudyDirection.MINIMIZE], None)
        text = messages[-1]["content"]
        return text[text.rindex("\n") + 1 :]  # the example answer

    assert ask("first").index('"rationale"') < ask("first").index('"config"')
    assert ask("last").index('"config"') < ask("last").index('"rationale"')
    assert '"rationale"' not in ask("none")


def test_the_budget_left_is_stated_when_known() -> None:
    text = build(study_with(4), "compressed", n_trials=10)[-1]["content"]
    assert "Trials left after this one: 5 of 10." in text


@pytest.mark.parametrize("history", ["compressed", "chat"])
def test_a_new_trial_changes_the_prompt_only_after_the_history_shown_before(
    history: str,
) -> None:
    # llama.cpp reuses the KV cache of the unchanged prefix: the budget, which changes every
    # trial, must not sit before the history (it did, and ~85 % of the prompt was evaluated
    # again at each proposal)
    study = study_with(12)
    before = "\n".join(m["content"] for m in build(study, history, n_trials=30))
    study.add_trial(
        optuna.trial.create_trial(
            params={"lr": 0.01, "layers": 3, "opt": "sgd"},
            distributions=SPACE,
            value=0.25,
            user_attrs={"source": "llm"},
        )
    )
    after = "\n".join(m["content"] for m in build(study, history, n_trials=30))
    last_shown = before.rindex("#11")
    shared = next(i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b)
    assert shared > last_shown


def test_conditional_parameters_are_shown_with_their_condition() -> None:
    space = {
        "opt": CategoricalDistribution(["adam", "sgd"]),
        "momentum": FloatDistribution(0.0, 0.99),
        "lr": FloatDistribution(1e-5, 1e-1, log=True),
    }
    study = optuna.create_study()
    for i, opt in enumerate(["sgd", "adam", "sgd", "adam"]):
        params: dict[str, object] = {"opt": opt, "lr": 10 ** -(i + 1)}
        if opt == "sgd":
            params["momentum"] = 0.5
        dists = {k: space[k] for k in params}
        study.add_trial(create_trial(params=params, distributions=dists, value=float(i)))
    builder = PromptBuilder(PromptSettings(problem="p"))
    text = builder.build(space, study.trials, study.directions, None)[-1]["content"]
    assert '- momentum: float in [0, 0.99] (conditional: used only when opt is "sgd")' in text
    assert "- lr: float in [1e-05, 0.1], log scale\n" in text


def test_constraints_mark_feasibility_and_infeasible_is_never_best() -> None:
    study = optuna.create_study()
    for i, (value, constraint) in enumerate([(0.1, 2.0), (5.0, -1.0), (3.0, 0.0)]):
        trial = create_trial(
            params={"lr": 10 ** -(i + 2), "layers": 3, "opt": "adam"},
            distributions=SPACE,
            value=value,
            system_attrs={"constraints": [constraint]},
        )
        study.add_trial(trial)
    builder = PromptBuilder(PromptSettings(problem="p", n_best=1, n_recent=0))
    text = builder.build(SPACE, study.trials, study.directions, None)[-1]["content"]
    assert "#2 " in text and "3 (feasible)" in text  # the best feasible, not #0 (0.1)
    assert "#0 " not in text
    full = build(study, "compressed")[-1]["content"]
    assert "0.1 (INFEASIBLE: constraint violation 2)" in full


def test_chat_history_says_who_chose_each_trial() -> None:
    study = optuna.create_study()
    for i, source in enumerate(["llm", "fallback:random", None]):
        attrs = {"source": source} if source else {}
        study.add_trial(
            create_trial(
                params={"lr": 10 ** -(i + 2), "layers": 3, "opt": "adam"},
                distributions=SPACE,
                value=float(i),
                user_attrs=attrs,
            )
        )
    messages = build(study, "chat")
    assistant = [m for m in messages if m["role"] == "assistant"]
    assert len(assistant) == 1 and '"lr": 0.01' in assistant[0]["content"]
    last = messages[-1]["content"]
    assert "Trial #1 was chosen by the fallback sampler (random), not by you" in last
    assert "Trial #2 was chosen by the user, not by you" in last
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
