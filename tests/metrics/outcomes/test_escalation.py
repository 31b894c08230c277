"""Escalation: rate, reasons (field and derived rules), turn histogram and early share, by group, wait, success."""

from __future__ import annotations

import math

import pytest
from conftest import messages_frame
from hypothesis import given, settings
from hypothesis import strategies as st
from test_outcomes import ten_conversations
from test_outcomes_properties import _na, _norm_event, conversations_in_order, reference_primary_intent, varied_frames

from metrics.errors import ConfigError, InsufficientDataError
from metrics.outcomes.escalation import (REASON_LOW_CONFIDENCE, REASON_NEGATIVE, REASON_REQUESTED, REASON_SENSITIVE,
                                REASON_UNSPECIFIED, EscalationRules, derive_reason, escalation_by,
                                escalation_reasons, escalation_summary, escalation_table, escalation_timing,
                                escalation_turns, handoff_success, handoff_wait, handoff_wait_times)
from metrics.core.rollup import conversation_rollup


@pytest.fixture
def ten():
    m = ten_conversations()
    return m, conversation_rollup(m)


def _escalated(cid, user_texts, *, t0="2026-08-03 10:00", handoff=False, **extra):
    """A conversation: the user's messages, then (optionally) a handoff event, then an agent."""
    rows, minute = [], 0
    base = {"conversation_id": cid, **extra}
    for text in user_texts:
        if isinstance(text, tuple):
            text, fields = text
        else:
            fields = {}
        rows.append({**base, "timestamp": f"{t0[:-2]}{minute:02d}", "speaker": "user", "text": text, **fields})
        minute += 1
    if handoff:
        rows.append({**base, "timestamp": f"{t0[:-2]}{minute:02d}", "speaker": "bot", "text": "One moment.",
                     "event": "handoff"})
        minute += 1
    rows.append({**base, "timestamp": f"{t0[:-2]}{minute + 3:02d}", "speaker": "agent", "text": "Hi, agent here."})
    return rows


def test_rate_and_reasons_on_ten(ten):
    m, r = ten
    s = escalation_summary(m, r)
    # escalation signal: c03 (handoff + agent) and c04 (agent) -> 2 / 10, even though c04's outcome is resolved
    assert s.escalated_count == 2 and s.escalation_rate == pytest.approx(0.2)
    # c04 carries a reason field; c03 says "talk to a human" -> derived "customer requested agent"
    assert s.reasons == {"Sentiment detected as negative": 1, REASON_REQUESTED: 1}
    t = escalation_table(m, r).set_index("conversation_id")
    assert t.loc["c04", "reason_source"] == "field" and t.loc["c03", "reason_source"] == "derived"
    assert t.loc["c03", "intent"] == "talk_to_agent" and t.loc["c04", "topic"] == "complaint"
    assert t.loc["c03", "hour"] == 11 and t.loc["c04", "weekday_name"] == "Mon"


def test_derived_reason_precedence():
    # 1 requested beats 2 sensitive beats 3 negative beats 4 low confidence
    assert derive_reason(["I will call my lawyer, get me a human"]) == REASON_REQUESTED
    assert derive_reason(["I will call my lawyer, this is useless"]) == REASON_SENSITIVE
    assert derive_reason(["this is useless"], confidences=[0.1]) == REASON_NEGATIVE
    assert derive_reason(["blorp"], confidences=[0.59]) == REASON_LOW_CONFIDENCE
    assert derive_reason(["blorp"], confidences=[0.6]) == REASON_UNSPECIFIED   # 0.6 is not below 0.6
    assert derive_reason(["blorp"], fallback=[True]) == REASON_LOW_CONFIDENCE
    assert derive_reason([]) == REASON_UNSPECIFIED
    # whole words only: "agents" / "humane" do not ask for a human
    assert derive_reason(["humane treatment of agents"]) == REASON_UNSPECIFIED
    # sentiment score column, or a sensitive topic
    assert derive_reason(["ok"], sentiments=[-0.6]) == REASON_NEGATIVE
    assert derive_reason(["ok"], sentiments=[0.3]) == REASON_UNSPECIFIED
    assert derive_reason(["ok"], topic="Legal", rules=EscalationRules(sensitive_topics=("legal",))) == REASON_SENSITIVE


