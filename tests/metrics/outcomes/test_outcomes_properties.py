"""Properties of the volume / engagement / outcome / escalation / abandonment metrics on random transcripts.

* shuffling the message rows changes no result;
* every ``*_rate`` is in [0, 1] (or NaN for a zero denominator);
* outcome counts add up to their denominators;
* inputs are never modified;
* empty input gives the documented empty result.
"""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
from conftest import messages_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics import engagement, outcomes
from metrics.outcomes import abandonment
from metrics.outcomes import escalation
from metrics.engagement import volume
from metrics.outcomes.cli import summary_section
from metrics.core.rollup import conversation_rollup

USER_TEXTS = ["hi", "thanks", "where is my order?", "I want a human", "this is useless", "my card was stolen",
              "price of pro?", "ok", "blorp"]
BOT_TEXTS = ["Hello! How can I help?", "It ships tomorrow.", "Did that answer your question?", "Your e-mail?",
             "Bye!", "Connecting you."]
INTENTS = ["greet", "order_status", "nlu_fallback", "pricing", None]
RULES = outcomes.OutcomeRules(export_end="2026-08-20T00:00:00Z")

message = st.tuples(
    st.sampled_from(["user", "user", "bot", "bot", "agent", "system"]),
    st.integers(0, 8),                           # text choice
    st.integers(0, 90),                          # minutes after the conversation start (ties allowed)
    st.sampled_from([None, None, None, "handoff", "survey", "fallback"]),
    st.sampled_from(INTENTS),
    st.one_of(st.none(), st.floats(0, 1)),
)
conversation = st.fixed_dictionaries({
    "messages": st.lists(message, min_size=1, max_size=6),
    "start_minute": st.integers(0, 60 * 24 * 20),
    "user": st.sampled_from(["u1", "u2", "u3", None]),
    "goal": st.sampled_from([None, True, False]),
    "survey": st.sampled_from([None, True, False]),
    "outcome": st.sampled_from([None, None, "resolved", "escalated", "abandoned", "unknown-value"]),
    "topic": st.sampled_from(["inquiry", "complaint", None]),
    "rating": st.sampled_from([None, 1.0, 5.0]),
    "thumbs": st.sampled_from([None, "up", "down"]),
    "reason": st.sampled_from([None, None, "Customer requested agent"]),
})


def build(convs, *, timed=True) -> pd.DataFrame:
    rows = []
    base = pd.Timestamp("2026-08-01T00:00:00Z")
    for i, c in enumerate(convs):
        start = base + pd.Timedelta(minutes=c["start_minute"])
        for speaker, t, minute, event, intent, conf in c["messages"]:
            text = USER_TEXTS[t] if speaker == "user" else BOT_TEXTS[t % len(BOT_TEXTS)]
            row = {"conversation_id": f"c{i:03d}", "speaker": speaker, "text": text, "event": event,
                   "intent": intent if speaker == "user" else None,
                   "confidence": conf if speaker == "user" else None,
                   "user_id": c["user"], "goal_achieved": c["goal"], "survey_solved": c["survey"],
                   "outcome": c["outcome"], "topic": c["topic"], "rating": c["rating"], "thumbs": c["thumbs"],
                   "escalation_reason": c["reason"], "channel": "web" if i % 2 else "app"}
            if timed:
                row["timestamp"] = (start + pd.Timedelta(minutes=minute)).isoformat()
            rows.append(row)
    return messages_frame(rows)


def everything(m: pd.DataFrame) -> dict:
    """Every metric of this family on one frame (time views only when there are timestamps)."""
    r = conversation_rollup(m)
    out = {
        "outcomes": outcomes.classify_outcomes(m, r, rules=RULES),
        "rates": outcomes.outcome_rates(m, r, rules=RULES),
        "vendor": outcomes.vendor_definitions(m, r, rules=RULES),
        "by_topic": outcomes.resolution_by_tag(m, r, by="topic", rules=RULES),
        "by_intent": outcomes.resolution_by_tag(m, r, by="intent", rules=RULES),
        "escalation": escalation.escalation_summary(m, r),
        "esc_table": escalation.escalation_table(m, r),
        "esc_turns": escalation.escalation_turns(m, r),
        "success": escalation.handoff_success(m, r),
        "last_bot": abandonment.last_bot_messages(m, r, rules=RULES),
        "ab_turns": abandonment.abandonment_turns(m, r, rules=RULES),
        "engagement": engagement.engagement_summary(r),
        "turns": engagement.user_turns_distribution(r),
        "summary": summary_section(m, r),
    }
    if m["timestamp"].notna().any():
        out.update({
            "per_day": volume.conversations_per_period(r, period="day"),
            "heatmap": volume.hour_weekday_heatmap(r),
            "spikes": volume.volume_spikes(r, min_history=2),
            "mix": outcomes.outcome_mix(m, r, rules=RULES),
            "wait": escalation.handoff_wait_times(m, r),
            "by_hour": escalation.escalation_by(m, r, by="hour"),
        })
    return out


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x.reset_index(drop=True), y.reset_index(drop=True), obj=key)
        elif isinstance(x, pd.Series):
            pd.testing.assert_series_equal(x, y, obj=key)
        else:
            assert repr(x) == repr(y), key


