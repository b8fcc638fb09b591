"""Prompts for hyperparameter proposals, rebuilt from the study's trials at every call.

Two history formats, as in Zhang et al. (2023):

- ``"chat"``: the seed's multi-turn dialogue, one assistant turn (the configuration) and one
  user turn (its result) per finished trial. It grows linearly with the trials.
- ``"compressed"``: one user message with the best ``k`` and the most recent ``m`` finished
  trials (all of them while there are no more than ``k + m``), the running trials, and a
  budget line that counts every finished trial (complete, pruned, failed); ``k`` and ``m``
  shrink until the message fits ``max_prompt_tokens``, so the prompt stays bounded however
  long the study.

In both, what changes from one trial to the next (the budget line, the newest results) comes
after what does not (problem, search space, earlier results), so that a client with a prefix
cache (llama.cpp) evaluates only the end of the prompt again.
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

from optuna_llm._attrs import PROPOSAL, SOURCE
from optuna_llm._compat import constraint_values
from optuna_llm.llm.base import Message, estimate_tokens
from optuna_llm.llm.schema import EXAMPLE_RATIONALE, RATIONALE_ORDERS

SYSTEM_PROMPT = (
    "You are an expert in machine learning and hyperparameter optimization. You propose "
    "hyperparameter configurations to evaluate, learn from their results, and answer only "
    "with a JSON object."
)


DEFAULT_RATIONALE = "first"
"""Where the rationale goes in the answer by default (see ``PromptSettings.rationale``)."""

EXAMPLES = ("auto", "values", "keys")
"""How the ask shows the answer's format (see ``PromptSettings.example``)."""

DEFAULT_EXAMPLE = "auto"


@dataclass(frozen=True)
class PromptSettings:
    """What the prompt holds.

    ``rationale``: ``"first"`` (a reason, then the configuration), ``"last"`` (the
    configuration, then a reason) or ``"none"``; ``chain_of_thought`` asks for step-by-step
    reasoning and implies ``"first"``.

    ``example``: ``"values"`` shows the format as a concrete answer with values from the
    space (for a server that ignores the schema: it needs the shape spelled out);
    ``"keys"`` names the keys and shows no value (for a client that enforces the schema by
    constrained decoding, where a small model copies any value shown: Gemma 3 270M wrote the
    concrete example back on nearly every first request, docs/llm.md). ``"auto"``:
    ``"keys"`` for a client that declares ``enforces_schema`` (the embedded model), else
    ``"values"``; the :class:`~optuna_llm.llm.proposer.Proposer` decides, as it knows the
    client (a builder on its own treats ``"auto"`` as ``"values"``).
    """

    problem: str = ""
    history: str = "compressed"
    chain_of_thought: bool = False
    n_best: int = 10
    n_recent: int = 10
    n_pending: int = 10
    max_prompt_tokens: int = 3000
    rationale: str = DEFAULT_RATIONALE
    example: str = DEFAULT_EXAMPLE

    @property
    def rationale_order(self) -> str:
        return "first" if self.chain_of_thought else self.rationale


def describe_distribution(distribution: BaseDistribution) -> str:
    if isinstance(distribution, CategoricalDistribution):
        return "one of " + json.dumps([jsonable(c) for c in distribution.choices])
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


def describe_search_space(
    search_space: Mapping[str, BaseDistribution],
    conditions: Mapping[str, str] | None = None,
) -> str:
    """One line a parameter; a conditional one says when it is used."""
    lines = []
    for name, d in search_space.items():
        line = f"- {name}: {describe_distribution(d)}"
        if conditions and name in conditions:
            line += f" (conditional: {conditions[name]})"
        lines.append(line)
    return "\n".join(lines)


