"""Deleting a dataset removes its messages, derived rows and audit links: checked in the SQLite file itself.

Load the sample, save it, add derived rows through each feature's public functions (audit rounds,
assignments, scores, history, intent labels, the audit queue, change-log entries, backlog items,
sentiment scores, an ROI scenario), plus a second dataset that must survive. Delete, close, then
open the file with plain ``sqlite3``: no table with a ``dataset_id`` column keeps a row of the
deleted dataset, the other dataset is intact, and neither the deleted messages' text nor the bytes of
their stored (compressed) parts are anywhere in the database file or its WAL.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT
from metrics import audit, roi, store
from metrics.audit import queue as audit_queue
from metrics.audit import store as audit_store
from metrics.improve import store as goals_store
from metrics.roi import store as roi_store
from metrics.improve.changelog import ChangeEntry
from metrics.io.loaders import load_bytes
from metrics.sentiment import add_sentiment, text_hash
from metrics.sentiment.cache import StoreCache
from metrics.store import search
from metrics.topics import TopicOptions, discover_topics
from metrics.topics import persist as topic_persist

SAMPLE = ROOT / "data" / "sample_transcripts.csv.gz"
SECRET_NOTE = "reviewer note 7f3a: customer Jane Roe, card ending 4242"


def _dataset_columns(conn: sqlite3.Connection) -> dict[str, str]:
    """table -> its dataset column: a column named dataset_id, or a foreign key to datasets."""
    found = {}
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND name NOT LIKE 'sqlite_%' AND name != 'datasets'")]
    for table in tables:
        columns = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
        if "dataset_id" in columns:
            found[table] = "dataset_id"
        for fk in conn.execute(f'PRAGMA foreign_key_list("{table}")'):
            if fk[2] == "datasets":
                found[table] = fk[3]
    return found


def _file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


@pytest.fixture(scope="module")
def deleted(tmp_path_factory):
    """Build the store, delete the sample dataset; returns what the tests inspect."""
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} is absent (generate it with python -m data.generate)")
    path = tmp_path_factory.mktemp("delete") / "chatlens.db"
    db = store.connect(path)
    sample = load_bytes(SAMPLE.read_bytes(), SAMPLE.name).frame
    victim = store.save_messages(db, sample, dataset_name="victim", file_name=SAMPLE.name).dataset_id
    other_frame = load_bytes(b"conversation_id,speaker,text,intent\nk1,user,keeper message one,greet\n"
                             b"k1,bot,keeper message two,\nk2,user,keeper message three,bye\n", "keep.csv").frame
    keeper = store.save_messages(db, other_frame, dataset_name="keeper", file_name="keep.csv").dataset_id

    # --- derived rows, through each feature's public functions, for both datasets
    for dataset_id, frame, tag in ((victim, sample, "v"), (keeper, other_frame, "k")):
        ids = frame["conversation_id"].drop_duplicates().head(3).tolist()
        round_id = audit_store.create_round(
            db, name=f"round {tag}", dataset_id=dataset_id, strategy="random", seed=1,
            sample=pd.DataFrame({"position": range(1, len(ids) + 1), "conversation_id": ids}),
            assignments=audit.assign_reviewers(ids, ["ann"], overlap_rate=0.0))
        first = frame[frame["conversation_id"] == ids[0]]
        keys = store.message_keys(first)
        user_rows = [i for i, s in enumerate(first["speaker"]) if s == "user"]
        labels = [{"message_key": keys.iloc[i], "verdict": "no", "true_intent": "greet",
                   "predicted_intent": None} for i in user_rows[:1]]
        audit_store.save_score(db, round_id=round_id, conversation_id=ids[0], reviewer="ann",
                               scores={c: 4 for c in audit.CRITERIA}, note=f"{SECRET_NOTE} {tag}", labels=labels)
        audit_store.save_score(db, round_id=round_id, conversation_id=ids[0], reviewer="ann",
                               scores={c: 2 for c in audit.CRITERIA}, note=f"{SECRET_NOTE} {tag}", labels=labels)
        audit_queue.queue_conversations(db, dataset_id, ids[1:], reason=f"most negative {tag}")
        change = goals_store.add_change(db, ChangeEntry("2026-09-21", f"Deploy nlu-v2 {tag}", "training_data",
                                                        "intent_accuracy", dataset_id=dataset_id))
        goals_store.set_efforts(db, dataset_id, {f"intent:{tag}": 3.0})
        goals_store.accept_item(db, dataset_id, f"intent:{tag}-2",
                                ChangeEntry("2026-09-22", f"Fix intent {tag}", "training_data", "intent_accuracy",
                                            dataset_id=dataset_id, backlog_key=f"intent:{tag}-2"))
        assert change > 0
        from metrics.improve.backlog import gap_item

        goals_store.add_backlog_item(db, dataset_id, gap_item(
            {"topic": 1, "name": f"gap {tag}", "message_count": 3, "conversation_count": 2, "escalation_rate": 0.0,
             "negative_rate": 0.0, "impact": 1.0, "score": 3.0, "top_signal": "fallback"}, weeks=1.0,
            has_intents=True))
        add_sentiment(frame, cache=StoreCache(db))  # writes the sentiment cache
        model = discover_topics(frame, options=TopicOptions(unit="first"))  # topic runs, snapshots, pairs
        topic_persist.save_snapshot(db, dataset_id, "first", model.snapshot, version=1, options_key="k",
                                    assignments=model.assignments)
        topic_persist.rename_topic(db, dataset_id, "first", 1, f"billing {tag}")
        topic_persist.merge_topics(db, dataset_id, "first", [2], 1)
        search.build_index(db, dataset_id, frame)  # the full-text index and its registry row
        from metrics.core.facts import facts_of_frame
        from metrics.store import facts_cache

        facts, ctx = facts_of_frame(frame)  # the facts kept for the dataset's version
        facts_cache.save_facts(db, dataset_id, facts_cache.facts_key(1, 64), facts, ctx)
    goals_store.add_change(db, ChangeEntry("2026-09-23", "Global change", "other", "intent_accuracy"))
    roi_store.save_scenario(db, "from the victim", roi.RoiInputs(), dataset_id=victim)

    conn = db.conn
    columns = _dataset_columns(conn)
    before = {t: conn.execute(f'SELECT count(*) FROM "{t}" WHERE "{c}" = ?', (victim,)).fetchone()[0]
              for t, c in columns.items()}
    kept_before = {t: conn.execute(f'SELECT count(*) FROM "{t}" WHERE "{c}" = ?', (keeper,)).fetchone()[0]
                   for t, c in columns.items()}
    stored_rows = conn.execute("SELECT sum(row_count) FROM message_parts WHERE dataset_id = ?", (victim,)).fetchone()[0]
    # each part's data pages (a Parquet file is "PAR1", pages, footer, footer length, "PAR1"; the footer holds the
    # schema, which every dataset's parts share)
    parts = b"".join(d[4:len(d) - 8 - int.from_bytes(d[-8:-4], "little")]
                     for (d,) in conn.execute("SELECT data FROM message_parts WHERE dataset_id = ?", (victim,)))
    removed = store.delete_dataset(db, victim)
    db.close()
    texts = sorted({t for t in sample["text"].dropna() if len(t) >= 16})
    return {"path": path, "victim": victim, "keeper": keeper, "columns": columns, "before": before,
            "kept_before": kept_before, "removed": removed, "texts": texts, "sample": sample,
            "stored_rows": stored_rows, "parts": parts}


def test_every_dataset_table_was_populated_before_the_delete(deleted):
    """The test covers every feature table that holds a dataset id (a new one needs seeding above)."""
    # (each dataset version has its own full-text table: the keeper's holds none of the victim's rows by design)
    empty = [t for t, n in deleted["before"].items()
             if n == 0 and not t.startswith(f"search_fts_{deleted['keeper']}_")]
    assert empty == [], f"seed rows in {empty} through the feature's public functions"
    expected = {"message_parts", "loads", "audit_rounds", "audit_assignments", "audit_scores", "audit_score_history",
                "audit_labels", "audit_queue", "change_log", "backlog_items"}
    assert expected <= set(deleted["columns"]), deleted["columns"]
    assert deleted["stored_rows"] == len(deleted["sample"])


def test_no_row_of_the_deleted_dataset_remains_anywhere(deleted):
    conn = sqlite3.connect(deleted["path"])
    try:
        left = {t: conn.execute(f'SELECT count(*) FROM "{t}" WHERE "{c}" = ?', (deleted["victim"],)).fetchone()[0]
                for t, c in _dataset_columns(conn).items()}
        assert left == {t: 0 for t in left}
        assert conn.execute("SELECT count(*) FROM datasets WHERE id = ?", (deleted["victim"],)).fetchone()[0] == 0
        # what delete_dataset reported matches what was there
        assert {t: n for t, n in deleted["removed"].items() if t != "datasets"} == \
            {t: n for t, n in deleted["before"].items() if n}
        assert deleted["removed"]["datasets"] == 1
        # the other dataset and its derived rows are untouched
        kept = {t: conn.execute(f'SELECT count(*) FROM "{t}" WHERE "{c}" = ?', (deleted["keeper"],)).fetchone()[0]
                for t, c in _dataset_columns(conn).items()}
        # (the victim's own full-text tables are dropped with it; every other table keeps the keeper's rows)
        assert not [t for t in kept if t.startswith(f"search_fts_{deleted['victim']}_")]
        assert kept == {t: n for t, n in deleted["kept_before"].items()
                        if not t.startswith(f"search_fts_{deleted['victim']}_")}
        assert conn.execute("SELECT name FROM datasets").fetchall() == [("keeper",)]
        # not tied to a dataset, by design: global change-log entries, reviewers, ROI scenarios (the user's work;
        # source_dataset_id is informational, metrics/roi/store.py)
        assert conn.execute("SELECT count(*) FROM change_log WHERE dataset_id IS NULL").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM roi_scenarios").fetchone()[0] == 1
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def test_the_deleted_text_is_not_in_the_database_files(deleted):
    raw = _file_bytes(deleted["path"])
    assert b"keeper message one" in raw  # the check can see text that is there
    leaked = [t for t in deleted["texts"] if t.encode("utf-8") in raw]
    assert len(deleted["texts"]) > 100
    assert leaked == [], leaked[:5]
    assert SECRET_NOTE.encode() + b" v" not in raw  # the audit note of the deleted dataset
    assert SECRET_NOTE.encode() + b" k" in raw      # the other dataset's note is still there
    assert b"most negative v" not in raw and b"Deploy nlu-v2 v" not in raw
    assert deleted["sample"]["conversation_id"].iloc[0].encode() not in raw
    # the messages are stored compressed, so look for the stored pages themselves: no 64-byte stretch is left
    parts = deleted["parts"]
    assert len(parts) > 10_000
    left = [i for i in range(0, len(parts) - 64, 251) if parts[i:i + 64] in raw]
    assert left == [], f"{len(left)} stretches of the deleted parts remain"


def test_no_sentiment_hash_of_a_deleted_message_remains(deleted):
    conn = sqlite3.connect(deleted["path"])
    try:
        cached = {r[0] for r in conn.execute("SELECT text_hash FROM sentiment_cache")}
    finally:
        conn.close()
    keeper_hashes = {text_hash(t) for t in ("keeper message one", "keeper message two", "keeper message three")}
    deleted_hashes = {text_hash(t) for t in deleted["sample"]["text"].dropna().unique()} - keeper_hashes
    assert cached >= keeper_hashes
    assert not (cached & deleted_hashes), f"{len(cached & deleted_hashes)} hashes of deleted messages remain"

