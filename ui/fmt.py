"""Text for the pages: percent, plain numbers, money, and :func:`literal`, the one Markdown escape.

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

__all__ = ["MISSING", "missing", "pct", "num", "money", "by_unit", "literal", "harden_markdown", "WORD_JOINER"]

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


#: U+2060 WORD JOINER: invisible and never a line break. :func:`literal` puts it inside the character sequences
#: that Streamlit finds in the raw Markdown source, or that remark finds again in the *decoded* text, where no
#: backslash escape reaches.
WORD_JOINER = "\u2060"

_NEWLINES = re.compile(r"\r\n|[\n\r\v\f\x85\u2028\u2029]")
#: GFM autolink literals (``scheme://``, ``www.``, ``user@host``), shortcodes (``:smile:``, ``:streamlit:``),
#: Streamlit's ``:material/…`` rewrite and its typographic replacements (`` -> `` becomes an arrow).
_BREAK_URL = re.compile(r"(?<=:)(?=//)")
_BREAK_WWW = re.compile(r"(?i)(?<=www)(?=\.)")
_BREAK_AT = re.compile(r"(?<=@)(?=\S)")
_BREAK_SHORTCODE = re.compile(r"(?<=:)(?=[\w+\-]+:)")
#: Streamlit rewrites ``:material/`` to ``:material_`` in the raw source, then draws ``:material_name:`` found in
#: the decoded text as an icon: the slash is escaped (``:material\/``), the underscore form gets a joiner.
_BREAK_MATERIAL = re.compile(r"(?<=:)(?=material_)")
_MATERIAL_SLASH = re.compile(r"(?<=:material)/")
_BREAKS = (_BREAK_URL, _BREAK_WWW, _BREAK_AT, _BREAK_SHORTCODE, _BREAK_MATERIAL)
_BREAK_SYMBOL = re.compile(r"(?<!\S)(?:<->|->|<-|--|>=|<=|~=)(?!\S)")
#: Characters Markdown (GFM), KaTeX and HTML act on anywhere in a line.
_SPECIAL = re.compile(r"([\\`*\[\]<$~|&])")
#: ``_`` except inside a word (``lead_rate``), where CommonMark never reads it as emphasis.
_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
#: Block markers that only count at the start of a line (as Streamlit's own label escaping reads them):
#: ``- x``, ``+ x``, ``---``, ``===`` (setext), ``# x``, ``>x``, ``1. x``, ``1) x``; not ``-3.4`` or ``#tag``.
_LEADING = re.compile(r"^(\s*)(?:([-+=])(?=[-+=\s]|$)|(#)(?=[#\s]|$)|(>)|(\d+)([.)])(?=\s|$))")
#: A colon that could open a directive (``:color[…]``, ``:help[…]``): not one before a space, nor one that is
#: already escaped (after an odd number of backslashes).
_COLON = re.compile(r"(?<!\\)((?:\\\\)*):(?!\s)")
_BACKTICKS = re.compile(r"`+")


def _missing_scalar(value) -> bool:
    try:
        return missing(value)
    except (TypeError, ValueError):  # a list or an array: not a missing scalar
        return False


def _break(text: str) -> str:
    for pattern in _BREAKS:
        text = pattern.sub(WORD_JOINER, text)
    return text


def literal(text, *, code: bool = False) -> str:
    r"""THE escape helper: ``text`` from data or from a user, made safe to place in any Markdown that Streamlit
    renders (``st.markdown``/``caption``/headers/alerts/``toast``, expander, tab, metric, widget and
    ``page_link`` labels, ``help`` tooltips, radio options, ``progress``/``spinner`` texts).

    Contract: the result renders as exactly the characters of ``text`` (newlines become spaces; a missing value,
    None or NaN, shows as ``—``) and creates no element: no link, autolink (``http://…``, ``www.…``,
    ``user@host``), image, raw HTML, LaTeX, ``:material/…:`` icon, emoji or ``:streamlit:`` shortcode,
    ``:color[…]`` directive, emphasis, code, heading, list, quote, table or typographic replacement.
    ``code=True`` gives the value as a complete inline code span instead (monospace, for names such as intents),
    fenced with more backticks than the value holds, so nothing inside it is Markdown.

    How: Markdown's own escapes (a backslash before ``\ ` * [ ] < $ ~ | &`` anywhere, before a ``_`` that is
    not inside a word, before a ``:`` that is not followed by a space, so no directive starts, before the ``/`` of
    ``:material/`` and before a block marker that starts the text: ``- + = # >`` or ``1.``); and an invisible
    U+2060 WORD JOINER inside the sequences that remark finds again in the *decoded* text, where no escape
    reaches: ``:⁠//``, ``www⁠.``, ``@⁠host``, ``:⁠name:``, ``:⁠material_`` and `` -⁠> ``. Copying such text
    copies the joiner. Text without these characters comes back unchanged.

    Use it once per value, on the value only (never on Markdown you wrote, never twice). Not for
    ``st.selectbox``/``st.multiselect`` options (plain text there: the backslashes would show) nor ``st.badge``
    (it escapes brackets itself). ``tests/ui/test_escape_ast.py`` checks every call site.

    Examples
    --------
    >>> print(literal("**x** :material/home: $1 <b> # 2 (>= 40%)").replace(WORD_JOINER, "<WJ>"))
    \*\*x\*\* \:material\/home: \$1 \<b> # 2 (>= 40%)
    >>> print(literal("![x](http://evil.example/a.png)").replace(WORD_JOINER, "<WJ>"))
    !\[x\](http\:<WJ>//evil.example/a.png)
    >>> print(literal("- item"), literal("# h"), literal("1. item"), literal("Note: ok"), literal(None))
    \- item \# h 1\. item Note: ok —
    >>> print(literal("_it_ lead_rate __b__"))
    \_it\_ lead_rate \_\_b\_\_
    >>> print(literal("nlu_fallback", code=True), literal("a `b` c", code=True))
    `nlu_fallback` ``a `b` c``
    """
    if _missing_scalar(text):
        return MISSING
    text = _NEWLINES.sub(" ", str(text))
    if code:
        return _code_span(text)
    text = _break(text)
    text = _BREAK_SYMBOL.sub(lambda m: m.group(0)[0] + WORD_JOINER + m.group(0)[1:], text)
    text = _UNDERSCORE.sub(r"\\_", _SPECIAL.sub(r"\\\1", text))
    text = _MATERIAL_SLASH.sub(r"\\/", _LEADING.sub(_escape_marker, text, count=1))
    return _COLON.sub(r"\1\\:", text)


def _escape_marker(m: re.Match) -> str:
    if m.group(5):  # 1. / 1)
        return f"{m.group(1)}{m.group(5)}\\{m.group(6)}"
    return f"{m.group(1)}\\{m.group(2) or m.group(3) or m.group(4)}"


def _code_span(text: str) -> str:
    if not text:
        return ""
    text = re.sub(r"(?<=:)(?=material[/_])", WORD_JOINER, text)  # Streamlit rewrites ':material/' even in code
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def harden_markdown(markdown: str) -> str:
    r"""Not an escape: a finishing pass over a Markdown *document* built in ``metrics/`` (the weekly review, the
    improvement report), whose data values were escaped there by ``metrics.improve.review.md_escape``.

    ``md_escape`` leaves open what Streamlit and GFM find in the raw source or in decoded text (``http://``,
    ``www.`` and ``user@host`` autolinks, ``:smile:`` shortcodes, ``:material/…:`` icons, ``:color[…]``
    directives, ``&…;`` entities) and the ``$`` that Streamlit reads as maths (a Markdown document keeps its
    money as written); this closes them the way :func:`literal` does, without touching the
    document's own Markdown (headings, lists, bold, tables). Only for the builders listed in
    ``tests/ui/test_escape_ast.py`` (``METRICS_MARKDOWN_BUILDERS``).

    Examples
    --------
    >>> print(harden_markdown("- **Fix** see http://x.example :smile: & more").replace(WORD_JOINER, "<WJ>"))
    - **Fix** see http\:<WJ>//x.example \:<WJ>smile: \& more
    >>> print(harden_markdown("from $19.90 to \\$5 (40%)"))
    from \$19.90 to \$5 (40%)
    """
    text = re.sub(r"(?<!\\)((?:\\\\)*)([&$])", r"\1\\\2", str(markdown))  # entities; Streamlit's $ maths
    return _COLON.sub(r"\1\\:", _MATERIAL_SLASH.sub(r"\\/", _break(text)))
