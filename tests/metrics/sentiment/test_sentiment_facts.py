"""The sentiment family's facts (metrics/sentiment/facts.py): the shard contract, a hand-computed
golden, and parity of its sections with ``metrics.sentiment.cli.summary_section``."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import messages_frame
from metrics.core.facts import Context, combine_table, context_of
from metrics.core.rollup import conversation_rollup
from metrics.engagement import facts as engagement_facts
from metrics.sentiment import facts as sentiment_facts
from metrics.sentiment.cli import summary_section

# VADER compounds (with Chatlens' fixes) of the phrases, computed once with score_messages:
COMPOUND = {
    "I love it": 0.6369,
    "thanks, great help": 0.8658,
    "perfect, thank you": 0.7351,
    "good": 0.4404,
    "ok": 0.296,
    "where is my order": 0.0,
    "hello": 0.0,
    "what are your opening hours": 0.0,
    "this is useless": -0.4215,
    "terrible service": -0.4767,
    "the bot is broken": -0.4767,
    "awful": -0.4588,
}
PHRASES = sorted(COMPOUND)


def _facts(frame: pd.DataFrame, ctx: Context) -> dict:
    """The facts of the two families the sections read (engagement for the rollup, sentiment)."""
    return {"engagement": engagement_facts.shard_facts(frame, ctx),
            "sentiment": sentiment_facts.shard_facts(frame, ctx)}


def _combined(parts: list[dict]) -> dict:
    out = {}
    for name, module in (("engagement", engagement_facts), ("sentiment", sentiment_facts)):
        out[name] = {t: combine_table([p[name][t] for p in parts], spec) for t, spec in module.TABLES.items()}
    return out


def _close(x, y) -> bool:
    if isinstance(x, dict) and isinstance(y, dict):
        return list(x) == list(y) and all(_close(x[k], y[k]) for k in x)
    if isinstance(x, float) and isinstance(y, (float, int)) and not isinstance(y, bool):
        return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
    return x == y and type(x) is type(y)


# --------------------------------------------------------------------------- the shard contract

@st.composite
def _messages(draw):
    n_conv = draw(st.integers(1, 7))
    with_rating = draw(st.booleans())
    with_thumbs = draw(st.booleans())
    rows = []
    for c in range(n_conv):
        cid = draw(st.sampled_from(["c1", "c2", "c9", "c10", "a", "b-7", "zz"]))
        if any(r["conversation_id"] == cid for r in rows):
            cid = f"{cid}_{c}"
        for _ in range(draw(st.integers(1, 5))):
            row = {"conversation_id": cid,
                   "speaker": draw(st.sampled_from(["user", "user", "bot", "system", None])),
                   "text": draw(st.one_of(st.sampled_from(PHRASES), st.sampled_from([None, ""]))),
                   # a few weeks around a year end (ISO week 53 of 2026), ties and missing times
                   "timestamp": draw(st.one_of(
                       st.none(), st.integers(0, 40 * 24).map(
                           lambda h: (pd.Timestamp("2026-12-10", tz="UTC") + pd.Timedelta(hours=h)).isoformat())))}
            if with_rating:
                row["rating"] = draw(st.one_of(st.none(), st.sampled_from([1, 2.4, 2.5, 3, 4, 5])))
            if with_thumbs:
                row["thumbs"] = draw(st.sampled_from([None, "up", "down", " Up"]))
            rows.append(row)
    order = draw(st.permutations(range(len(rows))))
    frame = messages_frame([rows[i] for i in order])
    ids = sorted(frame["conversation_id"].unique())
    shard_count = draw(st.integers(1, 4))
    assignment = {cid: draw(st.integers(0, shard_count - 1)) for cid in ids}
    return frame, assignment, shard_count


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_messages())
def test_combined_facts_of_any_shards_equal_the_facts_of_the_whole(drawn):
    whole, assignment, shard_count = drawn
    ctx = context_of(whole)
    bucket = whole["conversation_id"].map(assignment).to_numpy()
    shards = [whole[bucket == b].reset_index(drop=True) for b in range(shard_count)]
    parts = [sentiment_facts.shard_facts(s, ctx) for s in shards]
    reference = sentiment_facts.shard_facts(whole, ctx)
    assert set(reference) == set(sentiment_facts.TABLES)
    for name, spec in sentiment_facts.TABLES.items():
        combined = combine_table([p[name] for p in parts], spec)
        pd.testing.assert_frame_equal(combined, combine_table([reference[name]], spec),
                                      check_exact=False, rtol=1e-9)
    # ... and the sections of those facts are today's summary section of the messages
    got = sentiment_facts.sections(_combined([_facts(s, ctx) for s in shards]), ctx, {})
    want = summary_section(whole, conversation_rollup(whole))
    assert _close(got, want), (got, want)


def test_an_empty_shard_gives_every_table_with_the_same_columns_and_dtypes():
    full = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "good",
                            "timestamp": "2026-08-03 10:00"}])
    ctx = context_of(full)
    some = sentiment_facts.shard_facts(full, ctx)
    none = sentiment_facts.shard_facts(full.iloc[0:0], ctx)
    no_user = sentiment_facts.shard_facts(full.assign(speaker=full["speaker"].replace("user", "bot")), ctx)
    for empty in (none, no_user):
        assert set(empty) == set(sentiment_facts.TABLES)
        for name in sentiment_facts.TABLES:
            assert len(empty[name]) == 0
            assert empty[name].dtypes.to_dict() == some[name].dtypes.to_dict(), name


# --------------------------------------------------------------------------- the golden

def _golden() -> pd.DataFrame:
    return messages_frame([
        # c1 (ISO week 2026-W32): worsened, 0.6369 -> -0.4215; the bot's "awful" is not the customer's
        {"conversation_id": "c1", "speaker": "user", "text": "I love it", "timestamp": "2026-08-03 10:00",
         "rating": 2, "thumbs": "down"},
        {"conversation_id": "c1", "speaker": "bot", "text": "awful", "timestamp": "2026-08-03 10:01"},
        {"conversation_id": "c1", "speaker": "user", "text": "this is useless", "timestamp": "2026-08-03 10:02"},
        # c2 (2026-W32): improved, 0.0 -> 0.8658
        {"conversation_id": "c2", "speaker": "user", "text": "where is my order", "timestamp": "2026-08-05 09:00",
         "rating": 5, "thumbs": "up"},
        {"conversation_id": "c2", "speaker": "user", "text": "thanks, great help", "timestamp": "2026-08-05 09:03"},
        # c3 (2026-W34): one user message, not eligible for the shift
        {"conversation_id": "c3", "speaker": "user", "text": "terrible service", "timestamp": "2026-08-19 12:00"},
        # c4 (no timestamps): worsened, 0.4404 -> 0.296 (drop 0.1444 > 0.05), in no week
        {"conversation_id": "c4", "speaker": "user", "text": "good"},
        {"conversation_id": "c4", "speaker": "user", "text": "ok"},
    ])


def test_golden_facts_and_sections():
    frame = _golden()
    ctx = context_of(frame)
    facts = _combined([_facts(frame, ctx)])
    weeks = facts["sentiment"]["messages"]
    assert [None if pd.isna(w) else str(w.date()) for w in weeks["week"]] == ["2026-08-03", "2026-08-17", None]
    assert weeks[["messages", "positive", "neutral", "negative"]].values.tolist() == [
        [4, 2, 1, 1], [1, 0, 0, 1], [2, 2, 0, 0]]
    assert weeks["compound_sum"].tolist() == pytest.approx([1.0812, -0.4767, 0.7364], rel=1e-12)
    conv = facts["sentiment"]["conversations"]
    assert conv.values.tolist() == [["c1", 2, 0.6369, -0.4215], ["c2", 2, 0.0, 0.8658],
                                    ["c3", 1, -0.4767, -0.4767], ["c4", 2, 0.4404, 0.296]]

    got = sentiment_facts.sections(facts, ctx, {})
    s = got["sentiment"]
    # 7 scored user messages: 0.6369 - 0.4215 + 0 + 0.8658 - 0.4767 + 0.4404 + 0.296 = 1.3409
    assert s["mean_compound"] == pytest.approx(1.3409 / 7, rel=1e-12)
    assert (s["positive_rate"], s["neutral_rate"], s["negative_rate"]) == pytest.approx((4 / 7, 1 / 7, 2 / 7))
    assert s["worsened_conversation_rate"] == pytest.approx(2 / 3)  # c1 and c4 of c1, c2, c4
    # W32: 1.0812 / 4 = 0.2703; W33 has no user message; W34: -0.4767
    assert s["weekly"] == {"2026-W32": 0.2703, "2026-W33": None, "2026-W34": -0.4767}
    assert got["ratings"] == {"count": 2, "mean": 3.5, "distribution": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1},
                              "thumbs_up_rate": 0.5, "survey_response_rate": 0.5}


def test_golden_sections_equal_the_summary_section_for_any_sharding():
    frame = _golden()
    ctx = context_of(frame)
    want = summary_section(frame, conversation_rollup(frame))
    assert _close(sentiment_facts.sections(_combined([_facts(frame, ctx)]), ctx, {}), want)
    shards = [frame[frame["conversation_id"].isin(ids)].reset_index(drop=True)
              for ids in (["c1", "c4"], ["c2"], [], ["c3"])]
    assert _close(sentiment_facts.sections(_combined([_facts(s, ctx) for s in shards]), ctx, {}), want)


def test_without_timestamps_or_user_messages_the_sections_are_empty_like_the_summary():
    untimed = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "good"},
                              {"conversation_id": "a", "speaker": "bot", "text": "awful"}])
    bots = messages_frame([{"conversation_id": "a", "speaker": "bot", "text": "good",
                            "timestamp": "2026-08-03 10:00"}])
    for frame in (untimed, bots, untimed.iloc[0:0]):
        ctx = context_of(frame)
        got = sentiment_facts.sections(_combined([_facts(frame, ctx)]), ctx, {})
        assert got["sentiment"]["weekly"] == {}
        assert _close(got, summary_section(frame, conversation_rollup(frame)))
