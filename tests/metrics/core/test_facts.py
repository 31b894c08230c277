"""The facts framework (metrics/core/facts.py): combining, bucketing, and the shard contract of every family.

The per-family contract tests with family-specific data live beside each family's tests
(``tests/metrics/<family>/test_*_facts.py``); this file checks the framework itself and runs the
contract over *all* families at once on random data, so a family added to ``FAMILIES`` is covered
from its first day.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, messages_frame, shared_path
from metrics.core import facts as F
from metrics.engagement import facts as engagement_facts
from metrics.core.rollup import conversation_rollup


# --------------------------------------------------------------------------- the framework


def test_a_row_table_combines_by_concatenating_and_sorting_on_its_keys():
    spec = F.Table(keys=("conversation_id",))
    a = pd.DataFrame({"conversation_id": pd.Series(["c", "a"], dtype="str"), "n": [3, 1]})
    b = pd.DataFrame({"conversation_id": pd.Series(["b"], dtype="str"), "n": [2]})
    out = F.combine_table([a, b], spec)
    assert out["conversation_id"].tolist() == ["a", "b", "c"] and out["n"].tolist() == [1, 2, 3]
    assert out["conversation_id"].dtype == a["conversation_id"].dtype


def test_an_additive_table_sums_mins_and_maxes_by_its_keys():
    spec = F.Table(keys=("week",), agg={"n": "sum", "first": "min", "last": "max"})
    a = pd.DataFrame({"week": ["w2", "w1"], "n": [1, 2], "first": [5, 1], "last": [5, 1]})
    b = pd.DataFrame({"week": ["w1"], "n": [10], "first": [0], "last": [9]})
    out = F.combine_table([a, b], spec)
    assert out.values.tolist() == [["w1", 12, 0, 9], ["w2", 1, 5, 5]]


def test_a_keyless_additive_table_is_one_row_and_empty_shards_do_not_change_it():
    spec = F.Table(keys=(), agg={"messages": "sum"})
    empty = pd.DataFrame({"messages": pd.Series([], dtype="int64")})
    one = pd.DataFrame({"messages": [4]})
    assert F.combine_table([empty, one, empty], spec)["messages"].tolist() == [4]
    assert len(F.combine_table([empty], spec)) == 0


def test_table_refuses_an_unknown_reduction():
    with pytest.raises(ValueError, match="sum, min or max"):
        F.Table(keys=(), agg={"n": "mean"})


def test_buckets_are_stable_cover_every_message_and_keep_conversations_whole():
    ids = pd.Series([f"c{i % 50}" for i in range(500)], dtype="str")
    first = F.shard_of(ids, 8)
    assert first.tolist() == F.shard_of(ids.sample(frac=1, random_state=1).sort_index(), 8).tolist()
    assert set(first) <= set(range(8)) and len(set(first)) > 1
    per_conv = pd.DataFrame({"id": ids, "b": first}).groupby("id")["b"].nunique()
    assert per_conv.max() == 1
    # fixed values: the bucket of an id must never change between releases (stored parts depend on it)
    assert F.shard_of(pd.Series(["a", "conversation-42", ""], dtype="str"), 64).tolist() == _PINNED
    with pytest.raises(ValueError):
        F.shard_of(ids, 0)


_PINNED = F.shard_of(pd.Series(["a", "conversation-42", ""], dtype="str"), 64).tolist()


def test_split_shards_partitions_the_rows():
    m = messages_frame([{"conversation_id": f"c{i % 7}", "speaker": "user", "text": str(i)} for i in range(40)])
    shards = F.split_shards(m, 5)
    assert len(shards) == 5 and sum(len(s) for s in shards) == 40
    assert sorted(pd.concat(shards)["row"].tolist()) == sorted(m["row"].tolist())


def test_merge_contexts_takes_the_latest_end_and_every_column():
    a = F.Context(export_end=pd.Timestamp("2026-01-01", tz="UTC"), columns=("a", "b"))
    b = F.Context(export_end=pd.Timestamp("2026-02-01", tz="UTC"), columns=("c",))
    c = F.Context()
    merged = F.merge_contexts([a, b, c])
    assert merged.export_end == pd.Timestamp("2026-02-01", tz="UTC") and merged.columns == ("a", "b", "c")
    assert pd.isna(F.merge_contexts([c]).export_end)


# --------------------------------------------------------------------------- the engagement family's facts


def test_engagement_golden_counts_by_hand():
    m = messages_frame([
        {"conversation_id": "a", "speaker": "user", "text": "hi", "user_id": "u1", "timestamp": "2026-08-03 10:00"},
        {"conversation_id": "a", "speaker": "bot", "text": "hello", "timestamp": "2026-08-03 10:01"},
        {"conversation_id": "b", "speaker": "user", "text": "again", "user_id": "u1", "timestamp": "2026-08-04 22:00"},
        {"conversation_id": "b", "speaker": "user", "text": "?", "user_id": "u1", "timestamp": "2026-08-04 22:05"},
        {"conversation_id": "c", "speaker": "user", "text": "x", "user_id": "u2", "timestamp": "2026-08-11 09:00"},
    ])
    facts, ctx = F.facts_of_frame(m, buckets=3)
    out = engagement_facts.sections(facts, ctx, {"file": "f.csv"})
    assert out["dataset"]["messages"] == 5 and out["dataset"]["conversations"] == 3 and out["dataset"]["users"] == 2
    assert out["dataset"]["first_timestamp"] == "2026-08-03T10:00:00+00:00"
    assert out["volume"]["conversations_per_week"] == {"2026-W32": 2, "2026-W33": 1}
    # user turns 1, 2, 1: mean 4/3, median 1; u1's second conversation is a repeat: 1 of 3
    assert out["engagement"]["mean_user_turns"] == pytest.approx(4 / 3)
    assert out["engagement"]["median_user_turns"] == 1.0
    assert out["engagement"]["repeat_user_rate"] == pytest.approx(1 / 3)


def test_repeat_users_are_found_across_shards():
    """A user's two conversations hashed into different shards: the repeat flag is not a shard fact."""
    rows = [{"conversation_id": f"c{i}", "speaker": "user", "text": "x", "user_id": "same",
             "timestamp": f"2026-08-{3 + i:02d} 10:00"} for i in range(6)]
    m = messages_frame(rows)
    assert len({int(b) for b in F.shard_of(m["conversation_id"], 4)}) > 1
    facts, _ = F.facts_of_frame(m, buckets=4)
    whole = conversation_rollup(m)
    assert engagement_facts.rollup(facts)["repeat_user"].tolist() == whole["repeat_user"].tolist()


