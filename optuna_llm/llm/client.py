"""Chat client for any OpenAI-compatible endpoint through the ``openai`` package.

The API key is handed to the ``openai`` client and nowhere else: it never reaches storage,
logs, attrs or the record/replay cache. Which backend to build from arguments and environment
is :func:`optuna_llm.llm.factory.make_client`'s job.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from optuna_llm.llm.base import (
    ChatClient,
    ChatResult,
    LLMTransportError,
    LLMUnavailableError,
    Message,
    estimate_tokens,
)

_logger = logging.getLogger(__name__)

_FORMATS = ("auto", "json_schema", "json_object", "none")

# What each server (by base URL) was found to take for a JSON schema, once per process: the
# probe is one request without retries, so a llama.cpp server costs one HTTP 500, not four.
_probed_formats: dict[str, str] = {}
_probe_lock = threading.Lock()


class OpenAIChatClient:
    """Chat completions against any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp).

    Servers differ in how they take a JSON Schema: OpenAI/vLLM/Ollama accept
    ``response_format={"type": "json_schema", ...}``, llama.cpp's server wants
    ``{"type": "json_object", "schema": ...}``. With ``response_format="auto"`` the first
    request that carries a schema probes the server with the first form, without the client's
    retries; if the server rejects it the second form is used. The answer is remembered for
    that base URL for the rest of the process. Retries on 429/5xx and timeouts are the
    ``openai`` client's own (``max_retries``, exponential back-off).

    With no ``model``, the first request asks the server for its model list; a server that
    cannot be reached raises :class:`~optuna_llm.llm.base.LLMTransportError` (the samplers
    fall back for that trial, as for any transport error) and the next request asks again.
    ``model`` itself never touches the network: it is ``""`` until a name is known.

    Example:
        >>> client = OpenAIChatClient(model="gpt-4o-mini")
        >>> client.model
        'gpt-4o-mini'
        >>> client.chat([{"role": "user", "content": "Say hi"}]).text  # doctest: +SKIP
    """

    enforces_schema = False
    """A server may ignore the schema (or only force JSON), so the prompt spells the shape out."""

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

        if response_format not in _FORMATS:
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
        """The model name: the one given, or the one the server listed ("" before that)."""
        return self._model

    @property
    def server(self) -> str:
        return str(self._client.base_url)

    def _resolve_model(self) -> str:
        if self._model:
            return self._model
        try:
            models = list(self._client.models.list())
        except Exception as exc:
            raise LLMTransportError(
                f"No model name was given and the server at {self.server} did not list one "
                f"({type(exc).__name__}: {exc}). Pass model='...' or set OPTUNA_LLM_MODEL."
            ) from exc
        if not models:
            raise LLMUnavailableError(
                f"The server at {self.server} lists no model: pass model='...'."
            )
        with self._lock:
            self._model = str(models[0].id)
        return self._model

    def _response_format(self) -> str:
        if self._format != "auto":
            return self._format
        with _probe_lock:
            return _probed_formats.get(self.server, "auto")

    def _remember_format(self, fmt: str) -> None:
        with _probe_lock:
            _probed_formats[self.server] = fmt

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
            "model": self._resolve_model(),
            "messages": messages,
            "temperature": temperature,
        }
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if seed is not None:
            kwargs["seed"] = seed
        fmt = self._response_format()
        if json_schema is None or fmt == "none":
            response = self._client.chat.completions.create(**kwargs)
        elif fmt == "json_object":
            kwargs["response_format"] = _json_object(json_schema)
            response = self._client.chat.completions.create(**kwargs)
        elif fmt == "json_schema":
            kwargs["response_format"] = _json_schema(json_schema)
            response = self._client.chat.completions.create(**kwargs)
        else:
            response = self._probe(kwargs, json_schema, openai)
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

    def _probe(self, kwargs: dict[str, Any], json_schema: dict[str, Any], openai: Any) -> Any:
        """Send ``json_schema`` once, without retries; on a rejection switch to
        ``json_object`` for this server. A transport failure decides nothing."""
        try:
            response = self._client.with_options(max_retries=0).chat.completions.create(
                **{**kwargs, "response_format": _json_schema(json_schema)}
            )
        except (
            openai.BadRequestError,
            openai.InternalServerError,
            openai.UnprocessableEntityError,
        ) as exc:
            # The server does not take json_schema (llama.cpp answers 500): use json_object.
            _logger.info(
                "%s rejected response_format json_schema (%s); using json_object.",
                self.server,
                type(exc).__name__,
            )
            self._remember_format("json_object")
            return self._client.chat.completions.create(
                **{**kwargs, "response_format": _json_object(json_schema)}
            )
        except (openai.APIConnectionError, openai.RateLimitError):
            # Not an answer about the format: the ordinary request, with its retries.
            return self._client.chat.completions.create(
                **{**kwargs, "response_format": _json_schema(json_schema)}
            )
        self._remember_format("json_schema")
        return response

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIChatClient(model={self._model!r}, base_url={self.server!r})"

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("OpenAIChatClient holds an API key and is not picklable.")


def _json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": False},
    }


def _json_object(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_object", "schema": schema}


__all__ = [
    "ChatClient",
    "ChatResult",
    "LLMTransportError",
    "LLMUnavailableError",
    "Message",
    "OpenAIChatClient",
    "estimate_tokens",
]