def conditional_parameters(
    search_space: Mapping[str, BaseDistribution], trials: Sequence[FrozenTrial]
) -> dict[str, str]:
    """Parameters of ``search_space`` that some finished trials lack, each with the condition
    the trials show: the categorical values of another parameter under which it appears.

    Example:
        >>> import optuna
        >>> from optuna.distributions import CategoricalDistribution, FloatDistribution
        >>> space = {"opt": CategoricalDistribution(["sgd", "adam"]),
        ...          "momentum": FloatDistribution(0.0, 0.99)}
        >>> trials = [optuna.trial.create_trial(params=p, distributions={
        ...     k: space[k] for k in p}, value=1.0) for p in
        ...     [{"opt": "sgd", "momentum": 0.9}, {"opt": "adam"}]]
        >>> conditional_parameters(space, trials)
        {'momentum': 'used only when opt is "sgd"'}
    """
    finished = [t for t in trials if t.state.is_finished() and t.params]
    out: dict[str, str] = {}
    for name in search_space:
        having = [t for t in finished if name in t.params]
        if not having or len(having) == len(finished):
            continue
        condition = "absent from some trials"
        for other, dist in search_space.items():
            if other == name or not isinstance(dist, CategoricalDistribution):
                continue
            with_other = [t for t in finished if other in t.params]
            values = {json.dumps(jsonable(t.params[other])) for t in having if other in t.params}
            if not values or any(other not in t.params for t in having):
                continue
            if all(
                (json.dumps(jsonable(t.params[other])) in values) == (name in t.params)
                for t in with_other
            ):
                shown = " or ".join(sorted(values))
                condition = f"used only when {other} is {shown}"
                break
        out[name] = condition
    return out


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


def describe_budget(
    finished: Sequence[FrozenTrial],
    pending: Sequence[FrozenTrial],
    n_trials: int | None = None,
) -> str:
    """The trials used so far and, given the study's budget ``n_trials``, the trials left.

    Example:
        >>> import optuna
        >>> done = [optuna.trial.create_trial(value=1.0)] * 3
        >>> describe_budget(done, [])
        'Budget used: 3 trials finished (3 complete, 0 pruned, 0 failed), 0 running.'
        >>> describe_budget(done, [], n_trials=10).split(". ")[-1]
        'Trials left after this one: 6 of 10.'
    """
    counts = {
        s: sum(t.state == s for t in finished)
        for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    }
    budget = (
        f"Budget used: {len(finished)} trials finished ({counts[TrialState.COMPLETE]} "
        f"complete, {counts[TrialState.PRUNED]} pruned, {counts[TrialState.FAIL]} failed), "
        f"{len(pending)} running."
    )
    if n_trials is not None:
        left = max(0, n_trials - len(finished) - len(pending))
        budget += f" Trials left after this one: {max(0, left - 1)} of {n_trials}."
    return budget


def format_trial(trial: FrozenTrial, params: Mapping[str, Any] | None = None) -> str:
    shown = {k: jsonable(v) for k, v in (params if params is not None else trial.params).items()}
    config = json.dumps(shown, ensure_ascii=False)
    return f"#{trial.number} {config} -> {format_outcome(trial)}"


def constraint_violation(trial: FrozenTrial) -> float | None:
    """Total violation of the trial's constraints (Optuna's ``constraints_func`` /
    ``trial.set_constraint``; a constraint holds when its value is <= 0): 0.0 when feasible,
    None when the trial has no constraints."""
    values = constraint_values(trial)
    if not values:
        return None
    try:
        return float(sum(max(0.0, float(c)) for c in values))
    except (TypeError, ValueError):
        return None


def is_feasible(trial: FrozenTrial) -> bool:
    violation = constraint_violation(trial)
    return violation is None or violation == 0.0


def format_outcome(trial: FrozenTrial) -> str:
    if trial.state == TrialState.COMPLETE and trial.values is not None:
        text = ", ".join(_num(v) for v in trial.values)
        violation = constraint_violation(trial)
        if violation is not None:
            text += (
                " (feasible)"
                if violation == 0.0
                else f" (INFEASIBLE: constraint violation {_num(violation)})"
            )
        return text
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
    """The best ``n_best`` complete feasible trials and the ``n_recent`` latest finished ones,
    in trial-number order (an infeasible trial is shown only as a recent one); every finished
    trial while there are no more than ``n_best + n_recent``, so that the history only grows
    at its end and llama.cpp reuses the KV cache of all of it at the next proposal."""
    if len(finished) <= n_best + n_recent:
        return sorted(finished, key=lambda t: t.number)
    complete = [
        t
        for t in finished
        if t.state == TrialState.COMPLETE and t.values is not None and is_feasible(t)
    ]
    best = rank_trials(complete, directions)[:n_best]
    recent = sorted(finished, key=lambda t: t.number)[-n_recent:] if n_recent > 0 else []
    chosen = {t.number: t for t in [*best, *recent]}
    return [chosen[n] for n in sorted(chosen)]


