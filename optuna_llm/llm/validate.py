"""Turn an LLM's text into a valid Optuna configuration, or say precisely what is wrong.

Only near misses are repaired, and each repair is reported (the trial is then marked
``llm-repaired``):

- a type coercion: ``"1e-3"`` for a float, ``5.0`` for an integer, a categorical answered by
  its string form (``"true"``, ``"None"``, ``"0.1"``);
- a rounding: ``3.4`` for an integer, an off-grid value snapped to the step;
- a value at most :data:`NEAR_MISS` (5 %) of the range's width outside the range (on a log
  scale also at most 5 % of the log range's width, and positive): clipped to the bound.

Everything else is refused with a message fed back to the LLM, and the answer is never used:
no JSON, NaN/inf, a number too large for a float (a 400-digit integer), a value further out of
range (``learning_rate: 1e15`` for ``[1e-5, 0.1]``), a missing parameter, a categorical that
is not a choice.

Example:
    >>> from optuna.distributions import FloatDistribution
    >>> validate_value(1.02, FloatDistribution(0.0, 1.0))
    (1.0, 'clipped 1.02 into [0.0, 1.0]')
    >>> validate_value(1.5, FloatDistribution(0.0, 1.0))
    Traceback (most recent call last):
    ...
    optuna_llm.llm.validate.InvalidAnswer: 1.5 is outside [0.0, 1.0]; choose a value in that range
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

NEAR_MISS = 0.05
"""The largest miss outside a numeric range that is repaired, as a fraction of its width."""


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
        try:
            number = float(value)
        except (OverflowError, TypeError, ValueError):
            raise InvalidAnswer(
                f"{_shorten(value)} is not a usable number; choose a value in "
                f"[{distribution.low}, {distribution.high}]"
            ) from None
    if not math.isfinite(number):
        raise InvalidAnswer(
            f"{_shorten(value)} is not a finite number; choose a value in "
            f"[{distribution.low}, {distribution.high}]"
        )
    low, high = distribution.low, distribution.high
    if number < low or number > high:
        if not _near_miss(number, distribution):
            raise InvalidAnswer(
                f"{number:g} is outside [{low}, {high}]; choose a value in that range"
            )
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
        rounded = round(number)
        if rounded != number:
            notes.append(f"rounded {number:g} to {rounded}")
        return rounded, "; ".join(notes) or None
    return float(number), "; ".join(notes) or None


def _near_miss(number: float, distribution: FloatDistribution | IntDistribution) -> bool:
    """Whether ``number``, outside the range, is within :data:`NEAR_MISS` of it."""
    low, high = float(distribution.low), float(distribution.high)
    width = high - low
    miss = low - number if number < low else number - high
    if width <= 0:
        return miss <= NEAR_MISS * max(abs(low), 1e-12)
    if miss > NEAR_MISS * width:
        return False
    if distribution.log:
        if number <= 0:
            return False
        log_width = math.log(high) - math.log(low)
        log_miss = math.log(low) - math.log(number) if number < low else math.log(number / high)
        return log_width <= 0 or log_miss <= NEAR_MISS * log_width
    return True


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
    text = value if isinstance(value, str) else json.dumps(value) if jsonable(value) else None
    if text is not None:
        wanted = text.strip().lower()
        for choice in choices:
            forms = {str(choice).lower(), json.dumps(choice).lower() if jsonable(choice) else ""}
            if wanted in forms:
                return choice, f"mapped {_shorten(value)} to choice {choice!r}"
    raise InvalidAnswer(f"{_shorten(value)} is not one of the choices {_shorten(list(choices))}")


def _both_nan(a: Any, b: Any) -> bool:
    return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)


def jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _shorten(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + f"... ({len(text)} chars)"
