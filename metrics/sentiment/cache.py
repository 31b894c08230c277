"""Sentiment scores kept in the store, so a re-upload or a restart never rescores a text.

Table ``sentiment_cache`` (created by migration step 14, :data:`MIGRATION_STEPS`):
one row per (``text_hash``, ``analyzer_version``) with the ``compound`` score.
``text_hash`` is the SHA-1 of the message text
(:func:`metrics.sentiment.text_hash`) and ``analyzer_version`` is
:data:`metrics.sentiment.ANALYZER_VERSION`, which changes whenever the
blind-spot fixes change, so a stale score is never read. The table is not tied
to a dataset: the same text scores the same in every upload, so deleting or
re-uploading a dataset keeps its scores.

:class:`StoreCache` implements :class:`metrics.sentiment.ScoreCache` on top of
a store connection (``metrics.store.connect``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["TABLE", "MIGRATION_STEPS", "StoreCache", "prune_versions", "prune_orphans"]

TABLE = "sentiment_cache"

#: Hashes per SELECT (well under SQLite's 999 host-parameter floor).
_GET_BATCH = 500
#: Rows per write transaction: short BEGIN IMMEDIATE windows let other writers in.
_PUT_BATCH = 20_000


#: A WITHOUT ROWID table keeps the rows in the primary-key b-tree itself: one b-tree to
#: write instead of two, which halves the cost of a first-time scoring's cache writes
#: (sqlite-utils' ``create`` cannot declare it, hence the fixed DDL).
_DDL = (f"CREATE TABLE IF NOT EXISTS {TABLE} ("
        "text_hash TEXT NOT NULL, analyzer_version TEXT NOT NULL, compound REAL NOT NULL, "
        "PRIMARY KEY (text_hash, analyzer_version)) WITHOUT ROWID")


def _create_table(db) -> None:
    """Step 14: ``sentiment_cache`` (idempotent).

    Columns: ``text_hash`` (SHA-1 hex of the text), ``analyzer_version``,
    ``compound``; all NOT NULL; primary key (text_hash, analyzer_version).
    """
    db.conn.execute(_DDL)


#: This module's schema steps, applied by :mod:`metrics.store.migrations` when the store is opened.
MIGRATION_STEPS = (("sentiment_cache", "sentiment: the score cache (sentiment_cache)", _create_table),)


class StoreCache:
    """A :class:`~metrics.sentiment.ScoreCache` backed by the store's ``sentiment_cache`` table.

    ``get_many`` reads in batches of 500 hashes; ``put_many`` writes in key order
    with one ``executemany`` per batch of 20,000 rows, each inside ``store.immediate``
    (BEGIN IMMEDIATE ... COMMIT, so concurrent writers wait instead of failing).
    A score already cached is kept (INSERT OR IGNORE: the same text and version
    always score the same). ``reads``/``writes`` count the rows returned and
    offered, for tests and the page's status line.

    Examples
    --------
    >>> from metrics import store
    >>> cache = StoreCache(store.connect(":memory:"))
    >>> cache.put_many({"abc": -0.5}, version="v1")
    >>> cache.get_many(["abc", "zzz"], version="v1"), cache.get_many(["abc"], version="v2")
    ({'abc': -0.5}, {})
    """

    def __init__(self, db):
        self.db = db
        self.reads = 0
        self.writes = 0

    def get_many(self, hashes: Sequence[str], *, version: str) -> dict[str, float]:
        found: dict[str, float] = {}
        hashes = sorted(hashes)  # neighbouring keys share b-tree pages
        for start in range(0, len(hashes), _GET_BATCH):
            batch = hashes[start:start + _GET_BATCH]
            marks = ", ".join("?" * len(batch))
            rows = self.db.conn.execute(
                f"SELECT text_hash, compound FROM {TABLE} "
                f"WHERE analyzer_version = ? AND text_hash IN ({marks})",
                [version, *batch],
            ).fetchall()
            found.update((h, float(c)) for h, c in rows)
        self.reads += len(found)
        return found

    def put_many(self, items: Mapping[str, float], *, version: str) -> None:
        from metrics import store

        rows = sorted((h, version, float(c)) for h, c in items.items())  # in key order: appends, not splits
        for start in range(0, len(rows), _PUT_BATCH):
            with store.immediate(self.db):
                self.db.conn.executemany(
                    f"INSERT OR IGNORE INTO {TABLE} (text_hash, analyzer_version, compound) VALUES (?, ?, ?)",
                    rows[start:start + _PUT_BATCH],
                )
        self.writes += len(rows)

    def count(self, *, version: str | None = None) -> int:
        """Cached scores, of one analyzer version or all."""
        if version is None:
            return int(self.db.conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])
        return int(self.db.conn.execute(f"SELECT count(*) FROM {TABLE} WHERE analyzer_version = ?",
                                        [version]).fetchone()[0])


def prune_versions(db, *, keep: str) -> int:
    """Delete the scores of every analyzer version except ``keep``; returns the rows deleted."""
    from metrics import store

    with store.immediate(db):
        cursor = db.conn.execute(f"DELETE FROM {TABLE} WHERE analyzer_version != ?", [keep])
    return int(cursor.rowcount)


def prune_orphans(db) -> int:
    """Delete cached scores whose text no stored message has any more; returns the rows deleted.

    Runs after a dataset is deleted (``metrics.store.AFTER_DELETE_HOOKS``), so the hash of a deleted
    message cannot be confirmed from the file. Texts shared with another dataset keep their score.
    """
    from metrics import store
    from metrics.sentiment import text_hash

    if not db[TABLE].exists() or "text_hash" not in db[TABLE].columns_dict:
        return 0
    with store.immediate(db):
        texts = store.distinct_texts(db)
        db.conn.execute("CREATE TEMP TABLE IF NOT EXISTS _keep_hashes (h TEXT PRIMARY KEY)")
        db.conn.execute("DELETE FROM _keep_hashes")
        db.conn.executemany("INSERT OR IGNORE INTO _keep_hashes (h) VALUES (?)", ((text_hash(t),) for t in texts))
        cursor = db.conn.execute(f"DELETE FROM {TABLE} WHERE text_hash NOT IN (SELECT h FROM _keep_hashes)")
        db.conn.execute("DELETE FROM _keep_hashes")
    return int(cursor.rowcount)
