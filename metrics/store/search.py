"""Full-text search over a dataset's messages (SQLite FTS5), stored in the same SQLite file.

One index per dataset **and version**: the virtual table ``search_fts_<dataset>_<version>``
(``text``, ``conversation_id UNINDEXED``, ``dataset_id UNINDEXED``; tokenizer
``unicode61 remove_diacritics 2``: case- and accent-insensitive words). It is built once, lazily by the
first :func:`search` of that version (or right after a save with :func:`build_index`), and recorded in
``search_indexes(dataset_id, version, table_name, messages, conversations, built_at)``.

The rowid of a message is ``conversation ordinal << 24 | message index in its conversation``, so a
search reads only the full-text index (``rowid >> 24`` is the conversation), never the stored texts;
``conversation_id`` is read once per matching conversation (at rowid ``ordinal << 24``).

Deleting: both tables have a ``dataset_id`` column, so :func:`metrics.store.delete_dataset` empties them
with the dataset; :func:`drop_orphans` (an ``AFTER_DELETE_HOOKS`` entry, also run by every build) then
drops the emptied virtual tables. A new version of a dataset gets a new index and the old one is dropped
when the new one is built.

Queries from users are words, never FTS syntax (:func:`query_words`): every word is quoted as an FTS5
string, and a conversation matches when it contains every word (in any of its messages).
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3

import numpy as np
import pandas as pd

from metrics import store
from metrics.errors import StoreError

__all__ = ["REGISTRY", "MAX_WORDS", "MAX_WORD_CHARS", "query_words", "fts_phrase", "index_table",
           "has_index", "build_index", "ensure_index", "search", "drop_orphans", "drop_index"]

REGISTRY = "search_indexes"
#: Words of one query that are used (the rest are ignored) and the longest word (cut there).
MAX_WORDS = 16
MAX_WORD_CHARS = 64
_SHIFT = 24  # up to 16.7M messages per conversation, 2**39 conversations
_TABLE = re.compile(r"^search_fts_(\d+)_(\d+)$")
#: What unicode61 treats as part of a word (letters, digits): everything else separates words.
_TOKEN = re.compile(r"[^\W_]+")

if "metrics.store.search:drop_orphans" not in store.AFTER_DELETE_HOOKS:
    store.AFTER_DELETE_HOOKS.append("metrics.store.search:drop_orphans")


def index_table(dataset_id: int, version: int) -> str:
    return f"search_fts_{int(dataset_id)}_{int(version)}"


def query_words(query) -> list[str]:
    """The words of a user's query, as FTS would tokenise them (at most :data:`MAX_WORDS`, each cut at
    :data:`MAX_WORD_CHARS`). Punctuation never reaches FTS as syntax: ``NEAR(`` is the word ``near``,
    ``-x`` is ``x``, ``a OR b`` is the three words ``a``, ``or``, ``b``; ``"`` or ``*`` alone are no word."""
    if query is None:
        return []
    words: list[str] = []
    for chunk in str(query).split():
        tokens = _TOKEN.findall(chunk[:4 * MAX_WORD_CHARS].lower())
        if tokens:
            words.append(" ".join(t[:MAX_WORD_CHARS] for t in tokens))  # "can't" -> the phrase "can t"
        if len(words) >= MAX_WORDS:
            break
    return words


def fts_phrase(word: str) -> str:
    """``word`` as an FTS5 string (``"..."`` with ``"`` doubled): matched literally, never as syntax."""
    return '"' + str(word).replace('"', '""') + '"'


def _registered(db, dataset_id: int, version: int) -> bool:
    row = db.conn.execute(f"SELECT table_name FROM {REGISTRY} WHERE dataset_id = ? AND version = ?",
                          (int(dataset_id), int(version))).fetchone()
    if row is None:
        return False
    return db.conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (row[0],)).fetchone() is not None


def has_index(db, dataset_id: int, version: int | None = None) -> bool:
    version = store.dataset_version(db, dataset_id) if version is None else int(version)
    return _registered(db, dataset_id, version)


