"""The intents family's facts (metrics/intents/facts.py): the shard contract, a hand-counted
golden and equality with today's ``intents`` section (metrics.intents.cli.section_provider)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import messages_frame
from metrics.core import facts as F
from metrics.core.stats import wilson_interval
from metrics.intents import cli as intents_cli
from metrics.intents import facts as intents_facts


def family_facts(shards: list[pd.DataFrame], ctx: F.Context) -> dict:
    """The combined intents tables of the shards (only this family: the others are not needed)."""
    parts = [intents_facts.shard_facts(s, ctx) for s in shards]
    return {name: F.combine_table([p[name] for p in parts], spec) for name, spec in intents_facts.TABLES.items()}


def sections_of(messages: pd.DataFrame, shards: list[pd.DataFrame] | None = None) -> dict:
    ctx = F.context_of(messages)
    facts = {"intents": family_facts(shards if shards is not None else [messages], ctx)}
    return intents_facts.sections(facts, ctx, {})


def assert_same(a, b):
    """Equal JSON objects, floats to 1e-9 relative."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), (a, b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), (a, b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float) and not isinstance(b, bool) and isinstance(b, (int, float)):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (a, b)
    else:
        assert a == b and type(a) is type(b), (a, b)


# --------------------------------------------------------------------------- random frames

_INTENTS = ["greet", "bye", "book", "nlu_fallback", None]
_TRUTHS = ["greet", "bye", "nlu_fallback", "other", None]
_CONFIDENCES = [None, 0.0, 0.05, 0.1, 0.3, 0.35, 0.55, 0.6, 0.95, 1.0]


@st.composite
def labelled_frames(draw):
    n_conv = draw(st.integers(1, 7))
    rows = []
    for c in range(n_conv):
        for _ in range(draw(st.integers(1, 5))):
            conf = draw(st.one_of(st.sampled_from(_CONFIDENCES), st.floats(0, 1, allow_nan=False)))
            rows.append({"conversation_id": f"c{c}", "speaker": draw(st.sampled_from(["user", "user", "bot"])),
                         "text": "x", "intent": draw(st.sampled_from(_INTENTS)),
                         "true_intent": draw(st.sampled_from(_TRUTHS)), "confidence": conf})
    frame = messages_frame(rows)
    shard_of = {f"c{c}": draw(st.integers(0, 3)) for c in range(n_conv)}
    return frame, shard_of


def split(frame: pd.DataFrame, shard_of: dict) -> list[pd.DataFrame]:
    bucket = frame["conversation_id"].map(shard_of)
    return [frame[bucket == b].reset_index(drop=True) for b in range(4)]  # some shards may be empty


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labelled_frames())
def test_combined_facts_of_shards_equal_the_facts_of_the_whole(case):
    frame, shard_of = case
    ctx = F.context_of(frame)
    whole = family_facts([frame], ctx)
    parts = family_facts(split(frame, shard_of), ctx)
    for name in intents_facts.TABLES:
        pd.testing.assert_frame_equal(parts[name], whole[name], check_exact=False, rtol=1e-9)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labelled_frames())
def test_the_section_from_facts_equals_todays_section_on_random_frames(case):
    frame, shard_of = case
    today = intents_cli.section_provider(frame)
    assert_same(sections_of(frame, split(frame, shard_of)), today)


def test_an_empty_shard_gives_every_table_with_the_columns_and_dtypes_of_a_full_one():
    frame, _ = _golden()
    ctx = F.context_of(frame)
    full = intents_facts.shard_facts(frame, ctx)
    empty = intents_facts.shard_facts(frame.iloc[0:0], ctx)
    unlabelled = intents_facts.shard_facts(frame.drop(columns=["true_intent"]), ctx)
    assert set(full) == set(empty) == set(unlabelled) == set(intents_facts.TABLES)
    for name in intents_facts.TABLES:
        assert len(empty[name]) == 0 and len(unlabelled[name]) == 0
        assert dict(empty[name].dtypes) == dict(full[name].dtypes) == dict(unlabelled[name].dtypes)


def test_no_intent_labels_means_no_section():
    frame, _ = _golden()
    for col in ("intent", "true_intent"):
        assert sections_of(frame.drop(columns=[col])) == {}
        assert intents_cli.section_provider(frame.drop(columns=[col])) is None


