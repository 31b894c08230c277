"""The engines (metrics.engines) and the bucketed store they read.

* the store: every part holds one bucket; a conversation uploaded in two loads stays in one bucket;
  ``iter_buckets`` gives ``load_messages`` bucket by bucket; a file from before step 16 keeps every row;
* the local engine equals the in-memory reference (``facts_of_frame`` over the same shards);
* Spark (one module-scoped session, skipped with the reason when PySpark or Java is missing): ``--engine spark``
  equals ``--engine local`` on the sample and on every real export of ../shared/data, every number to 1e-9.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import sqlite_utils

from conftest import ROOT, SHARED_DATA, messages_frame
from metrics import engines, store
from metrics.core import facts as F
from metrics.store import migrations

SAMPLE = ROOT / "data" / "sample_transcripts.csv.gz"
#: The real exports (as /work/tmp/parity.py names them), under ../shared/data.
REAL_EXPORTS = {
    "rasa": "rasa_tracker_customer_support/trackers.jsonl",
    "twcs": "twcs_sample/twcs.csv",
    "convai": "convai2_wild/data/data_volunteers.json",
    "copilot": "copilot_studio_transcripts/demos/misc/Copilot-Studio-Advanced-Analytics/examples/"
               "conversationtranscripts.json",
    "hint3": "hint3/dataset/v1/test/sofmattress_test.csv",
}
#: Few buckets keep the tests quick (the facts cost a fixed time per shard); the store's default is 64.
BUCKETS = 8


def _conversations(n: int, *, per: int = 4, start: int = 0, text: str = "m") -> list[dict]:
    rows = []
    for c in range(start, start + n):
        for k in range(per):
            rows.append({"conversation_id": f"c{c:03d}", "timestamp": f"2024-01-{1 + c % 27:02d}T10:{k:02d}:00Z",
                         "speaker": "user" if k % 2 == 0 else "bot", "text": f"{text} {c} {k}",
                         "intent": "greet" if k == 0 else None, "row": len(rows) + 1})
    return rows


def _sample_subset(conversations: int = 120) -> pd.DataFrame:
    from metrics.io.loaders import load_path

    frame = load_path(str(SAMPLE)).frame
    keep = frame["conversation_id"].isin(frame["conversation_id"].drop_duplicates().iloc[:conversations])
    return frame[keep].reset_index(drop=True)


# --------------------------------------------------------------------------- the bucketed store

def test_a_conversation_uploaded_in_two_loads_stays_in_one_bucket(tmp_path):
    db = store.connect(tmp_path / "s.db")
    try:
        rows = _conversations(30)
        first = messages_frame([r for r in rows if r["text"].endswith((" 0", " 1"))])
        later = messages_frame([r for r in rows if r["text"].endswith((" 2", " 3"))])
        a = store.save_messages(db, first, dataset_name="d", buckets=BUCKETS)
        b = store.save_messages(db, later, dataset_name="d", buckets=64)  # ignored: fixed at creation
        assert (a.new_rows, b.new_rows) == (60, 60) and store.dataset_buckets(db, a.dataset_id) == BUCKETS
        where: dict[str, set] = {}
        for load_id, bucket, data in db.execute("SELECT load_id, bucket, data FROM message_parts").fetchall():
            ids = store._decode_parts([data], ["conversation_id"]).column("conversation_id").to_pylist()
            assert set(F.shard_of(pd.Series(ids), BUCKETS)) == {bucket}  # one bucket per part
            for cid in ids:
                where.setdefault(cid, set()).add((bucket, load_id))
        assert len(where) == 30
        assert all(len({bk for bk, _ in v}) == 1 and len({ld for _, ld in v}) == 2 for v in where.values())
    finally:
        db.close()


def test_iter_buckets_gives_load_messages_bucket_by_bucket(tmp_path):
    db = store.connect(tmp_path / "s.db")
    try:
        rows = _conversations(40)
        for i, r in enumerate(rows):
            if i % 7 == 3:
                r["timestamp"] = None  # NaT sorts last in load_messages: in the buckets too
        saved = store.save_messages(db, messages_frame(rows[::2]), dataset_name="d", buckets=BUCKETS)
        store.save_messages(db, messages_frame(rows[1::2]).assign(channel="web"), dataset_name="d")
        whole = store.load_messages(db, saved.dataset_id)
        got = list(store.iter_buckets(db, saved.dataset_id))
        assert [b for b, _ in got] == sorted({b for b, _ in got}) and len(got) > 1
        bucket = F.shard_of(whole["conversation_id"], BUCKETS)
        for b, frame in got:
            pd.testing.assert_frame_equal(frame, whole[bucket == b].reset_index(drop=True))
        union = pd.concat([f for _, f in got], ignore_index=True)
        union = union.sort_values("conversation_id", kind="stable").reset_index(drop=True)
        pd.testing.assert_frame_equal(union, whole)
        unused = sorted(set(range(BUCKETS)) - {b for b, _ in got})
        if unused:  # a bucket without messages, asked for: the empty frame of the dataset's columns
            (b, empty), = store.iter_buckets(db, saved.dataset_id, buckets=unused[:1])
            assert (b, len(empty), list(empty.dtypes)) == (unused[0], 0, list(whole.dtypes))
        plan = store.bucket_plan(db, saved.dataset_id)
        assert plan.export_end == whole["timestamp"].max() and plan.columns == tuple(whole.columns)
        assert sum(plan.rows) == len(whole) and plan.buckets == tuple(b for b, _ in got)
    finally:
        db.close()


def test_one_save_split_into_buckets_reads_back_in_the_saved_order(tmp_path):
    db = store.connect(tmp_path / "s.db")
    try:
        frame = _sample_subset(200)
        saved = store.save_messages(db, frame, dataset_name="one", keep_frame=True)  # 64 buckets
        assert db.execute("SELECT count(DISTINCT bucket) FROM message_parts").fetchone()[0] > 10
        pd.testing.assert_frame_equal(store.load_messages(db, saved.dataset_id), saved.frame)
    finally:
        db.close()


def _old_layout_file(path, frames: list[pd.DataFrame]) -> pd.DataFrame:
    """A version-15 file (parts without buckets, one part per upload, no ``datasets.buckets``) holding the
    uploads of ``frames``; returns what load_messages gave for it (computed by today's code elsewhere)."""
    scratch = store.connect(":memory:")
    old = sqlite_utils.Database(sqlite3.connect(str(path), isolation_level=None))
    try:
        assert migrations.migrate(old, target=15) == 15
        for frame in frames:
            saved = store.save_messages(scratch, frame, dataset_name="legacy", buckets=1)
        expected = store.load_messages(scratch, saved.dataset_id)
        for table, columns in (("datasets", "id, name, created_at, updated_at, source_format, files, message_count, "
                                            "conversation_count, version, columns"),
                               ("loads", "id, dataset_id, at, file, new_rows, duplicate_rows, skipped_rows"),
                               ("message_parts", "dataset_id, part, load_id, row_count, data")):
            rows = scratch.execute(f"SELECT {columns} FROM {table}").fetchall()
            marks = ", ".join("?" * len(rows[0]))
            old.conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
    finally:
        scratch.close()
        old.close()
    return expected


def test_an_old_file_migrates_into_buckets_and_loses_no_row(tmp_path):
    path = tmp_path / "old.db"
    rows = _conversations(50, per=3)
    expected = _old_layout_file(path, [messages_frame(rows[:80]), messages_frame(rows[60:])])
    raw = sqlite3.connect(str(path))
    assert raw.execute("SELECT count(*), sum(row_count) FROM message_parts").fetchone() == (2, 150)
    raw.close()
    db = store.connect(path)
    try:
        assert store.schema_version(db) == store.SCHEMA_VERSION
        parts = db.execute("SELECT load_id, bucket, row_count, data FROM message_parts").fetchall()
        assert sum(n for _, _, n, _ in parts) == 150 and len(parts) > 2
        assert {load for load, *_ in parts} == {1, 2}
        for _, bucket, n, data in parts:
            ids = store._decode_parts([data], ["conversation_id"]).column("conversation_id").to_pandas()
            assert len(ids) == n and set(F.shard_of(ids, 64)) == {bucket}
        pd.testing.assert_frame_equal(store.load_messages(db, 1), expected)
        assert store.dataset_buckets(db, 1) == 64
        # a later upload of a migrated dataset: into the migrated buckets, nothing doubled
        again = store.save_messages(db, messages_frame(rows), dataset_name="legacy")
        assert (again.new_rows, again.duplicate_rows) == (0, 150)
    finally:
        db.close()


def test_two_writers_at_once_keep_every_conversation_in_one_bucket(tmp_path):
    path = tmp_path / "w.db"
    store.connect(path).close()
    code = ("import sys; sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})\n"
            "from conftest import messages_frame\nfrom metrics import store\nfrom test_engines import _conversations\n"
            "db = store.connect({path!r}, timeout_seconds=60)\n"
            "for k in range(3):\n"
            "    store.save_messages(db, messages_frame(_conversations(20, start={start} + 5 * k, text='w{start}')),"
            " dataset_name='shared')\n")
    procs = [subprocess.Popen([sys.executable, "-c", code.format(root=str(ROOT), tests=str(ROOT / "tests"),
                                                                  path=str(path), start=start)],
                              env=dict(os.environ, PYTHONPATH=str(ROOT / "tests" / "metrics" / "engines")))
             for start in (0, 10)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    db = store.connect(path)
    try:
        info = store.find_dataset(db, "shared")
        whole = store.load_messages(db, info.id)
        assert len(whole) == info.message_count
        buckets = {}
        for bucket, frame in store.iter_buckets(db, info.id):
            for cid in frame["conversation_id"].unique():
                assert buckets.setdefault(cid, bucket) == bucket
        assert len(buckets) == whole["conversation_id"].nunique()
    finally:
        db.close()


# --------------------------------------------------------------------------- the local engine

def _assert_facts_equal(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for family in want:
        assert list(got[family]) == list(want[family]), family
        for table in want[family]:
            pd.testing.assert_frame_equal(got[family][table], want[family][table], check_exact=False, rtol=1e-9,
                                          obj=f"{family}.{table}")


def test_the_local_engine_equals_the_in_memory_reference(tmp_path, monkeypatch):
    from metrics.engines import local

    monkeypatch.setattr(local, "TASK_MESSAGES", 100)  # several tasks, so the process pool runs
    frame = _sample_subset(120)
    path = tmp_path / "l.db"
    db = store.connect(path)
    try:
        saved = store.save_messages(db, frame.iloc[::2], dataset_name="d", buckets=BUCKETS)
        store.save_messages(db, frame.iloc[1::2], dataset_name="d")
        whole = store.load_messages(db, saved.dataset_id)
    finally:
        db.close()
    seen = []
    facts, ctx, meta = engines.run_facts(engines.StoredInput(str(path), "d"), engine="local", workers=2,
                                         progress=lambda done, total: seen.append((done, total)))
    want, want_ctx = F.facts_of_frame(whole, buckets=BUCKETS)
    assert ctx == want_ctx
    _assert_facts_equal(facts, want)
    assert seen[-1][0] == seen[-1][1] == len(seen) and 2 <= len(seen) <= BUCKETS
    assert meta == {"file": "d", "format": "store (csv)", "excluded_conversations": 0, "skipped_rows": 0,
                    "mapping": {}, "warnings": []}
    # a frame in memory (summary PATH --engine local), in this process
    got, got_ctx, _ = engines.run_facts(engines.FrameInput(frame, {}), engine="local", workers=1, buckets=BUCKETS)
    want, want_ctx = F.facts_of_frame(frame, buckets=BUCKETS)
    assert got_ctx == want_ctx
    _assert_facts_equal(got, want)


def test_the_cli_keeps_its_default_and_runs_the_local_engine(tmp_path):
    from metrics.cli import main

    path = tmp_path / "c.db"
    db = store.connect(path)
    try:
        store.save_messages(db, messages_frame(_conversations(6)), dataset_name="tiny", buckets=4)
    finally:
        db.close()
    out = subprocess.run([sys.executable, "-m", "metrics", "summary", "--db", str(path), "--dataset", "tiny",
                          "--engine", "local", "--workers", "1", "--format", "json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["dataset"]["messages"] == 24 and report["dataset"]["file"] == "tiny"
    assert "local: " in out.stderr and "shards" in out.stderr
    with pytest.raises(SystemExit):
        main(["summary", "--engine", "nope"])
    assert main(["summary", "--db", str(path), "--dataset", "tiny", "--engine", "local", "--workers", "0"]) == 2


# --------------------------------------------------------------------------- Spark

def _close(x, y, path="") -> list[str]:
    """Where two reports differ (numbers to rel 1e-9)."""
    if isinstance(x, dict) and isinstance(y, dict):
        if list(x) != list(y):
            return [f"{path}: keys {list(x)} != {list(y)}"]
        return [d for k in x for d in _close(x[k], y[k], f"{path}/{k}")]
    if isinstance(x, list) and isinstance(y, list):
        if len(x) != len(y):
            return [f"{path}: {len(x)} != {len(y)} items"]
        return [d for i, (a, b) in enumerate(zip(x, y)) for d in _close(a, b, f"{path}[{i}]")]
    if isinstance(x, float) and isinstance(y, (int, float)) and not isinstance(y, bool):
        return [] if math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) else [f"{path}: {x!r} != {y!r}"]
    return [] if (x == y and type(x) is type(y)) else [f"{path}: {x!r} != {y!r}"]


@pytest.fixture(scope="module")
def spark():
    missing = engines.spark_available()
    if missing:
        pytest.skip(f"the Spark engine cannot run here: {missing}")
    from metrics.engines import spark as spark_engine

    session = spark_engine.get_session("local[2]")
    yield session
    session.stop()
    spark_engine._SESSION = None


@pytest.fixture(scope="module")
def parity_store(tmp_path_factory):
    """The sample and every real export present, each loaded as ``summary PATH`` loads it and stored with
    BUCKETS buckets: ``(db path, {name: LoadResult}, [absent exports])``."""
    from metrics.io.loaders import load_path

    path = tmp_path_factory.mktemp("parity") / "p.db"
    db = store.connect(path)
    loaded, absent = {}, []
    try:
        for name, rel in {"sample": str(SAMPLE), **{k: str(SHARED_DATA / v) for k, v in REAL_EXPORTS.items()}}.items():
            if not os.path.exists(rel):
                absent.append(rel)
                continue
            loaded[name] = result = load_path(rel)
            store.save_messages(db, result.frame, dataset_name=name, source_format=result.format, buckets=BUCKETS)
    finally:
        db.close()
    return str(path), loaded, absent


def test_spark_equals_local_on_the_sample_and_every_real_export(spark, parity_store):
    path, loaded, absent = parity_store
    bad = {}
    for name in loaded:
        source = engines.StoredInput(path, name)
        local = engines.run_summary(source, engine="local", workers=2)
        spark_report = engines.run_summary(source, engine="spark", spark_master="local[2]")
        diffs = _close(local, spark_report)
        if diffs:
            bad[name] = diffs[:5]
    assert not bad, bad
    # the Parquet folder beside the store is reused while the version exists, and complete
    folder = f"{path}.parquet"
    assert sorted(os.listdir(folder)) == sorted(str(i) for i in range(1, len(loaded) + 1))
    assert not [n for d in os.listdir(folder) for n in os.listdir(os.path.join(folder, d)) if ".tmp" in n]
    # deleting a dataset removes its folder too (its messages must not outlive it beside the store)
    db = store.connect(path)
    try:
        store.delete_dataset(db, store.find_dataset(db, "sample").id)
    finally:
        db.close()
    assert "1" not in os.listdir(folder) and len(os.listdir(folder)) == len(loaded) - 1
    if absent:
        pytest.skip(f"compared {sorted(loaded)}; real exports absent (../shared/data is not beside the project): "
                    f"{absent}")


def test_spark_reads_a_canonical_export_as_the_loader_does(spark, tmp_path):
    from metrics.io.loaders import load_path

    result = load_path(str(SAMPLE))
    local = engines.run_summary(engines.FrameInput(result.frame, engines.file_meta(result)), engine="local",
                                workers=2, buckets=BUCKETS)
    got = engines.run_summary(engines.PathInput(str(SAMPLE)), engine="spark", buckets=BUCKETS)
    diffs = _close({k: v for k, v in local.items() if k != "dataset"}, {k: v for k, v in got.items() if k != "dataset"})
    assert not diffs, diffs[:5]
    assert got["dataset"] == local["dataset"]  # counts, meta and the loader's warnings
    # a Parquet export of the loaded frame (nanosecond timestamps, typed columns): the same numbers
    parquet = tmp_path / "sample.parquet"
    result.frame.drop(columns=["row"]).to_parquet(parquet)
    got = engines.run_summary(engines.PathInput(str(parquet), redact_pii=False), engine="spark", buckets=BUCKETS)
    local = engines.run_summary(engines.FrameInput(result.frame, {}), engine="local", workers=1)
    diffs = _close({k: v for k, v in local.items() if k != "dataset"}, {k: v for k, v in got.items() if k != "dataset"})
    assert not diffs, diffs[:5]
    odd = tmp_path / "odd.csv"
    odd.write_text("chat_id,author,body\n1,user,hi\n")
    with pytest.raises(Exception, match="canonical names"):
        engines.run_summary(engines.PathInput(str(odd)), engine="spark")


# --------------------------------------------------------------------------- facts kept in the store


def test_the_store_keeps_a_versions_facts_and_never_serves_a_stale_one(tmp_path):
    from metrics.store import facts_cache

    frame = _sample_subset(60)
    path = tmp_path / "f.db"
    db = store.connect(path)
    try:
        saved = store.save_messages(db, frame.iloc[::2], dataset_name="d", buckets=BUCKETS)
    finally:
        db.close()
    source = engines.StoredInput(str(path), "d")
    first, ctx, _ = engines.run_facts(source, engine="local", workers=1, use_cache=True)
    db = store.connect(path)
    try:
        key = facts_cache.facts_key(1, BUCKETS)
        kept = facts_cache.load_facts(db, saved.dataset_id, key)
        assert kept is not None and kept[1] == ctx
        _assert_facts_equal(kept[0], first)  # same tables, columns, dtypes and values after the round trip
        # the cached facts are what a run reads: poison them and a cached run shows the poison
        poisoned = {f: dict(t) for f, t in first.items()}
        poisoned["engagement"]["dataset"] = poisoned["engagement"]["dataset"].assign(messages=999_999)
        facts_cache.save_facts(db, saved.dataset_id, key, poisoned, ctx)
    finally:
        db.close()
    assert engines.run_summary(source, engine="local", workers=1, use_cache=True)["dataset"]["messages"] == 999_999
    assert engines.run_summary(source, engine="local", workers=1)["dataset"]["messages"] == len(frame.iloc[::2])
    # a new version (another upload) is computed afresh and replaces the entry
    db = store.connect(path)
    try:
        store.save_messages(db, frame.iloc[1::2], dataset_name="d")
    finally:
        db.close()
    report = engines.run_summary(source, engine="local", workers=1, use_cache=True)
    assert report["dataset"]["messages"] == len(frame)
    db = store.connect(path)
    try:
        keys = [r[0] for r in db.conn.execute("SELECT key FROM facts_cache")]
        assert keys == [facts_cache.facts_key(2, BUCKETS)]
        store.delete_dataset(db, saved.dataset_id)
        assert db.conn.execute("SELECT count(*) FROM facts_cache").fetchone()[0] == 0
    finally:
        db.close()
