"""Samplers Optuna lacks, usable in any study: ``optuna.create_study(sampler=LLMSampler())``.

Imports are lazy so that ``import optuna_llm.samplers`` stays cheap and a sampler whose extra
is not installed only fails when it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna_llm.samplers._bamsoo import BaMSOOSampler
    from optuna_llm.samplers._factory import make_sampler
    from optuna_llm.samplers._lhs import LatinHypercubeSampler
    from optuna_llm.samplers._llm import LLMSampler
    from optuna_llm.samplers._llm_guided import LLMGuidedSampler
    from optuna_llm.samplers._seeded import LLMSeededSampler
    from optuna_llm.samplers._soo import SOOSampler

_LAZY = {
    "LLMSampler": "optuna_llm.samplers._llm",
    "LLMGuidedSampler": "optuna_llm.samplers._llm_guided",
    "SOOSampler": "optuna_llm.samplers._soo",
    "BaMSOOSampler": "optuna_llm.samplers._bamsoo",
    "LatinHypercubeSampler": "optuna_llm.samplers._lhs",
    "LLMSeededSampler": "optuna_llm.samplers._seeded",
    "make_sampler": "optuna_llm.samplers._factory",
}

__all__ = [
    "BaMSOOSampler",
    "LLMGuidedSampler",
    "LLMSampler",
    "LLMSeededSampler",
    "LatinHypercubeSampler",
    "SOOSampler",
    "make_sampler",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
