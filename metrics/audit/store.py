"""Audit rounds, assignments, reviewer scores and intent labels in the Chatlens store.

Reviewers' work must never be lost and two reviewers saving at once must not collide, so
every write here is one ``BEGIN IMMEDIATE`` transaction (:func:`metrics.store.immediate`) with
explicit ``INSERT ... ON CONFLICT`` SQL (no sqlite-utils upsert probe), and every table that
belongs to a dataset has a ``dataset_id`` column so :func:`metrics.store.delete_dataset`
removes it with the dataset.

Tables (created by migration step 13, :data:`MIGRATION_STEPS`)
---------------------------------------------------------------
``reviewers(name PRIMARY KEY, created_at)``
    The people who review; not tied to a dataset.
``audit_rounds(id INTEGER PRIMARY KEY AUTOINCREMENT, name UNIQUE, dataset_id, seed, strategy,
created_at, created_by, params)``
    ``params`` is a JSON object of the sampling options (n, stratify_by, random_share, date
    range, overlap_rate, reviewers ...). The sample itself is stored in ``audit_assignments``
    so everyone sees the same round.
``audit_assignments(round_id, dataset_id, conversation_id, reviewer, position, reason, role)``
    ``PRIMARY KEY (round_id, conversation_id, reviewer)``; ``position`` is the review order.
``audit_scores(round_id, dataset_id, conversation_id, reviewer, understood_intent,
accurate_helpful, tone, edge_cases, overall, flags, note, saved_at, revision)``
    ``PRIMARY KEY (round_id, conversation_id, reviewer)``: one current review per reviewer
    and conversation. Scores are integers 1-5 (CHECK constraints); ``flags`` is the
    ``;``-joined flag names in :data:`metrics.audit.FLAGS` order; ``revision`` starts at 1
    and grows by one per saved change.
``audit_score_history(id, round_id, dataset_id, conversation_id, reviewer, revision, <scores>,
flags, note, labels, saved_at)``
    Every saved version (the first included), ``UNIQUE (round_id, conversation_id, reviewer,
    revision)``; ``labels`` is the JSON list of the intent labels saved with that version.
``audit_labels(dataset_id, message_key, conversation_id, round_id, reviewer, verdict,
true_intent, predicted_intent, saved_at)``
    ``PRIMARY KEY (dataset_id, message_key, reviewer)``: each reviewer's latest "intent
    correct?" answer per user message; ``message_key`` is :func:`metrics.store.message_keys`.
    Read by :func:`intent_labels`.

Saving a review (:func:`save_score`)
-----------------------------------
One transaction: check the round and the assignment, read the current review, and when
anything differs (scores, flags, note or any label) upsert the score with ``revision + 1``,
append the version to the history and upsert the labels. Re-submitting the same values
(a double click, a browser retry) changes nothing: same revision, no history row. Any
SQLite failure raises :class:`~metrics.errors.StoreError` and nothing is saved, so the form
can keep its values and retry.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from metrics import store
from metrics.audit import CRITERIA, STRATEGIES, validate_review
from metrics.errors import ConfigError, StoreError
from metrics.io.export import to_csv_bytes

__all__ = [
    "intent_labels",
    "REVIEWERS",
    "ROUNDS",
    "ASSIGNMENTS",
    "SCORES",
    "HISTORY",
    "LABELS",
    "TABLES",
    "EXPORT_COLUMNS",
    "MAX_NAME_LENGTH",
    "SavedScore",
    "RoundProgress",
    "MIGRATION_STEPS",
    "add_reviewer",
    "list_reviewers",
    "create_round",
    "list_rounds",
    "get_round",
    "round_assignments",
    "reviewer_queue",
    "next_unreviewed",
    "reviewer_progress",
    "round_progress",
    "save_score",
    "get_score",
    "score_history",
    "reviewer_labels",
    "load_labels",
    "load_scores",
    "export_scores",
    "export_scores_csv",
]

REVIEWERS = "reviewers"
ROUNDS = "audit_rounds"
ASSIGNMENTS = "audit_assignments"
SCORES = "audit_scores"
HISTORY = "audit_score_history"
LABELS = "audit_labels"
TABLES = (REVIEWERS, ROUNDS, ASSIGNMENTS, SCORES, HISTORY, LABELS)
MAX_NAME_LENGTH = 80
EXPORT_COLUMNS = ("round", "conversation_id", "reviewer") + CRITERIA + ("flags", "note", "saved_at", "revision",
                                                                         "dataset_id")

_SCORE_COLS = ", ".join(CRITERIA)
_SCORE_CHECKS = ",\n".join(f"  {c} INTEGER NOT NULL CHECK ({c} BETWEEN 1 AND 5)" for c in CRITERIA)
_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {REVIEWERS} (
  name TEXT PRIMARY KEY,
  created_at TEXT NOT NULL
)""",
    f"""CREATE TABLE IF NOT EXISTS {ROUNDS} (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  dataset_id INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  strategy TEXT NOT NULL,
  created_at TEXT NOT NULL,
  created_by TEXT,
  params TEXT NOT NULL DEFAULT '{{}}'
)""",
    f"CREATE INDEX IF NOT EXISTS {ROUNDS}_dataset ON {ROUNDS}(dataset_id)",
    f"""CREATE TABLE IF NOT EXISTS {ASSIGNMENTS} (
  round_id INTEGER NOT NULL,
  dataset_id INTEGER NOT NULL,
  conversation_id TEXT NOT NULL,
  reviewer TEXT NOT NULL,
  position INTEGER NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL DEFAULT 'first',
  PRIMARY KEY (round_id, conversation_id, reviewer)
)""",
    f"CREATE INDEX IF NOT EXISTS {ASSIGNMENTS}_reviewer ON {ASSIGNMENTS}(round_id, reviewer, position)",
    f"""CREATE TABLE IF NOT EXISTS {SCORES} (
  round_id INTEGER NOT NULL,
  dataset_id INTEGER NOT NULL,
  conversation_id TEXT NOT NULL,
  reviewer TEXT NOT NULL,
{_SCORE_CHECKS},
  flags TEXT NOT NULL DEFAULT '',
  note TEXT NOT NULL DEFAULT '',
  saved_at TEXT NOT NULL,
  revision INTEGER NOT NULL,
  PRIMARY KEY (round_id, conversation_id, reviewer)
)""",
    f"""CREATE TABLE IF NOT EXISTS {HISTORY} (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  round_id INTEGER NOT NULL,
  dataset_id INTEGER NOT NULL,
  conversation_id TEXT NOT NULL,
  reviewer TEXT NOT NULL,
  revision INTEGER NOT NULL,
{_SCORE_CHECKS},
  flags TEXT NOT NULL DEFAULT '',
  note TEXT NOT NULL DEFAULT '',
  labels TEXT NOT NULL DEFAULT '[]',
  saved_at TEXT NOT NULL,
  UNIQUE (round_id, conversation_id, reviewer, revision)
)""",
    f"""CREATE TABLE IF NOT EXISTS {LABELS} (
  dataset_id INTEGER NOT NULL,
  message_key TEXT NOT NULL,
  conversation_id TEXT,
  round_id INTEGER,
  reviewer TEXT NOT NULL,
  verdict TEXT NOT NULL CHECK (verdict IN ('yes', 'no', 'unsure')),
  true_intent TEXT,
  predicted_intent TEXT,
  saved_at TEXT NOT NULL,
  PRIMARY KEY (dataset_id, message_key, reviewer)
)""",
)


