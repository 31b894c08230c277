"""The store's one migration mechanism: every table of the SQLite file is created by a numbered step.

The steps
---------
A module that owns tables (``metrics.store`` itself for the core tables, and each family's persistence
module: ``metrics.<family>.store`` / ``persist`` / ``cache`` / ``queue``) declares them in a module-level
``MIGRATION_STEPS`` tuple of ``(name, description, function)``: ``function(db)`` changes the schema (and
moves data when needed). It imports nothing from here, so a family's ``cache`` or ``queue`` module stays
free of store imports.

:data:`PLAN` is the one ordered list of ``(version, module, step name)``: which module contributes which
step, at which schema version. It is a single global order (versions 1, 2, 3, ... across every family)
rather than one version counter per family, because

* the file has one schema version (:func:`schema_version`), so "written by a newer Chatlens" is simply
  ``max(version) > SCHEMA_VERSION``, and "nothing to do" is one ``SELECT count(*), max(version)`` that needs
  no family module imported;
* a step may rely on any earlier step, whatever its family (e.g. a family table referencing ``datasets``);
* the bookkeeping table of versions 1-4 stays as it was: ``schema_migrations(version INTEGER PRIMARY KEY,
  name, applied_at)``, one row per applied step; ``name`` is the step's description (from step 5 on it starts
  with the family's name).

The plan is append-only: a shipped step is never renumbered or edited (files out there have run it); a
schema change is a new step at the end. To add one: write the function in the family's module, add it to
that module's ``MIGRATION_STEPS`` and append ``(SCHEMA_VERSION + 1, "<module>", "<name>")`` to :data:`PLAN`.
``tests/metrics/store/test_migrations.py`` checks that every declared step is planned exactly once and every planned step
exists. No function creates its tables on first use (no ``ensure_schema`` before reads or writes).

Applying them
-------------
:func:`migrate` (run by :func:`metrics.store.connect`) first reads ``count(*), max(version)`` of
``schema_migrations``: equal to :data:`SCHEMA_VERSION` both means versions 1..N are all applied, and it
returns at once (the path of every Streamlit session). Otherwise it imports the contributing modules (lazily:
they import ``metrics.store``, which imports this module) and applies each missing step in its own
``BEGIN IMMEDIATE`` transaction (:func:`metrics.store.immediate`), re-reading inside it whether that version
is recorded, so two processes migrating one file at once apply (and record) each step once; the step and its
row commit together, or neither does.

Files from before this mechanism
--------------------------------
Up to version 4 only the core tables were migrated. The other tables were created on first use: by
per-module ``ensure_schema`` functions, by :mod:`metrics.store.search` (its registry), and the topic tables by
a ``sqlite_utils.migrations.Migrations("topics")`` set (recorded in ``_sqlite_migrations``). The steps that
adopt those tables (versions 5-14) are idempotent: ``CREATE TABLE IF NOT EXISTS`` with the very statements
the old code produced, a column check before ``ALTER TABLE``, and step 11 removes the ``topics`` records from
``_sqlite_migrations`` (and the table when nothing else is recorded there). Such a file upgrades in place,
keeps its rows and ends with the same schema as a new file. (The per-version full-text tables
``search_fts_<dataset>_<version>`` are data, built on demand by :mod:`metrics.store.search`, not schema.)

Why not ``sqlite_utils.migrations.Migrations``: it records ``(set, name)`` rows in ``_sqlite_migrations``
with no order across sets and no notion of a file newer than the code, and applies a set in ``db.atomic()``
(a deferred ``BEGIN``, which under WAL fails when another writer committed in between; see the field notes)
after reading the pending steps outside it. The version-numbered ``schema_migrations`` of the core tables
already ordered, refused and locked correctly; this module extends it to every table.

Examples
--------
>>> from metrics import store
>>> db = store.connect(":memory:")
>>> schema_version(db) == SCHEMA_VERSION == len(PLAN)
True
>>> migrate(db) == SCHEMA_VERSION  # nothing missing: one SELECT
True
>>> db.close()
"""

from __future__ import annotations

import functools
import importlib
import sqlite3
from datetime import datetime, timezone
from typing import Callable, NamedTuple

import sqlite_utils

from metrics.errors import ConfigError, StoreError

__all__ = ["PLAN", "SCHEMA_VERSION", "MIGRATIONS", "Migration", "all_migrations", "schema_version", "migrate"]

#: The one ordered list of schema steps: ``(version, module, step name)``; append-only (module docstring).
PLAN: tuple[tuple[int, str, str], ...] = (
    (1, "metrics.store", "core_tables"),
    (2, "metrics.store", "dataset_columns"),
    (3, "metrics.store", "message_parts"),
    (4, "metrics.store", "store_secrets"),
    (5, "metrics.store", "search_indexes"),
    (6, "metrics.improve.store", "improve_tables"),
    (7, "metrics.funnel.store", "funnels"),
    (8, "metrics.roi.store", "roi_scenarios"),
    (9, "metrics.topics.persist", "topic_tables"),
    (10, "metrics.topics.persist", "topic_conversations"),
    (11, "metrics.topics.persist", "forget_sqlite_utils_records"),
    (12, "metrics.audit.queue", "audit_queue"),
    (13, "metrics.audit.store", "audit_tables"),
    (14, "metrics.sentiment.cache", "sentiment_cache"),
    (15, "metrics.improve.store", "backlog_view"),
    (16, "metrics.store", "message_buckets"),
    (17, "metrics.store.facts_cache", "facts_cache"),
)
if [v for v, _, _ in PLAN] != list(range(1, len(PLAN) + 1)):  # pragma: no cover - a broken edit of PLAN
    raise RuntimeError("metrics.store.migrations.PLAN must number its steps 1, 2, 3, ... in order")

