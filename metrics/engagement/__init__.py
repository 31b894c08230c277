"""Engagement depth: user turns, messages, duration, repeat users, after-hours share.

All functions take the per-conversation rollup (:func:`metrics.core.rollup.conversation_rollup`).

Definitions
-----------
``user_turns``
    Messages written by the user in a conversation (the rollup column). The guide's
    "turns" are user turns: 1,000 conversations of 2 turns tell a different story than
    500 of 8.
``message_count``
    Every message of the conversation, all speakers.
``duration_seconds``
    Last message time minus first message time (the rollup column; needs timestamps).
``repeat_user_rate``
    Conversations whose ``user_id`` appeared in an earlier conversation, divided by the
    conversations that have a ``user_id``. NaN when no conversation has a user id.
``returning_user_rate``
    Users with two or more conversations, divided by all users with an id.
``after_hours_rate``
    Conversations that started outside business hours (the rollup's ``business_hours`` flag,
    default Mon-Fri 09:00-17:00 UTC) divided by all conversations; needs timestamps.

Empty input gives zero counts and NaN means/medians/rates (a rate of nothing is undefined,
not 0). Views that need timestamps raise :class:`~metrics.errors.InsufficientDataError` when a
non-empty rollup has none; :func:`engagement_summary` instead sets those fields to NaN so the
rest of the summary stays available.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metrics.errors import ConfigError
from metrics.engagement.volume import require_timestamps

__all__ = [
    "DURATION_BUCKETS",
    "SEGMENTS",
    "EngagementSummary",
    "RepeatUsers",
    "user_turns_distribution",
    "message_count_distribution",
    "duration_distribution",
    "repeat_users",
    "after_hours_rate",
    "engagement_by_segment",
    "engagement_summary",
    "segment_labels",
    "duration_buckets",
]

#: (label, lower bound inclusive, upper bound exclusive) in seconds.
DURATION_BUCKETS = (
    ("< 1 min", 0.0, 60.0),
    ("1-5 min", 60.0, 300.0),
    ("5-15 min", 300.0, 900.0),
    ("15-30 min", 900.0, 1800.0),
    ("30-60 min", 1800.0, 3600.0),
    (">= 60 min", 3600.0, math.inf),
)
SEGMENTS = ("repeat_user", "business_hours", "channel")
_NAN = float("nan")


def _stat(series: pd.Series, how: str) -> float:
    values = series.dropna()
    if len(values) == 0:
        return _NAN
    return float(values.mean() if how == "mean" else values.median())


def _count_distribution(rollup: pd.DataFrame, column: str) -> pd.DataFrame:
    name = column
    if len(rollup) == 0:
        return pd.DataFrame({name: pd.Series([], dtype="int64"),
                             "conversation_count": pd.Series([], dtype="int64"),
                             "share_rate": pd.Series([], dtype="float64")})
    values = rollup[column].astype("int64")
    counts = values.value_counts().reindex(range(0, int(values.max()) + 1), fill_value=0)
    out = pd.DataFrame({name: counts.index.astype("int64"),
                        "conversation_count": counts.to_numpy().astype("int64")})
    out["share_rate"] = out["conversation_count"] / len(rollup)
    return out


def user_turns_distribution(rollup: pd.DataFrame) -> pd.DataFrame:
    """How many conversations had 0, 1, 2, ... user turns (every value up to the maximum).

    Columns: ``user_turns`` (int), ``conversation_count`` (int), ``share_rate``
    (count / all conversations). Empty rollup: empty frame. Needs no timestamps.

    Examples
    --------
    >>> import pandas as pd
    >>> d = user_turns_distribution(pd.DataFrame({"user_turns": [1, 3, 3]}))
    >>> d["user_turns"].tolist(), d["conversation_count"].tolist()
    ([0, 1, 2, 3], [0, 1, 0, 2])
    """
    return _count_distribution(rollup, "user_turns")


def message_count_distribution(rollup: pd.DataFrame) -> pd.DataFrame:
    """How many conversations had 1, 2, ... messages (all speakers), like :func:`user_turns_distribution`.

    Columns: ``message_count``, ``conversation_count``, ``share_rate``. Empty rollup: empty frame.

    Examples
    --------
    >>> import pandas as pd
    >>> message_count_distribution(pd.DataFrame({"message_count": [2, 2]}))["conversation_count"].tolist()
    [0, 0, 2]
    """
    return _count_distribution(rollup, "message_count")


def duration_distribution(rollup: pd.DataFrame) -> pd.DataFrame:
    """Conversations per duration bucket (:data:`DURATION_BUCKETS`, all six always present).

    Columns: ``bucket`` (label), ``lower_seconds`` (inclusive), ``upper_seconds``
    (exclusive, ``inf`` for the last), ``conversation_count``, ``share_rate`` (count /
    conversations with a duration; NaN when none). Conversations without a duration are
    left out. Empty rollup: six zero rows. No timestamps: InsufficientDataError.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"conversation_id": ["a", "b"],
    ...                   "started_at": pd.to_datetime(["2026-08-03", "2026-08-03"], utc=True),
    ...                   "duration_seconds": [30.0, 4000.0]})
    >>> duration_distribution(r)["conversation_count"].tolist()
    [1, 0, 0, 0, 0, 1]
    """
    require_timestamps(rollup, view="duration")
    durations = (rollup["duration_seconds"].dropna().astype("float64") if len(rollup)
                 else pd.Series([], dtype="float64"))
    rows = []
    for label, low, high in DURATION_BUCKETS:
        rows.append((label, low, high, int(((durations >= low) & (durations < high)).sum())))
    out = pd.DataFrame(rows, columns=["bucket", "lower_seconds", "upper_seconds", "conversation_count"])
    out["bucket"] = out["bucket"].astype("str")
    total = len(durations)
    out["share_rate"] = out["conversation_count"] / total if total else _NAN
    return out


@dataclass(frozen=True)
class RepeatUsers:
    """Repeat-user counts and rates (see the module docstring for the definitions).

    ``identified_conversation_count`` are conversations with a user id (the denominator of
    ``repeat_user_rate``); ``user_count`` distinct user ids (the denominator of
    ``returning_user_rate``). Rates are NaN when their denominator is 0.
    """

    identified_conversation_count: int
    repeat_conversation_count: int
    repeat_user_rate: float
    user_count: int
    returning_user_count: int
    returning_user_rate: float


def repeat_users(rollup: pd.DataFrame) -> RepeatUsers:
    """Repeat-user share of conversations and returning share of users.

    Uses the rollup's ``repeat_user`` flag (same ``user_id`` in an earlier conversation).
    No user ids (or an empty rollup): counts 0 and rates NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"user_id": ["u1", "u1", "u2", None], "repeat_user": [False, True, False, False]})
    >>> ru = repeat_users(r)
    >>> ru.repeat_conversation_count, round(ru.repeat_user_rate, 4), ru.returning_user_count, ru.returning_user_rate
    (1, 0.3333, 1, 0.5)
    """
    if len(rollup) == 0 or "user_id" not in rollup.columns:
        return RepeatUsers(0, 0, _NAN, 0, 0, _NAN)
    known = rollup["user_id"].notna()
    identified = int(known.sum())
    repeat = int((rollup["repeat_user"].astype(bool) & known).sum())
    per_user = rollup.loc[known, "user_id"].value_counts()
    users = int(len(per_user))
    returning = int((per_user >= 2).sum())
    return RepeatUsers(
        identified_conversation_count=identified,
        repeat_conversation_count=repeat,
        repeat_user_rate=repeat / identified if identified else _NAN,
        user_count=users,
        returning_user_count=returning,
        returning_user_rate=returning / users if users else _NAN,
    )


def after_hours_rate(rollup: pd.DataFrame) -> float:
    """Share of conversations that started outside business hours (rollup ``business_hours`` False).

    Empty rollup: NaN. No timestamps: InsufficientDataError (the flag would be meaningless).

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"business_hours": [True, False, False, True],
    ...                   "started_at": pd.to_datetime(["2026-08-03"] * 4, utc=True)})
    >>> after_hours_rate(r)
    0.5
    """
    require_timestamps(rollup, view="business-hours")
    if len(rollup) == 0:
        return _NAN
    return float((~rollup["business_hours"].astype(bool)).sum() / len(rollup))


def _segment_labels(rollup: pd.DataFrame, by: str) -> pd.Series:
    if by == "repeat_user":
        known = rollup["user_id"].notna() if "user_id" in rollup.columns else pd.Series(False, index=rollup.index)
        labels = np.where(~known, "unknown user",
                          np.where(rollup["repeat_user"].astype(bool), "repeat user", "new user"))
        return pd.Series(labels, index=rollup.index, dtype="str")
    if by == "business_hours":
        require_timestamps(rollup, view="business-hours")
        return rollup["business_hours"].astype(bool).map(
            {True: "business hours", False: "after hours"}).astype("str")
    channel = rollup["channel"] if "channel" in rollup.columns else pd.Series(pd.NA, index=rollup.index)
    return channel.astype("str").fillna("(none)")


def engagement_by_segment(rollup: pd.DataFrame, *, by: str = "repeat_user") -> pd.DataFrame:
    """Engagement depth per segment, so repeat users (or after-hours users) can be compared.

    ``by``: ``'repeat_user'`` (segments 'new user' / 'repeat user' / 'unknown user' when the
    conversation has no user id), ``'business_hours'`` ('business hours' / 'after hours';
    needs timestamps) or ``'channel'``.

    Columns: ``segment``, ``conversation_count``, ``share_rate`` (of all conversations),
    ``mean_user_turns``, ``median_user_turns``, ``mean_message_count``,
    ``median_duration_seconds`` (NaN without timestamps). Sorted by segment name.
    Empty rollup: empty frame. A bad ``by`` raises ConfigError.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "repeat_user": [False, True, False],
    ...                   "user_turns": [2, 6, 4], "message_count": [4, 12, 8],
    ...                   "duration_seconds": [60.0, 600.0, 120.0]})
    >>> engagement_by_segment(r)[["segment", "conversation_count", "mean_user_turns"]].values.tolist()
    [['new user', 2, 3.0], ['repeat user', 1, 6.0]]
    """
    if by not in SEGMENTS:
        raise ConfigError(f"segment 'by' must be one of {SEGMENTS}, got {by!r}")
    cols = ["segment", "conversation_count", "share_rate", "mean_user_turns", "median_user_turns",
            "mean_message_count", "median_duration_seconds"]
    if len(rollup) == 0:
        return pd.DataFrame({c: pd.Series([], dtype="str" if c == "segment" else
                                          ("int64" if c == "conversation_count" else "float64")) for c in cols})
    work = pd.DataFrame({
        "segment": _segment_labels(rollup, by).to_numpy(),
        "user_turns": rollup["user_turns"].astype("float64").to_numpy(),
        "message_count": rollup["message_count"].astype("float64").to_numpy(),
        "duration_seconds": (rollup["duration_seconds"].astype("float64").to_numpy()
                             if "duration_seconds" in rollup.columns else np.nan),
    })
    g = work.groupby("segment", sort=True)
    out = pd.DataFrame({
        "conversation_count": g.size().astype("int64"),
        "mean_user_turns": g["user_turns"].mean(),
        "median_user_turns": g["user_turns"].median(),
        "mean_message_count": g["message_count"].mean(),
        "median_duration_seconds": g["duration_seconds"].median(),
    }).reset_index()
    out["segment"] = out["segment"].astype("str")
    out.insert(2, "share_rate", out["conversation_count"] / len(rollup))
    return out[cols]


@dataclass(frozen=True)
class EngagementSummary:
    """Headline engagement numbers; NaN where the denominator is 0 or the data lacks the field.

    ``has_timestamps`` is False when duration and after-hours fields are NaN for lack of
    timestamps (not because the values are unknown by chance).
    """

    conversation_count: int
    mean_user_turns: float
    median_user_turns: float
    mean_message_count: float
    median_message_count: float
    mean_duration_seconds: float
    median_duration_seconds: float
    repeat_user_rate: float
    after_hours_rate: float
    has_timestamps: bool


def engagement_summary(rollup: pd.DataFrame) -> EngagementSummary:
    """Mean/median user turns, messages and duration, repeat-user and after-hours rates.

    Definitions are in the module docstring. Without timestamps the duration and after-hours
    fields are NaN and ``has_timestamps`` is False; without user ids ``repeat_user_rate`` is
    NaN. Empty rollup: ``conversation_count == 0`` and every other number NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"user_turns": [1, 2, 6], "message_count": [2, 4, 12], "duration_seconds": [10.0, 20.0, 90.0],
    ...                   "user_id": ["u1", "u1", "u2"], "repeat_user": [False, True, False],
    ...                   "business_hours": [True, True, False],
    ...                   "started_at": pd.to_datetime(["2026-08-03"] * 3, utc=True)})
    >>> s = engagement_summary(r)
    >>> s.mean_user_turns, s.median_user_turns, round(s.repeat_user_rate, 4), round(s.after_hours_rate, 4)
    (3.0, 2.0, 0.3333, 0.3333)
    """
    n = int(len(rollup))
    timed = n > 0 and "started_at" in rollup.columns and bool(rollup["started_at"].notna().any())
    if n == 0:
        return EngagementSummary(0, _NAN, _NAN, _NAN, _NAN, _NAN, _NAN, _NAN, _NAN, False)
    return EngagementSummary(
        conversation_count=n,
        mean_user_turns=_stat(rollup["user_turns"].astype("float64"), "mean"),
        median_user_turns=_stat(rollup["user_turns"].astype("float64"), "median"),
        mean_message_count=_stat(rollup["message_count"].astype("float64"), "mean"),
        median_message_count=_stat(rollup["message_count"].astype("float64"), "median"),
        mean_duration_seconds=_stat(rollup["duration_seconds"], "mean") if timed else _NAN,
        median_duration_seconds=_stat(rollup["duration_seconds"], "median") if timed else _NAN,
        repeat_user_rate=repeat_users(rollup).repeat_user_rate,
        after_hours_rate=after_hours_rate(rollup) if timed else _NAN,
        has_timestamps=timed,
    )


def segment_labels(rollup: pd.DataFrame, *, by: str = "repeat_user") -> pd.DataFrame:
    """Each conversation's segment as used by :func:`engagement_by_segment` (for drill-down).

    Columns: ``conversation_id``, ``segment``. Empty rollup: empty frame. Bad ``by``: ConfigError;
    ``'business_hours'`` without timestamps: InsufficientDataError.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"conversation_id": ["a", "b"], "user_id": ["u1", None], "repeat_user": [True, False]})
    >>> segment_labels(r)["segment"].tolist()
    ['repeat user', 'unknown user']
    """
    if by not in SEGMENTS:
        raise ConfigError(f"segment 'by' must be one of {SEGMENTS}, got {by!r}")
    if len(rollup) == 0:
        return pd.DataFrame({"conversation_id": pd.Series([], dtype="str"), "segment": pd.Series([], dtype="str")})
    return pd.DataFrame({"conversation_id": rollup["conversation_id"].astype("str").to_numpy(),
                         "segment": _segment_labels(rollup, by).astype("str").to_numpy()})


def duration_buckets(rollup: pd.DataFrame) -> pd.DataFrame:
    """Each conversation's :data:`DURATION_BUCKETS` label (for drill-down); conversations without a
    duration are left out. Columns: ``conversation_id``, ``bucket``, ``duration_seconds``.
    No timestamps: InsufficientDataError.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"conversation_id": ["a"], "started_at": pd.to_datetime(["2026-08-03"], utc=True),
    ...                   "duration_seconds": [90.0]})
    >>> duration_buckets(r)["bucket"].tolist()
    ['1-5 min']
    """
    require_timestamps(rollup, view="duration")
    timed = rollup[rollup["duration_seconds"].notna()] if len(rollup) else rollup
    labels = pd.Series(pd.NA, index=timed.index, dtype="object")
    for label, low, high in DURATION_BUCKETS:
        labels[(timed["duration_seconds"] >= low) & (timed["duration_seconds"] < high)] = label
    return pd.DataFrame({"conversation_id": timed["conversation_id"].astype("str").to_numpy() if len(timed) else
                         pd.Series([], dtype="str"),
                         "bucket": labels.astype("str").to_numpy(),
                         "duration_seconds": (timed["duration_seconds"].astype("float64").to_numpy()
                                              if len(timed) else pd.Series([], dtype="float64"))})
