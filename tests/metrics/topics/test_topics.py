"""metrics.topics: topic discovery (golden labels, stability, properties), outcomes per topic, knowledge gaps.

Golden files: every ``tests/fixtures/topics/*.csv`` with a ``.expected.json`` beside it is a topic-discovery
case (labels, sizes and each message's topic, default options); ``gaps_*.csv`` carry the expected gap
signals per user message in their ``expected_signals`` column.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from conftest import FIXTURES, messages_frame
from metrics.errors import ConfigError, InsufficientDataError
from metrics.io.loaders import load_path
from metrics.topics import (GapOptions, TopicOptions, discover_topics, gap_messages, gap_report,
                            misunderstanding_templates, topic_outcomes, topic_trend, topic_units, with_names)

TOPIC_FIXTURES = FIXTURES / "topics"
GOLDEN = sorted(p for p in TOPIC_FIXTURES.glob("*.csv") if p.with_suffix(".expected.json").exists())
GAP_FIXTURES = sorted(TOPIC_FIXTURES.glob("gaps_*.csv"))


def _frame(path: Path) -> pd.DataFrame:
    return load_path(str(path)).frame


def _sample_like(n_per_topic: int = 12, seed: int = 0) -> pd.DataFrame:
    """A small chat export with four clear topics, small talk and bot replies (deterministic)."""
    rng = np.random.default_rng(seed)
    topics = {
        "refund": ["I want a refund", "refund my order", "how do I get my money back", "refund not received",
                   "where is my refund", "I need a refund for a broken item"],
        "password": ["I forgot my password", "reset my password", "password reset link broken",
                     "cannot log in, forgot password", "change my password", "locked out of my account"],
        "delivery": ["where is my package", "track my package", "package delivery is late",
                     "when will my package arrive", "my package has not arrived", "delivery status of my package"],
        "pricing": ["how much does the pro plan cost", "price of the basic plan", "pricing for teams",
                    "is there a free plan", "what does the enterprise plan cost", "plan prices please"],
    }
    rows = []
    day = pd.Timestamp("2026-08-03T09:00:00Z")
    i = 0
    for name, texts in topics.items():
        for j in range(n_per_topic):
            cid = f"{name}-{j:03d}"
            t0 = day + pd.Timedelta(hours=int(rng.integers(0, 24 * 40)))
            text = texts[j % len(texts)] + ("" if j < len(texts) else f" #{j}")
            rows += [{"conversation_id": cid, "timestamp": t0, "speaker": "user", "text": "hi"},
                     {"conversation_id": cid, "timestamp": t0 + pd.Timedelta(seconds=5), "speaker": "user",
                      "text": text, "intent": name, "confidence": 0.9, "true_intent": name},
                     {"conversation_id": cid, "timestamp": t0 + pd.Timedelta(seconds=9), "speaker": "bot",
                      "text": "Done. Anything else?", "rating": float(1 + (i % 5))}]
            i += 1
    return messages_frame(rows)


# --------------------------------------------------------------------------- golden labels
@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_topics(path):
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    raw = pd.read_csv(path)
    model = discover_topics(_frame(path), options=TopicOptions(**expected["options"]))
    assert model.n_topics == expected["n_topics"]
    got = [{"topic": int(t.topic), "label": t.label, "message_count": int(t.message_count)}
           for t in model.topics.itertuples(index=False)]
    assert got == expected["topics"]
    assert dict(zip(model.assignments["text"], model.assignments["topic"].astype(int))) == expected["assignments"]
    truth = raw.dropna(subset=["expected_topic"]).set_index("text")["expected_topic"]
    agreement = adjusted_rand_score(truth.loc[model.assignments["text"]], model.assignments["topic"])
    assert agreement >= 0.7  # the hand-written topics are recovered (one "money back" message may stray)


def test_golden_fixtures_exist():
    assert GOLDEN and GAP_FIXTURES


# --------------------------------------------------------------------------- units and options
def test_units_skip_small_talk_and_pick_the_first_request():
    m = _sample_like(2)
    every = topic_units(m)
    assert "hi" not in set(every["text"])
    first = topic_units(m, unit="first")
    assert first["conversation_id"].is_unique and len(first) == m["conversation_id"].nunique()
    with_talk = topic_units(m, unit="first", skip_small_talk=False)
    assert set(with_talk["text"]) == {"hi"}


@pytest.mark.parametrize("bad", [dict(unit="words"), dict(n_topics=0), dict(min_topics=5, max_topics=3),
                                 dict(min_similarity=2.0), dict(seed=-1), dict(warm_start="yes")])
def test_bad_options_are_config_errors(bad):
    with pytest.raises(ConfigError):
        TopicOptions(**bad)


def test_missing_text_column():
    with pytest.raises(InsufficientDataError):
        discover_topics(pd.DataFrame({"speaker": ["user"]}))


def test_fixed_number_of_topics_and_clamping():
    m = _sample_like(6)
    assert discover_topics(m, options=TopicOptions(n_topics=4)).n_topics == 4
    tiny = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "refund please"},
                           {"conversation_id": "b", "speaker": "user", "text": "where is my parcel"}])
    model = discover_topics(tiny, options=TopicOptions(n_topics=5))
    assert model.n_topics <= 2 and model.notes


def test_automatic_k_finds_the_four_topics():
    model = discover_topics(_sample_like(12))
    assert model.automatic and len(model.k_scores) >= 3
    assert model.n_topics == 4
    labels = " ".join(model.topics["label"])
    for word in ("refund", "password", "package", "plan"):
        assert word in labels


# --------------------------------------------------------------------------- empty input
def test_empty_input_gives_an_empty_typed_result():
    model = discover_topics(messages_frame([]).iloc[:0])
    assert model.empty and model.n_topics == 0
    assert list(model.assignments.columns) == ["conversation_id", "row", "timestamp", "text", "topic", "similarity"]
    assert model.assignments["topic"].dtype == "int64" and model.topics["message_count"].dtype == "int64"
    assert len(topic_outcomes(model, messages_frame([]).iloc[:0])) == 0
    assert len(topic_trend(model)) == 0
    only_talk = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "hi"},
                                {"conversation_id": "a", "speaker": "bot", "text": "Hello!"}])
    assert discover_topics(only_talk).empty
    report = gap_report(only_talk)
    assert report.empty and len(report.messages) == 0


# --------------------------------------------------------------------------- properties
def _assignment_key(model) -> pd.Series:
    a = model.assignments
    return pd.Series(a["topic"].to_numpy(), index=pd.MultiIndex.from_arrays([a["conversation_id"], a["row"]]))


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_row_order_does_not_change_assignments(seed):
    m = _sample_like(8)
    shuffled = m.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    a = _assignment_key(discover_topics(m, options=TopicOptions(n_topics=4)))
    b = _assignment_key(discover_topics(shuffled, options=TopicOptions(n_topics=4))).reindex(a.index)
    assert b.notna().all()
    assert adjusted_rand_score(a, b) == 1.0


def test_inputs_are_not_modified():
    m = _sample_like(6)
    before = m.copy(deep=True)
    model = discover_topics(m)
    topic_outcomes(model, m)
    gap_report(m)
    pd.testing.assert_frame_equal(m, before)


def test_same_seed_same_topics():
    m = _sample_like(10)
    a, b = discover_topics(m), discover_topics(m)
    pd.testing.assert_frame_equal(a.topics, b.topics)
    pd.testing.assert_frame_equal(a.assignments, b.assignments)


# --------------------------------------------------------------------------- stability and matching
@pytest.fixture(scope="module")
def sample():
    return load_path(str(Path(__file__).resolve().parents[3] / "data" / "sample_transcripts.csv.gz")).frame


@pytest.mark.parametrize("unit", ["messages", "first"])
def test_dropping_five_percent_keeps_nine_in_ten_topics(sample, unit):
    options = TopicOptions(unit=unit)
    full = discover_topics(sample, options=options)
    convs = np.sort(sample["conversation_id"].unique())
    rng = np.random.default_rng(3)
    dropped = set(rng.choice(convs, size=int(0.05 * len(convs)), replace=False))
    smaller = sample[~sample["conversation_id"].isin(dropped)].reset_index(drop=True)
    again = discover_topics(smaller, options=options, previous=full.snapshot)
    joined = full.assignments.merge(again.assignments, on=["conversation_id", "row"], suffixes=("_a", "_b"))
    kept = float((joined["topic_a"] == joined["topic_b"]).mean())
    assert kept >= 0.9, kept
    assert again.topics["matched"].all()


def test_fresh_run_is_matched_by_hungarian_to_previous_ids():
    m = _sample_like(10)
    first = discover_topics(m)
    # a fresh clustering (no warm start) of shuffled data: ids come from matching, not from the order
    fresh = discover_topics(m.sample(frac=1.0, random_state=1), options=TopicOptions(warm_start=False),
                            previous=first.snapshot)
    a = first.assignments.set_index(["conversation_id", "row"])["topic"]
    b = fresh.assignments.set_index(["conversation_id", "row"])["topic"].reindex(a.index)
    assert (a == b).mean() >= 0.95
    assert fresh.topics["matched"].all() and (fresh.topics["similarity"] > 0.5).all()


def test_new_topics_get_new_ids_and_merges_apply():
    m = _sample_like(10)
    first = discover_topics(m, options=TopicOptions(n_topics=4))
    ids = sorted(first.topics["topic"])
    assert ids == [1, 2, 3, 4]
    extra = messages_frame([{"conversation_id": f"x{i}", "speaker": "user", "text": t,
                             "timestamp": "2026-09-20T10:00:00Z"}
                            for i, t in enumerate(["cancel my subscription", "how to cancel subscription",
                                                   "stop my subscription now", "cancel the subscription plan",
                                                   "unsubscribe me please", "end my subscription"] * 3)])
    grown = pd.concat([m, extra], ignore_index=True)
    fresh = discover_topics(grown, options=TopicOptions(n_topics=5, warm_start=False), previous=first.snapshot)
    assert set(fresh.topics["topic"]) >= {1, 2, 3, 4}
    new = fresh.topics[~fresh.topics["matched"]]
    assert len(new) == 1 and int(new["topic"].iloc[0]) == 5 and "subscription" in new["label"].iloc[0]
    merged = discover_topics(m, options=TopicOptions(n_topics=4), previous=first.snapshot, merges={2: 1})
    assert sorted(merged.topics["topic"]) == [1, 3, 4]
    assert merged.topics.set_index("topic").loc[1, "merged_from"] == "2"
    sizes = first.topics.set_index("topic")["message_count"]
    assert merged.topics.set_index("topic").loc[1, "message_count"] == sizes[1] + sizes[2]


def test_with_names():
    m = _sample_like(4)
    model = discover_topics(m, options=TopicOptions(n_topics=4))
    names = pd.DataFrame({"topic": [1], "name": ["Money back"], "source": ["renamed"]})
    named = with_names(model.topics, names)
    assert named.loc[named["topic"] == 1, "name"].item() == "Money back"
    assert set(named["name_source"]) == {"renamed", "automatic"}


# --------------------------------------------------------------------------- outcomes and trend
def test_outcomes_per_topic_and_flags():
    rows = []
    for i in range(30):  # "refund" grows strongly in the last week
        when = "2026-09-25T10:00:00Z" if i >= 10 else f"2026-09-{10 + i % 5:02d}T10:00:00Z"
        rows += [{"conversation_id": f"r{i}", "timestamp": when, "speaker": "user", "text": "I want a refund now"},
                 {"conversation_id": f"r{i}", "timestamp": when, "speaker": "agent", "text": "Sam here"}]
    for i in range(20):
        when = f"2026-09-{10 + i % 17:02d}T10:00:00Z"
        rows += [{"conversation_id": f"p{i}", "timestamp": when, "speaker": "user", "text": "reset my password",
                  "rating": 5.0},
                 {"conversation_id": f"p{i}", "timestamp": when, "speaker": "bot", "text": "Done.",
                  "goal_achieved": True, "rating": 5.0}]
    m = messages_frame(rows)
    model = discover_topics(m, options=TopicOptions(n_topics=2))
    out = topic_outcomes(model, m).set_index("label")
    refund = out.loc[[label for label in out.index if "refund" in label][0]]
    password = out.loc[[label for label in out.index if "password" in label][0]]
    assert refund["escalation_rate"] == 1.0 and password["resolution_rate"] == 1.0
    assert password["csat_rate"] == 1.0 and password["mean_rating"] == 5.0 and np.isnan(refund["mean_rating"])
    assert refund["recent_count"] == 20 and refund["growing"] and not password["growing"]
    assert not password["new"]
    trend = topic_trend(model)
    assert trend.groupby("topic")["message_count"].sum().sum() == len(model.assignments)
    assert str(trend["period"].dt.day_of_week.unique().tolist()) == "[0]"


# --------------------------------------------------------------------------- gaps
@pytest.mark.parametrize("path", GAP_FIXTURES, ids=[p.stem for p in GAP_FIXTURES])
def test_golden_gap_signals(path):
    raw = pd.read_csv(path)
    expected = {(r.conversation_id, r.text): r.expected_signals for r in raw.itertuples(index=False)
                if r.speaker == "user" and isinstance(r.expected_signals, str)}
    gaps = gap_messages(_frame(path))
    got = dict(zip(zip(gaps["conversation_id"], gaps["text"]), gaps["signals"]))
    assert got == expected


def test_templates_are_learned_and_handoffs_are_not_templates():
    frame = _frame(TOPIC_FIXTURES / "gaps_conversations.csv")
    templates = misunderstanding_templates(frame)
    flagged = templates.loc[templates["is_template"], "bot_text"].tolist()
    assert flagged == ["Sorry, I didn't get that. Could you rephrase?"]
    assert "It ships today. Anything else?" in templates["bot_text"].tolist()


def test_gap_report_ranks_by_frequency_times_impact():
    frame = _frame(TOPIC_FIXTURES / "gaps_conversations.csv")
    report = gap_report(frame)
    assert report.fallback_intent == "nlu_fallback"
    t = report.topics
    assert (t["score"] == t["message_count"] * t["impact"]).all()
    assert t["score"].is_monotonic_decreasing and t["rank"].tolist() == list(range(1, len(t) + 1))
    assert t["message_count"].sum() == len(report.messages)


def test_gap_signals_can_be_chosen():
    frame = _frame(TOPIC_FIXTURES / "gaps_conversations.csv")
    only = gap_messages(frame, options=GapOptions(signals=("escalated_after",)))
    assert only["text"].tolist() == ["can I pay using bitcoin please"]
    with pytest.raises(ConfigError):
        GapOptions(signals=("telepathy",))
