"""Improvement backlog: candidates per source, minimum count, impact per week, ranking by impact ÷ effort,
and the stored effort/status (accept into the change log, mark done)."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, messages_frame
from metrics import store
from metrics.improve import store as goals_store
from metrics.improve.backlog import data_weeks, improvement_candidates, rank_backlog
from metrics.improve.changelog import ChangeEntry
from metrics.errors import ConfigError
from metrics.io.loaders import load_path
from metrics.core.rollup import conversation_rollup


def _escalations(counts: dict[str, int], *, days: int = 28):
    """Conversations spread over ``days`` days, each escalated with the given reason."""
    rows, i = [], 0
    total = sum(counts.values())
    for reason, n in counts.items():
        for _ in range(n):
            ts = (pd.Timestamp("2026-08-03T10:00Z") + pd.Timedelta(days=days * i / max(total, 1))).isoformat()
            rows += [{"conversation_id": f"c{i:04d}", "speaker": "user", "text": "help", "timestamp": ts,
                      "escalation_reason": reason},
                     {"conversation_id": f"c{i:04d}", "speaker": "agent", "text": "Sam here", "timestamp": ts,
                      "escalation_reason": reason}]
            i += 1
    m = messages_frame(rows)
    return m, conversation_rollup(m)


def test_min_count_drops_single_complaints():
    m, r = _escalations({"Billing": 20, "Refund": 19, "Angry": 1})
    found = improvement_candidates(m, r, sources=("escalation_reason",))
    assert found.table["key"].tolist() == ["escalation_reason:Billing"]          # 19 and 1 are below 20
    assert improvement_candidates(m, r, sources=("escalation_reason",), min_count=19).table["subject"].tolist() == \
        ["Billing", "Refund"]
    with pytest.raises(ConfigError, match="min_count must be a whole number >= 1, got 0"):
        improvement_candidates(m, r, min_count=0)
    with pytest.raises(ConfigError, match="unknown backlog source"):
        improvement_candidates(m, r, sources=("gut_feeling",))


def test_impact_is_affected_conversations_per_week():
    m, r = _escalations({"Billing": 40})
    # 40 conversations spread over 28 days: the first at Aug 3 10:00, the last 27.3 days later -> 3.9 weeks.
    weeks = data_weeks(r)
    assert weeks == pytest.approx(27.3 / 7, abs=1e-9)
    row = improvement_candidates(m, r, sources=("escalation_reason",)).table.iloc[0]
    assert row["affected_count"] == 40 and row["impact_per_week"] == pytest.approx(40 / weeks)
    assert (row["metric"], row["view"], row["query_key"], row["query_value"]) == \
        ("escalation_rate", "outcomes", "reason", "Billing")


def test_ranking_by_impact_over_effort():
    candidates = pd.DataFrame({"key": ["a", "b", "c", "d"], "impact_per_week": [10.0, 6.0, 6.0, 30.0]})
    state = pd.DataFrame({"item_key": ["a", "d"], "effort": [5.0, 2.0], "status": ["open", "done"],
                          "change_id": [None, 7]})
    ranked = rank_backlog(candidates, state)
    # Scores: a 10/5 = 2, b 6/1 = 6, c 6/1 = 6 (tie with b: same impact, then key), d is done -> last.
    assert ranked[["key", "effort", "score", "status", "rank"]].values.tolist() == [
        ["b", 1.0, 6.0, "open", 1], ["c", 1.0, 6.0, "open", 2], ["a", 5.0, 2.0, "open", 3], ["d", 2.0, 15.0, "done", 4]]
    before = candidates.copy()
    rank_backlog(candidates)
    pd.testing.assert_frame_equal(candidates, before)
    with pytest.raises(ConfigError, match="default_effort"):
        rank_backlog(candidates, default_effort=0)


def test_sample_candidates_from_every_available_source():
    from metrics.sentiment import add_sentiment

    messages = load_path(ROOT / "data" / "sample_transcripts.csv.gz").frame
    rollup = conversation_rollup(messages)
    found = improvement_candidates(add_sentiment(messages), rollup)
    assert found.skipped == (("audit_topic", "no audit scores yet (score conversations on the Audit page)"),
                             ("knowledge_gap", "none added yet: add a gap topic from the Topics page (Knowledge gaps)"))
    table = found.table
    assert set(table["source"]) == {"intent", "escalation_reason", "funnel_stage", "bot_message"}
    assert table["key"].is_unique and (table["affected_count"] >= 20).all()
    assert table["impact_per_week"].is_monotonic_decreasing
    rows = table.set_index("key")
    # 280 escalations give "Customer requested agent" over 13.09 weeks (Aug 3 07:24 to Nov 1 23:53).
    assert rows.loc["escalation_reason:Customer requested agent", "affected_count"] == 280
    assert rows.loc["escalation_reason:Customer requested agent", "impact_per_week"] == pytest.approx(
        280 / data_weeks(rollup))
    # billing: recall 44/66 = 0.667 on the labelled messages; 264 conversations whose intent is billing
    # -> about 264 x (1 - 0.667) = 88 misread conversations.
    assert rows.loc["intent:billing", "affected_count"] == 88
    assert "funnel_stage:inquiry" in rows.index and "funnel_stage:phone provided" not in rows.index   # last stage


def test_audit_topic_candidates():
    rows = []
    for i in range(40):
        topic = "billing" if i < 30 else "greeting"
        rows.append({"conversation_id": f"c{i}", "speaker": "user", "text": "x", "topic": topic,
                     "timestamp": (pd.Timestamp("2026-08-03T10:00Z") + pd.Timedelta(hours=6 * i)).isoformat()})
    m = messages_frame(rows)
    r = conversation_rollup(m)
    scores = pd.DataFrame({"conversation_id": ["c0", "c1", "c2", "c3", "c30"], "reviewer": ["ann"] * 5,
                           "understood_intent": [2, 1, 2, 4, 5], "accurate_helpful": [2, 2, 3, 4, 5],
                           "tone": [3] * 5, "edge_cases": [3] * 5, "overall": [2, 1, 2, 4, 5]})
    found = improvement_candidates(m, r, sources=("audit_topic",), audit_scores=scores)
    # billing: mean overall (2+1+2+4)/4 = 2.25 <= 3; 3 of 4 audited scored <= 2 -> 30 x 3/4 = 22.5 -> 22 (round half
    # to even); greeting (mean 5) is fine.
    assert found.table[["key", "affected_count"]].values.tolist() == [["audit_topic:billing", 22]]
    assert improvement_candidates(m, r, sources=("audit_topic",)).skipped[0][0] == "audit_topic"


def test_store_effort_accept_and_done(memory_db):
    m, r = _escalations({"Billing": 30, "Refund": 25})
    saved = store.save_messages(memory_db, m, dataset_name="d")
    ds = saved.dataset_id
    found = improvement_candidates(m, r, sources=("escalation_reason",))
    assert goals_store.set_efforts(memory_db, ds, {"escalation_reason:Billing": 3.0}) == 1
    ranked = rank_backlog(found.table, goals_store.backlog_state(memory_db, ds))
    # Billing 30/3.9 weeks / effort 3 < Refund 25/3.9 / effort 1 -> Refund first.
    assert ranked["subject"].tolist() == ["Refund", "Billing"]
    with pytest.raises(ConfigError, match="effort of 'x' must be a number above 0"):
        goals_store.set_efforts(memory_db, ds, {"x": -1})
    entry = ChangeEntry("2026-09-01", "Refund macro", "response_rewrite", "escalation_rate", dataset_id=ds)
    cid = goals_store.accept_item(memory_db, ds, "escalation_reason:Refund", entry)
    change = goals_store.get_change(memory_db, cid)
    assert change.backlog_key == "escalation_reason:Refund" and change.title == "Refund macro"
    with pytest.raises(ConfigError, match="already accepted"):
        goals_store.accept_item(memory_db, ds, "escalation_reason:Refund", entry)
    goals_store.set_status(memory_db, ds, "escalation_reason:Refund", "done")
    ranked = rank_backlog(found.table, goals_store.backlog_state(memory_db, ds))
    assert ranked[["subject", "status"]].values.tolist() == [["Billing", "open"], ["Refund", "done"]]
    removed = store.delete_dataset(memory_db, ds)
    assert removed["backlog_items"] == 2 and len(goals_store.backlog_state(memory_db, ds)) == 0


@settings(max_examples=40)
@given(st.lists(st.sampled_from(["A", "B", "C"]), min_size=20, max_size=80), st.randoms(use_true_random=False))
def test_row_order_does_not_change_the_candidates(reasons, rnd):
    counts = {k: reasons.count(k) for k in "ABC" if reasons.count(k)}
    m, r = _escalations(counts)
    first = improvement_candidates(m, r, sources=("escalation_reason",), min_count=5).table
    order = list(range(len(m)))
    rnd.shuffle(order)
    shuffled = m.iloc[order].reset_index(drop=True)
    again = improvement_candidates(shuffled, conversation_rollup(shuffled), sources=("escalation_reason",),
                                   min_count=5).table
    pd.testing.assert_frame_equal(first, again)
    assert first["affected_count"].sum() == sum(v for v in counts.values() if v >= 5)