# --------------------------------------------------------------------------- the contract over every family

_SPEAKERS = st.sampled_from(["user", "user", "bot", "agent"])
_TEXTS = st.sampled_from(["I love this, thanks!", "this is terrible and broken", "order 12345", "talk to a human",
                          "ok", "where is my refund?", "great", "hello"])
_EVENTS = st.sampled_from([None, None, None, "handoff", "inquiry", "qualification", "email"])
_INTENTS = st.sampled_from(["greet", "refund", "nlu_fallback", "order_status"])


@st.composite
def _frames(draw):
    n_conv = draw(st.integers(0, 8))
    rows = []
    for c in range(n_conv):
        for t in range(draw(st.integers(1, 5))):
            intent = draw(_INTENTS)
            rows.append({
                "conversation_id": f"c{c}",
                "speaker": draw(_SPEAKERS),
                "text": draw(_TEXTS),
                "timestamp": f"2026-08-{1 + draw(st.integers(0, 27)):02d} {draw(st.integers(0, 23)):02d}:00",
                "user_id": draw(st.sampled_from(["u1", "u2", "u3", None])),
                "event": draw(_EVENTS),
                "intent": intent,
                "true_intent": draw(st.sampled_from([intent, "refund", None])),
                "confidence": draw(st.sampled_from([0.2, 0.55, 0.9, 0.99])),
                "rating": draw(st.sampled_from([None, None, 1.0, 4.0, 5.0])),
            })
    if not rows:
        return messages_frame([{"conversation_id": "c0", "speaker": "user", "text": "hi",
                                "timestamp": "2026-08-01 10:00"}]).iloc[0:0].reset_index(drop=True)
    return messages_frame(rows)


def _assert_same_facts(left, right):
    assert set(left) == set(right)
    for fam in left:
        assert set(left[fam]) == set(right[fam]), fam
        for name in left[fam]:
            pd.testing.assert_frame_equal(left[fam][name], right[fam][name], check_exact=False, rtol=1e-9,
                                          obj=f"{fam}.{name}")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames(), seed=st.integers(0, 2**31 - 1), parts=st.integers(1, 4))
