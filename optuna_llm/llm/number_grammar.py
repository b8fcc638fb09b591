"""Grammar rules for numbers inside a range: what the embedded model may write for a bounded
integer or float of the answer schema.

llama-cpp-python turns a JSON schema into a grammar but ignores ``minimum`` and ``maximum``,
so the embedded model could write ``"depth": 16`` for a depth in ``[1, 3]`` or ``"alpha": 0``
for a log-scale ``alpha`` in ``[1e-08, 1]``, and lose the request to a refusal (docs/llm.md
counts them). The rules here make those answers impossible to write, as an enum already does
for a categorical:

- **Integers** (:func:`int_range_alternatives`): exactly the decimal integers in
  ``[low, high]``, no leading zero, built digit by digit (as llama.cpp's own converter does for
  an integer ``minimum``/``maximum``), so a range of a thousand values is a few alternatives.
- **Floats** (:func:`float_range_gbnf`): a close superset of ``[low, high]``, not an exact
  range. The sign is fixed by the bounds; the integer part is at most ``floor(high)`` (for
  ``high >= 1``, no fraction after ``floor(high)`` itself, so ``[0, 15]`` is exact at the top and
  ``[0, 256.5]`` loses only ``(256, 256.5]``); an exponent may only be negative (``1e-05``),
  which keeps a value under its upper bound. With ``high < 1`` a number may not pass the
  first digit of ``high`` in its decade (:func:`_below_one`): exactly ``high`` when that digit
  is all of it (``[1e-05, 0.1]``: the model wrote ``0.26`` and ``1.564938e-1``, now
  impossible), else up to the next digit (``0.039`` gets through for ``[1e-05, 0.03437]``).
  With ``low > 0`` (a log-scale range) zero cannot be written, and neither can a value below
  ``low``'s decade: for ``[1e-08, 1]`` the model wrote ``1e-10``, ``1e-110`` and ``0``, now
  impossible. What the rule lets through (``0.039`` above, ``3e-08`` for ``[5e-08, 1]``) is
  still checked by :mod:`optuna_llm.llm.validate`, which repairs a near miss and refuses the
  rest.
- **Digits** (floats): at most :data:`FRACTION_DIGITS` digits after the point, not counting
  the zeros that lead them, and an exponent of at most two digits. Gemma writes each digit as
  its own token, and unbounded it wrote 16-digit mantissas and exponents such as ``7e-300``
  for a range ``[-5, 5]``: such answers ran to 120-160 tokens, most of a proposal's time. Six
  digits are finer than any hyperparameter needs.

The rules use a small part of GBNF (quoted literals, character classes, groups, ``|``, ``?``
and ``{m,n}``) that :func:`gbnf_to_regex` turns into a Python regular expression, so the tests
check them against many numbers without a model.

Example:
    >>> import re
    >>> to_gbnf(int_range_alternatives(16, 1024))
    '[1] [6-9] | [2-9] [0-9] | [1-9] [0-9] [0-9] | [1] [0] [0-1] [0-9] | [1] [0] [2] [0-4]'
    >>> depth = gbnf_to_regex(to_gbnf(int_range_alternatives(1, 3)))
    >>> [bool(re.fullmatch(depth, s)) for s in ("1", "3", "4", "16", "01")]
    [True, True, False, False, False]
    >>> alpha = gbnf_to_regex(float_range_gbnf(1e-08, 1.0))
    >>> [bool(re.fullmatch(alpha, s)) for s in ("0.001", "1e-05", "1.0", "0", "1.5", "-1")]
    [True, True, True, False, False, False]
"""

from __future__ import annotations

import math
import re

Item = str
"""A character class such as ``[0-9]`` (the same text in GBNF and in a regex) or ``-``."""
Alternative = list[Item]

FRACTION_DIGITS = 6
"""Most digits after a float's point, not counting the zeros that lead them (``0.000123456``)."""

_SMALLEST_DECADE = 15
"""Most leading zeros after a float's point (``0.`` and 14 zeros, then a digit: 1e-15)."""

_MORE_DIGITS = f"[0-9]{{0,{FRACTION_DIGITS - 1}}}"
"""The digits that may follow a float's first significant digit."""