def test_derived_reasons_in_table_match_rules():
    rows = (
        _escalated("a", ["where is my order", "let me speak to someone"])                      # requested
        + _escalated("b", ["my card was stolen"])                                               # sensitive
        + _escalated("c", [("hmm", {"intent": "billing", "confidence": 0.3})])                 # low confidence
        + _escalated("d", [("xyz", {"intent": "nlu_fallback", "confidence": 0.9})])            # fallback
        + _escalated("e", ["this is the worst"])                                                # negative
        + _escalated("f", ["refund please"])                                                    # unspecified
        + _escalated("g", ["ok", "talk to a person"], handoff=False)                           # requested
    )
    # a message after the agent took over must not change the reason
    rows.append({"conversation_id": "f", "timestamp": "2026-08-03 10:30", "speaker": "user", "text": "human!!"})
    m = messages_frame(rows)
    t = escalation_table(m, conversation_rollup(m)).set_index("conversation_id")["reason"].to_dict()
    assert t == {"a": REASON_REQUESTED, "b": REASON_SENSITIVE, "c": REASON_LOW_CONFIDENCE,
                 "d": REASON_LOW_CONFIDENCE, "e": REASON_NEGATIVE, "f": REASON_UNSPECIFIED, "g": REASON_REQUESTED}
    counts = escalation_reasons(m, conversation_rollup(m)).set_index("reason")["conversation_count"].to_dict()
    assert counts == {REASON_REQUESTED: 2, REASON_LOW_CONFIDENCE: 2, REASON_SENSITIVE: 1, REASON_NEGATIVE: 1,
                      REASON_UNSPECIFIED: 1}


def test_optional_sentiment_column_and_threshold():
    rows = _escalated("a", [("meh", {"sentiment": -0.4})]) + _escalated("b", [("meh", {"sentiment": 0.2})])
    m = messages_frame(rows)
    r = conversation_rollup(m)
    got = escalation_table(m, r).set_index("conversation_id")["reason"].to_dict()
    assert got == {"a": REASON_NEGATIVE, "b": REASON_UNSPECIFIED}
    stricter = escalation_table(m, r, escalation_rules=EscalationRules(negative_threshold=-0.5))
    assert stricter["reason"].tolist() == [REASON_UNSPECIFIED, REASON_UNSPECIFIED]


def test_turn_histogram_and_early_warning(ten):
    m, r = ten
    turns = escalation_turns(m, r)
    # c03: handoff after 1 user turn; c04: agent after 1 user turn
    assert turns[["turn", "conversation_count"]].values.tolist() == [[0, 0], [1, 2]]
    timing = escalation_timing(m, r)
    assert timing.early_escalation_rate == 1.0 and timing.known_turn_count == 2
    assert timing.warning.startswith("100% of escalations happen within the first 3 user turns")
    assert "lacks training or capabilities" in timing.warning


def test_early_share_threshold_is_inclusive():
    # 5 escalations at turns 1, 2, 4, 5, 6: 2 / 5 = 40 % within 3 turns -> warn (>= 40 %)
    rows = []
    for cid, n in zip("abcde", (1, 2, 4, 5, 6)):
        rows += _escalated(cid, [f"q{i}" for i in range(n)])
    m = messages_frame(rows)
    r = conversation_rollup(m)
    timing = escalation_timing(m, r)
    assert timing.early_count == 2 and timing.early_escalation_rate == pytest.approx(0.4)
    assert timing.warning is not None
    # 1 / 5 = 20 % within 1 turn: no warning
    assert escalation_timing(m, r, early_turns=1).warning is None
    with pytest.raises(ConfigError, match="-1"):
        escalation_timing(m, r, early_turns=-1)
    with pytest.raises(ConfigError, match="1.5"):
        escalation_timing(m, r, warn_at=1.5)


def test_escalation_by_groups(ten):
    m, r = ten
    by_topic = escalation_by(m, r, by="topic").set_index("topic")
    # complaint: c03, c04 escalated of c03 c04 c08 -> 2/3
    assert by_topic.loc["complaint", "escalation_rate"] == pytest.approx(2 / 3)
    assert by_topic.loc["(none)", "conversation_count"] == 1
    by_hour = escalation_by(m, r, by="hour").set_index("hour")
    assert len(by_hour) == 24
    assert by_hour.loc[11, "escalated_count"] == 1 and by_hour.loc[12, "escalated_count"] == 1
    assert math.isnan(by_hour.loc[3, "escalation_rate"])  # nobody at 03:00: 0 / 0
    by_intent = escalation_by(m, r, by="intent").set_index("intent")
    assert by_intent.loc["talk_to_agent", "escalation_rate"] == 1.0
    weekday = escalation_by(m, r, by="weekday")
    assert weekday["weekday_name"].tolist() == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    with pytest.raises(ConfigError, match="'moon'"):
        escalation_by(m, r, by="moon")


