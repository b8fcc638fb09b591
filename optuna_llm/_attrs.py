"""Names of the trial attributes our samplers write, and the one helper that writes them.

User attrs are what optuna-dashboard shows; system attrs are for the samplers themselves.
Every trial one of our samplers proposes carries ``source`` (who chose its parameters).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial

SOURCE = "source"
"""User attr: who chose the parameters (``llm``, ``llm-repaired``, ``fallback:<sampler>``,
``soo``, ``bamsoo``, ``lhs``, or the base sampler's name)."""

RATIONALE = "rationale"
NODE = "node"
DEPTH = "depth"


def set_user_attrs(study: optuna.Study, trial: FrozenTrial, attrs: Mapping[str, Any]) -> None:
    """Write ``attrs`` as user attrs of ``trial`` straight to the study's storage.

    Samplers only see a :class:`~optuna.trial.FrozenTrial`; this writes through the storage as
    Optuna's own samplers do for system attrs, so the values are visible to every worker and
    to optuna-dashboard.
    """
    for key, value in attrs.items():
        study._storage.set_trial_user_attr(trial._trial_id, key, value)


def set_system_attrs(study: optuna.Study, trial: FrozenTrial, attrs: Mapping[str, Any]) -> None:
    """Write ``attrs`` as system attrs of ``trial`` (sampler bookkeeping, not for display)."""
    for key, value in attrs.items():
        study._storage.set_trial_system_attr(trial._trial_id, key, value)


def sampler_name(sampler: optuna.samplers.BaseSampler) -> str:
    """Short name used in ``source`` for a sampler we delegate to, e.g. ``tpe`` or ``random``."""
    name = type(sampler).__name__
    if name.endswith("Sampler"):
        name = name[: -len("Sampler")]
    return name.lower() or "sampler"
