"""Values no chat message can have, and ids that differ only invisibly (metrics.io.validate).

Golden cases: the tiny CSVs in ``tests/fixtures/values`` go through :func:`metrics.io.loaders.load_bytes` and
each asserts the exact problems (row, column, value, message) or the exact notice, and the values that load.
Properties: arbitrary mixes of timestamps never raise and never load an implausible time silently, a value is
read the same wherever it is in its column, and ids are cleaned exactly as one value at a time would be.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from conftest import FIXTURES
from metrics.errors import ValidationError
from metrics.io.loaders import load_bytes
from metrics.io.validate import EARLIEST_TIMESTAMP, EXCEL_SERIAL_DAYS, MAX_YEARS_AHEAD, normalize

VALUES = FIXTURES / "values"
NOW = pd.Timestamp("2026-12-01T00:00:00Z")  # so the latest plausible time is 2027-12-01T00:00:00Z
ISO_FIX = "ISO 8601 such as 2024-05-01T14:03:00Z"


def _load(name: str, **options):
    return load_bytes((VALUES / name).read_bytes(), name, now=NOW, **options)


def _problems(result) -> list[tuple]:
    return [(int(p.row), p.column, p.value, p.message) for p in result.skipped.itertuples()]


def _times(frame: pd.DataFrame) -> list[str | None]:
    return [None if pd.isna(t) else t.isoformat() for t in frame["timestamp"]]


# --------------------------------------------------------------------------- the rules, as constants

def test_the_plausible_range_is_1990_to_a_year_ahead_and_excel_serials_are_1954_to_2119():
    assert EARLIEST_TIMESTAMP == pd.Timestamp("1990-01-01T00:00:00Z")
    assert MAX_YEARS_AHEAD == 1
    excel_day0 = pd.Timestamp("1899-12-30")
    assert [str((excel_day0 + pd.Timedelta(days=d)).date()) for d in EXCEL_SERIAL_DAYS] == ["1954-10-03", "2119-01-11"]


# --------------------------------------------------------------------------- golden cases: timestamps

def test_excel_serial_dates_are_refused_never_read_as_1970():
    r = _load("excel_serial_dates.csv", on_error="skip")
    message = "looks like an Excel serial date (days since 1899-12-30), not epoch seconds"
    assert _problems(r) == [(1, "timestamp", "45292", message), (2, "timestamp", "45292.5417", message)]
    fix = r.skipped["fix"].iloc[0]
    assert fix == ("export the column as ISO 8601 text (in Excel: Format Cells > Custom > yyyy-mm-dd hh:mm:ss); "
                   "as an Excel date, 45292 is 2024-01-01 00:00")
    assert r.frame["text"].tolist() == ["iso"] and _times(r.frame) == ["2024-01-01T13:05:00+00:00"]
    with pytest.raises(ValidationError) as info:  # the default refuses the file, naming the first bad value
        _load("excel_serial_dates.csv")
    first = info.value.problems[0]
    assert (first.row, first.column, first.value, first.message) == (1, "timestamp", "45292", message)


def test_the_excel_fix_names_the_date_of_the_first_serial():
    data = b"conversation_id,timestamp,speaker,text\nc1,45292.5417,user,one pm\nc1,45292,bot,midnight\n"
    with pytest.raises(ValidationError) as info:
        load_bytes(data, "serial.csv", now=NOW)
    assert [p.value for p in info.value.problems] == ["45292.5417", "45292"]
    assert {p.fix.split("; ")[-1] for p in info.value.problems} == {"as an Excel date, 45292.5417 is 2024-01-01 13:00"}


def test_negative_epochs_are_refused():
    r = _load("negative_epochs.csv", on_error="skip")
    message = "negative epoch time (before 1970)"
    assert _problems(r) == [(1, "timestamp", "-86400", message), (2, "timestamp", "-1.5", message)]
    assert set(r.skipped["fix"]) == {f"give epoch seconds or milliseconds since 1970-01-01 UTC, or {ISO_FIX}"}
    assert r.frame["text"].tolist() == ["fine"] and _times(r.frame) == ["2024-01-01T10:00:00+00:00"]


def test_years_outside_1990_to_a_year_ahead_are_refused_and_the_bounds_load():
    r = _load("implausible_years.csv", on_error="skip")
    early = "timestamp before 1990-01-01, earlier than any chat transcript"
    late = "timestamp more than 1 year after now (after 2027-12-01)"
    assert _problems(r) == [
        (1, "timestamp", "0001-01-01", early),
        (2, "timestamp", "9999-12-31", late),
        (3, "timestamp", "2261-12-31T23:59:59Z", late),
        (4, "timestamp", "1989-12-31T23:59:59Z", early),
        (6, "timestamp", "2099-12-31T23:59:59Z", late),
        (8, "timestamp", "2027-12-01T00:00:01Z", late),
    ]
    assert r.frame["text"].tolist() == ["earliest kept", "latest kept"]
    assert _times(r.frame) == ["1990-01-01T00:00:00+00:00", "2027-12-01T00:00:00+00:00"]
    # a time up to a year ahead loads, with the notice it always had
    assert "1 message(s) are dated in the future; check the export's time zone." in r.notices


def test_epoch_zero_yyyymmdd_small_and_huge_numbers_are_refused_seconds_and_ms_load():
    r = _load("epoch_numbers.csv", on_error="skip")
    assert _problems(r) == [
        (1, "timestamp", "0", "the time is 1970-01-01 00:00 UTC (epoch 0), usually a missing value"),
        (2, "timestamp", "1970-01-01T00:00:00Z", "the time is 1970-01-01 00:00 UTC (epoch 0), usually a missing value"),
        (3, "timestamp", "20240101", "looks like a date written YYYYMMDD, not epoch seconds"),
        (4, "timestamp", "12345", "epoch time before 1990-01-01 (the number read as seconds since 1970, or "
                                  "milliseconds above 10^11)"),
        (5, "timestamp", "99999999999999999", "epoch number too large for seconds or milliseconds"),
    ]
    assert r.frame["text"].tolist() == ["seconds", "milliseconds"]
    assert _times(r.frame) == ["2024-01-01T10:00:00+00:00", "2024-01-01T10:00:00.500000+00:00"]


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Berlin"])
@pytest.mark.parametrize("late_value, message", [
    ("99999999999999999", "epoch number too large for seconds or milliseconds"),
    ("99999999999", "epoch number too large for seconds or milliseconds"),  # was an AssertionError in UTC
    ("45292", "looks like an Excel serial date (days since 1899-12-30), not epoch seconds"),
    ("-86400", "negative epoch time (before 1970)"),
    ("20240101", "looks like a date written YYYYMMDD, not epoch seconds"),
])
def test_a_number_after_200_iso_dates_is_the_same_problem_in_every_time_zone(timezone, late_value, message):
    rows = "".join(f"c1,2024-01-01T10:{i % 60:02d}:{i // 60:02d}Z,user,m{i}\n" for i in range(250))
    data = f"conversation_id,timestamp,speaker,text\n{rows}c1,{late_value},user,late\n".encode()
    r = load_bytes(data, "late.csv", on_error="skip", timezone=timezone, now=NOW)
    assert _problems(r) == [(251, "timestamp", late_value, message)]
    assert len(r.frame) == 250


def test_a_plausible_epoch_after_200_iso_dates_still_loads_in_berlin():
    rows = "".join(f"c1,2024-01-01T10:{i % 60:02d}:00Z,user,m{i}\n" for i in range(201))
    data = f"conversation_id,timestamp,speaker,text\n{rows}c2,1704103200,user,epoch\n".encode()
    r = load_bytes(data, "late.csv", timezone="Europe/Berlin", now=NOW)  # it was "unparseable" in Berlin only
    assert r.frame.loc[r.frame["text"] == "epoch", "timestamp"].tolist() == [pd.Timestamp("2024-01-01T10:00:00Z")]


# --------------------------------------------------------------------------- golden cases: ids

def test_ids_differing_only_by_invisible_characters_or_normalisation_are_one():
    data = (VALUES / "ids_invisible_characters.csv").read_bytes()
    for ch in ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "e\u0301", "\u00e9"):  # the fixture is intact
        assert ch.encode() in data, f"an editor removed {ch!r} from the fixture"
    r = load_bytes(data, "ids_invisible_characters.csv")
    assert r.frame["conversation_id"].tolist() == ["c1"] * 6 + ["caf\u00e9"] * 2
    assert r.frame["user_id"].tolist() == ["u1"] * 6 + ["Ren\u00e9"] * 2
    assert r.conversations == 2
    assert (r.frame.groupby("conversation_id")["text"].apply(list).to_dict()["caf\u00e9"]
            == ["precomposed", "combining accent"])  # two spellings of café: ONE conversation
    assert ("6 conversation_id value(s) in 6 row(s) were cleaned up: Unicode normalised to NFC and invisible format "
            "characters (zero-width spaces and joiners, BOMs, direction marks) removed; 6 of them now equal another "
            "value and count as one; e.g. 'c\\u200b1' became 'c1'.") in r.notices
    assert ("2 user_id value(s) in 2 row(s) were cleaned up: Unicode normalised to NFC and invisible format "
            "characters (zero-width spaces and joiners, BOMs, direction marks) removed; 2 of them now equal another "
            "value and count as one; e.g. 'u\\u200b1' became 'u1'.") in r.notices
    assert not any("message_id" in n for n in r.notices)  # m1..m8 are ASCII: nothing to say


def test_the_notice_names_a_mapped_column_and_shows_a_combining_accent_literally():
    data = "session_id,speaker,text\ncafe\u0301,user,a\n".encode()
    r = load_bytes(data, "s.csv")
    assert r.frame["conversation_id"].tolist() == ["caf\u00e9"]
    assert ("1 conversation_id value(s) (column 'session_id') in 1 row(s) were cleaned up: Unicode normalised to NFC "
            "and invisible format characters (zero-width spaces and joiners, BOMs, direction marks) removed; "
            "e.g. 'cafe\\u0301' became 'caf\u00e9'.") in r.notices


def test_message_ids_that_become_equal_are_duplicates():
    r = _load("message_ids_invisible_duplicate.csv", on_error="skip")
    assert _problems(r) == [(2, "message_id", "m1", "duplicate message id")]
    assert r.frame["message_id"].tolist() == ["m1", "m2"]
    assert any(n.startswith("1 message_id value(s) in 1 row(s) were cleaned up") and "'m1\\u200b' became 'm1'" in n
               for n in r.notices)


def test_surrounding_whitespace_is_stripped_silently_as_before():
    r = _load("ids_whitespace_only.csv")
    assert r.frame["conversation_id"].tolist() == ["c1", "c1"]
    assert not any("cleaned up" in n for n in r.notices)


def test_an_id_of_only_invisible_characters_is_a_missing_id():
    data = "conversation_id,speaker,text\n\u200b\u200d,user,a\nc1,bot,b\n".encode()
    r = load_bytes(data, "z.csv", on_error="skip")
    assert _problems(r) == [(1, "conversation_id", "\u200b\u200d", "missing conversation id")]
    assert r.frame["conversation_id"].tolist() == ["c1"]


# --------------------------------------------------------------------------- properties

def _iso(when: dt.datetime, style: int) -> str:
    return [when.isoformat(), when.strftime("%Y-%m-%d %H:%M:%S"), when.isoformat().replace("+00:00", "Z"),
            when.strftime("%Y-%m-%d")][style]


_AROUND = st.sampled_from(["", " ", "\t"])
_iso_values = st.builds(_iso, st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31),
                                           timezones=st.sampled_from([None, dt.timezone.utc,
                                                                      dt.timezone(dt.timedelta(hours=-5))])),
                        st.integers(0, 3))
_plausible_iso = st.builds(_iso, st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2026, 6, 1)),
                           st.integers(0, 3))
_numbers = st.one_of(
    st.integers(-10**20, 10**20).map(str),
    st.integers(631_152_000, 1_800_000_000).map(str),  # plausible seconds
    st.integers(631_152_000_000, 1_800_000_000_000).map(str),  # plausible milliseconds
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.floats(-1e13, 1e13).map(lambda x: f"{x:.3f}"),
    st.floats(1e8, 1e12).map(lambda x: f"{x:e}"),
    st.floats(EXCEL_SERIAL_DAYS[0] - 100, EXCEL_SERIAL_DAYS[1] + 100).map(lambda x: f"{x:.4f}"),  # Excel serials
    st.integers(19_000_101, 29_991_231).map(str),  # YYYYMMDD, valid or not
    st.sampled_from(["0", "-0", "+1704103200", "1.7041032E+09", "1e400", "-1e400", "99999999999", "9e12", ".5"]),
)
_others = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "nan", "NaN", "null", "None", "yesterday", "2024-13-45", "2024-02-30T10:00:00Z",
                     "2024-03-31 02:30:00", "2024-10-27 02:30:00",  # skipped / repeated in Berlin
                     "Mon Jan 01 10:00:00 2024", "1 Jan 2024 10:00", "2024-01-01T10:00:00+14:00",
                     "0001-01-01T00:00:00-12:00", "9999-12-31T23:59:59+14:00", "1677-09-21", "2262-04-12"]),
)
_value = st.one_of(st.none(), st.builds(lambda a, v, b: a + v + b, _AROUND, st.one_of(
    _iso_values, _plausible_iso, _numbers, _others), _AROUND))
_PREFIX = [f"2024-01-01T10:{i % 60:02d}:{i // 60:02d}Z" for i in range(205)]  # a column of dates, numbers after


def _normalize(values: list[str | None], timezone: str):
    raw = pd.DataFrame({"cid": "c1", "ts": pd.Series(values, dtype="str"), "body": "x"})
    return normalize(raw, file="f.csv", mapping={"conversation_id": "cid", "timestamp": "ts", "text": "body"},
                     timezone=timezone, now=NOW)


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Berlin"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(_value, min_size=1, max_size=25), after_dates=st.booleans())
def test_any_timestamps_give_problems_or_plausible_times_never_an_exception(timezone, values, after_dates):
    values = (_PREFIX if after_dates else []) + values
    norm = _normalize(values, timezone)  # nothing but a result: an exception fails the test
    frame, problems = norm.frame, norm.problems
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    bad = problems[problems["column"] == "ts"]
    assert (bad["message"].str.len() > 0).all() and (bad["fix"].str.len() > 0).all()
    assert not bad["row"].duplicated().any(), "one problem per row and column"
    refused = dict(zip(bad["row"].astype(int), bad["value"]))
    latest = NOW + pd.DateOffset(years=MAX_YEARS_AHEAD)
    for row, (value, when) in enumerate(zip(values, frame["timestamp"]), start=1):
        if pd.isna(when):  # not read: a problem names the row and shows the value as it was
            assert row in refused, (row, value)
            assert refused[row] == (None if value is None else value[:200]), (row, value)
        else:  # read: a plausible time, and no problem
            assert EARLIEST_TIMESTAMP <= when <= latest, (row, value, when)
            assert row not in refused, (row, value)
    assert set(problems["column"]) <= {"ts"}


_YEAR_LAST = re.compile(r"^\s*\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2}")  # day/month order is decided per column: not here


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Berlin"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(_value.filter(lambda v: v is None or not _YEAR_LAST.match(v)), min_size=1, max_size=8),
       after_dates=st.booleans())
def test_a_value_is_read_the_same_wherever_it_is_in_its_column(timezone, values, after_dates):
    whole = _normalize((_PREFIX if after_dates else []) + values, timezone)
    offset = len(_PREFIX) if after_dates else 0
    for k, value in enumerate(values):
        alone = _normalize([value], timezone)
        got = whole.frame["timestamp"].iloc[offset + k]
        want = alone.frame["timestamp"].iloc[0]
        assert (pd.isna(got) and pd.isna(want)) or got == want, (value, got, want)
        mine = whole.problems[whole.problems["row"] == offset + k + 1]["message"].tolist()
        assert mine == alone.problems["message"].tolist(), value


def _reference_id(value: str) -> str:
    """One id cleaned the slow, obvious way."""
    visible = "".join(ch for ch in value.strip() if unicodedata.category(ch) != "Cf")
    return unicodedata.normalize("NFC", visible).strip()


_id_chars = st.sampled_from(["a", "B", "1", "-", "\u00e9", "e", "\u0301", "\u0308", "\u00c5", "A\u030a", "\u4f1a",
                             "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202e", "\u00ad", "\u2066",
                             "\U000e0041", " ", "\t", "\u00a0", "\u3000"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.lists(_id_chars, max_size=6).map("".join)), min_size=1, max_size=30))
def test_ids_are_cleaned_as_one_value_at_a_time_would_be(ids):
    raw = pd.DataFrame({"cid": pd.Series(ids, dtype="str"), "uid": pd.Series(ids[::-1], dtype="str"), "body": "x"})
    norm = normalize(raw, file="f.csv", mapping={"conversation_id": "cid", "user_id": "uid", "text": "body"})
    for column, values in (("conversation_id", ids), ("user_id", ids[::-1])):
        want = [None if v is None or _reference_id(v) == "" else _reference_id(v) for v in values]
        got = [None if pd.isna(v) else v for v in norm.frame[column]]
        assert got == want, column
    missing = [i + 1 for i, v in enumerate(ids) if v is None or _reference_id(v) == ""]
    assert norm.problems.loc[norm.problems["column"] == "cid", "row"].astype(int).tolist() == missing
    changed = {v.strip() for v in ids if v is not None and _reference_id(v) not in ("", v.strip())}
    notice = [n for n in norm.notices if n.startswith(f"{len(changed)} conversation_id value(s) (column 'cid')")]
    assert len(notice) == (1 if changed else 0), norm.notices


def test_ascii_columns_are_told_from_their_bytes_and_only_stripped():
    from metrics.io.validate import _ascii_only

    ids = pd.Series(np.char.add(" conv-", np.arange(100_000).astype(str)), dtype="str")
    assert _ascii_only(ids) and not _ascii_only(pd.Series(["conv-1", "conv-\u00e9"], dtype="str"))
    assert not _ascii_only(pd.Series(["conv-1"], dtype=object))  # not Arrow: checked value by value instead
    norm = normalize(pd.DataFrame({"cid": ids, "body": "x"}), file="f.csv",
                     mapping={"conversation_id": "cid", "text": "body"})
    assert norm.frame["conversation_id"].tolist() == [v.strip() for v in ids]
    assert not any("cleaned up" in n for n in norm.notices)