def test_wait_times(ten):
    m, r = ten
    times = handoff_wait_times(m, r)
    # only c03 has a handoff event (11:00:05); Sam answers at 11:02:05 -> 120 s. c04 has no handoff event.
    assert times["conversation_id"].tolist() == ["c03"] and times["wait_seconds"].tolist() == [120.0]
    w = handoff_wait(m, r)
    assert (w.handoff_count, w.answered_count, w.median_wait_seconds) == (1, 1, 120.0)


def test_unanswered_handoff_and_no_timestamps():
    m = messages_frame([
        {"conversation_id": "a", "timestamp": "2026-08-03 10:00", "speaker": "bot", "text": "hold on",
         "event": "handoff"},
        {"conversation_id": "b", "timestamp": "2026-08-03 10:00", "speaker": "bot", "text": "hold on",
         "event": "handoff"},
        {"conversation_id": "b", "timestamp": "2026-08-03 10:10", "speaker": "agent", "text": "hi"},
    ])
    w = handoff_wait(m, conversation_rollup(m))
    assert (w.handoff_count, w.answered_count, w.median_wait_seconds) == (2, 1, 600.0)
    untimed = messages_frame([{"conversation_id": "a", "speaker": "agent", "text": "hi", "event": "handoff"}])
    with pytest.raises(InsufficientDataError, match="needs timestamps"):
        handoff_wait_times(untimed, conversation_rollup(untimed))
    # the summary still works and reports no wait
    assert math.isnan(escalation_summary(untimed, conversation_rollup(untimed)).median_wait_seconds)


def test_handoff_success(ten):
    m, r = ten
    s = handoff_success(m, r)
    # escalated c03, c04; c04 answered the survey "yes" -> 1 / 2 resolved after hand-off
    assert (s.escalated_count, s.resolved_after_handoff_count) == (2, 1)
    assert s.resolved_after_handoff_rate == 0.5
    # ratings: c04 (escalated) 4; bot-only c01 5 and c08 2 -> 3.5
    assert (s.rating_after_handoff_mean, s.rating_after_handoff_count) == (4.0, 1)
    assert (s.rating_bot_only_mean, s.rating_bot_only_count) == (3.5, 2)


def test_empty_and_no_escalation():
    m = messages_frame([{"conversation_id": "a", "timestamp": "2026-08-03 10:00", "speaker": "user", "text": "x"}])
    r = conversation_rollup(m)
    s = escalation_summary(m, r)
    assert s.escalated_count == 0 and s.escalation_rate == 0.0 and s.reasons == {}
    assert math.isnan(s.early_escalation_rate) and s.warning is None
    assert escalation_table(m, r).empty and escalation_turns(m, r).empty and escalation_reasons(m, r).empty
    e, er = m.iloc[0:0], conversation_rollup(m.iloc[0:0])
    s = escalation_summary(e, er)
    assert s.conversation_count == 0 and math.isnan(s.escalation_rate)
    assert math.isnan(handoff_success(e, er).resolved_after_handoff_rate)


def test_rules_validation():
    with pytest.raises(ConfigError, match="2"):
        EscalationRules(low_confidence_threshold=2)
    with pytest.raises(ConfigError, match="'human'"):
        EscalationRules(agent_request_keywords="human")


# The vectorised table against derive_reason (the per-conversation definition) and plain-Python
# references, on random frames (tricky texts, missing times, shuffled rows: see test_outcomes_properties).
REFERENCE_RULES = [EscalationRules(),
                   EscalationRules(sensitive_topics=("Complaint",), negative_keywords=("\u017ftop", "hate"),
                                   agent_request_keywords=("agent", "talk to someone"), sentiment_column="sentiment")]


def _reference_reasons(m, r, rules):
    """conversation_id -> (reason, source) of each escalated conversation, one conversation at a time."""
    from metrics.outcomes import OutcomeRules, escalation_signal

    fallback_intents = OutcomeRules().fallback_intents
    convs = conversations_in_order(m)
    signal = escalation_signal(m, r)
    out = {}
    for conv in r.to_dict("records"):
        cid = conv["conversation_id"]
        if not signal[cid]:
            continue
        msgs = convs.get(cid, [])
        ends = [i for i, x in enumerate(msgs) if x["speaker"] == "agent"
                or (not _na(x["event"]) and str(x["event"]).strip().lower() == "handoff")]
        users = [x for i, x in enumerate(msgs) if x["speaker"] == "user" and (not ends or i <= ends[0])]
        field = None if _na(conv.get("escalation_reason")) else str(conv["escalation_reason"]).strip()
        if field:
            out[cid] = (field, "field")
            continue
        norm = [_norm_event(x["intent"]) for x in users]
        out[cid] = (derive_reason([x["text"] for x in users], confidences=[x["confidence"] for x in users],
                                  fallback=[n is not None and (n in fallback_intents or "fallback" in n) for n in norm],
                                  sentiments=[x.get(rules.sentiment_column) for x in users],
                                  topic=conv.get("topic"), rules=rules), "derived")
    return out


