"""Persistence of goals, alert rules, the change log and backlog items (sqlite-utils, in the store).

Tables (created by migration step 6, ``backlog_added.view`` by step 15: :data:`MIGRATION_STEPS`; every read-then-write runs in ``store.immediate``)
---------------------------------------------------------------------------------------------------------------
``goals(id, position, name, bot_type, metrics, target, red, green, direction, updated_at)``
    The goal set (``metrics`` is a JSON list, the primary first). Not tied to a dataset:
    :func:`save_goals` replaces the whole set, and only a valid set
    (:func:`metrics.improve.goals.check_goals`) is saved.
``alert_rules(id, position, name, rule, min_count, enabled, updated_at)``
    Alert rules in the syntax of :func:`metrics.improve.alerts.parse_rule`. Not tied to a dataset;
    :func:`save_alert_rules` replaces the whole list.
``change_log(id, dataset_id, date, kind, title, why, detail, metric, backlog_key, created_at, updated_at)``
    One row per change (:class:`metrics.improve.changelog.ChangeEntry`); ``id`` is AUTOINCREMENT (never
    reused). ``dataset_id`` NULL means "every dataset"; an entry with a dataset id is removed
    with its dataset (:func:`metrics.store.delete_dataset`).
``backlog_items(dataset_id, item_key, effort, status, change_id, updated_at)``
    The team's edits of a backlog candidate (:mod:`metrics.improve.backlog`): its effort and status
    (``open``, ``accepted`` into the change log as ``change_id``, ``done``). Removed with its
    dataset.
``backlog_added(dataset_id, item_key, source, subject, problem, metric, affected_count, weeks, view,
query_key, query_value, added_at)``
    Items added by hand from elsewhere in the product: a knowledge-gap topic of the Topics page
    (:func:`metrics.improve.backlog.gap_item`), with its impact estimate at the time it was added. Shown
    in the backlog next to the candidates found in the data; removed with its dataset.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Mapping, Sequence

import pandas as pd

from metrics import store
from metrics.improve.alerts import AlertRule, parse_rule
from metrics.improve.changelog import ChangeEntry
from metrics.errors import ConfigError
from metrics.improve.goals import Goal, GoalCheck, check_goals

__all__ = [
    "GOALS",
    "ALERT_RULES",
    "CHANGE_LOG",
    "BACKLOG",
    "BACKLOG_STATUSES",
    "MAX_EFFORT",
    "MIGRATION_STEPS",
    "save_goals",
    "list_goals",
    "save_alert_rules",
    "list_alert_rules",
    "add_change",
    "update_change",
    "delete_change",
    "get_change",
    "list_changes",
    "backlog_state",
    "set_efforts",
    "accept_item",
    "set_status",
    "add_backlog_item",
    "added_backlog_items",
    "remove_backlog_item",
]

GOALS, ALERT_RULES, CHANGE_LOG, BACKLOG = "goals", "alert_rules", "change_log", "backlog_items"
ADDED = "backlog_added"
BACKLOG_STATUSES = ("open", "accepted", "done")
MAX_EFFORT = 1000.0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


#: The five tables, frozen as the statements this module ran before step 6 existed (``goals``, ``alert_rules``
#: and ``backlog_items`` as sqlite-utils' ``create`` wrote them), so an upgraded file and a new one match.
_DDL = (
    f"""CREATE TABLE IF NOT EXISTS "{GOALS}" (
   "id" INTEGER PRIMARY KEY,
   "position" INTEGER NOT NULL,
   "name" TEXT NOT NULL,
   "bot_type" TEXT NOT NULL,
   "metrics" TEXT NOT NULL,
   "target" REAL NOT NULL,
   "red" REAL NOT NULL,
   "green" REAL NOT NULL,
   "direction" TEXT NOT NULL,
   "updated_at" TEXT NOT NULL
)""",
    f"""CREATE TABLE IF NOT EXISTS "{ALERT_RULES}" (
   "id" INTEGER PRIMARY KEY,
   "position" INTEGER NOT NULL,
   "name" TEXT NOT NULL,
   "rule" TEXT NOT NULL,
   "min_count" INTEGER NOT NULL,
   "enabled" INTEGER NOT NULL,
   "updated_at" TEXT NOT NULL
)""",
    f"CREATE TABLE IF NOT EXISTS {CHANGE_LOG} (id INTEGER PRIMARY KEY AUTOINCREMENT, dataset_id INTEGER, "
    "date TEXT NOT NULL, kind TEXT NOT NULL, title TEXT NOT NULL, why TEXT NOT NULL DEFAULT '', "
    "detail TEXT NOT NULL DEFAULT '', metric TEXT NOT NULL, backlog_key TEXT, created_at TEXT NOT NULL, "
    "updated_at TEXT NOT NULL)",
    f"""CREATE TABLE IF NOT EXISTS "{BACKLOG}" (
   "dataset_id" INTEGER NOT NULL,
   "item_key" TEXT NOT NULL,
   "effort" REAL NOT NULL,
   "status" TEXT NOT NULL,
   "change_id" INTEGER,
   "updated_at" TEXT NOT NULL,
   PRIMARY KEY ("dataset_id", "item_key")
)""",
    f"CREATE TABLE IF NOT EXISTS {ADDED} (dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE, "
    "item_key TEXT NOT NULL, source TEXT NOT NULL, subject TEXT NOT NULL, problem TEXT NOT NULL, "
    "metric TEXT NOT NULL, affected_count INTEGER NOT NULL, weeks REAL NOT NULL, page TEXT NOT NULL, "
    "query_key TEXT NOT NULL, query_value TEXT, added_at TEXT NOT NULL, PRIMARY KEY (dataset_id, item_key))",
)


def _create_tables(db) -> None:
    """Step 6: the five tables (idempotent: a file that already has them keeps them and their rows)."""
    for sql in _DDL:
        db.conn.execute(sql)


#: The page paths older Chatlens stored in ``backlog_added.page``, and the view each one is (step 15).
_OLD_PAGES = {"pages/3_Outcomes.py": "outcomes", "pages/4_Intents.py": "intents", "pages/5_Sentiment.py": "sentiment",
              "pages/6_Funnel.py": "funnel", "pages/8_Audit.py": "audit", "pages/10_Topics.py": "topics"}


def _backlog_view(db) -> None:
    """Step 15: ``backlog_added.page`` (a page path: the metrics layer named pages) becomes ``view`` (the family
    that shows the item; ``ui/kpi_pages.py`` maps views to pages). Stored paths are translated."""
    columns = [row[1] for row in db.conn.execute(f"PRAGMA table_info({ADDED})")]
    if "page" in columns and "view" not in columns:
        db.conn.execute(f"ALTER TABLE {ADDED} RENAME COLUMN page TO view")
    for path, view in _OLD_PAGES.items():
        db.conn.execute(f"UPDATE {ADDED} SET view = ? WHERE view = ?", (view, path))


#: This module's schema steps, applied by :mod:`metrics.store.migrations` when the store is opened.
MIGRATION_STEPS = (
    ("improve_tables", "improve: goals, alert_rules, change_log, backlog_items, backlog_added", _create_tables),
    ("backlog_view", "improve: backlog_added.page becomes view (a family, not a page path)", _backlog_view),
)


# --------------------------------------------------------------------------- goals

def save_goals(db, goals: Sequence[Goal]) -> GoalCheck:
    """Replace the stored goal set with ``goals`` (in order) when it is valid.

    Raises ConfigError with every error of :func:`metrics.improve.goals.check_goals` (for example
    the missing revenue/cost metric) and saves nothing; returns the check (its warnings).
    """
    goals = list(goals)
    check = check_goals(goals)
    if not check.ok:
        raise ConfigError(" ".join(check.errors))
    now = _now()
    with store.immediate(db):
        db.conn.execute(f"DELETE FROM {GOALS}")
        db[GOALS].insert_all([{"position": i, "name": g.name, "bot_type": g.bot_type, "metrics": json.dumps(g.metrics),
                               "target": g.target, "red": g.red, "green": g.green, "direction": g.direction,
                               "updated_at": now} for i, g in enumerate(goals)])
    return check


def list_goals(db) -> list[Goal]:
    """The stored goals in order ([] when none was saved)."""
    rows = db.conn.execute(f"SELECT name, bot_type, metrics, target, red, green, direction FROM {GOALS} "
                           "ORDER BY position, id").fetchall()
    return [Goal(name, bot, tuple(json.loads(metrics)), target, red, green, direction)
            for name, bot, metrics, target, red, green, direction in rows]


# --------------------------------------------------------------------------- alert rules

def save_alert_rules(db, rules: Sequence[AlertRule], *, enabled: Sequence[bool] | None = None) -> int:
    """Replace the stored alert rules; returns how many were saved. ``enabled`` defaults to all True."""
    rules = list(rules)
    if not all(isinstance(r, AlertRule) for r in rules):
        raise ConfigError("save_alert_rules takes AlertRule objects (see metrics.improve.alerts.parse_rule)")
    flags = [True] * len(rules) if enabled is None else [bool(e) for e in enabled]
    if len(flags) != len(rules):
        raise ConfigError(f"enabled has {len(flags)} flags for {len(rules)} rules")
    now = _now()
    with store.immediate(db):
        db.conn.execute(f"DELETE FROM {ALERT_RULES}")
        if rules:
            db[ALERT_RULES].insert_all([{"position": i, "name": r.name, "rule": r.text, "min_count": r.min_count,
                                         "enabled": int(f), "updated_at": now}
                                        for i, (r, f) in enumerate(zip(rules, flags))])
    return len(rules)


def list_alert_rules(db, *, enabled_only: bool = False) -> pd.DataFrame:
    """Stored rules: columns ``name, rule, min_count, enabled`` (in order) and ``parsed``
    (the :class:`~metrics.improve.alerts.AlertRule`). None saved: an empty frame with these columns."""
    where = "WHERE enabled = 1" if enabled_only else ""
    rows = db.conn.execute(f"SELECT name, rule, min_count, enabled FROM {ALERT_RULES} {where} "
                           "ORDER BY position, id").fetchall()
    out = pd.DataFrame(rows, columns=["name", "rule", "min_count", "enabled"]).astype(
        {"name": "str", "rule": "str", "min_count": "int64", "enabled": "bool"})
    out["parsed"] = [parse_rule(r, name=n, min_count=int(c)) for n, r, c in
                     zip(out["name"], out["rule"], out["min_count"])]
    return out


# --------------------------------------------------------------------------- change log

_CHANGE_COLUMNS = "id, dataset_id, date, kind, title, why, detail, metric, backlog_key"


def _entry(row) -> ChangeEntry:
    cid, dataset_id, date, kind, title, why, detail, metric, backlog_key = row
    return ChangeEntry(date, title, kind, metric, why=why, detail=detail, dataset_id=dataset_id,
                       backlog_key=backlog_key, id=cid)


def _values(entry: ChangeEntry) -> dict:
    return {"dataset_id": entry.dataset_id, "date": entry.date.isoformat(), "kind": entry.kind, "title": entry.title,
            "why": entry.why, "detail": entry.detail, "metric": entry.metric, "backlog_key": entry.backlog_key}


def add_change(db, entry: ChangeEntry) -> int:
    """Insert a change entry (its ``id`` is ignored); returns the new id."""
    if not isinstance(entry, ChangeEntry):
        raise ConfigError("add_change takes a ChangeEntry")
    now = _now()
    values = _values(entry)
    with store.immediate(db):
        cursor = db.conn.execute(
            f"INSERT INTO {CHANGE_LOG} (dataset_id, date, kind, title, why, detail, metric, backlog_key, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*values.values(), now, now))
        return int(cursor.lastrowid)


def get_change(db, change_id: int) -> ChangeEntry:
    """One entry by id; ConfigError when there is none."""
    row = db.conn.execute(f"SELECT {_CHANGE_COLUMNS} FROM {CHANGE_LOG} WHERE id = ?", (int(change_id),)).fetchone()
    if row is None:
        raise ConfigError(f"no change log entry with id {change_id!r}")
    return _entry(row)


def update_change(db, change_id: int, entry: ChangeEntry) -> None:
    """Overwrite entry ``change_id`` with ``entry``'s fields; ConfigError when it does not exist."""
    if not isinstance(entry, ChangeEntry):
        raise ConfigError("update_change takes a ChangeEntry")
    values = _values(entry)
    with store.immediate(db):
        if db.conn.execute(f"SELECT 1 FROM {CHANGE_LOG} WHERE id = ?", (int(change_id),)).fetchone() is None:
            raise ConfigError(f"no change log entry with id {change_id!r}")
        db.conn.execute(
            f"UPDATE {CHANGE_LOG} SET dataset_id = ?, date = ?, kind = ?, title = ?, why = ?, detail = ?, metric = ?, "
            "backlog_key = ?, updated_at = ? WHERE id = ?", (*values.values(), _now(), int(change_id)))