#: The schema version this code writes: the last step of :data:`PLAN`.
SCHEMA_VERSION: int = PLAN[-1][0]

_BOOKKEEPING = ("CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")


class Migration(NamedTuple):
    """One planned step, resolved: its version, the name recorded in ``schema_migrations``, its function."""

    version: int
    name: str
    apply: Callable[[sqlite_utils.Database], None]


@functools.cache
def all_migrations() -> tuple[Migration, ...]:
    """Every step of :data:`PLAN`, in order, resolved from its module's ``MIGRATION_STEPS``.

    Imports the contributing modules. Raises RuntimeError when a planned step is not declared, or a
    contributing module declares a step the plan does not list (it would never run).
    """
    declared: dict[str, dict[str, tuple[str, Callable]]] = {}
    for module in dict.fromkeys(m for _, m, _ in PLAN):
        steps = getattr(importlib.import_module(module), "MIGRATION_STEPS", ())
        declared[module] = {name: (description, apply) for name, description, apply in steps}
        if len(declared[module]) != len(steps):
            raise RuntimeError(f"{module}.MIGRATION_STEPS names a step twice")
    resolved = []
    for version, module, name in PLAN:
        if name not in declared[module]:
            raise RuntimeError(f"migration {version} names {module}:{name}, which {module}.MIGRATION_STEPS "
                               "does not declare")
        description, apply = declared[module][name]
        resolved.append(Migration(version, description, apply))
    planned = {(m, n) for _, m, n in PLAN}
    unplanned = sorted(f"{m}:{n}" for m, names in declared.items() for n in names if (m, n) not in planned)
    if unplanned:
        raise RuntimeError(f"declared but not in metrics.store.migrations.PLAN (never applied): {unplanned}")
    return tuple(resolved)


def __getattr__(name: str):
    if name == "MIGRATIONS":  # resolved on first use: the contributing modules import metrics.store
        return all_migrations()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _state(db: sqlite_utils.Database) -> tuple[int, int]:
    """``(rows, highest version)`` of ``schema_migrations``; ``(0, 0)`` before it exists."""
    try:
        count, newest = db.conn.execute("SELECT count(*), coalesce(max(version), 0) FROM schema_migrations").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        return 0, 0
    return int(count), int(newest)


def _applied(db: sqlite_utils.Database) -> set[int]:
    """The versions recorded in ``schema_migrations`` (which exists)."""
    return {v for (v,) in db.conn.execute("SELECT version FROM schema_migrations")}


def schema_version(db: sqlite_utils.Database) -> int:
    """The highest migration applied to ``db`` (0 for an empty file)."""
    return _state(db)[1]


def migrate(db: sqlite_utils.Database, *, target: int | None = None) -> int:
    """Apply the missing steps of :data:`PLAN` up to ``target`` (default: all); return the resulting version.

    When nothing is missing this is one ``SELECT``. Otherwise each step runs in its own ``BEGIN IMMEDIATE``
    transaction and re-reads inside it whether its version is recorded, so two processes migrating at once
    apply each step once. Idempotent: calling it again changes nothing.

    Raises :class:`~metrics.errors.StoreError` when the file is newer than this code, and
    :class:`~metrics.errors.ConfigError` for a ``target`` outside ``0..SCHEMA_VERSION`` or below the file's
    version (steps are never undone).
    """
    if target is not None and (isinstance(target, bool) or not isinstance(target, int)
                               or not 0 <= target <= SCHEMA_VERSION):
        raise ConfigError(f"target must be a schema version from 0 to {SCHEMA_VERSION}, got {target!r}")
    goal = SCHEMA_VERSION if target is None else target
    count, newest = _state(db)
    if newest > SCHEMA_VERSION:
        raise StoreError(f"the store has schema version {newest}, newer than this Chatlens "
                         f"({SCHEMA_VERSION}). Fix: upgrade Chatlens or point CHATLENS_DB elsewhere")
    if newest > goal:
        raise ConfigError(f"the store is already at schema version {newest}, past target {target!r}: "
                          "migrations are never undone")
    if count == newest == goal:
        return newest
    from metrics.store import immediate  # metrics.store imports this module

    steps = [m for m in all_migrations() if m.version <= goal]
    with immediate(db):
        db.conn.execute(_BOOKKEEPING)
    applied = _applied(db)  # read without the lock: re-checked per step under it
    for step in steps:
        if step.version in applied:
            continue
        with immediate(db):
            if db.conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (step.version,)).fetchone():
                continue  # another connection applied it while this one waited for the lock
            step.apply(db)
            db.conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                            (step.version, step.name, _now()))
    return schema_version(db)
