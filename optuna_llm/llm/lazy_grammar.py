"""A grammar that checks the model's likeliest tokens first: the embedded model's answer
grammar at about half the cost a token.

llama-cpp-python puts the grammar first in its sampler chain, so at every token it checks all
of Gemma 3's 262,144 vocabulary entries against the grammar before ``top_k`` keeps 40 of them.
On this machine's 2-core CPU that doubled a token's time (one thread, the answer schema of
``scripts/llm_prompt_size.py``: 73-83 ms a token with the grammar, 39 without).
:class:`LazyGrammar` is a logits processor that does what llama.cpp's own ``common_sampler``
does instead: check the raw distribution's :data:`TOP` likeliest tokens, and the whole
vocabulary only when none of them is allowed (about twice an answer, measured: 43 ms a token).
Every other token's logit becomes ``-inf``, and llama.cpp's chain (top_k 40, top_p, min_p,
temperature, the seeded draw) samples from what is left, so:

- at temperature 0 the answer is the same, token for token: the likeliest allowed token is
  among the likeliest :data:`TOP` whenever any allowed token is;
- at a temperature the draw is among the allowed tokens of the raw top :data:`TOP` (then
  top_k 40 of those), not among all allowed tokens; what that leaves out is below the 256th
  likeliest token of the vocabulary.

The processor advances its grammar with each token the model has taken (it sees them in the
next call's ``input_ids``), so it serves one completion: build one per request.

Example:
    >>> import numpy as np
    >>> TOP
    256
    >>> top_tokens(np.array([0.1, 3.0, -1.0, 2.0], dtype=np.float32), 2).tolist()
    [1, 3]
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import numpy.typing as npt

TOP = 256
"""How many of the likeliest tokens are checked before the whole vocabulary."""

_TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)
"""The layout of llama.cpp's ``llama_token_data``."""


def top_tokens(logits: npt.NDArray[np.floating[Any]], k: int) -> npt.NDArray[np.intc]:
    """The ids of the ``k`` largest logits, largest first."""
    k = min(k, logits.size)
    ids = np.argpartition(logits, -k)[-k:]
    return ids[np.argsort(-logits[ids], kind="stable")].astype(np.intc)


class LazyGrammar:
    """A llama-cpp-python logits processor that keeps only the tokens ``grammar`` allows (see
    the module docstring). ``llama`` is the ``llama_cpp.Llama`` that will generate,
    ``grammar`` a ``llama_cpp.LlamaGrammar``. Call :meth:`close` when the completion is done."""

    def __init__(self, llama: Any, grammar: Any, top: int = TOP) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        self._sampler = llama_cpp.llama_sampler_init_grammar(
            llama._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        if not self._sampler:
            raise ValueError("llama.cpp could not build a sampler for the answer grammar.")
        self._top = top
        self._seen: int | None = None

    def _allowed(
        self, ids: npt.NDArray[np.intc], logits: npt.NDArray[np.floating[Any]]
    ) -> npt.NDArray[np.intc]:
        data = np.zeros(ids.size, dtype=_TOKEN_DATA)
        data["id"] = ids
        data["logit"] = logits[ids]
        lcpp = self._llama_cpp
        candidates = lcpp.llama_token_data_array(
            data=data.ctypes.data_as(lcpp.llama_token_data_p),
            size=ids.size,
            selected=-1,
            sorted=False,
        )
        lcpp.llama_sampler_apply(self._sampler, ctypes.byref(candidates))
        return data["id"][np.isfinite(data["logit"])]

    def __call__(
        self, input_ids: npt.NDArray[np.intc], logits: npt.NDArray[np.floating[Any]]
    ) -> npt.NDArray[np.floating[Any]]:
        if self._sampler is None:
            raise RuntimeError("This LazyGrammar is closed; build one per completion.")
        if self._seen is None:  # the first call sees the prompt: nothing generated yet
            self._seen = len(input_ids)
        for token in input_ids[self._seen :]:
            self._llama_cpp.llama_sampler_accept(self._sampler, int(token))
        self._seen = len(input_ids)
        allowed = self._allowed(top_tokens(logits, self._top), logits)
        if allowed.size == 0:
            allowed = self._allowed(np.arange(logits.size, dtype=np.intc), logits)
        out = np.full_like(logits, -np.inf)
        out[allowed] = logits[allowed]
        return out

    def close(self) -> None:
        """Free llama.cpp's sampler (idempotent)."""
        if self._sampler is not None:
            self._llama_cpp.llama_sampler_free(self._sampler)
            self._sampler = None