def rank_trials(
    trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]
) -> list[FrozenTrial]:
    """Best first: by value for one objective, by Pareto rank then crowding-free order for
    several (non-dominated sorting as NSGA-II does). Infeasible trials (constraints violated)
    come after every feasible one, least violation first."""
    feasible = [t for t in trials if is_feasible(t)]
    infeasible = sorted(
        (t for t in trials if not is_feasible(t)),
        key=lambda t: (constraint_violation(t) or 0.0, t.number),
    )
    return _rank_feasible(feasible, directions) + infeasible


def _rank_feasible(
    trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]
) -> list[FrozenTrial]:
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
        if settings.rationale not in RATIONALE_ORDERS:
            raise ValueError(
                f"rationale must be one of {RATIONALE_ORDERS}, got {settings.rationale!r}."
            )
        if settings.example not in EXAMPLES:
            raise ValueError(
                f"example must be one of {EXAMPLES}, got {settings.example!r}: 'values' shows "
                "a concrete answer, 'keys' only the keys (for a client that enforces the schema)."
            )
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
        state: str | None = None,
        n_trials: int | None = None,
        restricted: bool = False,
        candidates: bool = False,
        ask: str | None = None,
    ) -> list[Message]:
        """The messages of one request. ``state`` (an optimizer's state, a few lines) goes
        just before the ask; ``n_trials`` (the study's whole budget) makes the prompt state
        the trials left; ``restricted`` says the space given is a region to stay inside;
        ``candidates`` asks the ``n_configs`` as candidates for one trial, best first (else
        as that many trials to run); ``ask`` replaces the request for configurations (e.g.
        :func:`choice_ask`)."""
        finished = [t for t in trials if t.state.is_finished()]
        pending = [
            t
            for t in trials
            if t.state in (TrialState.RUNNING, TrialState.WAITING)
            and t.number != current_trial_number
            and (t.params or t.system_attrs.get(PROPOSAL))
        ]
        conditions = conditional_parameters(search_space, finished)
        header = self._header(search_space, directions, metric_names, restricted)
        budget = describe_budget(finished, pending, n_trials)
        if conditions:
            header = header.replace(
                describe_search_space(search_space),
                describe_search_space(search_space, conditions)
                + "\nGive every parameter a value; a conditional one is used only when its "
                "condition holds.",
                1,
            )
        if ask is None:
            ask = self._ask(search_space, n_configs, fixed_params, candidates)
        if state and state.strip():
            ask = f"Optimizer state:\n{state.strip()}\n\n{ask}"
        if self.settings.history == "chat":
            return self._chat(header, budget, ask, finished, pending)
        return self._compressed(header, f"{budget}\n\n{ask}", finished, pending, directions)

    # -- pieces -----------------------------------------------------------------------------
    def _header(
        self,
        search_space: Mapping[str, BaseDistribution],
        directions: Sequence[StudyDirection],
        metric_names: Sequence[str] | None,
        restricted: bool = False,
    ) -> str:
        # Only what stays the same from one trial to the next: llama.cpp reuses the KV cache
        # of the unchanged prefix, so whatever changes (the budget) comes after the history.
        problem = self.settings.problem.strip() or "(no description given)"
        space_title = (
            "Search space (a region of the full space: propose inside it only)"
            if restricted
            else "Search space"
        )
        return (
            f"Problem: {problem}\n"
            f"{describe_goal(directions, metric_names)}\n\n"
            f"{space_title}:\n{describe_search_space(search_space)}"
        )

    def _ask(
        self,
        search_space: Mapping[str, BaseDistribution],
        n_configs: int,
        fixed_params: Mapping[str, Any] | None,
        candidates: bool = False,
    ) -> str:
        lines = []
        if fixed_params:
            fixed = json.dumps({k: jsonable(v) for k, v in fixed_params.items()})
            lines.append(
                f"The current trial already uses {fixed}; choose only the remaining "
                "parameter(s) below to go with it."
            )
        if n_configs == 1:
            lines.append(
                "Propose the next configuration to evaluate: one likely to improve on "
                "the best so far and different from every configuration above."
            )
        elif candidates:
            lines.append(
                f"Propose {n_configs} candidates for the next configuration to evaluate, "
                "the most promising first: each likely to improve on the best so far, "
                "different from every configuration above and from each other. The first "
                "new one is evaluated."
            )
        else:
            lines.append(
                f"Propose {n_configs} different configurations to evaluate first, "
                "spread over the promising region, none repeating another."
            )
        order = self.settings.rationale_order
        if self.settings.chain_of_thought:
            lines.append(
                'First reason step by step in "rationale" (what the results so far '
                "suggest and why), then give the configuration."
            )
        elif order == "first":
            lines.append('"rationale" is one short sentence saying why.')
        elif order == "last":
            lines.append('After the configuration, "rationale" is one short sentence saying why.')
        if self.settings.example == "keys":  # "auto" is resolved by the Proposer
            lines.append(
                "Every value must respect its range and type. Reply with JSON only: "
                + answer_outline(search_space, n_configs, order)
            )
        else:
            lines.append(
                "Every value must respect its range and type. Reply with JSON only, in this "
                "format (the values below only show the format, choose your own):\n"
                + json.dumps(example_answer(search_space, n_configs, order))
            )
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
                f"Results so far (the best {n_best} and the latest {n_recent} finished "
                "trials, as #trial config -> value):"
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
        budget: str,
        ask: str,
        finished: Sequence[FrozenTrial],
        pending: Sequence[FrozenTrial],
    ) -> list[Message]:
        """The seed paper's dialogue. Only trials the LLM chose are assistant turns; a trial
        another sampler or the user chose is told in the user's turn, with who chose it."""
        messages: list[Message] = [{"role": "system", "content": SYSTEM_PROMPT}]
        turns = sorted(finished, key=lambda t: t.number)
        user = header + "\n\n" + ask
        for trial in turns:
            config = json.dumps({k: jsonable(v) for k, v in trial.params.items()})
            if chooser(trial) == "you":
                if messages[-1]["role"] == "assistant":
                    user += " Propose the next configuration."
                messages.append({"role": "user", "content": user})
                messages.append({"role": "assistant", "content": f'{{"config": {config}}}'})
                user = f"Result of trial #{trial.number}: {format_outcome(trial)}."
            else:
                user += (
                    f"\nTrial #{trial.number} was chosen by {chooser(trial)}, not by you: "
                    f"{config} -> {format_outcome(trial)}."
                )
        if turns:
            if pending:
                user += (
                    "\nBeing evaluated right now by other workers (do not propose these "
                    "again): " + "; ".join(json.dumps(_pending_params(t)) for t in pending)
                )
            user += "\n" + budget + "\n" + ask
        else:
            user = header + "\n\n" + budget + "\n\n" + ask
        messages.append({"role": "user", "content": user})
        return messages


