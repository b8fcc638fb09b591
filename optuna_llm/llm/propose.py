"""Ask an LLM for configurations until it gives valid, new ones, or say why it could not.

One loop shared by :class:`~optuna_llm.samplers.LLMSampler` (one configuration) and
:class:`~optuna_llm.samplers.LLMSeededSampler` (several at once): send the prompt, parse and
validate the answer against the distributions, repair near misses, refuse configurations that
were already tried or are pending, and retry with the error fed back as a new user turn.
Transport failures (the ``openai`` client has already retried them) end the loop at once so the
caller can fall back; a replay-cache miss and a missing backend are raised as the clear errors
they are.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from optuna.distributions import BaseDistribution

from optuna_llm._attrs import (
    LLM_ANSWER,
    LLM_CALLS,
    LLM_COMPLETION_TOKENS,
    LLM_ERRORS,
    LLM_PROMPT,
    LLM_PROMPT_TOKENS,
)
from optuna_llm.llm.base import (
    CacheMissError,
    ChatClient,
    ChatResult,
    LLMUnavailableError,
    Message,
)
from optuna_llm.llm.schema import EXAMPLE_RATIONALE, answer_schema
from optuna_llm.llm.validate import (
    InvalidAnswer,
    config_from_answer,
    extract_json,
    validate_config,
)

_logger = logging.getLogger(__name__)

_MAX_ECHO = 2000  # characters of a rejected answer echoed back to the LLM
_RECORD_LIMIT = 60_000  # characters of prompt/answer kept in trial attrs


@dataclass
class Proposal:
    params: dict[str, Any]
    source: str  # "llm" or "llm-repaired"
    rationale: str
    repairs: list[str] = field(default_factory=list)


@dataclass
class ExchangeLog:
    """What the LLM exchanges of one trial cost and said, for the trial's attrs."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    errors: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    answer: str = ""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_user_attrs(self) -> dict[str, Any]:
        prompt = "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in self.messages)
        return {
            LLM_PROMPT_TOKENS: self.prompt_tokens,
            LLM_COMPLETION_TOKENS: self.completion_tokens,
            LLM_CALLS: self.calls,
            LLM_PROMPT: _clip(prompt),
            LLM_ANSWER: _clip(self.answer),
            **({LLM_ERRORS: [_clip(e, 500) for e in self.errors[-10:]]} if self.errors else {}),
        }


class ProposalFailed(RuntimeError):
    """No usable configuration came back; ``str(err)`` says why (shown in the trial)."""


Forbidden = Callable[[Mapping[str, Any]], str | None]
"""Returns why a configuration may not be used (already tried, pending), or None."""


def propose(
    client: ChatClient,
    messages: list[Message],
    search_space: Mapping[str, BaseDistribution],
    *,
    forbidden: Forbidden,
    log: ExchangeLog,
    n_configs: int = 1,
    enough: int | None = None,
    max_attempts: int = 3,
    temperature: float = 0.0,
    seed: int | None = None,
    max_tokens: int | None = None,
    budget_left: Callable[[], bool] = lambda: True,
    rationale: str = "first",
) -> list[Proposal]:
    """Up to ``n_configs`` valid, distinct, allowed proposals (at least one), or raise
    :class:`ProposalFailed`. Each answer holds ``n_configs`` configurations; the loop ends
    once ``enough`` of them (default: all) were accepted, so ``n_configs=4, enough=1`` asks
    for four candidates and is content with the first usable one (a small model that copies
    a configuration already tried often writes a new one after it). ``rationale`` places the
    rationale in the answer schema (:func:`~optuna_llm.llm.schema.answer_schema`)."""
    enough = n_configs if enough is None else enough
    if not 1 <= enough <= n_configs:
        raise ValueError(f"enough must be between 1 and n_configs={n_configs}, got {enough}.")
    schema = answer_schema(search_space, n_configs, rationale)
    conversation = list(messages)
    accepted: list[Proposal] = []
    for attempt in range(max_attempts):
        if not budget_left():
            raise ProposalFailed("token budget exhausted")
        result = send(
            client,
            conversation,
            schema=schema,
            attempt=attempt,
            temperature=temperature,
            seed=seed,
            max_tokens=max_tokens or 256 + 192 * n_configs,  # the grammar asks all of them
            log=log,
        )
        try:
            new, problems = _read_answer(result.text, search_space, n_configs, forbidden, accepted)
        except InvalidAnswer as exc:
            new, problems = [], [str(exc)]
        accepted.extend(new)
        if len(accepted) >= enough:
            return accepted[:n_configs]
        log.errors.extend(problems)
        _logger.debug("LLM answer %d rejected: %s", attempt + 1, problems)
        feedback = "; ".join(problems) or "too few configurations"
        still = n_configs - len(accepted)
        conversation = [
            *conversation,
            {"role": "assistant", "content": _clip(result.text, _MAX_ECHO)},
            {
                "role": "user",
                "content": (
                    f"That answer could not be used: {_clip(feedback, _MAX_ECHO)}. "
                    + (f"Propose {still} more different configuration(s). " if accepted else "")
                    + "Reply again with JSON only, in the same format."
                ),
            },
        ]
    if accepted:
        return accepted
    raise ProposalFailed(
        f"no usable configuration after {max_attempts} attempts: "
        + (log.errors[-1] if log.errors else "")
    )