def delete_change(db, change_id: int) -> bool:
    """Delete an entry (and reopen the backlog item accepted as it); True when it existed."""
    with store.immediate(db):
        gone = db.conn.execute(f"DELETE FROM {CHANGE_LOG} WHERE id = ?", (int(change_id),)).rowcount > 0
        if gone:
            db.conn.execute(f"UPDATE {BACKLOG} SET status = 'open', change_id = NULL, updated_at = ? "
                            "WHERE change_id = ?", (_now(), int(change_id)))
    return gone


def list_changes(db, *, dataset_id: int | None = None) -> list[ChangeEntry]:
    """Entries by date then id; with ``dataset_id``, that dataset's entries and those for every dataset."""
    if dataset_id is None:
        rows = db.conn.execute(f"SELECT {_CHANGE_COLUMNS} FROM {CHANGE_LOG} ORDER BY date, id").fetchall()
    else:
        rows = db.conn.execute(f"SELECT {_CHANGE_COLUMNS} FROM {CHANGE_LOG} WHERE dataset_id IS NULL OR dataset_id = ? "
                               "ORDER BY date, id", (int(dataset_id),)).fetchall()
    return [_entry(r) for r in rows]


# --------------------------------------------------------------------------- backlog

def _check_effort(key: str, effort) -> float:
    try:
        value = float(effort)
    except (TypeError, ValueError):
        raise ConfigError(f"effort of {key!r} must be a number, got {effort!r}") from None
    if isinstance(effort, bool) or not math.isfinite(value) or not 0 < value <= MAX_EFFORT:
        raise ConfigError(f"effort of {key!r} must be a number above 0 and at most {MAX_EFFORT:g}, got {effort!r}")
    return value


