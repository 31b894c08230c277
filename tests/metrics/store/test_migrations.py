"""metrics.store.migrations: one ordered list of numbered steps creates every table of the store.

A new file gets every table and a row per step; a file whose feature tables the old per-module ``ensure_schema``
functions (and the topics' sqlite-utils migration set) created upgrades in place, keeps every row and ends with
the schema of a new file; two connections or two processes migrating one new file at once both succeed and
record each step once; a failing step leaves no trace; a file from a newer Chatlens is refused; an up-to-date
file costs one SELECT; nothing defines or calls ``ensure_schema`` any more.
"""

from __future__ import annotations

import ast
import importlib
import sqlite3
import subprocess
import sys
import threading

import pytest
import sqlite_utils

from conftest import ROOT, messages_frame
from metrics import store
from metrics.errors import ConfigError, StoreError
from metrics.store import migrations

N = migrations.SCHEMA_VERSION

#: Every table of a new store (``sqlite_sequence`` is SQLite's own, for the AUTOINCREMENT keys).
TABLES = {
    "schema_migrations", "datasets", "loads", "message_parts", "store_secrets", "search_indexes", "sqlite_sequence",
    "goals", "alert_rules", "change_log", "backlog_items", "backlog_added", "funnels", "roi_scenarios",
    "topic_runs", "topic_snapshots", "topic_names", "topic_merges", "topic_conversations", "audit_queue",
    "reviewers", "audit_rounds", "audit_assignments", "audit_scores", "audit_score_history", "audit_labels",
    "sentiment_cache", "facts_cache",
}