# --------------------------------------------------------------------------- golden, counted by hand


def _golden():
    rows = [
        {"conversation_id": "c1", "speaker": "user", "text": "hi", "intent": "greet", "true_intent": "greet",
         "confidence": 0.9},
        {"conversation_id": "c1", "speaker": "bot", "text": "hello"},
        {"conversation_id": "c1", "speaker": "user", "text": "bye", "intent": "bye", "true_intent": "greet",
         "confidence": 0.4},
        {"conversation_id": "c2", "speaker": "user", "text": "x", "intent": "bye", "true_intent": "bye",
         "confidence": 0.7},
        {"conversation_id": "c2", "speaker": "user", "text": "y", "intent": None, "true_intent": "bye",
         "confidence": None},
        {"conversation_id": "c3", "speaker": "user", "text": "z", "intent": "greet", "true_intent": None,
         "confidence": 0.2},
        {"conversation_id": "c3", "speaker": "user", "text": "oos", "intent": "greet",
         "true_intent": "nlu_fallback", "confidence": 0.55},
    ]
    frame = messages_frame(rows)
    return frame, {"c1": 0, "c2": 1, "c3": 1}


def test_golden_section_counted_by_hand():
    frame, shard_of = _golden()
    got = sections_of(frame, split(frame, shard_of))["intents"]
    # labelled (true -> predicted): greet->greet .9, greet->bye .4, bye->bye .7, bye->fallback (none),
    # fallback->greet .55; 2 of 5 right
    assert got["labelled_messages"] == 5 and got["accuracy"] == pytest.approx(0.4)
    assert got["accuracy_interval"] == pytest.approx(list(wilson_interval(2, 5)))
    # per intent: bye P=R=F1=1/2, greet P=R=F1=1/2, fallback 0
    assert got["per_intent"]["bye"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert got["per_intent"]["nlu_fallback"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert got["macro_f1"] == pytest.approx(1 / 3) and got["weighted_f1"] == pytest.approx(0.4)
    # MCC: t = p = (2, 2, 1), 2 correct of 5: (2*5 - 9) / sqrt(16 * 16)
    assert got["mcc"] == pytest.approx(1 / 16)
    # support ties (2, 2, 1), predicted ties (2, 2, 1): by name
    assert got["confusion"] == {"labels": ["bye", "greet", "nlu_fallback"],
                                "matrix": [[1, 0, 1], [1, 1, 0], [0, 1, 0]]}
    assert [(p["true_intent"], p["intent"], p["count"]) for p in got["top_confused_pairs"]] == [
        ("bye", "nlu_fallback", 1), ("greet", "bye", 1), ("nlu_fallback", "greet", 1)]
    # bins 9 (.9 right), 4 (.4 wrong), 7 (.7 right), 5 (.55 wrong): (.1 + .4 + .3 + .55) / 4
    assert got["expected_calibration_error"] == pytest.approx(0.3375)
    by_t = {row["threshold"]: row for row in got["thresholds"]}
    assert len(got["thresholds"]) == 21
    # 6 user messages; answered (not fallback): .9 .4 .7 .2 .55
    assert by_t[0.0]["coverage"] == pytest.approx(5 / 6)
    assert by_t[0.5]["coverage"] == pytest.approx(3 / 6) and by_t[0.6]["coverage"] == pytest.approx(2 / 6)
    assert by_t[0.5]["accuracy"] == pytest.approx(0.4) and by_t[0.5]["in_scope_accuracy"] == pytest.approx(0.5)
    assert by_t[0.5]["out_of_scope_recall"] == 0.0
    # at .6 the .55 out-of-scope message falls back: right
    assert by_t[0.6]["accuracy"] == pytest.approx(0.6) and by_t[0.6]["out_of_scope_recall"] == 1.0


def test_golden_section_equals_todays_section():
    frame, shard_of = _golden()
    today = intents_cli.section_provider(frame)
    for shards in ([frame], split(frame, shard_of), F.split_shards(frame, 5)):
        got = sections_of(frame, shards)
        assert_same(got, today)
        assert json.dumps(got["intents"]["confusion"]) == json.dumps(today["intents"]["confusion"])
