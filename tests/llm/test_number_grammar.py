"""The range rules of the answer grammar (``optuna_llm.llm.number_grammar``), checked as
regular expressions against many numbers; the embedded model writing inside them is in
``test_llm_embedded.py``."""

from __future__ import annotations

import math
import re

import llama_cpp
import numpy as np
import pytest

from optuna_llm.llm.number_grammar import (
    float_range_gbnf,
    gbnf_to_regex,
    int_range_alternatives,
    to_gbnf,
)

INT_RANGES = [(0, 0), (1, 3), (4, 256), (16, 1024), (0, 9), (10, 99), (7, 1000), (-3, 12),
              (-120, -5), (-1, 0), (123, 4567), (99, 101)]  # fmt: skip
FLOAT_RANGES = [(1e-08, 1.0), (-5.0, 10.0), (0.0, 15.0), (1e-05, 0.03437), (4.0, 256.5),
                (-3.0, -1.0), (0.0, 0.2), (2.455e-05, 0.0122), (-1e-3, 1e-3)]  # fmt: skip


def int_regex(low: int, high: int) -> re.Pattern[str]:
    return re.compile(gbnf_to_regex(to_gbnf(int_range_alternatives(low, high))))


@pytest.mark.parametrize(("low", "high"), INT_RANGES)
def test_an_integer_rule_matches_exactly_the_integers_of_its_range(low: int, high: int) -> None:
    pattern = int_regex(low, high)
    for n in range(low - 300, high + 300):
        assert bool(pattern.fullmatch(str(n))) == (low <= n <= high), n
    for text in ("", "-", "+5", "1.0", f"0{max(low, 1)}", "-0", "1e1"):  # not JSON integers
        assert not pattern.fullmatch(text), text


@pytest.mark.parametrize(("low", "high"), INT_RANGES)
def test_an_integer_rule_is_a_grammar_llama_cpp_accepts(low: int, high: int) -> None:
    llama_cpp.LlamaGrammar.from_string(
        f"root ::= {to_gbnf(int_range_alternatives(low, high))}", verbose=False
    )


def test_an_empty_range_is_refused_with_both_bounds() -> None:
    with pytest.raises(ValueError, match=r"\[5, 4\]"):
        int_range_alternatives(5, 4)
    with pytest.raises(ValueError, match="low <= high"):
        float_range_gbnf(1.0, 0.5)


def written(value: float) -> list[str]:
    """How a model (or printf) writes ``value``: fixed and general notation, no + exponent."""
    forms = [f"{value:.4f}", f"{value:.6g}", f"{value:.2e}", repr(round(value, 6))]
    return [f for f in forms if "e+" not in f and "inf" not in f]


@pytest.mark.parametrize(("low", "high"), FLOAT_RANGES)
def test_a_float_rule_lets_the_range_be_written(low: float, high: float) -> None:
    pattern = re.compile(gbnf_to_regex(float_range_gbnf(low, high)))
    rng = np.random.default_rng(0)
    values = list(rng.uniform(low, high, 300))
    if low > 0:
        values += list(np.exp(rng.uniform(math.log(low), math.log(high), 300)))
    reachable_top = math.floor(high) if high >= 1 else high  # (floor(high), high] is left out
    for value in values:
        for text in written(float(value)):
            v = float(text)
            if not low <= v <= reachable_top or (v == 0 and low > 0) or text.startswith("-0"):
                continue  # rounded out of the range, or a form the rule leaves to validation
            assert pattern.fullmatch(text), (text, low, high)


