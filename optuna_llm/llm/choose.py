"""Ask an LLM to pick one of a few labelled candidates, and read its pick.

The action a small model can take without writing numbers: the optimizer writes the
candidates (whole, valid configurations), the LLM answers with one label (``"A"``...), and a
short reason after it. With a client that enforces the schema (the embedded model's grammar)
the label is one of the enum by construction; any other client's answer is read with
:func:`read_choice`, which refuses what is not exactly one of the labels, and the question is
asked again with the error, as :func:`~optuna_llm.llm.propose.propose` does for
configurations.

Example:
    >>> from optuna_llm.llm.base import ChatResult
    >>> class Canned:
    ...     model = "canned"
    ...     def chat(self, messages, **kwargs):
    ...         return ChatResult('{"choice": "B", "rationale": "lower predicted loss"}', 9, 6,
    ...                           "canned")
    >>> log = ExchangeLog()
    >>> pick = choose(Canned(), [{"role": "user", "content": "A or B?"}], ["A", "B"], log=log)
    >>> pick.index, pick.label, pick.rationale, log.calls
    (1, 'B', 'lower predicted loss', 1)
"""

from __future__ import annotations

import logging
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna_llm.llm.base import ChatClient, Message
from optuna_llm.llm.propose import ExchangeLog, ProposalFailed, send
from optuna_llm.llm.validate import InvalidAnswer, extract_json

_logger = logging.getLogger(__name__)

MAX_RATIONALE_CHARS = 160
"""Longest reason the schema lets the model write after its pick: enough for a sentence, and
a small model that loops cannot spend its tokens (and the seconds they cost) on it."""


@dataclass(frozen=True)
class Choice:
    """The candidate the LLM picked: its position, its label and the reason it gave."""

    index: int
    label: str
    rationale: str


def labels_for(n: int) -> list[str]:
    """``n`` one-letter labels, ``A`` first (at most 26).

    Example:
        >>> labels_for(3)
        ['A', 'B', 'C']
    """
    if not 1 <= n <= len(string.ascii_uppercase):
        raise ValueError(f"between 1 and 26 candidates can be labelled, got {n}.")
    return list(string.ascii_uppercase[:n])


def choice_schema(labels: Sequence[str], rationale: bool = True) -> dict[str, Any]:
    """The answer's JSON schema: ``{"choice": <one of labels>, "rationale": "..."}``, the
    pick first (a small model spends its tokens on the pick, not on a preamble), the reason
    capped at :data:`MAX_RATIONALE_CHARS`.

    Example:
        >>> choice_schema(["A", "B"], rationale=False)["properties"]
        {'choice': {'type': 'string', 'enum': ['A', 'B']}}
    """
    properties: dict[str, Any] = {"choice": {"type": "string", "enum": list(labels)}}
    if rationale:
        properties["rationale"] = {"type": "string", "maxLength": MAX_RATIONALE_CHARS}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def read_choice(text: str, labels: Sequence[str]) -> Choice:
    """The pick in an answer, or :class:`~optuna_llm.llm.validate.InvalidAnswer` saying why
    it is none: a JSON object whose ``"choice"`` is exactly one of ``labels`` (case and
    surrounding blanks are forgiven, nothing else).

    Example:
        >>> read_choice('{"choice": " b ", "rationale": "why not"}', ["A", "B"]).index
        1
        >>> read_choice('{"choice": "E"}', ["A", "B"])
        Traceback (most recent call last):
        ...
        optuna_llm.llm.validate.InvalidAnswer: "choice" must be one of A, B; got 'E'.
    """
    answer = extract_json(text)
    if not isinstance(answer, dict) or "choice" not in answer:
        raise InvalidAnswer('Expected a JSON object with a "choice" key.')
    raw = answer["choice"]
    label = raw.strip().upper() if isinstance(raw, str) else ""
    if label not in labels:
        raise InvalidAnswer(f'"choice" must be one of {", ".join(labels)}; got {raw!r}.')
    rationale = str(answer.get("rationale", ""))[:MAX_RATIONALE_CHARS].strip()
    return Choice(list(labels).index(label), label, rationale)


def choose(
    client: ChatClient,
    messages: list[Message],
    labels: Sequence[str],
    *,
    log: ExchangeLog,
    max_attempts: int = 2,
    temperature: float = 0.0,
    seed: int | None = None,
    rationale: bool = True,
) -> Choice:
    """The LLM's pick among ``labels``, or :class:`~optuna_llm.llm.propose.ProposalFailed`
    after ``max_attempts`` unusable answers or a transport failure (a replay-cache miss and a
    missing backend are raised as they are). Retries sample hotter with a new seed, as
    configuration requests do (:func:`~optuna_llm.llm.propose.send`)."""
    schema = choice_schema(labels, rationale)
    conversation = list(messages)
    # The pick is a few tokens; the reason at most MAX_RATIONALE_CHARS (~4 characters a token).
    max_tokens = 16 + (MAX_RATIONALE_CHARS // 3 if rationale else 0)
    for attempt in range(max_attempts):
        result = send(
            client,
            conversation,
            schema=schema,
            attempt=attempt,
            temperature=temperature,
            seed=seed,
            max_tokens=max_tokens,
            log=log,
        )
        try:
            return read_choice(_close_cut_answer(result.text), labels)
        except InvalidAnswer as exc:
            problem = str(exc)
        log.errors.append(problem)
        _logger.debug("LLM pick %d refused: %s", attempt + 1, problem)
        conversation = [
            *conversation,
            {"role": "assistant", "content": result.text[:2000]},
            {
                "role": "user",
                "content": f"That answer could not be used: {problem} Reply again with JSON "
                "only, in the same format.",
            },
        ]
    raise ProposalFailed(
        f"no usable pick after {max_attempts} attempts: " + (log.errors[-1] if log.errors else "")
    )


def _close_cut_answer(text: str) -> str:
    """An answer cut off inside its reason (``max_tokens``), closed so its pick can be read:
    ``{"choice": "A", "rationale": "because it`` -> ``... "because it"}``. Other text is
    returned unchanged.

    Example:
        >>> _close_cut_answer('{"choice": "A", "rationale": "because it')
        '{"choice": "A", "rationale": "because it"}'
    """
    stripped = text.rstrip()
    if stripped.endswith("}") or '"rationale"' not in stripped:
        return text
    body = stripped.rstrip("\\")
    if body.count('"') % 2 == 1:
        body += '"'
    return body + "}"


__all__ = ["MAX_RATIONALE_CHARS", "Choice", "choice_schema", "choose", "labels_for", "read_choice"]
