"""Which chat client to build: from arguments first, then ``OPENAI_BASE_URL`` /
``OPENAI_API_KEY`` / ``OPTUNA_LLM_MODEL``, and with none of them the embedded Gemma model.

Example:
    >>> client = make_client(base_url="http://127.0.0.1:8080/v1", model="gemma")
    >>> type(client).__name__, client.model
    ('OpenAIChatClient', 'gemma')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from optuna_llm.llm.base import ChatClient
from optuna_llm.llm.cache import CachingClient, LLMCache
from optuna_llm.llm.client import OpenAIChatClient
from optuna_llm.llm.embedded import EmbeddedLlamaClient, embedded_model_name

OPENAI_DEFAULT_MODEL = "gpt-4o-mini"


def resolve_model(model: str | None, base_url: str | None, api_key: str | None) -> str | None:
    """The model name to ask for, without any network round trip: ``model``, else
    ``OPTUNA_LLM_MODEL``, else ``gpt-4o-mini`` on OpenAI itself (a key and no base URL), else
    None (the server's first listed model, looked up at the first request).

    Example:
        >>> resolve_model(None, None, "sk-...")
        'gpt-4o-mini'
        >>> resolve_model("llama3", "http://127.0.0.1:8080/v1", None)
        'llama3'
    """
    model = model or os.environ.get("OPTUNA_LLM_MODEL") or None
    if model is not None:
        return model
    return None if base_url else OPENAI_DEFAULT_MODEL if api_key else None


def make_client(
    model: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    cache: str | os.PathLike[str] | LLMCache | None = None,
    **kwargs: Any,
) -> ChatClient:
    """The chat client for the given settings, wrapped in a record/replay cache if asked.

    - ``base_url`` or ``api_key`` (or ``OPENAI_BASE_URL``/``OPENAI_API_KEY``): the ``openai``
      client; the model is :func:`resolve_model`'s.
    - none of them: the embedded Gemma 3 270M (extra ``optuna-llm[local]``); ``model`` may be
      the path of another GGUF file.
    - ``cache``: a path (record misses, replay hits) or an
      :class:`~optuna_llm.llm.cache.LLMCache`. Nothing is built or contacted until a miss, so
      a complete replay needs only the cache file.
    """
    base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
    remote = bool(base_url or api_key)
    name = resolve_model(model, base_url, api_key)

    def build() -> ChatClient:
        if remote:
            return OpenAIChatClient(name, base_url=base_url, api_key=api_key, **kwargs)
        return EmbeddedLlamaClient(model_path=Path(name) if name else None, **kwargs)

    if cache is None:
        return build()
    store = cache if isinstance(cache, LLMCache) else LLMCache(cache)
    cache_model = (name or "") if remote else embedded_model_name(Path(name) if name else None)
    return CachingClient(build, store, model=cache_model, enforces_schema=not remote)


__all__ = ["OPENAI_DEFAULT_MODEL", "make_client", "resolve_model"]