def rates_of(results: dict):
    """Yield (name, value) for every *_rate number found in the results."""
    for key, value in results.items():
        if isinstance(value, pd.DataFrame):
            for col in value.columns:
                if col.endswith("_rate"):
                    for v in value[col]:
                        yield f"{key}.{col}", v
        elif hasattr(value, "__dataclass_fields__"):
            for name in value.__dataclass_fields__:
                if name.endswith("_rate"):
                    yield f"{key}.{name}", getattr(value, name)


@settings(max_examples=40)
@given(st.lists(conversation, min_size=1, max_size=8), st.booleans(), st.data())
def test_shuffle_rates_and_no_mutation(convs, timed, data):
    m = build(convs, timed=timed)
    before = m.copy()
    first = everything(m)
    pd.testing.assert_frame_equal(m, before)                        # no mutation
    order = data.draw(st.permutations(range(len(m))))
    shuffled = m.iloc[list(order)].reset_index(drop=True)           # same rows (and source row numbers)
    assert_same(first, everything(shuffled))                        # shuffle invariance
    for name, value in rates_of(first):                            # rates in [0, 1] or NaN
        assert (isinstance(value, float) and math.isnan(value)) or 0.0 <= value <= 1.0, (name, value)
    # counts add up to the denominators
    rates = first["rates"]
    assert (rates.resolved_count + rates.escalated_count + rates.abandoned_count + rates.unresolved_count
            == rates.decided_count == rates.conversation_count - rates.in_progress_count)
    v = first["vendor"].set_index("style")
    for style in ("Copilot Studio style", "Intercom Fin style", "Zendesk style"):
        row = v.loc[style]
        assert row["resolved_count"] + row["escalated_count"] + row["abandoned_count"] == row["counted_count"]
    assert set(first["outcomes"]) <= set(outcomes.OUTCOMES)


@settings(max_examples=20)
@given(st.lists(conversation, min_size=1, max_size=6))
def test_rollup_not_mutated(convs):
    m = build(convs)
    r = conversation_rollup(m)
    r_before = r.copy()
    everything(m)  # computes its own rollup; run the rollup-taking functions on ours too
    volume.conversations_per_period(r)
    engagement.engagement_by_segment(r, by="repeat_user")
    outcomes.vendor_definitions(m, r)
    escalation.escalation_by(m, r, by="topic")
    pd.testing.assert_frame_equal(r, r_before)


def test_empty_input_everywhere():
    m = messages_frame([{"conversation_id": "a", "timestamp": "2026-08-03", "speaker": "user", "text": "x",
                         "topic": "x", "intent": "x"}]).iloc[0:0]
    results = everything(m)
    assert results["outcomes"].empty and results["esc_table"].empty and results["last_bot"].empty
    assert results["rates"].decided_count == 0 and math.isnan(results["rates"].resolution_rate)
    assert results["vendor"]["counted_count"].eq(0).all()
    assert results["by_topic"].empty and results["turns"].empty
    assert results["summary"]["volume"] == {"conversations_per_week": {}, "spike_days": []}
    assert results["summary"]["outcomes"]["resolution_rate"] is None


@pytest.mark.parametrize("timed", [True, False])
def test_section_is_json_ready(timed):
    import json

    convs = [{"messages": [("user", 2, 0, None, "order_status", 0.9), ("bot", 1, 1, None, None, None)],
              "start_minute": 0, "user": "u1", "goal": None, "survey": None, "outcome": None, "topic": None,
              "rating": None, "thumbs": None, "reason": None}]
    s = summary_section(build(convs, timed=timed), conversation_rollup(build(convs, timed=timed)))
    assert json.loads(json.dumps(s, allow_nan=False)) == s


# ---------------------------------------------------------------------------------------------
# The vectorised implementation against a plain-Python reference, conversation by conversation.
# The reference follows the written definitions (classify_outcomes, primary_intent and the
# VENDOR_STYLES texts) one message at a time. The frames mix tricky texts (non-ASCII letters
# whose lower case is ASCII, newlines, missing text), missing timestamps (they sort last),
# event spellings that only match once normalised, and shuffled rows with a shuffled index.
# ---------------------------------------------------------------------------------------------