def choice_ask(options: Sequence[str], labels: Sequence[str], rationale: bool = True) -> str:
    """The request to pick one of ``options`` (each a one-line description of a whole
    configuration), shown under ``labels``, instead of writing a configuration. The answer's
    shape has keys and no value to copy, as :func:`answer_outline`.

    Example:
        >>> print(choice_ask(["x=1 (predicted 0.5 +- 0.1)", "x=2"], ["A", "B"]))
        Candidates for the next trial (each a whole configuration):
        A: x=1 (predicted 0.5 +- 0.1)
        B: x=2
        Pick the candidate most likely to improve on the best so far. Reply with JSON only:
        "choice" is the letter of your pick (A, B), then "rationale" says in a few words why.
    """
    lines = ["Candidates for the next trial (each a whole configuration):"]
    lines += [f"{label}: {option}" for label, option in zip(labels, options, strict=True)]
    letters = ", ".join(labels)
    lines.append(
        "Pick the candidate most likely to improve on the best so far. Reply with JSON only:\n"
        f'"choice" is the letter of your pick ({letters})'
        + (', then "rationale" says in a few words why.' if rationale else ".")
    )
    return "\n".join(lines)


def chooser(trial: FrozenTrial) -> str:
    """Who chose the trial's configuration, for the chat history: ``"you"`` (the LLM),
    the fallback or base sampler by name, or ``"the user"`` (enqueued or given)."""
    source = str(trial.user_attrs.get(SOURCE, ""))
    if source.startswith("llm"):
        return "you"
    if source.startswith("fallback:"):
        return f"the fallback sampler ({source.split(':', 1)[1]})"
    if source:
        return f"the {source} sampler"
    return "the user"


