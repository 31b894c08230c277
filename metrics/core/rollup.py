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
    At least one message whose ``event`` is ``handoff`` (stripped, case-insensitive: the same test as
    :mod:`metrics.outcomes.escalation`).
``first_handoff_turn``
    User turns up to (and including) the last user message before the first agent message or
    handoff event; NaN when there is no escalation.
Conversation fields (``outcome``, ``goal_achieved``, ``rating``, ``topic``, ...)
    Copied from the messages (first non-missing value) when the source had them.

Messages are taken in the conversation order of :mod:`metrics.core.order` (time, then source row);
messages without a conversation id are left out. An empty frame gives an empty rollup with the same
columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metrics.core.order import conversation_order, group_starts
from metrics.errors import ConfigError
from metrics.io.schema import CONVERSATION_FIELDS

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

    # The conversation order of metrics.core.order (time within each conversation, then source row):
    # shuffle-proof, and no sort at all for a validated frame, which comes in that order. Messages
    # without a conversation id sort last and are left out, as groupby leaves them out.
    sorted_ = conversation_order(messages)
    n = sorted_.known_count
    if n == 0:
        return _empty_rollup(messages)
    order = sorted_.take if n == len(messages) else sorted_.positions[:n]
    uniques = np.asarray(sorted_.ids, dtype=object)
    if "timestamp" in messages.columns:
        stamps = messages["timestamp"]
        if stamps.dt.tz is None:
            stamps = stamps.dt.tz_localize("UTC")
        ts = np.asarray(stamps.dt.as_unit("ns").array.asi8, dtype="int64")
    else:
        ts = np.full(len(messages), _NAT, dtype="int64")

    def arr(values):
        values = np.asarray(values)
        return values if order is None else values[order]

    codes_s, ts_s = sorted_.codes[:n], arr(ts)
    speaker = arr(messages["speaker"].astype("str").to_numpy(dtype=object))
    is_user, is_bot, is_agent = speaker == "user", speaker == "bot", speaker == "agent"
    if "event" in messages.columns:
        ev = messages["event"].astype("str").str.strip().str.lower().eq("handoff").fillna(False).to_numpy(dtype=bool)
        is_handoff = arr(ev)
    else:
        is_handoff = np.zeros(n, dtype=bool)

    starts = group_starts(codes_s)
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    pos = np.arange(n) - starts[group]
    has_ts = ts_s != _NAT
    ts_min = np.where(has_ts, ts_s, _BIG)
    ts_max = np.where(has_ts, ts_s, _NAT)

    def first_pos(mask):
        """Position (within the conversation) of the first row where mask holds, or _BIG."""
        return np.minimum.reduceat(np.where(mask, pos, _BIG), starts)

    started = np.minimum.reduceat(ts_min, starts)
    ended = np.maximum.reduceat(ts_max, starts)
    first_user = first_pos(is_user)
    after_first_user = pos > first_user[group]
    reply_ts = np.minimum.reduceat(np.where((is_bot | is_agent) & after_first_user & has_ts, ts_s, _BIG), starts)
    first_user_ts = np.minimum.reduceat(np.where(is_user & has_ts, ts_s, _BIG), starts)
    user_cum = np.cumsum(is_user)
    user_before_group = np.r_[0, user_cum][starts]
    esc = first_pos(is_agent | is_handoff)
    esc_row = np.where(esc < _BIG, starts + np.minimum(esc, n), 0)
    esc_turn = np.where(esc < _BIG, user_cum[esc_row] - user_before_group, np.nan)

    out = pd.DataFrame({
        "conversation_id": pd.array(np.asarray(uniques)[codes_s[starts]], dtype="str"),
        "started_at": _to_time(started, _BIG),
        "ended_at": _to_time(ended, _NAT),
        "message_count": np.diff(np.r_[starts, n]).astype("int64"),
        "user_turns": np.add.reduceat(is_user.astype("int64"), starts),
        "bot_turns": np.add.reduceat(is_bot.astype("int64"), starts),
        "agent_turns": np.add.reduceat(is_agent.astype("int64"), starts),
    })
    out["duration_seconds"] = (out["ended_at"] - out["started_at"]).dt.total_seconds()
    ok = (reply_ts < _BIG) & (first_user_ts < _BIG)
    out["first_response_seconds"] = np.where(ok, (reply_ts - first_user_ts) / 1e9, np.nan)
    out["business_hours"] = hours.contains(out["started_at"]).to_numpy()
    out["has_agent"] = np.logical_or.reduceat(is_agent, starts)
    out["handoff_event"] = np.logical_or.reduceat(is_handoff, starts)
    out["first_handoff_turn"] = esc_turn.astype("float64")

    def first_value(col):
        values = messages[col]
        present = arr(values.notna().to_numpy(dtype=bool))
        at = first_pos(present)
        idx = np.where(at < _BIG, starts + np.minimum(at, n), -1)
        source = values.reset_index(drop=True)
        taken = source.take(np.where(idx >= 0, idx if order is None else order[np.maximum(idx, 0)], 0))
        taken = taken.reset_index(drop=True)
        return taken.where(pd.Series(idx >= 0), None if values.dtype != "float64" else np.nan).astype(values.dtype)

    for col in ("channel", "user_id"):
        if col in messages.columns:
            out[col] = first_value(col).astype("str")
        else:
            out[col] = pd.Series(pd.NA, index=out.index, dtype="str")
    out["repeat_user"] = _repeat_user(out)
    for col in CONVERSATION_FIELDS:
        if col in messages.columns:
            out[col] = first_value(col)
    for col in ("has_agent", "handoff_event", "business_hours", "repeat_user"):
        out[col] = out[col].astype(bool)
    extra = [c for c in out.columns if c not in ROLLUP_COLUMNS]
    return out[list(ROLLUP_COLUMNS) + extra]


_NAT = np.iinfo("int64").min
_BIG = np.iinfo("int64").max


def _to_time(values: np.ndarray, missing: int) -> pd.Series:
    out = pd.Series(pd.to_datetime(np.where(values == missing, _NAT, values), unit="ns", utc=True))
    return out.astype("datetime64[ns, UTC]")


def _repeat_user(rollup: pd.DataFrame) -> np.ndarray:
    """True where the user id appeared in an earlier conversation (by start time, then conversation id)."""
    users = rollup["user_id"]
    if users.isna().all():
        return np.zeros(len(rollup), dtype=bool)
    codes, _ = pd.factorize(users)
    started = np.asarray(rollup["started_at"].array.asi8)
    started = np.where(started == _NAT, _BIG, started)
    order = np.lexsort((np.arange(len(rollup)), started, codes))
    sorted_codes = codes[order]
    first = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]
    repeat = np.empty(len(rollup), dtype=bool)
    repeat[order] = ~first & (sorted_codes >= 0)
    return repeat


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
