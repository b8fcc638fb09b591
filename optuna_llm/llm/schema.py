"""JSON Schema for an LLM's answer, built from Optuna distributions.

The schema is a help for constrained decoding, never a guarantee: llama.cpp's grammar ignores
``minimum``/``maximum`` and some servers ignore the schema altogether, so every answer is
validated again by :mod:`optuna_llm.llm.validate`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

JSONSchema = dict[str, Any]


def distribution_schema(distribution: BaseDistribution) -> JSONSchema:
    """Schema of one parameter value."""
    if isinstance(distribution, CategoricalDistribution):
        return {"enum": [_json_choice(c) for c in distribution.choices]}
    if isinstance(distribution, IntDistribution):
        return {"type": "integer", "minimum": distribution.low, "maximum": distribution.high}
    if isinstance(distribution, FloatDistribution):
        return {"type": "number", "minimum": distribution.low, "maximum": distribution.high}
    raise TypeError(f"Unsupported distribution {distribution!r}.")


def config_schema(search_space: Mapping[str, BaseDistribution]) -> JSONSchema:
    """Schema of one configuration: an object with exactly the parameters as keys."""
    return {
        "type": "object",
        "properties": {name: distribution_schema(d) for name, d in search_space.items()},
        "required": list(search_space),
        "additionalProperties": False,
    }


def answer_schema(search_space: Mapping[str, BaseDistribution], n_configs: int = 1) -> JSONSchema:
    """Schema of a whole answer: a rationale first (so it is written before the numbers), then
    one configuration (``config``) or ``n_configs`` of them (``configs``)."""
    properties: dict[str, Any] = {"rationale": {"type": "string"}}
    if n_configs == 1:
        properties["config"] = config_schema(search_space)
        required = ["rationale", "config"]
    else:
        properties["configs"] = {
            "type": "array",
            "items": config_schema(search_space),
            "minItems": n_configs,
            "maxItems": n_configs,
        }
        required = ["rationale", "configs"]
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _json_choice(choice: Any) -> Any:
    # Non-finite floats are not JSON; show them as strings (validation maps them back).
    if isinstance(choice, float) and not math.isfinite(choice):
        return str(choice)
    return choice
