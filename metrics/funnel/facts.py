"""The funnel family's facts: how far each conversation got in the default lead funnel.

Tables (:mod:`metrics.core.facts` explains how they combine across shards):

``conversations``
    One row per conversation (sorted by ``conversation_id``): ``highest_stage`` (the index of the
    last stage of :data:`~metrics.funnel.DEFAULT_LEAD_FUNNEL` reached in strict order, -1 when it
    never entered; :func:`metrics.funnel.reached_stage`), ``converted`` (a message has
    ``converted`` true; False without the column) and ``conversion_value`` (its first
    ``conversion_value``, NaN when none or without the column).
``events``
    One row per distinct ``event`` value (as text, missing left out) with its ``messages`` (sum):
    whether the funnel's first event occurs, and the known events the warnings list.
``dataset``
    One additive row: ``messages`` and ``timestamped_messages`` (sums).

Section: ``funnel`` (:func:`metrics.funnel.cli.section_provider`): None (no section) without an
``inquiry`` event.
"""

from __future__ import annotations

import math

from types import SimpleNamespace

import numpy as np
import pandas as pd

from metrics import funnel as FN
from metrics.core.facts import Context, Table

__all__ = ["TABLES", "shard_facts", "sections", "funnel_section"]

TABLES = {
    "conversations": Table(keys=("conversation_id",)),
    "events": Table(keys=("event",), agg={"messages": "sum"}),
    "dataset": Table(keys=(), agg={"messages": "sum", "timestamped_messages": "sum"}),
}

_STAGES = list(FN.DEFAULT_LEAD_FUNNEL)


def _conversations(shard: pd.DataFrame) -> pd.DataFrame:
    reach = FN._reach(shard, _STAGES, strict=True)
    n = len(reach.prep.conversation_ids)
    if "converted" in shard.columns and n:
        converted, value = FN._conversion_arrays(reach.prep)
    else:
        converted, value = np.zeros(n, dtype=bool), None
    return pd.DataFrame({
        "conversation_id": pd.Series(reach.prep.conversation_ids, dtype="str"),
        "highest_stage": pd.Series(reach.highest, dtype="int64"),
        "converted": pd.Series(converted, dtype="bool"),
        "conversion_value": pd.Series(np.full(n, np.nan) if value is None else value, dtype="float64"),
    })


def _events(shard: pd.DataFrame) -> pd.DataFrame:
    if "event" in shard.columns:
        counts = shard["event"].dropna().astype("str").value_counts(sort=False)
        out = pd.DataFrame({"event": pd.Series(counts.index, dtype="str"),
                            "messages": counts.to_numpy(dtype="int64")})
        return out.sort_values("event", kind="stable").reset_index(drop=True)
    return pd.DataFrame({"event": pd.Series([], dtype="str"), "messages": pd.Series([], dtype="int64")})


def shard_facts(shard: pd.DataFrame, ctx: Context) -> dict[str, pd.DataFrame]:
    """The three tables of one shard (module docstring).

    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b"], "speaker": ["user"] * 3,
    ...                   "text": ["hi", "me@x.org", "hi"], "event": ["inquiry", "qualification", None],
    ...                   "row": [1, 2, 3]})
    >>> f = shard_facts(m, Context())
    >>> f["conversations"][["conversation_id", "highest_stage"]].values.tolist()
    [['a', 2], ['b', -1]]
    >>> f["events"].values.tolist(), f["dataset"].values.tolist()
    ([['inquiry', 1], ['qualification', 1]], [[3, 0]])
    """
    timed = int(shard["timestamp"].notna().sum()) if "timestamp" in shard.columns else 0
    dataset = pd.DataFrame({"messages": pd.Series([len(shard)], dtype="int64"),
                            "timestamped_messages": pd.Series([timed], dtype="int64")})
    return {"conversations": _conversations(shard), "events": _events(shard), "dataset": dataset}


def _unsupported(col):
    raise NotImplementedError(f"the funnel facts keep only the 'event' values, not {col!r}")


def funnel_section(conversations: pd.DataFrame, events: pd.DataFrame, dataset: pd.DataFrame,
                   ctx: Context) -> dict | None:
    """The ``funnel`` object of ``summary`` from the combined tables, None without an ``inquiry``
    event (as :func:`metrics.funnel.cli.summary_section`)."""

    messages = int(dataset["messages"].iloc[0]) if len(dataset) else 0
    if not ctx.has("event") or messages == 0:
        return None
    names = events["event"].astype("str")
    normalised = names.str.strip().str.casefold()
    if not normalised.eq(_STAGES[0].rule.name).fillna(False).any():
        return None

    highest = conversations["highest_stage"].to_numpy(dtype=np.int64)
    counts = np.array([int((highest >= k).sum()) for k in range(len(_STAGES))], dtype=np.int64)
    records = [SimpleNamespace(**r) for r in FN._stage_records(_STAGES, len(conversations), counts)]

    converted = value = None
    if ctx.has("converted"):
        leads = conversations["converted"].to_numpy(dtype=bool) & (highest >= 0)
        converted = int(leads.sum())
        if ctx.has("conversion_value"):
            amounts = conversations["conversion_value"].to_numpy(dtype=float)
            value = _num(float(np.nansum(np.where(leads, amounts, 0.0))))

    def known(col: str) -> list[str]:
        if col != "event":
            _unsupported(col)
        vals = names.str.strip()
        return sorted(set(vals[vals != ""]))[:10]

    def norm_values(col: str) -> set:
        if col != "event":
            _unsupported(col)
        return set(normalised.dropna())

    warnings = FN._rule_warnings(_STAGES, set(ctx.columns), known=known, norm_values=norm_values,
                                 column=_unsupported)
    timestamped = bool(len(dataset)) and int(dataset["timestamped_messages"].iloc[0]) > 0
    warnings = FN._reach_warnings(_STAGES, warnings, counts, timestamped)
    return _summary_object(True, len(conversations), records, converted, value, warnings)


def sections(facts: dict, ctx: Context, meta: dict) -> dict:
    """``funnel`` from the combined facts; {} without an ``inquiry`` event."""
    own = facts["funnel"]
    section = funnel_section(own["conversations"], own["events"], own["dataset"], ctx)
    return {} if section is None else {"funnel": section}


def _num(value):
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _summary_object(strict: bool, conversations: int, stage_rows, converted, value, warnings) -> dict:
    """The JSON-ready object of :func:`funnel_summary` from its parts (``stage_rows``: objects with
    ``stage``, ``conversations``, ``rate_of_entry``, ``step_rate``, ``dropped``); also used by
    :mod:`metrics.funnel.facts`."""
    return {
        "strict": bool(strict),
        "conversations": int(conversations),
        "stages": [{"name": str(r.stage), "conversations": int(r.conversations),
                    "rate_of_entry": _num(r.rate_of_entry), "step_rate": _num(r.step_rate),
                    "dropped": int(r.dropped)} for r in stage_rows],
        "converted": converted,
        "conversion_value": value,
        "warnings": list(warnings),
    }
