"""The Chatlens store: one SQLite file holding the uploaded datasets (sqlite-utils).

Where the file lives
--------------------
:func:`default_db_path` is the environment variable ``CHATLENS_DB`` when set,
else ``~/.chatlens/chatlens.db``. Nothing is created on import; :func:`connect`
creates the parent folder.

Connections
-----------
:func:`connect` gives each caller (each Streamlit session) its own connection:
WAL journal, a busy timeout, ``check_same_thread=False``, foreign keys on,
``secure_delete`` on (deleted parts are overwritten, not left in free pages)
and driver autocommit (``isolation_level=None``: no implicit transactions, so a
transaction is only ever open inside :func:`immediate` or sqlite-utils' own
``atomic()``). It then checks ``db.supports_on_conflict`` *inside* a
``BEGIN IMMEDIATE`` transaction, so the probe can never meet a lock: with
sqlite-utils 4.2.1 a probe that meets a lock caches "unsupported" and later
upserts silently lose rows (see the field notes). A False answer raises
:class:`~metrics.errors.StoreError`. Switching a new file to WAL is retried
within the busy timeout (SQLite refuses it at once, without waiting, while a
second process opening the same new file holds a lock). Finally
:func:`migrate` applies every missing schema step (one ``SELECT`` when none is
missing).

Read-then-write
---------------
Every read-then-write runs inside ``with immediate(db):`` (``BEGIN IMMEDIATE``
... ``COMMIT``, ``ROLLBACK`` and re-raise on error). A deferred ``BEGIN`` that
reads and then writes fails under WAL when another process committed in
between; ``BEGIN IMMEDIATE`` takes the write lock first and waits for it under
the busy timeout. sqlite-utils calls (``insert``, ``upsert``, ``create``) work
inside it: they nest as savepoints.

Tables (schema version :data:`SCHEMA_VERSION`)
----------------------------------------------
Every table of the file, the families' included, is created by a numbered
step of :mod:`metrics.store.migrations` (its :data:`~metrics.store.migrations.PLAN`
is the one ordered list); this package declares the core steps in
:data:`MIGRATION_STEPS` (versions 1-5 and 16), each family's persistence module its
own. :data:`MIGRATIONS`, :data:`SCHEMA_VERSION`, :func:`migrate` and
:func:`schema_version` are re-exported from there. The core tables:

``schema_migrations(version, name, applied_at)``
    one row per applied step (:data:`MIGRATIONS`).
``datasets(id, name, created_at, updated_at, source_format, files, message_count,
conversation_count, version, columns, buckets)``
    ``id`` is AUTOINCREMENT, so the id of a deleted dataset is never reused
    (caches keyed by ``(dataset_id, version)`` can never serve a dead dataset).
    ``files`` and ``columns`` are JSON lists; ``columns`` names the optional
    canonical columns that hold at least one non-null value. ``version`` starts
    at 1 and is incremented by every change of the dataset (a save that adds
    messages, a rename); a save that adds nothing does not change it. ``buckets``
    is how many buckets its conversations are hashed into
    (:data:`metrics.core.facts.DEFAULT_BUCKETS` unless the first save says
    otherwise), fixed when the dataset is created (step 16).
``message_parts(dataset_id, part, load_id, row_count, data, bucket)``
    ``PRIMARY KEY (dataset_id, part)``. The messages, columnar: ``data`` is a
    zstd Parquet file of ``row_count`` messages with the validated frame's
    columns (strings, ``timestamp`` in UTC nanoseconds, nullable booleans,
    floats, ``row``; an optional column without a value in the part is left
    out) plus ``msg_key``. Every part holds the messages of one ``bucket``
    (:func:`metrics.core.facts.shard_of` of the conversation id over the
    dataset's ``buckets``), so a conversation's messages, whichever upload
    brought them, are in one bucket, and an engine reads a dataset bucket by
    bucket (:func:`iter_buckets`, :func:`bucket_plan`; index
    ``message_parts_bucket``). A save splits its new messages by bucket and
    stores each bucket's as parts of at most ``_PART_ROWS`` rows, in
    :func:`load_messages`' order, so a dataset saved once is read back with one
    stable sort by conversation id. ``load_id`` names the upload that
    brought them, so ``row`` can be traced to its file. Writing and reading a
    million messages this way takes well under a second; as rows they took
    several (migration 3 moved the rows of version 1's ``messages`` table here;
    migration 16 split every part into one part per bucket).
``loads(id, dataset_id, at, file, new_rows, duplicate_rows, skipped_rows)``
    one row per upload.
``store_secrets(name, value)``
    the store's random keys: ``pseudonym_key`` (:func:`pseudonym_key`).
``search_indexes(dataset_id, version, table_name, messages, conversations, built_at)``
    the full-text indexes built by :mod:`metrics.store.search` (step 5).

Every table with a ``dataset_id`` column, or a foreign key to ``datasets`` (or
to another table's ``dataset_id``), belongs to a dataset: :func:`delete_dataset`
empties it for that dataset. Feature tables should therefore carry a
``dataset_id`` column. A feature adds or changes a table with a new step at the
end of the plan (see :mod:`metrics.store.migrations`), never with a
``CREATE TABLE`` at the top of a function.

The message key
---------------
``msg_key`` is the ``message_id`` when the row has one, else the SHA-1 hex of
``conversation_id, timestamp, speaker, text`` joined by U+001F, where the
timestamp is written as its UTC epoch nanoseconds (an exact, fast-to-format
identity of the instant) and missing values as the empty string, with ``#k``
appended for the k-th repeat of the same content within one upload
(:func:`message_keys`, :func:`content_keys`). Re-uploading an overlapping
export therefore adds only messages whose key is new, while a user who says
"yes" twice keeps both messages; an export that gains message ids is matched
to the earlier one by content.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import importlib
import json
import os
import pathlib
import secrets
import sqlite3
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlite_utils

from metrics.errors import ConfigError, StoreError
from metrics.io.schema import ALWAYS_PRESENT, BY_NAME, COLUMNS
from metrics.store import migrations as _migrations
from metrics.store.migrations import SCHEMA_VERSION, migrate, schema_version

__all__ = [
    "SCHEMA_VERSION",
    "MIGRATIONS",
    "MIGRATION_STEPS",
    "MESSAGE_COLUMNS",
    "SaveResult",
    "DatasetInfo",
    "BucketPlan",
    "default_db_path",
    "connect",
    "immediate",
    "migrate",
    "schema_version",
    "message_keys",
    "content_keys",
    "save_messages",
    "load_messages",
    "iter_buckets",
    "dataset_buckets",
    "bucket_plan",
    "distinct_texts",
    "list_datasets",
    "get_dataset",
    "find_dataset",
    "pseudonym_key",
    "dataset_version",
    "rename_dataset",
    "delete_dataset",
]

#: Canonical message columns, in the order of a validated frame (``row`` last).
MESSAGE_COLUMNS: tuple[str, ...] = (
    ("conversation_id", "timestamp", "speaker", "text")
    + tuple(c.name for c in COLUMNS if c.name not in ALWAYS_PRESENT)
    + ("row",)
)
_FIXED = ALWAYS_PRESENT + ("row",)
_OPTIONAL = tuple(c for c in MESSAGE_COLUMNS if c not in _FIXED)
_STR_KINDS = ("id", "str", "speaker")
_FLOAT_KINDS = ("float", "rating")
_NAT = np.iinfo(np.int64).min  # pandas' NaT as int64
_SEP = "\x1f"
_CHUNK_ROWS = 100_000  # rows converted to Python objects at a time (bounds peak memory)
_LOAD_CHUNK_ROWS = 100_000  # rows read per aggregate query (migration 3 reads the version-1 row table)
_PART_ROWS = 500_000  # messages per stored Parquet part (a part is one BLOB; SQLite caps a BLOB at ~1 GB)
_DATASET_COLUMNS = ["id", "name", "message_count", "conversation_count", "created_at", "updated_at", "version",
                    "source_format"]


def _kind(column: str) -> str:
    return "int" if column == "row" else BY_NAME[column].kind


def _quote(identifier: str) -> str:
    """Quote an SQL identifier taken from sqlite_master or a fixed constant."""
    return '"' + identifier.replace('"', '""') + '"'


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- results

@dataclass(frozen=True)
class SaveResult:
    """What :func:`save_messages` did.

    ``new_rows`` messages were added; ``duplicate_rows`` were already stored
    (or repeated within the upload) and were not added again;
    ``new_rows + duplicate_rows`` is the number of rows given. ``version`` is
    the dataset's version after the save.

    ``frame`` (only with ``save_messages(..., keep_frame=True)``): when the
    dataset held no messages before this save, the frame :func:`load_messages`
    returns for this ``version``, built in memory without reading the store
    back; else None. Not part of equality or repr.
    """

    dataset_id: int
    new_rows: int
    duplicate_rows: int
    version: int = 1
    load_id: int = 0
    frame: pd.DataFrame | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class DatasetInfo:
    """One row of ``datasets`` (see :func:`get_dataset`)."""

    id: int
    name: str
    created_at: pd.Timestamp
    updated_at: pd.Timestamp
    source_format: str
    files: tuple[str, ...]
    message_count: int
    conversation_count: int
    version: int
    columns: tuple[str, ...]


# --------------------------------------------------------------------------- connecting

def default_db_path() -> pathlib.Path:
    """The store's path: env ``CHATLENS_DB`` if set, else ``~/.chatlens/chatlens.db``.

    Creates nothing (the folder is created by :func:`connect`).

    Examples
    --------
    >>> isinstance(default_db_path(), pathlib.Path)
    True
    """
    env = os.environ.get("CHATLENS_DB", "").strip()
    if env:
        return pathlib.Path(env).expanduser()
    return pathlib.Path.home() / ".chatlens" / "chatlens.db"


_LOCKS: "weakref.WeakKeyDictionary[sqlite_utils.Database, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _lock(db: sqlite_utils.Database) -> threading.RLock:
    """One re-entrant lock per Database: threads sharing a connection take turns per transaction."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(db)
        if lock is None:
            lock = _LOCKS[db] = threading.RLock()
        return lock