def example_answer(
    search_space: Mapping[str, BaseDistribution], n_configs: int = 1, rationale: str = "first"
) -> dict[str, Any]:
    """A concrete answer in the schema's shape, with values from the space (so a small
    model has nothing like ``<number>`` to copy).

    Example:
        >>> from optuna.distributions import FloatDistribution, IntDistribution
        >>> example_answer({"x": FloatDistribution(-5, 10), "n": IntDistribution(1, 9)})
        {'rationale': 'one short reason', 'config': {'x': -1.25, 'n': 3}}
    """
    configs = [example_config(search_space, (i + 1) / (n_configs + 3)) for i in range(n_configs)]
    body: dict[str, Any] = (
        {"config": configs[0]} if n_configs == 1 else {"configs": configs[: min(n_configs, 2)]}
    )
    if rationale == "none":
        return body
    if rationale == "first":
        return {"rationale": EXAMPLE_RATIONALE, **body}
    return {**body, "rationale": EXAMPLE_RATIONALE}


def answer_outline(
    search_space: Mapping[str, BaseDistribution], n_configs: int = 1, rationale: str = "first"
) -> str:
    """The answer's shape with its keys and no value, for ``example="keys"``.

    Example:
        >>> from optuna.distributions import FloatDistribution, IntDistribution
        >>> answer_outline({"x": FloatDistribution(-5, 10), "n": IntDistribution(1, 9)})
        '{"rationale": "...", "config": {...}} with a value for each of "x", "n".'
    """
    key = "config" if n_configs == 1 else "configs"
    body = f'"{key}": {{...}}' if n_configs == 1 else f'"{key}": [{n_configs} x {{...}}]'
    parts = {"first": ['"rationale": "..."', body], "last": [body, '"rationale": "..."']}
    shape = "{" + ", ".join(parts.get(rationale, [body])) + "}"
    names = ", ".join(json.dumps(name) for name in search_space)
    per = "each configuration" if n_configs > 1 else ""
    return f"{shape} with a value for each of {names}" + (f" in {per}" if per else "") + "."


def example_configs(
    search_space: Mapping[str, BaseDistribution], n_configs: int = 1
) -> list[dict[str, Any]]:
    """The configurations the ask shows as its format example (a copy of one is no choice).

    Example:
        >>> from optuna.distributions import FloatDistribution
        >>> example_configs({"x": FloatDistribution(-5, 10)})
        [{'x': -1.25}]
    """
    answer = example_answer(search_space, n_configs, "none")
    return list(answer["configs"]) if "configs" in answer else [answer["config"]]


def example_config(search_space: Mapping[str, BaseDistribution], at: float) -> dict[str, Any]:
    """A valid configuration a fraction ``at`` of the way through every range."""
    config: dict[str, Any] = {}
    for k, (name, d) in enumerate(search_space.items()):
        if isinstance(d, CategoricalDistribution):
            config[name] = jsonable(d.choices[k % len(d.choices)])
            continue
        if not isinstance(d, (FloatDistribution, IntDistribution)):
            continue
        low, high = float(d.low), float(d.high)
        if d.log and low > 0:
            value = math.exp(math.log(low) + at * (math.log(high) - math.log(low)))
        else:
            value = low + at * (high - low)
        if d.step is not None:
            value = low + round((value - low) / d.step) * d.step
        value = min(max(value, low), high)
        config[name] = round(value) if isinstance(d, IntDistribution) else jsonable(value)
    return config


def _pending_params(trial: FrozenTrial) -> dict[str, Any]:
    if trial.params:
        return {k: jsonable(v) for k, v in trial.params.items()}
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


def jsonable(value: Any) -> Any:
    """``value`` as the prompt shows it: floats to 6 significant digits, others as strings."""
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else str(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)
