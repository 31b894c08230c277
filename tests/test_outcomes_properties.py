"""Properties of the volume / engagement / outcome / escalation / abandonment metrics on random transcripts.

* shuffling the message rows changes no result;
* every ``*_rate`` is in [0, 1] (or NaN for a zero denominator);
* outcome counts add up to their denominators;
* inputs are never modified;
* empty input gives the documented empty result.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import messages_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics import abandonment, engagement, escalation, outcomes, volume
from metrics.cli_outcomes import summary_section
from metrics.rollup import conversation_rollup

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
