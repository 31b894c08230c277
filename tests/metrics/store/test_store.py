"""Tests of metrics/store/__init__.py: the SQLite store (datasets, messages, loads, migrations, concurrency)."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, messages_frame, shared_path
from metrics import store
from metrics.errors import ConfigError, StoreError
from metrics.io.schema import COLUMNS


def conversation_rows(n: int, *, per_conversation: int = 10) -> list[dict]:
    """n messages, ``per_conversation`` per conversation, one minute apart, no message ids."""
    rows = []
    for i in range(n):
        conv = i // per_conversation
        rows.append({"conversation_id": f"c{conv:03d}",
                     "timestamp": f"2024-03-01T{10 + conv % 12:02d}:{i % per_conversation:02d}:00Z",
                     "speaker": "user" if i % 2 == 0 else "bot", "text": f"message {i}"})
    return rows


def full_frame() -> pd.DataFrame:
    """Every canonical column, with NaT, NA and NaN cells and awkward text."""
    rows = [
        {"conversation_id": "c1", "timestamp": "2024-01-01T10:00:00.123456789Z", "speaker": "user",
         "text": "Hi, I need a refund 😡", "message_id": "m1", "user_id": "u1", "channel": "web",
         "intent": "refund", "confidence": 0.1 + 0.2, "true_intent": "refund", "event": None,
         "model_version": "v1", "is_test": False, "outcome": "resolved", "goal_achieved": True,
         "escalation_reason": None, "rating": 4.0, "thumbs": "up", "survey_solved": True, "topic": "complaint",
         "converted": None, "conversion_value": None, "segment": "smb", "utm_source": "google",
         "utm_campaign": "spring"},
        {"conversation_id": "c1", "timestamp": "2024-01-01T10:00:05Z", "speaker": "bot",
         "text": 'Sure — "quotes", a\nnewline, \x1f a unit separator and a NUL \x00 byte', "message_id": None,
         "user_id": None, "channel": "web", "intent": None, "confidence": None, "true_intent": None,
         "event": "handoff", "model_version": None, "is_test": None, "outcome": None, "goal_achieved": None,
         "escalation_reason": "billing", "rating": None, "thumbs": None, "survey_solved": None, "topic": None,
         "converted": True, "conversion_value": 1234.5678901234567, "segment": None, "utm_source": None,
         "utm_campaign": None},
        {"conversation_id": "c2", "timestamp": None, "speaker": "agent", "text": "<script>alert(1)</script>",
         "message_id": "m3", "user_id": "u2", "channel": "whatsapp", "intent": "greet", "confidence": 1e-300,
         "true_intent": None, "event": None, "model_version": "v2", "is_test": True, "outcome": "escalated",
         "goal_achieved": False, "escalation_reason": None, "rating": 1.0, "thumbs": "down",
         "survey_solved": False, "topic": None, "converted": False, "conversion_value": 0.0, "segment": "ent",
         "utm_source": None, "utm_campaign": None},
        {"conversation_id": "c0", "timestamp": "2023-12-31T23:59:59Z", "speaker": "system", "text": "",
         "message_id": None, "user_id": "u3", "channel": None, "intent": None, "confidence": 0.5,
         "true_intent": None, "event": None, "model_version": None, "is_test": None, "outcome": None,
         "goal_achieved": None, "escalation_reason": None, "rating": None, "thumbs": None, "survey_solved": None,
         "topic": "inquiry", "converted": None, "conversion_value": None, "segment": None, "utm_source": None,
         "utm_campaign": None},
    ]
    return messages_frame(rows)


def raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection, independent of the store module."""
    return sqlite3.connect(str(path))


# --------------------------------------------------------------------------- connecting