#: What the feature modules' ``ensure_schema`` functions, ``Migrations("topics")`` and the search registry created
#: before the migrations existed, as SQLite recorded it (``sqlite_master.sql``, in creation order): a store file
#: of that time holds this next to core versions 1-4.
OLD_FEATURE_DDL = (
    ('CREATE TABLE "goals" (\n'
     '   "id" INTEGER PRIMARY KEY,\n'
     '   "position" INTEGER NOT NULL,\n'
     '   "name" TEXT NOT NULL,\n'
     '   "bot_type" TEXT NOT NULL,\n'
     '   "metrics" TEXT NOT NULL,\n'
     '   "target" REAL NOT NULL,\n'
     '   "red" REAL NOT NULL,\n'
     '   "green" REAL NOT NULL,\n'
     '   "direction" TEXT NOT NULL,\n'
     '   "updated_at" TEXT NOT NULL\n'
     ')'),
    ('CREATE TABLE "alert_rules" (\n'
     '   "id" INTEGER PRIMARY KEY,\n'
     '   "position" INTEGER NOT NULL,\n'
     '   "name" TEXT NOT NULL,\n'
     '   "rule" TEXT NOT NULL,\n'
     '   "min_count" INTEGER NOT NULL,\n'
     '   "enabled" INTEGER NOT NULL,\n'
     '   "updated_at" TEXT NOT NULL\n'
     ')'),
    ('CREATE TABLE change_log (id INTEGER PRIMARY KEY AUTOINCREMENT, dataset_id INTEGER, date TEXT NOT '
     "NULL, kind TEXT NOT NULL, title TEXT NOT NULL, why TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL "
     "DEFAULT '', metric TEXT NOT NULL, backlog_key TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT "
     'NULL)'),
    ('CREATE TABLE "backlog_items" (\n'
     '   "dataset_id" INTEGER NOT NULL,\n'
     '   "item_key" TEXT NOT NULL,\n'
     '   "effort" REAL NOT NULL,\n'
     '   "status" TEXT NOT NULL,\n'
     '   "change_id" INTEGER,\n'
     '   "updated_at" TEXT NOT NULL,\n'
     '   PRIMARY KEY ("dataset_id", "item_key")\n'
     ')'),
    ('CREATE TABLE backlog_added (dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE, '
     'item_key TEXT NOT NULL, source TEXT NOT NULL, subject TEXT NOT NULL, problem TEXT NOT NULL, metric '
     'TEXT NOT NULL, affected_count INTEGER NOT NULL, weeks REAL NOT NULL, page TEXT NOT NULL, query_key '
     'TEXT NOT NULL, query_value TEXT, added_at TEXT NOT NULL, PRIMARY KEY (dataset_id, item_key))'),
    ('CREATE TABLE "funnels" (\n'
     '   "name" TEXT PRIMARY KEY NOT NULL,\n'
     '   "stages" TEXT NOT NULL,\n'
     '   "created_at" TEXT NOT NULL,\n'
     '   "updated_at" TEXT NOT NULL\n'
     ')'),
    ('CREATE TABLE "roi_scenarios" (\n'
     '   "name" TEXT PRIMARY KEY,\n'
     '   "inputs" TEXT NOT NULL,\n'
     '   "source_dataset_id" INTEGER,\n'
     '   "created_at" TEXT NOT NULL,\n'
     '   "updated_at" TEXT NOT NULL\n'
     ')'),
    ('CREATE TABLE "_sqlite_migrations" (\n'
     '   "id" INTEGER PRIMARY KEY,\n'
     '   "migration_set" TEXT,\n'
     '   "name" TEXT,\n'
     '   "applied_at" TEXT\n'
     ')'),
    ('CREATE UNIQUE INDEX "idx__sqlite_migrations_migration_set_name"\n'
     '    ON "_sqlite_migrations" ("migration_set", "name")'),
    ('CREATE TABLE topic_runs (\n'
     '  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE, unit TEXT NOT NULL, '
     'dataset_version INTEGER NOT NULL, options_key TEXT NOT NULL,\n'
     '  next_id INTEGER NOT NULL, basis_next_id INTEGER, digest TEXT NOT NULL, saved_at TEXT NOT NULL, '
     'pairs_digest TEXT,\n'
     '  PRIMARY KEY (dataset_id, unit))'),
    ('CREATE TABLE topic_snapshots (\n'
     '  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE, unit TEXT NOT NULL, role '
     'TEXT NOT NULL, topic INTEGER NOT NULL, label TEXT NOT NULL,\n'
     '  text_count INTEGER NOT NULL, message_count INTEGER NOT NULL, sketch BLOB NOT NULL, terms TEXT NOT '
     'NULL,\n'
     '  PRIMARY KEY (dataset_id, unit, role, topic))'),
    ('CREATE TABLE topic_names (\n'
     '  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE, unit TEXT NOT NULL, topic '
     'INTEGER NOT NULL, name TEXT NOT NULL, source TEXT NOT NULL,\n'
     '  updated_at TEXT NOT NULL, PRIMARY KEY (dataset_id, unit, topic))'),
    ('CREATE TABLE topic_merges (\n'
     '  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE, unit TEXT NOT NULL, topic '
     'INTEGER NOT NULL, into_topic INTEGER NOT NULL, updated_at TEXT NOT NULL,\n'
     '  PRIMARY KEY (dataset_id, unit, topic))'),
    ('CREATE TABLE topic_conversations (\n'
     '  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE, unit TEXT NOT NULL,\n'
     '  conversation_id TEXT NOT NULL, topic INTEGER NOT NULL, PRIMARY KEY (dataset_id, unit, '
     'conversation_id, topic))'),
    ('CREATE TABLE "audit_queue" (\n'
     '   "dataset_id" INTEGER NOT NULL,\n'
     '   "conversation_id" TEXT NOT NULL,\n'
     '   "reason" TEXT NOT NULL,\n'
     '   "queued_at" TEXT NOT NULL,\n'
     '   PRIMARY KEY ("dataset_id", "conversation_id")\n'
     ')'),
    ('CREATE TABLE reviewers (\n'
     '  name TEXT PRIMARY KEY,\n'
     '  created_at TEXT NOT NULL\n'
     ')'),
    ('CREATE TABLE audit_rounds (\n'
     '  id INTEGER PRIMARY KEY AUTOINCREMENT,\n'
     '  name TEXT NOT NULL UNIQUE,\n'
     '  dataset_id INTEGER NOT NULL,\n'
     '  seed INTEGER NOT NULL,\n'
     '  strategy TEXT NOT NULL,\n'
     '  created_at TEXT NOT NULL,\n'
     '  created_by TEXT,\n'
     "  params TEXT NOT NULL DEFAULT '{}'\n"
     ')'),
    ('CREATE INDEX audit_rounds_dataset ON audit_rounds(dataset_id)'),
    ('CREATE TABLE audit_assignments (\n'
     '  round_id INTEGER NOT NULL,\n'
     '  dataset_id INTEGER NOT NULL,\n'
     '  conversation_id TEXT NOT NULL,\n'
     '  reviewer TEXT NOT NULL,\n'
     '  position INTEGER NOT NULL,\n'
     "  reason TEXT NOT NULL DEFAULT '',\n"
     "  role TEXT NOT NULL DEFAULT 'first',\n"
     '  PRIMARY KEY (round_id, conversation_id, reviewer)\n'
     ')'),
    ('CREATE INDEX audit_assignments_reviewer ON audit_assignments(round_id, reviewer, position)'),
    ('CREATE TABLE audit_scores (\n'
     '  round_id INTEGER NOT NULL,\n'
     '  dataset_id INTEGER NOT NULL,\n'
     '  conversation_id TEXT NOT NULL,\n'
     '  reviewer TEXT NOT NULL,\n'
     '  understood_intent INTEGER NOT NULL CHECK (understood_intent BETWEEN 1 AND 5),\n'
     '  accurate_helpful INTEGER NOT NULL CHECK (accurate_helpful BETWEEN 1 AND 5),\n'
     '  tone INTEGER NOT NULL CHECK (tone BETWEEN 1 AND 5),\n'
     '  edge_cases INTEGER NOT NULL CHECK (edge_cases BETWEEN 1 AND 5),\n'
     '  overall INTEGER NOT NULL CHECK (overall BETWEEN 1 AND 5),\n'
     "  flags TEXT NOT NULL DEFAULT '',\n"
     "  note TEXT NOT NULL DEFAULT '',\n"
     '  saved_at TEXT NOT NULL,\n'
     '  revision INTEGER NOT NULL,\n'
     '  PRIMARY KEY (round_id, conversation_id, reviewer)\n'
     ')'),
    ('CREATE TABLE audit_score_history (\n'
     '  id INTEGER PRIMARY KEY AUTOINCREMENT,\n'
     '  round_id INTEGER NOT NULL,\n'
     '  dataset_id INTEGER NOT NULL,\n'
     '  conversation_id TEXT NOT NULL,\n'
     '  reviewer TEXT NOT NULL,\n'
     '  revision INTEGER NOT NULL,\n'
     '  understood_intent INTEGER NOT NULL CHECK (understood_intent BETWEEN 1 AND 5),\n'
     '  accurate_helpful INTEGER NOT NULL CHECK (accurate_helpful BETWEEN 1 AND 5),\n'
     '  tone INTEGER NOT NULL CHECK (tone BETWEEN 1 AND 5),\n'
     '  edge_cases INTEGER NOT NULL CHECK (edge_cases BETWEEN 1 AND 5),\n'
     '  overall INTEGER NOT NULL CHECK (overall BETWEEN 1 AND 5),\n'
     "  flags TEXT NOT NULL DEFAULT '',\n"
     "  note TEXT NOT NULL DEFAULT '',\n"
     "  labels TEXT NOT NULL DEFAULT '[]',\n"
     '  saved_at TEXT NOT NULL,\n'
     '  UNIQUE (round_id, conversation_id, reviewer, revision)\n'
     ')'),
    ('CREATE TABLE audit_labels (\n'
     '  dataset_id INTEGER NOT NULL,\n'
     '  message_key TEXT NOT NULL,\n'
     '  conversation_id TEXT,\n'
     '  round_id INTEGER,\n'
     '  reviewer TEXT NOT NULL,\n'
     "  verdict TEXT NOT NULL CHECK (verdict IN ('yes', 'no', 'unsure')),\n"
     '  true_intent TEXT,\n'
     '  predicted_intent TEXT,\n'
     '  saved_at TEXT NOT NULL,\n'
     '  PRIMARY KEY (dataset_id, message_key, reviewer)\n'
     ')'),
    ('CREATE TABLE sentiment_cache (text_hash TEXT NOT NULL, analyzer_version TEXT NOT NULL, compound '
     'REAL NOT NULL, PRIMARY KEY (text_hash, analyzer_version)) WITHOUT ROWID'),
    ('CREATE TABLE search_indexes (dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE, '
     'version INTEGER NOT NULL, table_name TEXT NOT NULL, messages INTEGER NOT NULL, conversations '
     'INTEGER NOT NULL, built_at TEXT NOT NULL, PRIMARY KEY (dataset_id, version))'),
)
OLD_TOPIC_RECORDS = [("topics", "m001_topic_tables", "2026-01-05 10:00:00.000000+00:00"),
                     ("topics", "m002_topic_conversations", "2026-02-01 10:00:00.000000+00:00")]