def connect(path: str | os.PathLike | None = None, *, timeout_seconds: float = 10.0) -> sqlite_utils.Database:
    """Open (creating and migrating if needed) the store and return a sqlite-utils Database.

    ``path`` defaults to :func:`default_db_path`; ``":memory:"`` gives a private
    in-memory store. ``timeout_seconds`` is how long a statement waits for
    another writer's lock before failing (busy timeout).

    Raises :class:`~metrics.errors.StoreError` when the file cannot be opened,
    is not a SQLite database, stays locked longer than the timeout, was written
    by a newer Chatlens, or when ``db.supports_on_conflict`` is False (upserts
    would silently lose rows). Raises :class:`~metrics.errors.ConfigError` for
    a negative or non-numeric timeout.

    Examples
    --------
    >>> db = connect(":memory:")
    >>> schema_version(db) == SCHEMA_VERSION
    True
    >>> db.close()
    """
    if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, (int, float)) \
            or not timeout_seconds >= 0:
        raise ConfigError(f"timeout_seconds must be a number >= 0, got {timeout_seconds!r}")
    target = default_db_path() if path is None else path
    memory = str(target) == ":memory:"
    if not memory:
        target = pathlib.Path(target).expanduser()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of the store {str(target)!r}: {exc}. "
                             "Fix: set CHATLENS_DB to a writable path") from exc
    try:
        conn = sqlite3.connect(str(target), timeout=float(timeout_seconds), check_same_thread=False,
                               isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store {str(target)!r}: {exc}") from exc
    try:
        db = sqlite_utils.Database(conn)
        conn.execute(f"PRAGMA busy_timeout = {int(float(timeout_seconds) * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
        if not memory:
            _enable_wal(db, float(timeout_seconds))
            conn.execute("PRAGMA synchronous = NORMAL")  # safe in WAL mode
        with immediate(db):
            # Probe inside BEGIN IMMEDIATE: the probe's own writes cannot meet a lock.
            supported = db.supports_on_conflict
        if not supported:
            raise StoreError(
                f"sqlite-utils reports that {str(target)!r} does not support INSERT ... ON CONFLICT "
                f"(SQLite {sqlite3.sqlite_version}); upserts would silently drop rows. "
                "Fix: use SQLite >= 3.24 and retry when no other process holds the store locked")
        migrate(db)
    except StoreError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot use the store {str(target)!r}: {exc}. "
                         "Fix: check that the file is a Chatlens SQLite store and is not locked") from exc
    except BaseException:
        conn.close()
        raise
    return db


def _enable_wal(db: sqlite_utils.Database, timeout_seconds: float) -> None:
    """``db.enable_wal()``, retried for up to ``timeout_seconds``.

    Switching a file to WAL needs an exclusive lock, and SQLite answers "database is locked" at once, without
    the busy timeout, while another connection holds a lock on the file (a second process opening the same new
    store while the first one creates its tables).
    """
    deadline = time.monotonic() + timeout_seconds
    pause = 0.005
    while True:
        try:
            db.enable_wal()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 0.1)