def _digit_strings(a: str, b: str) -> list[Alternative]:
    """Every digit string of ``len(a)`` digits between ``a`` and ``b`` (``a <= b``, same length,
    leading zeros allowed)."""
    if not a:
        return [[]]
    n = len(a) - 1
    if a[0] == b[0]:
        return [[f"[{a[0]}]", *rest] for rest in _digit_strings(a[1:], b[1:])]
    out: list[Alternative] = []
    first, last = int(a[0]), int(b[0])
    if a[1:] != "0" * n:  # a's first digit, then from a's tail up to 9...9
        out += [[f"[{a[0]}]", *rest] for rest in _digit_strings(a[1:], "9" * n)]
        first += 1
    tail: list[Alternative] = []
    if b[1:] != "9" * n:  # b's first digit, then from 0...0 up to b's tail
        tail = [[f"[{b[0]}]", *rest] for rest in _digit_strings("0" * n, b[1:])]
        last -= 1
    if first <= last:
        out.append([f"[{first}-{last}]", *(["[0-9]"] * n)])
    return out + tail


def _natural_range(low: int, high: int) -> list[Alternative]:
    """The decimal integers in ``[low, high]``, ``0 <= low``, no leading zero."""
    out: list[Alternative] = []
    for n in range(len(str(low)), len(str(high)) + 1):
        a = max(low, 10 ** (n - 1) if n > 1 else 0)
        b = min(high, 10**n - 1)
        if a <= b:
            out += _digit_strings(str(a), str(b))
    return out


def int_range_alternatives(low: int, high: int) -> list[Alternative]:
    """Exactly the integers in ``[low, high]`` as JSON writes them (``-`` for a negative one).

    Example:
        >>> to_gbnf(int_range_alternatives(1, 3))
        '[1-3]'
    """
    if low > high:
        raise ValueError(f"An integer range needs low <= high, got [{low}, {high}].")
    if low >= 0:
        return _natural_range(low, high)
    negative = [["-", *alt] for alt in _natural_range(max(1, -high), -low)]
    return negative + (_natural_range(0, high) if high >= 0 else [])


def _leading_digit(value: float) -> tuple[int, int, bool]:
    """``value``'s first significant digit, its decade and whether the digit is all of it:
    ``0.2`` is ``(2, -1, True)``, ``0.03437`` is ``(3, -2, False)``."""
    mantissa, exponent = f"{value:.12e}".split("e")
    return int(mantissa[0]), int(exponent), set(mantissa[2:]) <= {"0"}


def _below_one(upper: float, lower: float) -> str:
    """GBNF for a magnitude in about ``[lower, upper]`` with ``0 < upper < 1``: nothing above
    ``upper``'s first digit (exactly ``upper`` when that digit is all of it, as in ``0.1`` or
    ``2e-3``), nothing below ``lower``'s decade, and zero only where ``lower`` is 0."""
    top, decade, exact = _leading_digit(upper)
    zeros = -decade - 1  # zeros after the point before upper's first digit
    deepest = (-math.floor(math.log10(lower)) - 1) if lower > 0 else _SMALLEST_DECADE - 1
    rest = _MORE_DIGITS
    after_top = f"[0]{{0,{FRACTION_DIGITS - 1}}}" if exact else rest
    below_top = f"[1-{top - 1}]" if top > 2 else "[1]"
    first = [f"{below_top} {rest}"] if top > 1 else []
    in_decade = " | ".join([*first, f'"{top}" {after_top}'])
    decimals = [f'"{"0" * zeros}" ({in_decade})' if zeros else f"({in_decade})"]
    if deepest > zeros:  # the decades below upper's, down to lower's
        decimals.append(f"[0]{{{zeros + 1},{deepest}}} [1-9] {rest}")
    forms = [f'"0" "." ({" | ".join(decimals)})']
    if lower == 0:
        forms.append(f'"0" ("." [0]{{1,{_SMALLEST_DECADE}}})?')
    # scientific: upper's own decade with the same first digit, and the decades below it
    fraction = f'("." [0-9]{{1,{FRACTION_DIGITS}}})?'
    top_mantissa = " | ".join(
        [
            *([f"{below_top} {fraction}"] if top > 1 else []),
            f'"{top}" ("." [0]{{1,{FRACTION_DIGITS}}})?' if exact else f'"{top}" {fraction}',
        ]
    )
    forms.append(f'({top_mantissa}) [eE] "-" [0]{{0,2}} "{-decade}"')
    if deepest + 1 > -decade:
        exponents = to_gbnf(int_range_alternatives(-decade + 1, min(deepest + 1, 99)))
        forms.append(f'[1-9] {fraction} [eE] "-" [0]{{0,2}} ({exponents})')
    return f"({' | '.join(forms)})"