#: Values that satisfy the CHECK constraints where the generic filler would not.
_FILLER = {"verdict": "yes"}


def _raw(path) -> sqlite_utils.Database:
    return sqlite_utils.Database(sqlite3.connect(str(path), isolation_level=None))


def _schema(conn) -> set[tuple]:
    return set(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall())


def _tables(conn) -> set[str]:
    return {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


#: Step 16 splits every part into one part per bucket and adds ``datasets.buckets``: what must stay the same
#: there is the messages per dataset and upload, and every other column of the datasets.
_KEPT = {"message_parts": "SELECT dataset_id, load_id, sum(row_count) FROM message_parts GROUP BY dataset_id, load_id",
         "datasets": "SELECT id, name, created_at, updated_at, source_format, files, message_count, "
                     "conversation_count, version, columns FROM datasets"}


def _rows(conn, tables) -> dict[str, list]:
    return {t: sorted(conn.execute(_KEPT.get(t, f'SELECT * FROM "{t}"')).fetchall(), key=repr)
            for t in sorted(tables)}


def _fill(conn, table: str, tag: int) -> None:
    """One row in every column of ``table`` (dataset 1 where a dataset id goes)."""
    columns = conn.execute(f'PRAGMA table_info("{table}")').fetchall()  # (cid, name, type, notnull, default, pk)
    values = []
    for _, name, kind, *_ in columns:
        kind = kind.upper()
        if name in _FILLER:
            values.append(_FILLER[name])
        elif name == "dataset_id":
            values.append(1)
        elif "INT" in kind:
            values.append(1 + tag % 5)  # the audit scores are 1-5
        elif "REAL" in kind:
            values.append(tag + 0.5)
        elif "BLOB" in kind:
            values.append(bytes([tag]) * 8)
        else:
            values.append(f"{table} {name} {tag}")
    marks = ", ".join("?" * len(values))
    conn.execute(f'INSERT INTO "{table}" VALUES ({marks})', values)


def _old_save(old, frame, *, dataset_name: str):
    """``store.save_messages`` as the code of a file older than step 16 (message_parts without ``bucket``,
    datasets without ``buckets``) left it: saved by today's code into a scratch store, its rows copied over in
    the old layout (one part, the rows in load order). Returns the scratch save's SaveResult."""
    scratch = store.connect(":memory:")
    try:
        saved = store.save_messages(scratch, frame, dataset_name=dataset_name)
        frame = store.load_messages(scratch, saved.dataset_id)
        keys = store.message_keys(frame).to_numpy(dtype=object)
        order = store._load_order(frame, __import__("numpy").arange(len(frame)))
        info = scratch.conn.execute("SELECT id, name, created_at, updated_at, source_format, files, message_count, "
                                    "conversation_count, version, columns FROM datasets").fetchone()
        load = scratch.conn.execute("SELECT id, dataset_id, at, file, new_rows, duplicate_rows, skipped_rows "
                                    "FROM loads").fetchone()
    finally:
        scratch.close()
    old.conn.execute("INSERT INTO datasets (id, name, created_at, updated_at, source_format, files, message_count, "
                     "conversation_count, version, columns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", info)
    old.conn.execute("INSERT INTO loads (id, dataset_id, at, file, new_rows, duplicate_rows, skipped_rows) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", load)
    old.conn.execute("INSERT INTO message_parts (dataset_id, part, load_id, row_count, data) VALUES (?, 1, ?, ?, ?)",
                     (info[0], load[0], len(frame), store._encode_part(frame.iloc[order].reset_index(drop=True),
                                                                       keys[order])))
    return saved


def _old_file(path, *, ddl=OLD_FEATURE_DDL, records=OLD_TOPIC_RECORDS) -> dict[str, list]:
    """A store as the code before the migrations left it: core versions 1-4, one dataset with messages, the
    feature tables of ``ddl`` with a row each, the sqlite-utils records. Returns every table's rows."""
    old = _raw(path)
    assert migrations.migrate(old, target=4) == 4
    _old_save(old, messages_frame([
        {"conversation_id": "c1", "timestamp": "2024-01-01T00:00:00Z", "speaker": "user", "text": "hi"},
        {"conversation_id": "c1", "timestamp": "2024-01-01T00:00:05Z", "speaker": "bot", "text": "hello"}]),
        dataset_name="legacy")
    before = _tables(old.conn)
    for sql in ddl:
        old.conn.execute(sql)
    if records:
        old.conn.executemany("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, ?, ?)",
                             records)
    for tag, table in enumerate(sorted(_tables(old.conn) - before - {"_sqlite_migrations", "sqlite_sequence"}), 1):
        _fill(old.conn, table, tag)
    rows = _rows(old.conn, _tables(old.conn) - {"_sqlite_migrations", "schema_migrations", "sqlite_sequence"})
    old.close()
    return rows


def _recorded(conn) -> list[int]:
    return [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


# --------------------------------------------------------------------------- the plan

def test_every_declared_step_is_planned_once_and_every_planned_step_exists():
    resolved = migrations.all_migrations()
    assert [m.version for m in resolved] == list(range(1, N + 1)) == [v for v, _, _ in migrations.PLAN]
    declaring = set()
    for path in sorted((ROOT / "metrics").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = [t for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                   for t in (node.targets if isinstance(node, ast.Assign) else [node.target])]
        if any(isinstance(t, ast.Name) and t.id == "MIGRATION_STEPS" for t in targets):
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            declaring.add(dotted.removesuffix(".__init__"))
    assert declaring == {module for _, module, _ in migrations.PLAN}
    planned = [(module, name) for _, module, name in migrations.PLAN]
    assert len(planned) == len(set(planned))
    for module in declaring:
        names = [name for name, _, _ in importlib.import_module(module).MIGRATION_STEPS]
        assert sorted(names) == sorted(n for m, n in planned if m == module), module


def test_the_store_package_re_exports_the_mechanism():
    assert store.MIGRATIONS == migrations.MIGRATIONS == migrations.all_migrations()
    assert store.SCHEMA_VERSION == N == len(store.MIGRATIONS)
    assert store.migrate is migrations.migrate and store.schema_version is migrations.schema_version
    assert all(isinstance(v, int) and callable(f) for v, _, f in store.MIGRATIONS)


# --------------------------------------------------------------------------- a new file

def test_a_new_file_gets_every_table_and_every_step(db_path):
    db = store.connect(db_path)
    try:
        assert _tables(db.conn) == TABLES
        rows = db.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
        assert rows == [(m.version, m.name) for m in migrations.all_migrations()]
        assert store.schema_version(db) == N
    finally:
        db.close()


def test_a_memory_store_is_migrated_too():
    db = store.connect(":memory:")
    assert _tables(db.conn) == TABLES and _recorded(db.conn) == list(range(1, N + 1))
    db.close()


def test_an_up_to_date_store_is_checked_with_one_select(db_path):
    store.connect(db_path).close()
    db = store.connect(db_path)
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        assert store.migrate(db) == N
    finally:
        db.conn.set_trace_callback(None)
        db.close()
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("SELECT"), statements


def test_opening_an_up_to_date_store_imports_no_family_module(db_path):
    store.connect(db_path).close()
    script = ("import sys; from metrics import store; store.connect(sys.argv[1]).close(); "
              "print(sorted(m for m in sys.modules if m.startswith('metrics.') and m.split('.')[1] not in "
              "('errors', 'io', 'store')))")
    done = subprocess.run([sys.executable, "-c", script, str(db_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


# --------------------------------------------------------------------------- files from before

def test_a_file_from_before_the_migrations_upgrades_in_place(tmp_path):
    path = tmp_path / "old.db"
    before = _old_file(path)
    assert {"funnels", "audit_labels", "topic_runs", "sentiment_cache"} <= set(before)
    db = store.connect(path)
    try:
        assert _recorded(db.conn) == list(range(1, N + 1))
        assert _rows(db.conn, before) == before  # nothing lost, nothing changed
        assert "_sqlite_migrations" not in _tables(db.conn)  # the topics' old records are gone with their table
        fresh = store.connect(tmp_path / "fresh.db")
        assert _schema(db.conn) == _schema(fresh.conn)  # the same schema as a new file
        fresh.close()
        # the features read what was there
        from metrics.audit import store as audit_store
        from metrics.sentiment.cache import StoreCache

        assert audit_store.list_reviewers(db) == [before["reviewers"][0][0]]
        text_hash, version, compound = before["sentiment_cache"][0]
        assert StoreCache(db).get_many([text_hash], version=version) == {text_hash: compound}
        assert len(store.load_messages(db, 1)) == 2
    finally:
        db.close()


def test_an_older_file_with_some_feature_tables_and_another_tools_records_upgrades(tmp_path):
    path = tmp_path / "older.db"
    kept = [sql for sql in OLD_FEATURE_DDL if not sql.startswith(("CREATE TABLE topic_conversations",
                                                                  "CREATE TABLE audit_", "CREATE INDEX audit_",
                                                                  "CREATE TABLE reviewers"))]
    kept = [sql.replace(" pairs_digest TEXT,", "") for sql in kept]  # topic_runs before its second step
    before = _old_file(path, ddl=kept, records=[OLD_TOPIC_RECORDS[0], ("other-tool", "0001_init", "2026-01-01")])
    assert "pairs_digest" not in {c for (_, c, *_) in before["topic_runs"]} and "audit_scores" not in before
    db = store.connect(path)
    try:
        assert _recorded(db.conn) == list(range(1, N + 1))
        assert TABLES <= _tables(db.conn)
        run = db.execute("SELECT * FROM topic_runs").fetchall()
        assert len(run) == 1 and run[0][:-1] == before["topic_runs"][0] and run[0][-1] is None  # pairs_digest
        assert _rows(db.conn, set(before) - {"topic_runs"}) == {t: r for t, r in before.items() if t != "topic_runs"}
        # another tool's migration records stay; only the topics' are removed
        assert db.execute("SELECT migration_set, name FROM _sqlite_migrations").fetchall() == [
            ("other-tool", "0001_init")]
    finally:
        db.close()


def test_a_core_version_2_file_with_feature_tables_upgrades(tmp_path):
    """Core and feature steps interleave by version: the core steps 3-5 run before the feature steps."""
    path = tmp_path / "v2.db"
    old = _raw(path)
    assert migrations.migrate(old, target=2) == 2
    old.conn.execute(next(sql for sql in OLD_FEATURE_DDL if sql.startswith('CREATE TABLE "funnels"')))
    old.conn.execute("INSERT INTO funnels VALUES ('lead gen', '[]', 'a', 'b')")
    old.close()
    db = store.connect(path)
    try:
        assert _recorded(db.conn) == list(range(1, N + 1)) and _tables(db.conn) == TABLES
        assert db.execute("SELECT * FROM funnels").fetchall() == [("lead gen", "[]", "a", "b")]
    finally:
        db.close()


# --------------------------------------------------------------------------- two at once

def test_two_connections_migrating_a_new_file_at_once_both_succeed(tmp_path):
    path = tmp_path / "race.db"
    barrier = threading.Barrier(3)
    opened, errors = [], []

    def open_store():
        try:
            barrier.wait(timeout=30)
            opened.append(store.connect(path, timeout_seconds=30))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    try:
        for db in opened:
            assert store.schema_version(db) == N and _tables(db.conn) == TABLES
        assert _recorded(opened[0].conn) == list(range(1, N + 1))  # each step once (version is the key)
    finally:
        for db in opened:
            db.close()


def test_a_connection_that_read_the_versions_before_another_migrated_applies_nothing_twice(db_path, monkeypatch):
    """The deterministic form of the race: B read "nothing applied" just before A migrated everything; each of
    B's steps re-reads its version under the write lock and skips it."""
    a = store.connect(db_path)
    schema = _schema(a.conn)
    b = _raw(db_path)
    monkeypatch.setattr(migrations, "_state", lambda db: (0, 0))
    monkeypatch.setattr(migrations, "_applied", lambda db: set())
    try:
        store.migrate(b)  # without the re-check: "table datasets already exists"
        monkeypatch.undo()
        assert _recorded(b.conn) == list(range(1, N + 1)) and _schema(b.conn) == schema
    finally:
        a.close()
        b.close()


_OPENER = """
import pathlib, sys, time
from metrics import store
from metrics.store import migrations
migrations.all_migrations()  # import the families first, so both processes reach the file together
print("ready", flush=True)
go = pathlib.Path(sys.argv[2])
while not go.exists():
    time.sleep(0.002)
db = store.connect(sys.argv[1], timeout_seconds=60)
print(store.schema_version(db), flush=True)
"""


def test_two_processes_migrating_a_new_file_at_once_both_succeed(tmp_path):
    path, go = tmp_path / "race.db", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _OPENER, str(path), str(go)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()[-2000:]
        go.touch()
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:  # pragma: no cover - only after a failure above
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    assert [out.strip() for out, _ in outs] == [str(N), str(N)]
    check = sqlite3.connect(str(path))
    try:
        assert _recorded(check) == list(range(1, N + 1)) and _tables(check) == TABLES
    finally:
        check.close()


# --------------------------------------------------------------------------- failures and refusals

def test_a_failing_step_leaves_no_trace_and_the_next_open_finishes(db_path, monkeypatch):
    real = migrations.all_migrations()
    audit = next(m for m in real if m.name.startswith("audit: reviewers"))

    def broken(db):
        audit.apply(db)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(migrations, "all_migrations", lambda: tuple(
        m._replace(apply=broken) if m is audit else m for m in real))
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.connect(db_path)
    check = sqlite3.connect(str(db_path))
    assert _recorded(check) == list(range(1, audit.version))
    assert "audit_rounds" not in _tables(check)  # the step's tables rolled back with it
    check.close()
    monkeypatch.undo()
    db = store.connect(db_path)
    assert _recorded(db.conn) == list(range(1, N + 1)) and _tables(db.conn) == TABLES
    db.close()


def test_a_file_newer_than_the_code_is_refused(db_path):
    store.connect(db_path).close()
    check = sqlite3.connect(str(db_path))
    check.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', '2030-01-01T00:00:00Z')", (N + 1,))
    check.commit()
    check.close()
    with pytest.raises(StoreError, match=f"schema version {N + 1}, newer than this Chatlens"):
        store.connect(db_path)


@pytest.mark.parametrize("target", [N + 1, -1, True, "3", 2.0])
def test_a_target_that_is_no_version_is_refused(target):
    db = store.connect(":memory:")
    with pytest.raises(ConfigError, match=f"from 0 to {N}"):
        store.migrate(db, target=target)
    db.close()


def test_a_target_below_the_files_version_is_refused(db_path):
    old = _raw(db_path)
    assert store.migrate(old, target=3) == 3 and store.migrate(old, target=3) == 3
    with pytest.raises(ConfigError, match="past target 2"):
        store.migrate(old, target=2)
    assert store.migrate(old) == N
    old.close()


# --------------------------------------------------------------------------- no ensure_schema left

def _ensure_schema_uses(path) -> list[int]:
    """Lines of ``path`` that define, call or name ``ensure_schema`` (strings and comments do not count)."""
    return [node.lineno for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "ensure_schema")
            or (isinstance(node, ast.Attribute) and node.attr == "ensure_schema")
            or (isinstance(node, ast.Name) and node.id == "ensure_schema")]


def test_nothing_defines_or_calls_ensure_schema(tmp_path):
    """Every table comes from a migration step applied at connect: no module creates its tables on first use."""
    paths = sorted(ROOT.glob("*.py")) + [p for folder in ("metrics", "ui", "pages", "tests")
                                         for p in sorted((ROOT / folder).rglob("*.py"))]
    offenders = [f"{path.relative_to(ROOT)}:{line}" for path in paths for line in _ensure_schema_uses(path)]
    assert not offenders, offenders
    sample = tmp_path / "sample.py"  # the check itself sees a definition and a call
    sample.write_text("from metrics.roi import store as s\n\n\ndef ensure_schema(db):\n    s.ensure_schema(db)\n")
    assert _ensure_schema_uses(sample) == [4, 5]


def test_step_15_turns_stored_page_paths_into_views(tmp_path):
    """Before step 15 the metrics layer stored a page path per hand-added backlog item; now it stores the view
    (the family) and the UI maps it to a page. A stored item keeps every value, its path translated."""
    path = tmp_path / "v14.db"
    old = _raw(path)
    assert migrations.migrate(old, target=14) == 14
    saved = _old_save(old, messages_frame([
        {"conversation_id": "c1", "timestamp": "2024-01-01T00:00:00Z", "speaker": "user", "text": "hi"}]),
        dataset_name="legacy")
    old.conn.execute("INSERT INTO backlog_added (dataset_id, item_key, source, subject, problem, metric, "
                     "affected_count, weeks, page, query_key, query_value, added_at) VALUES "
                     "(?, 'knowledge_gap:7', 'knowledge_gap', 'refunds', 'p', 'escalation_rate', 30, 2.0, "
                     "'pages/10_Topics.py', 'gap', '7', '2026-01-01')", (saved.dataset_id,))
    old.close()
    db = store.connect(path)
    try:
        assert _recorded(db.conn) == list(range(1, N + 1))
        from metrics.improve import store as improve_store

        items = improve_store.added_backlog_items(db, saved.dataset_id)
        assert items[["key", "view", "query_key", "query_value", "affected_count"]].values.tolist() == \
            [["knowledge_gap:7", "topics", "gap", "7", 30]]
        assert "page" not in [r[1] for r in db.conn.execute("PRAGMA table_info(backlog_added)")]
    finally:
        db.close()
