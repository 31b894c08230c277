"""Named ROI scenarios in the Chatlens store (table ``roi_scenarios``).

Table ``roi_scenarios`` (created by migration step 8, :data:`MIGRATION_STEPS`):

``name`` (TEXT, primary key)
    The scenario's name, stripped, 1-80 characters.
``inputs`` (TEXT, not null)
    JSON object ``{field: number}`` of every :class:`metrics.roi.RoiInputs` field.
``source_dataset_id`` (INTEGER, nullable)
    The dataset the scenario's starting values came from, if any. Informational only: a
    scenario is the user's work, not the dataset's, so the column is deliberately not named
    ``dataset_id`` and :func:`metrics.store.delete_dataset` leaves scenarios alone.
``created_at`` / ``updated_at`` (TEXT, not null)
    ISO 8601 UTC times; saving an existing name keeps ``created_at``.

Saving is a read-then-write (keep ``created_at``), so it runs inside
:func:`metrics.store.immediate` (``BEGIN IMMEDIATE``), which is safe with several writers.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd

from metrics import store
from metrics.errors import ConfigError, StoreError
from metrics.roi import FIELD_NAMES, RoiInputs

__all__ = ["TABLE", "MAX_NAME_LENGTH", "MIGRATION_STEPS", "save_scenario", "list_scenarios", "load_scenario",
           "load_scenarios", "delete_scenario"]

TABLE = "roi_scenarios"
MAX_NAME_LENGTH = 80
_LIST_COLUMNS = ("name", "source_dataset_id", "created_at", "updated_at")


def _create_table(db) -> None:
    """Step 8: ``roi_scenarios``, as sqlite-utils' ``create`` wrote it before (idempotent)."""
    db.conn.execute(f"""CREATE TABLE IF NOT EXISTS "{TABLE}" (
   "name" TEXT PRIMARY KEY,
   "inputs" TEXT NOT NULL,
   "source_dataset_id" INTEGER,
   "created_at" TEXT NOT NULL,
   "updated_at" TEXT NOT NULL
)""")


#: This module's schema steps, applied by :mod:`metrics.store.migrations` when the store is opened.
MIGRATION_STEPS = (("roi_scenarios", "roi: saved scenarios (roi_scenarios)", _create_table),)


def _clean_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a scenario needs a non-empty name, got {name!r}")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise ConfigError(f"scenario names are at most {MAX_NAME_LENGTH} characters, got {len(name)}: {name[:20]!r}...")
    return name


def save_scenario(db, name: str, inputs: RoiInputs, *, dataset_id: int | None = None,
                  now: datetime | None = None) -> str:
    """Insert or replace the scenario ``name`` (atomic upsert); returns the stored (stripped) name.

    An existing scenario keeps its ``created_at`` and gets the new inputs and ``updated_at``;
    ``dataset_id`` is stored as ``source_dataset_id``.
    A blank or over-long name raises ConfigError; ``inputs`` must be a :class:`RoiInputs`.
    """
    name = _clean_name(name)
    if not isinstance(inputs, RoiInputs):
        raise ConfigError(f"inputs must be RoiInputs, got {type(inputs).__name__}")
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds")
    payload = json.dumps(inputs.as_dict(), sort_keys=True)
    with store.immediate(db):
        existing = list(db.query(f"select created_at from {TABLE} where name = ?", [name]))
        created = existing[0]["created_at"] if existing else stamp
        db[TABLE].upsert({"name": name, "inputs": payload, "source_dataset_id": dataset_id,
                          "created_at": created, "updated_at": stamp}, pk="name", not_null={"inputs", "created_at", "updated_at"})
    return name


def list_scenarios(db) -> pd.DataFrame:
    """Saved scenarios: columns ``name, source_dataset_id, created_at, updated_at``, sorted by name.

    No scenario (or no table yet): an empty frame with those columns.
    """
    if not db[TABLE].exists():
        return pd.DataFrame({c: pd.Series([], dtype="Int64" if c == "source_dataset_id" else "str")
                             for c in _LIST_COLUMNS})
    rows = list(db.query(f"select name, source_dataset_id, created_at, updated_at from {TABLE} order by name"))
    frame = pd.DataFrame(rows, columns=list(_LIST_COLUMNS))
    return frame.astype({"name": "str", "source_dataset_id": "Int64", "created_at": "str", "updated_at": "str"})


def _decode(name: str, text: str) -> RoiInputs:
    try:
        values = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"scenario {name!r} is stored as invalid JSON: {exc}") from None
    if not isinstance(values, dict):
        raise StoreError(f"scenario {name!r} is not a JSON object: {text[:60]!r}")
    try:
        return RoiInputs.from_dict({k: v for k, v in values.items() if k in FIELD_NAMES})
    except ConfigError as exc:
        raise StoreError(f"scenario {name!r} holds an invalid value: {exc}") from None


def load_scenario(db, name: str) -> RoiInputs:
    """The inputs saved under ``name``.

    Fields missing from the stored JSON (saved by an older version) take the defaults of
    :class:`RoiInputs`; unknown fields are ignored. An unknown name raises ConfigError; a
    corrupt row raises :class:`~metrics.errors.StoreError`.
    """
    name = _clean_name(name)
    if db[TABLE].exists():
        rows = list(db.query(f"select inputs from {TABLE} where name = ?", [name]))
        if rows:
            return _decode(name, rows[0]["inputs"])
    raise ConfigError(f"no saved ROI scenario named {name!r}")


def load_scenarios(db, names) -> dict[str, RoiInputs]:
    """``{name: inputs}`` for several names, in the order given (for the comparison table)."""
    return {str(n).strip(): load_scenario(db, n) for n in names}


def delete_scenario(db, name: str) -> bool:
    """Delete the scenario ``name``; True if it existed."""
    name = _clean_name(name)
    if not db[TABLE].exists():
        return False
    with store.immediate(db):
        cursor = db.execute(f"delete from {TABLE} where name = ?", [name])
        deleted = cursor.rowcount
    return deleted > 0
