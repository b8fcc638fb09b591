"""Prompts for hyperparameter proposals, rebuilt from the study's trials at every call.

Two history formats, as in Zhang et al. (2023):

- ``"chat"``: the seed's multi-turn dialogue, one assistant turn (the configuration) and one
  user turn (its result) per finished trial. It grows linearly with the trials.
- ``"compressed"``: one user message with the best ``k`` and the most recent ``m`` finished
  trials, a one-line summary of the rest, and the running trials; ``k`` and ``m`` shrink until
  the message fits ``max_prompt_tokens``, so the prompt stays bounded however long the study.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_llm._attrs import PROPOSAL
from optuna_llm.llm.base import Message, estimate_tokens

SYSTEM_PROMPT = (
    "You are an expert in machine learning and hyperparameter optimization. You propose "
    "hyperparameter configurations to evaluate, learn from their results, and answer only "
    "with a JSON object."
)


@dataclass(frozen=True)
class PromptSettings:
    problem: str = ""
    history: str = "compressed"
    chain_of_thought: bool = False
    n_best: int = 10
    n_recent: int = 10
    n_pending: int = 10
    max_prompt_tokens: int = 3000


def describe_distribution(distribution: BaseDistribution) -> str:
    if isinstance(distribution, CategoricalDistribution):
        return "one of " + json.dumps([_jsonable(c) for c in distribution.choices])
    if isinstance(distribution, (IntDistribution, FloatDistribution)):
        kind = "integer" if isinstance(distribution, IntDistribution) else "float"
        text = f"{kind} in [{_num(distribution.low)}, {_num(distribution.high)}]"
        if distribution.log:
            text += ", log scale"
        if distribution.step is not None and not (
            isinstance(distribution, IntDistribution) and distribution.step == 1
        ):
            text += f", multiple of {_num(distribution.step)} from {_num(distribution.low)}"
        return text
    raise TypeError(f"Unsupported distribution {distribution!r}")


def describe_search_space(search_space: Mapping[str, BaseDistribution]) -> str:
    return "\n".join(f"- {name}: {describe_distribution(d)}" for name, d in search_space.items())


def describe_goal(directions: Sequence[StudyDirection], metric_names: Sequence[str] | None) -> str:
    names = (
        list(metric_names)
        if metric_names
        else (
            ["objective"]
            if len(directions) == 1
            else [f"objective {i}" for i in range(len(directions))]
        )
    )
    parts = [
        f"{'minimize' if d == StudyDirection.MINIMIZE else 'maximize'} {name}"
        for d, name in zip(directions, names, strict=False)
    ]
    if len(parts) == 1:
        return f"Goal: {parts[0]}."
    return (
        "Goal (multi-objective): "
        + "; ".join(parts)
        + ". Propose configurations that improve the Pareto front."
    )


def format_trial(trial: FrozenTrial, params: Mapping[str, Any] | None = None) -> str:
    shown = {k: _jsonable(v) for k, v in (params if params is not None else trial.params).items()}
    config = json.dumps(shown, ensure_ascii=False)
    return f"#{trial.number} {config} -> {format_outcome(trial)}"


def format_outcome(trial: FrozenTrial) -> str:
    if trial.state == TrialState.COMPLETE and trial.values is not None:
        return ", ".join(_num(v) for v in trial.values)
    if trial.state == TrialState.PRUNED:
        if trial.intermediate_values:
            step = max(trial.intermediate_values)
            return f"PRUNED (last reported {_num(trial.intermediate_values[step])} at step {step})"
        return "PRUNED"
    if trial.state == TrialState.FAIL:
        return "FAILED (the configuration crashed or returned no value)"
    return trial.state.name


def select_history(
    finished: Sequence[FrozenTrial],
    directions: Sequence[StudyDirection],
    n_best: int,
    n_recent: int,
) -> list[FrozenTrial]:
    """The best ``n_best`` complete trials and the ``n_recent`` latest finished ones, in
    trial-number order."""
    complete = [t for t in finished if t.state == TrialState.COMPLETE and t.values is not None]
    best = rank_trials(complete, directions)[:n_best]
    recent = sorted(finished, key=lambda t: t.number)[-n_recent:] if n_recent > 0 else []
    chosen = {t.number: t for t in [*best, *recent]}
    return [chosen[n] for n in sorted(chosen)]


def rank_trials(
    trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]
) -> list[FrozenTrial]:
    """Best first: by value for one objective, by Pareto rank then crowding-free order for
    several (non-dominated sorting as NSGA-II does)."""
    if len(directions) == 1:
        sign = 1.0 if directions[0] == StudyDirection.MINIMIZE else -1.0
        return sorted(trials, key=lambda t: (_nan_last(sign * t.values[0]), t.number))
    remaining = list(trials)
    ranked: list[FrozenTrial] = []
    signs = [1.0 if d == StudyDirection.MINIMIZE else -1.0 for d in directions]
    while remaining:
        front = [t for t in remaining if not any(_dominates(o, t, signs) for o in remaining)]
        ranked.extend(sorted(front, key=lambda t: t.number))
        remaining = [t for t in remaining if t not in front]
    return ranked


def _dominates(a: FrozenTrial, b: FrozenTrial, signs: Sequence[float]) -> bool:
    av = [s * v for s, v in zip(signs, a.values, strict=False)]
    bv = [s * v for s, v in zip(signs, b.values, strict=False)]
    pairs = list(zip(av, bv, strict=True))
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


def _nan_last(x: float) -> float:
    return math.inf if math.isnan(x) else x


class PromptBuilder:
    """Builds the messages for one proposal from the trials in storage.

    Example:
        >>> builder = PromptBuilder(PromptSettings(problem="ResNet-9 on CIFAR-10"))
        >>> messages = builder.build(search_space, trials, directions, None)  # doctest: +SKIP
    """

    def __init__(self, settings: PromptSettings) -> None:
        if settings.history not in ("compressed", "chat"):
            raise ValueError(f"history must be 'compressed' or 'chat', got {settings.history!r}.")
        self.settings = settings

    def build(
        self,
        search_space: Mapping[str, BaseDistribution],
        trials: Sequence[FrozenTrial],
        directions: Sequence[StudyDirection],
        metric_names: Sequence[str] | None,
        *,
        n_configs: int = 1,
        fixed_params: Mapping[str, Any] | None = None,
        current_trial_number: int | None = None,
    ) -> list[Message]:
        finished = [t for t in trials if t.state.is_finished()]
        pending = [
            t
            for t in trials
            if t.state in (TrialState.RUNNING, TrialState.WAITING)
            and t.number != current_trial_number
            and (t.params or t.system_attrs.get(PROPOSAL))
        ]
        header = self._header(search_space, directions, metric_names, finished, pending)
        ask = self._ask(search_space, n_configs, fixed_params)
        if self.settings.history == "chat":
            return self._chat(header, ask, finished, pending)
        return self._compressed(header, ask, finished, pending, directions)

    # -- pieces -----------------------------------------------------------------------------
    def _header(
        self,
        search_space: Mapping[str, BaseDistribution],
        directions: Sequence[StudyDirection],
        metric_names: Sequence[str] | None,
        finished: Sequence[FrozenTrial],
        pending: Sequence[FrozenTrial],
    ) -> str:
        counts = {
            s: sum(t.state == s for t in finished)
            for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        }
        problem = self.settings.problem.strip() or "(no description given)"
        return (
            f"Problem: {problem}\n"
            f"{describe_goal(directions, metric_names)}\n\n"
            f"Search space:\n{describe_search_space(search_space)}\n\n"
            f"Budget used: {len(finished)} trials finished ({counts[TrialState.COMPLETE]} "
            f"complete, {counts[TrialState.PRUNED]} pruned, {counts[TrialState.FAIL]} failed), "
            f"{len(pending)} running."
        )

    def _ask(
        self,
        search_space: Mapping[str, BaseDistribution],
        n_configs: int,
        fixed_params: Mapping[str, Any] | None,
    ) -> str:
        names = ", ".join(f'"{n}": <{_kind(d)}>' for n, d in search_space.items())
        lines = []
        if fixed_params:
            fixed = json.dumps({k: _jsonable(v) for k, v in fixed_params.items()})
            lines.append(
                f"The current trial already uses {fixed}; choose only the remaining "
                "parameter(s) below to go with it."
            )
        if n_configs == 1:
            lines.append(
                "Propose the next configuration to evaluate: one likely to improve on "
                "the best so far and different from every configuration above."
            )
            shape = f'{{"rationale": "<why>", "config": {{{names}}}}}'
        else:
            lines.append(
                f"Propose {n_configs} different configurations to evaluate first, "
                "spread over the promising region, none repeating another."
            )
            shape = f'{{"rationale": "<why>", "configs": [{{{names}}}, ...]}}'
        if self.settings.chain_of_thought:
            lines.append(
                'First reason step by step in "rationale" (what the results so far '
                "suggest and why), then give the configuration."
            )
        else:
            lines.append('"rationale" is one short sentence saying why.')
        lines.append(f"Every value must respect its range and type. Reply with JSON only: {shape}")
        return "\n".join(lines)

    def _compressed(
        self,
        header: str,
        ask: str,
        finished: Sequence[FrozenTrial],
        pending: Sequence[FrozenTrial],
        directions: Sequence[StudyDirection],
    ) -> list[Message]:
        s = self.settings
        n_best, n_recent = s.n_best, s.n_recent
        while True:
            content = self._compressed_body(
                header, ask, finished, pending, directions, n_best, n_recent
            )
            if estimate_tokens(content) <= s.max_prompt_tokens or (n_best <= 1 and n_recent <= 1):
                break
            n_best, n_recent = max(1, n_best // 2), max(1, n_recent // 2)
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]

    def _compressed_body(
        self,
        header: str,
        ask: str,
        finished: Sequence[FrozenTrial],
        pending: Sequence[FrozenTrial],
        directions: Sequence[StudyDirection],
        n_best: int,
        n_recent: int,
    ) -> str:
        parts = [header]
        if finished:
            shown = select_history(finished, directions, n_best, n_recent)
            title = (
                f"Results so far (best {n_best} and latest {n_recent} of {len(finished)} "
                "finished trials, as #trial config -> value):"
                if len(shown) < len(finished)
                else "Results so far (#trial config -> value):"
            )
            parts.append(title + "\n" + "\n".join(format_trial(t) for t in shown))
        else:
            parts.append("No results yet: this is the first configuration.")
        if pending:
            shown_pending = sorted(pending, key=lambda t: t.number)[-self.settings.n_pending :]
            parts.append(
                "Being evaluated right now by other workers (do not propose these again):\n"
                + "\n".join(f"#{t.number} {json.dumps(_pending_params(t))}" for t in shown_pending)
            )
        parts.append(ask)
        return "\n\n".join(parts)

    def _chat(
        self,
        header: str,
        ask: str,
        finished: Sequence[FrozenTrial],
        pending: Sequence[FrozenTrial],
    ) -> list[Message]:
        messages: list[Message] = [
            {"role": "system", "content": SYSTEM_PROMPT},
        ]
        turns = sorted(finished, key=lambda t: t.number)
        messages.append({"role": "user", "content": header + "\n\n" + ask})
        for i, trial in enumerate(turns):
            config = {k: _jsonable(v) for k, v in trial.params.items()}
            messages.append({"role": "assistant", "content": json.dumps({"config": config})})
            follow = f"Result of trial #{trial.number}: {format_outcome(trial)}."
            if i == len(turns) - 1:
                if pending:
                    follow += (
                        "\nBeing evaluated right now by other workers (do not propose "
                        "these again): "
                        + "; ".join(json.dumps(_pending_params(t)) for t in pending)
                    )
                follow += "\n" + ask
            else:
                follow += " Propose the next configuration."
            messages.append({"role": "user", "content": follow})
        return messages


def _pending_params(trial: FrozenTrial) -> dict[str, Any]:
    if trial.params:
        return {k: _jsonable(v) for k, v in trial.params.items()}
    claimed = trial.system_attrs.get(PROPOSAL)
    return dict(claimed) if isinstance(claimed, dict) else {}


def _kind(distribution: BaseDistribution) -> str:
    if isinstance(distribution, CategoricalDistribution):
        return "choice"
    return "integer" if isinstance(distribution, IntDistribution) else "number"


def _num(x: float) -> str:
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    return f"{x:.6g}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else str(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)