def test_default_path_is_env_then_home_and_nothing_is_created(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATLENS_DB", str(tmp_path / "custom" / "x.db"))
    assert store.default_db_path() == tmp_path / "custom" / "x.db"
    monkeypatch.delenv("CHATLENS_DB")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert store.default_db_path() == tmp_path / "home" / ".chatlens" / "chatlens.db"
    assert not (tmp_path / "home").exists()  # computing the path creates nothing
    db = store.connect()
    db.close()
    assert (tmp_path / "home" / ".chatlens" / "chatlens.db").is_file()


def test_connect_configures_the_connection(db_path):
    db = store.connect()  # CHATLENS_DB points at db_path
    try:
        assert Path(db.conn.execute("PRAGMA database_list").fetchone()[2]) == db_path
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
        assert db.conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
        assert db.conn.isolation_level is None and not db.conn.in_transaction
        assert db.supports_on_conflict is True
    finally:
        db.close()


def test_connect_memory(memory_db):
    assert memory_db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "memory"
    assert set(memory_db.table_names()) >= {"datasets", "message_parts", "loads", "schema_migrations"}


def test_connect_raises_when_on_conflict_is_unsupported(monkeypatch, tmp_path):
    # sqlite-utils 4.2.1 caches a failed probe as "unsupported" and then silently loses upserts
    monkeypatch.setattr(sqlite_utils.Database, "supports_on_conflict", property(lambda self: False))
    with pytest.raises(StoreError, match="ON CONFLICT"):
        store.connect(tmp_path / "x.db")
    with pytest.raises(StoreError, match="ON CONFLICT"):
        store.connect(":memory:")


def test_connect_while_another_writer_holds_the_lock_fails_loudly(db_path):
    store.connect(db_path).close()
    holder = sqlite3.connect(str(db_path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="busy"):
            store.connect(db_path, timeout_seconds=0.2)
        assert time.monotonic() - started < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    db = store.connect(db_path, timeout_seconds=0.2)  # the lock is gone: fine again
    assert db.supports_on_conflict is True
    db.close()


def test_connect_rejects_a_file_that_is_not_a_database_and_bad_timeouts(tmp_path):
    bad = tmp_path / "not.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not.db"):
        store.connect(bad)
    with pytest.raises(ConfigError, match="-1"):
        store.connect(":memory:", timeout_seconds=-1)
    with pytest.raises(ConfigError, match="'10'"):
        store.connect(":memory:", timeout_seconds="10")


# --------------------------------------------------------------------------- immediate()

def test_immediate_commits_sqlite_utils_writes_and_rolls_back_on_error(memory_db):
    db = memory_db
    db["notes"].create({"id": int, "body": str}, pk="id", not_null={"body"}, if_not_exists=True)
    with store.immediate(db):
        db["notes"].insert({"id": 1, "body": "a"})
        db["notes"].upsert({"id": 1, "body": "b"}, pk="id")
        db.conn.execute("INSERT INTO notes (id, body) VALUES (?, ?)", (2, "c"))
    assert db.execute("SELECT id, body FROM notes ORDER BY id").fetchall() == [(1, "b"), (2, "c")]
    with pytest.raises(RuntimeError, match="boom"):
        with store.immediate(db):
            db["notes"].upsert({"id": 3, "body": "d"}, pk="id")
            db["other"].insert({"x": 1})  # even a table created inside is rolled back
            raise RuntimeError("boom")
    assert db.execute("SELECT count(*) FROM notes").fetchone()[0] == 2
    assert "other" not in db.table_names()
    assert not db.conn.in_transaction


def test_immediate_nests_as_a_savepoint(memory_db):
    db = memory_db
    db["t"].create({"x": int}, if_not_exists=True)
    with store.immediate(db):
        db.conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(ValueError):
            with store.immediate(db):
                db.conn.execute("INSERT INTO t VALUES (2)")
                raise ValueError("inner only")
        db.conn.execute("INSERT INTO t VALUES (3)")
    assert [r[0] for r in db.execute("SELECT x FROM t ORDER BY x")] == [1, 3]


def test_immediate_takes_the_write_lock_at_begin(db_path):
    first = store.connect(db_path)
    second = store.connect(db_path, timeout_seconds=0.2)
    try:
        with store.immediate(first):
            with pytest.raises(StoreError, match="busy"):
                with store.immediate(second):
                    pass
        with store.immediate(second):  # released after the commit
            pass
    finally:
        first.close()
        second.close()


def test_two_processes_writing_at_once_lose_nothing(db_path, tmp_path):
    db = store.connect(db_path)
    db["counters"].create({"name": str, "value": int}, pk="name", not_null={"value"})
    db["counters"].insert({"name": "writes", "value": 0})
    db["writes"].create({"worker": int, "i": int, "seq": int, "note": str}, pk=("worker", "i"),
                        not_null={"seq", "note"})
    db.close()
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, str(ROOT / "tests" / "metrics" / "store" / "store_writer.py"), str(db_path), str(w), "500",
                               str(go)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in (1, 2)]
    try:
        deadline = time.monotonic() + 60
        while not all(Path(f"{go}.ready{w}").exists() for w in (1, 2)):
            assert time.monotonic() < deadline, "writers did not start"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.01)
        go.touch()  # both start together
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == ["500", "500"]
    check = raw(db_path)
    try:
        assert check.execute("SELECT value FROM counters WHERE name = 'writes'").fetchone()[0] == 1000
        assert check.execute("SELECT count(*) FROM writes").fetchone()[0] == 1000
        # every read-then-write saw a distinct counter value: 1..1000, no lost update
        assert [r[0] for r in check.execute("SELECT seq FROM writes ORDER BY seq")] == list(range(1, 1001))
        spans = dict(check.execute("SELECT worker, min(seq) || '-' || max(seq) FROM writes GROUP BY worker"))
        lo1, hi1 = map(int, spans[1].split("-"))
        lo2, hi2 = map(int, spans[2].split("-"))
        assert lo1 < hi2 and lo2 < hi1, f"the writers did not overlap: {spans}"
        order = [w for (w,) in check.execute("SELECT worker FROM writes ORDER BY seq")]
        switches = sum(a != b for a, b in zip(order, order[1:]))
        print(f"lock hand-overs between the writers: {switches}")
        assert switches >= 10, f"the writers hardly interleaved ({switches} hand-overs)"
    finally:
        check.close()


# --------------------------------------------------------------------------- round trip

def test_round_trip_is_exact(memory_db):
    frame = full_frame()
    assert frame["timestamp"].isna().sum() == 1  # the test covers NaT, NA and NaN cells
    before = frame.copy()
    saved = store.save_messages(memory_db, frame, dataset_name="full", source_format="json", file_name="a.json")
    pd.testing.assert_frame_equal(frame, before)  # input not mutated
    assert (saved.new_rows, saved.duplicate_rows, saved.version) == (4, 0, 1)
    loaded = store.load_messages(memory_db, saved.dataset_id)
    pd.testing.assert_frame_equal(loaded, frame)
    assert list(loaded.columns) == list(store.MESSAGE_COLUMNS)
    assert str(loaded["timestamp"].dtype) == "datetime64[ns, UTC]"
    m1 = loaded.set_index("message_id").loc["m1"]
    assert m1["confidence"] == 0.1 + 0.2  # 0.30000000000000004: all 17 digits survive
    assert m1["timestamp"].value % 1_000_000_000 == 123_456_789  # nanoseconds survive


def test_round_trip_of_a_minimal_frame_and_of_an_empty_frame(memory_db):
    frame = messages_frame(conversation_rows(12))
    saved = store.save_messages(memory_db, frame, dataset_name="minimal")
    loaded = store.load_messages(memory_db, saved.dataset_id)
    pd.testing.assert_frame_equal(loaded, frame)
    assert list(loaded.columns) == ["conversation_id", "timestamp", "speaker", "text", "row"]
    empty = frame.iloc[0:0]
    saved = store.save_messages(memory_db, empty, dataset_name="empty")
    assert (saved.new_rows, saved.duplicate_rows) == (0, 0)
    pd.testing.assert_frame_equal(store.load_messages(memory_db, saved.dataset_id),
                                  empty.reset_index(drop=True))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_saving_shuffled_rows_loads_the_sorted_frame(data):
    n = data.draw(st.integers(min_value=0, max_value=25))
    texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
    rows = [{"conversation_id": data.draw(st.sampled_from(["a", "b", "é", "10", "9"])),
             "timestamp": data.draw(st.one_of(st.none(), st.integers(0, 4_000_000_000).map(
                 lambda s: pd.Timestamp(s, unit="s", tz="UTC").isoformat()))),
             "speaker": data.draw(st.sampled_from(["user", "bot", "agent", "system"])),
             "text": data.draw(texts),
             "intent": data.draw(st.one_of(st.none(), st.sampled_from(["x", "y"]))),
             "confidence": data.draw(st.one_of(st.none(), st.floats(0, 1))),
             "is_test": data.draw(st.one_of(st.none(), st.booleans()))} for i in range(n)]
    frame = messages_frame(rows) if rows else messages_frame(conversation_rows(1)).iloc[0:0]
    expected = frame[[c for c in frame.columns
                      if c in ("conversation_id", "timestamp", "speaker", "text", "row") or frame[c].notna().any()]]
    seed = data.draw(st.integers(0, 2**32 - 1))
    shuffled = frame.sample(frac=1, random_state=np.random.default_rng(seed)) if n else frame
    db = store.connect(":memory:")
    try:
        saved = store.save_messages(db, shuffled, dataset_name="h", keep_frame=True)
        assert saved.new_rows + saved.duplicate_rows == n
        loaded = store.load_messages(db, saved.dataset_id)
        pd.testing.assert_frame_equal(saved.frame, loaded)  # the in-memory view equals the read-back
        keys = store.message_keys(frame)
        if not keys.duplicated().any():
            pd.testing.assert_frame_equal(loaded, expected.reset_index(drop=True))
        else:  # the same message twice is stored once
            assert len(loaded) == keys.nunique() == saved.new_rows
    finally:
        db.close()