WORDS = ["hi", "Hi", "thanks", "OK", "k", "bye", "good morning", "human", "HUMAN", "agent", "Lawyer", "stolen",
         "useless", "HATE", "order", "it's", "where", "\u0130t", "h\u0130ya", "\u212a", "\u017ftop", "caf\u00e9", "?",
         "!",
         "\n", "-", "talk to someone"]
TEXT = st.one_of(st.none(), st.lists(st.sampled_from(WORDS), max_size=4).map(" ".join),
                 st.text(alphabet="hiK\u212a\u0130\u017f?\u00e9'ok \n", max_size=6))
VARIED_MESSAGE = st.fixed_dictionaries({
    "speaker": st.sampled_from(["user", "user", "bot", "bot", "agent", "system"]),
    "text": TEXT,
    "minute": st.one_of(st.none(), st.integers(0, 120)),    # None: no timestamp
    "event": st.sampled_from([None, None, "handoff", " Handoff", "survey", "End of conversation", "fallback",
                              "misunderstood"]),
    "intent": st.sampled_from([None, "greet", "order_status", "NLU Fallback", "out-of-scope", "pricing"]),
    "confidence": st.one_of(st.none(), st.floats(0, 1)),
    "sentiment": st.one_of(st.none(), st.none(), st.none(), st.floats(-1, 1)),
})
VARIED_CONVERSATION = st.fixed_dictionaries({
    "messages": st.lists(VARIED_MESSAGE, min_size=1, max_size=6),
    "start_minute": st.integers(0, 60 * 24 * 3),
    "user": st.sampled_from(["u1", "u2", None]),
    "goal": st.sampled_from([None, True, False]),
    "survey": st.sampled_from([None, True, False]),
    "outcome": st.sampled_from([None, None, "Resolved", "handed off", "abandoned", "in progress", "maybe"]),
    "thumbs": st.sampled_from([None, "up", " Down", "down"]),
    "topic": st.sampled_from(["inquiry", "complaint", None]),
    "reason": st.sampled_from([None, None, "  ", "Customer requested agent"]),
})
VARIED_RULES = [outcomes.OutcomeRules(export_end="2026-08-03T12:00:00Z"),
                outcomes.OutcomeRules(export_end="2026-08-09T00:00:00Z"),      # everything closed
                outcomes.OutcomeRules(timeout_minutes=600, abandonment_mode="no_goal",
                                      question_pattern=r"(?:where|which)\b")]


@st.composite
def varied_frames(draw):
    """A validated-format frame of random conversations, rows shuffled (index shuffled with them)."""
    convs = draw(st.lists(VARIED_CONVERSATION, min_size=1, max_size=6))
    base = pd.Timestamp("2026-08-01T00:00:00Z")
    rows = []
    for i, c in enumerate(convs):
        start = base + pd.Timedelta(minutes=c["start_minute"])
        for msg in c["messages"]:
            rows.append({"conversation_id": f"c{i}", "speaker": msg["speaker"], "text": msg["text"],
                         "timestamp": None if msg["minute"] is None
                         else (start + pd.Timedelta(minutes=msg["minute"])).isoformat(),
                         "event": msg["event"], "intent": msg["intent"], "confidence": msg["confidence"],
                         "sentiment": msg["sentiment"], "user_id": c["user"], "goal_achieved": c["goal"],
                         "survey_solved": c["survey"], "outcome": c["outcome"], "thumbs": c["thumbs"],
                         "topic": c["topic"], "escalation_reason": c["reason"]})
    m = messages_frame(rows)
    m["sentiment"] = pd.to_numeric(m["sentiment"]).astype("float64")
    order = draw(st.permutations(range(len(m))))
    return m.iloc[list(order)]


def _na(value) -> bool:
    return value is None or bool(pd.isna(value))


def _true(value) -> bool:
    return not _na(value) and bool(value)


def _false(value) -> bool:
    return not _na(value) and not bool(value)


def _norm_event(value) -> str | None:
    return None if _na(value) else re.sub(r"[\s\-]+", "_", str(value).strip().lower())


def conversations_in_order(m: pd.DataFrame) -> dict:
    """conversation_id -> its messages (dicts) in (time, source row) order, missing times last."""
    convs: dict = {}
    for msg in m.to_dict("records"):
        convs.setdefault(msg["conversation_id"], []).append(msg)
    for msgs in convs.values():
        msgs.sort(key=lambda x: (_na(x["timestamp"]), 0 if _na(x["timestamp"]) else x["timestamp"].value, x["row"]))
    return convs


