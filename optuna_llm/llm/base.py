"""What every LLM backend shares: the chat protocol, its result and the errors.

The backends (:mod:`~optuna_llm.llm.client`, :mod:`~optuna_llm.llm.embedded`), the
record/replay cache (:mod:`~optuna_llm.llm.cache`) and the factory
(:mod:`~optuna_llm.llm.factory`) import this module and nothing of each other, so the package
has no import cycle.

Example:
    >>> result = ChatResult(text='{"config": {"x": 1}}', prompt_tokens=10,
    ...                     completion_tokens=5, model="m")
    >>> result.cached, estimate_tokens("twelve chars")
    (False, 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

Message = dict[str, str]
"""One chat turn: ``{"role": "system" | "user" | "assistant", "content": "..."}``."""


@dataclass(frozen=True)
class ChatResult:
    """One completion: its text and the token counts the server reported (or estimated)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str
    cached: bool = False


class ChatClient(Protocol):
    """What the samplers need from an LLM backend.

    A client may also say, as a boolean attribute ``enforces_schema``, that every answer it
    returns follows the ``json_schema`` it was given (constrained decoding, as the embedded
    model's grammar does); :func:`enforces_schema` reads it, ``False`` when absent.
    """

    @property
    def model(self) -> str: ...

    def chat(
        self,
        messages: list[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> ChatResult: ...


def enforces_schema(client: object) -> bool:
    """Whether ``client`` declares that its answers always follow the schema's shape.

    Example:
        >>> class Plain:
        ...     model = "m"
        >>> enforces_schema(Plain())
        False
    """
    return bool(getattr(client, "enforces_schema", False))


class LLMUnavailableError(RuntimeError):
    """No LLM can be used as configured (nothing installed, a bad model file): the message
    says how to fix it. Raised, never fallen back from: it is a setup error."""


class LLMTransportError(RuntimeError):
    """The configured LLM could not be reached or answered with an error this time (a dead
    server, a refused connection). The samplers fall back for that trial and go on."""


class CacheMissError(LookupError):
    """Replay-only mode met an exchange that was never recorded."""


def estimate_tokens(text: str) -> int:
    """A rough token count (4 characters a token) for servers that report no usage."""
    return max(1, len(text) // 4)
