"""Volume: conversations per day/week/month, hour x weekday heatmap, business hours, channel, spikes."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import messages_frame

from metrics.errors import ConfigError, InsufficientDataError
from metrics.core.rollup import BusinessHours, conversation_rollup
from metrics.engagement.volume import (SPIKE_WARNING, business_hours_split, conversation_periods, conversations_by_channel,
                            conversations_per_period, hour_weekday_heatmap, spike_days, volume_spikes)


def rollup_of(starts, channels=None):
    """A minimal rollup: one conversation per start time (UTC strings)."""
    n = len(starts)
    return pd.DataFrame({
        "conversation_id": pd.Series([f"c{i:04d}" for i in range(n)], dtype="str"),
        "started_at": pd.to_datetime(pd.Series(starts, dtype="object"), utc=True).astype("datetime64[ns, UTC]"),
        "channel": pd.Series(channels if channels is not None else [None] * n, dtype="str"),
        "business_hours": [False] * n,
    })


def daily_rollup(counts, start="2026-07-01"):
    """``counts[i]`` conversations on day i, all at 10:00 UTC."""
    days = pd.date_range(start, periods=len(counts), freq="D", tz="UTC") + pd.Timedelta(hours=10)
    return rollup_of([d for d, k in zip(days, counts) for _ in range(k)])


def test_per_day_week_month_fill_gaps():
    r = rollup_of(["2026-08-03 10:00", "2026-08-03 23:59", "2026-08-05 00:00", "2026-09-14 12:00"])
    day = conversations_per_period(r, period="day")
    # 2026-08-03 .. 2026-09-14 = 43 days; two on the 3rd, one on the 5th, one on 14 Sep, the rest zeros
    assert len(day) == 43 and day["conversation_count"].sum() == 4
    by_day = day.set_index("period")["conversation_count"]
    assert by_day.loc[["2026-08-03", "2026-08-04", "2026-08-05"]].tolist() == [2, 0, 1]
    week = conversations_per_period(r, period="week")
    # ISO weeks 32 (3 Aug) .. 38 (14 Sep): 3 in W32, nothing until 1 in W38
    assert week["period"].tolist() == [f"2026-W{w}" for w in range(32, 39)]
    assert week["conversation_count"].tolist() == [3, 0, 0, 0, 0, 0, 1]
    assert week["period_start"].iloc[0] == pd.Timestamp("2026-08-03")
    month = conversations_per_period(r, period="month")
    assert month[["period", "conversation_count"]].values.tolist() == [["2026-08", 3], ["2026-09", 1]]


def test_iso_week_at_year_boundary():
    # 2026-01-01 is a Thursday in ISO week 2026-W01; 2025-12-29 (Monday) starts that week
    r = rollup_of(["2025-12-28 10:00", "2026-01-01 10:00"])
    week = conversations_per_period(r, period="week")
    assert week[["period", "conversation_count"]].values.tolist() == [["2025-W52", 1], ["2026-W01", 1]]


def test_timezone_moves_day_boundary():
    r = rollup_of(["2026-08-03 22:30"])
    # 22:30 UTC is 00:30 on the 4th in Berlin (UTC+2 in summer)
    assert conversations_per_period(r, timezone="Europe/Berlin")["period"].tolist() == ["2026-08-04"]
    with pytest.raises(ConfigError, match="Mars/Base"):
        conversations_per_period(r, timezone="Mars/Base")


def test_bad_period_and_no_timestamps():
    r = rollup_of(["2026-08-03 10:00"])
    with pytest.raises(ConfigError, match="'fortnight'"):
        conversations_per_period(r, period="fortnight")
    untimed = rollup_of([None, None])
    for fn in (conversations_per_period, hour_weekday_heatmap, business_hours_split, volume_spikes, spike_days):
        with pytest.raises(InsufficientDataError, match="needs timestamps"):
            fn(untimed)


def test_empty_rollup():
    r = rollup_of([])
    assert conversations_per_period(r).empty
    heat = hour_weekday_heatmap(r)
    assert len(heat) == 168 and heat["conversation_count"].sum() == 0 and heat["share_rate"].isna().all()
    split = business_hours_split(r)
    assert split["conversation_count"].tolist() == [0, 0] and split["share_rate"].isna().all()
    assert conversations_by_channel(r).empty
    assert spike_days(r) == [] and volume_spikes(r).empty


def test_heatmap_cells():
    # Monday 2026-08-03 10:05 and 10:50 -> (Mon, 10) = 2; Sunday 2026-08-09 23:10 -> (Sun, 23) = 1
    r = rollup_of(["2026-08-03 10:05", "2026-08-03 10:50", "2026-08-09 23:10"])
    heat = hour_weekday_heatmap(r).set_index(["weekday_name", "hour"])
    assert heat.loc[("Mon", 10), "conversation_count"] == 2
    assert heat.loc[("Sun", 23), "conversation_count"] == 1
    assert heat.loc[("Mon", 10), "share_rate"] == pytest.approx(2 / 3)
    assert heat["conversation_count"].sum() == 3 and len(heat) == 168


def test_business_hours_split_uses_rollup_hours():
    m = messages_frame([
        {"conversation_id": "a", "timestamp": "2026-08-03 08:30", "speaker": "user", "text": "x"},  # Mon 08:30
        {"conversation_id": "b", "timestamp": "2026-08-03 12:00", "speaker": "user", "text": "x"},  # Mon noon
        {"conversation_id": "c", "timestamp": "2026-08-08 12:00", "speaker": "user", "text": "x"},  # Saturday
    ])
    split = business_hours_split(conversation_rollup(m)).set_index("segment")
    # default Mon-Fri 09-17 UTC: only b is inside
    assert split["conversation_count"].to_dict() == {"business hours": 1, "after hours": 2}
    # opening at 08:00 brings a inside too
    wide = business_hours_split(conversation_rollup(m, business_hours=BusinessHours(start_hour=8)))
    assert wide.set_index("segment").loc["business hours", "conversation_count"] == 2


def test_by_channel_counts_missing_as_none():
    r = rollup_of(["2026-08-03"] * 4, channels=["web", None, "whatsapp", "web"])
    assert conversations_by_channel(r)[["channel", "conversation_count"]].values.tolist() == [
        ["web", 2], ["(none)", 1], ["whatsapp", 1]]
    assert conversations_by_channel(r)["share_rate"].sum() == pytest.approx(1.0)


def test_conversation_periods_for_drill_down():
    r = rollup_of(["2026-08-03 10:05", None], channels=["web", "app"])
    p = conversation_periods(r)
    assert p[["conversation_id", "day", "week", "month", "weekday_name", "hour", "channel"]].values.tolist() == [
        ["c0000", "2026-08-03", "2026-W32", "2026-08", "Mon", 10, "web"]]
    assert p.attrs["untimed_count"] == 1


# ----------------------------------------------------------------------------- spikes

def test_spike_golden():
    # days 1-28 alternate 10, 12; day 29 = 17; day 30 = 16
    counts = [10, 12] * 14 + [17, 16]
    s = volume_spikes(daily_rollup(counts))
    day29, day30 = s.iloc[28], s.iloc[29]
    # day 29: baseline days 1-28 -> median 11, |x - 11| = 1 everywhere -> MAD 1, robust sd 1.4826,
    # threshold 11 + 3.5 * 1.4826 = 16.1891 -> 17 is a spike
    assert day29["baseline_median"] == 11 and day29["mad"] == 1
    assert day29["threshold"] == pytest.approx(11 + 3.5 * 1.4826)
    assert bool(day29["is_spike"])
    # day 30: baseline days 2-29 = 13 tens, 14 twelves and the 17 -> median 12; deviations 14 zeros,
    # 13 twos, one 5 -> MAD (0 + 2) / 2 = 1; threshold 12 + 5.1891 = 17.1891 -> 16 is not a spike
    assert day30["baseline_median"] == 12 and day30["mad"] == 1
    assert not bool(day30["is_spike"])
    assert s["is_spike"].sum() == 1 and s.attrs["warning"] == SPIKE_WARNING
    assert spike_days(daily_rollup(counts)) == ["2026-07-29"]
    # k is configurable: with k = 2, day 30's threshold is 12 + 2.9652 = 14.97 -> 16 spikes too
    assert spike_days(daily_rollup(counts), k=2) == ["2026-07-29", "2026-07-30"]


def test_spike_needs_min_history_and_window():
    counts = [5] * 10 + [40]
    s = volume_spikes(daily_rollup(counts))
    # the first 7 days have fewer than 7 earlier days: no verdict
    assert s["baseline_median"].iloc[:7].isna().all() and s["baseline_median"].iloc[7:].notna().all()
    # flat baseline: MAD 0 -> robust sd floored at min_sd = 1 -> threshold 8.5
    assert s["threshold"].iloc[10] == pytest.approx(8.5)
    assert spike_days(daily_rollup(counts)) == ["2026-07-11"]
    # a 3-day window with min_history 3 keeps only the three days before each day in the baseline
    assert volume_spikes(daily_rollup([1, 1, 1, 50, 1]), window=3, min_history=3)["is_spike"].tolist() == [
        False, False, False, True, False]


def test_flat_baseline_floor():
    # 5 every day, then 8 and 9: threshold 5 + 3.5 * 1 = 8.5 -> 8 is normal, 9 spikes
    assert spike_days(daily_rollup([5] * 10 + [8])) == []
    assert spike_days(daily_rollup([5] * 10 + [9])) == ["2026-07-11"]


def test_no_warning_without_spike():
    s = volume_spikes(daily_rollup([5] * 10))
    assert "warning" not in s.attrs and not s["is_spike"].any()


@pytest.mark.parametrize("kwargs,shown", [
    (dict(k=0), "0"), (dict(k=-1.5), "-1.5"), (dict(window=1), "1"), (dict(window=7.5), "7.5"),
    (dict(min_history=0), "0"), (dict(min_history=40), "40"), (dict(min_sd=-1), "-1"),
])
def test_spike_options_validation(kwargs, shown):
    with pytest.raises(ConfigError) as info:
        volume_spikes(daily_rollup([1, 2, 3]), **kwargs)
    assert shown in str(info.value)


def test_share_rates_are_nan_not_zero_when_nothing_counted():
    heat = hour_weekday_heatmap(rollup_of([]))
    assert all(math.isnan(v) for v in heat["share_rate"])