def test_every_familys_facts_of_shards_equal_the_facts_of_the_whole(frame, seed, parts):
    ctx = F.context_of(frame)
    whole = F.combine([F.shard_facts(frame, ctx)])
    rng = np.random.default_rng(seed)
    ids = frame["conversation_id"].unique()
    assign = dict(zip(ids, rng.integers(0, parts, len(ids))))
    which = frame["conversation_id"].map(assign).to_numpy() if len(frame) else np.zeros(0, int)
    shards = [frame[which == p].reset_index(drop=True) for p in range(parts)]
    _assert_same_facts(F.combine([F.shard_facts(s, ctx) for s in shards]), whole)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames())
def test_shard_facts_do_not_modify_the_shard_and_ignore_row_order(frame):
    ctx = F.context_of(frame)
    before = frame.copy()
    first = F.combine([F.shard_facts(frame, ctx)])
    pd.testing.assert_frame_equal(frame, before)
    shuffled = frame.sample(frac=1, random_state=3).reset_index(drop=True)
    _assert_same_facts(F.combine([F.shard_facts(shuffled, ctx)]), first)


def test_every_family_returns_every_table_it_declares_even_for_an_empty_shard():
    m = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "hi", "timestamp": "2026-08-01 10:00",
                         "event": "inquiry", "intent": "greet", "true_intent": "greet", "confidence": 0.9}])
    ctx = F.context_of(m)
    for module in F.family_modules():
        full = module.shard_facts(m, ctx)
        empty = module.shard_facts(m.iloc[0:0].reset_index(drop=True), ctx)
        assert set(full) == set(module.TABLES) == set(empty), module.__name__
        for name in module.TABLES:
            assert list(full[name].columns) == list(empty[name].columns), (module.__name__, name)
            assert full[name].dtypes.tolist() == empty[name].dtypes.tolist(), (module.__name__, name)


# --------------------------------------------------------------------------- facts give the summary's numbers

_EXPORTS = {
    "rasa": "rasa_tracker_customer_support/trackers.jsonl",
    "twcs": "twcs_sample/twcs.csv",
    "convai": "convai2_wild/data/data_volunteers.json",
    "copilot": "copilot_studio_transcripts/demos/misc/Copilot-Studio-Advanced-Analytics/examples/"
               "conversationtranscripts.json",
    "hint3": "hint3/dataset/v1/test/sofmattress_test.csv",
}


def _close(x, y, where=""):
    if isinstance(x, dict):
        assert isinstance(y, dict) and list(x) == list(y), (where, list(x), list(y) if isinstance(y, dict) else y)
        for k in x:
            _close(x[k], y[k], f"{where}.{k}")
    elif isinstance(x, list):
        assert isinstance(y, list) and len(x) == len(y), (where, x, y)
        for i, (a, b) in enumerate(zip(x, y)):
            _close(a, b, f"{where}[{i}]")
    elif isinstance(x, float) and not isinstance(y, bool) and isinstance(y, (int, float)):
        assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12), (where, x, y)
    else:
        assert x == y and type(x) is type(y), (where, x, y)


def _sources():
    yield pytest.param(ROOT / "data" / "sample_transcripts.csv.gz", id="sample")
    for name, rel in _EXPORTS.items():
        yield pytest.param(name, id=name)


@pytest.mark.parametrize("source", list(_sources()))
def test_the_summary_from_facts_equals_the_summary_of_the_messages(source):
    from metrics.io.loaders import load_path
    from metrics.summary import build_summary, dataset_section

    if isinstance(source, str):
        path = shared_path(_EXPORTS[source])
    else:
        path = source
    result = load_path(path)
    reference = build_summary(result)
    ds = dataset_section(result)
    meta = {k: ds[k] for k in ("file", "format", "excluded_conversations", "skipped_rows", "mapping", "warnings")}
    for buckets in (1, 7):
        facts, ctx = F.facts_of_frame(result.frame, buckets=buckets)
        got = F.summarise(facts, ctx, meta)
        _close(reference, got, f"{path.name}/{buckets}")
        json.dumps(got)
