"""Intent recognition metrics (metrics/intents/__init__.py, metrics/core/stats.py, metrics/intents/charts.py,
metrics/intents/cli.py): hand-computed golden fixture, equality with scikit-learn on random
labels (Hypothesis), properties (shuffle invariance, empty input, no mutation), errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    classification_report,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
)

from conftest import messages_frame
from metrics import intents as I
from metrics.errors import ConfigError, InsufficientDataError
from metrics.core.stats import two_proportion_ztest, wilson_interval

FB = "nlu_fallback"

# The reference sklearn calls in these tests warn on single-label draws; our code does not.
pytestmark = pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")


# --------------------------------------------------------------------------- golden fixture
#
# 4 conversations, 11 user messages (10 labelled) + 1 bot message.  Pairs (true -> predicted,
# confidence), numbered as used in the comments below:
#   c1 (2024-01-01, ISO 2024-W01, model v1)
#     1 greet        -> greet         0.95  correct
#       (bot message, never counted)
#     2 order_status -> order_status  0.80  correct
#     3 cancel_order -> order_status  0.55  wrong
#   c2 (2024-01-02, W01, v1)
#     4 refund       -> refund        0.90  correct
#     5 nlu_fallback -> refund        0.70  wrong (out-of-scope answered)
#     6 nlu_fallback -> nlu_fallback  0.30  correct
#   c3 (2024-01-08, W02, v2)
#     7 greet        -> greet         0.40  correct
#     8 cancel_order -> nlu_fallback  0.20  wrong
#     - (unlabelled) -> order_status  0.85
#   c4 (2024-01-09, W02, v2)
#     9 refund       -> cancel_order  0.65  wrong
#    10 greet        -> greet         NaN   correct


def _golden() -> pd.DataFrame:
    rows = [
        ("c1", "2024-01-01T10:00:00Z", "user", "hi there", "greet", 0.95, "greet", "v1"),
        ("c1", "2024-01-01T10:00:05Z", "bot", "hello! how can I help?", None, None, None, "v1"),
        ("c1", "2024-01-01T10:00:20Z", "user", "where is my order", "order_status", 0.80, "order_status", "v1"),
        ("c1", "2024-01-01T10:01:00Z", "user", "cancel it", "order_status", 0.55, "cancel_order", "v1"),
        ("c2", "2024-01-02T09:00:00Z", "user", "refund please", "refund", 0.90, "refund", "v1"),
        ("c2", "2024-01-02T09:00:30Z", "user", "tell me a joke", "refund", 0.70, FB, "v1"),
        ("c2", "2024-01-02T09:01:00Z", "user", "asdf", FB, 0.30, FB, "v1"),
        ("c3", "2024-01-08T12:00:00Z", "user", "hello", "greet", 0.40, "greet", "v2"),
        ("c3", "2024-01-08T12:00:30Z", "user", "stop my order", FB, 0.20, "cancel_order", "v2"),
        ("c3", "2024-01-08T12:01:00Z", "user", "order status?", "order_status", 0.85, None, "v2"),
        ("c4", "2024-01-09T08:00:00Z", "user", "refund now", "cancel_order", 0.65, "refund", "v2"),
        ("c4", "2024-01-09T08:00:30Z", "user", "thanks", "greet", None, "greet", "v2"),
    ]
    keys = ("conversation_id", "timestamp", "speaker", "text", "intent", "confidence", "true_intent",
            "model_version")
    return messages_frame([dict(zip(keys, r)) for r in rows])


@pytest.fixture
def golden():
    return _golden()


def test_golden_report(golden):
    r = I.intent_report(golden)
    # 10 labelled user messages, 6 correct (1, 2, 4, 6, 7, 10) -> 0.6.
    assert (r.labelled_count, r.correct_count, r.accuracy) == (10, 6, 0.6)
    # Wilson 95 % for 6/10: z = 1.959964, centre = (0.6 + z^2/20) / (1 + z^2/10) = 0.572246,
    # half = z/(1 + z^2/10) * sqrt(0.024 + z^2/400) = 0.259574 -> (0.312674, 0.831820).
    assert r.accuracy_low == pytest.approx(0.312674, abs=1e-6)
    assert r.accuracy_high == pytest.approx(0.831820, abs=1e-6)
    # Per-intent F1 (see test_golden_per_intent): greet 1, order_status 2/3, cancel_order 0,
    # refund 0.5, nlu_fallback 0.5. Macro = 2.666667 / 5; weighted by support 3,1,2,2,2:
    # (3 + 0.666667 + 0 + 1 + 1) / 10.
    assert r.macro_f1 == pytest.approx(2.666667 / 5, abs=1e-6)
    assert r.weighted_f1 == pytest.approx(0.566667, abs=1e-6)
    # Multi-class MCC = (c*s - sum p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)) with
    # c=6, s=10, true counts t = 3,1,2,2,2, predicted counts p = 3,2,1,2,2:
    # sum p_k t_k = 9+2+2+4+4 = 21, sum p^2 = sum t^2 = 22 -> (60-21)/sqrt(78*78) = 0.5.
    assert r.mcc == pytest.approx(0.5, abs=1e-12)
    assert r.label_count == 5 and r.reliable is False and r.fallback_intent == FB


def test_golden_per_intent(golden):
    t = I.per_intent_table(golden).set_index("intent")
    # greet: predicted 3 (1,7,10) all right, support 3 -> P=R=F1=1.
    # order_status: predicted 2 (2,3), 1 right -> P 0.5; support 1 -> R 1; F1 = 2*.5*1/1.5.
    # cancel_order: predicted once (9), wrong -> P 0; support 2 (3,8) -> R 0; F1 0.
    # refund: predicted 2 (4,5), 1 right -> P .5; support 2 (4,9) -> R .5.
    # nlu_fallback: predicted 2 (6,8), 1 right -> P .5; support 2 (5,6) -> R .5.
    expected = {
        "greet": (1.0, 1.0, 1.0, 3),
        "order_status": (0.5, 1.0, 2 / 3, 1),
        "cancel_order": (0.0, 0.0, 0.0, 2),
        "refund": (0.5, 0.5, 0.5, 2),
        FB: (0.5, 0.5, 0.5, 2),
    }
    for intent, (p, r, f, s) in expected.items():
        row = t.loc[intent]
        assert (row["precision"], row["recall"], row["support"]) == pytest.approx((p, r, s), abs=1e-12)
        assert row["f1"] == pytest.approx(f, abs=1e-12)
    # Worst first: cancel_order (F1 0), then F1 0.5 by support desc then name, ...
    assert list(t.index) == ["cancel_order", FB, "refund", "order_status", "greet"]
    # cancel_order was predicted as nlu_fallback once (8) and as order_status once (3).
    assert t.loc["cancel_order", "confused_with"] == "nlu_fallback (1); order_status (1)"
    assert t.loc["greet", "confused_with"] == ""
    assert t.loc["order_status", "predicted_count"] == 2 and t.loc["order_status", "correct_count"] == 1


def test_golden_confusion(golden):
    c = I.confusion(golden)
    # Order by true support desc (greet 3; cancel/refund/fallback 2; order_status 1), ties by
    # predicted count desc (refund 2, nlu_fallback 2, cancel_order 1), then name.
    assert c.labels == ("greet", FB, "refund", "cancel_order", "order_status")
    assert c.counts.loc["cancel_order", "order_status"] == 1
    assert c.counts.loc["cancel_order", FB] == 1
    assert c.counts.loc["greet", "greet"] == 3
    assert int(c.counts.to_numpy().sum()) == 10
    assert c.rates.loc["cancel_order"].tolist() == [0.0, 0.5, 0.0, 0.0, 0.5]
    # top_n=2 keeps greet and nlu_fallback; rows 2,3,4,9 become other->other, 5 fallback->other,
    # 8 other->fallback.
    f = I.confusion(golden, top_n=2)
    assert f.labels == ("greet", FB, "other")
    assert f.counts.values.tolist() == [[3, 0, 0], [0, 1, 1], [0, 1, 4]]
    assert f.folded == ("cancel_order", "order_status", "refund")
    long = f.long()
    assert list(long.columns) == ["true_intent", "intent", "count", "row_rate"]
    assert long.loc[(long.true_intent == FB) & (long.intent == "other"), "row_rate"].item() == 0.5
    with pytest.raises(ConfigError, match="'greet'"):
        I.confusion(golden, top_n=2, other_label="greet")


def test_golden_pairs_and_drilldown(golden):
    pairs = I.top_confused_pairs(golden)
    # Four wrong pairs, each once; ties sorted by true then predicted name; share = 1 / support 2.
    assert pairs[["true_intent", "intent", "count"]].values.tolist() == [
        ["cancel_order", FB, 1], ["cancel_order", "order_status", 1], [FB, "refund", 1], ["refund", "cancel_order", 1]]
    assert pairs["rank"].tolist() == [1, 2, 3, 4] and pairs["share_of_true"].tolist() == [0.5] * 4
    assert len(I.top_confused_pairs(golden, limit=2)) == 2
    cell = I.pair_messages(golden, true_intent="cancel_order", intent="order_status")
    assert cell["text"].tolist() == ["cancel it"]
    f = I.confusion(golden, top_n=2)
    other = I.pair_messages(golden, true_intent="other", intent="other", folded=f.folded)
    assert sorted(other["text"]) == sorted(["where is my order", "cancel it", "refund please", "refund now"])


def test_golden_false_positives_negatives(golden):
    fp = I.false_positives(golden, threshold=0.6)
    # Wrong, not fallback, confidence >= 0.6: 5 (0.70) and 9 (0.65); 3 is below (0.55).
    assert fp["text"].tolist() == ["tell me a joke", "refund now"]
    assert list(fp.columns) == list(I.MESSAGE_COLUMNS)
    fn = I.false_negatives(golden, threshold=0.6)
    # True in-scope and (fallback or < 0.6): 8 (fallback, 0.20), 7 (0.40, right intent but too
    # unsure), 3 (0.55); least confident first.
    assert fn[["text", "reason"]].values.tolist() == [
        ["stop my order", "fallback"], ["hello", "below_threshold"], ["cancel it", "below_threshold"]]
    # At threshold 0 nothing is below: only the fallback prediction remains a false negative;
    # and every wrong non-fallback answer is a false positive (3, 5, 9).
    assert I.false_negatives(golden, threshold=0.0)["text"].tolist() == ["stop my order"]
    assert len(I.false_positives(golden, threshold=0.0)) == 3


def test_golden_confidence(golden):
    h = I.confidence_histogram(golden)
    assert len(h) == 20
    counts = {(round(r.bin_left, 1), r.outcome): r.message_count for r in h.itertuples()}
    # correct: .95 (bin .9), .80 (.8), .90 (.9), .30 (.3), .40 (.4); NaN (10) left out.
    # incorrect: .55 (.5), .70 (.7), .20 (.2), .65 (.6).
    assert counts[(0.9, "correct")] == 2 and counts[(0.8, "correct")] == 1
    assert counts[(0.3, "correct")] == 1 and counts[(0.4, "correct")] == 1
    assert [counts[(b, "incorrect")] for b in (0.2, 0.5, 0.6, 0.7)] == [1, 1, 1, 1]
    assert h["message_count"].sum() == 9
    r = I.reliability_curve(golden, bins=2)
    # [0, .5): .30 ok, .40 ok, .20 wrong -> n 3, mean .3, acc 2/3.
    # [.5, 1]: .95 .80 .55 .90 .70 .65 -> n 6, mean 4.55/6 = .758333, acc 3/6.
    # ECE = 3/9 * |2/3 - .3| + 6/9 * |.5 - .758333| = .122222 + .172222 = .294444.
    assert r.table["message_count"].tolist() == [3, 6]
    assert r.table["mean_confidence"].tolist() == pytest.approx([0.3, 4.55 / 6])
    assert r.table["accuracy"].tolist() == pytest.approx([2 / 3, 0.5])
    assert r.expected_calibration_error == pytest.approx(0.294444, abs=1e-6)
    assert r.message_count == 9


def test_golden_thresholds(golden):
    t = I.threshold_table(golden, thresholds=[0.6, 0.0]).set_index("threshold")
    # t = 0: nothing changes; coverage = 11 user messages minus the 2 fallback predictions = 9/11.
    assert t.loc[0.0, "coverage"] == pytest.approx(9 / 11)
    assert t.loc[0.0, "accuracy"] == pytest.approx(0.6)
    assert t.loc[0.0, "escalation_rate"] == 0.0
    # t = 0.6: 3 (.55) and 7 (.40) become fallback; effective correct: 1, 2, 4, 6, 10 -> 5/10.
    assert t.loc[0.6, "accuracy"] == pytest.approx(0.5)
    # in scope (true != fallback: 1,2,3,4,7,8,9,10): right 1,2,4,10 -> 4/8.
    assert t.loc[0.6, "in_scope_accuracy"] == pytest.approx(0.5)
    # out of scope (5, 6): only 6 is effectively fallback -> 1/2.
    assert t.loc[0.6, "out_of_scope_recall"] == pytest.approx(0.5)
    # coverage: fallback after the threshold = 3, 6, 7, 8 of 11 user messages -> 7/11.
    assert t.loc[0.6, "coverage"] == pytest.approx(7 / 11)
    # Weighted F1: greet P1 R2/3 F.8 (s3); order_status 1 (s1); cancel 0 (s2); refund .5 (s2);
    # fallback predicted 3,6,7,8 -> P .25, R .5, F1 1/3 (s2) -> (2.4 + 1 + 0 + 1 + 2/3) / 10.
    assert t.loc[0.6, "weighted_f1"] == pytest.approx(0.506667, abs=1e-6)
    # Conversations with a user message below .6: c1 (.55), c2 (.30), c3 (.40) of 4; c4 has
    # .65 and a missing confidence (never below) -> 3/4.
    assert t.loc[0.6, "escalation_rate"] == 0.75
    assert I.escalation_rate(golden, threshold=0.6) == 0.75
    assert list(I.threshold_table(golden).columns) == [
        "threshold", "coverage", "accuracy", "weighted_f1", "in_scope_accuracy", "out_of_scope_recall", "mcc",
        "escalation_rate"]
    assert I.threshold_table(golden)["threshold"].tolist() == list(I.DEFAULT_THRESHOLDS)


def test_threshold_boundary_is_kept():
    # A prediction exactly at the threshold is kept (>=), as in the HINT3 tables.
    m = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "x", "intent": "a",
                         "true_intent": "a", "confidence": 0.3}])
    t = I.threshold_table(m, thresholds=[0.3])
    assert t["accuracy"].item() == 1.0 and t["coverage"].item() == 1.0
    assert I.false_negatives(m, threshold=0.3).empty


def test_golden_drift(golden):
    d = I.intent_drift(golden, min_support=1)
    # W01: c1+c2, 6 user messages, all labelled, 4 right; W02: c3+c4, 5 user messages, 4 labelled, 2 right.
    assert d.weekly[["week", "message_count", "labelled_count", "correct_count"]].values.tolist() == [
        ["2024-W01", 6, 6, 4], ["2024-W02", 5, 4, 2]]
    assert d.weekly["accuracy"].tolist() == pytest.approx([4 / 6, 0.5])
    assert d.weekly["week_start"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-01", "2024-01-08"]
    mix = d.mix.set_index(["week", "intent"])["share"]
    assert mix[("2024-W01", "refund")] == pytest.approx(2 / 6)
    assert mix[("2024-W02", "greet")] == pytest.approx(2 / 5)
    # Moves W01 -> W02: refund accuracy 1/1 -> 0/1 (-1); refund share 2/6 -> 0 (-1/3); greet share
    # 1/6 -> 2/5 (+.233333); cancel_order share 0 -> 1/5; order_status 2/6 -> 1/5; fallback 1/6 -> 1/5.
    # greet / cancel_order accuracy do not move (1 -> 1, 0 -> 0); order_status and fallback have
    # one labelled week only.
    got = d.movers[["intent", "measure", "previous_week", "week"]].values.tolist()
    assert got[0] == ["refund", "accuracy", "2024-W01", "2024-W02"]
    assert d.movers["change"].tolist() == pytest.approx([-1.0, -1 / 3, 7 / 30, 0.2, -2 / 15, 1 / 30])
    assert d.movers["intent"].tolist()[1:] == ["refund", "greet", "cancel_order", "order_status", FB]
    # min_support=2 removes every accuracy move (each intent-week has <= 1... except greet W02).
    assert "accuracy" not in set(I.intent_drift(golden, min_support=2).movers["measure"])
    assert len(I.intent_drift(golden, min_support=1, limit=2).movers) == 2


def test_golden_model_comparison(golden):
    c = I.model_comparison(golden)
    assert c.models == ("v1", "v2") and c.baseline == "v1"
    o = c.overall.iloc[0]
    # v1: 6 labelled, 4 right; v2: 4 labelled, 2 right. Pooled p = 6/10, se = sqrt(.24 (1/4 + 1/6))
    # = sqrt(.1); z = (.5 - 2/3) / .316228 = -0.527046; p = erfc(|z| / sqrt 2) = 0.598161.
    assert (o.baseline_support, o.baseline_correct, o.model_support, o.model_correct) == (6, 4, 4, 2)
    assert o.difference == pytest.approx(-1 / 6)
    assert o.z == pytest.approx(-0.527046, abs=1e-6) and o.p_value == pytest.approx(0.598161, abs=1e-6)
    assert bool(o.too_small) is True  # 6 and 4 < 30
    per = c.per_intent.set_index("intent")
    # greet: v1 1/1, v2 2/2 -> same (z 0, p 1). refund: v1 1/1, v2 0/1. order_status only in v1.
    assert per.loc["greet", "difference"] == 0.0 and per.loc["greet", "p_value"] == 1.0
    assert per.loc["refund", "difference"] == -1.0
    assert per.loc["order_status", "model_support"] == 0 and math.isnan(per.loc["order_status", "p_value"])
    assert per["too_small"].all()
    assert not I.model_comparison(golden, min_support=1).overall["too_small"].item()
    assert I.model_comparison(golden, baseline="v2").overall["difference"].item() == pytest.approx(1 / 6)
    with pytest.raises(ConfigError, match="'v9'"):
        I.model_comparison(golden, baseline="v9")
    with pytest.raises(InsufficientDataError):
        I.model_comparison(golden.assign(model_version="v1"))


def test_only_user_labelled_rows_count(golden):
    lab = I.labelled_messages(golden)
    assert len(lab) == 10 and "hello! how can I help?" not in set(lab["text"])
    # A missing predicted intent counts as the fallback.
    m = golden.copy()
    m.loc[m["text"] == "asdf", "intent"] = pd.NA
    assert I.intent_report(m).correct_count == 6


def test_reviewer_labels_overlay(golden):
    keys = golden["conversation_id"] + "/" + golden["row"].astype(str)
    # Reviewer says: "order status?" (c3, unlabelled) really is order_status -> 11 labelled, 7 right;
    # "tell me a joke" relabelled refund -> now right too (8 of 11); a missing label is ignored;
    # an unknown key is ignored; for a repeated key the last label wins.
    row_of = dict(zip(golden["text"], keys))
    labels = pd.DataFrame({
        "message_key": [row_of["order status?"], row_of["tell me a joke"], row_of["asdf"], "nope",
                        row_of["hi there"], row_of["hi there"]],
        "true_intent": ["order_status", "refund", None, "greet", "bye", "greet"],
    })
    before = golden.copy()
    merged = I.apply_labels(golden, labels, keys=keys)
    pd.testing.assert_frame_equal(golden, before)
    r = I.intent_report(merged)
    assert (r.labelled_count, r.correct_count) == (11, 8)
    assert merged.loc[merged["text"] == "asdf", "true_intent"].item() == FB
    assert merged["true_intent"].dtype == golden["true_intent"].dtype
    # No true_intent column yet: it is created from the labels alone.
    only = I.apply_labels(golden.drop(columns="true_intent"), labels, keys=keys)
    assert I.intent_report(only).labelled_count == 3
    with pytest.raises(ConfigError, match="message_key"):
        I.apply_labels(golden, labels.drop(columns="message_key"), keys=keys)
    with pytest.raises(ConfigError, match="3"):
        I.apply_labels(golden, labels, keys=keys.head(3))


# --------------------------------------------------------------------------- stats


def test_wilson_interval_golden():
    # 8/10: centre (0.8 + 0.192073) / 1.384146 = 0.716741; half 1.416012 * sqrt(.016 + .009604) = 0.226578.
    assert wilson_interval(8, 10) == pytest.approx((0.490162, 0.943318), abs=1e-6)
    # 0/10: low is 0, high = z^2/n / (1 + z^2/n) = 0.384146 / 1.384146 = 0.277533.
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.277533), abs=1e-6)
    assert wilson_interval(10, 10)[1] == 1.0
    low, high = wilson_interval(8, 10, confidence=0.5)
    assert 0.490162 < low < 0.8 < high < 0.943318
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    for bad in ((11, 10), (-1, 10), (1.5, 10)):
        with pytest.raises(ConfigError):
            wilson_interval(*bad)
    with pytest.raises(ConfigError, match="1.5"):
        wilson_interval(1, 2, confidence=1.5)


def test_two_proportion_ztest_golden():
    # 45/50 vs 30/50: pooled .75, se = sqrt(.1875 * .04) = .0866025, z = .3 / .0866025 = 3.464102.
    z, p = two_proportion_ztest(45, 50, 30, 50)
    assert z == pytest.approx(3.464102, abs=1e-6) and p == pytest.approx(0.000532, abs=1e-6)
    assert two_proportion_ztest(30, 50, 45, 50)[0] == pytest.approx(-z)
    assert two_proportion_ztest(0, 3, 0, 4) == (0.0, 1.0)
    assert all(math.isnan(v) for v in two_proportion_ztest(0, 0, 1, 2))


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 500), data=st.data())
def test_wilson_contains_estimate(n, data):
    k = data.draw(st.integers(0, n))
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0


# --------------------------------------------------------------------------- sklearn equality (Hypothesis)

LABELS = ["a", "b", "c", FB]


@st.composite
def labelled_frames(draw, min_size=1):
    n = draw(st.integers(min_size, 40))
    true = draw(st.lists(st.sampled_from(LABELS), min_size=n, max_size=n))
    pred = draw(st.lists(st.sampled_from(LABELS), min_size=n, max_size=n))
    conf = draw(st.lists(st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.3, 0.6, 1.0])), min_size=n, max_size=n))
    conv = draw(st.lists(st.sampled_from(["c1", "c2", "c3", "c4", "c5"]), min_size=n, max_size=n))
    rows = [{"conversation_id": cv, "speaker": "user", "text": f"m{i}", "intent": p, "true_intent": t,
             "confidence": c, "timestamp": f"2024-01-{1 + i % 20:02d}T10:00:00Z"}
            for i, (t, p, c, cv) in enumerate(zip(true, pred, conf, conv))]
    return messages_frame(rows)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labelled_frames())
def test_equal_to_sklearn(m):
    y_true = m["true_intent"].astype(str).to_numpy(dtype=object)
    y_pred = m["intent"].astype(str).to_numpy(dtype=object)
    r = I.intent_report(m)
    assert r.accuracy == pytest.approx(float((y_true == y_pred).mean()), abs=1e-12)
    assert r.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)
    assert r.weighted_f1 == pytest.approx(f1_score(y_true, y_pred, average="weighted", zero_division=0), abs=1e-12)
    assert r.mcc == pytest.approx(matthews_corrcoef(y_true, y_pred), abs=1e-12)
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    table = I.per_intent_table(m).set_index("intent")
    labels = sorted(set(y_true) | set(y_pred))
    assert sorted(table.index) == labels
    for label in labels:
        for ours, theirs in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score"),
                             ("support", "support")):
            assert table.loc[label, ours] == pytest.approx(report[label][theirs], abs=1e-12)
    c = I.confusion(m)
    expected = confusion_matrix(y_true, y_pred, labels=list(c.labels))
    assert (c.counts.to_numpy() == expected).all()
    assert np.allclose(c.rates.to_numpy(), confusion_matrix(y_true, y_pred, labels=list(c.labels), normalize="true"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labelled_frames(), st.sampled_from([0.0, 0.3, 0.6, 1.0, 0.45]))
def test_threshold_row_equals_direct_computation(m, t):
    y_true = m["true_intent"].astype(str).to_numpy(dtype=object)
    conf = m["confidence"].to_numpy(dtype=float)
    eff = np.where(conf >= t, m["intent"].astype(str).to_numpy(dtype=object), FB).astype(object)
    row = I.threshold_table(m, thresholds=[t]).iloc[0]
    assert row["accuracy"] == pytest.approx((eff == y_true).mean(), abs=1e-12)
    assert row["weighted_f1"] == pytest.approx(f1_score(y_true, eff, average="weighted", zero_division=0), abs=1e-12)
    assert row["mcc"] == pytest.approx(matthews_corrcoef(y_true, eff), abs=1e-12)
    assert row["coverage"] == pytest.approx((eff != FB).mean(), abs=1e-12)
    ins = y_true != FB
    if ins.any():
        assert row["in_scope_accuracy"] == pytest.approx((eff[ins] == y_true[ins]).mean(), abs=1e-12)
    else:
        assert math.isnan(row["in_scope_accuracy"])
    if (~ins).any():
        assert row["out_of_scope_recall"] == pytest.approx((eff[~ins] == FB).mean(), abs=1e-12)
    else:
        assert math.isnan(row["out_of_scope_recall"])
    esc = pd.Series(conf < t).groupby(m["conversation_id"].to_numpy()).any()
    assert row["escalation_rate"] == pytest.approx(esc.mean(), abs=1e-12)


# --------------------------------------------------------------------------- plain-Python references
#
# Issue 10 rewrote confusion / pairs / drift / model A/B on integer codes and np.bincount. These
# tests recompute them with Counters over the plain strings, straight from the docstring
# definitions, on messy frames: bot rows, missing predictions (-> fallback), unlabelled
# messages, missing model versions, several ISO weeks.


@st.composite
def messy_frames(draw):
    n = draw(st.integers(1, 40))
    pick = lambda values: draw(st.lists(st.sampled_from(values), min_size=n, max_size=n))  # noqa: E731
    days = draw(st.lists(st.integers(0, 30), min_size=n, max_size=n))
    rows = [{"conversation_id": cv, "speaker": sp, "text": f"m{i}", "intent": p, "true_intent": t,
             "confidence": c, "model_version": mv,
             "timestamp": (pd.Timestamp("2023-12-28T10:00:00Z") + pd.Timedelta(days=d)).isoformat()}
            for i, (cv, sp, p, t, c, mv, d) in enumerate(zip(
                pick(["c1", "c2", "c3", "c4"]), pick(["user", "user", "user", "bot"]), pick(LABELS + [None]),
                pick(LABELS + [None, None]), pick([0.1, 0.5, 0.9, None]), pick(["v1", "v2", None]), days))]
    return messages_frame(rows)


def _plain_users(m: pd.DataFrame) -> list[dict]:
    """User messages as dicts with the prediction as the docstrings define it (missing -> fallback)."""
    out = []
    for r in m.to_dict("records"):
        if r["speaker"] == "user":
            r["pred"] = FB if pd.isna(r["intent"]) else r["intent"]
            r["true"] = None if pd.isna(r["true_intent"]) else r["true_intent"]
            out.append(r)
    return out


def _iso(ts) -> str:
    year, week, _ = ts.isocalendar()
    return f"{year}-W{week:02d}"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messy_frames(), st.integers(1, 3))
def test_confusion_and_pairs_equal_plain_counts(m, top_n):
    from collections import Counter

    lab = [r for r in _plain_users(m) if r["true"] is not None]
    pairs = Counter((r["true"], r["pred"]) for r in lab)
    support = Counter(r["true"] for r in lab)
    predicted = Counter(r["pred"] for r in lab)
    # Top confused pairs: wrong pairs, count desc, then names.
    wrong = sorted(((-n, t, p) for (t, p), n in pairs.items() if t != p))
    got = I.top_confused_pairs(m, limit=100)
    assert got[["true_intent", "intent", "count"]].values.tolist() == [[t, p, -n] for n, t, p in wrong]
    assert got["share_of_true"].tolist() == pytest.approx([-n / support[t] for n, t, p in wrong])
    # confused_with: the two most frequent wrong predictions of each true intent.
    table = I.per_intent_table(m).set_index("intent")
    for label in table.index:
        mine = [(n, p) for n, t, p in wrong if t == label][:2]
        assert table.loc[label, "confused_with"] == "; ".join(f"{p} ({-n})" for n, p in mine)
        assert table.loc[label, "predicted_count"] == predicted[label]
        assert table.loc[label, "correct_count"] == pairs[(label, label)]
    # Confusion with folding: order by support desc, predicted desc, name; the rest -> "other".
    labels = sorted(set(support) | set(predicted), key=lambda x: (-support[x], -predicted[x], x))
    c = I.confusion(m, top_n=top_n)
    keep = labels[:top_n]
    folded = sorted(labels[top_n:])
    assert c.folded == tuple(folded)
    assert c.labels == tuple(keep + (["other"] if folded else []))
    fold = lambda x: x if x in keep else "other"  # noqa: E731
    folded_pairs = Counter((fold(t), fold(p)) for (t, p), n in pairs.items() for _ in range(n))
    assert c.counts.to_numpy().tolist() == [[folded_pairs[(t, p)] for p in c.labels] for t in c.labels]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messy_frames(), st.integers(1, 3))
def test_drift_equals_plain_counts(m, min_support):
    from collections import Counter

    users = [r for r in _plain_users(m) if not pd.isna(r["timestamp"])]
    for r in users:
        r["week"] = _iso(r["timestamp"])
    weeks = sorted({r["week"] for r in users})
    d = I.intent_drift(m, min_support=min_support, limit=100)
    size = Counter(r["week"] for r in users)
    labelled = Counter(r["week"] for r in users if r["true"] is not None)
    correct = Counter(r["week"] for r in users if r["true"] is not None and r["true"] == r["pred"])
    assert d.weekly[["week", "message_count", "labelled_count", "correct_count"]].values.tolist() == [
        [w, size[w], labelled[w], correct[w]] for w in weeks]
    mondays = {r["week"]: (r["timestamp"].normalize() - pd.Timedelta(days=r["timestamp"].day_of_week))
               for r in users}
    assert d.weekly["week_start"].tolist() == [mondays[w] for w in weeks]
    mix = Counter((r["week"], r["pred"]) for r in users)
    assert d.mix[["week", "intent", "message_count"]].values.tolist() == [
        [w, i, n] for (w, i), n in sorted(mix.items())]
    assert d.mix["share"].tolist() == pytest.approx([n / size[w] for (w, _), n in sorted(mix.items())])
    # Movers, straight from the definition.
    moves = []

    def largest(intent, measure, order, values):
        steps = [(abs(b - a), k) for k, (a, b) in enumerate(zip(values, values[1:]))]
        if steps:
            best = max(steps, key=lambda x: (x[0], -x[1]))[1]  # the earliest of equal moves
            if values[best + 1] != values[best]:
                moves.append((intent, measure, order[best], order[best + 1], values[best + 1] - values[best]))

    for intent in sorted({r["pred"] for r in users}):
        largest(intent, "share", weeks, [mix[(w, intent)] / size[w] for w in weeks])
    per = Counter((r["true"], r["week"]) for r in users if r["true"] is not None)
    ok = Counter((r["true"], r["week"]) for r in users if r["true"] is not None and r["true"] == r["pred"])
    for intent in sorted({t for t, _ in per}):
        order = [w for w in weeks if per[(intent, w)] >= min_support]
        largest(intent, "accuracy", order, [ok[(intent, w)] / per[(intent, w)] for w in order])
    moves.sort(key=lambda x: (-abs(x[4]), x[0], x[1]))
    got = d.movers
    assert got[["intent", "measure", "previous_week", "week"]].values.tolist() == [list(x[:4]) for x in moves]
    assert got["change"].tolist() == pytest.approx([x[4] for x in moves])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messy_frames())
def test_model_comparison_equals_plain_counts(m):
    from collections import Counter

    lab = [r for r in _plain_users(m) if r["true"] is not None and not pd.isna(r["model_version"])]
    models = sorted({r["model_version"] for r in lab})
    if len(models) < 2:
        with pytest.raises(InsufficientDataError):
            I.model_comparison(m, min_support=1)
        return
    c = I.model_comparison(m, min_support=2)
    n = Counter((r["model_version"], r["true"]) for r in lab)
    ok = Counter((r["model_version"], r["true"]) for r in lab if r["true"] == r["pred"])
    base = models[0]
    expected = {}
    for model in models[1:]:
        for intent in sorted({t for (mv, t) in n if mv in (base, model)}):
            expected[(model, intent)] = [n[(base, intent)], ok[(base, intent)], n[(model, intent)],
                                         ok[(model, intent)]]
    got = {(r["model"], r["intent"]): [r["baseline_support"], r["baseline_correct"], r["model_support"],
                                       r["model_correct"]] for r in c.per_intent.to_dict("records")}
    assert got == expected and len(c.per_intent) == len(expected)
    totals = {mv: [sum(v for (x, _), v in n.items() if x == mv), sum(v for (x, _), v in ok.items() if x == mv)]
              for mv in models}
    assert c.overall[["model", "baseline_support", "baseline_correct", "model_support", "model_correct"]
                     ].values.tolist() == [[mv, *totals[base], *totals[mv]] for mv in models[1:]]


# --------------------------------------------------------------------------- properties


def _everything(m: pd.DataFrame) -> dict:
    return {
        "report": I.intent_report(m),
        "per_intent": I.per_intent_table(m),
        "confusion": I.confusion(m, top_n=2).long(),
        "pairs": I.top_confused_pairs(m),
        "fp": I.false_positives(m).drop(columns=["row"]),
        "fn": I.false_negatives(m).drop(columns=["row"]),
        "hist": I.confidence_histogram(m),
        "rel": I.reliability_curve(m).table,
        "thr": I.threshold_table(m, thresholds=[0.0, 0.5, 0.9]),
        "weekly": I.intent_drift(m, min_support=1).weekly,
        "mix": I.intent_drift(m, min_support=1).mix,
    }


def _assert_same(a: dict, b: dict) -> None:
    for key in a:
        if isinstance(a[key], pd.DataFrame):
            pd.testing.assert_frame_equal(a[key], b[key], check_exact=False, rtol=1e-12, atol=1e-12, obj=key)
        else:
            for name, x in vars(a[key]).items():
                y = getattr(b[key], name)
                assert x == pytest.approx(y, abs=1e-12, nan_ok=True), (key, name)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labelled_frames(min_size=2), st.randoms(use_true_random=False))
def test_shuffle_invariance(m, rnd):
    order = list(range(len(m)))
    rnd.shuffle(order)
    shuffled = m.iloc[order].reset_index(drop=True)
    # Same messages, so ties between equal sort keys are broken by (conversation_id, row):
    # drop 'row' from the message lists only (it is the same per message, order is what we test).
    _assert_same(_everything(m), _everything(shuffled))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labelled_frames())
def test_inputs_never_mutated(m):
    before = m.copy()
    _everything(m)
    I.model_comparison(m.assign(model_version=np.where(np.arange(len(m)) % 2, "v1", "v2")), min_support=1) \
        if len(m) > 1 else None
    I.pair_messages(m, true_intent="a", intent="b")
    pd.testing.assert_frame_equal(m, before)


def test_golden_not_mutated(golden):
    before = golden.copy()
    _everything(golden)
    I.model_comparison(golden)
    I.escalation_rate(golden)
    pd.testing.assert_frame_equal(golden, before)


def test_empty_input_documented_results(golden):
    empty = golden.iloc[0:0]
    r = I.intent_report(empty)
    assert r.labelled_count == 0 and r.correct_count == 0 and r.reliable is False
    assert all(math.isnan(v) for v in (r.accuracy, r.accuracy_low, r.accuracy_high, r.macro_f1, r.weighted_f1, r.mcc))
    assert I.per_intent_table(empty).empty and list(I.per_intent_table(empty).columns) == [
        "intent", "precision", "recall", "f1", "support", "predicted_count", "correct_count", "confused_with"]
    c = I.confusion(empty)
    assert c.labels == () and c.counts.shape == (0, 0) and c.long().empty
    assert I.top_confused_pairs(empty).empty
    assert I.false_positives(empty).empty and list(I.false_positives(empty).columns) == list(I.MESSAGE_COLUMNS)
    assert I.false_negatives(empty).empty
    h = I.confidence_histogram(empty)
    assert len(h) == 20 and h["message_count"].sum() == 0
    rel = I.reliability_curve(empty)
    assert math.isnan(rel.expected_calibration_error) and rel.table["message_count"].sum() == 0
    t = I.threshold_table(empty, thresholds=[0.5])
    assert t.drop(columns="threshold").isna().all(axis=None)
    assert math.isnan(I.escalation_rate(empty))
    # Labelled subset empty but user messages present: coverage and escalation still computed.
    unlabelled = golden.assign(true_intent=pd.Series(pd.NA, index=golden.index, dtype="str"))
    t = I.threshold_table(unlabelled, thresholds=[0.6]).iloc[0]
    assert t["coverage"] == pytest.approx(7 / 11) and math.isnan(t["accuracy"])
    # Timestamps but no user message: empty drift frames with their documented columns.
    bots = golden[golden["speaker"] == "bot"]
    d = I.intent_drift(bots)
    assert d.weekly.empty and d.mix.empty and d.movers.empty
    assert list(d.weekly.columns) == ["week", "week_start", "message_count", "labelled_count", "correct_count",
                                      "accuracy"]
    assert list(d.movers.columns) == ["intent", "measure", "previous_week", "week", "before", "after", "change"]
    # Drift of an empty frame: no timestamps -> InsufficientDataError (documented).
    with pytest.raises(InsufficientDataError, match="timestamps"):
        I.intent_drift(empty)


def test_missing_columns_and_bad_options(golden):
    with pytest.raises(InsufficientDataError, match="true_intent"):
        I.intent_report(golden.drop(columns="true_intent"))
    with pytest.raises(InsufficientDataError, match="intent"):
        I.threshold_table(golden.drop(columns="intent"))
    with pytest.raises(InsufficientDataError, match="model_version"):
        I.model_comparison(golden.drop(columns="model_version"))
    with pytest.raises(InsufficientDataError, match="timestamps"):
        I.intent_drift(golden.assign(timestamp=pd.NaT))
    with pytest.raises(ConfigError, match="1.5"):
        I.false_positives(golden, threshold=1.5)
    with pytest.raises(ConfigError, match="'x'"):
        I.threshold_table(golden, thresholds=[0.1, "x"])
    with pytest.raises(ConfigError, match="''"):
        I.intent_report(golden, fallback_intent="")
    with pytest.raises(ConfigError, match="0"):
        I.confusion(golden, top_n=0)
    with pytest.raises(ConfigError, match="-1"):
        I.confidence_histogram(golden, bins=-1)
    assert I.has_intent_labels(golden) and not I.has_intent_labels(golden.drop(columns="true_intent"))


def test_suggest_fallback_intent(golden):
    assert I.suggest_fallback_intent(golden) == FB
    renamed = golden.replace({"intent": {FB: "oos"}, "true_intent": {FB: "oos"}})
    assert I.suggest_fallback_intent(renamed) == "oos"
    # Only a label uses it: still found. Neither column: the default.
    assert I.suggest_fallback_intent(pd.DataFrame({"true_intent": ["NO_NODES_DETECTED"]})) == "NO_NODES_DETECTED"
    assert I.suggest_fallback_intent(golden[["text"]]) == FB


def test_fallback_name_is_configurable(golden):
    renamed = golden.replace({"intent": {FB: "oos"}, "true_intent": {FB: "oos"}})
    a = I.threshold_table(golden, thresholds=[0.6])
    b = I.threshold_table(renamed, thresholds=[0.6], fallback_intent="oos")
    pd.testing.assert_frame_equal(a, b)
    # With the wrong name, nothing is out of scope: the low-confidence fallback label is "nlu_fallback",
    # which no true label uses, so out-of-scope recall is undefined.
    c = I.threshold_table(renamed, thresholds=[0.6])
    assert math.isnan(c["out_of_scope_recall"].item())


# --------------------------------------------------------------------------- charts


def test_charts_build(golden):
    from metrics.intents import charts as C

    spec = C.confusion_heatmap(I.confusion(golden)).to_dict()
    param = spec["params"][0]
    assert param["name"] == "cell" and param["select"]["fields"] == ["true_intent", "intent"]
    t = I.threshold_table(golden)
    tspec = C.threshold_chart(t, threshold=0.6).to_dict()
    rule = [layer for layer in tspec["layer"] if layer["mark"]["type"] == "rule"][0]
    rule_data = tspec["datasets"][rule["data"]["name"]]
    assert rule_data == [{"threshold": 0.6}]
    assert C.reliability_chart(I.reliability_curve(golden)).to_dict()["layer"][1]["mark"]["type"] == "line"
    assert C.confidence_histogram_chart(I.confidence_histogram(golden)).to_dict()["mark"]["type"] == "bar"
    d = I.intent_drift(golden, min_support=1)
    assert C.weekly_accuracy_chart(d).to_dict()["mark"]["type"] == "line"
    assert set(C.intent_mix_chart(d, top_n=2).data["intent"]) == {"greet", "order_status", "other"}
    assert C.model_comparison_chart(I.model_comparison(golden).per_intent).to_dict()["mark"]["type"] == "bar"
    with pytest.raises(ConfigError):
        C.confusion_heatmap(I.confusion(golden), value="nope")


# --------------------------------------------------------------------------- CLI


def _cli(monkeypatch, argv):
    import metrics.cli as cli

    if "metrics.intents.cli" not in cli.SUBCOMMANDS:
        monkeypatch.setattr(cli, "SUBCOMMANDS", [*cli.SUBCOMMANDS, "metrics.intents.cli"])
    return cli.main(argv)


def test_cli_json(tmp_path, monkeypatch, capsys):
    csv = tmp_path / "nlu.csv"
    # 4 utterances (one conversation each): 3 right, 1 wrong (b predicted as a at 0.4).
    csv.write_text("sentence,label,predicted_node,predicted_node_score\n"
                   "hi,a,a,0.9\nyo,a,a,0.8\nhmm,b,a,0.4\nok,b,b,0.7\n", encoding="utf-8")
    rc = _cli(monkeypatch, ["intents", str(csv), "--thresholds", "0.5", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["labelled_messages"] == 4 and out["accuracy"] == 0.75
    assert set(out) >= {"labelled_messages", "accuracy", "macro_f1", "weighted_f1", "mcc", "per_intent",
                        "confusion", "top_confused_pairs", "expected_calibration_error", "thresholds"}
    # a: predicted 3 (2 right) -> P 2/3, R 1; b: predicted 1 right -> P 1, R .5.
    assert out["per_intent"]["a"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert out["confusion"] == {"labels": ["a", "b"], "matrix": [[2, 0], [1, 1]]}
    assert out["top_confused_pairs"] == [{"true_intent": "b", "intent": "a", "count": 1}]
    # At 0.5 "hmm" (0.4) becomes nlu_fallback: coverage 3/4, accuracy still 3/4 (it was wrong anyway).
    assert out["thresholds"] == [pytest.approx({"threshold": 0.5, "coverage": 0.75, "accuracy": 0.75,
                                                "weighted_f1": out["thresholds"][0]["weighted_f1"],
                                                "in_scope_accuracy": 0.75, "out_of_scope_recall": None,
                                                "mcc": out["thresholds"][0]["mcc"]})]
    # ECE (10 bins): .9 ok, .8 ok, .4 wrong, .7 ok -> each bin gap: .1, .2, .4, .3 -> mean .25.
    assert out["expected_calibration_error"] == pytest.approx(0.25)


def test_cli_errors(tmp_path, monkeypatch, capsys):
    csv = tmp_path / "plain.csv"
    csv.write_text("conversation_id,speaker,text\n1,user,hi\n", encoding="utf-8")
    assert _cli(monkeypatch, ["intents", str(csv), "--format", "json"]) == 2
    assert "true_intent" in capsys.readouterr().err
    assert _cli(monkeypatch, ["intents", str(csv), "--thresholds", "0.2,7"]) == 2
    assert "'7'" in capsys.readouterr().err


def test_summary_section(golden):
    from metrics.intents.cli import section_provider, summary_section

    assert summary_section(golden.drop(columns="true_intent")) is None
    s = summary_section(golden)
    assert s["labelled_messages"] == 10 and s["mcc"] == pytest.approx(0.5)
    assert len(s["thresholds"]) == len(I.DEFAULT_THRESHOLDS)
    assert section_provider(golden, None)["intents"] == s
    json.dumps(s)  # JSON-ready
