"""The one proposer every LLM sampler shares (by composition): it builds the prompt from the
trials, asks the client, validates and repairs the answer, and retries with the error.

:class:`~optuna_llm.samplers.LLMSampler`, :class:`~optuna_llm.samplers.LLMSeededSampler`
and the optimizer-guided sampler each hold a :class:`Proposer`; none reads another's
internals. Two extras serve an optimizer that decides where to look: ``box`` restricts the
proposals to a sub-box of the space (per parameter ``(low, high)`` inside its range, or a
subset of a categorical's choices) and ``state`` adds a short text about the optimizer's
state to the prompt.

Example:
    >>> from optuna.distributions import FloatDistribution
    >>> from optuna_llm.llm.base import ChatResult
    >>> class Canned:  # any ChatClient; here one that always answers the same
    ...     model = "canned"
    ...     def chat(self, messages, **kwargs):
    ...         return ChatResult('{"config": {"x": 0.25}}', 10, 5, "canned")
    >>> proposer = Proposer(Canned(), PromptSettings(problem="Minimise x**2."))
    >>> space = {"x": FloatDistribution(-1.0, 1.0)}
    >>> [p] = proposer.propose(space, [], box={"x": (0.0, 0.5)}, state="CMA-ES mean x=0.2")
    >>> p.params, p.source
    ({'x': 0.25}, 'llm')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from optuna_llm.llm.base import ChatClient, enforces_schema
from optuna_llm.llm.choose import Choice, choose, labels_for
from optuna_llm.llm.prompts import (
    PromptBuilder,
    PromptSettings,
    choice_ask,
    example_configs,
    jsonable,
)
from optuna_llm.llm.propose import ExchangeLog, Forbidden, Proposal, ProposalFailed, propose

Box = Mapping[str, tuple[float, float] | Sequence[Any]]
"""Per parameter: ``(low, high)`` inside a numeric parameter's range, or the allowed subset
of a categorical's choices. Parameters not named keep their whole range."""