def build_index(db, dataset_id: int, messages: pd.DataFrame | None = None, *, version: int | None = None,
                if_missing: bool = False) -> str:
    """Build (or rebuild) the index of the dataset's current version and drop its other versions' indexes.

    ``messages`` is the dataset's frame when the caller already holds it (``store.load_messages``
    order); otherwise it is loaded. ``if_missing``: keep an index another session finished building while
    this one waited for the write lock. Returns the table name.
    """
    dataset_id = int(dataset_id)
    version = store.dataset_version(db, dataset_id) if version is None else int(version)
    if messages is None:
        messages = store.load_messages(db, dataset_id)
    table = index_table(dataset_id, version)
    ids = messages["conversation_id"].astype("str").to_numpy(dtype=object)
    codes, uniques = pd.factorize(ids, sort=False)
    codes = codes.astype(np.int64)
    # index of each message within its conversation (stable, in frame order)
    within = pd.Series(np.zeros(len(codes), dtype=np.int64)).groupby(codes, sort=False).cumcount().to_numpy()
    if len(within) and within.max() >= (1 << _SHIFT):
        raise StoreError(f"a conversation has more than {1 << _SHIFT:,} messages: it cannot be indexed for search")
    rowids = (codes << _SHIFT) | within
    texts = messages["text"].astype("object").where(messages["text"].notna(), "").to_numpy(dtype=object)
    try:
        with store.immediate(db):
            if if_missing and _registered(db, dataset_id, version):
                return table
            current = store.dataset_version(db, dataset_id)
            if current != version:  # an index of an older version would replace the current one's
                raise StoreError(f"dataset {dataset_id} changed meanwhile (version {current}, not {version}). "
                                 "Fix: reload the page and search again")
            db.conn.execute(f"DROP TABLE IF EXISTS {table}")
            db.conn.execute(
                f"CREATE VIRTUAL TABLE {table} USING fts5(text, conversation_id UNINDEXED, dataset_id UNINDEXED, "
                "tokenize = 'unicode61 remove_diacritics 2')")
            first = within == 0
            db.conn.executemany(
                f"INSERT INTO {table} (rowid, text, conversation_id, dataset_id) VALUES (?, ?, ?, ?)",
                ((int(r), str(t), (uniques[c] if f else None), dataset_id)
                 for r, t, c, f in zip(rowids.tolist(), texts, codes.tolist(), first.tolist())))
            db.conn.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")
            db.conn.execute(f"DELETE FROM {REGISTRY} WHERE dataset_id = ?", (dataset_id,))
            db.conn.execute(
                f"INSERT INTO {REGISTRY} (dataset_id, version, table_name, messages, conversations, built_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (dataset_id, version, table, len(messages), len(uniques),
                 dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")))
            _drop_unregistered(db)
    except sqlite3.Error as exc:
        raise StoreError(f"could not build the search index of dataset {dataset_id}: {exc}") from exc
    return table


def ensure_index(db, dataset_id: int, messages: pd.DataFrame | None = None, *, version: int | None = None) -> str:
    """The index of the dataset version, built on first use."""
    version = store.dataset_version(db, dataset_id) if version is None else int(version)
    if not _registered(db, dataset_id, version):
        return build_index(db, dataset_id, messages, version=version, if_missing=True)
    return index_table(dataset_id, version)


def search(db, dataset_id: int, query, *, messages: pd.DataFrame | None = None,
           version: int | None = None) -> list[str] | None:
    """The ids of the conversations containing every word of ``query`` (index order: the order of the
    conversations in the dataset), or None for a query without words (no restriction: everything)."""
    words = query_words(query)
    if not words:
        return None
    table = ensure_index(db, dataset_id, messages, version=version)
    selects = " INTERSECT ".join(f"SELECT rowid >> {_SHIFT} AS o FROM {table} WHERE {table} MATCH ?" for _ in words)
    sql = (f"SELECT conversation_id FROM {table} WHERE rowid IN (SELECT o << {_SHIFT} FROM ({selects})) "
           "ORDER BY rowid")
    try:
        rows = db.conn.execute(sql, [fts_phrase(w) for w in words]).fetchall()
    except sqlite3.Error as exc:  # e.g. another session replaced this version's index meanwhile
        raise StoreError(f"the search failed: {exc}. Fix: search again") from exc
    return [r[0] for r in rows]


def _drop_unregistered(db) -> int:
    known = {r[0] for r in db.conn.execute(f"SELECT table_name FROM {REGISTRY}")}
    names = [r[0] for r in db.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'search_fts_%'")]
    dropped = 0
    for name in names:
        if _TABLE.match(name) and name not in known:
            db.conn.execute(f"DROP TABLE IF EXISTS {name}")
            dropped += 1
    return dropped


def drop_orphans(db) -> int:
    """Drop every search index whose dataset version is not registered any more (deleted datasets: their
    registry rows go with the dataset). Returns the number of tables dropped. A store that never built an
    index is left as it is (no registry is created)."""
    exists = db.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (REGISTRY,)).fetchone()
    if exists is None:
        return 0
    with store.immediate(db):
        db.conn.execute(f"DELETE FROM {REGISTRY} WHERE dataset_id NOT IN (SELECT id FROM datasets)")
        return _drop_unregistered(db)


def drop_index(db, dataset_id: int) -> int:
    """Drop every search index of a dataset (it is rebuilt on the next search)."""
    with store.immediate(db):
        db.conn.execute(f"DELETE FROM {REGISTRY} WHERE dataset_id = ?", (int(dataset_id),))
        return _drop_unregistered(db)
