"""Conversations queued for human review ("send to audit").

Table ``audit_queue(dataset_id, conversation_id, reason, queued_at)`` (created by
migration step 12, :data:`MIGRATION_STEPS`), keyed by
(dataset_id, conversation_id): a conversation is queued once per dataset, and
queuing it again keeps the first reason and time. The Sentiment page queues the
most negative conversations here; the Audit page picks them up with
:func:`queued_conversations`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

import pandas as pd

from metrics.errors import ConfigError

__all__ = ["TABLE", "MIGRATION_STEPS", "queue_conversations", "queued_conversations", "dequeue_conversations"]

TABLE = "audit_queue"
_COLUMNS = ["conversation_id", "reason", "queued_at"]


def _create_table(db) -> None:
    """Step 12: ``audit_queue``, as sqlite-utils' ``create`` wrote it before (idempotent)."""
    db.conn.execute(f"""CREATE TABLE IF NOT EXISTS "{TABLE}" (
   "dataset_id" INTEGER NOT NULL,
   "conversation_id" TEXT NOT NULL,
   "reason" TEXT NOT NULL,
   "queued_at" TEXT NOT NULL,
   PRIMARY KEY ("dataset_id", "conversation_id")
)""")


#: This module's schema steps, applied by :mod:`metrics.store.migrations` when the store is opened.
MIGRATION_STEPS = (("audit_queue", "audit: the review queue (audit_queue)", _create_table),)


def queue_conversations(db, dataset_id: int, conversation_ids: Iterable[str], *, reason: str,
                        now: datetime | None = None) -> int:
    """Queue conversations for review; returns how many were newly queued.

    Already-queued conversations keep their reason and ``queued_at`` (an ISO
    8601 UTC string). Runs as one BEGIN IMMEDIATE transaction, so a double
    click or two sessions at once never duplicate a row. Empty ids: 0.
    ``ConfigError`` for an empty reason.

    Examples
    --------
    >>> from metrics import store
    >>> db = store.connect(":memory:")
    >>> queue_conversations(db, 1, ["c1", "c2", "c1"], reason="most negative")
    2
    >>> queue_conversations(db, 1, ["c2", "c3"], reason="again")
    1
    """
    from metrics import store

    if not isinstance(reason, str) or not reason.strip():
        raise ConfigError(f"an audit queue entry needs a reason (got {reason!r})")
    ids = list(dict.fromkeys(str(c) for c in conversation_ids))
    if not ids:
        return 0
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds")
    rows = [(int(dataset_id), cid, reason.strip(), stamp) for cid in ids]
    with store.immediate(db):
        before = db.conn.total_changes
        db.conn.executemany(
            f"INSERT OR IGNORE INTO {TABLE} (dataset_id, conversation_id, reason, queued_at) VALUES (?, ?, ?, ?)",
            rows)
        added = db.conn.total_changes - before
    return int(added)


def queued_conversations(db, dataset_id: int) -> pd.DataFrame:
    """The queue of one dataset: columns conversation_id, reason, queued_at (oldest first)."""
    rows = db.conn.execute(
        f"SELECT conversation_id, reason, queued_at FROM {TABLE} WHERE dataset_id = ? "
        "ORDER BY queued_at, conversation_id", [int(dataset_id)]).fetchall()
    return pd.DataFrame(rows, columns=_COLUMNS).astype({"conversation_id": "str", "reason": "str",
                                                       "queued_at": "str"})


def dequeue_conversations(db, dataset_id: int, conversation_ids: Iterable[str]) -> int:
    """Remove conversations from the queue (e.g. once reviewed); returns the rows removed."""
    from metrics import store

    ids = [(int(dataset_id), str(c)) for c in dict.fromkeys(conversation_ids)]
    if not ids:
        return 0
    with store.immediate(db):
        before = db.conn.total_changes
        db.conn.executemany(f"DELETE FROM {TABLE} WHERE dataset_id = ? AND conversation_id = ?", ids)
        removed = db.conn.total_changes - before
    return int(removed)