def _magnitude(upper: float, lower: float) -> str:
    """GBNF for a decimal magnitude in about ``[lower, upper]`` (``0 <= lower <= upper``; see
    the module docstring): a plain decimal, or a digit with a negative exponent (``1e-05``).
    With ``lower > 0`` zero cannot be written, and neither can leading zeros or an exponent
    that go below ``lower``'s decade."""
    if upper == 0:
        return f'("0" ("." [0]{{1,{FRACTION_DIGITS}}})?)'
    if upper < 1:
        return _below_one(upper, lower)
    whole = math.floor(upper)
    # leading zeros, then a last zero or the significant digits: one way to read each string
    fraction = f'"." [0]{{0,{_SMALLEST_DECADE - 1}}} ([0] | [1-9] {_MORE_DIGITS})'
    if lower > 0:
        # lower's decade is [10**-decades, 10**-decades * 10): nothing below it can be written
        decades = -math.floor(math.log10(lower)) if lower < 1 else 0
        zeros = f"[0]{{0,{decades - 1}}} " if decades >= 2 else ""
        small = f'"0" "." {zeros}[1-9] {_MORE_DIGITS}' if decades >= 1 else None
        exponent = (
            f'[eE] "-" [0]{{0,2}} ({to_gbnf(int_range_alternatives(1, decades))})'
            if decades >= 1
            else None
        )
    else:
        small = f'"0" ({fraction})?'
        exponent = '[eE] "-" [0-9]{1,2}'
    forms = [small] if small else []
    first = max(1, math.floor(lower))
    if whole - 1 >= first:
        forms.append(f"({to_gbnf(int_range_alternatives(first, whole - 1))}) ({fraction})?")
    if whole >= 1:
        forms.append(f'"{whole}" ("." [0]{{1,{FRACTION_DIGITS}}})?')
    plain = " | ".join(forms)
    if lower == 0:  # an exponent only makes a value smaller: any, on any form
        return f"(({plain}) ({exponent})? | [1-9] ({fraction})? {exponent})"
    if exponent is None:
        return f"({plain})"
    # ... a positive lower bound: the exponent only on a leading digit, within its decades
    return f"({plain} | [1-9] ({fraction})? {exponent})"


def float_range_gbnf(low: float, high: float) -> str:
    """GBNF for a JSON number close to ``[low, high]`` (see the module docstring).

    Example:
        >>> import llama_cpp
        >>> rule = float_range_gbnf(1e-08, 1.0)
        >>> grammar = llama_cpp.LlamaGrammar.from_string(f"root ::= {rule}", verbose=False)
    """
    if not low <= high:
        raise ValueError(f"A float range needs low <= high, got [{low}, {high}].")
    parts = []
    if high >= 0:
        parts.append(_magnitude(high, max(low, 0.0)))
    if low < 0:  # "-" and a magnitude up to -low (down to -high when high < 0; never -0)
        parts.append(f'"-" {_magnitude(-low, -high if high < 0 else 10.0**-_SMALLEST_DECADE)}')
    return parts[0] if len(parts) == 1 else f"({' | '.join(parts)})"


def to_gbnf(alternatives: list[Alternative]) -> str:
    """The alternatives as one GBNF expression.

    Example:
        >>> to_gbnf(int_range_alternatives(-1, 1))
        '"-" [1] | [0-1]'
    """
    return " | ".join(
        " ".join(f'"{item}"' if item == "-" else item for item in alt) for alt in alternatives
    )


def gbnf_to_regex(expr: str) -> str:
    """A rule of this module (quoted literals, character classes, groups, ``|``, ``?`` and
    ``{m,n}``, nothing else) as the Python regular expression that matches the same strings,
    so that tests can check it on many numbers without a model.

    Example:
        >>> import re
        >>> bool(re.fullmatch(gbnf_to_regex('"-" ([1-9] | "0")?'), "-7"))
        True
    """
    out: list[str] = []
    i = 0
    while i < len(expr):
        c = expr[i]
        if c == '"':
            j = expr.index('"', i + 1)
            out.append(re.escape(expr[i + 1 : j]))
            i = j + 1
            continue
        if c == "[":
            j = expr.index("]", i)
            out.append(expr[i : j + 1])
            i = j + 1
            continue
        if c == "(":
            out.append("(?:")
        elif c != " ":
            out.append(c)  # ) | ? { } , and the digits of {m,n}
        i += 1
    return "".join(out)
