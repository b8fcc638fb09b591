"""Record/replay of LLM exchanges, so a study reruns bit-for-bit without the LLM.

Each exchange is keyed by a SHA-256 of (model, messages, request parameters) and appended as one
JSON line to a file. Several processes may share the file: appends take an exclusive lock and
readers pick up other writers' lines on a miss. The API key is never part of an entry.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optuna_llm.llm.base import CacheMissError, ChatClient, ChatResult, Message

_MODES = ("auto", "replay", "record")


def exchange_key(model: str, messages: list[Message], params: dict[str, Any]) -> str:
    """Hash of everything that determines an answer."""
    blob = json.dumps(
        {"model": model, "messages": messages, "params": params},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class LLMCache:
    """A JSON-lines file of recorded exchanges.

    Args:
        path: The file; created on the first recorded exchange.
        mode: ``"auto"`` replays hits and records misses; ``"replay"`` replays only and raises
            :class:`CacheMissError` on a miss (use it to check a study reruns without the LLM);
            ``"record"`` always asks the LLM and records the answer.

    Example:
        >>> from optuna_llm.samplers import LLMSampler
        >>> sampler = LLMSampler(cache=LLMCache("llm-cache.jsonl", mode="auto"))  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str], mode: str = "auto") -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}.")
        self.path = Path(path)
        self.mode = mode
        self._entries: dict[str, dict[str, Any]] = {}
        self._offset = 0
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        # Only consume complete lines; a concurrent writer may be mid-line.
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            if line.strip():
                entry = json.loads(line)
                self._entries[entry["key"]] = entry
        self._offset += end

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            if key not in self._entries:
                self._refresh()
            return self._entries.get(key)

    def put(self, key: str, entry: dict[str, Any]) -> None:
        entry = {"key": key, **entry}
        line = (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    f.write(line)
                    f.flush()
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
            self._entries[key] = entry

    def __len__(self) -> int:
        with self._lock:
            self._refresh()
            return len(self._entries)


class CachingClient:
    """A :class:`ChatClient` that answers from an :class:`LLMCache` when it can.

    The inner client is built only on the first miss, so a complete replay needs no network,
    no key and no model file. Exchanges are keyed by ``model`` as given (``""`` when the
    server's default model is used), never by a name looked up on the server: a replay with
    the server stopped finds every recorded answer. ``enforces_schema`` is the inner client's
    (given, as the inner client is not built for a replay).
    """

    def __init__(
        self,
        build: Callable[[], ChatClient],
        cache: LLMCache,
        *,
        model: str | None = None,
        enforces_schema: bool = False,
    ) -> None:
        self._build = build
        self.enforces_schema = enforces_schema
        self._inner: ChatClient | None = None
        self.cache = cache
        self._model = model or ""

    def _client(self) -> ChatClient:
        if self._inner is None:
            self._inner = self._build()
        return self._inner

    @property
    def model(self) -> str:
        return self._model

    def chat(
        self,
        messages: list[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> ChatResult:
        params = {
            "json_schema": json_schema,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "seed": seed,
        }
        key = exchange_key(self.model, messages, params)
        if self.cache.mode != "record":
            entry = self.cache.get(key)
            if entry is not None:
                r = entry["response"]
                return ChatResult(
                    r["text"], r["prompt_tokens"], r["completion_tokens"], r["model"], cached=True
                )
            if self.cache.mode == "replay":
                raise CacheMissError(
                    f"LLM exchange {key[:12]} is not in the replay cache {self.cache.path}. "
                    "Rerun with mode='auto' (the default) to ask the LLM and record it."
                )
        result = self._client().chat(
            messages,
            json_schema=json_schema,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
        )
        self.cache.put(
            key,
            {
                "model": self.model,
                "request": {"messages": messages, **params},
                "response": {
                    "text": result.text,
                    "prompt_tokens": result.prompt_tokens,
                    "completion_tokens": result.completion_tokens,
                    "model": result.model,
                },
            },
        )
        return result


__all__ = ["CacheMissError", "CachingClient", "LLMCache", "exchange_key"]