def backlog_state(db, dataset_id: int) -> pd.DataFrame:
    """The stored edits of a dataset's backlog: ``item_key, effort, status, change_id, updated_at``."""
    rows = db.conn.execute(f"SELECT item_key, effort, status, change_id, updated_at FROM {BACKLOG} "
                           "WHERE dataset_id = ? ORDER BY item_key", (int(dataset_id),)).fetchall()
    out = pd.DataFrame(rows, columns=["item_key", "effort", "status", "change_id", "updated_at"])
    return out.astype({"item_key": "str", "effort": "float64", "status": "str", "change_id": "Int64",
                       "updated_at": "str"})


def set_efforts(db, dataset_id: int, efforts: Mapping[str, float]) -> int:
    """Save the team's effort estimates (``{item_key: effort}``); returns how many changed."""
    checked = {str(k): _check_effort(str(k), v) for k, v in efforts.items()}
    now, changed = _now(), 0
    with store.immediate(db):
        for key, effort in checked.items():
            row = db.conn.execute(f"SELECT effort FROM {BACKLOG} WHERE dataset_id = ? AND item_key = ?",
                                  (int(dataset_id), key)).fetchone()
            if row is None:
                db.conn.execute(f"INSERT INTO {BACKLOG} (dataset_id, item_key, effort, status, change_id, updated_at) "
                                "VALUES (?, ?, ?, 'open', NULL, ?)", (int(dataset_id), key, effort, now))
                changed += 1
            elif float(row[0]) != effort:
                db.conn.execute(f"UPDATE {BACKLOG} SET effort = ?, updated_at = ? WHERE dataset_id = ? AND item_key = ?",
                                (effort, now, int(dataset_id), key))
                changed += 1
    return changed


