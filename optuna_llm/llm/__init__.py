"""LLM access: clients for OpenAI-compatible servers and the embedded model, prompts, the
answer schema and validation, record/replay, and the proposer the LLM samplers share.

Layers (each imports only those above it): :mod:`~optuna_llm.llm.base` (protocol, result,
errors); :mod:`~optuna_llm.llm.client`, :mod:`~optuna_llm.llm.embedded`,
:mod:`~optuna_llm.llm.cache` (backends and record/replay); :mod:`~optuna_llm.llm.factory`
(``make_client``); prompts, schema, validation and the proposer."""

from __future__ import annotations

from optuna_llm.llm.base import (
    CacheMissError,
    ChatClient,
    ChatResult,
    LLMTransportError,
    LLMUnavailableError,
    Message,
)
from optuna_llm.llm.cache import CachingClient, LLMCache
from optuna_llm.llm.client import OpenAIChatClient
from optuna_llm.llm.factory import make_client

__all__ = [
    "CacheMissError",
    "CachingClient",
    "ChatClient",
    "ChatResult",
    "LLMCache",
    "LLMTransportError",
    "LLMUnavailableError",
    "Message",
    "OpenAIChatClient",
    "make_client",
]