@contextlib.contextmanager
def immediate(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Run the block in one ``BEGIN IMMEDIATE`` transaction: COMMIT, or ROLLBACK and re-raise.

    Use it for every read-then-write. The write lock is taken at ``BEGIN``
    (waiting up to the busy timeout), so reads inside the block see the latest
    data and the writes cannot fail on a stale snapshot. Nested use becomes a
    savepoint of the outer transaction. Threads sharing one Database take turns.

    Raises :class:`~metrics.errors.StoreError` when the lock cannot be obtained
    within the busy timeout; any error raised inside the block is re-raised
    unchanged after the rollback.

    Examples
    --------
    >>> db = connect(":memory:")
    >>> db["counters"].create({"name": str, "value": int}, pk="name", if_not_exists=True)
    <Table counters (name, value)>
    >>> with immediate(db):
    ...     _ = db["counters"].upsert({"name": "a", "value": 1}, pk="name")
    >>> db.execute("select value from counters").fetchone()[0]
    1
    >>> db.close()
    """
    lock = _lock(db)
    with lock:
        conn = db.conn
        if conn.in_transaction:
            savepoint = f"chatlens_{secrets.token_hex(8)}"
            conn.execute(f"SAVEPOINT {savepoint}")
            try:
                yield db
            except BaseException:
                if conn.in_transaction:
                    conn.execute(f"ROLLBACK TO {savepoint}")
                    conn.execute(f"RELEASE {savepoint}")
                raise
            else:
                conn.execute(f"RELEASE {savepoint}")
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"the store is busy: could not get the write lock ({exc}). "
                             "Fix: retry; another session is writing") from exc
        try:
            yield db
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise


# --------------------------------------------------------------------------- core migration steps
# (the mechanism and the plan are in metrics/store/migrations.py)

#: The message columns of migration 1, frozen: a column added to metrics.io.schema later needs a new migration.
_V1_MESSAGE_COLUMNS = (
    ("conversation_id", "TEXT"), ("timestamp", "INTEGER"), ("speaker", "TEXT"), ("text", "TEXT"),
    ("message_id", "TEXT"), ("user_id", "TEXT"), ("channel", "TEXT"), ("intent", "TEXT"), ("confidence", "REAL"),
    ("true_intent", "TEXT"), ("event", "TEXT"), ("model_version", "TEXT"), ("is_test", "INTEGER"),
    ("outcome", "TEXT"), ("goal_achieved", "INTEGER"), ("escalation_reason", "TEXT"), ("rating", "REAL"),
    ("thumbs", "TEXT"), ("survey_solved", "INTEGER"), ("topic", "TEXT"), ("converted", "INTEGER"),
    ("conversion_value", "REAL"), ("segment", "TEXT"), ("utm_source", "TEXT"), ("utm_campaign", "TEXT"),
)


def _migration_1(db: sqlite_utils.Database) -> None:
    """Core tables: datasets, messages, loads."""
    message_columns = ",\n".join(f"  {_quote(name)} {sql_type}" for name, sql_type in _V1_MESSAGE_COLUMNS)
    for sql in (
        """CREATE TABLE datasets (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  source_format TEXT NOT NULL DEFAULT '',
  files TEXT NOT NULL DEFAULT '[]',
  message_count INTEGER NOT NULL DEFAULT 0,
  conversation_count INTEGER NOT NULL DEFAULT 0,
  version INTEGER NOT NULL DEFAULT 1
)""",
        """CREATE TABLE loads (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  at TEXT NOT NULL,
  file TEXT NOT NULL DEFAULT '',
  new_rows INTEGER NOT NULL,
  duplicate_rows INTEGER NOT NULL,
  skipped_rows INTEGER NOT NULL DEFAULT 0
)""",
        "CREATE INDEX loads_dataset_id ON loads(dataset_id)",
        f"""CREATE TABLE messages (
  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  msg_key TEXT NOT NULL,
  load_id INTEGER,
{message_columns},
  "row" INTEGER NOT NULL,
  PRIMARY KEY (dataset_id, msg_key)
) WITHOUT ROWID""",
    ):
        db.conn.execute(sql)


def _migration_2(db: sqlite_utils.Database) -> None:
    """``datasets.columns``: the optional columns holding data, backfilled from the messages."""
    db.conn.execute("ALTER TABLE datasets ADD COLUMN columns TEXT NOT NULL DEFAULT '[]'")
    for (dataset_id,) in db.conn.execute("SELECT id FROM datasets").fetchall():
        present = _columns_with_data(db, dataset_id, _OPTIONAL)
        db.conn.execute("UPDATE datasets SET columns = ? WHERE id = ?", (json.dumps(present), dataset_id))


def _migration_3(db: sqlite_utils.Database) -> None:
    """``message_parts``: each dataset's messages move from the row table ``messages`` into Parquet parts
    (one group of parts per upload, in load order), then ``messages`` is dropped."""
    db.conn.execute("""CREATE TABLE message_parts (
  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  part INTEGER NOT NULL,
  load_id INTEGER,
  row_count INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (dataset_id, part)
)""")
    for dataset_id, columns in db.conn.execute("SELECT id, columns FROM datasets ORDER BY id").fetchall():
        present = set(json.loads(columns))
        names = [c for c in MESSAGE_COLUMNS if c in _FIXED or c in present]
        frame, keys, loads = _read_v1_rows(db, dataset_id, names)
        for load in np.unique(loads):
            positions = np.flatnonzero(loads == load)  # key order
            order = _load_order(frame, positions)
            part = _as_loaded(frame, order, _loaded_columns(frame, positions))
            _write_parts_v3(db, dataset_id, None if load < 0 else int(load), part, keys[order])
    db.conn.execute("DROP TABLE messages")


def _read_v1_rows(db: sqlite_utils.Database, dataset_id: int, columns: list[str]):
    """A dataset of the version-1 row table: (frame of ``columns``, msg_key array, load_id array with -1 for
    NULL), rows in key order."""
    parts: dict[str, list] = {c: [] for c in columns}
    keys: list = []
    loads: list = []
    aggregates = [_aggregate(c) for c in columns] + ["json_group_array(msg_key)", "group_concat(ifnull(load_id, -1))"]
    for texts in _fetch_chunks(db, dataset_id, aggregates):
        for column, text in zip(columns, texts):
            parts[column].append(_to_array(column, text))
        keys.extend(json.loads(texts[-2]))
        loads.append(_numbers(texts[-1], "int64"))
    if not keys:
        return pd.DataFrame({c: _empty_column(c) for c in columns}), np.array([], dtype=object), np.array([], int)
    frame = pd.DataFrame({c: p[0] if len(p) == 1 else pd.concat([pd.Series(a) for a in p], ignore_index=True)
                          for c, p in parts.items()})
    return frame, np.array(keys, dtype=object), np.concatenate(loads)


def _migration_4(db: sqlite_utils.Database) -> None:
    """``store_secrets``: the store's own random keys (the pseudonym key, see :func:`pseudonym_key`)."""
    db.conn.execute("CREATE TABLE store_secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL)")


def _migration_5(db: sqlite_utils.Database) -> None:
    """``search_indexes``: the registry of :mod:`metrics.store.search` (idempotent: that module created it on
    first use before this step existed)."""
    db.conn.execute(
        "CREATE TABLE IF NOT EXISTS search_indexes (dataset_id INTEGER NOT NULL REFERENCES datasets(id) "
        "ON DELETE CASCADE, version INTEGER NOT NULL, table_name TEXT NOT NULL, messages INTEGER NOT NULL, "
        "conversations INTEGER NOT NULL, built_at TEXT NOT NULL, PRIMARY KEY (dataset_id, version))")


#: The bucket count of migration 16, frozen (``metrics.core.facts.DEFAULT_BUCKETS`` when it shipped): the
#: datasets that exist when the step runs are split into this many buckets.
_V16_BUCKETS = 64


def _migration_16(db: sqlite_utils.Database) -> None:
    """``message_parts.bucket`` and ``datasets.buckets``: every part holds the messages of one bucket.

    Each existing part is split into one part per bucket (:func:`metrics.core.facts.shard_of` of its
    ``conversation_id`` over the dataset's ``buckets``), keeping its ``load_id`` and its rows' relative order;
    the new parts are numbered after the dataset's last part (old part order, then bucket order) and the old
    part is deleted. Every row is kept (checked: the dataset's row count must be unchanged), so every old file
    stays readable and :func:`load_messages` returns what it returned before.
    """
    db.conn.execute(f"ALTER TABLE datasets ADD COLUMN buckets INTEGER NOT NULL DEFAULT {_V16_BUCKETS}")
    db.conn.execute("ALTER TABLE message_parts ADD COLUMN bucket INTEGER")
    db.conn.execute("CREATE INDEX message_parts_bucket ON message_parts(dataset_id, bucket, part)")
    for dataset_id, buckets in db.conn.execute("SELECT id, buckets FROM datasets ORDER BY id").fetchall():
        (before,) = db.conn.execute("SELECT coalesce(sum(row_count), 0) FROM message_parts WHERE dataset_id = ?",
                                    (dataset_id,)).fetchone()
        old = [p for (p,) in db.conn.execute("SELECT part FROM message_parts WHERE dataset_id = ? ORDER BY part",
                                             (dataset_id,)).fetchall()]
        (last,) = db.conn.execute("SELECT coalesce(max(part), 0) FROM message_parts WHERE dataset_id = ?",
                                  (dataset_id,)).fetchone()
        for number in old:  # one old part in memory at a time
            load_id, data = db.conn.execute("SELECT load_id, data FROM message_parts WHERE dataset_id = ? AND "
                                            "part = ?", (dataset_id, number)).fetchone()
            table = pq.read_table(pa.BufferReader(data))
            for bucket, rows in _bucket_rows(table.column("conversation_id").to_pandas(), buckets):
                last += 1
                db.conn.execute("INSERT INTO message_parts (dataset_id, part, load_id, row_count, data, bucket) "
                                "VALUES (?, ?, ?, ?, ?, ?)",
                                (dataset_id, last, load_id, len(rows), _encode_table(table.take(rows)), bucket))
            db.conn.execute("DELETE FROM message_parts WHERE dataset_id = ? AND part = ?", (dataset_id, number))
        (after,) = db.conn.execute("SELECT coalesce(sum(row_count), 0) FROM message_parts WHERE dataset_id = ?",
                                   (dataset_id,)).fetchone()
        if after != before:  # pragma: no cover - a bug of this step: the transaction rolls back
            raise StoreError(f"migration 16 would change dataset {dataset_id}'s messages from {before} to {after}")


#: The core steps, ``(name, description, function)``, applied in the order of
#: :data:`metrics.store.migrations.PLAN` (versions 1-5 and 16). The descriptions of 1-4 are the names recorded in
#: files since those versions shipped.
MIGRATION_STEPS: tuple[tuple[str, str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("core_tables", "core tables: datasets, messages, loads", _migration_1),
    ("dataset_columns", "datasets.columns", _migration_2),
    ("message_parts", "messages as Parquet parts", _migration_3),
    ("store_secrets", "store_secrets", _migration_4),
    ("search_indexes", "search: the registry of full-text indexes (search_indexes)", _migration_5),
    ("message_buckets", "message_parts.bucket and datasets.buckets: one bucket of conversations per part",
     _migration_16),
)


def __getattr__(name: str):
    if name == "MIGRATIONS":  # every family's steps, resolved on first use (they import this package)
        return _migrations.all_migrations()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- message keys and conversion

def _as_utc_ns(series: pd.Series) -> np.ndarray:
    """int64 UTC epoch nanoseconds (NaT -> pandas' NaT sentinel)."""
    if not isinstance(series.dtype, pd.DatetimeTZDtype):
        series = pd.to_datetime(series, utc=True)
    series = series.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    return series.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view("int64")


def _object_strings(series: pd.Series) -> np.ndarray:
    if not isinstance(series.dtype, pd.StringDtype):
        series = series.astype("str")
    return series.to_numpy(dtype=object, na_value=None)


def _new_positions(keys: pd.Series) -> np.ndarray:
    """Positions of the first occurrence of each key, in key order (inserting in key order appends to the B-tree).

    A stable sort puts equal keys next to each other in frame order, so the first of each run is the
    key's first occurrence.
    """
    order = keys.argsort(kind="stable").to_numpy()
    ordered = keys.to_numpy(dtype=object)[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return order[first]


def message_keys(frame: pd.DataFrame) -> pd.Series:
    """The store's key of each message: ``message_id`` when present, else its content key.

    The content key (:func:`content_keys`) is ``sha1("<conversation_id>\\x1f<ns>\\x1f<speaker>\\x1f<text>")``
    in hex, where ``<ns>`` is the timestamp as UTC epoch nanoseconds and a
    missing value is the empty string, followed by ``#k`` for the k-th repeat
    (k >= 1) of the same content in ``frame`` (in frame order). So a user who
    says "yes" twice in one upload keeps both messages, and re-uploading the
    same export gives the same keys. The occurrences are counted among the
    rows without a ``message_id``. Returns a ``str`` Series aligned with
    ``frame``; the frame is not modified.

    Examples
    --------
    >>> import pandas as pd, hashlib
    >>> f = pd.DataFrame({"conversation_id": ["c1", "c1", "c1"], "speaker": ["user", "bot", "bot"],
    ...                   "text": ["hi", "hello", "hello"],
    ...                   "timestamp": pd.to_datetime(["1970-01-01T00:00:01Z", None, None], utc=True),
    ...                   "message_id": ["m1", None, None]})
    >>> keys = message_keys(f)
    >>> keys[0]
    'm1'
    >>> keys[1] == hashlib.sha1("c1\\x1f\\x1fbot\\x1fhello".encode()).hexdigest()
    True
    >>> keys[2] == keys[1] + "#1"
    True
    """
    if "message_id" in frame.columns:
        ids = frame["message_id"]
        if not isinstance(ids.dtype, pd.StringDtype):
            ids = ids.astype("str")
        need = ids.isna().to_numpy()
    else:
        ids, need = None, np.ones(len(frame), dtype=bool)
    part = frame[need] if not need.all() else frame  # hash only the rows without a message_id
    hashed = pd.array(content_keys(part), dtype="str")
    if ids is None:
        return pd.Series(hashed, index=frame.index, dtype="str")
    keys = ids.copy()
    keys.iloc[np.flatnonzero(need)] = hashed
    return keys.astype("str")


def content_keys(frame: pd.DataFrame) -> np.ndarray:
    """Each message's content key (see :func:`message_keys`), whatever its ``message_id``: an object array.

    The k-th repeat (k >= 1, frame order) of the same conversation, time, speaker and text gets ``#k``, so
    repeats within one upload stay distinct messages and only a repeat *across* uploads is a duplicate.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"conversation_id": ["c"] * 3, "speaker": ["user"] * 3, "text": ["yes", "no", "yes"],
    ...                   "timestamp": pd.to_datetime([None] * 3, utc=True)})
    >>> k = content_keys(f)
    >>> (k[2] == k[0] + "#1", "#" in k[1])
    (True, False)
    >>> len(content_keys(f.iloc[0:0]))
    0
    """
    chunks = [_content_hashes(frame.iloc[i:i + _CHUNK_ROWS]) for i in range(0, len(frame), _CHUNK_ROWS)]
    hashes = np.concatenate(chunks) if chunks else np.array([], dtype=object)
    if not len(hashes):
        return hashes
    codes, _ = pd.factorize(hashes)
    occurrence = pd.Series(codes).groupby(codes, sort=False).cumcount().to_numpy()
    repeated = np.flatnonzero(occurrence)
    if len(repeated):
        hashes = hashes.copy()
        hashes[repeated] = [f"{h}#{k}" for h, k in zip(hashes[repeated].tolist(), occurrence[repeated].tolist())]
    return hashes


def _content_hashes(part: pd.DataFrame) -> np.ndarray:
    n = len(part)

    def strings(column: str) -> list:
        if column not in part.columns:
            return [""] * n
        values = _object_strings(part[column])
        return np.where(pd.isna(values), "", values).tolist()

    if "timestamp" in part.columns:
        ns = _as_utc_ns(part["timestamp"])
        stamps = np.where(ns == _NAT, "", ns.astype(object)).tolist()
    else:
        stamps = [""] * n
    sha1 = hashlib.sha1
    return np.array([sha1(f"{c}{_SEP}{t}{_SEP}{s}{_SEP}{x}".encode("utf-8", "surrogatepass")).hexdigest()
                     for c, t, s, x in zip(strings("conversation_id"), stamps, strings("speaker"), strings("text"))],
                    dtype=object)


# --------------------------------------------------------------------------- datasets

def _dataset_row(db: sqlite_utils.Database, dataset_id: int) -> dict | None:
    cursor = db.conn.execute("SELECT * FROM datasets WHERE id = ?", (int(dataset_id),))
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row))


def _require(db: sqlite_utils.Database, dataset_id) -> dict:
    if isinstance(dataset_id, bool) or not isinstance(dataset_id, (int, np.integer)):
        raise ConfigError(f"dataset_id must be an integer, got {dataset_id!r}")
    row = _dataset_row(db, int(dataset_id))
    if row is None:
        raise StoreError(f"no dataset with id {int(dataset_id)} in the store. "
                         "Fix: pick a dataset from list_datasets(); it may have been deleted")
    return row


def _clean_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"dataset_name must be a non-empty string, got {name!r}")
    return name.strip()