def _parts(db, dataset_id):
    return db.execute("SELECT part, load_id, row_count, data FROM message_parts WHERE dataset_id = ? ORDER BY part",
                      (dataset_id,)).fetchall()


def _part_table(data: bytes):
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(data))


def _all_parts_table(db, dataset_id):
    """Every part of the dataset as one Arrow table (a column a part lacks is null there)."""
    import pyarrow as pa

    return pa.concat_tables([_part_table(data) for *_, data in _parts(db, dataset_id)], promote_options="default")


def test_a_save_is_stored_as_parts_and_read_back_whole(memory_db, monkeypatch):
    from metrics.core.facts import DEFAULT_BUCKETS, shard_of

    frame = messages_frame(conversation_rows(150))
    monkeypatch.setattr(store, "_PART_ROWS", 7)  # each bucket's messages in parts of at most 7
    saved = store.save_messages(memory_db, frame, dataset_name="parts")
    parts = _parts(memory_db, saved.dataset_id)
    buckets = dict(memory_db.execute("SELECT part, bucket FROM message_parts").fetchall())
    assert [p for p, *_ in parts] == list(range(1, len(parts) + 1))
    assert {load for _, load, _, _ in parts} == {saved.load_id}
    assert all(1 <= n <= 7 for _, _, n, _ in parts) and sum(n for _, _, n, _ in parts) == 150
    assert [_part_table(data).num_rows for *_, data in parts] == [n for _, _, n, _ in parts]
    for number, _, _, data in parts:  # every part holds one bucket: the hash of its conversations
        ids = _part_table(data).column("conversation_id").to_pandas()
        assert set(shard_of(ids, DEFAULT_BUCKETS)) == {buckets[number]}
    assert [buckets[p] for p, *_ in parts] == sorted(buckets[p] for p, *_ in parts)  # a bucket's parts in a row
    pd.testing.assert_frame_equal(store.load_messages(memory_db, saved.dataset_id), frame)


def test_a_part_above_sqlites_size_limit_is_a_clear_error_and_saves_nothing(memory_db):
    frame = messages_frame(conversation_rows(150))
    memory_db.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 300)  # no part of 150 messages fits in 300 bytes
    try:
        with pytest.raises(StoreError, match="could not save 150 message.*'big'.*too big.*Nothing was saved"):
            store.save_messages(memory_db, frame, dataset_name="big")
    finally:
        memory_db.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1_000_000_000)
    assert memory_db.execute("SELECT count(*) FROM datasets").fetchone()[0] == 0
    assert memory_db.execute("SELECT count(*) FROM message_parts").fetchone()[0] == 0


def test_load_reads_one_snapshot_while_another_session_writes(db_path, monkeypatch):
    reader, writer = store.connect(db_path), store.connect(db_path)
    try:
        saved = store.save_messages(reader, messages_frame(conversation_rows(30)), dataset_name="live")
        later = messages_frame([dict(r, text=r["text"] + " later") for r in conversation_rows(30)])
        real_decode, calls = store._decode_parts, []

        def decode_with_a_concurrent_save(blobs, columns):
            calls.append(columns)
            if len(calls) == 1:  # after the parts were read, another session adds 30 messages
                store.save_messages(writer, later, dataset_name="live")
            return real_decode(blobs, columns)

        monkeypatch.setattr(store, "_decode_parts", decode_with_a_concurrent_save)
        assert len(store.load_messages(reader, saved.dataset_id)) == 30  # not a mix of before and after
        assert len(store.load_messages(reader, saved.dataset_id)) == 60
        assert store.get_dataset(reader, saved.dataset_id).message_count == 60
    finally:
        reader.close()
        writer.close()


def test_missing_values_are_stored_as_nulls_and_values_keep_their_types(memory_db):
    import pyarrow as pa

    saved = store.save_messages(memory_db, full_frame(), dataset_name="types")
    table = _all_parts_table(memory_db, saved.dataset_id)
    types = {f.name: f.type for f in table.schema}
    assert types["timestamp"] == pa.timestamp("ns", tz="UTC") and types["confidence"] == pa.float64()
    assert types["is_test"] == pa.bool_() and types["text"] == pa.large_string() and types["row"] == pa.int64()
    rows = table.to_pylist()
    agent = next(r for r in rows if r["text"] == "<script>alert(1)</script>")
    # the agent message of c2: no timestamp, id m3, confidence 1e-300, is_test True, no event, value 0.0
    assert (agent["timestamp"], agent["message_id"], agent["confidence"], agent["is_test"], agent["event"],
            agent["conversion_value"]) == (None, "m3", 1e-300, True, None, 0.0)
    assert table.column("conversion_value").null_count == 2  # NaN is stored as null, not as a NaN double
    assert sorted(r["msg_key"] for r in rows) == sorted(store.message_keys(full_frame()))


def test_an_all_missing_optional_column_is_not_stored(memory_db):
    frame = messages_frame([dict(r, intent=None, channel="web") for r in conversation_rows(70)])
    saved = store.save_messages(memory_db, frame, dataset_name="sparse")
    parts = _parts(memory_db, saved.dataset_id)
    assert all("intent" not in _part_table(p[3]).column_names and "channel" in _part_table(p[3]).column_names
               for p in parts)
    assert sum(p[2] for p in parts) == 70
    assert store.get_dataset(memory_db, saved.dataset_id).columns == ("channel",)
    assert "intent" not in store.load_messages(memory_db, saved.dataset_id).columns


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "é", "10", None]),
                          st.one_of(st.none(), st.integers(0, 5)), st.integers(1, 4), st.integers(0, 2)),
                max_size=30))
