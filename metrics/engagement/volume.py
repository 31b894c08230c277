"""Conversation volume: per day / week / month, hour x weekday, business hours, channel, spikes.

Every function takes the per-conversation rollup (:func:`metrics.core.rollup.conversation_rollup`)
and counts a conversation once, at the moment it *started* (``started_at``).

Definitions
-----------
``conversation_count``
    Conversations whose ``started_at`` falls in the bucket (day, ISO week, month -- the periods of
    :mod:`metrics.core.periods` --, hour of a weekday, ...), in the chosen ``timezone`` (default
    UTC). Buckets with no conversation are present with a count of 0, so trends and spike
    baselines see quiet days.
``share_rate``
    ``conversation_count`` / all conversations counted by the function (NaN when none).
Spike
    A day is a spike when its count is above ``median + k * robust_sd`` of the trailing
    ``window`` days before it (the day itself is not in its own baseline), where
    ``robust_sd = max(1.4826 * MAD, min_sd)`` and MAD is the median absolute deviation
    from that median. Days with fewer than ``min_history`` earlier days get no verdict.
    A spike is not good news by itself: see :data:`SPIKE_WARNING`.

Timestamps
----------
Every function here needs timestamps. An empty rollup gives an empty result; a non-empty
rollup whose ``started_at`` is all missing raises :class:`~metrics.errors.InsufficientDataError`.
Conversations without a start time among timed ones are left out (their number is the
``untimed_count`` of :func:`conversation_periods`' frame attrs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dataclasses import dataclass

from metrics.core.periods import normalise_freq, period_label, period_range, period_start
from metrics.errors import ConfigError, InsufficientDataError

__all__ = [
    "PERIODS",
    "NO_CHANNEL",
    "SPIKE_WARNING",
    "WEEKDAY_NAMES",
    "require_timestamps",
    "conversation_periods",
    "conversations_per_period",
    "hour_weekday_heatmap",
    "business_hours_split",
    "conversations_by_channel",
    "volume_spikes",
    "spike_days",
    "period_labels",
    "DenseSpan",
    "dense_span",
    "within_dense_span",
]

PERIODS = ("day", "week", "month")
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SPIKE_WARNING = ("A spike may mean a bug that triggers unwanted conversations, not success: "
                 "open the conversations of a spike day before celebrating.")
NO_CHANNEL = "(none)"
_TIMESTAMP_MESSAGE = ("the {view} view needs timestamps, and this dataset has none; "
                      "load an export with a timestamp column")


def require_timestamps(rollup: pd.DataFrame, *, view: str) -> None:
    """Raise :class:`InsufficientDataError` when a non-empty rollup has no start time at all.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"conversation_id": ["a"], "started_at": pd.Series([pd.NaT], dtype="datetime64[ns, UTC]")})
    >>> require_timestamps(r, view="volume")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.InsufficientDataError: the volume view needs timestamps ...
    """
    if len(rollup) and ("started_at" not in rollup.columns or not rollup["started_at"].notna().any()):
        raise InsufficientDataError(_TIMESTAMP_MESSAGE.format(view=view))


def _check_period(period: str) -> str:
    """The :mod:`metrics.core.periods` code of ``period`` (``"day"``/``"D"``, ``"week"``/``"W"``, ``"month"``/``"M"``)."""
    return normalise_freq(period, what="period")


def _local(started: pd.Series, timezone: str) -> pd.Series:
    try:
        return started.dt.tz_convert(timezone)
    except Exception as exc:  # noqa: BLE001 - any tz failure is a config error
        raise ConfigError(f"unknown time zone {timezone!r}: {exc}") from None


def conversation_periods(rollup: pd.DataFrame, *, timezone: str = "UTC") -> pd.DataFrame:
    """One row per timed conversation with the buckets it is counted in (for drill-down).

    Columns: ``conversation_id``, ``day`` ('YYYY-MM-DD'), ``week`` (ISO 'YYYY-Www'),
    ``month`` ('YYYY-MM'), ``weekday`` (0=Mon..6=Sun), ``weekday_name``, ``hour`` (0-23),
    ``business_hours`` ('business hours' | 'after hours'), ``channel`` (``'(none)'`` when
    missing). All in ``timezone``. ``frame.attrs['untimed_count']`` counts conversations left
    out because their start time is missing.

    Empty rollup: empty frame with these columns. No timestamps at all: InsufficientDataError.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"conversation_id": ["a"], "started_at": pd.to_datetime(["2026-08-03 22:30"], utc=True),
    ...                   "business_hours": [False], "channel": ["web"]})
    >>> conversation_periods(r, timezone="Europe/Berlin")[["day", "week", "hour"]].values.tolist()
    [['2026-08-04', '2026-W32', 0]]
    """
    require_timestamps(rollup, view="volume")
    timed = rollup[rollup["started_at"].notna()] if len(rollup) else rollup
    local = _local(timed["started_at"], timezone) if len(timed) else timed.get(
        "started_at", pd.Series([], dtype="datetime64[ns, UTC]"))
    cols = ["conversation_id", "day", "week", "month", "weekday", "weekday_name", "hour",
            "business_hours", "channel"]
    if len(timed) == 0:
        out = pd.DataFrame({c: pd.Series([], dtype="int64" if c in ("weekday", "hour") else "str")
                            for c in cols})
        out.attrs["untimed_count"] = int(len(rollup))
        return out
    channel = (timed["channel"] if "channel" in timed.columns
               else pd.Series(pd.NA, index=timed.index, dtype="str"))
    bh = timed["business_hours"] if "business_hours" in timed.columns else pd.Series(False, index=timed.index)
    out = pd.DataFrame({
        "conversation_id": timed["conversation_id"].astype("str"),
        "day": period_label(local, "D"),
        "week": period_label(local, "W"),
        "month": period_label(local, "M"),
        "weekday": local.dt.day_of_week.astype("int64"),
        "weekday_name": local.dt.day_of_week.map(lambda d: WEEKDAY_NAMES[d]).astype("str"),
        "hour": local.dt.hour.astype("int64"),
        "business_hours": bh.astype(bool).map({True: "business hours", False: "after hours"}).astype("str"),
        "channel": channel.astype("str").fillna(NO_CHANNEL),
    }).reset_index(drop=True)
    out.attrs["untimed_count"] = int(len(rollup) - len(timed))
    return out


def conversations_per_period(rollup: pd.DataFrame, *, period: str = "day",
                             timezone: str = "UTC") -> pd.DataFrame:
    """Conversations started per day, ISO week or month, with empty buckets filled by 0.

    Columns: ``period`` (the label: 'YYYY-MM-DD', 'YYYY-Www' or 'YYYY-MM'),
    ``period_start`` (naive local start of the bucket, for a time axis),
    ``conversation_count`` (int). Sorted by time, covering every bucket from the first to
    the last conversation.

    Empty rollup: empty frame. No timestamps: InsufficientDataError. A bad ``period``
    raises ConfigError.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"conversation_id": ["a", "b", "c"],
    ...     "started_at": pd.to_datetime(["2026-08-03 10:00", "2026-08-05 11:00", "2026-08-17 09:00"], utc=True)})
    >>> conversations_per_period(r, period="week")[["period", "conversation_count"]].values.tolist()
    [['2026-W32', 2], ['2026-W33', 0], ['2026-W34', 1]]
    """
    code = _check_period(period)
    require_timestamps(rollup, view="volume")
    empty = pd.DataFrame({"period": pd.Series([], dtype="str"),
                          "period_start": pd.Series([], dtype="datetime64[ns]"),
                          "conversation_count": pd.Series([], dtype="int64")})
    timed = rollup[rollup["started_at"].notna()] if len(rollup) else rollup
    if len(timed) == 0:
        return empty
    # buckets of the local calendar: naive local times (no daylight-saving jump inside a bucket)
    starts = period_start(_local(timed["started_at"], timezone).dt.tz_localize(None), code)
    counts = starts.value_counts()
    full = period_range(starts.min(), starts.max(), code)
    counts = counts.reindex(full, fill_value=0)
    labels = period_label(pd.Series(full), code)
    out = pd.DataFrame({"period": labels.astype("str").to_numpy(), "period_start": full.astype("datetime64[ns]"),
                        "conversation_count": counts.to_numpy().astype("int64")})
    return out


def hour_weekday_heatmap(rollup: pd.DataFrame, *, timezone: str = "UTC") -> pd.DataFrame:
    """Conversations started per (weekday, hour): the full 7 x 24 grid, zeros included.

    Columns: ``weekday`` (0=Mon..6=Sun), ``weekday_name``, ``hour`` (0-23),
    ``conversation_count`` (int), ``share_rate`` (count / all timed conversations; NaN when
    there are none). The peak cell is the row with the highest count.

    Empty rollup: the 168-cell grid with zero counts and NaN shares. No timestamps:
    InsufficientDataError.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"conversation_id": ["a", "b"],
    ...     "started_at": pd.to_datetime(["2026-08-03 10:05", "2026-08-03 10:50"], utc=True)})
    >>> h = hour_weekday_heatmap(r)
    >>> peak = h.loc[h["conversation_count"].idxmax()]
    >>> len(h), peak["weekday_name"], int(peak["hour"]), int(peak["conversation_count"])
    (168, 'Mon', 10, 2)
    """
    periods = conversation_periods(rollup, timezone=timezone)
    grid = pd.MultiIndex.from_product([range(7), range(24)], names=["weekday", "hour"])
    counts = periods.groupby(["weekday", "hour"]).size().reindex(grid, fill_value=0)
    out = counts.rename("conversation_count").reset_index()
    out["conversation_count"] = out["conversation_count"].astype("int64")
    out.insert(1, "weekday_name", out["weekday"].map(lambda d: WEEKDAY_NAMES[d]).astype("str"))
    total = int(out["conversation_count"].sum())
    out["share_rate"] = out["conversation_count"] / total if total else float("nan")
    return out


def business_hours_split(rollup: pd.DataFrame) -> pd.DataFrame:
    """Conversations started inside vs outside business hours (the rollup's ``business_hours``).

    The hours themselves are set when the rollup is built
    (:class:`metrics.core.rollup.BusinessHours`, default Mon-Fri 09:00-17:00 UTC).
    Columns: ``segment`` ('business hours' | 'after hours', both always present),
    ``conversation_count`` (int), ``share_rate`` (count / timed conversations; NaN when none).

    Empty rollup: both rows with 0 and NaN. No timestamps: InsufficientDataError.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"conversation_id": ["a", "b", "c", "d"], "business_hours": [True, False, False, False],
    ...     "started_at": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 20:00", "2026-08-08 10:00",
    ...                                   "2026-08-09 10:00"], utc=True)})
    >>> business_hours_split(r).values.tolist()
    [['business hours', 1, 0.25], ['after hours', 3, 0.75]]
    """
    periods = conversation_periods(rollup)
    counts = periods["business_hours"].value_counts().reindex(
        ["business hours", "after hours"], fill_value=0).astype("int64")
    total = int(counts.sum())
    out = pd.DataFrame({"segment": pd.Series(counts.index, dtype="str"),
                        "conversation_count": counts.to_numpy()})
    out["share_rate"] = out["conversation_count"] / total if total else float("nan")
    return out


def conversations_by_channel(rollup: pd.DataFrame) -> pd.DataFrame:
    """Conversations per channel (``'(none)'`` for a missing channel); needs no timestamps.

    Columns: ``channel``, ``conversation_count`` (int), ``share_rate`` (count / all
    conversations). Sorted by count, largest first, then channel name. Empty rollup:
    empty frame.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"conversation_id": ["a", "b", "c"], "channel": ["web", None, "web"]})
    >>> conversations_by_channel(r).values.tolist()
    [['web', 2, 0.6666666666666666], ['(none)', 1, 0.3333333333333333]]
    """
    if len(rollup) == 0:
        return pd.DataFrame({"channel": pd.Series([], dtype="str"),
                             "conversation_count": pd.Series([], dtype="int64"),
                             "share_rate": pd.Series([], dtype="float64")})
    channel = (rollup["channel"] if "channel" in rollup.columns
               else pd.Series(pd.NA, index=rollup.index, dtype="str"))
    counts = channel.astype("str").fillna(NO_CHANNEL).value_counts()
    out = pd.DataFrame({"channel": pd.Series(counts.index, dtype="str"),
                        "conversation_count": counts.to_numpy().astype("int64")})
    out = out.sort_values(["conversation_count", "channel"], ascending=[False, True], kind="stable")
    out["share_rate"] = out["conversation_count"] / len(rollup)
    return out.reset_index(drop=True)


def volume_spikes(rollup: pd.DataFrame, *, k: float = 3.5, window: int = 28, min_history: int = 7,
                  min_sd: float = 1.0, timezone: str = "UTC") -> pd.DataFrame:
    """Daily volume with a robust trailing baseline and a spike flag.

    For each day ``d`` (every day from the first to the last conversation, zeros included),
    the baseline is the ``window`` days before ``d`` (``d`` itself excluded, fewer at the
    start of the data):

    * ``baseline_median`` = median of those daily counts;
    * ``mad`` = median of ``|count - baseline_median|`` over the same days;
    * ``robust_sd`` = ``max(1.4826 * mad, min_sd)`` (1.4826 makes the MAD estimate a normal
      standard deviation; the floor stops a perfectly flat baseline from flagging +1);
    * ``threshold`` = ``baseline_median + k * robust_sd``;
    * ``is_spike`` = ``conversation_count > threshold``, only for days with at least
      ``min_history`` earlier days (otherwise False and the baseline columns are NaN).

    Columns: ``day`` ('YYYY-MM-DD'), ``day_start`` (naive local midnight),
    ``conversation_count``, ``baseline_median``, ``mad``, ``robust_sd``, ``threshold``,
    ``is_spike``. ``frame.attrs['warning']`` holds :data:`SPIKE_WARNING` when any day spikes.

    Empty rollup: empty frame. No timestamps: InsufficientDataError. ``k <= 0``,
    ``window < 2``, ``min_history`` outside ``1..window`` or ``min_sd < 0`` raise ConfigError.

    Examples
    --------
    >>> import pandas as pd
    >>> days = pd.date_range("2026-07-01", periods=30, freq="D", tz="UTC")
    >>> starts = [d for d in days for _ in range(10 if d.day != 25 else 60)]
    >>> r = pd.DataFrame({"conversation_id": [str(i) for i in range(len(starts))], "started_at": starts})
    >>> s = volume_spikes(r)
    >>> s.loc[s["is_spike"], "day"].tolist()
    ['2026-07-25']
    """
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not k > 0:
        raise ConfigError(f"spike k must be a positive number of robust standard deviations, got {k!r}")
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ConfigError(f"spike window must be a whole number of days >= 2, got {window!r}")
    if isinstance(min_history, bool) or not isinstance(min_history, int) or not 1 <= min_history <= window:
        raise ConfigError(f"min_history must be a whole number between 1 and window={window}, got {min_history!r}")
    if not isinstance(min_sd, (int, float)) or not min_sd >= 0:
        raise ConfigError(f"min_sd must be >= 0, got {min_sd!r}")
    daily = conversations_per_period(rollup, period="day", timezone=timezone)
    counts = daily["conversation_count"].astype("float64").to_numpy()
    med, mad = [], []
    for i in range(len(counts)):
        base = counts[max(0, i - window):i]
        if len(base) < min_history:
            med.append(float("nan"))
            mad.append(float("nan"))
            continue
        m = float(np.median(base))
        med.append(m)
        mad.append(float(np.median(np.abs(base - m))))
    out = pd.DataFrame({"day": daily["period"], "day_start": daily["period_start"],
                        "conversation_count": daily["conversation_count"]})
    out["baseline_median"] = pd.Series(med, dtype="float64")
    out["mad"] = pd.Series(mad, dtype="float64")
    out["robust_sd"] = (1.4826 * out["mad"]).clip(lower=float(min_sd)).where(out["mad"].notna())
    out["threshold"] = out["baseline_median"] + float(k) * out["robust_sd"]
    out["is_spike"] = (out["conversation_count"] > out["threshold"]).fillna(False).astype(bool)
    if out["is_spike"].any():
        out.attrs["warning"] = SPIKE_WARNING
    return out


def spike_days(rollup: pd.DataFrame, *, k: float = 3.5, window: int = 28, min_history: int = 7,
               min_sd: float = 1.0, timezone: str = "UTC") -> list[str]:
    """The days ('YYYY-MM-DD') that :func:`volume_spikes` flags, in date order.

    Empty rollup: ``[]``. No timestamps: InsufficientDataError. Remember
    :data:`SPIKE_WARNING`: a spike may mean a bug that triggers unwanted conversations.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"conversation_id": ["a"], "started_at": pd.to_datetime(["2026-08-03"], utc=True)})
    >>> spike_days(r)
    []
    """
    spikes = volume_spikes(rollup, k=k, window=window, min_history=min_history, min_sd=min_sd,
                           timezone=timezone)
    return spikes.loc[spikes["is_spike"], "day"].astype(str).tolist()


def period_labels(days, *, period: str) -> list[str]:
    """Labels of the ``period`` ('day' | 'week' | 'month') holding each 'YYYY-MM-DD' day, in order.

    Used to mark the weeks or months that contain a spike day. Empty input: ``[]``.

    Examples
    --------
    >>> period_labels(["2026-09-28", "2026-09-30"], period="week")
    ['2026-W40', '2026-W40']
    >>> period_labels(["2026-09-28"], period="month")
    ['2026-09']
    """
    code = _check_period(period)
    if len(days) == 0:
        return []
    stamps = pd.Series(pd.to_datetime(list(days)))
    return period_label(stamps, code).astype(str).tolist()


# --------------------------------------------------------------------------- the dense time range
@dataclass(frozen=True)
class DenseSpan:
    """Where the conversations of a dataset are in time (:func:`dense_span`).

    ``start``/``end`` bound the dense range (None without timestamps); ``outlier_count`` conversations start
    outside it, on the days ``outlier_days`` (ISO dates, earliest first, at most 10).
    """

    start: pd.Timestamp | None
    end: pd.Timestamp | None
    outlier_count: int = 0
    outlier_days: tuple[str, ...] = ()

    @property
    def trimmed(self) -> bool:
        """True when some conversations lie outside the dense range."""
        return self.outlier_count > 0


def dense_span(rollup: pd.DataFrame, *, tail_rate: float = 0.01, pad_rate: float = 0.5) -> DenseSpan:
    """The time range holding almost every conversation, so that a few stray dates (a 2011 tweet in a 2017
    export) do not stretch a time axis over years.

    Definition: ``lo``/``hi`` are the ``tail_rate`` and ``1 - tail_rate`` quantiles of the conversations'
    ``started_at``; the dense range is ``[lo - pad, hi + pad]`` with ``pad = max(1 day, pad_rate * (hi - lo))``,
    widened to the first and last conversation when nothing lies outside. Conversations outside it are
    outliers; at most ``tail_rate`` of them per side can be (plus ties), so ordinary data is never trimmed.
    No timestamps: ``DenseSpan(None, None)``.

    Examples
    --------
    >>> days = ["2011-08-29"] + [f"2017-10-{d:02d}" for d in range(1, 31)] * 10
    >>> r = pd.DataFrame({"started_at": pd.to_datetime(days, utc=True)})
    >>> span = dense_span(r)
    >>> span.outlier_count, span.outlier_days, span.start.date().isoformat(), span.end.date().isoformat()
    (1, ('2011-08-29',), '2017-10-01', '2017-10-30')
    >>> dense_span(r.iloc[1:]).trimmed
    False
    """
    if not 0 <= tail_rate < 0.5 or pad_rate < 0:
        raise ConfigError(f"tail_rate must be in [0, 0.5) and pad_rate >= 0, got {tail_rate!r}, {pad_rate!r}")
    starts = rollup["started_at"].dropna() if "started_at" in rollup.columns else pd.Series([], dtype=object)
    if len(starts) == 0:
        return DenseSpan(None, None)
    lo, hi = starts.quantile(tail_rate), starts.quantile(1 - tail_rate)
    pad = max(pd.Timedelta(days=1), (hi - lo) * pad_rate)
    inside = starts.between(lo - pad, hi + pad)
    if inside.all():
        return DenseSpan(starts.min(), starts.max())
    kept = starts[inside]
    days = sorted(set(starts[~inside].dt.strftime("%Y-%m-%d")))
    return DenseSpan(kept.min(), kept.max(), int((~inside).sum()), tuple(days[:10]))


def within_dense_span(frame: pd.DataFrame, span: DenseSpan, *, column: str = "started_at") -> pd.DataFrame:
    """The rows of ``frame`` whose ``column`` lies in ``span`` (all rows when nothing is trimmed; rows
    without a time are kept). A new frame; ``frame`` is not changed.

    Examples
    --------
    >>> r = pd.DataFrame({"started_at": pd.to_datetime(["2011-08-29", "2017-10-01", None], utc=True)})
    >>> len(within_dense_span(r, DenseSpan(r["started_at"][1], r["started_at"][1], 1, ("2011-08-29",))))
    2
    """
    if not span.trimmed or column not in frame.columns:
        return frame.copy()
    times = frame[column]
    keep = times.isna() | times.between(span.start, span.end)
    return frame[keep.to_numpy(bool)].reset_index(drop=True)
