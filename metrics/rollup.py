"""Per-conversation rollup: one row per conversation, the table most metrics start from.

Columns (each definition is also in the README, "Rollup columns"):

``conversation_id``
    The conversation.
``started_at`` / ``ended_at``
    First and last message timestamp (UTC); NaT when the source had no timestamps.
``duration_seconds``
    ``ended_at - started_at`` in seconds (0.0 for a one-message conversation, NaN without timestamps).
``message_count``
    All messages, of every speaker.
``user_turns`` / ``bot_turns`` / ``agent_turns``
    Messages written by the user / the bot / a human agent.
``channel`` / ``user_id``
    First non-missing value in the conversation (NA when absent).
``first_response_seconds``
    Seconds from the first user message to the first bot or agent message after it; NaN when
    the conversation has no user message, no reply after it, or no timestamps.
``business_hours``
    The conversation *started* inside business hours (:class:`BusinessHours`, default
    Mon-Fri 09:00-17:00 in UTC). False without timestamps.
``repeat_user``
    The conversation's ``user_id`` was seen in an earlier conversation (by ``started_at``,
    ties broken by conversation id). False without a user id.
``has_agent``
    At least one ``agent`` message.
``handoff_event``
    At least one message whose ``event`` is ``handoff`` (case-insensitive).
``first_handoff_turn``
    User turns up to (and including) the last user message before the first agent message or
    handoff event; NaN when there is no escalation.
Conversation fields (``outcome``, ``goal_achieved``, ``rating``, ``topic``, ...)
    Copied from the messages (first non-missing value) when the source had them.

An empty frame gives an empty rollup with the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metrics.errors import ConfigError
from metrics.schema import CONVERSATION_FIELDS

__all__ = ["BusinessHours", "conversation_rollup", "ROLLUP_COLUMNS"]

ROLLUP_COLUMNS = (
    "conversation_id", "started_at", "ended_at", "duration_seconds", "message_count",
    "user_turns", "bot_turns", "agent_turns", "channel", "user_id", "first_response_seconds",
    "business_hours", "repeat_user", "has_agent", "handoff_event", "first_handoff_turn",
)


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours used for the business-hours flag.

    ``days`` are ISO weekday numbers (Monday=0 ... Sunday=6, as pandas' ``dayofweek``);
    ``start_hour`` inclusive, ``end_hour`` exclusive, both in ``timezone``.

    Examples
    --------
    >>> BusinessHours(start_hour=8, end_hour=18, timezone="Europe/Berlin").end_hour
    18
    """

    start_hour: int = 9
    end_hour: int = 17
    days: tuple[int, ...] = field(default=(0, 1, 2, 3, 4))
    timezone: str = "UTC"

    def __post_init__(self):
        if not (0 <= self.start_hour < self.end_hour <= 24):
            raise ConfigError(
                f"business hours must satisfy 0 <= start < end <= 24, got start={self.start_hour!r}, "
                f"end={self.end_hour!r}")
        bad = [d for d in self.days if d not in range(7)]
        if bad:
            raise ConfigError(f"business days must be 0 (Mon) .. 6 (Sun), got {bad!r}")
        try:
            pd.Timestamp("2024-01-01", tz=self.timezone)
        except Exception as exc:  # noqa: BLE001 - any tz failure is a config error
            raise ConfigError(f"unknown time zone {self.timezone!r}: {exc}") from None

    def contains(self, timestamps: pd.Series) -> pd.Series:
        """Boolean series: each UTC timestamp falls inside these hours (NaT -> False)."""
        local = timestamps.dt.tz_convert(self.timezone)
        inside = (local.dt.day_of_week.isin(list(self.days))
                  & (local.dt.hour >= self.start_hour) & (local.dt.hour < self.end_hour))
        return inside.fillna(False).astype(bool)