def test_several_saves_read_back_in_one_stable_order(rows):
    """Parts of several saves are merged like a stable sort_values by (conversation_id, timestamp, row),
    missing ids and NaT last, ties in key order (here the message ids m000, m001, ...)."""
    frame = pd.DataFrame({
        "conversation_id": pd.array([r[0] for r in rows], dtype="str"),
        "timestamp": pd.to_datetime([None if r[1] is None else r[1] * 10**9 for r in rows], utc=True)
        .astype("datetime64[ns, UTC]"),
        "speaker": pd.array(["user"] * len(rows), dtype="str"),
        "text": pd.array([f"t{i}" for i in range(len(rows))], dtype="str"),
        "message_id": pd.array([f"m{i:03d}" for i in range(len(rows))], dtype="str"),
        "row": np.array([r[2] for r in rows], dtype="int64"),
    })
    save_of = np.array([r[3] for r in rows], dtype="int64")
    db = store.connect(":memory:")
    try:
        for k in range(3):  # up to three uploads into one dataset, each its own parts
            part = frame[save_of == k]
            if len(part):
                saved = store.save_messages(db, part, dataset_name="d")
        if not len(frame):
            return
        expected = frame.sort_values(["conversation_id", "timestamp", "row", "message_id"], kind="stable",
                                     na_position="last").reset_index(drop=True)
        pd.testing.assert_frame_equal(store.load_messages(db, saved.dataset_id), expected)
    finally:
        db.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["k1", "k2", "k10", "é", "a", ""]), max_size=30))
def test_new_positions_are_first_occurrences_in_key_order(keys):
    series = pd.Series(keys, dtype="str")
    positions = store._new_positions(series)
    # reference: the first occurrence of each distinct key, listed by key
    first = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    assert positions.tolist() == [first[k] for k in sorted(first)]


def test_a_damaged_part_fails_loudly(memory_db):
    saved = store.save_messages(memory_db, messages_frame(conversation_rows(3)), dataset_name="junk")
    memory_db.conn.execute("UPDATE message_parts SET data = X'0badf00d'")
    with pytest.raises(StoreError, match="'junk'.*damaged.*upload it again"):
        store.load_messages(memory_db, saved.dataset_id)


# --------------------------------------------------------------------------- re-uploads and keys

@pytest.mark.parametrize("chunk_rows", [100_000, 7])
def test_overlapping_reupload_adds_only_new_rows(memory_db, monkeypatch, chunk_rows):
    monkeypatch.setattr(store, "_CHUNK_ROWS", chunk_rows)  # 7: hashing and inserting in many chunks
    full = messages_frame(conversation_rows(150))  # 15 conversations of 10 messages, no message ids
    first = store.save_messages(memory_db, full.iloc[:100], dataset_name="weekly", file_name="week1.csv")
    assert (first.new_rows, first.duplicate_rows, first.version) == (100, 0, 1)
    # the second export repeats rows 50-99 and numbers its own rows from 1 (row is not part of the key)
    second_frame = full.iloc[50:150].copy()
    second_frame["row"] = np.arange(1, 101)
    second = store.save_messages(memory_db, second_frame, dataset_name="weekly", file_name="week2.csv")
    assert (second.dataset_id, second.new_rows, second.duplicate_rows, second.version) == (first.dataset_id, 50, 50, 2)
    listed = store.list_datasets(memory_db)
    assert listed[["name", "message_count", "conversation_count", "version"]].values.tolist() == [
        ["weekly", 150, 15, 2]]  # 150 messages / 10 per conversation = 15 conversations
    loaded = store.load_messages(memory_db, first.dataset_id)
    assert len(loaded) == 150 and loaded["text"].tolist() == full["text"].tolist()
    assert loaded["row"].tolist()[:100] == list(range(1, 101))  # first upload kept its own row numbers
    assert loaded["row"].tolist()[100:] == list(range(51, 101))  # rows 100-149 are rows 51-100 of week2
    # a third, identical upload adds nothing and does not change the version
    third = store.save_messages(memory_db, second_frame, dataset_name="weekly", file_name="week2.csv")
    assert (third.new_rows, third.duplicate_rows, third.version) == (0, 100, 2)
    loads = memory_db.execute("SELECT file, new_rows, duplicate_rows FROM loads ORDER BY id").fetchall()
    assert loads == [("week1.csv", 100, 0), ("week2.csv", 50, 50), ("week2.csv", 0, 100)]
    assert store.get_dataset(memory_db, first.dataset_id).files == ("week1.csv", "week2.csv")


def test_a_small_upload_into_a_large_dataset_counts_duplicates_the_same_way(memory_db):
    # few rows against many stored ones: the stored keys are not read, the insert ignores them instead
    rows = conversation_rows(200)
    first = store.save_messages(memory_db, messages_frame(rows), dataset_name="big")
    extra = {"conversation_id": "c999", "timestamp": "2024-03-02T10:00:00Z", "speaker": "user", "text": "new"}
    small = messages_frame(rows[:5] + [extra, rows[7]])  # 6 stored messages and 1 new one
    second = store.save_messages(memory_db, small, dataset_name="big")
    assert (second.new_rows, second.duplicate_rows, second.version) == (1, 6, 2)
    info = store.get_dataset(memory_db, first.dataset_id)
    assert (info.message_count, info.conversation_count) == (201, 21)  # 20 conversations of 10, plus c999


def test_a_message_repeated_within_one_upload_is_kept_and_a_reupload_adds_nothing(memory_db):
    rows = conversation_rows(3)
    frame = messages_frame(rows + [rows[1]])  # the second message twice (same content, different row number)
    saved = store.save_messages(memory_db, frame, dataset_name="dups")
    assert (saved.new_rows, saved.duplicate_rows) == (4, 0)
    assert store.get_dataset(memory_db, saved.dataset_id).message_count == 4
    again = store.save_messages(memory_db, frame, dataset_name="dups")
    assert (again.new_rows, again.duplicate_rows) == (0, 4)
    assert store.get_dataset(memory_db, saved.dataset_id).message_count == 4
    # a message id repeated in another conversation: the first occurrence wins, so the second
    # conversation has no stored message and is not counted (1 conversation, not 2)
    ids = messages_frame([{"conversation_id": "c1", "speaker": "user", "text": "a", "message_id": "m1"},
                          {"conversation_id": "c9", "speaker": "user", "text": "b", "message_id": "m1"}])
    saved = store.save_messages(memory_db, ids, dataset_name="ids")
    info = store.get_dataset(memory_db, saved.dataset_id)
    assert (saved.new_rows, saved.duplicate_rows, info.message_count, info.conversation_count) == (1, 1, 1, 1)
    assert store.load_messages(memory_db, saved.dataset_id)["text"].tolist() == ["a"]