class Proposer:
    """Ask ``client`` for configurations of a search space, given the trials so far.

    Args:
        client: Any :class:`~optuna_llm.llm.base.ChatClient`.
        settings: The prompt's settings (problem, history format, rationale...).
        temperature: Temperature of the first request; retries sample hotter.
        seed: Seed of the first request (retries use ``seed + attempt``); sent on every
            request so a retry never repeats the first answer for want of a new seed.
        max_attempts: Requests per proposal before :class:`ProposalFailed`.
        max_total_tokens: Study-wide token cap; :meth:`budget_left` compares with it.
        candidates: Configurations asked for in each request when one is wanted (most
            promising first); the first usable one is taken. 1 asks for one. A small model
            that copies a configuration already tried often writes a new one after it
            (measured in docs/llm.md).
    """

    def __init__(
        self,
        client: ChatClient,
        settings: PromptSettings | None = None,
        *,
        temperature: float = 0.0,
        seed: int | None = None,
        max_attempts: int = 3,
        max_total_tokens: int | None = None,
        candidates: int = 1,
    ) -> None:
        if candidates < 1:
            raise ValueError(
                f"candidates must be a positive number of configurations per request, got "
                f"{candidates}; 1 asks for one configuration at a time."
            )
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}.")
        if max_total_tokens is not None and max_total_tokens < 0:
            raise ValueError(
                f"max_total_tokens must be a non-negative number of tokens or None, got "
                f"{max_total_tokens}."
            )
        self.client = client
        settings = settings or PromptSettings()
        if settings.example == "auto":
            settings = replace(settings, example=resolve_example("auto", client))
        self.builder = PromptBuilder(settings)
        self.temperature = temperature
        self.seed = seed
        self.max_attempts = max_attempts
        self.max_total_tokens = max_total_tokens
        self.candidates = candidates

    @property
    def settings(self) -> PromptSettings:
        return self.builder.settings

    def with_problem(self, problem: str) -> Proposer:
        """The same proposer (same client, sampling and budget) for another problem text."""
        other = Proposer(
            self.client,
            replace(self.settings, problem=problem),
            temperature=self.temperature,
            seed=self.seed,
            max_attempts=self.max_attempts,
            max_total_tokens=self.max_total_tokens,
            candidates=self.candidates,
        )
        return other

    def budget_left(self, tokens_used: int) -> bool:
        """Whether ``tokens_used`` (all trials of the study) is under ``max_total_tokens``."""
        return self.max_total_tokens is None or tokens_used < self.max_total_tokens

    def propose(
        self,
        search_space: Mapping[str, BaseDistribution],
        trials: Sequence[FrozenTrial],
        directions: Sequence[StudyDirection] = (StudyDirection.MINIMIZE,),
        metric_names: Sequence[str] | None = None,
        *,
        forbidden: Forbidden = lambda _: None,
        log: ExchangeLog | None = None,
        n_configs: int = 1,
        current_trial_number: int | None = None,
        fixed_params: Mapping[str, Any] | None = None,
        box: Box | None = None,
        state: str | None = None,
        n_trials: int | None = None,
        budget_left: Callable[[], bool] = lambda: True,
        all_candidates: bool = False,
    ) -> list[Proposal]:
        """Up to ``n_configs`` valid, distinct proposals that ``forbidden`` allows (at least
        one), inside ``box`` if given, or raise :class:`ProposalFailed` saying why.

        With ``n_configs=1`` and ``candidates > 1`` the request asks for ``candidates``
        configurations and the first usable one is returned; ``all_candidates=True`` returns
        every usable one of that answer instead (for a caller that picks, e.g. by an
        acquisition function). ``n_trials`` is the study's whole budget when known (the
        prompt then states how many trials are left). ``log`` collects tokens, calls, errors
        and the last exchange.
        """
        space = restrict(search_space, box) if box else dict(search_space)
        asked = self.candidates if n_configs == 1 else n_configs
        if self.settings.example != "keys":
            forbidden = refusing_examples(forbidden, space, asked)
        messages = self.builder.build(
            space,
            trials,
            directions,
            metric_names,
            n_configs=asked,
            candidates=n_configs == 1 and asked > 1,
            fixed_params=fixed_params,
            current_trial_number=current_trial_number,
            state=state,
            n_trials=n_trials,
            restricted=bool(box),
        )
        proposals = propose(
            self.client,
            messages,
            space,
            forbidden=forbidden,
            log=log if log is not None else ExchangeLog(),
            n_configs=asked,
            enough=1 if asked > n_configs else n_configs,
            max_attempts=self.max_attempts,
            temperature=self.temperature,
            seed=self.seed,
            budget_left=budget_left,
            rationale=self.settings.rationale_order,
        )
        return proposals if all_candidates else proposals[:n_configs]

    def choose(
        self,
        search_space: Mapping[str, BaseDistribution],
        trials: Sequence[FrozenTrial],
        directions: Sequence[StudyDirection],
        options: Sequence[str],
        *,
        log: ExchangeLog | None = None,
        current_trial_number: int | None = None,
        state: str | None = None,
        n_trials: int | None = None,
        rationale: bool | None = None,
    ) -> Choice:
        """The LLM's pick among ``options`` (one-line descriptions of whole configurations,
        labelled ``A``, ``B``...), told the same problem, history and ``state`` as
        :meth:`propose`; :class:`ProposalFailed` when no usable pick came back. A reason is
        asked after the pick when ``rationale`` is True; None (default): unless the settings
        say ``rationale="none"`` or the client enforces the schema (the embedded 270M model,
        whose reasons were nonsense that doubled a pick's time: docs/llm.md).

        Example:
            >>> from optuna.distributions import FloatDistribution
            >>> from optuna_llm.llm.base import ChatResult
            >>> class Canned:
            ...     model = "canned"
            ...     def chat(self, messages, **kwargs):
            ...         return ChatResult('{"choice": "B", "rationale": "lower"}', 10, 5, "c")
            >>> proposer = Proposer(Canned(), PromptSettings(problem="Minimise x**2."))
            >>> space = {"x": FloatDistribution(-1.0, 1.0)}
            >>> proposer.choose(space, [], [StudyDirection.MINIMIZE], ["x=0.5", "x=0.1"]).label
            'B'
        """
        labels = labels_for(len(options))
        if rationale is None:
            rationale = self.settings.rationale_order != "none" and not enforces_schema(self.client)
        messages = self.builder.build(
            search_space,
            trials,
            directions,
            None,
            current_trial_number=current_trial_number,
            state=state,
            n_trials=n_trials,
            ask=choice_ask(options, labels, rationale),
        )
        return choose(
            self.client,
            messages,
            labels,
            log=log if log is not None else ExchangeLog(),
            max_attempts=self.max_attempts,
            temperature=self.temperature,
            seed=self.seed,
            rationale=rationale,
        )


def resolve_example(example: str, client: object) -> str:
    """The ask's format for ``client``: ``"auto"`` is ``"keys"`` for a client that
    enforces the schema, else ``"values"``; any other setting stays.

    Example:
        >>> resolve_example("auto", object()), resolve_example("keys", object())
        ('values', 'keys')
    """
    if example != "auto":
        return example
    return "keys" if enforces_schema(client) else "values"


