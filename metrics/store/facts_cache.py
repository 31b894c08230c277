"""Facts kept in the store, per dataset version and definition settings.

An engine that computed the facts of a stored dataset (:mod:`metrics.engines`) keeps them here, so the
next ``summary --db --dataset --engine ...`` of the same version reads them instead of the messages.
One entry per ``(dataset_id, key)``; the key names the dataset version, the bucket count and
:data:`FACTS_FORMAT` (bumped whenever a family's facts change shape or meaning), so a stale entry is never
read: a new version of the dataset, or new code, computes and replaces it. Each table is stored as
Parquet (no pickle: a store file is data, never code), the context as JSON. Deleting a dataset deletes
its entries (the table has a ``dataset_id`` column).
"""

from __future__ import annotations

import io
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlite_utils

__all__ = ["FACTS_FORMAT", "MIGRATION_STEPS", "facts_key", "save_facts", "load_facts"]

#: Bump when any family's facts change (tables, columns or meaning): older entries are then ignored.
FACTS_FORMAT = 1


def _migration_17(db: sqlite_utils.Database) -> None:
    db.conn.execute("CREATE TABLE IF NOT EXISTS facts_cache (dataset_id INTEGER NOT NULL REFERENCES datasets(id), "
                    "key TEXT NOT NULL, created_at TEXT NOT NULL, context TEXT NOT NULL, tables TEXT NOT NULL, "
                    "data BLOB NOT NULL, PRIMARY KEY (dataset_id, key))")


MIGRATION_STEPS = (("facts_cache", "facts_cache: the facts of a dataset version", _migration_17),)


def facts_key(version: int, bucket_count: int) -> str:
    """The cache key of a dataset version's facts under the default definitions."""
    return f"v{int(version)}/b{int(bucket_count)}/f{FACTS_FORMAT}/default"


def _encode(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    return sink.getvalue()


def _decode(blob: bytes, dtypes: dict) -> pd.DataFrame:
    frame = pq.read_table(io.BytesIO(blob)).to_pandas()
    for column, dtype in dtypes.items():
        if str(frame[column].dtype) != dtype:
            frame[column] = frame[column].astype(dtype)
    return frame


def save_facts(db: sqlite_utils.Database, dataset_id: int, key: str, facts: dict, ctx) -> None:
    """Keep ``facts`` (``{family: {table: frame}}``) and their context under ``(dataset_id, key)``; the
    dataset's other entries (older versions) are removed. One transaction."""
    from metrics.store import _now, immediate

    blobs, index = [], []
    for family, tables in facts.items():
        for name, frame in tables.items():
            blobs.append(_encode(frame))
            index.append({"family": family, "table": name, "bytes": len(blobs[-1]),
                          "dtypes": {c: str(t) for c, t in frame.dtypes.items()}})
    context = {"export_end": None if pd.isna(ctx.export_end) else ctx.export_end.isoformat(),
               "columns": list(ctx.columns)}
    with immediate(db):
        db.conn.execute("DELETE FROM facts_cache WHERE dataset_id = ?", (int(dataset_id),))
        db.conn.execute("INSERT INTO facts_cache (dataset_id, key, created_at, context, tables, data) "
                        "VALUES (?, ?, ?, ?, ?, ?)", (int(dataset_id), key, _now(), json.dumps(context),
                                                     json.dumps(index), b"".join(blobs)))


def load_facts(db: sqlite_utils.Database, dataset_id: int, key: str):
    """``(facts, ctx)`` kept under ``(dataset_id, key)``, or None."""
    from metrics.core.facts import Context

    row = db.conn.execute("SELECT context, tables, data FROM facts_cache WHERE dataset_id = ? AND key = ?",
                          (int(dataset_id), key)).fetchone()
    if row is None:
        return None
    context, index, data = json.loads(row[0]), json.loads(row[1]), row[2]
    facts: dict = {}
    at = 0
    for entry in index:
        blob = data[at:at + entry["bytes"]]
        at += entry["bytes"]
        facts.setdefault(entry["family"], {})[entry["table"]] = _decode(blob, entry["dtypes"])
    end = pd.Timestamp(context["export_end"]) if context["export_end"] else pd.NaT
    return facts, Context(export_end=end, columns=tuple(context["columns"]))
