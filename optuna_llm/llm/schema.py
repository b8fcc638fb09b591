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


EXAMPLE_RATIONALE = "one short reason"
"""The rationale of the ask's example answer. A small model copies it word for word; a copy
is no reason, so it is stored as an empty rationale (the config still counts)."""


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


RATIONALE_ORDERS = ("first", "last", "none")


def answer_schema(
    search_space: Mapping[str, BaseDistribution], n_configs: int = 1, rationale: str = "first"
) -> JSONSchema:
    """Schema of a whole answer: one configuration (``config``) or ``n_configs`` of them
    (``configs``), with a ``rationale`` string before them (``"first"``: written before the
    numbers, reasoning first), after them (``"last"``: a small model spends its tokens on the
    numbers first) or not at all (``"none"``). Constrained decoding keeps the key order.

    Example:
        >>> from optuna.distributions import FloatDistribution
        >>> list(answer_schema({"x": FloatDistribution(0, 1)}, rationale="last")["properties"])
        ['config', 'rationale']
    """
    if rationale not in RATIONALE_ORDERS:
        raise ValueError(f"rationale must be one of {RATIONALE_ORDERS}, got {rationale!r}.")
    key = "config" if n_configs == 1 else "configs"
    body: JSONSchema = (
        config_schema(search_space)
        if n_configs == 1
        else {
            "type": "array",
            "items": config_schema(search_space),
            "minItems": n_configs,
            "maxItems": n_configs,
        }
    )
    text: JSONSchema = {"type": "string"}
    order = {"first": ["rationale", key], "last": [key, "rationale"], "none": [key]}[rationale]
    properties = {name: (body if name == key else text) for name in order}
    return {
        "type": "object",
        "properties": properties,
        "required": order,
        "additionalProperties": False,
    }


def _json_choice(choice: Any) -> Any:
    # Non-finite floats are not JSON; show them as strings (validation maps them back).
    if isinstance(choice, float) and not math.isfinite(choice):
        return str(choice)
    return choice
