"""Markdown tables and number formats shared by the benchmark reports.

Every table of ``summary.md`` (headline, noise, sources, parallel, goals) is written by
:func:`markdown`, so they share one layout, and undefined numbers print as ``-`` everywhere.

Example:
    >>> print(markdown(["sampler", "beats"], [["tpe", pct(62.5)], ["soo", pct(float("nan"))]]))
    | sampler | beats |
    |---|---|
    | tpe | 62.5% |
    | soo | - |
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def markdown(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table: one ``| a | b |`` line per row under ``header``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def undefined(value: float | None) -> bool:
    """Whether ``value`` prints as ``-`` (None or NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def pct(value: float | None, signed: bool = False) -> str:
    """``62.5%`` (``+62.5%`` when ``signed``), ``-`` if undefined.

    >>> pct(-7.04, signed=True), pct(None)
    ('-7.0%', '-')
    """
    if value is None or undefined(value):
        return "-"
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


def num(value: float | None, digits: int = 2, suffix: str = "") -> str:
    """``value`` with ``digits`` decimals and ``suffix``, ``-`` if undefined.

    >>> num(1.4149, suffix="x"), num(14.06, 1, "x"), num(float("nan"))
    ('1.41x', '14.1x', '-')
    """
    if value is None or undefined(value):
        return "-"
    return f"{value:.{digits}f}{suffix}"