def _now(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _sql_error(action: str, exc: Exception) -> StoreError:
    return StoreError(f"could not {action}: {exc}. Nothing was saved; retry (another session may be writing)")


# --------------------------------------------------------------------------- schema

def _create_tables(db) -> None:
    """Step 13: the audit tables and their indexes (idempotent)."""
    for sql in _DDL:
        db.conn.execute(sql)


#: This module's schema steps, applied by :mod:`metrics.store.migrations` when the store is opened.
MIGRATION_STEPS = (
    ("audit_tables", "audit: reviewers, audit_rounds, audit_assignments, audit_scores, audit_score_history, "
                     "audit_labels", _create_tables),
)


def _clean_name(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"a {what} needs a non-empty name, got {value!r}")
    value = " ".join(value.split())
    if len(value) > MAX_NAME_LENGTH:
        raise ConfigError(f"{what} names are at most {MAX_NAME_LENGTH} characters, got {len(value)}: {value[:20]!r}...")
    return value


# --------------------------------------------------------------------------- reviewers

def add_reviewer(db, name: str, *, now: datetime | None = None) -> str:
    """Add a reviewer (idempotent: an existing name is kept); returns the stored name.

    Whitespace is collapsed; ``ConfigError`` for a blank or over-long (> 80) name.

    Examples
    --------
    >>> db = store.connect(":memory:")
    >>> add_reviewer(db, "  Ann   Lee "), add_reviewer(db, "Ann Lee"), list_reviewers(db)
    ('Ann Lee', 'Ann Lee', ['Ann Lee'])
    """
    name = _clean_name(name, "reviewer")
    try:
        with store.immediate(db):
            db.conn.execute(f"INSERT INTO {REVIEWERS} (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                            (name, _now(now)))
    except sqlite3.Error as exc:
        raise _sql_error(f"add the reviewer {name!r}", exc) from exc
    return name


def list_reviewers(db) -> list[str]:
    """Every reviewer's name, sorted case-insensitively (then exactly). Empty store: ``[]``."""
    names = [r[0] for r in db.conn.execute(f"SELECT name FROM {REVIEWERS}")]
    return sorted(names, key=lambda n: (n.casefold(), n))


# --------------------------------------------------------------------------- rounds

def create_round(db, *, name: str, dataset_id: int, strategy: str, seed: int, sample: pd.DataFrame,
                 assignments: pd.DataFrame, params: Mapping | None = None, created_by: str | None = None,
                 now: datetime | None = None) -> int:
    """Store a new round, its sample and its assignments in one transaction; returns its id.

    ``sample`` has ``position``, ``conversation_id`` and optionally ``reason``
    (:func:`metrics.audit.sample_conversations`); ``assignments`` has ``conversation_id``,
    ``reviewer`` and optionally ``role`` (:func:`metrics.audit.assign_reviewers`); every sampled
    conversation must be assigned and every assignment must be in the sample. The reviewers
    are added to ``reviewers``. Creating the same round again (same name, dataset, strategy,
    seed and params: a double click) returns the existing id; another round with that name
    raises ``ConfigError``. ``ConfigError`` also for an empty sample or an unknown strategy.

    Examples
    --------
    >>> from metrics.audit import assign_reviewers
    >>> db = store.connect(":memory:")
    >>> s = pd.DataFrame({"position": [1, 2], "conversation_id": ["c1", "c2"]})
    >>> rid = create_round(db, name="week 32", dataset_id=1, strategy="random", seed=1, sample=s,
    ...                    assignments=assign_reviewers(["c1", "c2"], ["ann"]))
    >>> get_round(db, "week 32")["conversation_count"]
    2
    """
    name = _clean_name(name, "round")
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    if isinstance(dataset_id, bool) or not isinstance(dataset_id, (int, np.integer)):
        raise ConfigError(f"dataset_id must be an integer, got {dataset_id!r}")
    for frame, cols, what in ((sample, ("position", "conversation_id"), "sample"),
                              (assignments, ("conversation_id", "reviewer"), "assignments")):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ConfigError(f"the round's {what} needs the column(s) {missing}")
    if len(sample) == 0:
        raise ConfigError(f"round {name!r} has no conversation: widen the date range or check the dataset")
    positions = dict(zip(sample["conversation_id"].astype(str), sample["position"].astype(int)))
    reasons = dict(zip(sample["conversation_id"].astype(str),
                       sample["reason"].astype("str").fillna("") if "reason" in sample.columns else [""] * len(sample)))
    rows = []
    for rec in assignments.to_dict("records"):
        cid = str(rec["conversation_id"])
        if cid not in positions:
            raise ConfigError(f"assignment of {cid!r} is not in the round's sample")
        reviewer = _clean_name(rec["reviewer"], "reviewer")
        rows.append((cid, reviewer, positions[cid], reasons[cid], str(rec.get("role") or "first")))
    unassigned = set(positions) - {r[0] for r in rows}
    if unassigned:
        raise ConfigError(f"every sampled conversation needs a reviewer; unassigned: {sorted(unassigned)[:5]}")
    payload = json.dumps(dict(params or {}), sort_keys=True, default=str)
    stamp = _now(now)
    try:
        with store.immediate(db):
            existing = db.conn.execute(f"SELECT id, dataset_id, strategy, seed, params FROM {ROUNDS} WHERE name = ?",
                                       (name,)).fetchone()
            if existing is not None:
                if (int(existing[1]), existing[2], int(existing[3]), existing[4]) == \
                        (int(dataset_id), strategy, int(seed), payload):
                    return int(existing[0])
                raise ConfigError(f"a round named {name!r} already exists; choose another name")
            round_id = db.conn.execute(
                f"INSERT INTO {ROUNDS} (name, dataset_id, seed, strategy, created_at, created_by, params) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, int(dataset_id), int(seed), strategy, stamp, created_by, payload)).lastrowid
            reviewers = sorted({r[1] for r in rows} | ({_clean_name(created_by, "reviewer")} if created_by else set()))
            db.conn.executemany(f"INSERT INTO {REVIEWERS} (name, created_at) VALUES (?, ?) "
                                "ON CONFLICT (name) DO NOTHING", [(r, stamp) for r in reviewers])
            db.conn.executemany(
                f"INSERT INTO {ASSIGNMENTS} (round_id, dataset_id, conversation_id, reviewer, position, reason, role) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(round_id, int(dataset_id), cid, reviewer, pos, reason, role)
                 for cid, reviewer, pos, reason, role in rows])
    except sqlite3.IntegrityError as exc:
        raise ConfigError(f"round {name!r} could not be stored: {exc} (is a conversation assigned twice "
                          "to one reviewer?)") from exc
    except sqlite3.Error as exc:
        raise _sql_error(f"create the round {name!r}", exc) from exc
    return int(round_id)


_ROUND_COLUMNS = ["id", "name", "dataset_id", "seed", "strategy", "created_at", "created_by", "params",
                  "conversation_count", "reviewer_count"]


def list_rounds(db, dataset_id: int | None = None) -> pd.DataFrame:
    """Rounds (newest first), optionally of one dataset.

    Columns ``id, name, dataset_id, seed, strategy, created_at, created_by, params`` (a dict),
    ``conversation_count`` and ``reviewer_count``. None: an empty frame with these columns.
    """
    where, args = ("WHERE r.dataset_id = ?", [int(dataset_id)]) if dataset_id is not None else ("", [])
    rows = db.conn.execute(
        f"SELECT r.id, r.name, r.dataset_id, r.seed, r.strategy, r.created_at, r.created_by, r.params, "
        f"(SELECT count(DISTINCT conversation_id) FROM {ASSIGNMENTS} a WHERE a.round_id = r.id), "
        f"(SELECT count(DISTINCT reviewer) FROM {ASSIGNMENTS} a WHERE a.round_id = r.id) "
        f"FROM {ROUNDS} r {where} ORDER BY r.created_at DESC, r.id DESC", args).fetchall()
    out = pd.DataFrame(rows, columns=_ROUND_COLUMNS)
    out["params"] = [json.loads(p) for p in out["params"]]
    return out.astype({"id": "int64", "name": "str", "dataset_id": "int64", "seed": "int64", "strategy": "str",
                       "created_at": "str", "created_by": "str", "conversation_count": "int64",
                       "reviewer_count": "int64"})


def get_round(db, round_ref) -> dict:
    """One round by id (int) or name (str) as a dict (keys of :func:`list_rounds`).

    ``ConfigError`` naming the known rounds when there is no such round.
    """
    rounds = list_rounds(db)
    if isinstance(round_ref, (int, np.integer)) and not isinstance(round_ref, bool):
        hit = rounds[rounds["id"] == int(round_ref)]
    else:
        hit = rounds[rounds["name"] == str(round_ref).strip()]
    if len(hit) == 0:
        known = rounds["name"].tolist()[:10]
        raise ConfigError(f"no audit round {round_ref!r} in the store (rounds: {known})")
    return hit.iloc[0].to_dict()


def _round_row(db, round_id: int) -> tuple[int, int]:
    row = db.conn.execute(f"SELECT id, dataset_id FROM {ROUNDS} WHERE id = ?", (int(round_id),)).fetchone()
    if row is None:
        raise StoreError(f"no audit round with id {round_id!r} in the store (it may have been deleted "
                         "with its dataset)")
    return int(row[0]), int(row[1])


def round_assignments(db, round_id: int) -> pd.DataFrame:
    """Every assignment of a round: ``position, conversation_id, reviewer, role, reason``, by position then reviewer."""
    rows = db.conn.execute(
        f"SELECT position, conversation_id, reviewer, role, reason FROM {ASSIGNMENTS} WHERE round_id = ? "
        "ORDER BY position, reviewer", (int(round_id),)).fetchall()
    return pd.DataFrame(rows, columns=["position", "conversation_id", "reviewer", "role", "reason"]).astype(
        {"position": "int64", "conversation_id": "str", "reviewer": "str", "role": "str", "reason": "str"})


# --------------------------------------------------------------------------- queue and progress

def reviewer_queue(db, round_id: int, reviewer: str) -> pd.DataFrame:
    """A reviewer's own queue in review order.

    Columns ``position``, ``conversation_id``, ``reason``, ``reviewed`` (bool), ``revision``
    (0 when not reviewed) and ``saved_at`` ("" when not reviewed). Not assigned: empty frame.
    """
    rows = db.conn.execute(
        f"SELECT a.position, a.conversation_id, a.reason, s.revision IS NOT NULL, coalesce(s.revision, 0), "
        f"coalesce(s.saved_at, '') FROM {ASSIGNMENTS} a LEFT JOIN {SCORES} s ON s.round_id = a.round_id "
        "AND s.conversation_id = a.conversation_id AND s.reviewer = a.reviewer "
        "WHERE a.round_id = ? AND a.reviewer = ? ORDER BY a.position", (int(round_id), str(reviewer))).fetchall()
    out = pd.DataFrame(rows, columns=["position", "conversation_id", "reason", "reviewed", "revision", "saved_at"])
    return out.astype({"position": "int64", "conversation_id": "str", "reason": "str", "reviewed": bool,
                       "revision": "int64", "saved_at": "str"})


def next_unreviewed(db, round_id: int, reviewer: str, *, after: str | None = None) -> str | None:
    """The reviewer's next conversation without a saved review.

    The first unreviewed one after ``after`` in review order, wrapping around to the start;
    without ``after`` (or when it is not in the queue) the first unreviewed one. ``None`` when
    everything is reviewed or nothing is assigned.
    """
    queue = reviewer_queue(db, round_id, reviewer)
    todo = queue[~queue["reviewed"]]
    if len(todo) == 0:
        return None
    if after is not None and str(after) in set(queue["conversation_id"]):
        pos = int(queue.loc[queue["conversation_id"] == str(after), "position"].iloc[0])
        later = todo[todo["position"] > pos]
        if len(later):
            return str(later["conversation_id"].iloc[0])
    return str(todo["conversation_id"].iloc[0])


def reviewer_progress(db, round_id: int) -> pd.DataFrame:
    """Per reviewer of the round: ``reviewer``, ``assigned_count``, ``reviewed_count``, ``remaining_count``.

    Sorted by reviewer. A review counts when a score row exists for the assignment.
    """
    rows = db.conn.execute(
        f"SELECT a.reviewer, count(*), count(s.revision) FROM {ASSIGNMENTS} a LEFT JOIN {SCORES} s "
        "ON s.round_id = a.round_id AND s.conversation_id = a.conversation_id AND s.reviewer = a.reviewer "
        "WHERE a.round_id = ? GROUP BY a.reviewer ORDER BY a.reviewer", (int(round_id),)).fetchall()
    out = pd.DataFrame(rows, columns=["reviewer", "assigned_count", "reviewed_count"])
    out["remaining_count"] = out["assigned_count"] - out["reviewed_count"]
    return out.astype({"reviewer": "str", "assigned_count": "int64", "reviewed_count": "int64",
                       "remaining_count": "int64"})


@dataclass(frozen=True)
class RoundProgress:
    """A round's progress: ``conversation_count`` sampled, ``reviewed_conversation_count`` with at
    least one review, ``fully_reviewed_count`` reviewed by every assigned reviewer,
    ``assignment_count`` and ``reviewed_assignment_count``."""

    conversation_count: int
    reviewed_conversation_count: int
    fully_reviewed_count: int
    assignment_count: int
    reviewed_assignment_count: int


def round_progress(db, round_id: int) -> RoundProgress:
    """Counts of :class:`RoundProgress` (all 0 for a round without assignments)."""
    rows = db.conn.execute(
        f"SELECT a.conversation_id, count(*), count(s.revision) FROM {ASSIGNMENTS} a LEFT JOIN {SCORES} s "
        "ON s.round_id = a.round_id AND s.conversation_id = a.conversation_id AND s.reviewer = a.reviewer "
        "WHERE a.round_id = ? GROUP BY a.conversation_id", (int(round_id),)).fetchall()
    return RoundProgress(conversation_count=len(rows),
                         reviewed_conversation_count=sum(1 for r in rows if r[2] > 0),
                         fully_reviewed_count=sum(1 for r in rows if r[2] == r[1]),
                         assignment_count=sum(r[1] for r in rows),
                         reviewed_assignment_count=sum(r[2] for r in rows))


# --------------------------------------------------------------------------- saving

@dataclass(frozen=True)
class SavedScore:
    """What :func:`save_score` did: the current ``revision``, whether anything ``changed``
    (False for a resubmission of the same values) and the review's ``saved_at``."""

    round_id: int
    conversation_id: str
    reviewer: str
    revision: int
    changed: bool
    saved_at: str


def save_score(db, *, round_id: int, conversation_id: str, reviewer: str, scores: Mapping[str, int],
               flags: Sequence[str] | str = (), note: str = "", labels: Sequence[Mapping] = (),
               now: datetime | None = None) -> SavedScore:
    """Save one reviewer's review of one conversation: ONE atomic, idempotent upsert.

    ``scores`` gives every criterion an integer 1-5; ``flags``, ``note`` and ``labels`` (one
    mapping per user message: ``message_key``, ``verdict``, ``true_intent``,
    ``predicted_intent``) are checked by :func:`metrics.audit.validate_review`. The whole save
    (score upsert, history row, label upserts) is one ``BEGIN IMMEDIATE`` transaction; when
    the values equal the stored ones nothing is written and the revision is unchanged.

    Raises ``ConfigError`` for invalid values, ``StoreError`` when the round does not exist,
    the reviewer is not assigned the conversation, or SQLite fails (nothing is saved then).

    Examples
    --------
    >>> from metrics.audit import assign_reviewers
    >>> db = store.connect(":memory:")
    >>> rid = create_round(db, name="r", dataset_id=1, strategy="random", seed=0,
    ...     sample=pd.DataFrame({"position": [1], "conversation_id": ["c1"]}),
    ...     assignments=assign_reviewers(["c1"], ["ann"]))
    >>> s = {c: 4 for c in CRITERIA}
    >>> save_score(db, round_id=rid, conversation_id="c1", reviewer="ann", scores=s).revision
    1
    >>> save_score(db, round_id=rid, conversation_id="c1", reviewer="ann", scores=s).changed
    False
    >>> save_score(db, round_id=rid, conversation_id="c1", reviewer="ann", scores={**s, "tone": 2}).revision
    2
    """
    clean, flag_tuple, note, clean_labels = validate_review(scores, flags=flags, note=note, labels=labels)
    conversation_id, reviewer = str(conversation_id), str(reviewer)
    flag_text = ";".join(flag_tuple)
    stamp = _now(now)
    try:
        with store.immediate(db):
            round_id, dataset_id = _round_row(db, round_id)
            assigned = db.conn.execute(
                f"SELECT 1 FROM {ASSIGNMENTS} WHERE round_id = ? AND conversation_id = ? AND reviewer = ?",
                (round_id, conversation_id, reviewer)).fetchone()
            if assigned is None:
                raise StoreError(f"{reviewer!r} is not assigned conversation {conversation_id!r} in round {round_id}; "
                                 "nothing was saved")
            current = db.conn.execute(
                f"SELECT {_SCORE_COLS}, flags, note, revision, saved_at FROM {SCORES} "
                "WHERE round_id = ? AND conversation_id = ? AND reviewer = ?",
                (round_id, conversation_id, reviewer)).fetchone()
            stored_labels = _stored_labels(db, dataset_id, reviewer, [lab["message_key"] for lab in clean_labels])
            new_labels = {lab["message_key"]: (lab["verdict"], lab["true_intent"]) for lab in clean_labels}
            same = current is not None \
                and tuple(current[:len(CRITERIA)]) == tuple(clean[c] for c in CRITERIA) \
                and current[len(CRITERIA)] == flag_text and current[len(CRITERIA) + 1] == note \
                and all(stored_labels.get(k) == v for k, v in new_labels.items())
            if same:
                return SavedScore(round_id, conversation_id, reviewer, int(current[-2]), False, current[-1])
            revision = 1 if current is None else int(current[-2]) + 1
            values = [clean[c] for c in CRITERIA]
            db.conn.execute(
                f"INSERT INTO {SCORES} (round_id, dataset_id, conversation_id, reviewer, {_SCORE_COLS}, flags, note, "
                f"saved_at, revision) VALUES ({', '.join(['?'] * (len(CRITERIA) + 8))}) "
                "ON CONFLICT (round_id, conversation_id, reviewer) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in CRITERIA)
                + ", flags = excluded.flags, note = excluded.note, saved_at = excluded.saved_at, "
                  "revision = excluded.revision",
                [round_id, dataset_id, conversation_id, reviewer, *values, flag_text, note, stamp, revision])
            db.conn.execute(
                f"INSERT INTO {HISTORY} (round_id, dataset_id, conversation_id, reviewer, revision, {_SCORE_COLS}, "
                f"flags, note, labels, saved_at) VALUES ({', '.join(['?'] * (len(CRITERIA) + 9))})",
                [round_id, dataset_id, conversation_id, reviewer, revision, *values, flag_text, note,
                 json.dumps(clean_labels, sort_keys=True), stamp])
            db.conn.executemany(
                f"INSERT INTO {LABELS} (dataset_id, message_key, conversation_id, round_id, reviewer, verdict, "
                "true_intent, predicted_intent, saved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (dataset_id, message_key, reviewer) DO UPDATE SET "
                "conversation_id = excluded.conversation_id, round_id = excluded.round_id, "
                "verdict = excluded.verdict, true_intent = excluded.true_intent, "
                "predicted_intent = excluded.predicted_intent, saved_at = excluded.saved_at",
                [(dataset_id, lab["message_key"], lab["conversation_id"] or conversation_id, round_id, reviewer,
                  lab["verdict"], lab["true_intent"], lab["predicted_intent"], stamp)
                 for lab in clean_labels if stored_labels.get(lab["message_key"]) != new_labels[lab["message_key"]]])
    except sqlite3.Error as exc:
        raise _sql_error(f"save the review of {conversation_id!r} by {reviewer!r}", exc) from exc
    return SavedScore(round_id, conversation_id, reviewer, revision, True, stamp)


def _stored_labels(db, dataset_id: int, reviewer: str, keys: list[str]) -> dict[str, tuple]:
    found = {}
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        marks = ", ".join(["?"] * len(chunk))
        for key, verdict, true_intent in db.conn.execute(
                f"SELECT message_key, verdict, true_intent FROM {LABELS} WHERE dataset_id = ? AND reviewer = ? "
                f"AND message_key IN ({marks})", [dataset_id, reviewer, *chunk]):
            found[key] = (verdict, true_intent)
    return found


def get_score(db, round_id: int, conversation_id: str, reviewer: str) -> dict | None:
    """The current review as a dict (criteria, ``flags`` tuple, ``note``, ``saved_at``, ``revision``), or None."""
    row = db.conn.execute(
        f"SELECT {_SCORE_COLS}, flags, note, saved_at, revision FROM {SCORES} "
        "WHERE round_id = ? AND conversation_id = ? AND reviewer = ?",
        (int(round_id), str(conversation_id), str(reviewer))).fetchone()
    if row is None:
        return None
    out = dict(zip(CRITERIA, (int(v) for v in row[:len(CRITERIA)])))
    flags, note, saved_at, revision = row[len(CRITERIA):]
    out.update(flags=tuple(f for f in flags.split(";") if f), note=note, saved_at=saved_at, revision=int(revision))
    return out


def score_history(db, round_id: int, conversation_id: str, reviewer: str) -> pd.DataFrame:
    """Every saved version of one review, oldest first: ``revision``, criteria, ``flags``, ``note``,
    ``labels`` (list of dicts) and ``saved_at``."""
    rows = db.conn.execute(
        f"SELECT revision, {_SCORE_COLS}, flags, note, labels, saved_at FROM {HISTORY} "
        "WHERE round_id = ? AND conversation_id = ? AND reviewer = ? ORDER BY revision",
        (int(round_id), str(conversation_id), str(reviewer))).fetchall()
    out = pd.DataFrame(rows, columns=["revision", *CRITERIA, "flags", "note", "labels", "saved_at"])
    out["labels"] = [json.loads(v) for v in out["labels"]]
    return out.astype({"revision": "int64", **{c: "int64" for c in CRITERIA}})


def reviewer_labels(db, dataset_id: int, reviewer: str, message_keys: Sequence[str]) -> dict[str, dict]:
    """A reviewer's saved answers for some messages: ``{message_key: {"verdict", "true_intent"}}``."""
    found = _stored_labels(db, int(dataset_id), str(reviewer), [str(k) for k in message_keys])
    return {k: {"verdict": v, "true_intent": t} for k, (v, t) in found.items()}


def load_labels(db, dataset_id: int) -> pd.DataFrame:
    """Every reviewer label of a dataset: ``message_key, conversation_id, round_id, reviewer, verdict,
    true_intent, predicted_intent, saved_at`` by message_key then saved_at. None (or no table yet):
    an empty frame with these columns. Does not create the tables."""
    columns = ["message_key", "conversation_id", "round_id", "reviewer", "verdict", "true_intent",
               "predicted_intent", "saved_at"]
    exists = db.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (LABELS,)).fetchone()
    rows = [] if not exists else db.conn.execute(
        f"SELECT {', '.join(columns)} FROM {LABELS} WHERE dataset_id = ? ORDER BY message_key, saved_at, reviewer",
        (int(dataset_id),)).fetchall()
    out = pd.DataFrame(rows, columns=columns)
    return out.astype({c: "str" for c in columns if c != "round_id"}).astype({"round_id": "float64"})


# --------------------------------------------------------------------------- reading scores

_LOAD_COLUMNS = ["conversation_id", "reviewer", *CRITERIA, "flags", "note", "saved_at", "revision"]


def load_scores(db, round_id: int) -> pd.DataFrame:
    """The current reviews of a round (input of the :mod:`metrics.audit` result functions).

    Columns ``conversation_id, reviewer``, the criteria (int64), ``flags`` (``;``-joined),
    ``note``, ``saved_at``, ``revision``; by conversation then reviewer.
    """
    rows = db.conn.execute(
        f"SELECT conversation_id, reviewer, {_SCORE_COLS}, flags, note, saved_at, revision FROM {SCORES} "
        "WHERE round_id = ? ORDER BY conversation_id, reviewer", (int(round_id),)).fetchall()
    out = pd.DataFrame(rows, columns=_LOAD_COLUMNS)
    return out.astype({"conversation_id": "str", "reviewer": "str", **{c: "int64" for c in CRITERIA},
                       "flags": "str", "note": "str", "saved_at": "str", "revision": "int64"})


def export_scores(db, *, round_name: str | None = None) -> pd.DataFrame:
    """Every saved review (of one round when ``round_name`` is given) with :data:`EXPORT_COLUMNS`.

    ``round`` is the round's name; rows by round creation, conversation, reviewer.
    ``ConfigError`` for an unknown round name. No review: an empty frame with these columns.
    """
    where, args = "", []
    if round_name is not None:
        where, args = "WHERE r.id = ?", [int(get_round(db, str(round_name))["id"])]
    rows = db.conn.execute(
        f"SELECT r.name, s.conversation_id, s.reviewer, {', '.join('s.' + c for c in CRITERIA)}, s.flags, s.note, "
        f"s.saved_at, s.revision, s.dataset_id FROM {SCORES} s JOIN {ROUNDS} r ON r.id = s.round_id {where} "
        "ORDER BY r.created_at, r.id, s.conversation_id, s.reviewer", args).fetchall()
    out = pd.DataFrame(rows, columns=list(EXPORT_COLUMNS))
    return out.astype({"round": "str", "conversation_id": "str", "reviewer": "str", **{c: "int64" for c in CRITERIA},
                       "flags": "str", "note": "str", "saved_at": "str", "revision": "int64", "dataset_id": "int64"})


def export_scores_csv(db, *, round_name: str | None = None) -> bytes:
    """:func:`export_scores` as UTF-8 CSV; cells starting with = + - @ are escaped
    (:func:`metrics.io.export.to_csv_bytes`) so a spreadsheet cannot run them."""
    return to_csv_bytes(export_scores(db, round_name=round_name))


def intent_labels(db, dataset_id: int) -> pd.DataFrame:
    """The reviewer labels of a dataset as ``DataFrame[message_key, true_intent]`` (rule above).

    ``message_key`` is :func:`metrics.store.message_keys` of the message, so the Intents page
    can overlay the labels with :func:`metrics.intents.apply_labels`. No label (or no audit
    table yet): an empty frame with those columns. Reads only; creates nothing.

    Examples
    --------
    >>> from metrics import store
    >>> intent_labels(store.connect(":memory:"), 1).columns.tolist()
    ['message_key', 'true_intent']
    """
    from metrics.audit.labels import resolve_labels

    return resolve_labels(load_labels(db, dataset_id))