@pytest.mark.parametrize("chunk_rows", [100_000, 1])
def test_keys_use_message_id_when_present_and_the_content_hash_otherwise(memory_db, monkeypatch, chunk_rows):
    monkeypatch.setattr(store, "_CHUNK_ROWS", chunk_rows)
    frame = messages_frame([
        {"conversation_id": "c1", "timestamp": "1970-01-01T00:00:01Z", "speaker": "user", "text": "hi",
         "message_id": "m-1"},
        {"conversation_id": "c1", "timestamp": "1970-01-01T00:00:02.5Z", "speaker": "bot", "text": "hello",
         "message_id": None},
        {"conversation_id": "c2", "timestamp": None, "speaker": "user", "text": None, "message_id": None},
    ])
    keys = store.message_keys(frame)
    # hand-built: conversation_id, UTC epoch ns, speaker, text joined by U+001F; missing -> ""
    assert keys.tolist() == [
        "m-1",
        hashlib.sha1("c1\x1f2500000000\x1fbot\x1fhello".encode()).hexdigest(),
        hashlib.sha1("c2\x1f\x1fuser\x1f".encode()).hexdigest(),
    ]
    first = store.save_messages(memory_db, frame, dataset_name="k")
    assert first.new_rows == 3
    edited = frame.copy()
    edited.loc[0, "text"] = "hi (edited)"  # same message id: a duplicate, the stored text is kept
    edited.loc[1, "text"] = "hello!"  # no message id: different content, a new message
    edited.loc[2, "row"] = 99  # no message id, same content, other row: a duplicate
    second = store.save_messages(memory_db, edited, dataset_name="k")
    assert (second.new_rows, second.duplicate_rows) == (1, 2)
    texts = store.load_messages(memory_db, first.dataset_id)["text"].tolist()
    assert sorted(t for t in texts if isinstance(t, str)) == ["hello", "hello!", "hi"]
    # another timestamp makes another message
    moved = frame.iloc[[1]].copy()
    moved["timestamp"] = moved["timestamp"] + pd.Timedelta(nanoseconds=1)
    assert store.save_messages(memory_db, moved, dataset_name="k").new_rows == 1


def test_datasets_are_separate(memory_db):
    frame = messages_frame(conversation_rows(20))
    a = store.save_messages(memory_db, frame, dataset_name="a")
    b = store.save_messages(memory_db, frame, dataset_name="b")
    assert a.dataset_id != b.dataset_id and b.new_rows == 20  # the same messages in another dataset are new


def test_optional_columns_are_those_holding_data(memory_db):
    base = conversation_rows(4)
    frame = messages_frame([dict(r, intent=None) for r in base])  # an all-NA column is not returned
    saved = store.save_messages(memory_db, frame, dataset_name="cols")
    assert "intent" not in store.load_messages(memory_db, saved.dataset_id).columns
    # the same messages again, now with intents: all duplicates, so still no stored intent
    store.save_messages(memory_db, messages_frame([dict(r, intent="x") for r in base]), dataset_name="cols")
    assert "intent" not in store.load_messages(memory_db, saved.dataset_id).columns
    more = messages_frame([dict(r, text=r["text"] + "!", intent="y") for r in base[:1]])
    store.save_messages(memory_db, more, dataset_name="cols")
    loaded = store.load_messages(memory_db, saved.dataset_id)
    assert loaded["intent"].notna().sum() == 1 and str(loaded["intent"].dtype) == "str"
    assert store.get_dataset(memory_db, saved.dataset_id).columns == ("intent",)


def test_save_rejects_frames_not_in_the_validated_format(memory_db):
    frame = messages_frame(conversation_rows(2))
    with pytest.raises(StoreError, match="sentiment"):
        store.save_messages(memory_db, frame.assign(sentiment=0.5), dataset_name="x")
    with pytest.raises(StoreError, match="row"):
        store.save_messages(memory_db, frame.drop(columns="row"), dataset_name="x")
    with pytest.raises(ConfigError, match="'  '"):
        store.save_messages(memory_db, frame, dataset_name="  ")
    with pytest.raises(ConfigError, match="-1"):
        store.save_messages(memory_db, frame, dataset_name="x", skipped_rows=-1)
    assert len(store.list_datasets(memory_db)) == 0


def test_real_twcs_exports_overlapping_by_a_thousand_tweets(memory_db):
    from metrics.io.loaders import load_bytes

    raw_csv = pd.read_csv(shared_path("twcs_sample", "twcs.csv"), dtype=str, keep_default_na=False)
    raw_csv = raw_csv.rename(columns={"Unnamed: 0": ""})

    def export(part: pd.DataFrame, name: str) -> pd.DataFrame:
        return load_bytes(part.to_csv(index=False).encode(), name, on_error="skip").frame

    week1, week2 = export(raw_csv.iloc[:3000], "week1.csv"), export(raw_csv.iloc[2000:], "week2.csv")
    first = store.save_messages(memory_db, week1, dataset_name="twcs", source_format="twcs")
    second = store.save_messages(memory_db, week2, dataset_name="twcs", source_format="twcs")
    # keyed on the tweet id: new = tweets of week 2 not in week 1 (threads are rebuilt per file, ids are not)
    new = week2[~week2["message_id"].isin(set(week1["message_id"]))]
    assert (first.new_rows, second.new_rows, second.duplicate_rows) == (len(week1), len(new), len(week2) - len(new))
    assert 900 < second.duplicate_rows <= 1000
    info = store.get_dataset(memory_db, first.dataset_id)
    assert info.message_count == len(set(week1["message_id"]) | set(week2["message_id"]))
    assert info.conversation_count == pd.concat([week1["conversation_id"], new["conversation_id"]]).nunique()


