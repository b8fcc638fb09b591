"""Objectives to tune: image classification (CIFAR-10 ResNet-9/ViT, digits), toy functions
with known optima, and code as a hyperparameter (analysis lives in :mod:`optuna_llm.analysis`).

Imports are lazy: ``import optuna_llm.objectives`` does not import torch.

Example:
    >>> import optuna
    >>> from optuna_llm.objectives import TOY_FUNCTIONS
    >>> study = optuna.create_study()
    >>> study.optimize(TOY_FUNCTIONS["branin"].objective, n_trials=10)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna_llm.objectives.image_classification import (
        DEFAULT_SEARCH_SPACE,
        ImageClassificationObjective,
        load_search_space,
    )
    from optuna_llm.objectives.toy import TOY_FUNCTIONS, ToyFunction, make_quadratic

_LAZY = {
    "ImageClassificationObjective": "optuna_llm.objectives.image_classification",
    "DEFAULT_SEARCH_SPACE": "optuna_llm.objectives.image_classification",
    "load_search_space": "optuna_llm.objectives.image_classification",
    "TOY_FUNCTIONS": "optuna_llm.objectives.toy",
    "ToyFunction": "optuna_llm.objectives.toy",
    "make_quadratic": "optuna_llm.objectives.toy",
}

__all__ = [
    "DEFAULT_SEARCH_SPACE",
    "TOY_FUNCTIONS",
    "ImageClassificationObjective",
    "ToyFunction",
    "load_search_space",
    "make_quadratic",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'optuna_llm.objectives' has no attribute {name!r}")
