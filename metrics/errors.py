"""Typed exceptions raised by :mod:`metrics`.

They carry enough structure for the edge (the Streamlit pages and the CLI) to
turn them into a one-line or tabular user message. Nothing inside ``metrics``
prints or formats them for a UI.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass

__all__ = [
    "printable",
    "ChatlensError",
    "Problem",
    "ValidationError",
    "StoreError",
    "ConfigError",
    "InsufficientDataError",
]


def printable(text) -> str:
    """``text`` with every control and format character (NUL, line breaks, ANSI escapes, bidi overrides,
    zero-width characters) written as an escape, so a message built from a file's bytes stays one honest line.

    Tabs become spaces; everything else printable (accents, CJK, emoji) is kept.

    Examples
    --------
    >>> printable("line\\nbreak\\u202e.csv \\x1b[31mred \\x00 café")
    'line\\\\nbreak\\\\u202e.csv \\\\x1b[31mred \\\\x00 café'
    >>> printable("plain")
    'plain'
    """
    text = str(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == "\t":
            out.append(" ")
        elif ch.isprintable() and unicodedata.category(ch) != "Cf":
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1] if ch not in "'\"" else ch)
    return "".join(out)


class ChatlensError(Exception):
    """Base class of every error Chatlens raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file.

    ``row`` is the 1-based data row in the file (the header is not counted), or
    ``None`` when the problem concerns the whole file or a whole column.
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    message: str
    fix: str

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        shown = "" if self.value is None else f" (got {self.value!r})"
        return printable(f"{', '.join(where)}: {self.message}{shown}. Fix: {self.fix}")

    def as_dict(self) -> dict:
        return asdict(self)


class ValidationError(ChatlensError):
    """Every problem found in an input, collected at once (lazy validation).

    ``problems`` lists each :class:`Problem`; ``str(err)`` names the first few
    and the total, so a one-line message is always available.
    """

    def __init__(self, problems: list[Problem], *, total: int | None = None):
        self.problems = list(problems)
        self.total = total if total is not None else len(self.problems)
        head = "; ".join(str(p) for p in self.problems[:3])
        more = self.total - min(3, len(self.problems))
        suffix = f"; and {more} more problem(s)" if more > 0 else ""
        super().__init__(f"{self.total} problem(s): {head}{suffix}")

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([p.as_dict() for p in self.problems],
                            columns=["file", "row", "column", "value", "message", "fix"])


class StoreError(ChatlensError):
    """The SQLite store could not do what was asked (locked, corrupt, unsupported)."""


class ConfigError(ChatlensError):
    """An option or definition given by the user is invalid; the message repeats the bad value."""


class InsufficientDataError(ChatlensError):
    """The data lacks what a metric needs (for example timestamps or labels)."""
