"""Saved funnels: named stage lists in the Chatlens store (table ``funnels``, created by migration step 7).

Each row is ``name`` (primary key, trimmed, 1-80 characters), ``stages`` (a JSON list of
``{"name": ..., "rule": "<RULE syntax>"}`` dicts, see :mod:`metrics.funnel`),
``created_at`` and ``updated_at`` (ISO 8601 UTC text). Funnels are global to the store,
not tied to a dataset, so one definition can be applied to every upload.

Every read-then-write runs under :func:`metrics.store.immediate` (``BEGIN IMMEDIATE``), so
two sessions saving at once never lose a row. Bad names or definitions raise
:class:`~metrics.errors.ConfigError` repeating the value; an unreadable stored row raises
:class:`~metrics.errors.StoreError`.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd

from metrics import store
from metrics.errors import ConfigError, StoreError
from metrics.funnel import Stage, stages_from_dicts, stages_to_dicts

__all__ = [
    "TABLE",
    "MAX_NAME_LENGTH",
    "MIGRATION_STEPS",
    "clean_funnel_name",
    "save_funnel",
    "list_funnels",
    "load_funnel",
    "funnel_exists",
    "copy_funnel",
    "rename_funnel",
    "delete_funnel",
]

TABLE = "funnels"
MAX_NAME_LENGTH = 80


def _create_table(db) -> None:
    """Step 7: ``funnels``, as sqlite-utils' ``create`` wrote it before (idempotent)."""
    db.conn.execute(f"""CREATE TABLE IF NOT EXISTS "{TABLE}" (
   "name" TEXT PRIMARY KEY NOT NULL,
   "stages" TEXT NOT NULL,
   "created_at" TEXT NOT NULL,
   "updated_at" TEXT NOT NULL
)""")


#: This module's schema steps, applied by :mod:`metrics.store.migrations` when the store is opened.
MIGRATION_STEPS = (("funnels", "funnel: saved funnels (funnels)", _create_table),)


def clean_funnel_name(name) -> str:
    """The trimmed name, or :class:`ConfigError` for an empty, too long or multi-line one.

    Examples
    --------
    >>> clean_funnel_name("  Lead gen ")
    'Lead gen'
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"funnel name {name!r} is empty; give the funnel a name, e.g. 'Lead gen'")
    clean = name.strip()
    if len(clean) > MAX_NAME_LENGTH:
        raise ConfigError(f"funnel name {clean[:20]!r}... is {len(clean)} characters long; use at most "
                          f"{MAX_NAME_LENGTH}")
    if any(ord(ch) < 32 for ch in clean):
        raise ConfigError(f"funnel name {clean!r} contains a line break or control character; use one line")
    return clean


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _get(db, name: str) -> dict | None:
    rows = list(db.query(f"SELECT name, stages, created_at, updated_at FROM {TABLE} WHERE name = ?",
                         [name]))
    return rows[0] if rows else None


def _decode(row: dict) -> list[Stage]:
    try:
        items = json.loads(row["stages"])
        return stages_from_dicts(items)
    except (ValueError, TypeError, ConfigError) as exc:
        raise StoreError(f"saved funnel {row['name']!r} is unreadable ({exc}); delete it and save it "
                         "again") from None


def save_funnel(db, name: str, stages, *, overwrite: bool = True) -> None:
    """Save ``stages`` under ``name`` (insert, or replace when ``overwrite``).

    The stages are validated first (:class:`ConfigError` for no stage, a duplicate stage
    name or a bad rule). With ``overwrite=False`` an existing name raises ConfigError.
    ``created_at`` is kept when a funnel is replaced.
    """
    clean = clean_funnel_name(name)
    payload = json.dumps(stages_to_dicts(stages), ensure_ascii=False)
    with store.immediate(db):
        existing = _get(db, clean)
        if existing is not None and not overwrite:
            raise ConfigError(f"a funnel named {clean!r} already exists; choose another name or replace it")
        now = _now()
        db[TABLE].upsert({"name": clean, "stages": payload,
                          "created_at": existing["created_at"] if existing else now,
                          "updated_at": now}, pk="name")


def list_funnels(db) -> pd.DataFrame:
    """Saved funnels: columns ``name``, ``stage_count`` (int), ``stages`` (the stage names
    joined with " → "), ``created_at``, ``updated_at``; sorted by name (case-insensitive).
    An empty store gives an empty frame with these columns."""
    rows = list(db.query(f"SELECT name, stages, created_at, updated_at FROM {TABLE}"))
    records = []
    for row in rows:
        try:
            items = json.loads(row["stages"])
            names = [str(i.get("name", "?")) for i in items]
        except (ValueError, TypeError, AttributeError):
            names = ["(unreadable)"]
        records.append({"name": row["name"], "stage_count": len(names), "stages": " → ".join(names),
                        "created_at": row["created_at"], "updated_at": row["updated_at"]})
    cols = {"name": "str", "stage_count": "int64", "stages": "str", "created_at": "str", "updated_at": "str"}
    if not records:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in cols.items()})
    out = pd.DataFrame.from_records(records, columns=list(cols)).astype(cols)
    order = out["name"].str.casefold().argsort(kind="stable")
    return out.iloc[order].reset_index(drop=True)


def funnel_exists(db, name: str) -> bool:
    """True when a funnel is saved under ``name`` (after trimming)."""
    return _get(db, clean_funnel_name(name)) is not None


def _missing(db, name: str) -> ConfigError:
    saved = list_funnels(db)["name"].tolist()
    listing = ", ".join(repr(n) for n in saved[:10]) if saved else "none"
    return ConfigError(f"no saved funnel named {name!r}; saved funnels: {listing}")


def load_funnel(db, name: str) -> list[Stage]:
    """The stages saved under ``name``; ConfigError naming the saved ones when absent."""
    clean = clean_funnel_name(name)
    row = _get(db, clean)
    if row is None:
        raise _missing(db, clean)
    return _decode(row)


def copy_funnel(db, name: str, new_name: str) -> list[Stage]:
    """Save a copy of ``name`` as ``new_name`` (which must be free); returns its stages."""
    src, dst = clean_funnel_name(name), clean_funnel_name(new_name)
    with store.immediate(db):
        row = _get(db, src)
        if row is None:
            raise _missing(db, src)
        if _get(db, dst) is not None:
            raise ConfigError(f"a funnel named {dst!r} already exists; choose another name for the copy")
        stages = _decode(row)
        now = _now()
        db[TABLE].insert({"name": dst, "stages": row["stages"], "created_at": now, "updated_at": now},
                         pk="name")
    return stages


def rename_funnel(db, name: str, new_name: str) -> None:
    """Rename ``name`` to ``new_name`` (which must be free, unless only the case changes)."""
    src, dst = clean_funnel_name(name), clean_funnel_name(new_name)
    with store.immediate(db):
        if _get(db, src) is None:
            raise _missing(db, src)
        if src == dst:
            return
        if _get(db, dst) is not None:
            raise ConfigError(f"a funnel named {dst!r} already exists; choose another name")
        db.execute(f"UPDATE {TABLE} SET name = ?, updated_at = ? WHERE name = ?", [dst, _now(), src])


def delete_funnel(db, name: str) -> bool:
    """Delete ``name``; True when a funnel was deleted, False when none had that name."""
    clean = clean_funnel_name(name)
    with store.immediate(db):
        if _get(db, clean) is None:
            return False
        db.execute(f"DELETE FROM {TABLE} WHERE name = ?", [clean])
    return True