def reference_primary_intent(msgs: list) -> str | None:
    with_intent = [x for x in msgs if x["speaker"] == "user" and not _na(x["intent"])]
    substantive = [x for x in with_intent if not outcomes.is_small_talk(x["text"])]
    return (substantive or with_intent)[0]["intent"] if with_intent else None


def reference_outcome(msgs: list, conv: dict, rules, end) -> tuple:
    """(outcome, rule, last bot text, escalated) by the written precedence of classify_outcomes."""
    explicit = outcomes.canonical_outcome(conv.get("outcome"))
    escalated = bool(conv["has_agent"]) or bool(conv["handoff_event"]) or explicit == "escalated"
    bots = [x for x in msgs if x["speaker"] == "bot"]
    last_bot = bots[-1]["text"] if bots else None
    nonsys = [x for x in msgs if x["speaker"] != "system"]
    silence = (end - conv["ended_at"]).total_seconds() if not _na(end) and not _na(conv["ended_at"]) else math.nan
    last = nonsys[-1] if nonsys else None
    asks = (last is not None and last["speaker"] == "bot" and isinstance(last["text"], str)
            and re.search(rules.question_pattern, last["text"], re.IGNORECASE) is not None)
    for condition, outcome, rule in (
            (explicit is not None, explicit, "explicit_outcome"),
            (_true(conv.get("goal_achieved")), "resolved", "goal_achieved"),
            (_true(conv.get("survey_solved")), "resolved", "survey_solved"),
            (escalated, "escalated", "escalation"),
            (_false(conv.get("survey_solved")), "unresolved", "survey_not_solved"),
            (silence < rules.timeout_minutes * 60, "in_progress", "in_progress_timeout"),
            (rules.abandonment_mode == "no_goal", "abandoned", "no_goal"),
            (asks, "abandoned", "silence_after_bot_question")):
        if condition:
            return outcome, rule, last_bot, escalated
    return "unresolved", "default_unresolved", last_bot, escalated


def reference_vendor(m: pd.DataFrame, r: pd.DataFrame, rules, fin_hours=24.0, rasa_minutes=60.0,
                     zendesk_hours=2.0) -> dict:
    """(style, conversation_id) -> (counted, resolved, escalated, abandoned, contained), from VENDOR_STYLES."""
    convs = conversations_in_order(m)
    end = rules.export_end if rules.export_end is not None else m["timestamp"].max()
    rollup = {c["conversation_id"]: c for c in r.to_dict("records")}

    def fallback(intent) -> bool:
        norm = _norm_event(intent)
        return norm is not None and (norm in rules.fallback_intents or "fallback" in norm)

    facts = {}
    for cid, conv in rollup.items():
        msgs = convs.get(cid, [])
        outcome, _, _, esc = reference_outcome(msgs, conv, rules, end)
        substantive = [i for i, x in enumerate(msgs)
                       if x["speaker"] == "user" and not outcomes.is_small_talk(x["text"])]
        answers = [i for i, x in enumerate(msgs) if x["speaker"] == "bot" and substantive and i > substantive[0]]
        times = [msgs[i]["timestamp"] for i in answers if not _na(msgs[i]["timestamp"])]
        facts[cid] = dict(
            outcome=outcome, esc=esc, conv=conv,
            silence=(end - conv["ended_at"]).total_seconds() if not _na(end) and not _na(conv["ended_at"]) else None,
            end_event=any(_norm_event(x["event"]) in {"end_of_conversation", "endofconversation", "end_conversation",
                                                      "survey"} for x in msgs),
            answered=bool(answers), answer_at=max(times) if times else None,
            asked_again=bool(answers) and any(i > answers[-1] for i in substantive),
            meaningful=any(i in substantive and not _na(msgs[i]["intent"]) and not fallback(msgs[i]["intent"])
                           for i in range(len(msgs))),
            misunderstood=any((x["speaker"] == "user" and fallback(x["intent"]))
                              or _norm_event(x["event"]) in {"fallback", "misunderstood", "nlu_fallback"}
                              for x in msgs),
            bot_last=[x for x in msgs if x["speaker"] != "system"][-1:] and
            [x for x in msgs if x["speaker"] != "system"][-1]["speaker"] == "bot",
            thumbs=None if _na(conv.get("thumbs")) else str(conv["thumbs"]).strip().lower())
    # the same user's next conversation (by start, then id) for Fin's "came back within the window"
    timed = sorted((c["user_id"], c["started_at"], cid) for cid, c in rollup.items()
                   if not _na(c.get("user_id")) and not _na(c["started_at"]))
    returned = {cid: False for cid in rollup}
    for (user, _, cid), (next_user, next_start, _) in zip(timed, timed[1:]):
        at = facts[cid]["answer_at"]
        if user == next_user and at is not None and next_start - at <= pd.Timedelta(hours=fin_hours):
            returned[cid] = True

    out = {}
    for cid, f in facts.items():
        conv, esc = f["conv"], f["esc"]

        def closed(seconds, f=f):
            return not (f["silence"] is not None and f["silence"] < seconds)

        goal, survey = conv.get("goal_achieved"), conv.get("survey_solved")
        counted = f["outcome"] != "in_progress"
        out["Chatlens default", cid] = (counted, f["outcome"] == "resolved", f["outcome"] == "escalated",
                                        f["outcome"] == "abandoned", counted and not esc)
        counted = (conv["user_turns"] >= 1 or esc) and closed(rules.timeout_minutes * 60)
        reached = _true(goal) or not _na(survey) or f["end_event"]
        resolved = counted and not esc and (_true(survey) or (reached and _na(survey)))
        out["Copilot Studio style", cid] = (counted, resolved, counted and esc,
                                            counted and not resolved and not esc, counted and not esc)
        counted = conv["user_turns"] >= 1 and conv["bot_turns"] >= 1 and closed(fin_hours * 3600)
        negative = _false(survey) or f["thumbs"] == "down"
        assumed = not f["asked_again"] and not returned[cid] and not negative
        resolved = (counted and not esc and f["answered"]
                    and (_true(survey) or f["thumbs"] == "up" or assumed))
        out["Intercom Fin style", cid] = (counted, resolved, counted and esc,
                                          counted and not resolved and not esc, counted and not esc)
        counted = closed(rasa_minutes * 60)
        out["Rasa style", cid] = (counted, counted and _true(goal), counted and esc, counted and bool(f["bot_last"]),
                                  counted and not esc)
        counted = conv["bot_turns"] >= 1 and closed(zendesk_hours * 3600)
        handled = counted and f["meaningful"] and not esc and not f["misunderstood"]
        resolved = handled and not (_false(survey) or _false(goal) or f["thumbs"] == "down")
        out["Zendesk style", cid] = (counted, resolved, counted and esc, counted and not resolved and not esc,
                                     handled)
    return out


