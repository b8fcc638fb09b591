"""Code as a hyperparameter: the LLM writes the model and optimizer code, the sandbox scores it.

Each trial asks the LLM for a complete Python module for a :class:`CodeTask`, shows it the
earlier attempts of the study (their code, score or error), runs the answer with
:func:`~optuna_llm.objectives.sandbox.run_code`, and stores the code, the rationale and the
outcome as user attrs. A failed attempt (error, time or memory limit, refused operation)
makes the trial FAIL with the reason recorded, and the study goes on.

Example:
    >>> import optuna
    >>> objective = CodeObjective(TOY_REGRESSION)  # embedded LLM, or base_url=...
    >>> study = optuna.create_study()
    >>> study.optimize(objective, n_trials=5)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import optuna

from optuna_llm._attrs import (
    CODE,
    CODE_ERROR,
    LLM_COMPLETION_TOKENS,
    LLM_PROMPT_TOKENS,
    RATIONALE,
    SANDBOX,
    SECONDS,
    SOURCE,
)
from optuna_llm.objectives.sandbox import SandboxResult, run_code

CODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"rationale": {"type": "string"}, "code": {"type": "string"}},
    "required": ["rationale", "code"],
}


@dataclass(frozen=True)
class CodeTask:
    """A task whose solution is code: what to write, and how it is scored (lower is better).

    ``harness`` imports ``user_code`` and sets ``result``; ``files`` are data files placed
    beside it; ``preload`` modules are imported before the sandbox restrictions start.
    """

    description: str
    interface: str
    harness: str
    files: dict[str, str] = field(default_factory=dict)
    preload: tuple[str, ...] = ("numpy",)
    timeout: float = 60.0
    memory_mb: int = 4096


def _toy_regression_files(seed: int = 0, n_train: int = 64, n_test: int = 256) -> dict[str, str]:
    import numpy as np

    rng = np.random.default_rng(seed)

    def sample(n: int) -> list[list[float]]:
        x = rng.uniform(-3, 3, n)
        y = np.sin(x) + 0.1 * x**2 + rng.normal(0, 0.01, n)
        return np.stack([x, y], axis=1).round(6).tolist()

    return {"train.json": json.dumps(sample(n_train)), "test.json": json.dumps(sample(n_test))}


TOY_REGRESSION = CodeTask(
    description=(
        "1-D regression: 64 noisy training points (x, y) with x in [-3, 3] of a smooth "
        "unknown function. Write a model and its training loop in numpy; the score is the "
        "mean squared error on held-out test points (lower is better). Training must finish "
        "within 60 seconds on one CPU core."
    ),
    interface=(
        "Define `fit_predict(x_train, y_train, x_test) -> y_pred`, numpy 1-D arrays in and "
        "out. Only numpy is available; no files or network."
    ),
    harness=(
        "import json\nimport numpy as np\nimport user_code\n"
        "train = np.array(json.load(open('train.json')))\n"
        "test = np.array(json.load(open('test.json')))\n"
        "pred = np.asarray(user_code.fit_predict(train[:, 0], train[:, 1], test[:, 0]), float)\n"
        "assert pred.shape == (len(test),), f'fit_predict returned shape {pred.shape}'\n"
        "result = float(np.mean((pred - test[:, 1]) ** 2))\n"
    ),
    files=_toy_regression_files(),
)
"""The paper's toy regression setting (minimum test loss within a few evaluations)."""

_SYSTEM = (
    "You are an expert machine-learning engineer. You write complete, runnable Python "
    'modules. Answer with JSON: {"rationale": short reason, "code": the whole module}.'
)