def test_the_generated_sample_round_trips(memory_db):
    from metrics.io.loaders import load_bytes

    path = ROOT / "data" / "sample_transcripts.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent (generate it with data/generate.py)")
    frame = load_bytes(path.read_bytes(), path.name).frame
    saved = store.save_messages(memory_db, frame, dataset_name="sample", keep_frame=True)
    expected = frame[[c for c in frame.columns
                      if c in ("conversation_id", "timestamp", "speaker", "text", "row") or frame[c].notna().any()]]
    pd.testing.assert_frame_equal(store.load_messages(memory_db, saved.dataset_id), expected)
    pd.testing.assert_frame_equal(saved.frame, expected)
    info = store.get_dataset(memory_db, saved.dataset_id)
    assert (info.message_count, info.conversation_count) == (len(frame), frame["conversation_id"].nunique())


# --------------------------------------------------------------------------- atomic saves

def test_a_failure_mid_save_leaves_nothing(memory_db, monkeypatch):
    frame = messages_frame(conversation_rows(100))
    monkeypatch.setattr(store, "_PART_ROWS", 50)  # two parts: the second one fails after the first was written
    memory_db.conn.execute("CREATE TRIGGER boom BEFORE INSERT ON message_parts WHEN NEW.part = 2 "
                           "BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
    with pytest.raises(StoreError, match="injected failure"):
        store.save_messages(memory_db, frame, dataset_name="half")
    for table in ("datasets", "message_parts", "loads"):
        assert memory_db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    memory_db.conn.execute("DROP TRIGGER boom")
    saved = store.save_messages(memory_db, frame.iloc[:50], dataset_name="half")
    assert saved.new_rows == 50


def test_a_failed_reupload_leaves_the_dataset_as_it_was(memory_db, monkeypatch):
    frame = messages_frame(conversation_rows(100))
    saved = store.save_messages(memory_db, frame.iloc[:40], dataset_name="keep")
    before = store.get_dataset(memory_db, saved.dataset_id)
    parts_before = memory_db.execute("SELECT count(*) FROM message_parts").fetchone()[0]

    def fail(*args, **kwargs):
        raise RuntimeError("injected after the inserts")

    monkeypatch.setattr(store, "_dataset_counts", fail)  # counted after the new part was written
    with pytest.raises(RuntimeError, match="injected"):
        store.save_messages(memory_db, frame.assign(intent="x"), dataset_name="keep")
    assert store.get_dataset(memory_db, saved.dataset_id) == before
    assert memory_db.execute("SELECT count(*), sum(row_count) FROM message_parts").fetchone() == (parts_before, 40)
    assert memory_db.execute("SELECT count(*) FROM loads").fetchone()[0] == 1
    assert not memory_db.conn.in_transaction


# --------------------------------------------------------------------------- datasets

def test_list_rename_get_and_version(memory_db):
    empty = store.list_datasets(memory_db)
    assert list(empty.columns) == ["id", "name", "message_count", "conversation_count", "created_at",
                                   "updated_at", "version", "source_format"] and len(empty) == 0
    saved = store.save_messages(memory_db, messages_frame(conversation_rows(5)), dataset_name="old",
                                source_format="jsonl")
    listed = store.list_datasets(memory_db)
    assert listed.loc[0, "source_format"] == "jsonl" and str(listed["created_at"].dtype) == "datetime64[ns, UTC]"
    assert store.dataset_version(memory_db, saved.dataset_id) == 1
    assert store.rename_dataset(memory_db, saved.dataset_id, " new ") == 2
    info = store.get_dataset(memory_db, saved.dataset_id)
    assert (info.name, info.version, info.message_count, info.conversation_count) == ("new", 2, 5, 1)
    other = store.save_messages(memory_db, messages_frame(conversation_rows(1)), dataset_name="other")
    with pytest.raises(ConfigError, match="'new'"):
        store.rename_dataset(memory_db, other.dataset_id, "new")
    with pytest.raises(StoreError, match="12345"):
        store.dataset_version(memory_db, 12345)
    with pytest.raises(StoreError, match="12345"):
        store.load_messages(memory_db, 12345)
    with pytest.raises(ConfigError, match="'1'"):
        store.get_dataset(memory_db, "1")


# --------------------------------------------------------------------------- delete

def test_delete_removes_everything_of_the_dataset_from_the_file(db_path):
    db = store.connect(db_path)
    marker_a, marker_b = "zebra-ALPHA-secret-4711", "yak-BRAVO-kept-0815"
    a = store.save_messages(db, messages_frame([dict(r, text=f"{marker_a} {i}", intent="x")
                                                for i, r in enumerate(conversation_rows(300))]), dataset_name="A")
    b = store.save_messages(db, messages_frame([dict(r, text=f"{marker_b} {i}")
                                                for i, r in enumerate(conversation_rows(30))]), dataset_name="B")
    # tables other features add: a derived cache, links into the message parts, a link under another column name
    db["derived_cache"].create({"dataset_id": int, "version": int, "payload": str}, pk=("dataset_id", "version"))
    db.conn.execute("CREATE TABLE review_links (msg_dataset INTEGER NOT NULL, msg_part INTEGER NOT NULL, "
                    "reviewer TEXT, FOREIGN KEY (msg_dataset, msg_part) REFERENCES message_parts(dataset_id, part))")
    db.conn.execute("CREATE TABLE topic_labels (ds INTEGER REFERENCES datasets(id), label TEXT)")
    db["settings"].insert({"key": "theme", "value": "dark"})
    for d in (a, b):
        db["derived_cache"].insert({"dataset_id": d.dataset_id, "version": 1, "payload": f"cache {d.dataset_id}"})
        part = db.execute("SELECT part FROM message_parts WHERE dataset_id = ? LIMIT 1", (d.dataset_id,)).fetchone()[0]
        db.conn.execute("INSERT INTO review_links VALUES (?, ?, 'ann')", (d.dataset_id, part))
        db.conn.execute("INSERT INTO topic_labels VALUES (?, 'billing')", (d.dataset_id,))
    stored_parts_a = [p for p, *_ in _parts(db, a.dataset_id)]
    stored_a = b"".join(data for *_, data in _parts(db, a.dataset_id))
    # review_links sorts after message_parts and has no cascade: the delete must defer the foreign-key check
    removed = store.delete_dataset(db, a.dataset_id)
    assert len(stored_parts_a) > 1  # one part per bucket holding messages
    assert removed == {"loads": 1, "message_parts": len(stored_parts_a), "review_links": 1, "derived_cache": 1,
                       "topic_labels": 1, "datasets": 1}
    assert store.delete_dataset(db, a.dataset_id) == {}  # already gone: nothing to do
    # inspect the files while the app's connection is still open (closing it would checkpoint the WAL anyway)
    files = [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]
    blob = b"".join(p.read_bytes() for p in files)
    assert marker_a.encode() not in blob  # overwritten (secure_delete), not left in free pages or the WAL
    assert marker_b.encode() in blob
    # nor any 64-byte stretch of the deleted, compressed part
    # (but the Parquet framing every small part shares, e.g. the footers of B's parts, which are kept)
    stored_b = b"".join(data for *_, data in _parts(db, b.dataset_id))
    stretches = [stored_a[i:i + 64] for i in range(0, len(stored_a) - 64, 97)]
    own = [s for s in stretches if s not in stored_b]
    assert len(stored_a) > 1000 and len(own) > len(stretches) // 2 and all(s not in blob for s in own)
    db.close()

    check = raw(db_path)
    try:
        assert check.execute("SELECT id, name FROM datasets").fetchall() == [(b.dataset_id, "B")]
        for table, column in [("message_parts", "dataset_id"), ("loads", "dataset_id"),
                              ("derived_cache", "dataset_id"),
                              ("review_links", "msg_dataset"), ("topic_labels", "ds")]:
            counts = dict(check.execute(f"SELECT {column}, count(*) FROM {table} GROUP BY {column}").fetchall())
            assert a.dataset_id not in counts and counts.get(b.dataset_id, 0) >= 1, (table, counts)
        assert check.execute("SELECT count(*) FROM settings").fetchone()[0] == 1
        assert check.execute("PRAGMA foreign_key_check").fetchall() == []
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        check.close()
    blob = db_path.read_bytes()  # all connections closed: the WAL is folded into the file
    assert marker_a.encode() not in blob and marker_b.encode() in blob
    db = store.connect(db_path)
    again = store.save_messages(db, messages_frame(conversation_rows(1)), dataset_name="A")
    assert again.dataset_id > b.dataset_id  # ids of deleted datasets are never reused (caches key on them)
    db.close()


def test_a_delete_that_would_leave_a_dangling_reference_deletes_nothing(memory_db):
    saved = store.save_messages(memory_db, messages_frame(conversation_rows(10)), dataset_name="x")
    # a reference into loads.id is not a dataset id, so delete_dataset cannot clean it
    memory_db.conn.execute("CREATE TABLE load_notes (load_ref INTEGER REFERENCES loads(id), note TEXT)")
    memory_db.conn.execute("INSERT INTO load_notes VALUES (?, 'n')", (saved.load_id,))
    with pytest.raises(StoreError, match="Nothing was deleted"):
        store.delete_dataset(memory_db, saved.dataset_id)
    assert store.get_dataset(memory_db, saved.dataset_id).message_count == 10
    assert memory_db.execute("SELECT sum(row_count) FROM message_parts").fetchone()[0] == 10
    assert not memory_db.conn.in_transaction


# --------------------------------------------------------------------------- migrations

def test_a_new_store_is_at_the_current_version(memory_db):
    assert store.schema_version(memory_db) == store.SCHEMA_VERSION == len(store.MIGRATIONS)
    applied = memory_db.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [v for (v,) in applied] == [v for v, _, _ in store.MIGRATIONS]


def test_migrations_are_idempotent(db_path):
    db = store.connect(db_path)
    schema = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    assert store.migrate(db) == store.SCHEMA_VERSION
    assert store.migrate(db) == store.SCHEMA_VERSION
    db.close()
    db = store.connect(db_path)
    assert db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == schema
    assert db.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == store.SCHEMA_VERSION
    db.close()


def test_a_version_1_store_migrates_to_the_current_version(db_path):
    old = sqlite_utils.Database(sqlite3.connect(str(db_path), isolation_level=None))
    assert store.migrate(old, target=1) == 1
    assert "columns" not in {c.name for c in old["datasets"].columns}
    # data written the way version 1 wrote it
    old.conn.execute("INSERT INTO datasets (name, created_at, updated_at, message_count, conversation_count) "
                     "VALUES ('legacy', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z', 2, 1)")
    old.conn.executemany(
        "INSERT INTO messages (dataset_id, msg_key, conversation_id, timestamp, speaker, text, intent, row) "
        "VALUES (1, ?, 'c1', ?, ?, ?, ?, ?)",
        [("k1", 1_704_067_200_000_000_000, "user", "hi", "greet", 1), ("k2", None, "bot", "hello", None, 2)])
    old.close()
    db = store.connect(db_path)
    try:
        assert store.schema_version(db) == store.SCHEMA_VERSION
        assert store.get_dataset(db, 1).columns == ("intent",)  # backfilled by migration 2
        loaded = store.load_messages(db, 1)
        expected = messages_frame([
            {"conversation_id": "c1", "timestamp": "2024-01-01T00:00:00Z", "speaker": "user", "text": "hi",
             "intent": "greet"},
            {"conversation_id": "c1", "timestamp": None, "speaker": "bot", "text": "hello", "intent": None}])
        pd.testing.assert_frame_equal(loaded, expected)
    finally:
        db.close()


def test_a_version_2_store_moves_its_rows_into_parts_per_upload(db_path):
    old = sqlite_utils.Database(sqlite3.connect(str(db_path), isolation_level=None))
    assert store.migrate(old, target=2) == 2
    old.conn.execute("INSERT INTO datasets (name, created_at, updated_at, message_count, conversation_count, "
                     "columns) VALUES ('legacy', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z', 4, 2, "
                     "'[\"message_id\", \"confidence\", \"is_test\"]')")
    t = 1_704_067_200_000_000_000
    old.conn.executemany(  # three uploads (load 1, load 2, and rows of version 1 without a load id)
        "INSERT INTO messages (dataset_id, msg_key, load_id, conversation_id, timestamp, speaker, text, message_id, "
        "confidence, is_test, row) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [("m4", 2, "c2", t + 5, "user", "later", "m4", None, None, 1),
         ("m1", 1, "c1", t, "user", "hi", "m1", 0.25, 1, 1),
         ("m2", 1, "c1", None, "bot", "hello", "m2", None, 0, 2),
         ("m3", None, "c2", t, "user", "other", "m3", 0.5, None, 3)])
    old.close()
    db = store.connect(db_path)
    try:
        assert "messages" not in db.table_names()
        parts = db.execute("SELECT load_id, sum(row_count) FROM message_parts GROUP BY load_id").fetchall()
        assert parts == [(None, 1), (1, 2), (2, 1)]  # migration 16 split each upload's part by bucket
        expected = messages_frame([
            {"conversation_id": "c1", "timestamp": "2024-01-01T00:00:00Z", "speaker": "user", "text": "hi",
             "message_id": "m1", "confidence": 0.25, "is_test": True, "row": 1},
            {"conversation_id": "c1", "timestamp": None, "speaker": "bot", "text": "hello", "message_id": "m2",
             "confidence": None, "is_test": False, "row": 2},
            {"conversation_id": "c2", "timestamp": "2024-01-01T00:00:00Z", "speaker": "user", "text": "other",
             "message_id": "m3", "confidence": 0.5, "is_test": None, "row": 3},
            {"conversation_id": "c2", "timestamp": pd.Timestamp(t + 5, tz="UTC"), "speaker": "user", "text": "later",
             "message_id": "m4", "confidence": None, "is_test": None}])
        expected["row"] = [1, 2, 3, 1]
        pd.testing.assert_frame_equal(store.load_messages(db, 1), expected)
        # a re-upload after the migration still finds the migrated keys
        again = store.save_messages(db, expected, dataset_name="legacy")
        assert (again.new_rows, again.duplicate_rows) == (0, 4)
    finally:
        db.close()