def _reference_waits(m):
    """conversation_id -> (handoff_at, first_agent_at) for conversations with a handoff event."""
    out = {}
    for cid, msgs in sorted(conversations_in_order(m).items()):
        handoffs = [i for i, x in enumerate(msgs)
                    if not _na(x["event"]) and str(x["event"]).strip().lower() == "handoff"]
        if handoffs:
            agents = [x["timestamp"] for x in msgs[handoffs[0]:] if x["speaker"] == "agent" and not _na(x["timestamp"])]
            out[cid] = (msgs[handoffs[0]]["timestamp"], min(agents) if agents else None)
    return out


@settings(max_examples=100)
@given(varied_frames(), st.sampled_from(REFERENCE_RULES))
def test_escalation_table_matches_plain_python_reference(m, rules):
    r = conversation_rollup(m)
    t = escalation_table(m, r, escalation_rules=rules)
    got = {row["conversation_id"]: (row["reason"], row["reason_source"]) for row in t.to_dict("records")}
    assert got == _reference_reasons(m, r, rules)
    intents = {cid: reference_primary_intent(msgs) for cid, msgs in conversations_in_order(m).items()}
    for row in t.to_dict("records"):
        expected = intents.get(row["conversation_id"])
        assert (_na(row["intent"]) and expected is None) or row["intent"] == expected, row
    if m["timestamp"].notna().any():
        waits = handoff_wait_times(m, r)
        def plain(at):
            return None if _na(at) else at

        got = {row["conversation_id"]: (plain(row["handoff_at"]), plain(row["first_agent_at"]))
               for row in waits.to_dict("records")}
        expected = {cid: (plain(h), plain(a)) for cid, (h, a) in _reference_waits(m).items()}
        assert got == expected
        assert waits["conversation_id"].tolist() == sorted(expected)


KEYWORDISH = ["human", "HUMAN", "Agent", "agents", "real person", "Real  person", "lawyer", "LEGAL", "sue", "suede",
              "hate", "HATED", "\u017ftop", "STOP", "\u0130", "\u212a", "self-harm", "talk to someone", "x", "!", "\n",
              "\u00e9human", "agent\u00e9", "caf\u00e9 hate"]  # "é" is a word letter for Python's \\b


@settings(max_examples=100)
@given(st.lists(st.lists(st.lists(st.sampled_from(KEYWORDISH), max_size=4).map(" ".join), max_size=3),
                min_size=1, max_size=5),
       st.sampled_from(REFERENCE_RULES))
def test_derived_reasons_match_derive_reason(conversations, rules):
    # each conversation: its user messages, then an agent; the table's derived reason must be
    # derive_reason of those messages (case, word boundaries and non-ASCII letters included)
    rows = []
    for i, texts in enumerate(conversations):
        rows += [{"conversation_id": f"c{i}", "speaker": "user", "text": text} for text in texts]
        rows.append({"conversation_id": f"c{i}", "speaker": "agent", "text": "Hi, agent here."})
    m = messages_frame(rows)
    t = escalation_table(m, conversation_rollup(m), escalation_rules=rules)
    assert t["reason"].tolist() == [derive_reason(texts, rules=rules) for texts in conversations]


@pytest.mark.parametrize("by, slots", [("hour", 24), ("weekday", 7)])
def test_escalation_by_time_slot_on_an_empty_timed_rollup_gives_every_slot_empty(by, slots):
    """Found by tests/metrics/test_metric_contract.py: the empty rollup's stand-in column was float, so .dt failed."""
    from metrics.outcomes.escalation import escalation_by

    m = messages_frame([dict(conversation_id="a", speaker="user", text="hi",
                             timestamp="2026-08-03T10:00:00Z")]).iloc[0:0]
    out = escalation_by(m, conversation_rollup(m), by=by)
    assert len(out) == slots
    assert out["conversation_count"].sum() == 0 and out["escalated_count"].sum() == 0