PAPER_TEMPERATURE = 0.0
"""The paper's setting (Zhang et al. 2023: GPT-4 Turbo at temperature 0)."""
SMALL_MODEL_TEMPERATURE = 1.0
"""For a client that enforces the answer's schema (the embedded Gemma 3 270M): at 0 it writes
back a configuration of its prompt on nearly every trial, at 1 it writes new ones, and its
grammar keeps every answer valid however hot it samples (docs/llm.md measures both)."""


def resolve_temperature(temperature: float | None, client: object) -> float:
    """The first request's temperature for ``client``: ``None`` (auto) is
    :data:`SMALL_MODEL_TEMPERATURE` for a client that enforces the schema, else the paper's
    :data:`PAPER_TEMPERATURE`; a number stays, and must lie in ``[0, 2]``.

    Example:
        >>> resolve_temperature(None, object()), resolve_temperature(0.3, object())
        (0.0, 0.3)
    """
    if temperature is None:
        return SMALL_MODEL_TEMPERATURE if enforces_schema(client) else PAPER_TEMPERATURE
    if not 0.0 <= temperature <= 2.0:
        raise ValueError(
            f"temperature must lie in [0, 2] (the range OpenAI-compatible servers accept), got "
            f"{temperature}; pass None for the default of the client."
        )
    return float(temperature)


def refusing_examples(
    forbidden: Forbidden,
    search_space: Mapping[str, BaseDistribution],
    n_configs: int,
) -> Forbidden:
    """``forbidden``, refusing also the configurations the ask shows as its format example:
    a small model copies them word for word, and a copy is not the model's choice.

    Example:
        >>> from optuna.distributions import FloatDistribution
        >>> space = {"x": FloatDistribution(-5, 10)}
        >>> check = refusing_examples(lambda _: None, space, 1)
        >>> check({"x": -1.25}), check({"x": 2.0})
        ('it is the format example of the question, not a choice: choose your own values', None)
    """
    examples = example_configs(search_space, n_configs)

    def check(params: Mapping[str, Any]) -> str | None:
        shown = {k: jsonable(v) for k, v in params.items()}
        if any(shown == example for example in examples):
            return "it is the format example of the question, not a choice: choose your own values"
        return forbidden(params)

    return check


def restrict(search_space: Mapping[str, BaseDistribution], box: Box) -> dict[str, BaseDistribution]:
    """The distributions of ``search_space`` cut to ``box`` (a step grid stays on its grid).

    Example:
        >>> from optuna.distributions import IntDistribution
        >>> restrict({"n": IntDistribution(0, 100, step=10)}, {"n": (15, 62)})
        {'n': IntDistribution(high=60, log=False, low=20, step=10)}
    """
    unknown = [name for name in box if name not in search_space]
    if unknown:
        raise ValueError(f"box names {unknown}, which are not in the search space.")
    out: dict[str, BaseDistribution] = {}
    for name, distribution in search_space.items():
        if name not in box:
            out[name] = distribution
            continue
        bound = box[name]
        if isinstance(distribution, CategoricalDistribution):
            choices = [c for c in distribution.choices if c in list(bound)]
            if not choices:
                raise ValueError(
                    f"box for {name!r} keeps none of its choices {list(distribution.choices)}."
                )
            out[name] = CategoricalDistribution(choices)
            continue
        if not isinstance(distribution, (FloatDistribution, IntDistribution)):
            raise ValueError(f"cannot restrict {name!r}: {distribution!r}")
        low, high = (float(b) for b in bound)
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ValueError(f"box for {name!r} must be finite (low, high), got {bound!r}.")
        low, high = max(low, distribution.low), min(high, distribution.high)
        if low > high:
            raise ValueError(
                f"box for {name!r}, {bound!r}, lies outside its range "
                f"[{distribution.low}, {distribution.high}]."
            )
        step = distribution.step
        if step is not None:
            base = distribution.low
            low = base + math.ceil((low - base) / step - 1e-9) * step
            high = base + math.floor((high - base) / step + 1e-9) * step
            if low > high:  # the box holds no grid point: take the nearest one
                low = high = base + round((low - base) / step) * step
        if isinstance(distribution, IntDistribution):
            ilow, ihigh = math.ceil(low - 1e-9), math.floor(high + 1e-9)
            if ilow > ihigh:
                ilow = ihigh = round(low)
            out[name] = IntDistribution(ilow, ihigh, log=distribution.log, step=distribution.step)
        else:
            out[name] = FloatDistribution(low, high, log=distribution.log, step=step)
    return out


__all__ = [
    "Box",
    "ExchangeLog",
    "Proposal",
    "ProposalFailed",
    "Proposer",
    "refusing_examples",
    "resolve_example",
    "restrict",
]