def test_a_store_from_a_newer_chatlens_is_refused(db_path):
    store.connect(db_path).close()
    check = raw(db_path)
    check.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', '2030-01-01T00:00:00Z')")
    check.commit()
    check.close()
    with pytest.raises(StoreError, match="99"):
        store.connect(db_path)
    with pytest.raises(ConfigError, match="7"):
        store.migrate(store.connect(":memory:"), target=7)


def test_every_schema_column_is_stored_in_a_part(memory_db):
    frame = full_frame()
    assert {c.name for c in COLUMNS} | {"row"} == set(frame.columns)  # the fixture has every column
    saved = store.save_messages(memory_db, frame, dataset_name="all")
    assert set(_all_parts_table(memory_db, saved.dataset_id).column_names) == set(frame.columns) | {"msg_key"}


# --------------------------------------------------------------------------- the frame kept by a fresh save

def _kept_equals_loaded(db, frame, name):
    """save_messages(keep_frame=True).frame is exactly what load_messages reads back."""
    before = frame.copy()
    saved = store.save_messages(db, frame, dataset_name=name, keep_frame=True)
    pd.testing.assert_frame_equal(frame, before)  # input not mutated
    assert saved.frame is not None
    pd.testing.assert_frame_equal(saved.frame, store.load_messages(db, saved.dataset_id))
    return saved