def get_dataset(db: sqlite_utils.Database, dataset_id: int) -> DatasetInfo:
    """The stored description of one dataset; StoreError if there is none with that id."""
    row = _require(db, dataset_id)
    return DatasetInfo(
        id=int(row["id"]), name=row["name"],
        created_at=pd.Timestamp(row["created_at"]), updated_at=pd.Timestamp(row["updated_at"]),
        source_format=row["source_format"], files=tuple(json.loads(row["files"])),
        message_count=int(row["message_count"]), conversation_count=int(row["conversation_count"]),
        version=int(row["version"]), columns=tuple(json.loads(row["columns"])))


def pseudonym_key(db: sqlite_utils.Database) -> bytes:
    """The store's key for pseudonymising personal data inside ids (:func:`metrics.io.pii.redact_ids`).

    32 random bytes, made on first use and kept in ``store_secrets``; every upload into this store uses the
    same key, so the same e-mail or phone inside an id always gets the same pseudonym (repeat users still
    count, re-uploads still de-duplicate), while another store's pseudonyms cannot be linked to these. The key
    is as secret as the data: whoever has the file can test a guessed e-mail against it.

    Examples
    --------
    >>> db = connect(":memory:")
    >>> key = pseudonym_key(db)
    >>> len(key), key == pseudonym_key(db)
    (32, True)
    >>> db.close()
    """
    with immediate(db):  # read-then-write: two first uploads at once agree on one key
        row = db.conn.execute("SELECT value FROM store_secrets WHERE name = 'pseudonym_key'").fetchone()
        if row is None:
            key = secrets.token_bytes(32)
            db.conn.execute("INSERT INTO store_secrets (name, value) VALUES ('pseudonym_key', ?)", (key,))
            return key
    return bytes(row[0])


def find_dataset(db: sqlite_utils.Database, name: str) -> DatasetInfo:
    """The dataset called ``name`` (surrounding spaces ignored); StoreError naming the stored ones otherwise.

    Examples
    --------
    >>> import pandas as pd
    >>> db = connect(":memory:")
    >>> f = pd.DataFrame({"conversation_id": ["c1"], "timestamp": pd.to_datetime(["2024-01-01"], utc=True),
    ...                   "speaker": ["user"], "text": ["hi"], "row": [1]})
    >>> find_dataset(db, "demo")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.StoreError: no dataset named 'demo' ...
    >>> _ = save_messages(db, f, dataset_name="demo")
    >>> find_dataset(db, " demo ").message_count
    1
    >>> db.close()
    """
    name = _clean_name(name)
    row = db.conn.execute("SELECT id FROM datasets WHERE name = ?", (name,)).fetchone()
    if row is None:
        known = [r[0] for r in db.conn.execute("SELECT name FROM datasets ORDER BY name LIMIT 20")]
        raise StoreError(f"no dataset named {name!r} in the store. Fix: use one of "
                         f"{', '.join(map(repr, known)) or '(none yet: add one with ingest)'}")
    return get_dataset(db, int(row[0]))


def dataset_version(db: sqlite_utils.Database, dataset_id: int) -> int:
    """The dataset's version: 1 when created, +1 on every change. StoreError if absent."""
    return int(_require(db, dataset_id)["version"])


def list_datasets(db: sqlite_utils.Database) -> pd.DataFrame:
    """Every stored dataset, by id.

    Columns: ``id, name, message_count, conversation_count`` (int64),
    ``created_at, updated_at`` (datetime64[ns, UTC]), ``version`` (int64),
    ``source_format`` (str). An empty store gives an empty frame with these columns.
    """
    cursor = db.conn.execute(
        "SELECT id, name, message_count, conversation_count, created_at, updated_at, version, source_format "
        "FROM datasets ORDER BY id")
    rows = cursor.fetchall()
    cols = list(zip(*rows)) if rows else [[] for _ in _DATASET_COLUMNS]
    data = dict(zip(_DATASET_COLUMNS, cols))
    return pd.DataFrame({
        "id": np.asarray(data["id"], dtype="int64"),
        "name": pd.array(list(data["name"]), dtype="str"),
        "message_count": np.asarray(data["message_count"], dtype="int64"),
        "conversation_count": np.asarray(data["conversation_count"], dtype="int64"),
        "created_at": pd.to_datetime(list(data["created_at"]), utc=True).astype("datetime64[ns, UTC]"),
        "updated_at": pd.to_datetime(list(data["updated_at"]), utc=True).astype("datetime64[ns, UTC]"),
        "version": np.asarray(data["version"], dtype="int64"),
        "source_format": pd.array(list(data["source_format"]), dtype="str"),
    })


def rename_dataset(db: sqlite_utils.Database, dataset_id: int, new_name: str) -> int:
    """Rename a dataset; returns its new version. ConfigError if the name is empty or taken."""
    name = _clean_name(new_name)
    with immediate(db):
        row = _require(db, dataset_id)
        if row["name"] == name:
            return int(row["version"])
        taken = db.conn.execute("SELECT id FROM datasets WHERE name = ? AND id != ?", (name, row["id"])).fetchone()
        if taken:
            raise ConfigError(f"a dataset named {name!r} already exists (id {taken[0]}); choose another name")
        db.conn.execute("UPDATE datasets SET name = ?, updated_at = ?, version = version + 1 WHERE id = ?",
                        (name, _now(), row["id"]))
        return int(row["version"]) + 1