@pytest.mark.parametrize(("low", "high"), FLOAT_RANGES)
def test_a_float_rule_keeps_sign_zero_and_top_inside(low: float, high: float) -> None:
    pattern = re.compile(gbnf_to_regex(float_range_gbnf(low, high)))
    candidates = ["0", "0.0", "1", "1.5", "-1", "-0.5", "10", "15", "16", "45", "100", "1000",
                  "1e-05", "5e-3", "1e5", "1e+2", "256", "256.4", "257", "-4", "-5.5", "-6",
                  "0.000001", "2.5", "-2.5", "3.0", "-3.0", "9.99", "1e-10", "1e-110",
                  "1e-09", "1.5e-6", "0.0000000001", "1e-08", "-0", "-0.0", "1e-0"]  # fmt: skip
    for text in candidates:
        if not pattern.fullmatch(text):
            continue
        v = float(text)
        assert v >= 0 or low < 0, text  # no sign a range without negatives cannot have
        assert v <= 0 or high > 0, text
        assert v != 0 or low <= 0, text  # zero only where the range holds it (not log scale)
        if low > 0:  # nothing below the lower bound's decade (1e-10 for [1e-08, 1])
            assert v >= 10 ** math.floor(math.log10(low)), text
        assert v <= max(high, 1.0) and v >= min(low, -1.0), text  # no integer part too large
        assert "e+" not in text and not re.search(r"e\d", text), text  # no positive exponent


def test_a_float_rule_is_a_grammar_llama_cpp_accepts() -> None:
    for low, high in FLOAT_RANGES:
        llama_cpp.LlamaGrammar.from_string(f"root ::= {float_range_gbnf(low, high)}", verbose=False)


@pytest.mark.parametrize(("low", "high"), [(-5.0, 5.0), (0.0, 0.2), (1e-08, 1.0), (1e-05, 0.1)])
def test_a_float_rule_stops_six_digits_after_the_leading_zeros(low: float, high: float) -> None:
    pattern = re.compile(gbnf_to_regex(float_range_gbnf(low, high)))
    for text in ("0.0123456", "0.00123456", "1.234567e-05", "0.05"):
        assert pattern.fullmatch(text), (text, low, high)
    for text in ("0.1234567", "0.0012345678", "1.2345678e-05", "0.1234567890123456", "5e-300"):
        assert not pattern.fullmatch(text), (text, low, high)
        assert not pattern.fullmatch("-" + text), (text, low, high)


@pytest.mark.parametrize(
    ("low", "high"), [(1e-05, 0.1), (0.0, 0.2), (1e-05, 0.03437), (-1e-3, 1e-3), (2e-4, 0.005)]
)
def test_a_float_rule_below_one_stops_at_the_upper_bounds_first_digit(
    low: float, high: float
) -> None:
    """The model wrote 0.26 and 1.564938e-1 for a weight decay in [1e-05, 0.1]: each cost a
    request. Below 1 a number may not pass the upper bound's first digit (exactly the bound
    when that digit is all of it, as in 0.1 or 0.2)."""
    pattern = re.compile(gbnf_to_regex(float_range_gbnf(low, high)))
    mantissa, exponent = f"{high:e}".split("e")
    ceiling = (
        high
        if float(mantissa) == int(float(mantissa))
        else (int(mantissa[0]) + 1) * 10.0 ** int(exponent)
    )
    rng = np.random.default_rng(1)
    texts = ["0.26", "1.564938e-1", "0.15", "0.1", "0.2", "0.21", "2e-1", "2.0e-1", "0.0999",
             "0.034", "0.039", "0.04", "4e-2", "3.9e-2", "0.001", "0.0011", "1.1e-3", "1e-3",
             "0.005", "0.0051", "5e-3", "5.1e-3", "9e-3", "0.0002", "1e-4"]  # fmt: skip
    texts += [form for v in rng.uniform(0, 1.2 * ceiling, 300) for form in written(float(v))]
    for text in texts:
        if pattern.fullmatch(text):
            assert abs(float(text)) <= ceiling * (1 + 1e-12), (text, low, high)
    for text in written(high * 0.999) + written(high) + written(max(low, high / 7)):
        if float(text) <= high:
            assert pattern.fullmatch(text), (text, low, high)  # the top of the range stays
