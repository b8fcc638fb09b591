"""LLM access: clients for OpenAI-compatible servers and the embedded model, prompts, the
answer schema and validation, and record/replay."""

from __future__ import annotations

from optuna_llm.llm.cache import CacheMissError, CachingClient, LLMCache
from optuna_llm.llm.client import (
    ChatClient,
    ChatResult,
    LLMUnavailableError,
    OpenAIChatClient,
    make_client,
)

__all__ = [
    "CacheMissError",
    "CachingClient",
    "ChatClient",
    "ChatResult",
    "LLMCache",
    "LLMUnavailableError",
    "OpenAIChatClient",
    "make_client",
]