def conversation_rollup(messages: pd.DataFrame, *, business_hours: BusinessHours | None = None) -> pd.DataFrame:
    """One row per conversation with the columns documented in this module.

    The input (a validated frame) is not modified. Row order of the input does not matter;
    the result is sorted by ``conversation_id``.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({
    ...     "conversation_id": ["a", "a", "b"],
    ...     "timestamp": pd.to_datetime(["2024-01-01 10:00:00", "2024-01-01 10:00:30",
    ...                                  "2024-01-06 22:00:00"], utc=True),
    ...     "speaker": ["user", "bot", "user"], "text": ["hi", "hello", "?"]})
    >>> r = conversation_rollup(m)
    >>> r[["conversation_id", "user_turns", "first_response_seconds", "business_hours"]].values.tolist()
    [['a', 1, 30.0, True], ['b', 1, nan, False]]
    """
    hours = business_hours or BusinessHours()
    if len(messages) == 0:
        return _empty_rollup(messages)

    ts = messages["timestamp"] if "timestamp" in messages.columns else pd.Series(
        pd.NaT, index=messages.index, dtype="datetime64[ns, UTC]")
    speaker = messages["speaker"].astype("str")
    is_user = (speaker == "user").to_numpy()
    is_bot = (speaker == "bot").to_numpy()
    is_agent = (speaker == "agent").to_numpy()
    if "event" in messages.columns:
        is_handoff = messages["event"].astype("str").str.lower().eq("handoff").fillna(False).to_numpy(bool)
    else:
        is_handoff = np.zeros(len(messages), dtype=bool)

    # Order within each conversation by time, then source row (stable and shuffle-proof).
    order_cols = {"cid": messages["conversation_id"].astype("str").to_numpy(),
                  "ts": ts.array, "row": messages["row"].to_numpy() if "row" in messages.columns
                  else np.arange(len(messages))}
    work = pd.DataFrame(order_cols)
    work["user"] = is_user
    work["bot"] = is_bot
    work["agent"] = is_agent
    work["handoff"] = is_handoff
    work["reply"] = is_bot | is_agent
    work = work.sort_values(["cid", "ts", "row"], kind="stable", na_position="last")

    g = work.groupby("cid", sort=True)
    out = pd.DataFrame({
        "started_at": g["ts"].min(),
        "ended_at": g["ts"].max(),
        "message_count": g.size(),
        "user_turns": g["user"].sum(),
        "bot_turns": g["bot"].sum(),
        "agent_turns": g["agent"].sum(),
        "has_agent": g["agent"].any(),
        "handoff_event": g["handoff"].any(),
    })
    out.index.name = "conversation_id"
    out["duration_seconds"] = (out["ended_at"] - out["started_at"]).dt.total_seconds()

    # first response: first reply strictly after the first user message (by order within conversation)
    work["pos"] = g.cumcount()
    first_user_pos = work[work["user"]].groupby("cid")["pos"].min()
    work["first_user_pos"] = work["cid"].map(first_user_pos)
    first_user_ts = work[work["user"]].groupby("cid")["ts"].min()
    replies = work[work["reply"] & (work["pos"] > work["first_user_pos"])]
    first_reply_ts = replies.groupby("cid")["ts"].min()
    out["first_response_seconds"] = (first_reply_ts.reindex(out.index)
                                     - first_user_ts.reindex(out.index)).dt.total_seconds()

    # turn of first escalation: user turns before the first agent message / handoff event
    work["user_cum"] = work.groupby("cid")["user"].cumsum()
    esc = work[work["agent"] | work["handoff"]]
    first_esc_pos = esc.groupby("cid")["pos"].min()
    esc_rows = work[work["pos"].eq(work["cid"].map(first_esc_pos))]
    out["first_handoff_turn"] = esc_rows.set_index("cid")["user_cum"].astype("float64").reindex(out.index)

    out["business_hours"] = hours.contains(out["started_at"]).to_numpy()

    for col in ("channel", "user_id"):
        if col in messages.columns:
            out[col] = _first_value(messages, col).reindex(out.index)
        else:
            out[col] = pd.Series(pd.NA, index=out.index, dtype="str")

    out = out.reset_index()
    out["repeat_user"] = _repeat_user(out)
    for col in CONVERSATION_FIELDS:
        if col in messages.columns:
            out[col] = _first_value(messages, col).reindex(out["conversation_id"]).to_numpy()
            out[col] = out[col].astype(messages[col].dtype)
    int_cols = ["message_count", "user_turns", "bot_turns", "agent_turns"]
    out[int_cols] = out[int_cols].astype("int64")
    for col in ("has_agent", "handoff_event", "business_hours", "repeat_user"):
        out[col] = out[col].astype(bool)
    out["conversation_id"] = out["conversation_id"].astype("str")
    extra = [c for c in out.columns if c not in ROLLUP_COLUMNS]
    return out[list(ROLLUP_COLUMNS) + extra]


def _first_value(messages: pd.DataFrame, col: str) -> pd.Series:
    """First non-missing value of ``col`` per conversation, in time/row order."""
    sub = messages[["conversation_id", col]].copy()
    sub["_ts"] = messages["timestamp"] if "timestamp" in messages.columns else pd.NaT
    sub["_row"] = messages["row"] if "row" in messages.columns else np.arange(len(messages))
    sub = sub[sub[col].notna()].sort_values(["conversation_id", "_ts", "_row"], kind="stable")
    return sub.groupby("conversation_id", sort=True)[col].first()


def _repeat_user(rollup: pd.DataFrame) -> np.ndarray:
    """True where the user id appeared in an earlier conversation."""
    if rollup["user_id"].isna().all():
        return np.zeros(len(rollup), dtype=bool)
    order = rollup[["conversation_id", "user_id", "started_at"]].sort_values(
        ["started_at", "conversation_id"], kind="stable", na_position="last")
    seen_before = order.groupby("user_id", dropna=True).cumcount() > 0
    seen_before = seen_before.reindex(order.index).fillna(False)
    return seen_before.reindex(rollup.index).fillna(False).to_numpy(bool)


def _empty_rollup(messages: pd.DataFrame) -> pd.DataFrame:
    data = {
        "conversation_id": pd.Series([], dtype="str"),
        "started_at": pd.Series([], dtype="datetime64[ns, UTC]"),
        "ended_at": pd.Series([], dtype="datetime64[ns, UTC]"),
        "duration_seconds": pd.Series([], dtype="float64"),
        "message_count": pd.Series([], dtype="int64"),
        "user_turns": pd.Series([], dtype="int64"),
        "bot_turns": pd.Series([], dtype="int64"),
        "agent_turns": pd.Series([], dtype="int64"),
        "channel": pd.Series([], dtype="str"),
        "user_id": pd.Series([], dtype="str"),
        "first_response_seconds": pd.Series([], dtype="float64"),
        "business_hours": pd.Series([], dtype=bool),
        "repeat_user": pd.Series([], dtype=bool),
        "has_agent": pd.Series([], dtype=bool),
        "handoff_event": pd.Series([], dtype=bool),
        "first_handoff_turn": pd.Series([], dtype="float64"),
    }
    for col in CONVERSATION_FIELDS:
        if col in messages.columns:
            data[col] = pd.Series([], dtype=messages[col].dtype)
    return pd.DataFrame(data)
