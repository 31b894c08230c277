"""Funnels (metrics/funnel/__init__.py): rules, strict/non-strict reach, per-stage table, drop-off,
segments, downstream conversion, lead quality, masking."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import messages_frame, shared_path
from metrics import funnel as F
from metrics.errors import ConfigError, InsufficientDataError
from metrics.io import pii
from metrics.funnel import (DEFAULT_LEAD_FUNNEL, EMAIL_PATTERN, PHONE_PATTERN, Rule, Stage,
                            contact_stage_warning, conversion_by_stage, conversion_summary,
                            dropoff_conversations, funnel_by_segment, funnel_table,
                            last_bot_message_before_dropoff, lead_quality, mask_contact_details,
                            mask_messages, parse_rule, parse_stage, reached_stage, segment_columns,
                            validate_funnel)
from metrics.io.schema import empty_frame

STAGES = [
    Stage("inquiry", "event:inquiry"),
    Stage("qualification", "event:qualification"),
    Stage("email", Rule("user", pattern=EMAIL_PATTERN)),
    Stage("phone", Rule("user", pattern=PHONE_PATTERN)),
]


def _conv(cid, steps, **fields):
    """steps: (minute:second string, speaker, text, event) in source-row order."""
    rows = []
    for when, speaker, text, event in steps:
        row = {"conversation_id": cid, "timestamp": f"2024-03-04T10:{when}Z", "speaker": speaker,
               "text": text, "event": event}
        row.update(fields)
        rows.append(row)
    return rows


def golden_rows():
    return (
        # c1: every stage in order. inquiry 10:00, qual 10:01, email 10:03, phone 10:06
        _conv("c1", [("00:00", "user", "I want a quote", "inquiry"),
                     ("00:30", "bot", "How many seats?", None),
                     ("01:00", "user", "about 20", "qualification"),
                     ("01:30", "bot", "Your email?", None),
                     ("03:00", "user", "ann@example.com", None),
                     ("03:30", "bot", "And your phone?", None),
                     ("06:00", "user", "+1 555 0100 1234", None)], channel="web", segment="smb")
        # c2: stops at email. qual 10:02, email 10:05
        + _conv("c2", [("00:00", "user", "pricing?", "inquiry"),
                       ("02:00", "user", "we are 5", "qualification"),
                       ("05:00", "user", "bob@example.org", None),
                       ("05:30", "bot", "Can I have a phone number? Or mail ann@example.com", None)],
                channel="web", segment="smb")
        # c3: gives the e-mail BEFORE answering the qualification question (stage 3 before stage 2)
        + _conv("c3", [("00:00", "user", "hello, price?", "inquiry"),
                       ("01:00", "user", "cy@example.net", None),
                       ("04:00", "user", "we are 3", "qualification"),
                       ("04:30", "bot", "Thanks, what's your email?", None)], channel="sms", segment="smb")
        # c4: inquiry only
        + _conv("c4", [("00:00", "user", "question", "inquiry"),
                       ("00:10", "bot", "What's your budget?", None)], channel="sms", segment="consumer")
        # c5: never enters
        + _conv("c5", [("00:00", "user", "hi", None), ("00:05", "bot", "hello", None)],
                channel="sms", segment="consumer")
        # c6: one message gives e-mail and phone (reaches both at the same message)
        + _conv("c6", [("00:00", "user", "quote please", "inquiry"),
                       ("01:00", "user", "10 people", "qualification"),
                       ("02:00", "user", "dee@example.com / +44 20 7946 0958", None)],
                channel="web", segment="enterprise")
        # c7: tie at 10:01 - qualification row first, then e-mail row: the e-mail counts
        + _conv("c7", [("00:00", "user", "quote", "inquiry"),
                       ("01:00", "user", "we are 4", "qualification"),
                       ("01:00", "user", "eve@example.com", None)], channel="web", segment="enterprise")
        # c8: tie at 10:01 - e-mail row first, then qualification row: strict does not count it
        + _conv("c8", [("00:00", "user", "quote", "inquiry"),
                       ("01:00", "user", "fay@example.com", None),
                       ("01:00", "user", "we are 7", "qualification")], channel="sms", segment="enterprise")
    )


@pytest.fixture
def golden():
    return messages_frame(golden_rows())


# --------------------------------------------------------------------------- rules
@pytest.mark.parametrize("text, expected", [
    ("event:inquiry", Rule("event", name="inquiry")),
    ("  intent: pricing ", Rule("intent", name="pricing")),
    ("user~[a-z]+@", Rule("user", pattern="[a-z]+@")),
    ("BOT~your e-?mail", Rule("bot", pattern="your e-?mail")),
    ("field:converted=true", Rule("field", name="converted", value="true")),
    ("field: utm_source = google=ads", Rule("field", name="utm_source", value="google=ads")),
    ("event:a~b", Rule("event", name="a~b")),          # ':' comes first: an event name with '~'
    ("user~time: (\\d+)", Rule("user", pattern="time: (\\d+)")),  # '~' first: a regex with ':'
])
def test_parse_rule_golden(text, expected):
    assert parse_rule(text) == expected
    assert parse_rule(str(expected)) == expected  # round trip


@pytest.mark.parametrize("text, fragment", [
    ("mood:happy", "unknown kind 'mood'"),
    ("user~[unclosed", "invalid regex '[unclosed'"),
    ("bot~", "empty regex"),
    ("event:", "empty event name"),
    ("intent:   ", "empty intent name"),
    ("field:converted", "missing '='"),
    ("field:=true", "empty field name"),
    ("field:converted=", "empty value"),
    ("user:hello", "text rules use '~'"),
    ("hello", "no kind given"),
    ("", "empty rule"),
    ("robot~x", "unknown kind 'robot'"),
])
def test_parse_rule_errors_repeat_the_rule_and_say_how_to_fix(text, fragment):
    with pytest.raises(ConfigError) as info:
        parse_rule(text)
    msg = str(info.value)
    assert f"rule {text!r}" in msg and fragment in msg
    assert "\n" not in msg
    # every message points at the fix: an example or the syntax
    assert any(word in msg for word in ("write", "use one of", "fix the pattern"))


def test_stage_parsing_and_errors():
    assert parse_stage("paid=field:converted=true") == Stage("paid", "field:converted=true")
    assert Stage(" email ", "user~@").name == "email"
    with pytest.raises(ConfigError, match="stage 'inquiry'"):
        parse_stage("inquiry")
    with pytest.raises(ConfigError, match="empty name"):
        parse_stage("=event:x")
    with pytest.raises(ConfigError, match=r"stage 'email': rule 'user~\(': invalid regex"):
        parse_stage("email=user~(")
    with pytest.raises(ConfigError, match="stage name '' is empty"):
        Stage("", "event:x")
    with pytest.raises(ConfigError, match="duplicate stage name 'A'"):
        funnel_table(empty_frame(), [Stage("a", "event:x"), Stage("A", "event:y")])
    with pytest.raises(ConfigError, match="no stages"):
        funnel_table(empty_frame(), [])
    assert F.stages_from_dicts(F.stages_to_dicts(DEFAULT_LEAD_FUNNEL)) == list(DEFAULT_LEAD_FUNNEL)
    with pytest.raises(ConfigError, match="expected a dict"):
        F.stages_from_dicts([{"name": "x"}])


def test_parse_stage_lines_reports_every_bad_line():
    text = "# my funnel\n in = event:inquiry \n\nmail=user~(\nx=mood:y\n"
    with pytest.raises(ConfigError) as info:
        F.parse_stage_lines(text)
    msg = str(info.value)
    assert msg.startswith("line 4: stage 'mail': rule 'user~(': invalid regex")
    assert " | line 5: stage 'x': rule 'mood:y': unknown kind 'mood'" in msg
    good = F.parse_stage_lines("in=event:inquiry\npaid=field:converted=true")
    assert F.parse_stage_lines(F.stages_to_lines(good)) == good
    with pytest.raises(ConfigError, match="no stages"):
        F.parse_stage_lines("# nothing\n")
    with pytest.raises(ConfigError, match="duplicate stage name"):
        F.parse_stage_lines("a=event:x\na=event:y")


# --------------------------------------------------------------------------- strict / non-strict
def test_strict_golden_table(golden):
    t = funnel_table(golden, STAGES, strict=True)
    assert t["stage"].tolist() == ["inquiry", "qualification", "email", "phone"]
    # reached: inquiry c1 c2 c3 c4 c6 c7 c8 (7); qualification: same minus c4 (6);
    # email after qualification: c1 c2 c6 c7 (4) - c3 and c8 gave it before; phone: c1 c6 (2)
    assert t["conversations"].tolist() == [7, 6, 4, 2]
    assert np.allclose(t["rate_of_entry"], [1, 6 / 7, 4 / 7, 2 / 7])
    # stage 0's step rate is the share of all 8 conversations that entered
    assert np.allclose(t["step_rate"], [7 / 8, 6 / 7, 4 / 6, 2 / 4])
    # stopped here: c4 at inquiry; c3 c8 at qualification; c2 c7 at email; nobody drops at the end
    assert t["dropped"].tolist() == [1, 2, 2, 0]
    # qualification - inquiry seconds: c1 60, c2 120, c3 240, c6 60, c7 60, c8 60 -> median 60
    # email - qualification: c1 120, c2 180, c6 60, c7 0 (same timestamp) -> median (60+120)/2 = 90
    # phone - email: c1 180, c6 0 (same message) -> median 90
    assert t["median_seconds_from_previous"].iloc[0] != t["median_seconds_from_previous"].iloc[0]
    assert t["median_seconds_from_previous"].tolist()[1:] == [60.0, 90.0, 90.0]


def test_non_strict_golden_table(golden):
    t = funnel_table(golden, STAGES, strict=False)
    # any order: c3 and c8 now count at email (they have inquiry, qualification and an e-mail)
    assert t["conversations"].tolist() == [7, 6, 6, 2]
    assert t["dropped"].tolist() == [1, 0, 4, 0]
    # email - qualification with own first matches: c1 120, c2 180, c3 -180, c6 60, c7 0, c8 0
    # sorted [-180, 0, 0, 60, 120, 180] -> median 30
    assert t["median_seconds_from_previous"].iloc[2] == 30.0


def test_reached_stage_per_conversation(golden):
    r = reached_stage(golden, STAGES)
    assert dict(zip(r["conversation_id"], r["highest_stage"])) == {
        "c1": 3, "c2": 2, "c3": 1, "c4": 0, "c5": -1, "c6": 3, "c7": 2, "c8": 1}
    assert r.set_index("conversation_id").loc["c5", "highest_stage_name"] == F.NOT_ENTERED
    c3 = r.set_index("conversation_id").loc["c3"]
    assert c3["reached_at_1"] == pd.Timestamp("2024-03-04T10:04:00Z")
    assert pd.isna(c3["reached_at_2"])  # the early e-mail is not a strict reach
    assert str(r["reached_at_0"].dtype) == "datetime64[ns, UTC]"
    non = reached_stage(golden, STAGES, strict=False).set_index("conversation_id")
    assert non.loc["c3", "highest_stage"] == 2
    assert non.loc["c3", "reached_at_2"] == pd.Timestamp("2024-03-04T10:01:00Z")


def test_without_timestamps_row_order_decides():
    rows = [{"conversation_id": "a", "speaker": "user", "text": "x", "event": "qualification"},
            {"conversation_id": "a", "speaker": "user", "text": "x", "event": "inquiry"},
            {"conversation_id": "b", "speaker": "user", "text": "x", "event": "inquiry"},
            {"conversation_id": "b", "speaker": "user", "text": "x", "event": "qualification"}]
    m = messages_frame(rows)
    t = funnel_table(m, STAGES[:2])
    # a answers before the inquiry (row order) -> strict stops at stage 0; b reaches stage 1
    assert t["conversations"].tolist() == [2, 1]
    assert t["median_seconds_from_previous"].isna().all()
    assert any("no timestamps" in w for w in validate_funnel(STAGES[:2], m))


def test_field_stage_has_no_time_and_keeps_the_chain():
    rows = (_conv("a", [("00:00", "user", "q", "inquiry"), ("01:00", "user", "a@b.io", None)], segment="smb")
            + _conv("b", [("00:00", "user", "b@b.io", None), ("01:00", "user", "q", "inquiry")], segment="smb")
            + _conv("c", [("00:00", "user", "q", "inquiry"), ("01:00", "user", "c@b.io", None)],
                    segment="consumer"))
    m = messages_frame(rows)
    stages = [Stage("in", "event:inquiry"), Stage("smb", "field:segment=SMB"),
              Stage("mail", f"user~{EMAIL_PATTERN}")]
    t = funnel_table(m, stages)
    # a: in, smb, mail after inquiry -> 3 stages; b: e-mail before the inquiry -> stops at smb;
    # c: consumer -> stops at in
    assert t["conversations"].tolist() == [3, 2, 1]
    assert t["median_seconds_from_previous"].isna().all()  # the field stage breaks the timing
    r = reached_stage(m, stages).set_index("conversation_id")
    assert pd.isna(r.loc["a", "reached_at_1"])
    # booleans and numbers compare as values
    m2 = messages_frame([
        {"conversation_id": "x", "speaker": "user", "text": "q", "event": "inquiry", "converted": True,
         "conversion_value": 120.0},
        {"conversation_id": "y", "speaker": "user", "text": "q", "event": "inquiry", "converted": None,
         "conversion_value": None}])
    assert funnel_table(m2, ["in=event:inquiry", "won=field:converted=YES"])["conversations"].tolist() == [2, 1]
    assert funnel_table(m2, ["won=field:conversion_value=120"])["conversations"].tolist() == [1]


def test_intent_and_bot_rules():
    m = messages_frame([
        {"conversation_id": "a", "speaker": "user", "text": "price?", "intent": "pricing", "true_intent": "pricing"},
        {"conversation_id": "a", "speaker": "bot", "text": "Could you share your E-MAIL?"},
        {"conversation_id": "b", "speaker": "user", "text": "price?", "intent": "greet", "true_intent": "Pricing"},
        {"conversation_id": "c", "speaker": "user", "text": "your email?", "intent": "other"},
    ])
    t = funnel_table(m, ["asked=intent:pricing", "bot asked=bot~your e-?mail"])
    # a and b match pricing (b by its true intent, case-insensitively); only a's BOT asked for the
    # e-mail - c's user text matches the words but bot~ looks at bot messages only
    assert t["conversations"].tolist() == [2, 1]


# --------------------------------------------------------------------------- drop-off
def test_dropoff_conversations_and_last_bot_message(golden):
    d = dropoff_conversations(golden, STAGES, stage="email")
    assert d["conversation_id"].tolist() == ["c2", "c7"]
    # c2's last bot message held an e-mail address: masked
    assert d["last_bot_message"].tolist()[0] == "Can I have a phone number? Or mail <EMAIL>"
    assert pd.isna(d["last_bot_message"].tolist()[1])  # c7 has no bot message
    assert d["reached_at"].tolist()[0] == pd.Timestamp("2024-03-04T10:05:00Z")
    assert dropoff_conversations(golden, STAGES, stage=1)["conversation_id"].tolist() == ["c3", "c8"]
    assert len(dropoff_conversations(golden, STAGES, stage="phone")) == 0  # finishing is no drop-off
    with pytest.raises(ConfigError, match="'nope': not in the funnel"):
        dropoff_conversations(golden, STAGES, stage="nope")
    with pytest.raises(ConfigError, match="no such stage index"):
        dropoff_conversations(golden, STAGES, stage=9)

    last = last_bot_message_before_dropoff(golden, STAGES)
    assert last.values.tolist() == [
        [0, "inquiry", "What's your budget?", 1, 1.0],
        # c3 and c8 stopped at qualification; c8 has no bot message
        [1, "qualification", "(no bot message)", 1, 0.5],
        [1, "qualification", "Thanks, what's your email?", 1, 0.5],
        [2, "email", "(no bot message)", 1, 0.5],
        [2, "email", "Can I have a phone number? Or mail <EMAIL>", 1, 0.5],
    ]
    assert len(last_bot_message_before_dropoff(golden, STAGES, top=1)) == 3
    with pytest.raises(ConfigError, match="top=0"):
        last_bot_message_before_dropoff(golden, STAGES, top=0)


# --------------------------------------------------------------------------- segments
def test_funnel_by_segment_channel_and_week(golden):
    t = funnel_by_segment(golden, STAGES, by="channel")
    web = t[t["segment"] == "web"]["conversations"].tolist()
    sms = t[t["segment"] == "sms"]["conversations"].tolist()
    # web: c1 c2 c6 c7 -> in 4, qual 4, email 4 (c1 c2 c6 c7), phone 2 (c1 c6)
    # sms: c3 c4 c5 c8 -> in 3, qual 2 (c3 c8), email 0, phone 0
    assert web == [4, 4, 4, 2] and sms == [3, 2, 0, 0]
    assert t[t["segment"] == "sms"]["step_rate"].iloc[0] == 3 / 4
    w = funnel_by_segment(golden, STAGES, by="week")
    assert set(w["segment"]) == {"2024-W10"}  # 2024-03-04 is the Monday of ISO week 10
    with pytest.raises(ConfigError, match="by='colour'"):
        funnel_by_segment(golden, STAGES, by="colour")
    with pytest.raises(InsufficientDataError, match="'utm_source'"):
        funnel_by_segment(golden, STAGES, by="utm_source")
    no_ts = golden.assign(timestamp=pd.Series(pd.NaT, index=golden.index, dtype="datetime64[ns, UTC]"))
    with pytest.raises(InsufficientDataError, match="timestamps"):
        funnel_by_segment(no_ts, STAGES, by="week")


def test_missing_segment_value_is_labelled():
    m = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "q", "event": "inquiry",
                         "utm_source": None},
                        {"conversation_id": "b", "speaker": "user", "text": "q", "event": "inquiry",
                         "utm_source": "google"}])
    t = funnel_by_segment(m, ["in=event:inquiry"], by="utm_source")
    assert t["segment"].tolist() == ["(none)", "google"]


def test_segment_columns_are_those_with_a_value(golden):
    before = golden.copy()
    # the golden funnel has channel and segment on every row and timestamps: week too; no UTM columns
    assert segment_columns(golden) == ["channel", "segment", "week"]
    pd.testing.assert_frame_equal(golden, before)
    # a column that is there but empty does not count; without timestamps there is no week
    no_ts = golden.assign(timestamp=pd.Series(pd.NaT, index=golden.index, dtype="datetime64[ns, UTC]"),
                          utm_source=pd.Series(pd.NA, index=golden.index, dtype="str"),
                          utm_campaign="spring")
    assert segment_columns(no_ts) == ["channel", "segment", "utm_campaign"]
    # each column it names can be compared by
    for by in segment_columns(no_ts):
        assert len(funnel_by_segment(no_ts, STAGES, by=by))
    assert segment_columns(empty_frame()) == []
    assert segment_columns(golden.sample(frac=1, random_state=1)) == segment_columns(golden)


# --------------------------------------------------------------------------- conversion
def test_conversion_by_stage_and_summary(golden):
    converted = {"c1": (True, 500.0), "c2": (True, 100.0), "c3": (False, None), "c4": (None, None),
                 "c5": (True, 50.0), "c6": (False, None), "c7": (True, None), "c8": (False, None)}
    m = golden.copy()
    m["converted"] = m["conversation_id"].map({k: v[0] for k, v in converted.items()}).astype("boolean")
    m["conversion_value"] = m["conversation_id"].map({k: v[1] for k, v in converted.items()}).astype("float64")
    by = conversion_by_stage(m, STAGES).set_index("stage_index")
    # highest stage -1: c5 (converted, 50); 0: c4; 1: c3 c8; 2: c2 (100) c7 (no value); 3: c1 (500) c6
    assert by["conversations"].tolist() == [1, 1, 2, 2, 2]
    assert by["converted_count"].tolist() == [1, 0, 0, 2, 1]
    assert by.loc[2, "conversion_rate"] == 1.0 and by.loc[3, "conversion_rate"] == 0.5
    assert by.loc[2, "total_value"] == 100.0 and by.loc[3, "value_per_conversation"] == 250.0
    assert math.isnan(by.loc[0, "conversion_rate"]) is False and by.loc[0, "conversion_rate"] == 0.0

    s = conversion_summary(m, STAGES, lead_stage="email")
    # leads = reached email: c1 c2 c6 c7 -> converted c1 c2 c7 (3/4); value 500+100(+0) = 600
    assert (s.lead_stage, s.lead_count, s.converted_count) == ("email", 4, 3)
    assert s.conversion_rate == 0.75 and s.total_value == 600.0 and s.revenue_per_lead == 150.0
    s0 = conversion_summary(m, STAGES)  # default lead stage: entered the funnel (7 leads)
    assert (s0.lead_count, s0.converted_count, s0.total_value) == (7, 3, 600.0)
    no_value = m.drop(columns="conversion_value")
    assert math.isnan(conversion_summary(no_value, STAGES).total_value)
    assert conversion_summary(no_value, STAGES).as_dict()["revenue_per_lead"] is None
    with pytest.raises(InsufficientDataError, match="'converted'"):
        conversion_summary(golden, STAGES)


def _lead_frame(counts):
    """counts: {segment: (leads, converted)}; one single-message conversation per lead."""
    rows = []
    for seg, (leads, conv) in counts.items():
        for i in range(leads):
            rows.append({"conversation_id": f"{seg}-{i:04d}", "speaker": "user", "text": "quote please",
                         "event": "inquiry", "segment": seg, "converted": i < conv,
                         "conversion_value": 1000.0 if i < conv else None})
    rows.append({"conversation_id": "zz-not-a-lead", "speaker": "user", "text": "hi", "event": None,
                 "segment": "A", "converted": True, "conversion_value": 99.0})
    return messages_frame(rows)


def test_lead_quality_guide_example():
    # The guide: one bot "generates 500 leads but only 10 convert", another "50 leads with 15
    # converting". 25 of 550 leads convert overall (4.55%).
    m = _lead_frame({"A": (500, 10), "B": (50, 15)})
    q = lead_quality(m, ["lead=event:inquiry"], by="segment").set_index("segment")
    assert q.index.tolist() == ["A", "B"]  # sorted by volume
    assert q.loc["A", "lead_count"] == 500 and q.loc["A", "converted_count"] == 10
    assert q.loc["A", "conversion_rate"] == pytest.approx(0.02)
    assert q.loc["B", "conversion_rate"] == pytest.approx(0.30)
    assert q.loc["A", "share_of_leads"] == pytest.approx(500 / 550)
    assert q.loc["A", "share_of_conversions"] == pytest.approx(10 / 25)
    assert q.loc["A", "rate_vs_overall"] == pytest.approx(0.02 / (25 / 550))   # 0.44
    assert q.loc["B", "rate_vs_overall"] == pytest.approx(0.30 / (25 / 550))   # 6.6
    assert q.loc["A", "verdict"] == "volume over quality"
    assert q.loc["B", "verdict"] == "quality over volume"
    # revenue per lead: A 10 x 1000 / 500 = 20, B 15 x 1000 / 50 = 300 (the non-lead's 99 is not counted)
    assert q.loc["A", "revenue_per_lead"] == pytest.approx(20.0)
    assert q.loc["B", "revenue_per_lead"] == pytest.approx(300.0)


def test_lead_quality_balanced_within_tolerance():
    # C: 10/100 = 10%, D: 11/100 = 11%; overall 21/200 = 10.5%. C's lift 0.952, D's 1.048:
    # within the default 10% tolerance both are "balanced"; with tolerance 0 they split.
    m = _lead_frame({"C": (100, 10), "D": (100, 11)})
    q = lead_quality(m, ["lead=event:inquiry"]).set_index("segment")
    assert q["verdict"].tolist() == ["balanced", "balanced"]
    q0 = lead_quality(m, ["lead=event:inquiry"], tolerance=0).set_index("segment")
    assert q0.loc["C", "verdict"] == "volume over quality" and q0.loc["D", "verdict"] == "quality over volume"
    with pytest.raises(ConfigError, match="tolerance=2"):
        lead_quality(m, ["lead=event:inquiry"], tolerance=2)
    assert F.rule_label(DEFAULT_LEAD_FUNNEL[3].rule) == "user~<phone number>"


# --------------------------------------------------------------------------- validation warnings
def test_validate_funnel_warnings(golden):
    assert validate_funnel(STAGES, golden) == []
    w = validate_funnel([Stage("start", "event:inquery"), Stage("x", "intent:pricing"),
                         Stage("y", "field:utm_source=google"), Stage("z", "user~a*")], golden)
    assert w[0] == ("stage 'start': event 'inquery' never occurs in the data; known events: "
                    "inquiry, qualification")
    assert "no 'intent' or 'true_intent' column" in w[1]
    assert "no 'utm_source' column" in w[2]
    assert "matches the empty string" in w[3]
    m = golden.assign(converted=pd.array([True] * len(golden), dtype="boolean"))
    assert "not a true/false value" in validate_funnel(["won=field:converted=maybe"], m)[0]
    assert validate_funnel(["won=field:converted=true"], m) == []
    assert "no conversation reaches it" in validate_funnel(["b=bot~zebra"], golden)[0]
    assert validate_funnel(STAGES, empty_frame()) == ["there are no messages to check the funnel against"]


# --------------------------------------------------------------------------- masking
@pytest.mark.parametrize("text, expected", [
    ("mail me at jane.doe+tag@mail.example.co.uk!", "mail me at <EMAIL>!"),
    ("call 555-123-4567 now", "call <PHONE> now"),
    ("+44 20 7946 0958", "<PHONE>"),
    ("(555) 123 4567 or +1 (555) 123-4567", "<PHONE> or <PHONE>"),
    ("(+234) 70 94250 556", "<PHONE>"),
    ("a@b.io, 5551234567", "<EMAIL>, <PHONE>"),
    # not contact details: short numbers, dates, times, IPs, handles, prices
    ("order 12345 on 2024-01-15 10:30:00", "order 12345 on 2024-01-15 10:30:00"),
    ("on 15.01.2024 or 15/01/2024", "on 15.01.2024 or 15/01/2024"),
    ("router 192.168.1.1.", "router 192.168.1.1."),
    ("@115913 8 hours", "@115913 8 hours"),
    ("price 1,299.00", "price 1,299.00"),
    ("Order 111-5014070-4118645", "Order 111-5014070-4118645"),  # 17 digits: longer than a phone
])
def test_mask_contact_details(text, expected):
    assert mask_contact_details(text) == expected


_PIECES = ["a@b.io", "555-123-4567", "+44 20 7946 0958", "12", "2024-01-15", "-", ".", " ", "x", "@",
           "7", "(", ")", "+", "/", "0"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join))
def test_masking_is_idempotent_and_leaves_no_match(text):
    once = mask_contact_details(text)
    assert mask_contact_details(once) == once
    # one masker (metrics.io.pii): nothing its detector finds survives
    assert pii.find_pii(once) == []


def test_mask_leaves_non_text_and_input_alone(golden):
    assert mask_contact_details(None) is None
    assert mask_contact_details(pd.NA) is pd.NA
    before = golden.copy()
    masked = mask_messages(golden)
    pd.testing.assert_frame_equal(golden, before)
    assert not masked["text"].str.contains("@example", regex=False).any()
    assert masked["text"].dtype == golden["text"].dtype


def test_contact_stage_warning():
    assert contact_stage_warning(DEFAULT_LEAD_FUNNEL)
    assert contact_stage_warning([Stage("got it", "user~@")])           # regex matches an address
    assert contact_stage_warning([Stage("Phone number", "event:phone")])  # name says so
    assert not contact_stage_warning([Stage("inquiry", "event:inquiry"), Stage("paid", "field:converted=true")])
    assert not contact_stage_warning([Stage("any", "user~.*")])          # matches everything: not a capture


@pytest.mark.shared_data
def test_masking_real_tweets_removes_every_match():
    from metrics.io.loaders import load_path

    # redact_pii=False: the raw text, to test the funnel's own masking (redaction at upload is on by default)
    frame = load_path(shared_path("twcs_sample", "twcs.csv"), on_error="skip", redact_pii=False).frame
    masked = mask_messages(frame)["text"].dropna()
    # the sample holds real support phone numbers (e.g. "800-222-2377"); none survive masking
    assert (frame["text"].str.contains("800-222-2377", regex=False)).any()
    assert not masked.str.contains("800-222-2377", regex=False).any()
    assert not any(pii.find_pii(t) for t in masked)       # the one masker: nothing it detects survives
    # Twitter handles such as "@116067 2/2" are kept
    assert masked.str.contains("@116067", regex=False).any()


# --------------------------------------------------------------------------- empty input
def test_empty_input_documented_results():
    empty = empty_frame()
    t = funnel_table(empty, STAGES)
    assert t["conversations"].tolist() == [0, 0, 0, 0] and t["dropped"].tolist() == [0, 0, 0, 0]
    assert t[["rate_of_entry", "step_rate", "median_seconds_from_previous"]].isna().all().all()
    r = reached_stage(empty, STAGES)
    assert len(r) == 0 and list(r.columns) == ["conversation_id", "highest_stage", "highest_stage_name",
                                                "reached_at_0", "reached_at_1", "reached_at_2", "reached_at_3"]
    assert len(dropoff_conversations(empty, STAGES, stage=0)) == 0
    assert len(last_bot_message_before_dropoff(empty, STAGES)) == 0
    assert len(funnel_by_segment(empty.assign(channel=pd.Series([], dtype="str")), STAGES)) == 0
    e = empty.assign(converted=pd.Series([], dtype="boolean"), segment=pd.Series([], dtype="str"))
    assert len(lead_quality(e, STAGES)) == 0
    s = conversion_summary(e, STAGES)
    assert s.lead_count == 0 and math.isnan(s.conversion_rate)


# --------------------------------------------------------------------------- properties
def _oracle(messages, stages, strict):
    """Straightforward per-conversation loop (the definition, written plainly)."""
    m = messages.sort_values(["conversation_id", "timestamp", "row"], na_position="last")
    out = {}
    for cid, conv in m.groupby("conversation_id", sort=True):
        msgs = list(conv.itertuples(index=False))
        start, highest = 0, -1
        for k, stage in enumerate(stages):
            r = stage.rule

            def hit(msg):
                if r.kind == "event":
                    return isinstance(msg.event, str) and msg.event.strip().lower() == r.name.lower()
                return msg.speaker == r.kind and isinstance(msg.text, str) and re.search(
                    r.pattern, msg.text, re.IGNORECASE) is not None
            hits = [i for i, msg in enumerate(msgs) if hit(msg) and (i >= start or not strict)]
            if not hits:
                break
            highest, start = k, hits[0]
        out[cid] = highest
    return out


_TEXTS = ["hi", "a@b.io", "call 555 123 4567", "ok", "x@y.org +1 555 0100 1234"]
_rows = st.lists(st.fixed_dictionaries({
    "conversation_id": st.sampled_from(["a", "b", "c", "d"]),
    "speaker": st.sampled_from(["user", "bot"]),
    "text": st.sampled_from(_TEXTS),
    "event": st.sampled_from([None, "inquiry", "qualification", "Inquiry "]),
    "minute": st.integers(0, 5),
    "channel": st.sampled_from(["web", "sms"]),
}), min_size=0, max_size=30)


def _frame(rows):
    if not rows:
        return empty_frame().assign(event=pd.Series([], dtype="str"), channel=pd.Series([], dtype="str"))
    return messages_frame([{**{k: v for k, v in r.items() if k != "minute"},
                            "timestamp": f"2024-01-01T10:0{r['minute']}:00Z"} for r in rows])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_rows, seed=st.integers(0, 10_000), strict=st.booleans())
def test_properties_shuffle_mutation_monotone_oracle(rows, seed, strict):
    m = _frame(rows)
    before = m.copy()
    t = funnel_table(m, STAGES, strict=strict)
    pd.testing.assert_frame_equal(m, before)  # never mutates
    shuffled = m.sample(frac=1, random_state=np.random.default_rng(seed)).reset_index(drop=True)
    pd.testing.assert_frame_equal(t, funnel_table(shuffled, STAGES, strict=strict))
    pd.testing.assert_frame_equal(reached_stage(m, STAGES, strict=strict),
                                  reached_stage(shuffled, STAGES, strict=strict))
    counts = t["conversations"].to_numpy()
    assert (np.diff(counts) <= 0).all()  # monotone non-increasing
    assert t["dropped"].sum() + counts[-1] == counts[0]
    r = reached_stage(m, STAGES, strict=strict)
    assert dict(zip(r["conversation_id"], r["highest_stage"])) == _oracle(m, STAGES, strict)
    if strict:
        loose = funnel_table(m, STAGES, strict=False)["conversations"].to_numpy()
        assert (counts <= loose).all()
    by = funnel_by_segment(m, STAGES, by="channel", strict=strict)
    assert by.groupby("stage_index")["conversations"].sum().reindex(range(4), fill_value=0).tolist() \
        == counts.tolist()


# --------------------------------------------------------------------------- reach vs. reference
def _reference_reach(messages, stages, strict):
    """The module docstring's definition as a plain per-conversation loop over Python rows.

    Returns ``{conversation_id: {"times": [reach time per reached stage (NaT for field stages)],
    "last_bot": masked last bot text or None, "segment": first usable segment or "(none)"}}``.
    Position order: (conversation id, timestamp with NaT last, row, input order)."""
    recs = messages.to_dict("records")
    for i, r in enumerate(recs):
        r["_i"] = i
    recs.sort(key=lambda r: (r["conversation_id"], pd.isna(r["timestamp"]),
                             0 if pd.isna(r["timestamp"]) else r["timestamp"].value, r["row"], r["_i"]))

    def text_eq(value, name):
        return isinstance(value, str) and value.strip().casefold() == name.strip().casefold()

    def hit(msg, rule):
        if rule.kind == "event":
            return text_eq(msg.get("event"), rule.name)
        if rule.kind == "intent":
            return text_eq(msg.get("intent"), rule.name) or text_eq(msg.get("true_intent"), rule.name)
        if rule.kind == "field":
            value = msg.get(rule.name)
            if rule.name == "converted":  # boolean column: true/yes/1 ... vs false/no/0
                return value is not pd.NA and value is not None and bool(value) == (
                    rule.value.strip().casefold() in {"true", "t", "yes", "y", "1"})
            return text_eq(value, rule.value)
        return (msg["speaker"] == rule.kind and isinstance(msg["text"], str)
                and re.search(rule.pattern, msg["text"], re.IGNORECASE) is not None)

    out = {}
    for cid in sorted({r["conversation_id"] for r in recs}):
        msgs = [r for r in recs if r["conversation_id"] == cid]
        start, times = 0, []
        for stage in stages:
            if stage.rule.kind == "field":
                if not any(hit(m, stage.rule) for m in msgs):
                    break
                times.append(pd.NaT)  # no own time; the chain keeps the previous position
                continue
            hits = [i for i, m in enumerate(msgs) if hit(m, stage.rule) and (i >= start or not strict)]
            if not hits:
                break
            start = hits[0]
            times.append(msgs[start]["timestamp"])
        bots = [m["text"] for m in msgs if m["speaker"] == "bot"]
        segs = [m["segment"] for m in msgs if isinstance(m["segment"], str) and m["segment"].strip()]
        out[cid] = {"times": times, "last_bot": mask_contact_details(bots[-1]) if bots else None,
                    "segment": segs[0] if segs else F._MISSING_SEGMENT}
    return out


_RULE_POOL = ["event:inquiry", "event:qualification", "intent:buy", f"user~{EMAIL_PATTERN}", r"user~\d{3}",
              "bot~e-?mail", "field:segment=SMB", "field:converted=yes", "user~^$", "bot~.", "user~<EMAIL>"]
_reach_rows = st.lists(st.fixed_dictionaries({
    "conversation_id": st.sampled_from(["a", "B", "10", "9", "\u00e9"]),
    "speaker": st.sampled_from(["user", "bot", "agent"]),
    "text": st.sampled_from(["hi", "a@b.io", "<EMAIL>", "call 555 123", "your email?", "", None,
                             "x@y.org +1 555 0100 1234"]),
    "event": st.sampled_from([None, "inquiry", " Qualification", "INQUIRY "]),
    "intent": st.sampled_from([None, "buy", "greet"]),
    "true_intent": st.sampled_from([None, "Buy"]),
    "segment": st.sampled_from([None, "smb", " ", "ent"]),
    "converted": st.sampled_from([None, True, False]),
    "second": st.one_of(st.none(), st.integers(0, 3)),   # None -> no timestamp (NaT)
    "row": st.integers(1, 4),                            # duplicates: ties go to input order
}), min_size=6, max_size=30)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_reach_rows, rules=st.lists(st.sampled_from(_RULE_POOL), min_size=1, max_size=4),
       strict=st.booleans(), perm_seed=st.one_of(st.none(), st.integers(0, 10_000)))
def test_vectorised_reach_matches_per_conversation_reference(rows, rules, strict, perm_seed):
    # the vectorised reach (factorised texts, first hit per conversation by position, sortedness
    # shortcut) against the definition written as a loop; perm_seed None keeps the frame in
    # position order (the validated fast path), otherwise the rows are shuffled
    stages = [Stage(f"s{i}", rule) for i, rule in enumerate(rules)]
    if rows:
        m = messages_frame([{**{k: v for k, v in r.items() if k not in ("second", "row")},
                             "timestamp": None if r["second"] is None else f"2024-01-01T10:00:0{r['second']}Z"}
                            for r in rows])
        m["row"] = [r["row"] for r in rows]   # messages_frame numbers rows itself; use ours
    else:
        m = empty_frame().assign(**{c: pd.Series([], dtype="str") for c in
                                    ("event", "intent", "true_intent", "segment")},
                                 converted=pd.Series([], dtype="boolean"))
    key = m.assign(_nat=m["timestamp"].isna())
    m = m.iloc[np.lexsort((key["row"], key["timestamp"].fillna(pd.Timestamp(0, tz="UTC")), key["_nat"],
                           key["conversation_id"]))].reset_index(drop=True) if len(m) else m
    if perm_seed is not None:
        m = m.sample(frac=1, random_state=np.random.default_rng(perm_seed)).reset_index(drop=True)
    expected = _reference_reach(m, stages, strict)

    r = reached_stage(m, stages, strict=strict)
    assert r["conversation_id"].tolist() == sorted(expected)  # code point order, like sorted()
    for cid, row in zip(r["conversation_id"], r.itertuples(index=False)):
        times = expected[cid]["times"]
        assert row.highest_stage == len(times) - 1, cid
        for k in range(len(stages)):
            got = getattr(row, f"reached_at_{k}")
            want = times[k] if k < len(times) else pd.NaT
            assert (pd.isna(got) and pd.isna(want)) or got == want, (cid, k, got, want)

    # the last bot message (masked) of conversations that stopped at stage 0
    if len(stages) > 1:
        d = dropoff_conversations(m, stages, stage=0, strict=strict)
        stopped = {c for c, e in expected.items() if len(e["times"]) == 1}
        assert set(d["conversation_id"]) == stopped
        for cid, text in zip(d["conversation_id"], d["last_bot_message"]):
            want = expected[cid]["last_bot"]   # None / NaN: no bot message, or one without text
            assert (pd.isna(text) and not isinstance(want, str)) or text == want, (cid, text, want)

    # entrants per segment label (first non-blank segment of the conversation)
    by = funnel_by_segment(m, stages, by="segment", strict=strict)
    got = dict(zip(by.loc[by["stage_index"] == 0, "segment"], by.loc[by["stage_index"] == 0, "conversations"]))
    want = {}
    for e in expected.values():
        want[e["segment"]] = want.get(e["segment"], 0) + (len(e["times"]) > 0)
    assert got == want


# --------------------------------------------------------------------------- CLI
_CSV = ("conversation_id,timestamp,speaker,text,event,converted,conversion_value\n"
        "a,2024-01-01T10:00:00Z,user,quote,inquiry,true,100\n"
        "a,2024-01-01T10:01:00Z,user,we are 5,qualification,true,100\n"
        "a,2024-01-01T10:02:00Z,user,a@b.io,,true,100\n"
        "b,2024-01-01T10:00:00Z,user,a@b.io,,false,\n"
        "b,2024-01-01T10:01:00Z,user,quote,inquiry,false,\n"
        "c,2024-01-01T10:00:00Z,user,hi,,true,40\n")


@pytest.fixture
def funnel_cli(monkeypatch, capsys):
    from metrics import cli

    monkeypatch.setattr(cli, "SUBCOMMANDS", [m for m in cli.SUBCOMMANDS if m != "metrics.funnel.cli"]
                        + ["metrics.funnel.cli"])

    def call(*argv):
        code = cli.main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err
    return call


def test_cli_json_golden(tmp_path, funnel_cli):
    import json

    path = tmp_path / "f.csv"
    path.write_text(_CSV)
    # --keep-pii: the rule matches raw addresses (with redaction on it would target <EMAIL>)
    code, out, err = funnel_cli("funnel", str(path), "--stage", "in=event:inquiry", "--keep-pii",
                                "--stage", f"mail=user~{EMAIL_PATTERN}", "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    # a: inquiry then e-mail; b: e-mail BEFORE the inquiry (strict: no); c never enters
    assert report["stages"] == [
        {"name": "in", "conversations": 2, "rate_of_entry": 1.0, "step_rate": 2 / 3, "dropped": 1},
        {"name": "mail", "conversations": 1, "rate_of_entry": 0.5, "step_rate": 0.5, "dropped": 0}]
    # converted among the 2 entrants: a only (c converted but never entered); value 100
    assert report["converted"] == 1 and report["conversion_value"] == 100.0
    code, out, _ = funnel_cli("funnel", str(path), "--stage", "in=event:inquiry", "--keep-pii",
                              "--stage", f"mail=user~{EMAIL_PATTERN}", "--no-strict", "--format", "json")
    assert json.loads(out)["stages"][1]["conversations"] == 2  # any order: b counts


def test_cli_default_funnel_text_and_map(tmp_path, funnel_cli):
    path = tmp_path / "g.csv"
    path.write_text(_CSV.replace("event,", "kind,", 1))
    code, out, err = funnel_cli("funnel", str(path), "--map", "event=kind")
    assert code == 0, err
    assert "qualification question answered" in out and "converted: 1" in out


@pytest.mark.parametrize("stage, fragment", [
    ("mail=user~[", "rule 'user~[': invalid regex"),
    ("x=mood:happy", "unknown kind 'mood'"),
    ("nameonly", "expected NAME=RULE"),
])
def test_cli_bad_stage_exits_2_with_one_line(tmp_path, funnel_cli, stage, fragment):
    path = tmp_path / "f.csv"
    path.write_text(_CSV)
    code, out, err = funnel_cli("funnel", str(path), "--stage", stage, "--format", "json")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and repr(stage) in lines[0]


def test_summary_section():
    from metrics.funnel.cli import section_provider, summary_section

    m = messages_frame(golden_rows())
    section = summary_section(m)
    assert [s["conversations"] for s in section["stages"]] == [7, 6, 4, 2]
    assert section["converted"] is None  # no converted column
    assert section_provider(m)["funnel"] == section
    assert summary_section(m.drop(columns="event")) is None
