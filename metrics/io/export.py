"""CSV/JSON export helpers shared by the UI and the CLI.

Every CSV Chatlens writes goes through :func:`to_csv_bytes`, which escapes
cells that a spreadsheet would run as a formula (leading ``= + - @``, tab or
carriage return) by prefixing a single quote (OWASP "CSV injection").
"""

from __future__ import annotations

import pandas as pd

__all__ = ["escape_formulas", "to_csv_bytes", "FORMULA_PREFIXES"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy whose text cells starting with a formula character get a leading ``'``.

    Numbers are left alone (``-3`` stays a number); only text cells are escaped.

    Examples
    --------
    >>> escape_formulas(pd.DataFrame({"t": ["=1+1", "ok", "@SUM(A1)"], "n": [-1, 2, 3]}))["t"].tolist()
    ["'=1+1", 'ok', "'@SUM(A1)"]
    """
    out = frame.copy()
    for col in out.columns:
        series = out[col]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        if pd.api.types.is_datetime64_any_dtype(series):
            continue
        text = series.astype("str")
        risky = text.str.startswith(FORMULA_PREFIXES, na=False)
        if risky.any():
            out[col] = text.where(~risky, "'" + text)
    out.columns = [("'" + c) if isinstance(c, str) and c.startswith(FORMULA_PREFIXES) else c for c in out.columns]
    return out


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV (no index) with formula cells escaped."""
    # CRLF rows make pandas quote any cell holding a bare CR, so a spreadsheet cannot split it into a new row
    return escape_formulas(frame).to_csv(index=False, lineterminator="\r\n").encode("utf-8")
