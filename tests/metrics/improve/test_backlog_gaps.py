"""A knowledge-gap topic becomes a backlog item of the Improvement page, with its impact estimate: the item
(golden), its storage (add, refresh, list, remove, deleted with the dataset), the backlog keeping it whatever
the minimum count, the report reading it, and the two pages in AppTest on a fixture and on the real Rasa export."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, messages_frame, shared_path
from metrics import store
from metrics.improve import store as goals_store
from metrics.improve.backlog import CANDIDATE_COLUMNS, gap_item, improvement_candidates, rank_backlog
from metrics.errors import ConfigError
from metrics.core.rollup import conversation_rollup
from test_page_topics import _rows

GAP = {"topic": 7, "name": "reset password", "message_count": 12, "conversation_count": 9,
       "escalation_rate": 0.25, "negative_rate": 0.5, "impact": 1.75, "score": 21.0, "top_signal": "low_confidence",
       "nearest_intent": "password"}


def test_gap_item_golden():
    item = gap_item(GAP, weeks=3.0, has_intents=True)
    assert list(item) == list(CANDIDATE_COLUMNS)
    assert item == {
        "key": "knowledge_gap:7", "source": "knowledge_gap", "subject": "reset password",
        "problem": "Users ask this and the bot does not handle it: 12 message(s) in 9 conversation(s) (mostly low "
                   "confidence); 25% escalated, 50% negative; gap score 21.0 (messages x 1.75); closest intent: "
                   "password.",
        "metric": "intent_accuracy", "affected_count": 9, "weeks": 3.0, "impact_per_week": 3.0,
        "view": "topics", "query_key": "gap", "query_value": "7"}
    no_intents = gap_item(pd.Series({**GAP, "nearest_intent": float("nan")}), weeks=1.0, has_intents=False)
    assert no_intents["metric"] == "escalation_rate" and "closest intent" not in no_intents["problem"]
    with pytest.raises(ConfigError):
        gap_item(GAP, weeks=0.0, has_intents=True)


def test_stored_items_round_trip_and_go_with_their_dataset(memory_db):
    keep = store.save_messages(memory_db, messages_frame(_rows()), dataset_name="keep")
    gone = store.save_messages(memory_db, messages_frame(_rows()[:10]), dataset_name="gone")
    item = gap_item(GAP, weeks=3.0, has_intents=True)
    assert goals_store.add_backlog_item(memory_db, keep.dataset_id, item)
    assert not goals_store.add_backlog_item(memory_db, keep.dataset_id, {**item, "affected_count": 12})  # refresh
    assert goals_store.add_backlog_item(memory_db, gone.dataset_id, item)
    listed = goals_store.added_backlog_items(memory_db, keep.dataset_id)
    assert list(listed.columns) == list(CANDIDATE_COLUMNS)
    assert listed[["key", "affected_count", "impact_per_week"]].values.tolist() == [["knowledge_gap:7", 12, 4.0]]
    with pytest.raises(ConfigError, match="no dataset"):
        goals_store.add_backlog_item(memory_db, 999, item)
    with pytest.raises(ConfigError, match="needs"):
        goals_store.add_backlog_item(memory_db, keep.dataset_id, {"key": "x"})
    store.delete_dataset(memory_db, gone.dataset_id)
    assert memory_db.execute("SELECT DISTINCT dataset_id FROM backlog_added").fetchall() == [(keep.dataset_id,)]
    goals_store.set_efforts(memory_db, keep.dataset_id, {"knowledge_gap:7": 2.0})
    assert goals_store.remove_backlog_item(memory_db, keep.dataset_id, "knowledge_gap:7")
    assert len(goals_store.added_backlog_items(memory_db, keep.dataset_id)) == 0
    assert len(goals_store.backlog_state(memory_db, keep.dataset_id)) == 0


def test_the_backlog_keeps_an_added_gap_whatever_the_minimum_count():
    m = messages_frame(_rows())
    r = conversation_rollup(m)
    added = pd.DataFrame([gap_item(GAP, weeks=3.0, has_intents=True)])
    found = improvement_candidates(m, r, min_count=50, added=added)
    assert found.table["key"].tolist() == ["knowledge_gap:7"]  # 9 conversations < 50, kept: the team added it
    ranked = rank_backlog(found.table)
    assert ranked.loc[0, "score"] == 3.0 and ranked.loc[0, "status"] == "open"
    without = improvement_candidates(m, r, min_count=50)
    assert ("knowledge_gap", "none added yet: add a gap topic from the Topics page (Knowledge gaps)") in \
        without.skipped


def test_the_report_lists_an_added_gap(tmp_path):
    from metrics.report import build_report
    from metrics.sentiment import add_sentiment

    m = add_sentiment(messages_frame(_rows()))
    added = pd.DataFrame([gap_item(GAP, weeks=3.0, has_intents=True)])
    report = build_report(m, conversation_rollup(m), period="2026-08-03..2026-08-20", backlog_added=added)
    assert "reset password" in str(report.review)


def _topics_then_improvement(dataset_id: int) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params["dataset"] = str(dataset_id)
    at.run()
    at.switch_page("pages/10_Topics.py")
    at.query_params["view"] = "Knowledge gaps"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    name = at.selectbox(key=f"topics_gap_pick_{dataset_id}_1").format_func(
        at.selectbox(key=f"topics_gap_pick_{dataset_id}_1").value).split(" · ", 1)[1]
    assert any("Impact estimate:" in c.value for c in at.caption)
    at.button(key="topics_gap_backlog").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("to the improvement backlog" in s.value for s in at.success)
    at.switch_page("pages/9_Improvement.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(o.split(" ", 1)[1] == name for o in at.selectbox(key="improve_pick").options)
    assert at.selectbox(key="improve_added_pick").options == [name]
    return at


def test_pages_on_a_fixture(db_path):
    db = store.connect(str(db_path))
    saved = store.save_messages(db, messages_frame(_rows()), dataset_name="gaps", source_format="csv")
    db.close()
    at = _topics_then_improvement(saved.dataset_id)
    at.button(key="improve_added_remove").click()
    at.run()
    db = store.connect(str(db_path))
    assert len(goals_store.added_backlog_items(db, saved.dataset_id)) == 0
    db.close()


def test_pages_on_the_real_rasa_export(db_path):
    path = shared_path("rasa_tracker_customer_support", "trackers.jsonl")
    from metrics.io.loaders import load_path

    db = store.connect(str(db_path))
    result = load_path(str(path), pseudonym_key=store.pseudonym_key(db))
    saved = store.save_messages(db, result.frame, dataset_name="rasa", source_format=result.format)
    db.close()
    _topics_then_improvement(saved.dataset_id)
