"""Loaders: golden good files, the bad-input corpus, options, and properties."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import hypothesis.strategies as st
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from conftest import FIXTURES
from metrics.errors import ChatlensError, ConfigError, ValidationError
from metrics.io.adapters._common import upload_tag
from metrics.io.loaders import load_bytes, parse_map_args
from metrics.io.validate import detect_mapping

BAD = FIXTURES / "bad"
GOOD = FIXTURES / "good"
EXPECTED = {k: v for k, v in json.loads((BAD / "expected.json").read_text()).items() if not k.startswith("_")}


def test_bad_corpus_is_complete():
    files = sorted(p.name for p in BAD.iterdir() if p.name != "expected.json")
    assert files == sorted(EXPECTED), "every bad file needs an expected outcome and vice versa"
    assert len(files) >= 15


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_gives_the_exact_error(name):
    spec = EXPECTED[name]
    data = (BAD / name).read_bytes()
    with pytest.raises(ValidationError) as info:
        load_bytes(data, name, **spec.get("options", {}))
    problem = info.value.problems[0]
    assert problem.file == name
    assert problem.row == spec["row"]
    assert problem.column == spec["column"]
    assert problem.message.startswith(spec["message"]), problem.message
    if "value" in spec:
        assert problem.value == spec["value"]
    assert problem.fix, "every problem says how to fix it"
    assert name in str(info.value)


def test_every_problem_is_collected_at_once():
    data = (b"conversation_id,timestamp,speaker,text,confidence\n"
            b"c1,2024-01-01T10:00:00Z,user,hi,0.5\n"
            b"c1,not a time,robot,hello,7000\n"
            b",2024-01-01T10:00:09Z,bot,ok,0.2\n")
    with pytest.raises(ValidationError) as info:
        load_bytes(data, "many.csv")
    found = {(p.row, p.column, p.message.split(" (")[0]) for p in info.value.problems}
    assert found == {
        (2, "timestamp", "unparseable timestamp"),
        (2, "speaker", "unknown speaker"),
        (2, "confidence", "confidence above 1"),
        (3, "conversation_id", "missing conversation id"),
    }
    assert info.value.total == 4


def test_skip_mode_keeps_good_rows_and_counts_every_skipped_one():
    data = (b"conversation_id,timestamp,speaker,text\n"
            b"c1,2024-01-01T10:00:00Z,user,hi\n"
            b"c1,garbage,user,bad time\n"
            b"c1,2024-01-01T10:00:09Z,robot,bad speaker\n"
            b"c2,2024-01-01T11:00:00Z,bot,fine\n")
    result = load_bytes(data, "partial.csv", on_error="skip")
    assert result.frame["text"].tolist() == ["hi", "fine"]
    assert result.skipped_rows == 2
    assert result.skipped["row"].tolist() == [2, 3]
    assert result.source_rows == len(result.frame) + result.skipped_rows


@pytest.mark.parametrize("name,expected", [
    ("utf8_bom.csv", [("s1", "user", "Café ☕"), ("s1", "bot", "Hello!")]),
    ("utf16.csv", [("s1", "user", "Grüße"), ("s1", "bot", "Hallo")]),
    ("cp1252.csv", [("c1", "user", "\u201csmart quotes\u201d café"), ("c1", "bot", "ok")]),
    ("semicolon.csv", [("c1", "user", "hi, there"), ("c1", "bot", "hello")]),
    ("tabs.tsv", [("t1", "user", "hi"), ("t1", "bot", "hello")]),
    ("nested.json", [("conv-a", "user", "Where is my order?"), ("conv-a", "bot", "Let me check."),
                     ("conv-b", "user", "Cancel please")]),
    ("messages.jsonl", [("1", "user", "hi"), ("1", "bot", "hello"), ("2", "user", "yo")]),
    ("two_files.zip", [("c1", "user", "hi"), ("c2", "user", "yo")]),
    ("quoted_newlines_crlf.csv", [("c1", "user", "line one\nline two"), ("c1", "bot", 'say "hi"'),
                                  ("c1", "user", "=1+2")]),
])
def test_good_files_load_exactly(name, expected):
    result = load_bytes((GOOD / name).read_bytes(), name)
    got = list(result.frame[["conversation_id", "speaker", "text"]].itertuples(index=False, name=None))
    assert got == expected


def test_timestamps_offsets_epochs_and_naive_zones():
    r = load_bytes((GOOD / "utf8_bom.csv").read_bytes(), "utf8_bom.csv")
    # 09:00 at +01:00 is 08:00 UTC
    assert r.frame["timestamp"].iloc[0] == pd.Timestamp("2024-03-01T08:00:00Z")
    e = load_bytes((GOOD / "epochs.csv").read_bytes(), "epochs.csv")
    assert e.frame["timestamp"].tolist() == [pd.Timestamp("2024-01-01T10:00:00Z"),   # epoch seconds
                                             pd.Timestamp("2024-01-01T10:00:05Z"),   # epoch ms
                                             pd.Timestamp("2024-01-01T10:00:10Z")]   # ISO with offset
    naive = b"conversation_id,timestamp,speaker,text\nc1,2024-07-01 12:00:00,user,hi\nc1,2024-07-01T12:00:00Z,bot,x\n"
    berlin = load_bytes(naive, "n.csv", timezone="Europe/Berlin")
    # naive 12:00 in Berlin summer time (UTC+2) is 10:00 UTC; the aware value keeps its own offset
    assert sorted(berlin.frame["timestamp"].tolist()) == [pd.Timestamp("2024-07-01T10:00:00Z"),
                                                          pd.Timestamp("2024-07-01T12:00:00Z")]
    assert str(berlin.frame["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_synonyms_and_speaker_mapping():
    data = b"chat_id,from,utterance,date\nx,Customer,hi,2024-01-01T00:00:00Z\nx,operator,hello,2024-01-01T00:01:00Z\n"
    r = load_bytes(data, "s.csv")
    assert r.mapping == {"conversation_id": "chat_id", "timestamp": "date", "speaker": "from", "text": "utterance"}
    assert r.frame["speaker"].tolist() == ["user", "agent"]


def test_user_mapping_override_and_parse_map_args():
    data = b"a,b,c\n1,user,hello\n"
    r = load_bytes(data, "m.csv", mapping=parse_map_args(["conversation_id=a", "speaker=b", "text=c"]))
    assert r.frame[["conversation_id", "speaker", "text"]].values.tolist() == [["1", "user", "hello"]]
    with pytest.raises(ConfigError, match="'colour'"):
        detect_mapping(["a"], overrides={"colour": "a"})
    with pytest.raises(ConfigError, match="canonical=source"):
        parse_map_args(["text"])


def test_mapping_to_missing_column_is_a_file_problem():
    with pytest.raises(ValidationError, match="no such column"):
        load_bytes(b"x,y\n1,2\n", "m.csv", mapping={"text": "nope"})


def test_rows_without_conversation_ids_become_their_own_conversation():
    data = b"sentence,label\nhi,greet\nbye,goodbye\n"
    r = load_bytes(data, "nlu.csv")
    tag = upload_tag(data)  # made-up ids carry the file's content tag, so two files' row-1 never merge
    assert r.frame["conversation_id"].tolist() == [f"{tag}:row-1", f"{tag}:row-2"]
    assert r.frame["speaker"].tolist() == ["user", "user"]
    assert r.frame["timestamp"].isna().all()
    assert any("own conversation" in n for n in r.notices)
    assert any("need timestamps" in n for n in r.notices)


def test_percent_confidence_is_scaled_with_a_notice():
    r = load_bytes(b"conversation_id,speaker,text,confidence\n1,user,a,85\n1,user,b,40\n", "p.csv")
    assert r.frame["confidence"].tolist() == [0.85, 0.40]
    assert any("percentage" in n for n in r.notices)


def test_confidence_scales_percent_signs_per_value_and_refuses_an_ambiguous_mix():
    head = b"conversation_id,speaker,text,confidence\n"
    # "85%" is a percentage whatever the other rows say; 0.92 beside it stays a probability
    r = load_bytes(head + b"1,user,a,85%\n1,user,b,0.92\n", "p.csv")
    assert r.frame["confidence"].tolist() == [0.85, 0.92]
    # 0 and 1 are whole percentages in a 0-100 column (1 -> 0.01); 0.5 beside 85 could be 0.5 % or 50 %: a problem
    r = load_bytes(head + b"1,user,a,0\n1,user,b,1\n1,user,c,85\n1,user,d,0.5\n", "p.csv", on_error="skip")
    assert r.frame["confidence"].tolist() == [0.0, 0.01, 0.85]
    assert r.skipped_rows == 1
    (problem,) = r.skipped.itertuples()
    assert (problem.row, problem.column, problem.value) == (4, "confidence", "0.5")
    assert "one scale" in problem.fix


def test_test_traffic_is_excluded_and_counted():
    data = (b"conversation_id,speaker,text,user_id,is_test\n"
            b"c1,user,hi,alice,false\nc2,user,hi,test-bot-7,false\nc3,user,hi,bob,true\nc3,bot,x,bob,\n")
    r = load_bytes(data, "t.csv", test_users=["test-*"])
    assert r.frame["conversation_id"].unique().tolist() == ["c1"]
    assert r.excluded_conversations == 2
    assert r.excluded_messages == 3


def test_conversations_file_is_joined():
    msgs = b"conversation_id,speaker,text\nc1,user,hi\nc2,user,yo\n"
    conv = b"conversation_id,outcome,rating,topic\nc1,resolved,5,inquiry\nc9,escalated,1,complaint\n"
    r = load_bytes(msgs, "m.csv", conversations=(conv, "conv.csv"))
    by_id = r.frame.set_index("conversation_id")
    assert by_id.loc["c1", "outcome"] == "resolved" and by_id.loc["c1", "rating"] == 5.0
    assert pd.isna(by_id.loc["c2", "outcome"])
    assert any("1 conversation(s) are not in the transcript file" in n for n in r.notices)


def test_zip_with_several_files_names_each():
    r = load_bytes((GOOD / "two_files.zip").read_bytes(), "two_files.zip")
    assert any("part1.csv" in n and "part2.csv" in n for n in r.notices)


def test_input_bytes_are_untouched_and_result_sorted():
    data = b"conversation_id,timestamp,speaker,text\nb,2024-01-01T10:00:00Z,user,2\na,2024-01-01T10:00:05Z,user,1\n"
    copy = bytes(data)
    r = load_bytes(data, "o.csv")
    assert data == copy
    assert r.frame["conversation_id"].tolist() == ["a", "b"]
    assert r.frame["row"].tolist() == [2, 1]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), st.sampled_from(["f.csv", "f.json", "f.jsonl", "f.tsv", "f.gz", "f.zip", "f"]))
def test_arbitrary_bytes_raise_only_typed_errors(data, name):
    try:
        result = load_bytes(data, name)
    except ChatlensError:
        return
    assert len(result.frame) + result.skipped_rows + result.excluded_messages >= 0
    assert set(result.frame["speaker"].unique()) <= {"user", "bot", "agent", "system"}


cell = st.one_of(st.none(), st.text(max_size=12), st.integers(-5, 5000).map(str),
                 st.sampled_from(["user", "bot", "Customer", "2024-01-01T10:00:00Z", "1704103200", "0.5", "NaN"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({"conversation_id": cell, "timestamp": cell, "speaker": cell, "text": cell,
                                       "confidence": cell, "rating": cell}), min_size=1, max_size=15),
       st.sampled_from(["refuse", "skip"]))
def test_arbitrary_frames_raise_only_typed_errors_and_never_drop_silently(rows, on_error):
    data = pd.DataFrame(rows).to_csv(index=False).encode()
    try:
        result = load_bytes(data, "frame.csv", on_error=on_error)
    except ChatlensError:
        return
    assert len(result.frame) + result.skipped_rows == result.source_rows


def test_zip_member_names_appear_in_row_problems():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("inner.csv", "conversation_id,speaker,text\nc1,robot,hi\n")
    with pytest.raises(ValidationError) as info:
        load_bytes(buf.getvalue(), "outer.zip")
    assert info.value.problems[0].file == "outer.zip:inner.csv"


pooled = {  # few distinct values, repeated: normalize converts and checks each distinct value once
    "speaker": st.sampled_from(["user", " Bot ", "customer", "robot", "", "SYSTEM"]),  # an all-missing column
    # would be reported as "missing speaker" rather than "unknown speaker": a property of the whole column
    "goal_achieved": st.sampled_from([None, "true", "no", "Y", "maybe", "1", " FALSE "]),
    "rating": st.sampled_from([None, "1", "4.5", "$3", "6", "0", "x", "nan", " 2 "]),
    "thumbs": st.sampled_from([None, "up", "Down", "👍", "meh", " up "]),
    "confidence": st.sampled_from([None, "0.5", "1", "0", "-0.1", "abc", "nan", "null", " 0.25 "]),
    "conversion_value": st.sampled_from([None, "$10", "12.5", "abc", "-0.0", "1e3"]),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries(pooled), min_size=1, max_size=20))
def test_each_value_is_converted_and_checked_as_if_it_were_alone(rows):
    """Reference: normalizing each row on its own. The whole column must give every row the same value
    and the same problems (confidence stays within 0-1 here, so no percentage scaling couples the rows)."""
    from metrics.io.validate import normalize

    raw = pd.DataFrame(rows, dtype="str").assign(cid="c1", body="hi")
    mapping = {"conversation_id": "cid", "text": "body", **{c: c for c in pooled}}
    whole = normalize(raw, file="f.csv", mapping=mapping)
    problems = whole.problems
    for i in range(len(rows)):
        alone = normalize(raw.iloc[[i]].reset_index(drop=True), file="f.csv", mapping=mapping,
                          rows=pd.Series([i + 1]))
        pd.testing.assert_frame_equal(whole.frame.iloc[[i]].reset_index(drop=True), alone.frame)
        mine = problems[problems["row"] == i + 1].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone.problems, check_dtype=False)


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4, 5], [3, 0, 4, 1, 5, 2]])  # grouped, then interleaved
def test_a_conversation_field_that_varies_within_a_conversation_is_noticed(order):
    lines = ["c1,user,a,resolved,4", "c1,bot,b,escalated,4", "c1,user,c,,",  # outcome varies in c1
             "c2,user,d,resolved,4", "c2,bot,e,,5", "c2,user,f,resolved,"]  # rating varies in c2
    data = ("conversation_id,speaker,text,outcome,rating\n" + "\n".join(lines[i] for i in order) + "\n").encode()
    notices = load_bytes(data, "v.csv").notices
    # a missing value is not a second value: c2's outcome (resolved, -, resolved) does not vary
    assert "'outcome' takes several values within 1 conversation(s); the first is used." in notices
    assert "'rating' takes several values within 1 conversation(s); the first is used." in notices
    assert sum("takes several values" in n for n in notices) == 2


# --------------------------------------------------------------------------- non-ISO dates: fast path == one by one

_FORMATS = ["%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%d.%m.%Y %H:%M", "%m-%d-%y %H:%M", "%a %b %d %H:%M:%S %Y",
            "%d %B %Y %H:%M", "%Y/%m/%d %H:%M:%S.%f", "%d/%m/%Y %H:%M:%S %z", "%b %d, %Y %I:%M %p"]


@settings(max_examples=150, deadline=None)
@given(first=st.sampled_from(_FORMATS), others=st.lists(st.tuples(
           st.sampled_from(_FORMATS + ["garbage", "31/02/2024 10:00", "99/99/9999"]),
           st.datetimes(min_value=pd.Timestamp("1700-01-01").to_pydatetime(),
                        max_value=pd.Timestamp("2200-01-01").to_pydatetime())), min_size=1, max_size=12),
       utc=st.booleans(), dayfirst=st.booleans())
def test_vectorised_date_parsing_equals_parsing_each_value(first, others, utc, dayfirst):
    """_parse_mixed parses in the first value's format at C speed and the rest one by one; the result must be
    the one-by-one dateutil result for every value (formats mixed, invalid dates, out of range, offsets)."""
    import datetime as dt

    from metrics.io.validate import _parse_each, _parse_mixed

    def render(fmt, when):
        if fmt in ("garbage", "31/02/2024 10:00", "99/99/9999"):
            return fmt
        if "%z" in fmt:
            when = when.replace(tzinfo=dt.timezone(dt.timedelta(hours=(when.minute % 5) - 2)))
        return when.strftime(fmt)

    texts = [render(first, others[0][1])] + [render(f, w) for f, w in others]
    values = pd.Series(texts, dtype="str")
    flags = pd.Series([dayfirst] * len(texts)).to_numpy()
    got = _parse_mixed(values, utc=utc, dayfirst=flags)
    want = _parse_each(values, utc=utc, dayfirst=dayfirst)
    pd.testing.assert_series_equal(got, want)


def test_a_large_file_of_day_first_dates_is_read_day_first_at_vectorised_speed():
    rows = "".join(f"c{i // 10},{(i % 28) + 1:02d}/04/2024 10:{i % 60:02d}:00,user,m{i}\n" for i in range(20_000))
    r = load_bytes(("conversation_id,timestamp,speaker,text\n" + rows).encode(), "d.csv")
    # 13/04 and later can only be day first, so 01/04 .. 12/04 are April too
    assert r.frame["timestamp"].dt.month.eq(4).all()
    assert any("read day first" in n for n in r.notices)
