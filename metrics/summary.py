"""The ``summary`` report: one JSON-ready dict with a section per metric family.

:func:`dataset_section` is the foundation's part; each family adds its own
section through :data:`SECTION_PROVIDERS` (``module:function`` names resolved
lazily, each called as ``fn(messages, rollup)`` and returning a dict of
sections, or None when the data lacks what it needs).
"""

from __future__ import annotations

import importlib
import math

import pandas as pd

from metrics.io.loaders import LoadResult
from metrics.core.rollup import conversation_rollup
from metrics.io.schema import has_timestamps

__all__ = ["dataset_section", "build_summary", "SECTION_PROVIDERS", "jsonable"]

#: Family sections, in report order. Each entry is "module:function".
SECTION_PROVIDERS: list[str] = [
    "metrics.outcomes.cli:summary_section",
    "metrics.intents.cli:section_provider",
    "metrics.funnel.cli:section_provider",
    "metrics.sentiment.cli:summary_section",
    "metrics.improve.cli_alerts:section_provider",
]


def dataset_section(result: LoadResult) -> dict:
    """The ``dataset`` section: counts, time span, exclusions and warnings.

    Examples
    --------
    >>> from metrics.io.loaders import load_bytes
    >>> r = load_bytes(b"conversation_id,speaker,text\\n1,user,hi\\n", "a.csv")
    >>> s = dataset_section(r)
    >>> s["messages"], s["conversations"], s["first_timestamp"]
    (1, 1, None)
    """
    frame = result.frame
    stamps = frame["timestamp"].dropna() if has_timestamps(frame) else pd.Series([], dtype="datetime64[ns, UTC]")
    users = int(frame["user_id"].nunique()) if "user_id" in frame.columns else 0
    return {
        "file": result.file,
        "format": result.format,
        "messages": int(len(frame)),
        "conversations": int(frame["conversation_id"].nunique()),
        "users": users,
        "first_timestamp": stamps.min().isoformat() if len(stamps) else None,
        "last_timestamp": stamps.max().isoformat() if len(stamps) else None,
        "excluded_conversations": int(result.excluded_conversations),
        "skipped_rows": int(result.skipped_rows),
        "mapping": dict(result.mapping),
        "warnings": list(result.notices),
    }


def build_summary(result: LoadResult) -> dict:
    """Every section for one loaded file."""
    report = {"dataset": dataset_section(result)}
    messages = result.frame
    rollup = conversation_rollup(messages)
    for spec in SECTION_PROVIDERS:
        module, func = spec.split(":")
        sections = getattr(importlib.import_module(module), func)(messages, rollup)
        if sections:
            report.update(sections)
    return jsonable(report)


def jsonable(value):
    """Recursively convert numpy/pandas scalars, NaN and timestamps into JSON-safe values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value
