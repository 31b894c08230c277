"""Outcomes: classify_outcomes rules, outcome_rates, vendor definitions side by side, success by tag.

The ten-conversation fixture :func:`ten_conversations` is built so that the five styles
disagree; every expected value below is written beside the reasoning that gives it.
Other test files import it (``from test_outcomes import ten_conversations, EXPORT_END``).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import messages_frame

from metrics.errors import ConfigError, InsufficientDataError
from metrics.outcomes import (NO_TAG, OutcomeRules, canonical_outcome, classify_outcomes, conversation_tags,
                              is_small_talk, outcome_mix, outcome_rates, outcome_table, primary_intent,
                              resolution_by_tag, vendor_definitions, vendor_outcome_table)
from metrics.core.rollup import conversation_rollup
from metrics.core.stats import wilson_interval

EXPORT_END = "2026-08-10T12:00:00Z"
RULES = OutcomeRules(export_end=EXPORT_END)


def _m(cid, ts, speaker, text, **extra):
    return {"conversation_id": cid, "timestamp": ts, "speaker": speaker, "text": text, **extra}


def ten_conversations() -> pd.DataFrame:
    """Ten conversations; the export ends 2026-08-10 12:00 UTC (a Monday). 2026-08-03 is a Monday."""
    c = {  # conversation fields, repeated on each row of the conversation
        "c01": dict(user_id="u1", topic="inquiry", survey_solved=True, rating=5.0, thumbs="up"),
        "c02": dict(user_id="u2", topic="request", goal_achieved=True),
        "c03": dict(user_id="u3", topic="complaint"),
        "c04": dict(user_id="u4", topic="complaint", survey_solved=True, rating=4.0,
                    escalation_reason="Sentiment detected as negative"),
        "c05": dict(user_id="u5", topic="inquiry"),
        "c06": dict(user_id="u6"),
        "c07": dict(user_id="u7", topic="request"),
        "c08": dict(user_id="u8", topic="complaint", survey_solved=False, rating=2.0, thumbs="down"),
        "c09": dict(user_id="u9", topic="request", outcome="resolved"),
        "c10": dict(user_id="u9", topic="request"),
    }
    rows = [
        # c01: real question answered, then the survey: "yes" (survey_solved True)
        _m("c01", "2026-08-03 09:00:00", "user", "Where is my order 123?", intent="order_status", confidence=0.95),
        _m("c01", "2026-08-03 09:00:05", "bot", "It ships tomorrow."),
        _m("c01", "2026-08-03 09:00:10", "bot", "Did that answer your question?", event="survey"),
        # c02: lead left an e-mail, goal reached, bot has the last word
        _m("c02", "2026-08-03 10:00:00", "user", "I want a demo", intent="book_demo", confidence=0.9),
        _m("c02", "2026-08-03 10:00:05", "bot", "What's your email?"),
        _m("c02", "2026-08-03 10:01:00", "user", "ana@example.com", intent="inform", confidence=0.8),
        _m("c02", "2026-08-03 10:01:05", "bot", "Thanks, we'll be in touch."),
        # c03: asks for a human; bot hands off (event), agent answers 2 minutes later
        _m("c03", "2026-08-03 11:00:00", "user", "I need to talk to a human", intent="talk_to_agent",
           confidence=0.9),
        _m("c03", "2026-08-03 11:00:05", "bot", "Connecting you to an agent.", event="handoff"),
        _m("c03", "2026-08-03 11:02:05", "agent", "Hi, Sam here."),
        # c04: angry, an agent joins without a handoff event, survey "yes" afterwards
        _m("c04", "2026-08-03 12:00:00", "user", "this is ridiculous, charged twice!!", intent="billing",
           confidence=0.45),
        _m("c04", "2026-08-03 12:00:05", "bot", "Let me get a colleague."),
        _m("c04", "2026-08-03 12:03:00", "agent", "I've refunded the duplicate."),
        # c05: answered, then a bot question nobody answered
        _m("c05", "2026-08-03 13:00:00", "user", "how much is the pro plan?", intent="pricing", confidence=0.9),
        _m("c05", "2026-08-03 13:00:05", "bot", "Pro is $79/month. How many seats do you need?"),
        # c06: greeting only, after hours
        _m("c06", "2026-08-03 20:00:00", "user", "hi", intent="greet", confidence=0.99),
        _m("c06", "2026-08-03 20:00:02", "bot", "Hello! How can I help you today?"),
        # c07: misunderstood once, then answered; bot's last word is a statement
        _m("c07", "2026-08-04 09:00:00", "user", "blorp my thingy", intent="nlu_fallback", confidence=0.2),
        _m("c07", "2026-08-04 09:00:05", "bot", "Sorry, I didn't quite get that. Could you rephrase?"),
        _m("c07", "2026-08-04 09:01:00", "user", "reset my password", intent="reset_password", confidence=0.93),
        _m("c07", "2026-08-04 09:01:05", "bot", "Use the 'Forgot password' link on the login page."),
        _m("c07", "2026-08-04 09:02:00", "user", "thanks", intent="thanks", confidence=0.9),
        _m("c07", "2026-08-04 09:02:03", "bot", "You're welcome, bye!"),
        # c08: answered, survey "no", thumbs down
        _m("c08", "2026-08-04 14:00:00", "user", "where is my refund?", intent="refund", confidence=0.88),
        _m("c08", "2026-08-04 14:00:05", "bot", "Refunds take 5-7 days."),
        _m("c08", "2026-08-04 14:00:10", "bot", "Did that answer your question?", event="survey"),
        # c09 (Sunday, user u9): explicit outcome "resolved"; u9 comes back 23h50m after the answer (c10)
        _m("c09", "2026-08-09 10:59:00", "user", "cancel my subscription", intent="cancel_subscription",
           confidence=0.9),
        _m("c09", "2026-08-09 11:00:00", "bot", "Done - your plan is cancelled."),
        # c10 (u9 again): ends on a bot question 45 minutes before the export end
        _m("c10", "2026-08-10 10:50:00", "user", "actually I want my subscription back", intent="reactivate",
           confidence=0.7),
        _m("c10", "2026-08-10 11:15:00", "bot", "Sure, which email is the account under?"),
    ]
    for row in rows:
        row.update(c[row["conversation_id"]])
    return messages_frame(rows)


@pytest.fixture
def ten():
    m = ten_conversations()
    return m, conversation_rollup(m)


# ----------------------------------------------------------------------------- classify_outcomes

def test_classify_outcomes_golden(ten):
    m, r = ten
    got = classify_outcomes(m, r, rules=RULES).to_dict()
    assert got == {
        "c01": "resolved",    # rule 3: survey_solved True
        "c02": "resolved",    # rule 2: goal_achieved True
        "c03": "escalated",   # rule 4: handoff event + agent message
        "c04": "resolved",    # rule 3 beats rule 4: survey "yes" after the agent took over
        "c05": "abandoned",   # rule 7: last message is a bot question, 7 days of silence
        "c06": "abandoned",   # rule 7: "How can I help you today?" never answered
        "c07": "unresolved",  # rule 8: bot's last word "You're welcome, bye!" is not a question
        "c08": "unresolved",  # rule 5: survey answered "no"
        "c09": "resolved",    # rule 1: explicit outcome "resolved"
        "c10": "abandoned",   # rule 7: 45 min of silence >= 30 min time-out, so not in progress
    }
    rules = outcome_table(m, r, rules=RULES).set_index("conversation_id")["rule"]
    assert rules["c04"] == "survey_solved" and rules["c09"] == "explicit_outcome"
    assert rules["c07"] == "default_unresolved" and rules["c08"] == "survey_not_solved"


def test_timeout_moves_recent_conversation_to_in_progress(ten):
    m, r = ten
    # c10's last message is 45 min before the export end: with a 60-min time-out it is still open
    got = classify_outcomes(m, r, rules=OutcomeRules(export_end=EXPORT_END, timeout_minutes=60))
    assert got["c10"] == "in_progress"
    assert (got.drop("c10") == classify_outcomes(m, r, rules=RULES).drop("c10")).all()


def test_no_goal_mode(ten):
    m, r = ten
    got = classify_outcomes(m, r, rules=OutcomeRules(export_end=EXPORT_END, abandonment_mode="no_goal"))
    # everything rules 1-6 leave is abandoned: c05, c06, c10 and now c07 (no goal, no survey, no escalation)
    assert sorted(got[got == "abandoned"].index) == ["c05", "c06", "c07", "c10"]
    assert got["c08"] == "unresolved"  # the survey was answered "no": not abandoned


def test_export_end_defaults_to_latest_message(ten):
    m, r = ten
    # default export end = 2026-08-10 11:15 (c10's last message): c10 has 0 min of silence -> in progress
    assert classify_outcomes(m, r)["c10"] == "in_progress"


def test_without_timestamps_silence_is_assumed_final():
    m = messages_frame([
        {"conversation_id": "a", "speaker": "user", "text": "price?"},
        {"conversation_id": "a", "speaker": "bot", "text": "Which plan?"},
        {"conversation_id": "b", "speaker": "user", "text": "price?"},
    ])
    # a: ends on a bot question, no clock to say it is recent -> abandoned; b: user's last word -> unresolved
    assert classify_outcomes(m, conversation_rollup(m)).to_dict() == {"a": "abandoned", "b": "unresolved"}


def test_explicit_outcome_aliases_and_unknown_values():
    assert canonical_outcome("Handed-off") == "escalated"
    assert canonical_outcome(" TIMED OUT ") == "abandoned"
    assert canonical_outcome("purple") is None and canonical_outcome(None) is None
    m = messages_frame([
        {"conversation_id": "a", "speaker": "user", "text": "x", "outcome": "purple"},
        {"conversation_id": "a", "speaker": "agent", "text": "y", "outcome": "purple"},
    ])
    # an unknown explicit value is ignored and the agent message decides
    assert classify_outcomes(m, conversation_rollup(m)).tolist() == ["escalated"]


def test_system_messages_do_not_count_as_last_message():
    m = messages_frame([
        {"conversation_id": "a", "timestamp": "2026-08-03 10:00", "speaker": "user", "text": "help"},
        {"conversation_id": "a", "timestamp": "2026-08-03 10:01", "speaker": "bot", "text": "With what?"},
        {"conversation_id": "a", "timestamp": "2026-08-03 10:31", "speaker": "system", "text": "session closed"},
    ])
    assert classify_outcomes(m, conversation_rollup(m), rules=RULES).tolist() == ["abandoned"]


def test_small_talk():
    assert is_small_talk("Hi there!") and is_small_talk("ok thanks :)") and is_small_talk(None)
    assert not is_small_talk("hi, where is my order?")


def test_primary_intent_skips_small_talk(ten):
    m, _ = ten
    got = primary_intent(m).to_dict()
    assert got["c06"] == "greet"         # only small talk: falls back to the first intent
    assert got["c07"] == "nlu_fallback"  # first non-small-talk message was misunderstood
    assert got["c02"] == "book_demo"


@pytest.mark.parametrize("bad", [
    dict(timeout_minutes=0), dict(timeout_minutes=-5), dict(timeout_minutes="30"), dict(timeout_minutes=True),
    dict(abandonment_mode="never"), dict(question_pattern="("), dict(export_end="not a date"),
])
def test_rules_validation_repeats_bad_value(bad):
    with pytest.raises(ConfigError) as info:
        OutcomeRules(**bad)
    assert repr(list(bad.values())[0]) in str(info.value)


def test_empty_input():
    m = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "x"}]).iloc[0:0]
    r = conversation_rollup(m)
    assert classify_outcomes(m, r).empty
    rates = outcome_rates(m, r)
    assert rates.conversation_count == 0 and rates.decided_count == 0
    assert all(math.isnan(getattr(rates, k)) for k in ("resolution_rate", "escalation_rate", "abandonment_rate",
                                                        "containment_rate"))
    v = vendor_definitions(m, r)
    assert len(v) == 5 and v["resolution_rate"].isna().all() and v["counted_count"].eq(0).all()


# ----------------------------------------------------------------------------- outcome_rates

def test_outcome_rates_golden(ten):
    m, r = ten
    rates = outcome_rates(m, r, rules=RULES)
    # resolved c01 c02 c04 c09 = 4; escalated c03 = 1; abandoned c05 c06 c10 = 3; unresolved c07 c08 = 2
    assert (rates.resolved_count, rates.escalated_count, rates.abandoned_count, rates.unresolved_count) == (4, 1, 3, 2)
    assert rates.decided_count == 10 and rates.in_progress_count == 0
    assert rates.resolution_rate == pytest.approx(0.4)
    assert rates.escalation_rate == pytest.approx(0.1)
    assert rates.abandonment_rate == pytest.approx(0.3)
    # contained = no agent / handoff: all but c03 and c04 (c04 is resolved, yet a human was involved)
    assert rates.contained_count == 8 and rates.containment_rate == pytest.approx(0.8)


def test_in_progress_is_left_out_of_the_denominator(ten):
    m, r = ten
    rates = outcome_rates(m, r, rules=OutcomeRules(export_end=EXPORT_END, timeout_minutes=60))
    # c10 in progress: 9 decided; abandoned now c05 c06 = 2
    assert rates.decided_count == 9 and rates.in_progress_count == 1
    assert rates.abandonment_rate == pytest.approx(2 / 9)
    assert rates.resolution_rate == pytest.approx(4 / 9)


# ----------------------------------------------------------------------------- vendor definitions

EXPECTED_STYLES = {
    # style: (counted, resolved, escalated, abandoned, contained)
    # Chatlens: all 10 decided; see test_outcome_rates_golden.
    "Chatlens default": (10, 4, 1, 3, 8),
    # Copilot: all 10 engaged and closed (c10: 45 min >= 30 min). Resolved: c01 (survey yes, confirmed),
    # c02 (goal reached, survey unanswered: implied). Escalated c03 c04 (escalation beats c04's survey).
    # Abandoned = the other engaged sessions: c05 c06 c07 c08 (survey "no") c09 (explicit outcome ignored,
    # no end of conversation) c10 = 6. Contained = not escalated = 8.
    "Copilot Studio style": (10, 2, 2, 6, 8),
    # Fin: c10 is pending (45 min < 24 h) -> 9 counted. Resolved: c01 (confirmed), c02, c05, c07 (assumed:
    # a real answer and no further request). Not resolved: c06 (only a greeting was answered), c08 (survey
    # "no" / thumbs down), c09 (u9 came back in c10 23h50m after the answer). Escalated c03 c04.
    # Abandoned = rest: c06 c08 c09 = 3. Contained = 9 - 2 = 7.
    "Intercom Fin style": (9, 4, 2, 3, 7),
    # Rasa: c10 still in its 60-min session -> 9 counted (c09 is 25 h old). Resolved = goal marker: c02.
    # Escalated (human involved) c03 c04. Abandoned = bot has the last word: c01 c02 c05 c06 c07 c08 c09 = 7
    # (c03 and c04 end on the agent). Contained = 7.
    "Rasa style": (9, 1, 2, 7, 7),
    # Zendesk: c10 inside the 2-h session -> 9 counted. Bot-handled (meaningful intent, no escalation, no
    # fallback turn): c01 c02 c05 c08 c09; not c06 (only "hi"), not c07 (nlu_fallback turn). Resolved =
    # bot-handled without explicit failure: c01 c02 c05 c09 (c08 said no). Escalated c03 c04.
    # Abandoned = rest: c06 c07 c08 = 3. Contained = bot-handled = 5.
    "Zendesk style": (9, 4, 2, 3, 5),
}


def test_vendor_definitions_golden(ten):
    m, r = ten
    v = vendor_definitions(m, r, rules=RULES).set_index("style")
    assert list(v.index) == list(EXPECTED_STYLES)
    for style, (n, res, esc, ab, cont) in EXPECTED_STYLES.items():
        row = v.loc[style]
        assert (row["counted_count"], row["resolved_count"], row["escalated_count"], row["abandoned_count"],
                row["contained_count"]) == (n, res, esc, ab, cont), style
        assert row["resolution_rate"] == pytest.approx(res / n)
        assert row["escalation_rate"] == pytest.approx(esc / n)
        assert row["abandonment_rate"] == pytest.approx(ab / n)
        assert row["containment_rate"] == pytest.approx(cont / n)
        assert len(row["definition"]) > 100
    # Chatlens row = outcome_rates
    rates = outcome_rates(m, r, rules=RULES)
    assert v.loc["Chatlens default", "resolution_rate"] == rates.resolution_rate


def test_vendor_resolved_sets_differ(ten):
    m, r = ten
    t = vendor_outcome_table(m, r, rules=RULES)
    resolved = {s: sorted(g.loc[g["resolved"], "conversation_id"]) for s, g in t.groupby("style")}
    assert resolved["Intercom Fin style"] == ["c01", "c02", "c05", "c07"]
    assert resolved["Zendesk style"] == ["c01", "c02", "c05", "c09"]
    assert resolved["Copilot Studio style"] == ["c01", "c02"]
    assert resolved["Rasa style"] == ["c02"]


def test_fin_window_option(ten):
    m, r = ten
    # with a 1-hour Fin window c10 (45 min) is still pending but u9's return to c10 (23h50m after c09's
    # answer) is outside the window, so c09 becomes an assumed resolution: 5 of 9
    v = vendor_definitions(m, r, rules=RULES, fin_window_hours=1).set_index("style")
    assert v.loc["Intercom Fin style", "resolved_count"] == 5
    assert v.loc["Intercom Fin style", "counted_count"] == 9
    assert "1 h" in v.loc["Intercom Fin style", "definition"]
    with pytest.raises(ConfigError, match="-1"):
        vendor_definitions(m, r, fin_window_hours=-1)


def test_fin_return_counts_only_the_same_users_next_conversation():
    # Fin: a conversation loses its assumed resolution when the same user starts another one within
    # the window after the bot's last answer. a (u1) is answered at 09:01 and u1 comes back in b at
    # 15:00 (6 h later) -> a is not resolved. b is u1's last conversation -> resolved. c (u2) started
    # at 08:00 - earlier than b's answer, but it is another user's, so it does not make b "returned".
    def conv(cid, user, hour):
        return [{"conversation_id": cid, "user_id": user, "speaker": "user", "text": "where is my order?",
                 "timestamp": f"2026-08-03T{hour:02d}:00:00Z"},
                {"conversation_id": cid, "user_id": user, "speaker": "bot", "text": "It ships tomorrow.",
                 "timestamp": f"2026-08-03T{hour:02d}:01:00Z"}]

    m = messages_frame(conv("a", "u1", 9) + conv("b", "u1", 15) + conv("c", "u2", 8))
    t = vendor_outcome_table(m, conversation_rollup(m), rules=OutcomeRules(export_end="2026-08-10T00:00:00Z"))
    fin = t[t["style"] == "Intercom Fin style"].set_index("conversation_id")
    assert fin["counted"].all()
    assert fin["resolved"].to_dict() == {"a": False, "b": True, "c": True}


def test_zendesk_without_intents_skips_meaningful_intent(ten):
    m, r = ten
    v = vendor_definitions(m.drop(columns=["intent", "confidence"]), r, rules=RULES).set_index("style")
    # no intents: meaningful-intent and fallback checks drop out, so bot-handled = not escalated = 7 of 9
    # (c06 and c07 now count); resolved = those without explicit failure (c08 out) = 6
    assert v.loc["Zendesk style", "contained_count"] == 7
    assert v.loc["Zendesk style", "resolved_count"] == 6


# ----------------------------------------------------------------------------- mix over time, by tag

def test_outcome_mix_weekly(ten):
    m, r = ten
    mix = outcome_mix(m, r, rules=RULES, period="week")
    got = mix[mix["conversation_count"] > 0].set_index(["period", "outcome"])["conversation_count"].to_dict()
    # week 32 = c01..c09, week 33 = c10
    assert got == {("2026-W32", "resolved"): 4, ("2026-W32", "escalated"): 1, ("2026-W32", "abandoned"): 2,
                   ("2026-W32", "unresolved"): 2, ("2026-W33", "abandoned"): 1}
    assert len(mix) == 2 * 5
    assert mix.groupby("period")["share_rate"].sum().tolist() == pytest.approx([1.0, 1.0])


def test_outcome_mix_needs_timestamps():
    m = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "x"}])
    with pytest.raises(InsufficientDataError, match="needs timestamps"):
        outcome_mix(m, conversation_rollup(m))


def test_resolution_by_topic_golden(ten):
    m, r = ten
    t = resolution_by_tag(m, r, by="topic", rules=RULES)
    # request: c02 res, c07 unres, c09 res, c10 ab -> 2/4; complaint: c03 esc, c04 res, c08 unres -> 1/3;
    # inquiry: c01 res, c05 ab -> 1/2; (none): c06 ab -> 0/1. Sorted by size.
    assert t[["topic", "conversation_count", "resolved_count"]].values.tolist() == [
        ["request", 4, 2], ["complaint", 3, 1], ["inquiry", 2, 1], ["(none)", 1, 0]]
    row = t.iloc[1]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_interval(1, 3))
    assert t["small_group"].all()  # all below 30
    assert not resolution_by_tag(m, r, by="topic", rules=RULES, min_group=3)["small_group"].iloc[0]


def test_resolution_by_intent(ten):
    m, r = ten
    t = resolution_by_tag(m, r, by="intent", rules=RULES).set_index("intent")
    assert t.loc["nlu_fallback", "resolution_rate"] == 0.0   # c07 unresolved
    assert t.loc["book_demo", "resolution_rate"] == 1.0      # c02
    assert t["conversation_count"].sum() == 10


def test_resolution_by_tag_errors(ten):
    m, r = ten
    with pytest.raises(ConfigError, match="'colour'"):
        resolution_by_tag(m, r, by="colour")
    with pytest.raises(ConfigError, match="0"):
        resolution_by_tag(m, r, min_group=0)
    with pytest.raises(InsufficientDataError, match="topic"):
        resolution_by_tag(m.drop(columns="topic"), conversation_rollup(m.drop(columns="topic")))


def test_conversation_tags_golden(ten):
    m, r = ten
    before_m, before_r = m.copy(), r.copy()
    topics = conversation_tags(m, r, by="topic")
    # the topic of each conversation of the fixture; c06 has none. Rollup order, all ten (c10 in progress too).
    assert topics.values.tolist() == [
        ["c01", "inquiry"], ["c02", "request"], ["c03", "complaint"], ["c04", "complaint"], ["c05", "inquiry"],
        ["c06", NO_TAG], ["c07", "request"], ["c08", "complaint"], ["c09", "request"], ["c10", "request"]]
    intents = conversation_tags(m, r, by="intent").set_index("conversation_id")["tag"]
    # c06 only small talk -> its first intent; c07 misunderstood first; c02 the demo (see primary_intent)
    assert (intents["c06"], intents["c07"], intents["c02"]) == ("greet", "nlu_fallback", "book_demo")
    assert intents.index.tolist() == r["conversation_id"].tolist()
    pd.testing.assert_frame_equal(m, before_m)
    pd.testing.assert_frame_equal(r, before_r)


def test_conversation_tags_group_like_resolution_by_tag(ten):
    # the tags are the groups of resolution_by_tag: the decided count per tag is the same
    m, r = ten
    for by in ("topic", "intent"):
        tags = conversation_tags(m, r, by=by).merge(outcome_table(m, r, rules=RULES), on="conversation_id")
        decided = tags[tags["outcome"] != "in_progress"].groupby("tag")["conversation_id"].count().to_dict()
        expected = resolution_by_tag(m, r, by=by, rules=RULES).set_index(by)["conversation_count"]
        assert decided == {k: v for k, v in expected.to_dict().items() if v}


def test_conversation_tags_empty_and_errors(ten):
    m, r = ten
    empty = conversation_tags(m.iloc[:0], r.iloc[:0], by="intent")
    assert list(empty.columns) == ["conversation_id", "tag"] and len(empty) == 0
    shuffled = r.sample(frac=1, random_state=3)
    assert conversation_tags(m, shuffled)["conversation_id"].tolist() == shuffled["conversation_id"].tolist()
    with pytest.raises(ConfigError, match="'colour'"):
        conversation_tags(m, r, by="colour")
    with pytest.raises(InsufficientDataError, match="topic"):
        conversation_tags(m.drop(columns="topic"), conversation_rollup(m.drop(columns="topic")))
    with pytest.raises(InsufficientDataError, match="intent"):
        conversation_tags(m.drop(columns="intent"), r, by="intent")


# ----------------------------------------------------------------------------- CLI section

def test_summary_section_keys_and_values(ten):
    from metrics.outcomes.cli import summary_section

    m, r = ten
    s = summary_section(m, r)
    assert set(s) == {"volume", "engagement", "outcomes", "escalation"}
    assert set(s["volume"]) == {"conversations_per_week", "spike_days"}
    assert set(s["engagement"]) == {"mean_user_turns", "median_user_turns", "repeat_user_rate", "after_hours_rate"}
    assert set(s["outcomes"]) == {"resolution_rate", "escalation_rate", "abandonment_rate", "containment_rate",
                                  "definitions"}
    assert set(s["escalation"]) == {"reasons", "within_first_3_turns_rate", "median_wait_seconds"}
    # weeks: c01..c09 in 2026-W32, c10 in 2026-W33; too little history for any spike verdict
    assert s["volume"] == {"conversations_per_week": {"2026-W32": 9, "2026-W33": 1}, "spike_days": []}
    # user turns 1,2,1,1,1,1,3,1,1,1 -> mean 1.3, median 1; c10 is u9's second conversation -> 1/10;
    # after hours: c06 (Mon 20:00) and c09 (Sunday) -> 2/10
    assert s["engagement"] == pytest.approx({"mean_user_turns": 1.3, "median_user_turns": 1.0,
                                             "repeat_user_rate": 0.1, "after_hours_rate": 0.2})
    # the summary uses the default export end (c10's last message) so c10 is in progress: 9 decided
    assert s["outcomes"]["resolution_rate"] == pytest.approx(4 / 9)
    assert set(s["outcomes"]["definitions"]) == {"chatlens_default", "copilot_studio", "intercom_fin", "rasa",
                                                 "zendesk"}
    assert all(set(d) == {"resolution_rate", "escalation_rate", "abandonment_rate", "containment_rate"}
               for d in s["outcomes"]["definitions"].values())
    # c03 derived "customer requested agent"; c04 field reason; both at turn 1; c03 waited 120 s
    assert s["escalation"] == {"reasons": {"Sentiment detected as negative": 1, "customer requested agent": 1},
                               "within_first_3_turns_rate": 1.0, "median_wait_seconds": 120.0}


def test_summary_section_without_timestamps():
    from metrics.outcomes.cli import summary_section

    m = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "x"},
                        {"conversation_id": "a", "speaker": "bot", "text": "y?"}])
    s = summary_section(m, conversation_rollup(m))
    assert s["volume"] == {"conversations_per_week": {}, "spike_days": []}
    assert s["engagement"]["after_hours_rate"] is None and s["escalation"]["median_wait_seconds"] is None
    assert s["outcomes"]["abandonment_rate"] == 1.0


