"""Code as a hyperparameter: the LLM writes the regression model, a sandbox scores it.

The paper's toy regression setting: the lowest test loss within 5 evaluations. Each trial's
code, rationale and outcome are user attrs (see them in optuna-dashboard); failed code (error,
time/memory limit, network or file access) makes a FAIL trial whose error is shown to the LLM
in the next prompt.

    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 python examples/code_as_hyperparameter.py
    OPENAI_API_KEY=sk-... python examples/code_as_hyperparameter.py   # gpt-4o-mini

The embedded Gemma 3 270M also runs the loop, but it cannot write working code: expect FAILs.
"""

from __future__ import annotations

import optuna

from optuna_llm.objectives.codegen import TOY_REGRESSION, CodeObjective


def main() -> None:
    study = optuna.create_study(study_name="code-as-hyperparameter")
    study.optimize(CodeObjective(TOY_REGRESSION), n_trials=5)
    for t in study.trials:
        outcome = t.value if t.value is not None else t.user_attrs.get("error", "")[:80]
        print(f"trial {t.number} {t.state.name}: {outcome}")
    if any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        print(f"min test loss: {study.best_value:.4g}\n{study.best_trial.user_attrs['code']}")


if __name__ == "__main__":
    main()
