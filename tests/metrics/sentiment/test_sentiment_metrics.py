"""Sentiment and rating metrics: hand-computed values, edge cases and properties."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import messages_frame
from metrics.sentiment import measures as sm
from metrics.sentiment.cli import RATING_KEYS, SENTIMENT_KEYS, summary_section
from metrics.errors import ConfigError, InsufficientDataError
from metrics.core.rollup import conversation_rollup
from metrics.sentiment import Cutoffs


def scored_frame(rows: list[dict]) -> pd.DataFrame:
    """messages_frame plus the ``compound`` given in each row (no VADER involved)."""
    compounds = [r.pop("compound", float("nan")) for r in rows]
    for i, r in enumerate(rows):
        r["_order"] = i
    frame = messages_frame(rows)
    frame["compound"] = pd.Series(compounds, dtype="float64").to_numpy()[frame["_order"].to_numpy()]
    return frame.drop(columns="_order")


def T(day: int, minute: int = 0) -> str:
    return f"2026-08-{day:02d}T10:{minute:02d}:00Z"


# --------------------------------------------------------------------------- distribution

def test_distribution_by_hand():
    f = scored_frame([
        {"conversation_id": "a", "speaker": "user", "text": "x", "compound": 0.5},
        {"conversation_id": "a", "speaker": "user", "text": "x", "compound": 0.05},
        {"conversation_id": "a", "speaker": "bot", "text": "x", "compound": 0.9},
        {"conversation_id": "b", "speaker": "user", "text": "x", "compound": 0.0},
        {"conversation_id": "b", "speaker": "user", "text": "x", "compound": -0.05},
        {"conversation_id": "b", "speaker": "user", "text": "x", "compound": -0.7},
        {"conversation_id": "b", "speaker": "user", "text": None, "compound": float("nan")},
    ])
    d = sm.sentiment_distribution(f)
    # 5 scored user messages: positive 0.5, 0.05 (cut-off inclusive); neutral 0.0; negative -0.05, -0.7
    assert (d.message_count, d.positive_count, d.neutral_count, d.negative_count) == (5, 2, 1, 2)
    assert (d.positive_rate, d.neutral_rate, d.negative_rate) == (0.4, 0.2, 0.4)
    # mean = (0.5 + 0.05 + 0 - 0.05 - 0.7) / 5 = -0.04
    assert d.mean_compound == pytest.approx(-0.04)
    assert d.to_frame()["message_count"].tolist() == [2, 1, 2]
    bot = sm.sentiment_distribution(f, speaker="bot")
    assert (bot.message_count, bot.positive_rate) == (1, 1.0)
    wide = sm.sentiment_distribution(f, cutoffs=Cutoffs(positive=0.4, negative=-0.4))
    assert (wide.positive_count, wide.neutral_count, wide.negative_count) == (1, 3, 1)


def test_distribution_needs_scores():
    with pytest.raises(InsufficientDataError, match="sentiment scores"):
        sm.sentiment_distribution(messages_frame([{"conversation_id": "a", "speaker": "user", "text": "x"}]))


# --------------------------------------------------------------------------- trend

def test_weekly_trend_by_hand_with_iso_weeks_and_rolling_mean():
    f = scored_frame([
        {"conversation_id": "a", "speaker": "user", "text": "x", "compound": 0.6, "timestamp": "2026-08-03T09:00Z"},
        {"conversation_id": "a", "speaker": "user", "text": "x", "compound": -0.2, "timestamp": "2026-08-09T23:59Z"},
        {"conversation_id": "b", "speaker": "user", "text": "x", "compound": -0.6, "timestamp": "2026-08-10T00:00Z"},
        {"conversation_id": "c", "speaker": "user", "text": "x", "compound": 0.3, "timestamp": "2026-08-24T12:00Z"},
        {"conversation_id": "c", "speaker": "bot", "text": "x", "compound": 0.9, "timestamp": "2026-08-24T12:01Z"},
    ])
    t = sm.sentiment_trend(f, freq="week", window=2)
    # Mon 3 Aug and Sun 9 Aug are ISO week 32; Mon 10 Aug starts W33; W34 is empty; 24 Aug is W35
    assert t["label"].tolist() == ["2026-W32", "2026-W33", "2026-W34", "2026-W35"]
    assert t["message_count"].tolist() == [2, 1, 0, 1]
    assert t["mean_compound"].round(4).tolist()[:2] == [0.2, -0.6] and math.isnan(t["mean_compound"][2])
    # rolling (2 weeks, message-weighted): W33 = (0.6 - 0.2 - 0.6) / 3; W34 = -0.6 / 1; W35 = 0.3 / 1
    assert t["rolling_mean_compound"].round(4).tolist() == [0.2, round(-0.2 / 3, 4), -0.6, 0.3]
    assert t["negative_rate"].tolist()[:2] == [0.5, 1.0]
    assert str(t["period"].dtype) == "datetime64[ns, UTC]"
    assert t["period"][1] == pd.Timestamp("2026-08-10", tz="UTC")


def test_iso_week_label_across_new_year():
    f = scored_frame([{"conversation_id": "a", "speaker": "user", "text": "x", "compound": 0.1,
                       "timestamp": "2027-01-02T10:00Z"}])
    # 1 Jan 2026 is a Thursday, so 2026 has 53 ISO weeks and 2 Jan 2027 (Saturday) is in 2026-W53
    assert sm.sentiment_trend(f, freq="week")["label"].tolist() == ["2026-W53"]


def test_trend_errors_and_empty():
    untimed = scored_frame([{"conversation_id": "a", "speaker": "user", "text": "x", "compound": 0.1}])
    with pytest.raises(InsufficientDataError, match="timestamps"):
        sm.sentiment_trend(untimed)
    with pytest.raises(ConfigError, match="month"):
        sm.sentiment_trend(untimed, freq="month")
    with pytest.raises(ConfigError, match="0"):
        sm.sentiment_trend(untimed, window=0)
    assert len(sm.sentiment_trend(untimed, speaker="bot")) == 0


# --------------------------------------------------------------------------- breakdown

def test_breakdown_fills_conversation_fields_and_sorts_worst_first():
    f = scored_frame([
        {"conversation_id": "a", "speaker": "user", "text": "x", "compound": 0.6, "topic": "billing",
         "intent": "pay"},
        {"conversation_id": "a", "speaker": "user", "text": "x", "compound": -0.2, "topic": None, "intent": "refund"},
        {"conversation_id": "b", "speaker": "user", "text": "x", "compound": -0.8, "topic": "refund",
         "intent": "refund"},
        {"conversation_id": "b", "speaker": "bot", "text": "x", "compound": 0.9, "topic": "refund"},
    ])
    topic = sm.sentiment_breakdown(f, by="topic")
    # conversation a's second message takes a's topic: billing = (0.6 - 0.2) / 2 = 0.2, refund = -0.8
    assert topic["topic"].tolist() == ["refund", "billing"]
    assert topic["message_count"].tolist() == [1, 2]
    assert topic["mean_compound"].round(4).tolist() == [-0.8, 0.2]
    assert topic["negative_rate"].tolist() == [1.0, 0.5]
    intent = sm.sentiment_breakdown(f, by="intent")
    # intent is the message's own: refund = (-0.2 - 0.8) / 2 over 2 conversations
    assert intent.set_index("intent").loc["refund", ["message_count", "conversation_count"]].tolist() == [2, 2]
    assert intent["mean_compound"].round(4).tolist() == [-0.5, 0.6]
    assert sm.sentiment_breakdown(f, by="topic", min_count=2)["topic"].tolist() == ["billing"]
    with pytest.raises(InsufficientDataError, match="segment"):
        sm.sentiment_breakdown(f, by="segment")


# --------------------------------------------------------------------------- shift

SHIFT_ROWS = [
    # x: 0.5 -> 0.2 -> -0.4: shift -0.9, worsened
    {"conversation_id": "x", "speaker": "user", "text": "t", "compound": 0.5, "timestamp": T(3, 0)},
    {"conversation_id": "x", "speaker": "bot", "text": "t", "compound": -0.9, "timestamp": T(3, 1)},
    {"conversation_id": "x", "speaker": "user", "text": "t", "compound": 0.2, "timestamp": T(3, 2)},
    {"conversation_id": "x", "speaker": "user", "text": "t", "compound": -0.4, "timestamp": T(3, 3)},
    # y: -0.2 -> 0.3: improved
    {"conversation_id": "y", "speaker": "user", "text": "t", "compound": -0.2, "timestamp": T(4, 0)},
    {"conversation_id": "y", "speaker": "user", "text": "t", "compound": 0.3, "timestamp": T(4, 5)},
    # z: 0.1 -> 0.12: +0.02, unchanged with min_drop 0.05
    {"conversation_id": "z", "speaker": "user", "text": "t", "compound": 0.1, "timestamp": T(5, 0)},
    {"conversation_id": "z", "speaker": "user", "text": "t", "compound": 0.12, "timestamp": T(5, 1)},
    # w: a single user message, not eligible
    {"conversation_id": "w", "speaker": "user", "text": "t", "compound": -0.9, "timestamp": T(6, 0)},
]


def test_shift_by_hand():
    s = sm.sentiment_shift(scored_frame([dict(r) for r in SHIFT_ROWS]))
    assert (s.eligible_count, s.worsened_count, s.improved_count, s.unchanged_count) == (3, 1, 1, 1)
    assert s.worsened_conversation_rate == pytest.approx(1 / 3)
    assert s.table.set_index("conversation_id")["shift"].round(4).to_dict() == {"x": -0.9, "y": 0.5, "z": 0.02}
    # mean shift = (-0.9 + 0.5 + 0.02) / 3
    assert s.mean_shift == pytest.approx(-0.38 / 3)
    assert s.counts_frame()["conversation_count"].tolist() == [1, 1, 1]
    assert sm.worsened_conversation_rate(scored_frame([dict(r) for r in SHIFT_ROWS])) == pytest.approx(1 / 3)


def test_shift_threshold_is_strict():
    f = scored_frame([
        {"conversation_id": "a", "speaker": "user", "text": "t", "compound": 0.5, "timestamp": T(3, 0)},
        {"conversation_id": "a", "speaker": "user", "text": "t", "compound": 0.25, "timestamp": T(3, 1)},
    ])
    assert sm.sentiment_shift(f, min_drop=0.25).worsened_count == 0      # -0.25 is not below -0.25
    assert sm.sentiment_shift(f, min_drop=0.125).worsened_count == 1
    with pytest.raises(ConfigError, match="-1"):
        sm.sentiment_shift(f, min_drop=-1)


def test_shift_uses_time_order_not_row_order():
    rows = [dict(r) for r in SHIFT_ROWS]
    rows[0]["timestamp"], rows[3]["timestamp"] = rows[3]["timestamp"], rows[0]["timestamp"]
    s = sm.sentiment_shift(scored_frame(rows))
    assert s.table.set_index("conversation_id").loc["x", "shift"] == pytest.approx(0.9)   # -0.4 first, 0.5 last


# --------------------------------------------------------------------------- reactions

def test_negative_reactions_by_hand():
    rows = []
    for i, (reply, score) in enumerate([("ugh", -0.4), ("no!", -0.3), ("thanks", 0.4)]):
        cid = f"c{i}"
        rows += [{"conversation_id": cid, "speaker": "bot", "text": "Could you rephrase?", "compound": 0.0,
                  "timestamp": T(3, 0)},
                 {"conversation_id": cid, "speaker": "system", "text": "typing", "compound": 0.0,
                  "timestamp": T(3, 1)},
                 {"conversation_id": cid, "speaker": "user", "text": reply, "compound": score, "timestamp": T(3, 2)},
                 {"conversation_id": cid, "speaker": "bot", "text": "Bye", "compound": 0.0, "timestamp": T(3, 3)},
                 {"conversation_id": cid, "speaker": "bot", "text": "Anything else?", "compound": 0.0,
                  "timestamp": T(3, 4)}]
    f = scored_frame(rows)
    pairs = sm.bot_reaction_pairs(f)
    # "Bye" is followed by another bot message and "Anything else?" by nothing: only the first bot pairs
    assert pairs["bot_text"].unique().tolist() == ["Could you rephrase?"]
    assert pairs["reply_text"].tolist() == ["ugh", "no!", "thanks"]
    top = sm.negative_reactions(f, min_count=3)
    assert top[["bot_text", "reply_count", "negative_count", "conversation_count"]].values.tolist() == [
        ["Could you rephrase?", 3, 2, 3]]
    assert top["negative_rate"].iloc[0] == pytest.approx(2 / 3)
    assert top["mean_reply_compound"].iloc[0] == pytest.approx((-0.4 - 0.3 + 0.4) / 3)
    assert len(sm.negative_reactions(f, min_count=4)) == 0
    convs = sm.reaction_conversations(f, "Could you rephrase?")
    assert convs["conversation_id"].tolist() == ["c0", "c1"]        # -0.4 before -0.3


# --------------------------------------------------------------------------- drill-down and audit picks

def test_conversations_matching_and_most_negative():
    f = scored_frame([
        {"conversation_id": "a", "speaker": "user", "text": "bad", "compound": -0.5, "timestamp": T(3),
         "channel": "web"},
        {"conversation_id": "a", "speaker": "user", "text": "worse", "compound": -0.7, "timestamp": T(4),
         "channel": "web"},
        {"conversation_id": "b", "speaker": "user", "text": "meh", "compound": -0.1, "timestamp": T(3),
         "channel": "app"},
        {"conversation_id": "c", "speaker": "user", "text": "great", "compound": 0.8, "timestamp": T(3),
         "channel": "app"},
    ])
    neg = sm.conversations_matching(f, sentiment="negative")
    assert neg["conversation_id"].tolist() == ["a", "b"]
    assert neg["example_text"].tolist() == ["worse", "meh"]
    assert neg["mean_compound"].round(4).tolist() == [-0.6, -0.1]
    day = sm.conversations_matching(f, period="2026-08-04", freq="day")
    assert day["conversation_id"].tolist() == ["a"] and day["message_count"].tolist() == [1]
    assert sm.conversations_matching(f, by="channel", value="app")["conversation_id"].tolist() == ["b", "c"]
    worst = sm.most_negative_conversations(f, limit=1)
    assert worst["conversation_id"].tolist() == ["a"] and worst["worst_text"].tolist() == ["worse"]
    assert sm.most_negative_conversations(f)["conversation_id"].tolist() == ["a", "b"]
    with pytest.raises(ConfigError, match="angry"):
        sm.conversations_matching(f, sentiment="angry")


# --------------------------------------------------------------------------- ratings

def rating_rollup() -> pd.DataFrame:
    return pd.DataFrame({
        "conversation_id": list("abcdefghi"),
        "rating": [1, 2, 3, 4, 5, 5, None, None, None],
        "thumbs": ["up", None, None, None, " UP ", None, "down", None, None],
        "survey_solved": pd.array([None, None, True, None, None, None, None, False, None], dtype="boolean"),
        "has_agent": [True, True, False, False, False, False, False, False, False],
        "handoff_event": [False] * 9,
        "topic": ["x", "x", "y", "y", "y", "z", "z", None, None],
    })


def test_rating_summary_by_hand():
    s = sm.rating_summary(rating_rollup())
    # ratings 1, 2, 3, 4, 5, 5: mean 20 / 6
    assert (s.conversation_count, s.rating_count) == (9, 6)
    assert s.mean_rating == pytest.approx(20 / 6)
    assert s.distribution == {1: 1, 2: 1, 3: 1, 4: 1, 5: 2}
    # thumbs: up (a), up (e, normalised), down (g) -> 2 / 3
    assert (s.thumbs_count, s.thumbs_up_count) == (3, 2)
    assert s.thumbs_up_rate == pytest.approx(2 / 3)
    # any feedback: a-f rated, g thumbs, h survey answer; i nothing -> 8 / 9
    assert s.feedback_count == 8 and s.survey_response_rate == pytest.approx(8 / 9)
    # survey answers: c solved, h not -> 1 / 2
    assert (s.survey_answer_count, s.survey_solved_rate) == (2, 0.5)
    assert s.distribution_frame()["share"].tolist() == pytest.approx([1 / 6, 1 / 6, 1 / 6, 1 / 6, 2 / 6])


def test_rating_summary_empty_and_without_columns():
    s = sm.rating_summary(pd.DataFrame({"conversation_id": pd.Series([], dtype="str")}))
    assert (s.conversation_count, s.rating_count) == (0, 0)
    assert math.isnan(s.mean_rating) and math.isnan(s.thumbs_up_rate) and math.isnan(s.survey_response_rate)
    assert s.distribution == {1: 0, 2: 0, 3: 0, 4: 0, 5: 0}
    s = sm.rating_summary(pd.DataFrame({"conversation_id": ["a", "b"]}))
    assert s.survey_response_rate == 0.0 and math.isnan(s.mean_rating)


def test_half_star_ratings_round_half_up():
    s = sm.rating_summary(pd.DataFrame({"conversation_id": ["a", "b", "c"], "rating": [2.5, 4.49, 1.0]}))
    assert s.distribution == {1: 1, 2: 0, 3: 1, 4: 1, 5: 0}


def test_rating_by_group_topic_and_escalation():
    r = rating_rollup()
    topic = sm.rating_by_group(pd.DataFrame(), r, by="topic")
    # y: 3, 4, 5 -> 4.0; z: 5 -> 5.0; x: 1, 2 -> 1.5 (all low)
    assert topic[["topic", "rating_count", "mean_rating"]].values.tolist() == [["z", 1, 5.0], ["y", 3, 4.0],
                                                                              ["x", 2, 1.5]]
    assert topic["low_rating_rate"].tolist() == [0.0, 0.0, 1.0]
    esc = sm.rating_by_group(pd.DataFrame(), r, by="escalated")
    # escalated a, b: (1 + 2) / 2; not escalated c-f: (3 + 4 + 5 + 5) / 4
    assert esc[["escalated", "mean_rating"]].values.tolist() == [["not escalated", 4.25], ["escalated", 1.5]]


def test_rating_by_intent_uses_primary_intent():
    m = messages_frame([
        {"conversation_id": "a", "speaker": "user", "text": "hi", "intent": "greet", "timestamp": T(3, 0)},
        {"conversation_id": "a", "speaker": "user", "text": "refund please", "intent": "refund", "timestamp": T(3, 1)},
        {"conversation_id": "b", "speaker": "user", "text": "where is my order", "intent": "order_status",
         "timestamp": T(3, 2)},
        {"conversation_id": "c", "speaker": "user", "text": "refund now", "intent": "refund", "timestamp": T(3, 3)},
    ])
    r = pd.DataFrame({"conversation_id": ["a", "b", "c"], "rating": [2.0, 5.0, 3.0]})
    out = sm.rating_by_group(m, r, by="intent")
    # "hi" is small talk, so a's intent is refund: refund (2 + 3) / 2 = 2.5, order_status 5
    assert out[["intent", "rating_count", "mean_rating"]].values.tolist() == [["order_status", 1, 5.0],
                                                                             ["refund", 2, 2.5]]


def test_rating_correlations_by_hand():
    f = scored_frame([{"conversation_id": c, "speaker": "user", "text": "t", "compound": v}
                      for c, v in zip("abcdef", [-0.5, -0.1, 0.1, 0.4, 0.8, 0.9])])
    r = rating_rollup()
    out = sm.rating_correlations(f, r).set_index("variable")
    # ratings 1..5,5 rise with the mean compound: every pair concordant except the 5/5 tie -> rho < 1
    from scipy.stats import spearmanr

    expected = spearmanr([1, 2, 3, 4, 5, 5], [-0.5, -0.1, 0.1, 0.4, 0.8, 0.9]).statistic
    assert out.loc["mean_user_compound", "spearman_rho"] == pytest.approx(expected)
    assert out.loc["mean_user_compound", "conversation_count"] == 6
    # escalated x = [1, 1, 0, 0, 0, 0] vs ratings [1, 2, 3, 4, 5, 5]: ranks x = [5.5, 5.5, 2.5 x4],
    # ranks y = [1, 2, 3, 4, 5.5, 5.5]; Pearson of the ranks = -sqrt(8/11) ... computed via the definition:
    rx = np.array([5.5, 5.5, 2.5, 2.5, 2.5, 2.5])
    ry = np.array([1, 2, 3, 4, 5.5, 5.5])
    rho = ((rx - rx.mean()) * (ry - ry.mean())).sum() / math.sqrt(((rx - rx.mean()) ** 2).sum()
                                                                  * ((ry - ry.mean()) ** 2).sum())
    assert out.loc["escalated", "spearman_rho"] == pytest.approx(rho)
    assert out.loc["escalated", "spearman_rho"] < -0.8


def test_rating_correlations_undefined_is_nan():
    f = scored_frame([{"conversation_id": c, "speaker": "user", "text": "t", "compound": 0.2} for c in "ab"])
    r = pd.DataFrame({"conversation_id": ["a", "b"], "rating": [1.0, 5.0]})
    out = sm.rating_correlations(f, r)
    assert out["spearman_rho"].isna().all() and out["conversation_count"].tolist() == [2, 2, 2]


def test_conversations_with_rating():
    assert sm.conversations_with_rating(rating_rollup(), 5)["conversation_id"].tolist() == ["e", "f"]
    with pytest.raises(ConfigError, match="6"):
        sm.conversations_with_rating(rating_rollup(), 6)


def test_rating_trend():
    r = pd.DataFrame({"conversation_id": ["a", "b", "c"], "rating": [2.0, 4.0, 5.0],
                      "started_at": pd.to_datetime(["2026-08-03", "2026-08-05", "2026-08-19"], utc=True)})
    t = sm.rating_trend(r)
    assert t["label"].tolist() == ["2026-W32", "2026-W33", "2026-W34"]
    assert t["rating_count"].tolist() == [2, 0, 1]
    assert t["mean_rating"].tolist()[0] == 3.0 and math.isnan(t["mean_rating"][1])


# --------------------------------------------------------------------------- quality bands

@pytest.mark.parametrize("rating,pos,neg,band", [
    (3.2, 0.30, 0.45, "serious_problem"),      # the guide's first example, exactly on both lines
    (4.0, 0.50, 0.45, "serious_problem"),      # 45% negative alone is serious
    (3.1, 0.80, 0.05, "serious_problem"),      # a low rating alone is serious
    (4.5, 0.75, 0.05, "on_target"),            # the guide's second example
    (4.6, 0.74, 0.05, "in_between"),           # positive share short of 75%
    (float("nan"), 0.80, 0.05, "on_target"),   # no ratings: sentiment alone
    (4.7, float("nan"), float("nan"), "on_target"),
    (float("nan"), float("nan"), float("nan"), "unknown"),
])
def test_quality_bands(rating, pos, neg, band):
    assert sm.quality_band(mean_rating=rating, positive_rate=pos, negative_rate=neg).band == band


def test_quality_bands_are_configurable_and_validated():
    strict = sm.QualityBands(problem_rating=4.0, target_rating=4.8)
    assert sm.quality_band(mean_rating=3.9, positive_rate=0.9, negative_rate=0.0, bands=strict).band == \
        "serious_problem"
    with pytest.raises(ConfigError, match="5.5"):
        sm.QualityBands(target_rating=5.5)
    with pytest.raises(ConfigError, match="1.2"):
        sm.QualityBands(problem_negative_rate=1.2)


# --------------------------------------------------------------------------- calibration

def calibration_inputs():
    # human (rating) vs VADER (mean compound) labels:
    # a neg/neg, b neg/neu, c neu/neu, d pos/pos, e pos/pos, f pos/neg
    f = scored_frame([{"conversation_id": c, "speaker": "user", "text": "t", "compound": v}
                      for c, v in zip("abcdef", [-0.6, 0.0, 0.02, 0.5, 0.9, -0.3])])
    r = pd.DataFrame({"conversation_id": list("abcdefg"), "rating": [1, 2, 3, 4, 5, 5, 4]})
    return f, r


def test_calibration_kappa_by_hand():
    f, r = calibration_inputs()
    c = sm.sentiment_calibration(f, r)
    assert c.conversation_count == 6                   # g has a rating but no scored message
    assert c.confusion.loc["negative"].tolist() == [1, 1, 0]
    assert c.confusion.loc["neutral"].tolist() == [0, 1, 0]
    assert c.confusion.loc["positive"].tolist() == [1, 0, 2]
    # p_o = 4/6; marginals human (2, 1, 3), VADER (2, 2, 2): p_e = (4 + 2 + 6) / 36 = 1/3
    # kappa = (2/3 - 1/3) / (1 - 1/3) = 0.5
    assert c.agreement_rate == pytest.approx(4 / 6)
    assert c.kappa == pytest.approx(0.5)
    # linear weights 0, 1/2, 1: observed disagreement (0.5 + 1) / 6 = 0.25, expected 17/36 -> 1 - 9/17
    assert c.weighted_kappa == pytest.approx(8 / 17)
    # gaps: f |-0.3 - (5-3)/2| = 1.3, b |0 - (2-3)/2| = 0.5
    assert c.disagreements["conversation_id"].tolist() == ["f", "b"]
    assert c.disagreements["gap"].round(4).tolist() == [1.3, 0.5]


def test_calibration_against_audit_tone_scores():
    f, _ = calibration_inputs()
    audit = pd.DataFrame({"conversation_id": ["a", "a", "e", "f"], "tone": [1, 2, 5, 2], "reviewer": list("xyxy")})
    c = sm.sentiment_calibration(f, audit, score_column="tone")
    # a: mean 1.5 -> 2 negative (agrees); e: 5 positive (agrees); f: 2 negative vs VADER negative (agrees)
    assert c.conversation_count == 3 and c.agreement_rate == 1.0 and c.source == "tone"
    assert len(c.disagreements) == 0


def test_calibration_errors():
    f, r = calibration_inputs()
    with pytest.raises(InsufficientDataError, match="both"):
        sm.sentiment_calibration(f, pd.DataFrame({"conversation_id": ["zz"], "rating": [3]}))
    with pytest.raises(ConfigError, match="7"):
        sm.sentiment_calibration(f, pd.DataFrame({"conversation_id": ["a"], "rating": [7]}))
    with pytest.raises(ConfigError, match="median"):
        sm.sentiment_calibration(f, r, aggregate="median")
    with pytest.raises(InsufficientDataError, match="tone"):
        sm.sentiment_calibration(f, r, score_column="tone")


# --------------------------------------------------------------------------- CLI section

def test_summary_section_keys_and_values():
    m = messages_frame([
        {"conversation_id": "a", "speaker": "user", "text": "This is great", "timestamp": T(3, 0), "rating": 4},
        {"conversation_id": "a", "speaker": "bot", "text": "Glad to help", "timestamp": T(3, 1), "rating": 4},
        {"conversation_id": "a", "speaker": "user", "text": "now it is broken", "timestamp": T(3, 2), "rating": 4},
        {"conversation_id": "b", "speaker": "user", "text": "where is the parcel", "timestamp": T(11, 0),
         "thumbs": "down"},
    ])
    before = m.copy()
    s = summary_section(m, conversation_rollup(m))
    pd.testing.assert_frame_equal(m, before)
    assert set(s) == {"sentiment", "ratings"}
    assert tuple(s["sentiment"]) == SENTIMENT_KEYS and tuple(s["ratings"]) == RATING_KEYS
    # user messages: 0.6249, -0.4767, 0.0 -> one of each label; mean 0.1482 / 3
    assert s["sentiment"]["positive_rate"] == s["sentiment"]["negative_rate"] == pytest.approx(1 / 3)
    assert s["sentiment"]["mean_compound"] == pytest.approx((0.6249 - 0.4767) / 3)
    assert s["sentiment"]["worsened_conversation_rate"] == 1.0
    assert s["sentiment"]["weekly"] == {"2026-W32": round((0.6249 - 0.4767) / 2, 4), "2026-W33": 0.0}
    assert s["ratings"] == {"count": 1, "mean": 4.0, "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0},
                            "thumbs_up_rate": 0.0, "survey_response_rate": 1.0}


def test_summary_section_empty():
    from metrics.io.schema import empty_frame

    m = empty_frame()
    s = summary_section(m, conversation_rollup(m))
    assert s["sentiment"]["mean_compound"] is None and s["sentiment"]["weekly"] == {}
    assert s["sentiment"]["worsened_conversation_rate"] is None
    assert s["ratings"]["count"] == 0 and s["ratings"]["mean"] is None


# --------------------------------------------------------------------------- properties

TEXTS = {"Could you rephrase?": 0.0, "Sorry!": -0.1, "Great, thanks": 0.8, "ugh": -0.4, "where": 0.0,
         "awful": -0.6}


@st.composite
def scored_frames(draw):
    n = draw(st.integers(min_value=0, max_value=25))
    rows = []
    for i in range(n):
        text = draw(st.sampled_from(sorted(TEXTS)))
        rows.append({
            "conversation_id": draw(st.sampled_from(["a", "b", "c", "d"])),
            "speaker": draw(st.sampled_from(["user", "user", "bot", "system"])),
            "text": text,
            "compound": TEXTS[text],
            "timestamp": f"2026-08-{draw(st.integers(1, 20)):02d}T{draw(st.integers(0, 23)):02d}:00:00Z",
            "topic": draw(st.sampled_from(["x", "y", None])),
        })
    if not rows:
        frame = scored_frame([{"conversation_id": "a", "speaker": "user", "text": "x", "compound": 0.0,
                               "timestamp": "2026-08-01T00:00:00Z", "topic": "x"}])
        return frame.iloc[0:0]
    return scored_frame(rows)


def _all_results(f: pd.DataFrame) -> dict:
    out = {
        "dist": sm.sentiment_distribution(f),
        "breakdown": sm.sentiment_breakdown(f, by="topic"),
        "conv": sm.conversation_sentiment(f),
        "shift": sm.sentiment_shift(f).table,
        "pairs": sm.bot_reaction_pairs(f),
        "reactions": sm.negative_reactions(f, min_count=1),
        "worst": sm.most_negative_conversations(f),
        "matching": sm.conversations_matching(f, sentiment="negative"),
    }
    if len(f) and f["speaker"].eq("user").any():
        out["trend"] = sm.sentiment_trend(f, freq="day")
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], pd.DataFrame):
            pd.testing.assert_frame_equal(a[key], b[key], check_exact=False, rtol=1e-12)
        else:  # a frozen dataclass of counts and rates: sums may differ in the last bit
            assert dataclasses.asdict(a[key]) == pytest.approx(dataclasses.asdict(b[key]), nan_ok=True)


@settings(max_examples=60, deadline=None)
@given(scored_frames(), st.randoms(use_true_random=False))
def test_shuffling_rows_changes_nothing(frame, rnd):
    order = list(range(len(frame)))
    rnd.shuffle(order)
    shuffled = frame.iloc[order]
    _assert_same(_all_results(frame), _all_results(shuffled))


@settings(max_examples=60, deadline=None)
@given(scored_frames())
def test_inputs_are_never_mutated(frame):
    before = frame.copy()
    _all_results(frame)
    pd.testing.assert_frame_equal(frame, before)


@settings(max_examples=60, deadline=None)
@given(scored_frames())
def test_rates_are_rates_and_counts_add_up(frame):
    d = sm.sentiment_distribution(frame)
    assert d.positive_count + d.neutral_count + d.negative_count == d.message_count
    if d.message_count:
        assert d.positive_rate + d.neutral_rate + d.negative_rate == pytest.approx(1.0)
    s = sm.sentiment_shift(frame)
    assert s.worsened_count + s.improved_count + s.unchanged_count == s.eligible_count
    assert math.isnan(s.worsened_conversation_rate) or 0 <= s.worsened_conversation_rate <= 1
    b = sm.sentiment_breakdown(frame, by="topic")
    assert b["message_count"].sum() <= d.message_count


# Issue 10 (speed): conversation order is taken from integer keys (no re-sort when the frame is
# already ordered), rows are handled by position and grouped on integer codes. These compare
# with plain Python, straight from the docstrings, on messy frames: shuffled rows, missing
# timestamps and scores, equal timestamps (row breaks the tie), a missing conversation id.

@st.composite
def messy_scored_frames(draw):
    n = draw(st.integers(min_value=1, max_value=30))
    rows = []
    for i in range(n):
        text = draw(st.sampled_from(sorted(TEXTS)))
        rows.append({
            "conversation_id": draw(st.sampled_from(["a", "b", "c", "b10", "b9"])),
            "speaker": draw(st.sampled_from(["user", "user", "bot", "bot", "system"])),
            "text": text,
            "compound": draw(st.sampled_from([TEXTS[text], TEXTS[text], float("nan")])),
            "timestamp": draw(st.sampled_from([None, T(1), T(1), T(2), T(2, 5), T(3)])),
            "intent": draw(st.sampled_from(["x", "y", None])),
        })
    frame = scored_frame(rows)
    if draw(st.booleans()):
        frame.loc[draw(st.integers(0, n - 1)), "conversation_id"] = None
    return frame.iloc[draw(st.permutations(range(n)))]


def _plain_order(f: pd.DataFrame) -> list[dict]:
    """Records in (conversation_id, timestamp, row) order, missing values last (the module's definition)."""
    def key(r):
        return (r["conversation_id"] is None or r["conversation_id"] is pd.NA, str(r["conversation_id"]),
                pd.isna(r["timestamp"]), r["timestamp"] if not pd.isna(r["timestamp"]) else 0, r["row"])
    return sorted(f.to_dict("records"), key=key)


@settings(max_examples=100, deadline=None)
@given(messy_scored_frames())
def test_conversation_sentiment_and_pairs_equal_plain_python(f):
    ordered = [r for r in _plain_order(f) if not pd.isna(r["conversation_id"])]
    # conversation_sentiment: the conversation's scored user messages in time order.
    users = {}
    for r in ordered:
        if r["speaker"] == "user" and not math.isnan(r["compound"]):
            users.setdefault(r["conversation_id"], []).append(r)
    got = sm.conversation_sentiment(f)
    assert got["conversation_id"].tolist() == sorted(users)
    for row in got.to_dict("records"):
        msgs = users[row["conversation_id"]]
        scores = [m["compound"] for m in msgs]
        assert row["user_message_count"] == len(msgs)
        assert (row["first_compound"], row["last_compound"], row["min_compound"]) == (
            scores[0], scores[-1], min(scores))
        assert row["mean_compound"] == pytest.approx(sum(scores) / len(scores), abs=1e-12)
        assert row["worst_text"] == msgs[scores.index(min(scores))]["text"]  # the earliest lowest
    # bot_reaction_pairs: a bot message whose next non-system message is a scored user message.
    expected = []
    talk = [r for r in ordered if r["speaker"] != "system"]
    for r, nxt in zip(talk, talk[1:]):
        if (r["conversation_id"] == nxt["conversation_id"] and r["speaker"] == "bot" and nxt["speaker"] == "user"
                and not math.isnan(nxt["compound"])):
            expected.append([r["conversation_id"], r["text"], nxt["text"], nxt["compound"]])
    pairs = sm.bot_reaction_pairs(f)
    assert pairs[["conversation_id", "bot_text", "reply_text", "reply_compound"]].values.tolist() == expected
    # Labels are metrics.sentiment.sentiment_labels' (for the replies and the conversation means).
    from metrics.sentiment import sentiment_labels

    assert pairs["reply_sentiment"].tolist() == sentiment_labels(pairs["reply_compound"]).tolist()
    assert got["sentiment"].tolist() == sentiment_labels(got["mean_compound"]).tolist()


@settings(max_examples=100, deadline=None)
@given(messy_scored_frames(), st.sampled_from([Cutoffs(), Cutoffs(positive=0.0, negative=-0.4)]))
def test_breakdown_and_distribution_equal_plain_python(f, cutoffs):
    from metrics.sentiment import sentiment_labels

    scored = [r for r in f.to_dict("records") if r["speaker"] == "user" and not math.isnan(r["compound"])]
    labels = sentiment_labels(pd.Series([r["compound"] for r in scored], dtype="float64"), cutoffs=cutoffs).tolist()
    d = sm.sentiment_distribution(f, cutoffs=cutoffs)
    assert (d.positive_count, d.neutral_count, d.negative_count) == tuple(
        labels.count(x) for x in ("positive", "neutral", "negative"))
    b = sm.sentiment_breakdown(f, by="intent", cutoffs=cutoffs).set_index("intent")
    groups = sorted({r["intent"] for r in scored if not pd.isna(r["intent"])})
    assert sorted(b.index) == groups
    for g in groups:
        mine = [(r, lab) for r, lab in zip(scored, labels) if r["intent"] == g]
        assert b.loc[g, "message_count"] == len(mine)
        assert b.loc[g, "conversation_count"] == len({r["conversation_id"] for r, _ in mine
                                                      if not pd.isna(r["conversation_id"])})
        assert b.loc[g, "negative_rate"] == pytest.approx(sum(lab == "negative" for _, lab in mine) / len(mine))


def test_object_ids_and_unsorted_frames_take_the_sorting_path():
    # Object-dtype ids sort as themselves (10 after 9), not as text: the fallback sort is used.
    f = pd.DataFrame({"conversation_id": [10, 9, 10], "speaker": ["user", "user", "user"], "row": [3, 2, 1],
                      "text": ["late", "nine", "early"], "compound": [-0.5, 0.2, 0.5],
                      "timestamp": pd.to_datetime(["2026-08-02", "2026-08-01", "2026-08-01"], utc=True)})
    conv = sm.conversation_sentiment(f)
    # ids are reported as text, sorted as text ("10" < "9"); "10": early (0.5) first, then late (-0.5).
    assert conv[["conversation_id", "first_compound", "last_compound", "worst_text"]].values.tolist() == [
        ["10", 0.5, -0.5, "late"], ["9", 0.2, 0.2, "nine"]]


def test_empty_frame_gives_documented_results():
    f = scored_frame([{"conversation_id": "a", "speaker": "user", "text": "x", "compound": 0.0,
                       "timestamp": "2026-08-01T00:00:00Z", "topic": "x"}]).iloc[0:0]
    d = sm.sentiment_distribution(f)
    assert d.message_count == 0 and math.isnan(d.positive_rate) and math.isnan(d.mean_compound)
    assert len(sm.sentiment_trend(f)) == 0
    assert len(sm.sentiment_breakdown(f, by="topic")) == 0
    s = sm.sentiment_shift(f)
    assert s.eligible_count == 0 and math.isnan(s.worsened_conversation_rate)
    assert len(sm.negative_reactions(f)) == 0 and len(sm.most_negative_conversations(f)) == 0
    assert list(sm.conversation_sentiment(f).columns)[0] == "conversation_id"


# --------------------------------------------------------------------------- chart specs

def _params(spec: dict) -> dict:
    found = {}
    for layer in [spec, *spec.get("layer", [])]:
        for p in layer.get("params", []):
            found[p["name"]] = p
    return found


def test_trend_chart_carries_the_point_selection_and_change_annotations():
    from metrics.sentiment import charts

    f = scored_frame([dict(r) for r in SHIFT_ROWS])
    trend = sm.sentiment_trend(f, freq="day", window=2)
    changes = pd.DataFrame({"date": ["2026-08-04"], "title": ["Rewrote the refund answer"]})
    spec = charts.trend_chart(trend, changes=changes).to_dict()
    assert _params(spec)[charts.PERIOD_PARAM]["select"]["fields"] == ["label"]
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]]
    assert marks.count("rule") == 2                     # the zero line and one change
    datasets = [row for rows in spec["datasets"].values() for row in rows]
    assert any(row.get("title") == "Rewrote the refund answer" for row in datasets)
    plain = charts.trend_chart(trend).to_dict()
    assert len(plain["layer"]) == 4                     # no change log: no annotation layers