def _tables_of_datasets(db: sqlite_utils.Database) -> list[tuple[str, str]]:
    """``(table, column)`` pairs whose column holds a dataset id.

    A column named ``dataset_id``, or a foreign-key column referencing
    ``datasets`` or another table's ``dataset_id`` column.
    """
    found: list[tuple[str, str]] = []
    names = [r[0] for r in db.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    for table in names:
        if table == "datasets":
            continue
        columns = {r[1] for r in db.conn.execute(f"PRAGMA table_info({_quote(table)})")}
        links = {"dataset_id"} & columns
        for fk in db.conn.execute(f"PRAGMA foreign_key_list({_quote(table)})"):
            # (id, seq, parent table, from column, to column, ...): a reference to datasets, or to
            # any parent's dataset_id column (e.g. a composite key into messages), holds a dataset id
            if (fk[2] == "datasets" or fk[4] == "dataset_id") and fk[3] in columns:
                links.add(fk[3])
        found.extend((table, column) for column in sorted(links))
    return found


#: Run after every dataset delete, as ``fn(db) -> rows removed`` (``module:function``): derived data that
#: is not keyed by dataset_id but must not outlive its messages.
AFTER_DELETE_HOOKS: list[str] = ["metrics.sentiment.cache:prune_orphans", "metrics.store.search:drop_orphans",
                                  "metrics.engines.spark:drop_orphan_exports"]


def delete_dataset(db: sqlite_utils.Database, dataset_id: int) -> dict[str, int]:
    """Delete a dataset and every row that belongs to it, in one transaction.

    Removes its ``datasets`` row, its messages and loads, and the rows of every
    other table that has a ``dataset_id`` column, or a foreign key to
    ``datasets`` or to another table's ``dataset_id`` (derived caches, audit
    links added by other features), discovered from ``sqlite_master``.
    Foreign keys are checked at commit, so the order of the deletes does not
    matter; a table that would be left pointing at the dataset makes the whole
    delete fail with StoreError (nothing is removed).
    Deleted content is overwritten (``secure_delete``) and the WAL is
    checkpointed and truncated when no reader holds it, so the text is gone
    from the files too.

    Returns ``{table: rows deleted}`` for the tables that lost rows
    (``datasets`` included); deleting an id that does not exist (any more)
    returns ``{}`` and changes nothing.
    """
    if isinstance(dataset_id, bool) or not isinstance(dataset_id, (int, np.integer)):
        raise ConfigError(f"dataset_id must be an integer, got {dataset_id!r}")
    dataset_id = int(dataset_id)
    removed: dict[str, int] = {}
    try:
        with immediate(db):
            if _dataset_row(db, dataset_id) is None:
                return {}
            db.conn.execute("PRAGMA defer_foreign_keys = ON")
            for table, column in _tables_of_datasets(db):
                cursor = db.conn.execute(f"DELETE FROM {_quote(table)} WHERE {_quote(column)} = ?", (dataset_id,))
                if cursor.rowcount > 0:  # every family's tables exist in every store: report those that lost rows
                    removed[table] = removed.get(table, 0) + cursor.rowcount
            removed["datasets"] = db.conn.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,)).rowcount
    except sqlite3.Error as exc:
        raise StoreError(f"could not delete dataset {dataset_id}: {exc}. Nothing was deleted") from exc
    for spec in AFTER_DELETE_HOOKS:
        module, func = spec.split(":")
        getattr(importlib.import_module(module), func)(db)
    _truncate_wal(db)
    return removed


def _truncate_wal(db: sqlite_utils.Database) -> None:
    """Best effort: copy the WAL into the file and empty it, waiting at most 1 s for readers."""
    if db.conn.in_transaction:
        return
    (timeout,) = db.conn.execute("PRAGMA busy_timeout").fetchone()
    try:
        db.conn.execute("PRAGMA busy_timeout = 1000")
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.Error:
        pass
    finally:
        db.conn.execute(f"PRAGMA busy_timeout = {int(timeout)}")


# --------------------------------------------------------------------------- saving

def _check_frame(frame: pd.DataFrame) -> list[str]:
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in _FIXED if c not in frame.columns]
    if missing:
        raise StoreError(f"cannot store a frame without the column(s) {missing}; "
                         "Fix: pass a validated frame (metrics.io.loaders.load_bytes)")
    unknown = [str(c) for c in frame.columns if c not in MESSAGE_COLUMNS]
    if unknown:
        raise StoreError(f"cannot store column(s) not in the Chatlens format: {unknown}. "
                         "Fix: drop them or pass a validated frame")
    if frame["row"].isna().any():
        raise StoreError("cannot store rows without a source row number (column 'row' has missing values)")
    return [c for c in MESSAGE_COLUMNS if c in frame.columns]


def _columns_with_data(db: sqlite_utils.Database, dataset_id: int, candidates) -> list[str]:
    """The candidate optional columns holding at least one non-null value in the dataset."""
    present = []
    for column in candidates:
        if column not in _OPTIONAL:
            continue
        hit = db.conn.execute(
            f"SELECT EXISTS(SELECT 1 FROM messages WHERE dataset_id = ? AND {_quote(column)} IS NOT NULL)",
            (dataset_id,)).fetchone()[0]
        if hit:
            present.append(column)
    return present


def _loaded_columns(frame: pd.DataFrame, positions: np.ndarray) -> list[str]:
    """The columns a stored part of the rows at ``positions`` holds: the fixed ones, and each optional
    column with a value in one of those rows (an all-missing column is not stored)."""
    return [c for c in MESSAGE_COLUMNS if c in frame.columns
            and (c in _FIXED or frame[c].iloc[positions].notna().any())]


def _load_order(frame: pd.DataFrame, positions: np.ndarray) -> np.ndarray:
    """``positions`` (key order) rearranged into :func:`load_messages`' row order: by conversation_id,
    timestamp, row (missing ids and NaT last), ties in key order."""
    codes, uniques = pd.factorize(frame["conversation_id"], sort=True)
    codes = np.where(codes < 0, len(uniques), codes)[positions]  # a missing id sorts last
    stamps = _as_utc_ns(frame["timestamp"])[positions]
    return positions[np.lexsort((frame["row"].to_numpy(dtype="int64")[positions], stamps, stamps == _NAT, codes))]


