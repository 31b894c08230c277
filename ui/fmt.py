"""Text for numbers on the pages: percent, plain numbers, money, and Markdown-safe text.

Every formatter shows a missing value (None or NaN) as an em dash ``—``, never ``nan``.

Examples
--------
>>> pct(0.1234), pct(None), num(2.5), num(float("nan")), num(3, "{:g} turns")
('12.3%', '—', '2.5', '—', '3 turns')
>>> money(-1234.5), money(1234.5, 0), by_unit(2.5, "multiple")
('-$1,234.50', '$1,234', '2.50×')
"""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["MISSING", "missing", "pct", "num", "money", "by_unit", "plain"]

#: What a missing value shows as.
MISSING = "—"


def missing(value) -> bool:
    """True for None and NaN (and pandas' NA / NaT)."""
    return value is None or bool(pd.isna(value))


def pct(value) -> str:
    """A rate in [0, 1] as a percent with one decimal: ``0.1234`` -> ``12.3%``."""
    return MISSING if missing(value) else f"{value:.1%}"


def num(value, fmt: str = "{:.1f}") -> str:
    """A number through ``fmt`` (a ``str.format`` pattern, one decimal by default)."""
    return MISSING if missing(value) else fmt.format(value)


def money(value, decimals: int = 2) -> str:
    """An amount in dollars with thousands separators, the sign before the ``$``: ``-$1,234.50``."""
    if missing(value):
        return MISSING
    return f"{'-' if value < 0 else ''}${abs(value):,.{decimals}f}"


def by_unit(value, unit: str) -> str:
    """A value in its unit: ``money`` (cents), ``money/month`` (whole dollars), ``multiple`` (``2.50×``),
    ``fraction`` (percent, two decimals), ``months``; anything else as a whole number."""
    if missing(value):
        return MISSING
    if unit == "money":
        return money(value)
    if unit == "money/month":
        return money(value, 0)
    if unit == "multiple":
        return f"{value:,.2f}×"
    if unit == "fraction":
        return f"{value:.2%}"
    if unit == "months":
        return f"{value:,.1f} months"
    return f"{value:,.0f}"


def plain(text) -> str:
    """Escape Markdown so rules, regexes and user text are shown literally.

    Examples
    --------
    >>> plain("user~price|cost")
    'user\\\\~price\\\\|cost'
    """
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", str(text))


def literal(text) -> str:
    """Escape only what Markdown, Streamlit icons and LaTeX act on, so user text (file and column names,
    dataset names, bad values) is shown as typed; ordinary punctuation is left readable.

    Examples
    --------
    >>> print(literal("**x** :material/home: $1 <b>"))
    \\*\\*x\\*\\* &#58;material/home&#58; \\$1 \\<b\\>
    """
    escaped = re.sub(r"([\\`*_\[\]<>$~|#])", r"\\\1", str(text))
    return escaped.replace(":", "&#58;")  # an entity, so ':material/x:' is never read as an icon