def build_messages(task: CodeTask, history: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The prompt: the task, the interface, and every earlier attempt with its outcome."""
    lines = [f"Task: {task.description}", f"Interface: {task.interface}"]
    if history:
        lines.append("Earlier attempts (lower score is better):")
        for h in history:
            lines.append(f"--- attempt {h['number']}: {h['outcome']}\n{h['code']}")
        lines.append("Write a new module that scores lower than every attempt above.")
    else:
        lines.append("Write your first module.")
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def parse_answer(text: str) -> tuple[str, str]:
    """``(code, rationale)`` from a JSON answer, or from a fenced code block as a fallback."""
    try:
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("code"), str) and data["code"].strip():
            return data["code"], str(data.get("rationale", ""))
    except json.JSONDecodeError:
        pass
    match = re.search(r"```(?:python)?\n(.*?)```", text, re.DOTALL)
    if match:
        return match.group(1), ""
    raise ValueError("the answer holds neither JSON with a `code` field nor a code block")


class CodeObjective:
    """An Optuna objective whose "hyperparameter" is code written by an LLM.

    Args:
        task: What to write and how it is scored (e.g. :data:`TOY_REGRESSION`).
        client: Any object with ``chat(messages, json_schema=..., temperature=...)`` (the
            project's LLM client); built with ``make_client(model, base_url, api_key,
            cache)`` when omitted.
        max_tokens: Cap on the answer's length (a short module fits in 800).
        max_history: Earlier attempts shown to the LLM (the most recent ones).

    Example:
        >>> objective = CodeObjective(TOY_REGRESSION, base_url="http://127.0.0.1:8080/v1")
        >>> study = optuna.create_study()
        >>> study.optimize(objective, n_trials=5)  # doctest: +SKIP
    """

    def __init__(
        self,
        task: CodeTask,
        *,
        client: Any = None,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        cache: Any = None,
        temperature: float = 0.0,
        max_tokens: int | None = 800,
        max_history: int = 10,
    ) -> None:
        if client is None:
            from optuna_llm.llm import make_client

            client = make_client(model=model, base_url=base_url, api_key=api_key, cache=cache)
        self.task = task
        self.client = client
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_history = max_history

    def history(self, study: optuna.Study, before: int) -> list[dict[str, Any]]:
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
        rows = []
        for t in study.get_trials(deepcopy=False, states=states):
            if t.number >= before or CODE not in t.user_attrs:
                continue
            outcome = (
                f"score {t.value:.6g}" if t.value is not None
                else f"failed: {t.user_attrs.get(CODE_ERROR, 'unknown error')}"
            )  # fmt: skip
            rows.append({"number": t.number, "code": t.user_attrs[CODE], "outcome": outcome})
        return sorted(rows, key=lambda r: r["number"])[-self.max_history :]

    def __call__(self, trial: optuna.Trial) -> float:
        messages = build_messages(self.task, self.history(trial.study, trial.number))
        answer = self.client.chat(
            messages,
            json_schema=CODE_SCHEMA,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        )
        trial.set_user_attr(SOURCE, "llm")
        trial.set_user_attr(LLM_PROMPT_TOKENS, getattr(answer, "prompt_tokens", None))
        trial.set_user_attr(LLM_COMPLETION_TOKENS, getattr(answer, "completion_tokens", None))
        try:
            code, rationale = parse_answer(answer.text)
        except ValueError as exc:
            trial.set_user_attr(CODE, answer.text)
            return self._fail(trial, f"unparseable answer: {exc}")
        trial.set_user_attr(CODE, code)
        trial.set_user_attr(RATIONALE, rationale)
        result = run_code(
            code,
            self.task.harness,
            timeout=self.task.timeout,
            memory_mb=self.task.memory_mb,
            preload=self.task.preload,
            files=self.task.files,
        )
        trial.set_user_attr(SANDBOX, result.reason)
        trial.set_user_attr(SECONDS, round(result.seconds, 3))
        if not result.ok or result.score is None or not math.isfinite(result.score):
            return self._fail(trial, _describe_failure(result))
        return float(result.score)

    def _fail(self, trial: optuna.Trial, error: str) -> float:
        trial.set_user_attr(CODE_ERROR, error[-2000:])
        # NaN makes Optuna mark the trial FAIL and carry on with the study.
        return math.nan


def _describe_failure(result: SandboxResult) -> str:
    if result.ok:
        return f"the score is not a finite number: {result.score}"
    return result.feedback()
