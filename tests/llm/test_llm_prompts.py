"""Prompts rebuilt from trials: content, bounded size, pending trials, multi-objective."""

from __future__ import annotations

import optuna
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
        trials.append(create_trial(params=params, distributions=SPACE, values=values))
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
    assert "of 300 finished trials" in text


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