def accept_item(db, dataset_id: int, item_key: str, entry: ChangeEntry, *, effort: float = 1.0) -> int:
    """Accept a backlog item into the change log: one transaction adds ``entry`` (with
    ``backlog_key = item_key``) and marks the item ``accepted``. Returns the change id.
    ConfigError when the item was already accepted or done."""
    if not isinstance(entry, ChangeEntry):
        raise ConfigError("accept_item takes a ChangeEntry")
    effort = _check_effort(item_key, effort)
    now = _now()
    with store.immediate(db):
        row = db.conn.execute(f"SELECT status, change_id FROM {BACKLOG} WHERE dataset_id = ? AND item_key = ?",
                              (int(dataset_id), str(item_key))).fetchone()
        if row is not None and row[0] != "open":
            raise ConfigError(f"backlog item {item_key!r} is already {row[0]} (change #{row[1]})")
        values = _values(ChangeEntry(entry.date, entry.title, entry.kind, entry.metric, why=entry.why,
                                     detail=entry.detail, dataset_id=entry.dataset_id, backlog_key=str(item_key)))
        cursor = db.conn.execute(
            f"INSERT INTO {CHANGE_LOG} (dataset_id, date, kind, title, why, detail, metric, backlog_key, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*values.values(), now, now))
        change_id = int(cursor.lastrowid)
        if row is None:
            db.conn.execute(f"INSERT INTO {BACKLOG} (dataset_id, item_key, effort, status, change_id, updated_at) "
                            "VALUES (?, ?, ?, 'accepted', ?, ?)", (int(dataset_id), str(item_key), effort, change_id,
                                                                  now))
        else:
            db.conn.execute(f"UPDATE {BACKLOG} SET status = 'accepted', change_id = ?, updated_at = ? "
                            "WHERE dataset_id = ? AND item_key = ?", (change_id, now, int(dataset_id), str(item_key)))
    return change_id


def set_status(db, dataset_id: int, item_key: str, status: str) -> None:
    """Set an item's status (``open``, ``accepted``, ``done``); "done" is how an item is marked done."""
    if status not in BACKLOG_STATUSES:
        raise ConfigError(f"status must be one of {', '.join(BACKLOG_STATUSES)}, got {status!r}")
    now = _now()
    with store.immediate(db):
        row = db.conn.execute(f"SELECT 1 FROM {BACKLOG} WHERE dataset_id = ? AND item_key = ?",
                              (int(dataset_id), str(item_key))).fetchone()
        if row is None:
            db.conn.execute(f"INSERT INTO {BACKLOG} (dataset_id, item_key, effort, status, change_id, updated_at) "
                            "VALUES (?, ?, 1.0, ?, NULL, ?)", (int(dataset_id), str(item_key), status, now))
        else:
            db.conn.execute(f"UPDATE {BACKLOG} SET status = ?, updated_at = ? WHERE dataset_id = ? AND item_key = ?",
                            (status, now, int(dataset_id), str(item_key)))


_ADDED_COLUMNS = ("item_key", "source", "subject", "problem", "metric", "affected_count", "weeks", "view",
                  "query_key", "query_value")


def add_backlog_item(db, dataset_id: int, item: Mapping) -> bool:
    """Add (or refresh) a hand-added backlog item (a row of :func:`metrics.improve.backlog.gap_item`: ``key``,
    ``source``, ``subject``, ``problem``, ``metric``, ``affected_count``, ``weeks``, ``view``, ``query_key``,
    ``query_value``). Its effort and status stay in ``backlog_items`` like any candidate's. Returns True when
    it was new. ConfigError for a dataset that does not exist or a malformed item."""
    missing = [c for c in ("key", *_ADDED_COLUMNS[1:]) if c not in item]
    if missing:
        raise ConfigError(f"a backlog item needs {', '.join(missing)}")
    affected, weeks = item["affected_count"], item["weeks"]
    if isinstance(affected, bool) or not isinstance(affected, int) or affected < 0 \
            or not isinstance(weeks, (int, float)) or not math.isfinite(weeks) or weeks <= 0:
        raise ConfigError(f"backlog item {item['key']!r}: affected_count must be a whole number >= 0 and weeks a "
                          f"number above 0, got {affected!r} and {weeks!r}")
    values = (str(item["key"]), str(item["source"]), str(item["subject"]), str(item["problem"]), str(item["metric"]),
              int(affected), float(weeks), str(item["view"]), str(item["query_key"]),
              None if item["query_value"] is None else str(item["query_value"]))
    with store.immediate(db):
        if db.conn.execute("SELECT 1 FROM datasets WHERE id = ?", (int(dataset_id),)).fetchone() is None:
            raise ConfigError(f"no dataset with id {int(dataset_id)} in the store")
        new = db.conn.execute(f"SELECT 1 FROM {ADDED} WHERE dataset_id = ? AND item_key = ?",
                              (int(dataset_id), values[0])).fetchone() is None
        db.conn.execute(f"INSERT INTO {ADDED} (dataset_id, {', '.join(_ADDED_COLUMNS)}, added_at) VALUES "
                        f"(?, {', '.join('?' * len(_ADDED_COLUMNS))}, ?) ON CONFLICT (dataset_id, item_key) DO UPDATE "
                        "SET " + ", ".join(f"{c} = excluded.{c}" for c in _ADDED_COLUMNS[1:]),
                        (int(dataset_id), *values, _now()))
    return new


def added_backlog_items(db, dataset_id: int) -> pd.DataFrame:
    """The hand-added items of a dataset as candidate rows (:data:`metrics.improve.backlog.CANDIDATE_COLUMNS`,
    ``impact_per_week = affected_count / weeks``), in the order they were added."""
    rows = db.conn.execute(f"SELECT {', '.join(_ADDED_COLUMNS)} FROM {ADDED} WHERE dataset_id = ? "
                           "ORDER BY added_at, item_key", (int(dataset_id),)).fetchall()
    out = pd.DataFrame(rows, columns=["key", *_ADDED_COLUMNS[1:]])
    out = out.astype({"key": "str", "source": "str", "subject": "str", "problem": "str", "metric": "str",
                      "affected_count": "int64", "weeks": "float64", "view": "str", "query_key": "str",
                      "query_value": "str"})
    out.insert(7, "impact_per_week", (out["affected_count"] / out["weeks"]).astype("float64"))
    return out


def remove_backlog_item(db, dataset_id: int, item_key: str) -> bool:
    """Remove a hand-added item (and its effort/status); True when it existed."""
    with store.immediate(db):
        cur = db.conn.execute(f"DELETE FROM {ADDED} WHERE dataset_id = ? AND item_key = ?",
                              (int(dataset_id), str(item_key)))
        db.conn.execute(f"DELETE FROM {BACKLOG} WHERE dataset_id = ? AND item_key = ? AND status = 'open'",
                        (int(dataset_id), str(item_key)))
    return cur.rowcount > 0