def _as_loaded(frame: pd.DataFrame, order: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """The rows at ``order`` with ``columns``, in the validated dtypes :func:`load_messages` returns:
    ``str`` strings, UTC nanosecond timestamps, nullable booleans, float64 and int64 ``row``.
    A single take, none when ``order`` is the frame's own."""
    same = len(order) == len(frame) and np.array_equal(order, np.arange(len(order)))
    out = {}
    for column in columns:
        kind, series = _kind(column), frame[column]
        if kind in _STR_KINDS:
            values = (series if isinstance(series.dtype, pd.StringDtype) and series.dtype == "str"
                      else series.astype("str")).array
        elif kind == "datetime":
            values = pd.Series(_as_utc_ns(series).view("datetime64[ns]")).dt.tz_localize("UTC").array
        elif kind in _FLOAT_KINDS:
            values = pd.to_numeric(series).to_numpy(dtype="float64", na_value=np.nan)
        elif kind == "bool":
            values = series.astype("boolean").array
        else:
            values = series.to_numpy(dtype="int64")
        out[column] = values if same else values.take(order)
    return pd.DataFrame(out)


def _arrow_type(column: str) -> pa.DataType:
    """The Arrow type a column is stored as in a part (``msg_key`` and the strings: large_string)."""
    kind = "id" if column == "msg_key" else _kind(column)
    if kind in _STR_KINDS:
        return pa.large_string()
    if kind == "datetime":
        return pa.timestamp("ns", tz="UTC")
    if kind in _FLOAT_KINDS:
        return pa.float64()
    if kind == "bool":
        return pa.bool_()
    return pa.int64()


def _encode_part(part: pd.DataFrame, keys: np.ndarray) -> bytes:
    """One stored part: the rows (validated dtypes, load order) plus ``msg_key``, as zstd Parquet."""
    table = pa.Table.from_pandas(part, preserve_index=False)
    table = table.append_column("msg_key", pa.array(keys, type=pa.large_string()))
    return _encode_table(table)


def _encode_table(table: pa.Table) -> bytes:
    table = table.replace_schema_metadata(None)  # the dtypes come from the column kinds (_decode_parts)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _bucket_rows(conversation_ids, buckets: int) -> list[tuple[int, np.ndarray]]:
    """``[(bucket, positions)]`` of the rows, by bucket, each keeping the rows' relative order (non-empty
    buckets only): :func:`metrics.core.facts.shard_of` of the conversation ids."""
    from metrics.core.facts import shard_of

    bucket = shard_of(pd.Series(conversation_ids), int(buckets))
    order = np.argsort(bucket, kind="stable")
    values, starts = np.unique(bucket[order], return_index=True)
    ends = list(starts[1:]) + [len(order)]
    return [(int(b), order[s:e]) for b, s, e in zip(values, starts, ends)]


def _decode_parts(blobs: list[bytes], columns: list[str]) -> pa.Table:
    """The stored parts as one Arrow table of ``columns`` (a column a part lacks is all null there).

    Only those columns are read from each part."""
    def decode(blob: bytes) -> pa.Table:
        part = pq.ParquetFile(pa.BufferReader(blob))
        names = set(part.schema_arrow.names)
        table = part.read(columns=[c for c in columns if c in names], use_threads=len(blobs) < 4)
        return pa.table({c: table.column(c).cast(_arrow_type(c)) if c in names
                         else pa.nulls(part.metadata.num_rows, type=_arrow_type(c)) for c in columns})

    if len(blobs) < 4:
        tables = [decode(blob) for blob in blobs]
    else:  # many small parts (one per bucket): decode them side by side (Arrow releases the GIL)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            tables = list(pool.map(decode, blobs))
    if not tables:
        return pa.table({c: pa.array([], type=_arrow_type(c)) for c in columns})
    return pa.concat_tables(tables)


_PANDAS_TYPES = {pa.large_string(): pd.api.types.pandas_dtype("str"), pa.bool_(): pd.BooleanDtype()}


def _to_frame(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=_PANDAS_TYPES.get, ignore_metadata=True)


def _stored_parts(db: sqlite_utils.Database, dataset_id: int) -> list[tuple]:
    """``(load_id, bucket, data)`` of the dataset's parts, in part order."""
    return db.conn.execute("SELECT load_id, bucket, data FROM message_parts WHERE dataset_id = ? ORDER BY part",
                           (dataset_id,)).fetchall()


def _write_parts(db: sqlite_utils.Database, dataset_id: int, load_id: int | None, part: pd.DataFrame,
                 keys: np.ndarray, buckets: int) -> None:
    """Store new rows (load order) after the dataset's last part: split by bucket
    (:func:`metrics.core.facts.shard_of` of ``conversation_id`` over the dataset's ``buckets``, so a later
    upload's messages of a conversation land in the bucket of its earlier ones), then each bucket's rows, in
    their relative order, as parts of at most ``_PART_ROWS`` rows. Every part holds one bucket; a bucket's
    parts of one save are consecutive."""
    (last,) = db.conn.execute("SELECT coalesce(max(part), 0) FROM message_parts WHERE dataset_id = ?",
                              (dataset_id,)).fetchone()
    # one conversion to Arrow and one take into bucket order, then zero-copy slices (a take per bucket on the
    # chunked columns costs more than the Parquet encoding)
    table = pa.Table.from_pandas(part, preserve_index=False)
    table = table.append_column("msg_key", pa.array(keys, type=pa.large_string()))
    groups = list(_bucket_rows(part["conversation_id"], buckets))
    if not groups:
        return
    order = pa.array(np.concatenate([rows for _, rows in groups]))
    slices, at = [], 0
    for bucket, rows in groups:
        for start in range(0, len(rows), _PART_ROWS):
            size = min(_PART_ROWS, len(rows) - start)
            slices.append((bucket, at, size))
            at += size
    # Arrow releases the GIL in take and in the Parquet encoder: the columns, then the parts, on two threads
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        columns = list(pool.map(lambda column: column.take(order), table.columns))
        ordered = pa.Table.from_arrays(columns, schema=table.schema)
        blobs = pool.map(lambda s: _encode_table(ordered.slice(s[1], s[2])), slices)
        for (bucket, _, size), blob in zip(slices, blobs):
            last += 1
            db.conn.execute("INSERT INTO message_parts (dataset_id, part, load_id, row_count, data, bucket) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (dataset_id, last, load_id, size, blob, bucket))


def _write_parts_v3(db: sqlite_utils.Database, dataset_id: int, load_id: int | None, part: pd.DataFrame,
                    keys: np.ndarray) -> None:
    """Migration 3's writer, frozen (``message_parts`` had no ``bucket`` yet; step 16 splits these parts):
    new rows (load order) as parts of at most ``_PART_ROWS`` rows after the dataset's last part."""
    (last,) = db.conn.execute("SELECT coalesce(max(part), 0) FROM message_parts WHERE dataset_id = ?",
                              (dataset_id,)).fetchone()
    for start in range(0, len(part), _PART_ROWS):
        chunk = part.iloc[start:start + _PART_ROWS]
        last += 1
        db.conn.execute("INSERT INTO message_parts (dataset_id, part, load_id, row_count, data) VALUES (?, ?, ?, ?, ?)",
                        (dataset_id, last, load_id, len(chunk), _encode_part(chunk, keys[start:start + _PART_ROWS])))


def _dataset_counts(db: sqlite_utils.Database, dataset_id: int) -> tuple[int, int]:
    """(messages, distinct conversation ids) stored in the dataset."""
    table = _decode_parts([data for _, _, data in _stored_parts(db, dataset_id)], ["conversation_id"])
    return table.num_rows, pc.count_distinct(table.column("conversation_id"), mode="only_valid").as_py()


def _keys_by_row(frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Content keys of ``frame``'s rows at ``rows`` (occurrences counted among them), spread over a
    full-length object array (None elsewhere)."""
    out = np.full(len(frame), None, dtype=object)
    out[rows] = content_keys(frame.iloc[rows])
    return out


def _stored_id_content_keys(db: sqlite_utils.Database, dataset_id: int) -> np.ndarray:
    """The content keys of the dataset's stored messages that have a ``message_id``, each upload's counted
    on its own (as they were when that upload had no ids)."""
    by_load: dict = {}
    for load_id, _, data in _stored_parts(db, dataset_id):
        by_load.setdefault(load_id, []).append(data)
    keys = []
    for blobs in by_load.values():
        table = _decode_parts(blobs, ["conversation_id", "timestamp", "speaker", "text", "message_id"])
        table = table.filter(pc.is_valid(table.column("message_id")))
        if table.num_rows:
            keys.append(content_keys(_to_frame(table)))
    return np.concatenate(keys) if keys else np.array([], dtype=object)


def _is_in(values: np.ndarray, value_set: pa.Array) -> np.ndarray:
    """``values`` (str objects) found in ``value_set`` (an Arrow string array), as a bool array."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    candidates = pa.array(values, type=pa.large_string())
    return pc.is_in(candidates, value_set=value_set.cast(pa.large_string())).to_numpy(zero_copy_only=False).astype(bool)


def _already_stored(db: sqlite_utils.Database, dataset_id: int, frame: pd.DataFrame, key_values: np.ndarray,
                    positions: np.ndarray, known: list[str]) -> np.ndarray:
    """Which of the candidate rows at ``positions`` the dataset already holds.

    A row is held when its key (``message_id``, else its content key) is stored. When one export has
    message ids and another of the same messages has none, the content key decides: a new row with an id
    matches a stored row without one by content, and a new row without an id matches a stored row with one
    by the content key computed from the stored columns. So adding ids to an export never doubles it.
    """
    stored = _decode_parts([data for _, _, data in _stored_parts(db, dataset_id)],
                           ["msg_key"] + (["message_id"] if "message_id" in known else []))
    # Arrow's hash set over the stored keys: no Python object per stored message, so the memory of an
    # upload into a large dataset grows by bytes per stored key, not by a boxed string each
    stored_keys = stored.column("msg_key").combine_chunks()
    found = _is_in(key_values[positions], stored_keys)
    if found.all():
        return found
    has_id = (frame["message_id"].notna().to_numpy() if "message_id" in frame.columns
              else np.zeros(len(frame), dtype=bool))
    stored_has_id = (stored.column("message_id").is_valid().to_numpy(zero_copy_only=False)
                     if "message_id" in known else np.zeros(stored.num_rows, dtype=bool))
    look = ~found & has_id[positions]
    if look.any() and not stored_has_id.all():  # ids now, none before: compare contents
        contents = _keys_by_row(frame, np.flatnonzero(has_id))[positions[look]]
        found[np.flatnonzero(look)] = _is_in(contents, stored_keys.filter(pa.array(~stored_has_id)))
    look = ~found & ~has_id[positions]
    if look.any() and stored_has_id.any():  # no ids now, ids before: compare with the stored rows' contents
        found[np.flatnonzero(look)] = pd.Series(key_values[positions[look]], dtype=object).isin(
            _stored_id_content_keys(db, dataset_id)).to_numpy()
    return found


def save_messages(db: sqlite_utils.Database, frame: pd.DataFrame, *, dataset_name: str,
                  source_format: str = "csv", file_name: str = "", skipped_rows: int = 0,
                  keep_frame: bool = False, create_only: bool = False, buckets: int | None = None) -> SaveResult:
    """Add a validated frame to the dataset ``dataset_name`` (created if new); only new messages are added.

    A message is new when its key (:func:`message_keys`) is not yet stored in
    the dataset (nor, when one export has message ids and the other has none,
    its content key: see ``_already_stored``). A message repeated within one
    upload is never a duplicate: repeats get distinct content keys (``#k``);
    only a ``message_id`` given twice in one frame counts once as new and then
    as duplicate (the loader refuses such files). The new messages are stored as Parquet parts (see the module
    docstring). Everything (dataset row, messages, counts, the ``loads``
    record, the version bump) happens in one ``BEGIN IMMEDIATE`` transaction:
    any failure leaves the store as it was. ``skipped_rows`` (rows the loader
    refused) is recorded in ``loads``. The frame is not modified.

    Definition: ``new_rows + duplicate_rows == len(frame)``. The dataset's
    ``message_count`` is its number of stored messages and
    ``conversation_count`` its number of distinct ``conversation_id``; its
    ``version`` grows by one when ``new_rows > 0`` (a new dataset starts at 1).
    An empty frame creates (or leaves) the dataset with nothing added.

    ``create_only=True``: the save must create the dataset; when one called
    ``dataset_name`` exists already (created meanwhile by another session),
    :class:`~metrics.errors.ConfigError` and nothing is saved (the Data page's
    "new dataset" choice, where adding to an existing one needs more rights).

    ``buckets``: how many buckets a *new* dataset's conversations are hashed into (default
    :data:`metrics.core.facts.DEFAULT_BUCKETS`); fixed when the dataset is created, so it is ignored when the
    dataset exists (its messages are stored one bucket per part, see :func:`_write_parts`).

    ``keep_frame=True``: when the dataset held no messages before, the result's
    ``frame`` is what :func:`load_messages` would return for the new version,
    so a caller that goes on to read the dataset (the Data page) does not read
    it back; the tests check the two are equal.

    Raises :class:`~metrics.errors.ConfigError` for an empty name and
    :class:`~metrics.errors.StoreError` for a frame that is not in the
    validated format or when SQLite fails (the message names the dataset).

    Examples
    --------
    >>> import pandas as pd
    >>> db = connect(":memory:")
    >>> f = pd.DataFrame({"conversation_id": ["c1"], "timestamp": pd.to_datetime(["2024-01-01"], utc=True),
    ...                   "speaker": ["user"], "text": ["hi"], "row": [1]})
    >>> save_messages(db, f, dataset_name="demo").new_rows
    1
    >>> save_messages(db, f, dataset_name="demo").duplicate_rows
    1
    >>> db.close()
    """
    name = _clean_name(dataset_name)
    if buckets is not None and (isinstance(buckets, bool) or not isinstance(buckets, (int, np.integer))
                                or buckets < 1):
        raise ConfigError(f"buckets must be an integer >= 1, got {buckets!r}")
    if isinstance(skipped_rows, bool) or not isinstance(skipped_rows, (int, np.integer)) or skipped_rows < 0:
        raise ConfigError(f"skipped_rows must be an integer >= 0, got {skipped_rows!r}")
    _check_frame(frame)
    n = len(frame)
    keys = message_keys(frame)
    key_values = keys.to_numpy(dtype=object)
    positions = _new_positions(keys)  # each key's first occurrence, in key order
    now = _now()
    loaded = None
    try:
        with immediate(db):
            row = db.conn.execute("SELECT id, files, columns, message_count, buckets FROM datasets WHERE name = ?",
                                  (name,)).fetchone()
            had_messages = row is not None and row[3] > 0
            if create_only and row is not None:
                raise ConfigError(f"a dataset called {name!r} exists already; Fix: choose another name "
                                  "(adding to an existing dataset needs the right to change it)")
            if row is None:
                from metrics.core.facts import DEFAULT_BUCKETS

                buckets = DEFAULT_BUCKETS if buckets is None else int(buckets)  # fixed for the dataset's life
                dataset_id = db.conn.execute(
                    "INSERT INTO datasets (name, created_at, updated_at, source_format, files, version, columns, "
                    "buckets) VALUES (?, ?, ?, ?, '[]', 0, '[]', ?)",
                    (name, now, now, str(source_format), buckets)).lastrowid
                files, known = [], []
            else:
                dataset_id, files, known, buckets = row[0], json.loads(row[1]), json.loads(row[2]), int(row[4])
            load_id = db.conn.execute(
                "INSERT INTO loads (dataset_id, at, file, new_rows, duplicate_rows, skipped_rows) "
                "VALUES (?, ?, ?, 0, 0, ?)", (dataset_id, now, str(file_name), int(skipped_rows))).lastrowid
            if had_messages and len(positions):
                positions = positions[~_already_stored(db, dataset_id, frame, key_values, positions, known)]
            new_rows = len(positions)
            columns = _loaded_columns(frame, positions)
            if new_rows or (keep_frame and not had_messages):
                order = _load_order(frame, positions)
                part = _as_loaded(frame, order, columns)
                if new_rows:
                    _write_parts(db, dataset_id, load_id, part, key_values[order], buckets)
                if keep_frame and not had_messages:
                    loaded = part
            duplicate_rows = n - new_rows
            db.conn.execute("UPDATE loads SET new_rows = ?, duplicate_rows = ? WHERE id = ?",
                            (new_rows, duplicate_rows, load_id))
            if file_name and str(file_name) not in files:
                files.append(str(file_name))
            if had_messages:
                message_count, conversations = _dataset_counts(db, dataset_id)
            else:  # the rows stored are exactly the first occurrence of each key
                message_count = new_rows
                conversations = int(frame["conversation_id"].iloc[positions].nunique())
            present = [c for c in _OPTIONAL if c in known or c in columns]
            bump = 1 if (new_rows or row is None) else 0
            db.conn.execute(
                "UPDATE datasets SET message_count = :messages, conversation_count = :conversations, "
                "files = :files, columns = :columns, version = version + :bump, "
                "updated_at = CASE WHEN :bump THEN :now ELSE updated_at END WHERE id = :id",
                {"id": dataset_id, "messages": message_count, "files": json.dumps(files),
                 "columns": json.dumps(present), "bump": bump, "now": now, "conversations": conversations})
            version = db.conn.execute("SELECT version FROM datasets WHERE id = ?", (dataset_id,)).fetchone()[0]
    except (sqlite3.Error, pa.ArrowException, UnicodeEncodeError) as exc:
        raise StoreError(f"could not save {n} message(s) to dataset {name!r}: {exc}. Nothing was saved") from exc
    return SaveResult(dataset_id=int(dataset_id), new_rows=int(new_rows), duplicate_rows=int(duplicate_rows),
                      version=int(version), load_id=int(load_id), frame=loaded)


# --------------------------------------------------------------------------- reading version 1's row table
# (only migration 3 reads it: it moves each dataset's rows into parts)

def _aggregate(column: str) -> str:
    """The SQL aggregate reading one column of a chunk as a single string.

    Strings: a JSON array (null for NULL). Numbers: comma-separated text that numpy parses in C
    without making a Python object per value; NULL is written as NaT's int64 (timestamps), ``nan``
    (floats) or 2 (booleans).
    """
    quoted = _quote(column)
    kind = _kind(column)
    if kind in _STR_KINDS:
        return f"json_group_array({quoted})"
    if kind in _FLOAT_KINDS:
        # 17 significant digits round-trip every double; SQLite's own rendering of REAL does not.
        return f"group_concat(CASE WHEN {quoted} IS NULL THEN 'nan' ELSE printf('%!.17g', {quoted}) END)"
    if kind == "datetime":
        return f"group_concat(ifnull({quoted}, {_NAT}))"
    if kind == "bool":
        return f"group_concat(ifnull({quoted}, 2))"
    return f"group_concat({quoted})"


def _empty_column(column: str):
    kind = _kind(column)
    if kind in _STR_KINDS:
        return pd.array([], dtype="str")
    if kind == "datetime":
        return pd.Series([], dtype="datetime64[ns, UTC]")
    if kind in _FLOAT_KINDS:
        return np.array([], dtype="float64")
    if kind == "bool":
        return pd.array([], dtype="boolean")
    return np.array([], dtype="int64")


def _str_array(values: list):
    """A ``str`` array from Python strings/None; through pyarrow directly when pandas stores strings there."""
    if getattr(pd.api.types.pandas_dtype("str"), "storage", None) == "pyarrow":
        import pyarrow as pa  # installed: pandas' default str storage is pyarrow

        return pd.array(pa.array(values, type=pa.large_string()), dtype="str")
    return pd.array(values, dtype="str")


def _numbers(text: str, dtype: str) -> np.ndarray:
    """Parse comma-separated numbers (``_aggregate``); a value numpy cannot read raises StoreError."""
    try:
        values = np.fromstring(text, sep=",", dtype=dtype)
    except ValueError:
        values = None
    if values is None or len(values) != text.count(",") + 1:
        raise StoreError(f"a stored {dtype} column holds something else, near {text[:60]!r}. "
                         "Fix: the store was edited by hand; delete the dataset and upload it again")
    return values


def _to_array(column: str, text: str):
    """One column of a chunk, as read by :func:`_aggregate` -> the validated frame's dtype."""
    kind = _kind(column)
    if kind in _STR_KINDS:
        return _str_array(json.loads(text))
    if kind == "datetime":
        ns = _numbers(text, "int64")
        return pd.Series(ns.view("datetime64[ns]")).dt.tz_localize("UTC").array
    if kind in _FLOAT_KINDS:
        return _numbers(text, "float64")
    if kind == "bool":
        codes = _numbers(text, "int64")
        return pd.arrays.BooleanArray(codes == 1, codes == 2)
    return _numbers(text, "int64")


def _fetch_chunks(db: sqlite_utils.Database, dataset_id: int, aggregates: list[str]) -> Iterator[tuple]:
    """The aggregates over the dataset's messages, per chunk of at most ``_LOAD_CHUNK_ROWS`` in key order.

    One aggregate query per chunk builds one string per column in C, which is several times faster
    than fetching row tuples. A chunk is the key range up to the key ``_LOAD_CHUNK_ROWS - 1`` rows on
    (found by stepping through the primary key alone), so the aggregate scans the table directly;
    a chunk whose string would exceed SQLite's length limit is retried at half the size.
    """
    outer = ", ".join(["count(*)"] + aggregates)
    lower, first, chunk = "", True, _LOAD_CHUNK_ROWS
    while True:
        after = ">=" if first else ">"
        upper = db.conn.execute(f"SELECT msg_key FROM messages WHERE dataset_id = ? AND msg_key {after} ? "
                                "ORDER BY msg_key LIMIT 1 OFFSET ?", (dataset_id, lower, chunk - 1)).fetchone()
        upto, bound = ("AND msg_key <= ?", (upper[0],)) if upper else ("", ())
        try:
            result = db.conn.execute(f"SELECT {outer} FROM messages WHERE dataset_id = ? AND msg_key {after} ? {upto}",
                                     (dataset_id, lower) + bound).fetchone()
        except (sqlite3.DataError, sqlite3.OperationalError) as exc:
            if "too big" in str(exc) and chunk > 1:
                chunk = max(1, chunk // 2)
                continue
            raise
        if result[0]:
            yield result[1:]
        if upper is None:
            return
        lower, first = upper[0], False


# --------------------------------------------------------------------------- loading

@contextlib.contextmanager
def _snapshot(db: sqlite_utils.Database) -> Iterator[None]:
    """A read transaction (unless one is open already): several SELECTs see one committed state."""
    if db.conn.in_transaction:
        yield
        return
    db.conn.execute("BEGIN")
    try:
        yield
    finally:
        if db.conn.in_transaction:
            db.conn.execute("COMMIT")


def load_messages(db: sqlite_utils.Database, dataset_id: int) -> pd.DataFrame:
    """The dataset's messages as a validated frame.

    Columns: ``conversation_id, timestamp, speaker, text``, then each optional
    canonical column holding at least one non-null value in the dataset (in
    :data:`metrics.io.schema.COLUMNS` order), then ``row``. dtypes: ``str`` with
    NA, ``datetime64[ns, UTC]`` (NaT where the source had no timestamp),
    nullable ``boolean``, ``float64`` (NaN), ``row`` int64. Rows are sorted by
    (conversation_id, timestamp, row) with a fresh RangeIndex; ties keep key
    order. A dataset without messages gives the empty frame with those
    columns. StoreError if there is no dataset with that id.

    Examples
    --------
    >>> import pandas as pd
    >>> db = connect(":memory:")
    >>> f = pd.DataFrame({"conversation_id": ["c1"], "timestamp": pd.to_datetime(["2024-01-01"], utc=True),
    ...                   "speaker": ["user"], "text": ["hi"], "row": [1]})
    >>> saved = save_messages(db, f, dataset_name="demo")
    >>> list(load_messages(db, saved.dataset_id).columns)
    ['conversation_id', 'timestamp', 'speaker', 'text', 'row']
    >>> db.close()
    """
    with _lock(db), _snapshot(db):  # the dataset row and its parts from the same committed state
        info = _require(db, dataset_id)
        try:
            parts = _stored_parts(db, int(info["id"]))
        except sqlite3.Error as exc:
            raise StoreError(f"could not read dataset {info['name']!r}: {exc}") from exc
    return _frame_of_parts(info, parts)


def _frame_of_parts(info: dict, parts: list[tuple]) -> pd.DataFrame:
    """The validated frame of ``(load_id, bucket, data)`` parts (part order) of the dataset ``info``:
    :func:`load_messages`' columns and row order for those rows."""
    present = set(json.loads(info["columns"]))
    columns = [c for c in MESSAGE_COLUMNS if c in _FIXED or c in present]
    try:
        table = _decode_parts([data for _, _, data in parts], columns + ["msg_key"])
    except (pa.ArrowException, OSError) as exc:
        raise StoreError(f"could not read dataset {info['name']!r}: a stored part is damaged ({exc}). "
                         "Fix: delete the dataset and upload it again") from exc
    if len({load for load, _, _ in parts}) > 1:  # several saves: merge them into one order, ties in key order
        order = pc.sort_indices(table, sort_keys=[(c, "ascending", "at_end")
                                                  for c in ("conversation_id", "timestamp", "row", "msg_key")])
        table = table.take(order)
    elif len({bucket for _, bucket, _ in parts}) > 1:
        # One save split into buckets: each bucket's rows are in load order (by conversation_id, timestamp,
        # row, key) and a conversation is in one bucket only, so a stable sort by conversation_id alone
        # restores the save's order (missing ids last, as the save put them).
        order = pc.sort_indices(table, sort_keys=[("conversation_id", "ascending", "at_end")])
        table = table.take(order)
    return _to_frame(table.drop_columns(["msg_key"]))


def dataset_buckets(db: sqlite_utils.Database, dataset_id: int) -> int:
    """The number of buckets the dataset's conversations are hashed into (fixed when it was created)."""
    return int(_require(db, dataset_id)["buckets"])


@dataclass(frozen=True)
class BucketPlan:
    """What an engine needs before reading a dataset bucket by bucket (:func:`bucket_plan`).

    ``columns``: the columns of :func:`load_messages`' frame; ``export_end``: its latest timestamp (NaT
    when none); ``buckets``: the bucket numbers holding messages (ascending); ``rows``: messages per bucket;
    ``upto_part``: the last part of the dataset when planned (pass it to :func:`iter_buckets` so every bucket
    is read as of that version); ``version``, ``bucket_count``: the dataset's.
    """

    dataset_id: int
    name: str
    version: int
    bucket_count: int
    columns: tuple[str, ...]
    export_end: pd.Timestamp
    buckets: tuple[int, ...]
    rows: tuple[int, ...]
    upto_part: int


def bucket_plan(db: sqlite_utils.Database, dataset_id: int) -> BucketPlan:
    """The :class:`BucketPlan` of a dataset: one snapshot, reading only the ``timestamp`` column of its parts
    (one part in memory at a time). StoreError if there is no dataset with that id."""
    with _lock(db), _snapshot(db):
        info = _require(db, dataset_id)
        present = set(json.loads(info["columns"]))
        columns = tuple(c for c in MESSAGE_COLUMNS if c in _FIXED or c in present)
        counts = db.conn.execute("SELECT bucket, sum(row_count), max(part) FROM message_parts WHERE dataset_id = ? "
                                 "GROUP BY bucket ORDER BY bucket", (int(info["id"]),)).fetchall()
        upto = max((p for _, _, p in counts), default=0)
        end = None
        cursor = db.conn.execute("SELECT data FROM message_parts WHERE dataset_id = ? AND part <= ? ORDER BY part",
                                 (int(info["id"]), upto))
        for (data,) in cursor:
            stamps = _decode_parts([data], ["timestamp"]).column("timestamp").cast(pa.int64())
            top = pc.max(stamps).as_py()
            if top is not None and (end is None or top > end):
                end = top
    return BucketPlan(dataset_id=int(info["id"]), name=info["name"], version=int(info["version"]),
                      bucket_count=int(info["buckets"]), columns=columns,
                      export_end=pd.NaT if end is None else pd.Timestamp(end, unit="ns", tz="UTC"),
                      buckets=tuple(int(b) for b, _, _ in counts), rows=tuple(int(n) for _, n, _ in counts),
                      upto_part=int(upto))


def iter_buckets(db: sqlite_utils.Database, dataset_id: int, *, buckets: "Iterable[int] | None" = None,
                 upto_part: int | None = None) -> Iterator[tuple[int, pd.DataFrame]]:
    """``(bucket, frame)`` for each bucket of the dataset, reading only that bucket's parts.

    ``frame`` is that bucket's messages exactly as :func:`load_messages` gives them for those rows: the same
    columns (the dataset's, even where the bucket has no value), dtypes and row order, a fresh RangeIndex.
    The concatenation of every bucket's frame holds the rows of :func:`load_messages`; a conversation is in
    one bucket only (:func:`metrics.core.facts.shard_of` of its id over :func:`dataset_buckets`).

    ``buckets``: the bucket numbers to yield, in that order (a bucket without messages gives the empty frame);
    default: every bucket holding messages, ascending. The buckets are read as of the call (or as of
    ``upto_part``, :attr:`BucketPlan.upto_part`): parts saved afterwards (a later upload) are not read, so the
    frames are one version of the dataset. StoreError if there is no dataset with that id.
    """
    with _lock(db), _snapshot(db):
        info = _require(db, dataset_id)
        (last,) = db.conn.execute("SELECT coalesce(max(part), 0) FROM message_parts WHERE dataset_id = ?",
                                  (int(info["id"]),)).fetchone()
        if upto_part is not None:
            last = min(int(last), int(upto_part))
        if buckets is None:
            buckets = [b for (b,) in db.conn.execute(
                "SELECT DISTINCT bucket FROM message_parts WHERE dataset_id = ? ORDER BY bucket",
                (int(info["id"]),))]
    for bucket in list(buckets):
        try:
            with _lock(db), _snapshot(db):
                parts = db.conn.execute("SELECT load_id, bucket, data FROM message_parts WHERE dataset_id = ? "
                                        "AND bucket = ? AND part <= ? ORDER BY part",
                                        (int(info["id"]), int(bucket), last)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"could not read dataset {info['name']!r}: {exc}") from exc
        yield int(bucket), _frame_of_parts(info, parts)


def distinct_texts(db: sqlite_utils.Database) -> list[str]:
    """Every distinct message text stored in any dataset (derived caches keep only what these need).

    Examples
    --------
    >>> import pandas as pd
    >>> db = connect(":memory:")
    >>> f = pd.DataFrame({"conversation_id": ["c1", "c1"], "timestamp": pd.to_datetime(["2024-01-01"] * 2, utc=True),
    ...                   "speaker": ["user", "user"], "text": ["hi", "hi"], "row": [1, 2]})
    >>> _ = save_messages(db, f, dataset_name="demo")
    >>> distinct_texts(db)
    ['hi']
    >>> db.close()
    """
    blobs = [data for (data,) in db.conn.execute("SELECT data FROM message_parts ORDER BY dataset_id, part")]
    texts = _decode_parts(blobs, ["text"]).column("text")
    return pc.unique(texts.drop_null()).to_pylist() if len(texts) else []