def test_kept_frame_with_shuffled_rows_repeated_keys_and_repeated_row_numbers(memory_db):
    frame = full_frame()
    twice = pd.concat([frame, frame.iloc[[1, 0]].assign(text=["changed", "changed"])], ignore_index=True)
    twice["row"] = [1, 1, 2, 2, 3, 3]  # row numbers repeat (several files in one zip)
    shuffled = twice.sample(frac=1, random_state=np.random.default_rng(3)).reset_index(drop=True)
    saved = _kept_equals_loaded(memory_db, shuffled, "dups")
    assert (saved.new_rows, saved.duplicate_rows) == (5, 1)  # m1 twice; the changed bot message is new content


def test_kept_frame_drops_a_column_whose_only_value_was_in_a_duplicate(memory_db):
    frame = messages_frame([dict(conversation_id="a", speaker="user", text="hi", message_id="m1"),
                            dict(conversation_id="a", speaker="user", text="hi", message_id="m1", topic="billing")])
    saved = _kept_equals_loaded(memory_db, frame, "dup-col")
    assert "topic" not in saved.frame.columns


def test_kept_frame_only_when_the_dataset_held_no_messages(memory_db):
    empty = messages_frame(conversation_rows(1)).iloc[0:0]
    created = _kept_equals_loaded(memory_db, empty, "grows")  # an empty dataset: the empty frame
    assert len(created.frame) == 0
    _kept_equals_loaded(memory_db, messages_frame(conversation_rows(20)), "grows")  # still held nothing
    again = store.save_messages(memory_db, messages_frame(conversation_rows(30)), dataset_name="grows",
                                keep_frame=True)
    assert again.frame is None and again.new_rows == 10  # it holds the first 20 now: read it back instead
    assert store.save_messages(memory_db, full_frame(), dataset_name="plain").frame is None  # not asked


@pytest.mark.parametrize("path", sorted((ROOT / "tests" / "fixtures" / "hostile").iterdir())
                         + sorted((ROOT / "tests" / "fixtures" / "good").iterdir()), ids=lambda p: p.name)
def test_kept_frame_equals_the_read_back_for_every_corpus_file(memory_db, path):
    from metrics.errors import ChatlensError
    from metrics.io.loaders import load_path

    try:
        frame = load_path(path, on_error="skip").frame
    except ChatlensError as exc:  # refused outright: nothing to save (its message is tested elsewhere)
        assert path.name in str(exc)
        return
    try:
        _kept_equals_loaded(memory_db, frame, "corpus")
    except StoreError as exc:  # e.g. a lone surrogate SQLite cannot store: nothing saved, nothing kept
        assert "Nothing was saved" in str(exc)


@pytest.mark.parametrize("parts", [("twcs_sample", "twcs.csv"), ("rasa_tracker_customer_support", "trackers.jsonl"),
                                   ("convai2_wild", "data", "data_volunteers.json"),
                                   ("hint3", "preds", "rasa_curekart.csv")], ids=lambda p: p[0])
def test_kept_frame_equals_the_read_back_on_real_exports(memory_db, parts):
    from metrics.io.loaders import load_path

    frame = load_path(shared_path(*parts), on_error="skip").frame
    assert len(frame) > 0
    _kept_equals_loaded(memory_db, frame, "real")


def test_create_only_refuses_an_existing_dataset_and_saves_nothing(memory_db):
    frame = messages_frame(conversation_rows(4))
    store.save_messages(memory_db, frame, dataset_name="first", create_only=True)
    other = messages_frame(conversation_rows(2, per_conversation=1))
    with pytest.raises(ConfigError, match="exists already"):
        store.save_messages(memory_db, other, dataset_name=" first ", create_only=True)
    info = store.find_dataset(memory_db, "first")
    assert (info.message_count, info.version) == (4, 1)
    assert memory_db.conn.execute("SELECT count(*) FROM loads").fetchone()[0] == 1