def test_distribution_and_rating_charts_show_the_quality_bands():
    from metrics.sentiment import charts

    bands = sm.QualityBands(problem_negative_rate=0.4, target_positive_rate=0.8, problem_rating=3.0)
    dist = sm.SentimentDistribution(4, 1, 2, 1, 0.25, 0.5, 0.25, 0.0).to_frame()
    spec = charts.distribution_chart(dist, bands=bands).to_dict()
    rows = [row for rows in spec["datasets"].values() for row in rows]
    assert {(r["sentiment"], r["share"]) for r in rows if "meaning" in r} == {("negative", 0.4), ("positive", 0.8)}
    assert _params(spec)[charts.SENTIMENT_PARAM]["select"]["fields"] == ["sentiment"]
    trend = sm.rating_trend(pd.DataFrame({"conversation_id": ["a"], "rating": [4.0],
                                          "started_at": pd.to_datetime(["2026-08-03"], utc=True)}))
    spec = charts.rating_trend_chart(trend, bands=bands).to_dict()
    rows = [row for rows in spec["datasets"].values() for row in rows]
    assert sorted(r["y"] for r in rows if "meaning" in r) == [3.0, 4.5]


def test_every_drill_down_chart_has_its_selection():
    from metrics.sentiment import charts

    f = scored_frame([dict(r) for r in SHIFT_ROWS]).assign(topic="x")
    cal = sm.sentiment_calibration(*calibration_inputs())
    built = {
        charts.GROUP_PARAM: charts.breakdown_chart(sm.sentiment_breakdown(f, by="topic"), by="topic"),
        charts.DIRECTION_PARAM: charts.shift_chart(sm.sentiment_shift(f).counts_frame()),
        charts.REACTION_PARAM: charts.reactions_chart(sm.negative_reactions(f, min_count=1)),
        charts.STARS_PARAM: charts.rating_distribution_chart(sm.rating_summary(rating_rollup()).distribution_frame()),
        charts.CELL_PARAM: charts.calibration_chart(cal.confusion),
    }
    for param, chart in built.items():
        assert param in _params(chart.to_dict()), param


def test_rating_correlations_without_any_scored_user_message_are_nan_not_an_error():
    """Found by tests/metrics/test_metric_contract.py: a rated conversation with only bot messages indexed an empty
    array at -1. Documented: fewer than 3 pairs gives NaN."""
    from metrics.core.rollup import conversation_rollup
    from metrics.sentiment import add_sentiment
    from metrics.sentiment.measures import rating_correlations

    m = messages_frame([{"conversation_id": "a", "speaker": "bot", "text": "Hello!", "rating": 4.0}])
    out = rating_correlations(add_sentiment(m), conversation_rollup(m))
    assert out["variable"].tolist() == ["escalated", "mean_user_compound", "last_user_compound",
                                        "min_user_compound"]
    assert out["spearman_rho"].isna().all()
