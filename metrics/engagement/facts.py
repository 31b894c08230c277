"""The engagement family's facts: the dataset counts, one row per conversation, the distinct users.

Tables (:mod:`metrics.core.facts` explains how they combine across shards):

``dataset``
    One additive row: ``messages`` (sum), ``first_timestamp`` (min), ``last_timestamp`` (max).
``users``
    One row per distinct non-empty ``user_id`` with its ``messages`` (sum).
``conversations``
    :func:`metrics.core.rollup.conversation_rollup` of the shard, one row per conversation, sorted
    by ``conversation_id``, without ``repeat_user``: that column spans conversations, so it is not
    a shard fact; :func:`rollup` computes it over every shard's rows.

Sections: ``dataset``, ``volume``, ``engagement`` (the keys of ``metrics.summary.dataset_section``
and ``metrics.outcomes.cli.summary_section``).
"""

from __future__ import annotations

import math

import numpy as np

import pandas as pd

from metrics.core.facts import Context, Table, shard_rollup
from metrics.core.rollup import ROLLUP_COLUMNS, _repeat_user

__all__ = ["TABLES", "shard_facts", "sections", "rollup"]

TABLES = {
    "dataset": Table(keys=(), agg={"messages": "sum", "first_timestamp": "min", "last_timestamp": "max"}),
    "users": Table(keys=("user_id",), agg={"messages": "sum"}),
    "conversations": Table(keys=("conversation_id",)),
}


def _num(value) -> float | None:
    """A JSON number: None for missing, NaN and infinite values."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def shard_facts(shard: pd.DataFrame, ctx: Context) -> dict[str, pd.DataFrame]:
    """The three tables of one shard (module docstring).

    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b"], "speaker": ["user", "bot", "user"],
    ...                   "text": ["hi", "hello", "?"], "user_id": ["u1", None, "u1"], "row": [1, 2, 3]})
    >>> f = shard_facts(m, Context())
    >>> int(f["dataset"]["messages"].iloc[0]), f["users"].values.tolist(), len(f["conversations"])
    (3, [['u1', 2]], 2)
    """
    if "timestamp" in shard.columns:
        stamps = shard["timestamp"]
        first, last = stamps.min(), stamps.max()
    else:
        first = last = pd.NaT
    dataset = pd.DataFrame({"messages": pd.Series([len(shard)], dtype="int64"),
                            "first_timestamp": pd.Series([first], dtype="datetime64[ns, UTC]"),
                            "last_timestamp": pd.Series([last], dtype="datetime64[ns, UTC]")})
    if "user_id" in shard.columns:
        ids = shard["user_id"].dropna()
        counts = ids.value_counts(sort=False)
        users = pd.DataFrame({"user_id": pd.Series(counts.index, dtype="str"),
                              "messages": counts.to_numpy(dtype="int64")})
        users = users.sort_values("user_id", kind="stable").reset_index(drop=True)
    else:
        users = pd.DataFrame({"user_id": pd.Series([], dtype="str"), "messages": pd.Series([], dtype="int64")})
    conversations = shard_rollup(shard).drop(columns=["repeat_user"])
    return {"dataset": dataset, "users": users, "conversations": conversations}


def rollup(facts: dict) -> pd.DataFrame:
    """The whole dataset's conversation rollup from the combined facts (``repeat_user`` recomputed
    across every conversation), equal to ``conversation_rollup`` of all the messages."""
    conv = facts["engagement"]["conversations"]
    repeat = _repeat_user(conv).astype(bool) if len(conv) else np.zeros(0, dtype=bool)
    at = list(ROLLUP_COLUMNS).index("repeat_user")
    out = conv.copy()
    out.insert(at, "repeat_user", repeat)
    return out


def sections(facts: dict, ctx: Context, meta: dict) -> dict:
    """``dataset``, ``volume`` and ``engagement`` from the combined facts."""
    from metrics import engagement
    from metrics.engagement import volume

    own = facts["engagement"]
    data = own["dataset"]
    messages = int(data["messages"].iloc[0]) if len(data) else 0
    first = data["first_timestamp"].iloc[0] if len(data) else pd.NaT
    last = data["last_timestamp"].iloc[0] if len(data) else pd.NaT
    roll = rollup(facts)
    out = {"dataset": {
        "file": meta.get("file", ""),
        "format": meta.get("format", ""),
        "messages": messages,
        "conversations": int(len(roll)),
        "users": int(len(own["users"])),
        "first_timestamp": None if pd.isna(first) else first.isoformat(),
        "last_timestamp": None if pd.isna(last) else last.isoformat(),
        "excluded_conversations": int(meta.get("excluded_conversations", 0)),
        "skipped_rows": int(meta.get("skipped_rows", 0)),
        "mapping": dict(meta.get("mapping", {})),
        "warnings": list(meta.get("warnings", [])),
    }}
    timed = not pd.isna(first) and len(roll) > 0
    if timed:
        weeks = volume.conversations_per_period(roll, period="week")
        per_week = {str(p): int(c) for p, c in zip(weeks["period"], weeks["conversation_count"])}
        spikes = volume.spike_days(roll)
    else:
        per_week, spikes = {}, []
    eng = engagement.engagement_summary(roll)
    out["volume"] = {"conversations_per_week": per_week, "spike_days": list(spikes)}
    out["engagement"] = {
        "mean_user_turns": _num(eng.mean_user_turns),
        "median_user_turns": _num(eng.median_user_turns),
        "repeat_user_rate": _num(eng.repeat_user_rate),
        "after_hours_rate": _num(eng.after_hours_rate),
    }
    return out
