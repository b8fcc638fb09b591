"""Turn an LLM's text into a valid Optuna configuration, or say precisely what is wrong.

Near misses are repaired and reported (so the trial is marked ``llm-repaired``): a number out
of range is clipped, an off-grid value is snapped to the step, ``"1e-3"`` or ``5.0`` is
coerced, a categorical answered by its string form (``"true"``, ``"None"``, ``"0.1"``) is
mapped to the choice. Everything else (no JSON, NaN/inf, a missing parameter, a categorical
that is not a choice) is an error whose message is fed back to the LLM.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

_MAX_SHOWN = 120  # characters of a bad value quoted back in an error


class InvalidAnswer(ValueError):
    """The answer cannot be used; ``str(err)`` is written for the LLM to correct itself."""


@dataclass
class Validated:
    params: dict[str, Any]
    repairs: list[str] = field(default_factory=list)


def extract_json(text: str) -> Any:
    """The JSON value in ``text``: the whole text, a fenced block, or the outermost ``{...}``."""
    candidates = [text.strip()]
    fenced = re.findall(r"```(?:json)?\s*(.*?)```", text, flags=re.DOTALL)
    candidates.extend(block.strip() for block in fenced)
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):
            continue
    raise InvalidAnswer(f"The answer is not valid JSON: {_shorten(text)}")


def config_from_answer(answer: Any) -> Mapping[str, Any]:
    """The configuration object inside a parsed answer (``{"config": {...}}`` or bare)."""
    if isinstance(answer, dict) and isinstance(answer.get("config"), dict):
        config: Mapping[str, Any] = answer["config"]
        return config
    if isinstance(answer, dict):
        return answer
    raise InvalidAnswer(f"Expected a JSON object with a 'config' object, got {_shorten(answer)}.")


def validate_config(
    raw: Mapping[str, Any], search_space: Mapping[str, BaseDistribution]
) -> Validated:
    """Validate and repair one configuration against ``search_space``."""
    errors: list[str] = []
    result = Validated(params={})
    for name, distribution in search_space.items():
        if name not in raw:
            errors.append(f"'{name}' is missing")
            continue
        try:
            value, repair = validate_value(raw[name], distribution)
        except InvalidAnswer as exc:
            errors.append(f"'{name}': {exc}")
            continue
        result.params[name] = value
        if repair:
            result.repairs.append(f"{name}: {repair}")
    extra = [k for k in raw if k not in search_space and k != "rationale"]
    if extra:
        result.repairs.append("ignored unknown keys " + _shorten(extra))
    if errors:
        raise InvalidAnswer("; ".join(errors))
    return result


def validate_value(value: Any, distribution: BaseDistribution) -> tuple[Any, str | None]:
    """A valid value for ``distribution`` and a note when it had to be repaired."""
    if isinstance(distribution, CategoricalDistribution):
        return _categorical(value, distribution)
    if isinstance(distribution, (FloatDistribution, IntDistribution)):
        return _numeric(value, distribution)
    raise InvalidAnswer(f"unsupported distribution {distribution!r}")


def _numeric(
    value: Any, distribution: FloatDistribution | IntDistribution
) -> tuple[float | int, str | None]:
    is_int = isinstance(distribution, IntDistribution)
    notes: list[str] = []
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise InvalidAnswer(
            f"expected a number in [{distribution.low}, {distribution.high}], got {_shorten(value)}"
        )
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise InvalidAnswer(f"expected a number, got the string {_shorten(value)}") from None
        notes.append(f"coerced string {_shorten(value)}")
    else:
        number = float(value)
    if not math.isfinite(number):
        raise InvalidAnswer(
            f"{number} is not a finite number; choose a value in "
            f"[{distribution.low}, {distribution.high}]"
        )
    low, high = distribution.low, distribution.high
    if number < low or number > high:
        notes.append(f"clipped {number:g} into [{low}, {high}]")
        number = min(max(number, low), high)
    step = distribution.step
    if step is not None:
        snapped = low + round((number - low) / step) * step
        snapped = min(max(snapped, low), high)
        if is_int:
            snapped = round(snapped)
            if snapped > high:
                snapped -= int(step)
        if not math.isclose(snapped, number, rel_tol=1e-9, abs_tol=1e-12):
            notes.append(f"snapped {number:g} to step {step}")
        number = snapped
    if is_int:
        return round(number), "; ".join(notes) or None
    return float(number), "; ".join(notes) or None


def _categorical(value: Any, distribution: CategoricalDistribution) -> tuple[Any, str | None]:
    choices = distribution.choices
    for choice in choices:  # exact match, type included (True is not 1)
        if type(choice) is type(value) and (choice == value or _both_nan(choice, value)):
            return choice, None
    for choice in choices:  # same number, other numeric type (2.0 for 2)
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and isinstance(choice, (int, float))
            and not isinstance(choice, bool)
            and value == choice
        ):
            return choice, f"mapped {value!r} to choice {choice!r}"
    text = value if isinstance(value, str) else json.dumps(value) if _jsonable(value) else None
    if text is not None:
        wanted = text.strip().lower()
        for choice in choices:
            forms = {str(choice).lower(), json.dumps(choice).lower() if _jsonable(choice) else ""}
            if wanted in forms:
                return choice, f"mapped {_shorten(value)} to choice {choice!r}"
    raise InvalidAnswer(f"{_shorten(value)} is not one of the choices {_shorten(list(choices))}")


def _both_nan(a: Any, b: Any) -> bool:
    return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _shorten(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + f"... ({len(text)} chars)"
