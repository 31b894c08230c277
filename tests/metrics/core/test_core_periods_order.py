"""metrics.core.periods (day / ISO week / month start, end, label) and metrics.core.order (the
conversation order of messages): golden examples, and equality with pandas / Python's own
calendar and sort."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.core import memo
from metrics.core.order import (ConversationOrder, conversation_codes, conversation_order, group_starts,
                                message_order, row_key, sort_messages, sort_positions, time_key)
from metrics.core.periods import (FREQUENCIES, normalise_freq, period_end, period_label, period_range,
                                  period_start, previous_period_start)
from metrics.errors import ConfigError


def utc(*stamps) -> pd.Series:
    return pd.Series(pd.to_datetime(list(stamps), utc=True, format="ISO8601"))


def days(series: pd.Series) -> list[str | None]:
    return [None if pd.isna(t) else t.strftime("%Y-%m-%d") for t in series]


# ============================================================================ periods
@pytest.mark.parametrize("given_, code", [("D", "D"), ("day", "D"), ("W", "W"), ("week", "W"), ("M", "M"),
                                          ("month", "M")])
def test_both_spellings_normalise_to_one_code(given_, code):
    assert normalise_freq(given_) == code


@pytest.mark.parametrize("bad", ["fortnight", "d", "Week", None, 7])
def test_an_unknown_frequency_is_a_config_error_naming_it(bad):
    with pytest.raises(ConfigError, match=repr(bad).replace("(", r"\(")):
        normalise_freq(bad)


def test_a_caller_can_refuse_a_frequency_and_say_what_it_accepts():
    with pytest.raises(ConfigError, match=r"period must be 'W' or 'week' \(ISO week\), 'M' or 'month'.*got 'D'"):
        normalise_freq("D", allowed=("week", "M"), what="period")
    assert normalise_freq("month", allowed=("W", "M")) == "M"


def test_iso_week_53_and_the_year_boundary():
    # 1 Jan 2026 is a Thursday: 2026 has 53 ISO weeks; 2025-12-29 (Monday) starts 2026-W01 and
    # 2027-01-03 (Sunday) still belongs to 2026-W53.
    ts = utc("2025-12-28T23:59:59Z", "2025-12-29T00:00:00Z", "2026-01-01T12:00:00Z", "2026-12-31T08:00:00Z",
             "2027-01-03T23:59:59Z", "2027-01-04T00:00:00Z")
    assert period_label(ts, "W").tolist() == ["2025-W52", "2026-W01", "2026-W01", "2026-W53", "2026-W53", "2027-W01"]
    assert days(period_start(ts, "W")) == ["2025-12-22", "2025-12-29", "2025-12-29", "2026-12-28", "2026-12-28",
                                            "2027-01-04"]
    assert period_label(period_start(ts, "W"), "W").tolist() == period_label(ts, "W").tolist()
    assert str(period_end(pd.Timestamp("2026-12-28", tz="UTC"), "W")) == "2027-01-04 00:00:00+00:00"
    assert period_label(previous_period_start(pd.Timestamp("2026-01-05", tz="UTC"), "W"), "W") == "2026-W01"
    assert period_label(previous_period_start(pd.Timestamp("2025-12-29", tz="UTC"), "W"), "W") == "2025-W52"


def test_month_start_end_and_label():
    ts = utc("2026-08-31T23:59:59Z", "2026-08-01T00:00:00Z", "2026-12-15T10:00:00Z", "2024-02-29T12:00:00Z")
    assert days(period_start(ts, "M")) == ["2026-08-01", "2026-08-01", "2026-12-01", "2024-02-01"]
    assert period_label(ts, "month").tolist() == ["2026-08", "2026-08", "2026-12", "2024-02"]
    assert days(period_end(period_start(ts, "M"), "M")) == ["2026-09-01", "2026-09-01", "2027-01-01", "2024-03-01"]
    assert str(previous_period_start(pd.Timestamp("2026-01-01", tz="UTC"), "M").date()) == "2025-12-01"
    assert [str(t.date()) for t in period_range(pd.Timestamp("2026-11-01", tz="UTC"),
                                                pd.Timestamp("2027-02-01", tz="UTC"), "M")] == [
        "2026-11-01", "2026-12-01", "2027-01-01", "2027-02-01"]


def test_day_start_end_and_label():
    ts = utc("2026-08-03T23:59:59.999Z", "2026-08-04T00:00:00Z")
    assert days(period_start(ts, "D")) == ["2026-08-03", "2026-08-04"]
    assert period_label(ts, "day").tolist() == ["2026-08-03", "2026-08-04"]
    assert str(period_end(pd.Timestamp("2026-12-31", tz="UTC"), "D").date()) == "2027-01-01"


def test_utc_periods_never_see_daylight_saving():
    # Europe moves its clocks on 29 March and 25 October 2026: UTC days and weeks stay 24 h and 7 days.
    ts = pd.Series(pd.date_range("2026-03-20", "2026-11-10", freq="5h", tz="UTC"))
    for code, length in (("D", pd.Timedelta(days=1)), ("W", pd.Timedelta(days=7))):
        starts = period_start(ts, code)
        assert ((period_end(starts, code) - starts) == length).all()
        assert (starts == starts.dt.normalize()).all() and (starts <= ts).all() and (ts < period_end(starts, code)).all()
        assert str(starts.dt.tz) == "UTC"


def test_the_caller_chooses_the_calendar_naive_local_or_utc():
    # 22:30 UTC on 28 March is 23:30 in Berlin (CET); 22:30 UTC on 29 March is 00:30 on the 30th (CEST).
    ts = utc("2026-03-28T22:30:00Z", "2026-03-29T22:30:00Z")
    local = ts.dt.tz_convert("Europe/Berlin").dt.tz_localize(None)
    assert period_label(local, "D").tolist() == ["2026-03-28", "2026-03-30"]
    assert period_start(local, "D").dt.tz is None
    assert period_label(ts, "D").tolist() == ["2026-03-28", "2026-03-29"]
    # the week of Sunday 29 March 23:30 UTC is 2026-W13; in Berlin it is already Monday: 2026-W14
    sunday = utc("2026-03-29T23:30:00Z")
    assert period_label(sunday, "W").tolist() == ["2026-W13"]
    assert period_label(sunday.dt.tz_convert("Europe/Berlin").dt.tz_localize(None), "W").tolist() == ["2026-W14"]


def test_missing_times_give_missing_starts_and_labels_and_the_index_is_kept():
    ts = pd.Series(pd.to_datetime(["2026-08-03", None], utc=True), index=[10, 20])
    for code in FREQUENCIES:
        start, label = period_start(ts, code), period_label(ts, code)
        assert list(start.index) == list(label.index) == [10, 20]
        assert pd.isna(start[20]) and pd.isna(label[20]) and not pd.isna(label[10])
        assert label.dtype == "str"


def test_one_timestamp_gives_one_label():
    assert period_label(pd.Timestamp("2027-01-02", tz="UTC"), "W") == "2026-W53"
    assert period_label(pd.Timestamp("2027-01-02"), "M") == "2027-01"
    assert period_label(dt.date(2027, 1, 2), "D") == "2027-01-02"


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", None])
def test_long_series_are_labelled_per_day_with_the_same_labels(zone):
    ts = pd.Series(pd.date_range("2025-12-01", periods=2500, freq="97min", tz="UTC"))
    ts = ts.dt.tz_convert(zone) if zone else ts.dt.tz_localize(None)
    for code in FREQUENCIES:
        fast = period_label(ts, code)  # > 1000 values: once per distinct day
        slow = pd.concat([period_label(ts.iloc[i:i + 500], code) for i in range(0, len(ts), 500)])
        pd.testing.assert_series_equal(fast, slow)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2200, 12, 31)))
def test_periods_equal_pandas_periods_and_pythons_iso_calendar(moment):
    ts = pd.Series([pd.Timestamp(moment)], dtype="datetime64[ns]")
    assert period_start(ts, "W").iloc[0] == ts.dt.to_period("W-SUN").dt.start_time.iloc[0]
    assert period_start(ts, "M").iloc[0] == ts.dt.to_period("M").dt.start_time.iloc[0]
    assert period_start(ts, "D").iloc[0] == ts.dt.to_period("D").dt.start_time.iloc[0]
    year, week, _ = moment.isocalendar()
    assert period_label(ts, "W").iloc[0] == f"{year}-W{week:02d}"
    assert period_label(ts, "M").iloc[0] == moment.strftime("%Y-%m")
    assert period_label(ts, "D").iloc[0] == moment.strftime("%Y-%m-%d")
    start = period_start(ts, "M").iloc[0]
    assert period_end(start, "M") == (start.to_period("M") + 1).start_time


# ============================================================================ order
GOLDEN = pd.DataFrame({
    "conversation_id": pd.array(["b9", "b10", "a", "a", "b9", None, "a", "b9"], dtype="str"),
    "timestamp": pd.to_datetime(["2026-08-03T10:00Z", "2026-08-03T09:00Z", "2026-08-03T11:00Z", None,
                                 "2026-08-03T09:00Z", "2026-08-01T00:00Z", "2026-08-03T11:00Z",
                                 "2026-08-03T10:00Z"], utc=True),
    "row": [1, 2, 3, 4, 5, 6, 7, 1],
})


def test_golden_conversation_order():
    # a: 11:00 rows 3 and 7 (row order), then the untimed row 4 last; "b10" < "b9" as text;
    # b9: 09:00 row 5, then 10:00 row 1 twice (positions 0 and 7 keep their order); the missing id last.
    assert message_order(GOLDEN).tolist() == [2, 6, 3, 1, 4, 0, 7, 5]
    o = conversation_order(GOLDEN)
    assert o.codes.tolist() == [0, 0, 0, 1, 2, 2, 2, -1] and o.ids.tolist() == ["a", "b10", "b9"]
    assert o.known_count == 7 and group_starts(o.codes).tolist() == [0, 3, 4, 7]


def test_ties_keep_their_row_order_and_then_their_position():
    f = pd.DataFrame({"conversation_id": ["a"] * 4, "row": [2, 1, 2, 1],
                      "timestamp": pd.to_datetime(["2026-08-03T10:00Z"] * 4, utc=True)})
    assert message_order(f).tolist() == [1, 3, 0, 2]
    no_row = f.drop(columns="row")
    assert message_order(no_row).tolist() == [0, 1, 2, 3] and sort_messages(no_row) is None


def test_a_shuffled_frame_is_ordered_identically():
    rng = np.random.default_rng(7)
    for _ in range(20):
        shuffled = GOLDEN.iloc[rng.permutation(len(GOLDEN))].reset_index(drop=True)
        ordered = shuffled.iloc[message_order(shuffled)].reset_index(drop=True)
        # rows 0 and 7 of GOLDEN are equal on every key; everything else is fully determined
        expected = GOLDEN.iloc[[2, 6, 3, 1, 4, 0, 7, 5]].reset_index(drop=True)
        pd.testing.assert_frame_equal(ordered, expected)


def test_an_ordered_frame_is_not_sorted_again():
    ordered = GOLDEN.iloc[message_order(GOLDEN)].reset_index(drop=True)
    assert sort_messages(ordered) is None and conversation_order(ordered).take is None
    assert message_order(ordered).tolist() == list(range(len(ordered)))


def test_conversation_codes_fast_and_general_paths_agree_with_factorize():
    grouped = pd.Series(["a", "a", "b10", "b9", "b9"], dtype="str")  # grouped, ascending: neighbour path
    scattered = pd.Series(["b9", "a", "b10", None, "a"], dtype="str")  # factorize path
    for ids in (grouped, scattered):
        codes, uniques = conversation_codes(ids)
        expected_codes, expected_uniques = pd.factorize(ids, sort=True)
        assert codes.tolist() == expected_codes.tolist() and uniques.tolist() == list(expected_uniques)
        assert uniques.dtype == "str"
    codes, uniques = conversation_codes(pd.Series([10, 9, 10]))  # non-text ids compare as text
    assert codes.tolist() == [0, 1, 0] and uniques.tolist() == ["10", "9"]


def test_time_and_row_keys_put_missing_values_last():
    naive = pd.Series(pd.to_datetime(["2026-08-03 10:00", None, "2026-08-03 09:00"]))
    assert np.argsort(time_key(naive), kind="stable").tolist() == [2, 0, 1]
    aware_us = naive.dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    assert np.argsort(time_key(aware_us), kind="stable").tolist() == [2, 0, 1]
    assert np.argsort(time_key(pd.Series(["b", None, "a"])), kind="stable").tolist() == [2, 0, 1]
    assert row_key(pd.DataFrame({"row": [5.0, np.nan, 2.0]})).tolist() == [1, 2, 0]
    assert row_key(pd.DataFrame({"row": pd.array([5, None, 2], dtype="Int64")})).tolist() == [1, 2, 0]


def test_sort_positions_and_group_starts():
    assert sort_positions([np.array([1, 0, 1]), np.array([5, 9, 4])]).tolist() == [1, 2, 0]
    assert sort_positions([np.array([0, 0]), np.array([3, 3])]) is None
    assert sort_positions([np.array([], dtype=np.int64)]) is None
    assert group_starts(np.array([3, 3, 3])).tolist() == [0]


def test_the_order_is_kept_per_frame_content_and_cannot_be_changed():
    memo.clear()
    first = conversation_order(GOLDEN)
    again = conversation_order(GOLDEN.copy(deep=True).assign(compound=0.0))  # another column: same order
    assert again is first and isinstance(first, ConversationOrder)
    with pytest.raises(ValueError):
        first.codes[0] = 5
    with pytest.raises(ValueError):
        first.take[0] = 5
    changed = GOLDEN.assign(row=GOLDEN["row"][::-1].to_numpy())
    assert conversation_order(changed) is not first


def test_no_timestamp_column_orders_by_conversation_and_row():
    f = pd.DataFrame({"conversation_id": ["b", "a", "b"], "row": [3, 2, 1]})
    assert message_order(f).tolist() == [1, 2, 0]


def test_empty_frame():
    f = pd.DataFrame({"conversation_id": pd.Series([], dtype="str"),
                      "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"), "row": pd.Series([], dtype="int64")})
    o = conversation_order(f)
    assert message_order(f).tolist() == [] and o.take is None and o.known_count == 0 and len(o.ids) == 0


@st.composite
def messy_frames(draw):
    n = draw(st.integers(min_value=0, max_value=25))
    ids = draw(st.lists(st.sampled_from(["a", "b", "b10", "b9", None]), min_size=n, max_size=n))
    hours = draw(st.lists(st.sampled_from([None, 1, 2, 2, 3]), min_size=n, max_size=n))
    rows = draw(st.lists(st.integers(1, 6), min_size=n, max_size=n))
    return pd.DataFrame({
        "conversation_id": pd.array(ids, dtype="str"),
        "timestamp": pd.Series([None if h is None else pd.Timestamp("2026-08-03", tz="UTC") + pd.Timedelta(hours=h)
                                for h in hours], dtype="datetime64[ns, UTC]"),
        "row": pd.Series(rows, dtype="int64"),
    })


@settings(max_examples=200, deadline=None)
@given(messy_frames())
def test_the_kernel_equals_a_plain_python_stable_sort(frame):
    records = frame.to_dict("records")

    def key(i):
        r = records[i]
        missing_id = r["conversation_id"] is None or r["conversation_id"] is pd.NA or pd.isna(r["conversation_id"])
        return (missing_id, "" if missing_id else str(r["conversation_id"]), pd.isna(r["timestamp"]),
                0 if pd.isna(r["timestamp"]) else r["timestamp"].value, r["row"])

    assert message_order(frame).tolist() == sorted(range(len(records)), key=key)


def test_rollup_leaves_out_messages_without_a_conversation_id():
    # metrics.core.rollup takes the kernel's order, where they come last; they are no conversation
    from metrics.core.rollup import conversation_rollup

    m = pd.DataFrame({"conversation_id": pd.array(["b", None, "a"], dtype="str"), "speaker": ["user"] * 3,
                      "text": ["x"] * 3, "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"],
                                                                     utc=True)})
    r = conversation_rollup(m)
    assert r["conversation_id"].tolist() == ["a", "b"] and r["message_count"].tolist() == [1, 1]
    assert len(conversation_rollup(m.iloc[[1]])) == 0