@settings(max_examples=100)
@given(varied_frames(), st.sampled_from(VARIED_RULES))
def test_outcomes_match_plain_python_reference(m, rules):
    r = conversation_rollup(m)
    convs = conversations_in_order(m)
    end = rules.export_end if rules.export_end is not None else m["timestamp"].max()
    table = outcomes.outcome_table(m, r, rules=rules)
    assert table["conversation_id"].tolist() == r["conversation_id"].tolist()       # rollup order
    for row, conv in zip(table.to_dict("records"), r.to_dict("records")):
        outcome, rule, last_bot, escalated = reference_outcome(convs[conv["conversation_id"]], conv, rules, end)
        assert (row["outcome"], row["rule"], row["escalated"]) == (outcome, rule, escalated), row
        assert (_na(row["last_bot_text"]) and _na(last_bot)) or row["last_bot_text"] == last_bot, row
    expected = {cid: reference_primary_intent(msgs) for cid, msgs in convs.items()}
    assert outcomes.primary_intent(m).to_dict() == {cid: i for cid, i in expected.items() if i is not None}
    vendor = outcomes.vendor_outcome_table(m, r, rules=rules)
    got = {(row["style"], row["conversation_id"]): (row["counted"], row["resolved"], row["escalated"],
                                                    row["abandoned"], row["contained"])
           for row in vendor.to_dict("records")}
    assert got == reference_vendor(m, r, rules)


@settings(max_examples=100)
@given(st.text(alphabet="hiyaokK\u212a\u0130\u017f\u00e9' ?!\n-", max_size=8), st.booleans())
def test_small_talk_is_skipped_exactly_as_is_small_talk_says(text, timed):
    # A first message "<text>" (intent greet) then "refund please" (intent refund): the primary
    # intent is refund exactly when is_small_talk(text), whatever the case, accents or spacing.
    stamp = {"timestamp": "2026-08-03T10:00:00Z"} if timed else {}
    m = messages_frame([{"conversation_id": "a", "speaker": "user", "text": text, "intent": "greet", **stamp},
                        {"conversation_id": "a", "speaker": "user", "text": "refund please", "intent": "refund",
                         **stamp}])
    expected = "refund" if outcomes.is_small_talk(text) else "greet"
    assert outcomes.primary_intent(m).to_dict() == {"a": expected}
