"""metrics/audit/__init__.py: sampling strategies, reviewer assignment, review validation and the results
(means, patterns, weighted kappa, bias, training examples, automated vs human).

Golden values are computed by hand in the comments."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import messages_frame
from metrics import audit as A
from metrics.errors import ConfigError, InsufficientDataError
from metrics.core.rollup import conversation_rollup


# --------------------------------------------------------------------------- fixtures

def _candidates(n: int = 20) -> pd.DataFrame:
    """n conversations; intents cycle a, a, b, c; every 5th is negative, every 7th escalated."""
    ids = [f"c{i:03d}" for i in range(n)]
    return pd.DataFrame({
        "conversation_id": ids,
        "started_at": pd.date_range("2026-08-01", periods=n, freq="D", tz="UTC"),
        "intent": [("a", "a", "b", "c")[i % 4] for i in range(n)],
        "topic": ["billing" if i % 2 else "orders" for i in range(n)],
        "negative": [i % 5 == 0 for i in range(n)],
        "escalated": [i % 7 == 0 for i in range(n)],
        "low_confidence": [False] * n,
        "queued": [False] * n,
        "mean_compound": [-0.5 if i % 5 == 0 else 0.2 for i in range(n)],
        "min_confidence": [0.9] * n,
    })


def _scores(rows: list[tuple]) -> pd.DataFrame:
    """rows of (conversation_id, reviewer, score for every criterion | tuple of 5)."""
    out = []
    for cid, reviewer, value in rows:
        values = value if isinstance(value, tuple) else (value,) * 5
        out.append({"conversation_id": cid, "reviewer": reviewer, **dict(zip(A.CRITERIA, values))})
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- rubric

def test_rubric_has_five_criteria_each_with_five_anchors():
    assert tuple(c.name for c in A.RUBRIC) == A.CRITERIA == (
        "understood_intent", "accurate_helpful", "tone", "edge_cases", "overall")
    for criterion in A.RUBRIC:
        assert len(criterion.anchors) == 5 and all(a.strip() for a in criterion.anchors)
        assert len(set(criterion.anchors)) == 5
    assert A.RUBRIC_BY_NAME["tone"].anchor(1).startswith("Rude")


# --------------------------------------------------------------------------- candidates

def test_candidates_flag_escalated_low_confidence_negative_and_queued():
    m = messages_frame([
        {"conversation_id": "a", "speaker": "user", "text": "this is terrible and useless", "intent": "refund",
         "confidence": 0.3, "timestamp": "2026-08-03T10:00:00Z", "topic": "billing", "channel": "web"},
        {"conversation_id": "a", "speaker": "agent", "text": "Hi, Sam here", "timestamp": "2026-08-03T10:01:00Z"},
        {"conversation_id": "b", "speaker": "user", "text": "hello", "intent": "greet", "confidence": 0.95,
         "timestamp": "2026-08-03T11:00:00Z", "topic": "orders", "channel": "app"},
        {"conversation_id": "b", "speaker": "user", "text": "where is my order", "intent": "order_status",
         "confidence": 0.8, "timestamp": "2026-08-03T11:00:05Z"},
    ])
    before = m.copy()
    c = A.audit_candidates(m, conversation_rollup(m), queued=["b"])
    pd.testing.assert_frame_equal(m, before)
    a, b = c.iloc[0], c.iloc[1]
    assert (a["escalated"], a["low_confidence"], a["negative"], a["queued"], a["signal_count"]) == \
        (True, True, True, False, 3)
    # b: lowest confidence 0.8 >= 0.5; "hello"/"where is my order" are neutral; primary intent skips small talk
    assert (b["escalated"], b["low_confidence"], b["negative"], b["queued"], b["intent"]) == \
        (False, False, False, True, "order_status")
    assert b["min_confidence"] == pytest.approx(0.8)
    # given scores are used as they are (aligned on the messages' index)
    compound = pd.Series([0.9, 0.0, -0.9, -0.9], index=m.index)
    c2 = A.audit_candidates(m, conversation_rollup(m), compound=compound)
    assert c2["negative"].tolist() == [False, True]


def test_candidates_of_an_empty_rollup_are_empty_with_the_columns():
    m = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "hi"}])
    c = A.audit_candidates(m.iloc[:0], conversation_rollup(m.iloc[:0]))
    assert len(c) == 0 and "signal_count" in c.columns


def _reference_candidate_facts(m, r, compound):
    """Per-conversation min confidence and mean compound, grouped by id over a copy of the user rows."""
    users = m[m["speaker"].eq("user").fillna(False).astype(bool)]
    by_id = users["conversation_id"].astype("str")
    conf = pd.to_numeric(users["confidence"], errors="coerce").groupby(by_id).min()
    mean = pd.to_numeric(compound.reindex(users.index), errors="coerce").groupby(by_id).mean()
    ids = r["conversation_id"].astype("str")
    return conf.reindex(ids).tolist(), mean.reindex(ids).tolist()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from(["user", "bot", "agent"]),
                          st.sampled_from([None, 0.2, 0.7, 0.95]), st.sampled_from([-0.8, -0.05, 0.0, 0.6])),
                min_size=1, max_size=20),
       st.integers(0, 1000), st.booleans())
def test_property_candidate_facts_match_a_grouped_copy_reference(items, shuffle_seed, user_rows_only):
    # audit_candidates aggregates by rollup position (no copy of the user rows); the reference groups
    # a copy of the user rows by id. Rows shuffled, index not a range; compound either on every message
    # or on the user rows only.
    m = messages_frame([{"conversation_id": f"c{c}", "speaker": sp, "text": "hi", "confidence": conf,
                         "intent": "x", "timestamp": f"2026-08-03T10:{k:02d}:00Z"}
                        for k, (c, sp, conf, _) in enumerate(items)])
    compound = pd.Series([v for *_, v in items], index=m.index)
    m = m.set_index(pd.Index(np.arange(len(m)) * 3 + 7)).sample(frac=1, random_state=shuffle_seed)
    compound.index = np.arange(len(compound)) * 3 + 7
    if user_rows_only:  # the user rows' scores in the frame's row order (what the Audit page passes)
        compound = compound.reindex(m.index[m["speaker"].eq("user").to_numpy(bool)])
    r = conversation_rollup(m)
    before = m.copy()
    c = A.audit_candidates(m, r, compound=compound).set_index("conversation_id").reindex(
        r["conversation_id"].astype("str"))
    pd.testing.assert_frame_equal(m, before)
    conf, mean = _reference_candidate_facts(m, r, compound)
    assert c["min_confidence"].tolist() == pytest.approx(conf, nan_ok=True)
    assert c["mean_compound"].tolist() == pytest.approx(mean, nan_ok=True)
    assert c["low_confidence"].tolist() == [v < 0.5 for v in conf]
    assert c["negative"].tolist() == [v <= -0.05 for v in mean]


# --------------------------------------------------------------------------- sampling

def test_random_sample_is_reproducible_and_order_independent():
    c = _candidates(40)
    s1 = A.sample_conversations(c, n=10, seed=5)
    s2 = A.sample_conversations(c.sample(frac=1, random_state=3), n=10, seed=5)
    pd.testing.assert_frame_equal(s1, s2)
    assert s1["conversation_id"].is_unique and len(s1) == 10 and s1["position"].tolist() == list(range(1, 11))
    assert set(s1["conversation_id"]) <= set(c["conversation_id"])
    assert not A.sample_conversations(c, n=10, seed=6)["conversation_id"].equals(s1["conversation_id"])


def test_sample_larger_than_the_pool_takes_everything():
    c = _candidates(5)
    assert sorted(A.sample_conversations(c, n=50, seed=1)["conversation_id"]) == c["conversation_id"].tolist()


def test_stratified_allocation_by_hand():
    # sizes a=6, b=3, c=1, n=5, min 1 per stratum: 1+1+1, then 2 left over capacities a=5, b=2 (total 7):
    # quotas a=10/7=1.43, b=4/7=0.57 -> floors a=1, b=0, the last slot to the larger remainder (b)
    # -> a=2, b=2, c=1
    c = pd.DataFrame({"conversation_id": [f"x{i}" for i in range(10)],
                      "intent": ["a"] * 6 + ["b"] * 3 + ["c"]})
    s = A.sample_conversations(c, n=5, strategy="stratified", seed=11)
    assert s["reason"].value_counts().to_dict() == {"intent = a": 2, "intent = b": 2, "intent = c": 1}
    # without the minimum: proportional 5*6/10=3, 5*3/10=1.5, 0.5 -> 3, then remainders .5/.5: larger stratum b
    s0 = A.sample_conversations(c, n=5, strategy="stratified", seed=11, min_per_stratum=0)
    assert s0["reason"].value_counts().to_dict() == {"intent = a": 3, "intent = b": 2}


def test_stratified_by_topic_and_missing_values_form_their_own_stratum():
    c = pd.DataFrame({"conversation_id": list("abcd"), "topic": ["x", None, "x", None]})
    s = A.sample_conversations(c, n=2, strategy="stratified", stratify_by="topic", seed=0)
    assert sorted(s["reason"]) == ["topic = (none)", "topic = x"]
    with pytest.raises(InsufficientDataError, match="topic"):
        A.sample_conversations(c.drop(columns="topic"), n=2, strategy="stratified", stratify_by="topic")


def test_prioritised_takes_queued_then_most_signals_then_the_random_share():
    c = _candidates(40)
    c.loc[c["conversation_id"] == "c033", "queued"] = True  # no signal, but queued
    c.loc[c["conversation_id"] == "c035", "low_confidence"] = True  # c035: negative + escalated + low conf = 3
    s = A.sample_conversations(c, n=10, strategy="prioritised", random_share=0.2, seed=2)
    # round(10 * 0.2) = 2 random, 8 priority slots
    assert (s["reason"] == "random share").sum() == 2
    picked = s["conversation_id"].tolist()
    assert picked[0] == "c033" and s["reason"].iloc[0] == "queued for review"
    assert picked[1] == "c035" and s["reason"].iloc[1] == "negative sentiment, escalated, low confidence"
    # then the two-signal conversation (c000: negative and escalated), then one-signal ones
    assert picked[2] == "c000"
    flagged = set(c.loc[c["negative"] | c["escalated"], "conversation_id"])
    assert set(picked[3:8]) <= flagged
    # one-signal ties: the more negative first -> the negative-only ones (c005, c010, ...) before escalated-only
    assert all(cid in set(c.loc[c["negative"], "conversation_id"]) for cid in picked[3:8])


def test_prioritised_fills_with_random_when_few_are_flagged():
    c = _candidates(30)
    c["negative"] = False
    c["escalated"] = c["conversation_id"].isin(["c004", "c009"])
    s = A.sample_conversations(c, n=10, strategy="prioritised", random_share=0.2, seed=9)
    assert s["conversation_id"].iloc[:2].tolist() == ["c004", "c009"]  # both flagged ones, then random
    assert (s["reason"] == "random share").sum() == 8
    everything_random = A.sample_conversations(c, n=10, strategy="prioritised", random_share=1.0, seed=9)
    assert set(everything_random["reason"]) == {"random share"}


def test_date_range_keeps_conversations_started_inside_whole_days():
    c = _candidates(10)  # started 2026-08-01 .. 2026-08-10
    s = A.sample_conversations(c, n=50, seed=0, start="2026-08-03", end="2026-08-05")
    assert sorted(s["conversation_id"]) == ["c002", "c003", "c004"]
    assert len(A.sample_conversations(c, n=5, start="2030-01-01")) == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n must be"), ({"strategy": "best"}, "strategy must be"), ({"random_share": 1.5}, "random_share"),
    ({"seed": -1}, "seed"), ({"strategy": "stratified", "stratify_by": "channel"}, "stratify_by"),
])
def test_sampling_rejects_bad_options_and_repeats_the_value(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        A.sample_conversations(_candidates(5), **kwargs)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 30), seed=st.integers(0, 10_000), strategy=st.sampled_from(A.STRATEGIES),
       share=st.floats(0, 1), shuffle_seed=st.integers(0, 1000))
def test_property_sample_is_a_reproducible_subset_for_any_row_order(n, seed, strategy, share, shuffle_seed):
    c = _candidates(25)
    before = c.copy()
    s = A.sample_conversations(c, n=n, strategy=strategy, seed=seed, random_share=share)
    pd.testing.assert_frame_equal(c, before)
    assert len(s) == min(n, 25) and s["conversation_id"].is_unique
    shuffled = c.sample(frac=1, random_state=shuffle_seed).reset_index(drop=True)
    pd.testing.assert_frame_equal(s, A.sample_conversations(shuffled, n=n, strategy=strategy, seed=seed,
                                                            random_share=share))


# --------------------------------------------------------------------------- assignment

def test_assignment_overlap_and_balance():
    ids = [f"c{i}" for i in range(10)]
    a = A.assign_reviewers(ids, ["ann", "ben", "cy"], overlap_rate=0.2, seed=4)
    per_conv = a.groupby("conversation_id")["reviewer"].agg(list)
    assert set(per_conv.index) == set(ids)
    assert all(len(v) == len(set(v)) and len(v) in (1, 2) for v in per_conv)
    assert (a["role"] == "second").sum() == 2  # round(10 * 0.2)
    firsts = a[a["role"] == "first"].groupby("reviewer").size()
    assert firsts.max() - firsts.min() <= 1  # 4, 3, 3
    assert a.equals(A.assign_reviewers(ids, ["ann", "ben", "cy"], overlap_rate=0.2, seed=4))
    full = A.assign_reviewers(ids, ["ann", "ben"], overlap_rate=1.0, seed=1)
    assert full.groupby("reviewer").size().tolist() == [10, 10]


def test_assignment_with_one_reviewer_has_no_overlap_and_bad_input_is_refused():
    a = A.assign_reviewers(["a", "b"], ["solo"], overlap_rate=0.5)
    assert a["reviewer"].tolist() == ["solo", "solo"] and set(a["role"]) == {"first"}
    with pytest.raises(ConfigError, match="at least one reviewer"):
        A.assign_reviewers(["a"], [])
    with pytest.raises(ConfigError, match="'a' is repeated"):
        A.assign_reviewers(["a", "a"], ["x"])
    with pytest.raises(ConfigError, match="overlap_rate"):
        A.assign_reviewers(["a"], ["x"], overlap_rate=2)


# --------------------------------------------------------------------------- validation

def test_validate_review_normalises_and_refuses_bad_values():
    scores, flags, note, labels = A.validate_review(
        {c: np.int64(3) for c in A.CRITERIA}, flags="designed_limitation;good_example", note=None,
        labels=[{"message_key": "m1", "verdict": "yes", "true_intent": "ignored", "predicted_intent": "greet"},
                {"message_key": "m2", "verdict": None},
                {"message_key": "m3", "verdict": "no", "true_intent": "  "}])
    assert scores == {c: 3 for c in A.CRITERIA} and flags == ("good_example", "designed_limitation") and note == ""
    assert [(lab["message_key"], lab["verdict"], lab["true_intent"]) for lab in labels] == \
        [("m1", "yes", None), ("m3", "no", None)]
    with pytest.raises(ConfigError, match="missing: \\['tone'\\]"):
        A.validate_review({c: 3 for c in A.CRITERIA if c != "tone"})
    with pytest.raises(ConfigError, match="got 6"):
        A.validate_review({**{c: 3 for c in A.CRITERIA}, "overall": 6})
    with pytest.raises(ConfigError, match="good and a bad"):
        A.validate_review({c: 3 for c in A.CRITERIA}, flags=["good_example", "bad_example"])
    with pytest.raises(ConfigError, match="'maybe'"):
        A.validate_review({c: 3 for c in A.CRITERIA}, labels=[{"message_key": "m", "verdict": "maybe"}])


# --------------------------------------------------------------------------- means and patterns

def test_means_by_criterion_and_group_lowest_first_and_the_seed_sentence():
    # five billing conversations, three scored 1-2 on understood_intent; two greet conversations fine
    s = _scores([("b1", "x", (1, 3, 4, 3, 2)), ("b2", "x", (2, 3, 4, 3, 2)), ("b3", "x", (2, 3, 4, 3, 3)),
                 ("b4", "x", (4, 3, 4, 3, 4)), ("b5", "x", (5, 3, 4, 3, 4)),
                 ("g1", "x", (5, 5, 5, 5, 5)), ("g2", "x", (5, 5, 5, 5, 5))])
    attrs = pd.DataFrame({"conversation_id": ["b1", "b2", "b3", "b4", "b5", "g1", "g2"],
                          "intent": ["billing"] * 5 + ["greet"] * 2, "channel": ["web"] * 7})
    before = s.copy()
    means = A.criterion_means(s)
    pd.testing.assert_frame_equal(s, before)
    # understood_intent mean = (1+2+2+4+5+5+5)/7 = 24/7 = 3.43; overall = (2+2+3+4+4+5+5)/7 = 25/7 = 3.57
    assert means["criterion"].iloc[0] == "understood_intent"
    assert means["mean_score"].iloc[0] == pytest.approx(24 / 7)
    assert means.set_index("criterion").loc["understood_intent", "low_count"] == 3
    g = A.group_means(s, attrs, by="intent")
    assert g["intent"].tolist() == ["billing", "greet"]  # billing overall 3.0 < greet 5.0
    assert g["overall"].tolist() == [3.0, 5.0] and g["conversation_count"].tolist() == [5, 2]
    p = A.problem_patterns(s, attrs)
    assert p["sentence"].iloc[0] == \
        "3 of 5 billing conversations show the bot is confused (understood intent scored 2 or lower)."
    # overall: billing 2 of 5 low (40%) is below the 50% cut; channel web: 3 of 7 understood (43%) also out
    assert set(p["dimension"]) == {"intent"} and len(p) == 1
    lower = A.problem_patterns(s, attrs, min_rate=0.4)
    assert "3 of 7 conversations on web show the bot is confused (understood intent scored 2 or lower)." \
        in lower["sentence"].tolist()
    assert "2 of 5 billing conversations were poor overall (overall scored 2 or lower)." in lower["sentence"].tolist()


def test_conversation_scores_average_reviewers():
    s = _scores([("a", "x", 2), ("a", "y", 5), ("b", "x", 4)])
    conv = A.conversation_scores(s)
    assert conv["reviewer_count"].tolist() == [2, 1] and conv["tone"].tolist() == [3.5, 4.0]


# --------------------------------------------------------------------------- agreement

def _pair_scores(a: list[int], b: list[int]) -> pd.DataFrame:
    rows = []
    for i, (x, y) in enumerate(zip(a, b)):
        rows += [(f"c{i}", "ann", x), (f"c{i}", "ben", y)]
    return _scores(rows)


def test_weighted_kappa_against_hand_computed_values():
    # ann = [1, 3, 5, 3], ben = [1, 3, 3, 5], labels 1..5, n = 4. Marginals of both: {1: 1, 3: 2, 5: 1}.
    # Linear weights |i-j|: observed sum w*O = 2 + 2 = 4; expected = sum_ij r_i c_j |i-j| / n = 24 / 4 = 6
    #   -> kappa = 1 - 4/6 = 1/3.
    # Quadratic weights (i-j)^2: observed 4 + 4 = 8; expected = 64 / 4 = 16 -> kappa = 1 - 8/16 = 0.5.
    # Exact agreement 2 of 4; within one point also 2 of 4 (the gaps are 0, 0, 2, 2).
    s = _pair_scores([1, 3, 5, 3], [1, 3, 3, 5])
    lin = A.rater_agreement(s, weights="linear")
    quad = A.rater_agreement(s)
    assert len(quad) == 5 and set(quad["criterion"]) == set(A.CRITERIA)
    assert lin["kappa"].tolist() == pytest.approx([1 / 3] * 5)
    assert quad["kappa"].tolist() == pytest.approx([0.5] * 5)
    assert quad["agreement_rate"].iloc[0] == 0.5 and quad["adjacent_agreement_rate"].iloc[0] == 0.5
    assert quad["pair_count"].iloc[0] == 4
    assert (quad["reviewer_a"].iloc[0], quad["reviewer_b"].iloc[0]) == ("ann", "ben")


def test_kappa_distances_are_on_the_full_1_to_5_scale():
    # ann = [1, 2, 5, 2], ben = [1, 2, 2, 5]: with distances on the 1-5 scale (linear), observed = 3 + 3 = 6,
    # marginals {1: 1, 2: 2, 5: 1}, expected = (6 + 8 + 10) / 4 = 6 -> kappa = 0. Treating the used levels
    # 1, 2, 5 as adjacent (sklearn without labels=) would give 1/3 instead.
    s = _pair_scores([1, 2, 5, 2], [1, 2, 2, 5])
    assert A.rater_agreement(s, weights="linear")["kappa"].iloc[0] == pytest.approx(0.0, abs=1e-12)


def test_kappa_is_nan_when_undefined_and_no_overlap_gives_an_empty_table():
    same = _pair_scores([3, 3, 3], [3, 3, 3])
    r = A.rater_agreement(same)
    assert math.isnan(r["kappa"].iloc[0]) and r["agreement_rate"].iloc[0] == 1.0
    one = _pair_scores([3], [4])
    assert math.isnan(A.rater_agreement(one)["kappa"].iloc[0])
    assert len(A.rater_agreement(_scores([("a", "x", 3), ("b", "y", 4)]))) == 0
    with pytest.raises(ConfigError, match="'cubic'"):
        A.rater_agreement(same, weights="cubic")


def test_largest_disagreements_biggest_gap_first():
    s = _scores([("a", "ann", (1, 3, 3, 3, 2)), ("a", "ben", (5, 3, 3, 3, 4)),
                 ("b", "ann", (2, 2, 2, 2, 2)), ("b", "ben", (5, 2, 2, 2, 2))])
    s["note"] = ["misread", "fine", "", ""]
    d = A.largest_disagreements(s)
    assert d[["conversation_id", "criterion", "gap"]].values.tolist() == [
        ["a", "understood_intent", 4], ["b", "understood_intent", 3], ["a", "overall", 2]]
    assert d["note_a"].iloc[0] == "misread" and d["note_b"].iloc[0] == "fine"


# --------------------------------------------------------------------------- bias

def test_reviewer_bias_against_the_overall_mean():
    # x scores 2 on two conversations, y 4 on one, z 3 on one: overall mean = (2*2 + 4 + 3) / 4 = 2.75
    # -> x: 2 - 2.75 = -0.75, z: 0.25, y: 1.25 (harshest first)
    s = _scores([("a", "x", 2), ("b", "x", 2), ("a", "y", 4), ("b", "z", 3)])
    b = A.reviewer_bias(s)
    assert b["reviewer"].tolist() == ["x", "z", "y"]
    assert b["bias"].tolist() == pytest.approx([-0.75, 0.25, 1.25])
    assert b["conversation_count"].tolist() == [2, 1, 1]
    assert b["tone_bias"].tolist() == pytest.approx([-0.75, 0.25, 1.25])
    assert A.reviewer_bias(s.iloc[:0]).empty


# --------------------------------------------------------------------------- training examples

def test_training_examples_and_jsonl_export():
    s = _scores([("a", "x", 5), ("b", "x", 1), ("c", "y", 3)])
    s["flags"] = ["good_example", "bad_example;designed_limitation", ""]
    s["note"] = ["crisp answer", "=cmd|' /C calc'!A0", ""]
    ex = A.training_examples(s)
    assert ex[["conversation_id", "example", "designed_limitation"]].values.tolist() == [
        ["b", "bad", True], ["a", "good", False]]
    m = messages_frame([
        {"conversation_id": "a", "speaker": "user", "text": "<b>hi</b>", "intent": "greet", "confidence": 0.9,
         "timestamp": "2026-08-03T10:00:00Z"},
        {"conversation_id": "a", "speaker": "bot", "text": "Hello!", "timestamp": "2026-08-03T10:00:01Z"},
        {"conversation_id": "b", "speaker": "user", "text": "refund", "timestamp": "2026-08-03T11:00:00Z"},
    ])
    lines = A.training_examples_jsonl(ex, m).decode("utf-8").split("\n")
    objs = [json.loads(line) for line in lines]
    assert [o["conversation_id"] for o in objs] == ["b", "a"]
    assert objs[1]["messages"][0] == {"speaker": "user", "text": "<b>hi</b>", "intent": "greet", "confidence": 0.9,
                                      "timestamp": "2026-08-03T10:00:00+00:00"}
    assert objs[0]["note"] == "=cmd|' /C calc'!A0" and objs[0]["example"] == "bad"
    assert A.training_examples_jsonl(ex.iloc[:0], m) == b""


# --------------------------------------------------------------------------- automated vs human

def test_automated_vs_human_by_hand():
    m = messages_frame([
        # a: goal achieved (resolved), very positive user, reviewers: overall 1, tone 1 -> both disagree
        {"conversation_id": "a", "speaker": "user", "text": "great, thanks a lot", "goal_achieved": True,
         "timestamp": "2026-08-03T10:00:00Z"},
        {"conversation_id": "a", "speaker": "bot", "text": "Done.", "goal_achieved": True,
         "timestamp": "2026-08-03T10:00:02Z"},
        # b: agent (escalated), negative user, reviewers: overall 2, tone 2 -> both agree
        {"conversation_id": "b", "speaker": "user", "text": "this is awful", "timestamp": "2026-08-03T11:00:00Z"},
        {"conversation_id": "b", "speaker": "agent", "text": "Sam here", "timestamp": "2026-08-03T11:01:00Z"},
        # c: escalated, neutral user, reviewers overall 3 -> not comparable either way
        {"conversation_id": "c", "speaker": "user", "text": "order 123", "timestamp": "2026-08-03T12:00:00Z"},
        {"conversation_id": "c", "speaker": "agent", "text": "ok", "timestamp": "2026-08-03T12:01:00Z"},
    ])
    s = _scores([("a", "x", 1), ("b", "x", 2), ("c", "x", 3)])
    r = A.automated_vs_human(s, m, conversation_rollup(m))
    t = r.table.set_index("conversation_id")
    assert t["automated_outcome"].to_dict() == {"a": "resolved", "b": "escalated", "c": "escalated"}
    assert t.loc["a", "outcome_disagrees"] is True or bool(t.loc["a", "outcome_disagrees"]) is True
    assert bool(t.loc["b", "outcome_disagrees"]) is False and pd.isna(t.loc["c", "outcome_disagrees"])
    # outcome: 2 comparable (a, b), 1 disagrees -> 0.5; sentiment: a positive vs tone 1 (disagree),
    # b negative vs tone 2 (agree), c neutral -> 1 of 2
    assert (r.outcome_compared_count, r.outcome_disagreement_count, r.outcome_disagreement_rate) == (2, 1, 0.5)
    assert (r.sentiment_compared_count, r.sentiment_disagreement_count) == (2, 1)
    assert r.outcome_source == "classify_outcomes"
    empty = A.automated_vs_human(s.iloc[:0], m, conversation_rollup(m))
    assert len(empty.table) == 0 and math.isnan(empty.outcome_disagreement_rate)


def test_results_never_mutate_their_input():
    s = _scores([("a", "x", 2), ("a", "y", 4), ("b", "x", 3), ("b", "y", 3)])
    s["flags"] = ["good_example", "", "", "bad_example"]
    before = s.copy()
    A.conversation_scores(s), A.rater_agreement(s), A.largest_disagreements(s), A.reviewer_bias(s)
    A.training_examples(s), A.criterion_means(s)
    pd.testing.assert_frame_equal(s, before)


def test_candidates_without_sentiment_scoring():
    m = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "this is awful", "intent": "x",
                         "confidence": 0.9, "timestamp": "2026-08-03T10:00:00Z"}])
    c = A.audit_candidates(m, conversation_rollup(m), score_sentiment=False)
    assert math.isnan(c["mean_compound"].iloc[0]) and not c["negative"].iloc[0]


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), min_size=2, max_size=12),
       shuffle_seed=st.integers(0, 1000))
def test_property_agreement_and_bias_ignore_row_order_and_reviewer_swap(values, shuffle_seed):
    s = _pair_scores([a for a, _ in values], [b for _, b in values])
    base = A.rater_agreement(s)
    shuffled = s.sample(frac=1, random_state=shuffle_seed).reset_index(drop=True)
    pd.testing.assert_frame_equal(base, A.rater_agreement(shuffled))
    pd.testing.assert_frame_equal(A.reviewer_bias(s), A.reviewer_bias(shuffled))
    # kappa is symmetric: renaming the reviewers (so the pair order flips) changes nothing
    swapped = s.assign(reviewer=s["reviewer"].map({"ann": "zed", "ben": "abe"}))
    assert A.rater_agreement(swapped)["kappa"].tolist() == pytest.approx(base["kappa"].tolist(), nan_ok=True)
    # biases sum to zero when every reviewer scored the same number of conversations
    assert A.reviewer_bias(s)["bias"].sum() == pytest.approx(0.0, abs=1e-9)