def send(
    client: ChatClient,
    conversation: list[Message],
    *,
    schema: dict[str, Any],
    attempt: int,
    temperature: float,
    seed: int | None,
    max_tokens: int,
    log: ExchangeLog,
) -> ChatResult:
    """One request of a retry loop (``attempt`` is 0-based: retries sample hotter with a new
    seed), counted in ``log``. A transport failure (the ``openai`` client already retried it)
    is :class:`ProposalFailed`; a replay-cache miss and a missing backend are raised as they
    are."""
    try:
        result = client.chat(
            conversation,
            json_schema=schema,
            temperature=retry_temperature(temperature, attempt),
            max_tokens=max_tokens,
            seed=retry_seed(seed, attempt),
        )
    except (CacheMissError, LLMUnavailableError):
        raise
    except Exception as exc:  # transport: the openai client already retried
        log.errors.append(f"{type(exc).__name__}: {exc}")
        raise ProposalFailed(f"LLM request failed: {type(exc).__name__}: {exc}") from exc
    log.calls += 1
    log.prompt_tokens += result.prompt_tokens
    log.completion_tokens += result.completion_tokens
    log.messages, log.answer = conversation, result.text
    return result


def retry_temperature(temperature: float, attempt: int) -> float:
    """Temperature of the ``attempt``-th request (0-based). A model asked again tends to
    repeat itself (small models repeat a configuration already tried), so each retry samples
    0.4 hotter than the one before, at most 2 (what OpenAI-compatible servers accept): 0.4 and
    0.8 after a first request at 0, 1.4 and 1.8 after one at 1. At a flat 1.0 the embedded
    270M model wrote the same refused copy at all three requests of 9 trials of 10
    (docs/llm.md, sixth session).

    Example:
        >>> [retry_temperature(0.0, a) for a in range(3)], retry_temperature(1.0, 2)
        ([0.0, 0.4, 0.8], 1.8)
    """
    return round(min(2.0, temperature + 0.4 * attempt), 6)


def retry_seed(seed: int | None, attempt: int) -> int | None:
    """Seed of the ``attempt``-th request: ``seed + attempt``; with no seed, the first request
    sends none and each retry sends ``attempt`` (a retry that reused the server's seed would
    sample the same tokens again). Deterministic, so a recorded study replays."""
    if seed is None:
        return None if attempt == 0 else attempt
    return seed + attempt


def _read_answer(
    text: str,
    search_space: Mapping[str, BaseDistribution],
    n_configs: int,
    forbidden: Forbidden,
    accepted: list[Proposal],
) -> tuple[list[Proposal], list[str]]:
    answer = extract_json(text)
    rationale = ""
    if isinstance(answer, dict):
        rationale = str(answer.get("rationale", ""))[:2000]
        if rationale.strip().lower() == EXAMPLE_RATIONALE:  # the ask's example, copied
            rationale = ""
    if n_configs == 1:
        raws: list[Any] = [config_from_answer(answer)]
    else:
        listed = answer.get("configs") if isinstance(answer, dict) else answer
        if not isinstance(listed, list):
            raise InvalidAnswer("Expected a JSON object with a 'configs' array.")
        raws = listed
    new: list[Proposal] = []
    problems: list[str] = []
    for raw in raws:
        if not isinstance(raw, dict):
            problems.append(f"a configuration is not a JSON object: {_clip(repr(raw), 200)}")
            continue
        try:
            checked = validate_config(raw, search_space)
        except InvalidAnswer as exc:
            problems.append(str(exc))
            continue
        reason = forbidden(checked.params)
        if reason is None and any(_same(p.params, checked.params) for p in accepted + new):
            reason = "it repeats another configuration in this answer"
        if reason is not None:
            problems.append(f"{json.dumps(checked.params, default=str)} was refused: {reason}")
            continue
        source = "llm-repaired" if checked.repairs else "llm"
        new.append(Proposal(checked.params, source, rationale, checked.repairs))
    return new, problems


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _clip(text: str, limit: int = _RECORD_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"
