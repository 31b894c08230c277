"""Stored topic state: the last run's snapshot (to match the next run against), topic names and merges.

Everything is per dataset and per *unit* (``"messages"``, ``"first"`` or ``"gaps"`` for gap topics), in five
tables created by this module's :data:`MIGRATION_STEPS` (steps 9-11 of :mod:`metrics.store.migrations`, applied
when the store is opened). Each has a ``dataset_id`` column referencing ``datasets(id)``, so
:func:`metrics.store.delete_dataset` removes it with the dataset.

``topic_runs(dataset_id, unit, dataset_version, options_key, next_id, digest, saved_at)``
    one row per dataset and unit: the last run (which dataset version, which options).
``topic_snapshots(dataset_id, unit, role, topic, label, text_count, message_count, sketch, terms)``
    ``role = 'current'``: that run's topics before merges; ``role = 'basis'``: the snapshot the run started
    from (its ``previous``), so the same run can be repeated exactly (same ids) until the data or the options
    change. ``sketch`` holds up to 256 text hashes (uint64, little-endian) and ``terms`` a JSON list of
    ``[term, weight]``.
``topic_names(dataset_id, unit, topic, name, source, updated_at)``
    a name the user gave (``source = 'renamed'``) or an automatic label the user pinned (``'pinned'``). A
    named topic shows this name for as long as later runs match it (ids follow matched topics); removing the
    row goes back to the automatic label.
``topic_merges(dataset_id, unit, topic, into_topic, updated_at)``
    topic ``topic`` is shown as part of ``into_topic`` (applied by :func:`metrics.topics.discover_topics`).
``topic_conversations(dataset_id, unit, conversation_id, topic)``
    which conversations the last run put in which topic (after merges; a conversation can be in several):
    what makes a named topic a filter on every page (:func:`conversation_topics`). ``topic_runs.pairs_digest``
    says which assignment is stored, so an unchanged run is not written again.

Every read-then-write runs under :func:`metrics.store.immediate`. Bad names and ids raise
:class:`~metrics.errors.ConfigError`; a dataset that does not exist raises
:class:`~metrics.errors.StoreError`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from metrics import store
from metrics.errors import ConfigError, StoreError
from metrics.topics._discover import TopicSnapshot, empty_snapshot

__all__ = [
    "MIGRATION_STEPS",
    "UNITS",
    "MAX_NAME_LENGTH",
    "TopicState",
    "clean_name",
    "load_snapshot",
    "save_snapshot",
    "load_names",
    "rename_topic",
    "pin_topic",
    "reset_name",
    "load_merges",
    "merge_topics",
    "unmerge_topic",
    "load_state",
    "FILTER_UNITS",
    "snapshot_digest",
    "conversation_topics",
    "run_topic_names",
    "filter_run",
]

UNITS = ("messages", "first", "gaps")
MAX_NAME_LENGTH = 80


def _topic_tables(db) -> None:
    """Step 9: the four topic tables (module docstring); idempotent."""
    fk = "dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE"
    db.conn.execute(f"""CREATE TABLE IF NOT EXISTS topic_runs (
  {fk}, unit TEXT NOT NULL, dataset_version INTEGER NOT NULL, options_key TEXT NOT NULL,
  next_id INTEGER NOT NULL, basis_next_id INTEGER, digest TEXT NOT NULL, saved_at TEXT NOT NULL,
  PRIMARY KEY (dataset_id, unit))""")
    db.conn.execute(f"""CREATE TABLE IF NOT EXISTS topic_snapshots (
  {fk}, unit TEXT NOT NULL, role TEXT NOT NULL, topic INTEGER NOT NULL, label TEXT NOT NULL,
  text_count INTEGER NOT NULL, message_count INTEGER NOT NULL, sketch BLOB NOT NULL, terms TEXT NOT NULL,
  PRIMARY KEY (dataset_id, unit, role, topic))""")
    db.conn.execute(f"""CREATE TABLE IF NOT EXISTS topic_names (
  {fk}, unit TEXT NOT NULL, topic INTEGER NOT NULL, name TEXT NOT NULL, source TEXT NOT NULL,
  updated_at TEXT NOT NULL, PRIMARY KEY (dataset_id, unit, topic))""")
    db.conn.execute(f"""CREATE TABLE IF NOT EXISTS topic_merges (
  {fk}, unit TEXT NOT NULL, topic INTEGER NOT NULL, into_topic INTEGER NOT NULL, updated_at TEXT NOT NULL,
  PRIMARY KEY (dataset_id, unit, topic))""")


def _topic_conversations(db) -> None:
    """Step 10: conversation -> topic pairs of the last run, and ``topic_runs.pairs_digest``; idempotent."""
    db.conn.execute("""CREATE TABLE IF NOT EXISTS topic_conversations (
  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE, unit TEXT NOT NULL,
  conversation_id TEXT NOT NULL, topic INTEGER NOT NULL, PRIMARY KEY (dataset_id, unit, conversation_id, topic))""")
    columns = {row[1] for row in db.conn.execute("PRAGMA table_info(topic_runs)").fetchall()}
    if "pairs_digest" not in columns:
        db.conn.execute("ALTER TABLE topic_runs ADD COLUMN pairs_digest TEXT")


def _forget_sqlite_utils_records(db) -> None:
    """Step 11: steps 9-10 were once the ``sqlite_utils.migrations.Migrations("topics")`` set; drop its rows
    from ``_sqlite_migrations``, and the table when no other set is recorded there."""
    if db.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlite_migrations'").fetchone():
        db.conn.execute("DELETE FROM _sqlite_migrations WHERE migration_set = 'topics'")
        if db.conn.execute("SELECT 1 FROM _sqlite_migrations LIMIT 1").fetchone() is None:
            db.conn.execute("DROP TABLE _sqlite_migrations")


#: This module's schema steps, applied by :mod:`metrics.store.migrations` when the store is opened.
MIGRATION_STEPS = (
    ("topic_tables", "topics: topic_runs, topic_snapshots, topic_names, topic_merges", _topic_tables),
    ("topic_conversations", "topics: topic_conversations, topic_runs.pairs_digest", _topic_conversations),
    ("forget_sqlite_utils_records", "topics: drop the sqlite-utils migration records of the topic tables",
     _forget_sqlite_utils_records),
)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _unit(unit) -> str:
    if unit not in UNITS:
        raise ConfigError(f"unit must be one of {UNITS}, got {unit!r}")
    return unit


def _dataset(db, dataset_id) -> int:
    if isinstance(dataset_id, bool) or not isinstance(dataset_id, (int, np.integer)):
        raise ConfigError(f"dataset_id must be an integer, got {dataset_id!r}")
    if db.conn.execute("SELECT 1 FROM datasets WHERE id = ?", (int(dataset_id),)).fetchone() is None:
        raise StoreError(f"no dataset with id {int(dataset_id)} in the store")
    return int(dataset_id)


def _topic(topic) -> int:
    if isinstance(topic, bool) or not isinstance(topic, (int, np.integer)) or topic < 1:
        raise ConfigError(f"a topic id is a whole number >= 1, got {topic!r}")
    return int(topic)


def snapshot_digest(snapshot: TopicSnapshot | None) -> str:
    """A digest of a snapshot's content ("-" for None): what identifies a run's starting point."""
    return "-" if snapshot is None else _digest(snapshot)


def _digest(snapshot: TopicSnapshot) -> str:
    h = hashlib.sha1()
    for frame in (snapshot.topics, snapshot.members, snapshot.terms):
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes() if len(frame) else b"-")
    h.update(str(snapshot.next_id).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- snapshots

def _read_snapshot(db, dataset_id: int, unit: str, role: str, next_id: int) -> TopicSnapshot:
    rows = db.conn.execute("SELECT topic, label, text_count, message_count, sketch, terms FROM topic_snapshots "
                           "WHERE dataset_id = ? AND unit = ? AND role = ? ORDER BY topic",
                           (int(dataset_id), unit, role)).fetchall()
    if not rows:
        return empty_snapshot(int(next_id))
    try:
        topics = pd.DataFrame({"topic": pd.Series([r[0] for r in rows], dtype="int64"),
                               "label": pd.Series([r[1] for r in rows], dtype="str"),
                               "text_count": pd.Series([r[2] for r in rows], dtype="int64"),
                               "message_count": pd.Series([r[3] for r in rows], dtype="int64")})
        sketches = [np.frombuffer(r[4], dtype="<u8").astype(np.uint64) for r in rows]
        members = pd.DataFrame({"topic": np.repeat([r[0] for r in rows], [len(x) for x in sketches]).astype("int64"),
                                "hash": np.concatenate(sketches).astype(np.uint64)})
        term_rows = [(r[0], str(t), float(w)) for r in rows for t, w in json.loads(r[5])]
    except (ValueError, TypeError) as exc:
        raise StoreError(f"the stored topics of dataset {dataset_id} ({unit}) are unreadable ({exc}); "
                         "re-discover the topics to replace them") from None
    terms = pd.DataFrame({"topic": pd.Series([t[0] for t in term_rows], dtype="int64"),
                          "term": pd.Series([t[1] for t in term_rows], dtype="str"),
                          "weight": pd.Series([t[2] for t in term_rows], dtype="float64")})
    return TopicSnapshot(topics=topics, members=members, terms=terms, next_id=int(next_id))


def load_snapshot(db, dataset_id: int, unit: str) -> TopicSnapshot | None:
    """The stored snapshot of the last run of ``(dataset_id, unit)``, or None before the first run."""
    unit = _unit(unit)
    run = db.conn.execute("SELECT next_id FROM topic_runs WHERE dataset_id = ? AND unit = ?",
                          (int(dataset_id), unit)).fetchone()
    return None if run is None else _read_snapshot(db, dataset_id, unit, "current", run[0])


def _write_snapshot(db, dataset_id: int, unit: str, role: str, snapshot: TopicSnapshot) -> None:
    db.conn.execute("DELETE FROM topic_snapshots WHERE dataset_id = ? AND unit = ? AND role = ?",
                    (dataset_id, unit, role))
    members, terms = snapshot.members, snapshot.terms
    for t in snapshot.topics.itertuples(index=False):
        sketch = members.loc[members["topic"] == t.topic, "hash"].to_numpy(dtype=np.uint64).astype("<u8")
        tw = terms.loc[terms["topic"] == t.topic, ["term", "weight"]]
        db.conn.execute(
            "INSERT INTO topic_snapshots (dataset_id, unit, role, topic, label, text_count, message_count, sketch, "
            "terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (dataset_id, unit, role, int(t.topic), str(t.label), int(t.text_count), int(t.message_count),
             sketch.tobytes(), json.dumps([[str(a), float(b)] for a, b in tw.itertuples(index=False)],
                                          ensure_ascii=False)))


def _pairs(assignments: pd.DataFrame | None) -> tuple[pd.DataFrame | None, str | None]:
    """Distinct ``(conversation_id, topic)`` of a model's assignments (clustered messages only) and their
    digest; ``(None, None)`` when no assignments are given."""
    if assignments is None:
        return None, None
    a = assignments[pd.to_numeric(assignments["topic"], errors="coerce").ge(1).to_numpy(bool)]
    pairs = pd.DataFrame({"conversation_id": a["conversation_id"].astype("str").to_numpy(),
                          "topic": a["topic"].astype("int64").to_numpy()}).drop_duplicates()
    pairs = pairs.sort_values(["conversation_id", "topic"], kind="stable").reset_index(drop=True)
    digest = hashlib.sha1(pd.util.hash_pandas_object(pairs, index=False).to_numpy().tobytes()).hexdigest() \
        if len(pairs) else "-"
    return pairs, digest


def _write_pairs(db, dataset_id: int, unit: str, pairs: pd.DataFrame, digest: str) -> None:
    db.conn.execute("DELETE FROM topic_conversations WHERE dataset_id = ? AND unit = ?", (dataset_id, unit))
    db.conn.executemany("INSERT INTO topic_conversations (dataset_id, unit, conversation_id, topic) VALUES "
                        "(?, ?, ?, ?)", ((dataset_id, unit, c, int(t)) for c, t in pairs.itertuples(index=False)))
    db.conn.execute("UPDATE topic_runs SET pairs_digest = ? WHERE dataset_id = ? AND unit = ?",
                    (digest, dataset_id, unit))


def save_snapshot(db, dataset_id: int, unit: str, snapshot: TopicSnapshot, *, version: int = 0,
                  options_key: str = "", basis: TopicSnapshot | None = None,
                  assignments: pd.DataFrame | None = None) -> bool:
    """Store ``snapshot`` as the last run of ``(dataset_id, unit)`` on dataset ``version`` with options
    ``options_key``, started from ``basis`` (its ``previous``; None for a first run), in one transaction.
    ``assignments`` (the run's :attr:`~metrics.topics.TopicModel.assignments`, after merges) stores which
    conversations are in which topic (:func:`conversation_topics`). Returns False (and writes nothing) when
    exactly this run, with these assignments, is already stored."""
    unit = _unit(unit)
    digest = _digest(snapshot) + ":" + (_digest(basis) if basis is not None else "-")
    pairs, pairs_digest = _pairs(assignments)
    with store.immediate(db):
        dataset_id = _dataset(db, dataset_id)
        row = db.conn.execute("SELECT digest, next_id, dataset_version, options_key, pairs_digest FROM topic_runs "
                              "WHERE dataset_id = ? AND unit = ?", (dataset_id, unit)).fetchone()
        if row is not None and tuple(row[0:1]) + tuple(row[2:4]) == (digest, int(version), str(options_key)):
            if pairs is None or row[4] == pairs_digest:
                return False
            _write_pairs(db, dataset_id, unit, pairs, pairs_digest)  # same run, merges changed
            return True
        next_id = max(int(snapshot.next_id), int(row[1]) if row is not None else 1)
        _write_snapshot(db, dataset_id, unit, "current", snapshot)
        _write_snapshot(db, dataset_id, unit, "basis", basis if basis is not None else empty_snapshot())
        db.conn.execute(
            "INSERT INTO topic_runs (dataset_id, unit, dataset_version, options_key, next_id, basis_next_id, digest, "
            "saved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dataset_id, unit) DO UPDATE SET "
            "dataset_version = excluded.dataset_version, options_key = excluded.options_key, "
            "next_id = excluded.next_id, basis_next_id = excluded.basis_next_id, digest = excluded.digest, "
            "saved_at = excluded.saved_at",
            (dataset_id, unit, int(version), str(options_key), next_id,
             None if basis is None else int(basis.next_id), digest, _now()))
        if pairs is not None:
            _write_pairs(db, dataset_id, unit, pairs, pairs_digest)
    return True


# --------------------------------------------------------------------------- names

def clean_name(name) -> str:
    """A topic name trimmed; ConfigError for an empty, multi-line or too long one.

    Examples
    --------
    >>> clean_name("  Delivery delays ")
    'Delivery delays'
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a topic name must not be empty, got {name!r}")
    clean = " ".join(name.split()) if "\n" not in name and "\r" not in name else None
    if clean is None or any(ord(c) < 32 for c in name.strip()):
        raise ConfigError(f"a topic name must be one line, got {name!r}")
    if len(clean) > MAX_NAME_LENGTH:
        raise ConfigError(f"a topic name has at most {MAX_NAME_LENGTH} characters; {clean[:20]!r}... has "
                          f"{len(clean)}")
    return clean


def load_names(db, dataset_id: int, unit: str) -> pd.DataFrame:
    """Stored names: columns ``topic`` (int64), ``name``, ``source`` (``renamed`` / ``pinned``), by topic."""
    rows = db.conn.execute("SELECT topic, name, source FROM topic_names WHERE dataset_id = ? AND unit = ? "
                           "ORDER BY topic", (int(dataset_id), _unit(unit))).fetchall()
    return pd.DataFrame({"topic": pd.Series([r[0] for r in rows], dtype="int64"),
                         "name": pd.Series([r[1] for r in rows], dtype="str"),
                         "source": pd.Series([r[2] for r in rows], dtype="str")})


def _set_name(db, dataset_id, unit, topic, name, source) -> None:
    unit, topic, name = _unit(unit), _topic(topic), clean_name(name)
    with store.immediate(db):
        dataset_id = _dataset(db, dataset_id)
        db.conn.execute("INSERT INTO topic_names (dataset_id, unit, topic, name, source, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dataset_id, unit, topic) DO UPDATE SET "
                        "name = excluded.name, source = excluded.source, updated_at = excluded.updated_at",
                        (dataset_id, unit, topic, name, source, _now()))


def rename_topic(db, dataset_id: int, unit: str, topic: int, name: str) -> None:
    """Give topic ``topic`` the name ``name`` (kept across runs while the topic is matched)."""
    _set_name(db, dataset_id, unit, topic, name, "renamed")


def pin_topic(db, dataset_id: int, unit: str, topic: int, label: str) -> None:
    """Keep the automatic label ``label`` of ``topic`` as its name, whatever later runs label it."""
    _set_name(db, dataset_id, unit, topic, label, "pinned")


def reset_name(db, dataset_id: int, unit: str, topic: int) -> bool:
    """Go back to the automatic label of ``topic``; True when a stored name was removed."""
    unit, topic = _unit(unit), _topic(topic)
    with store.immediate(db):
        cur = db.conn.execute("DELETE FROM topic_names WHERE dataset_id = ? AND unit = ? AND topic = ?",
                              (int(dataset_id), unit, topic))
    return cur.rowcount > 0


# --------------------------------------------------------------------------- merges

def load_merges(db, dataset_id: int, unit: str) -> dict[int, int]:
    """``{topic: into_topic}`` of the stored merges."""
    rows = db.conn.execute("SELECT topic, into_topic FROM topic_merges WHERE dataset_id = ? AND unit = ? "
                           "ORDER BY topic", (int(dataset_id), _unit(unit))).fetchall()
    return {int(a): int(b) for a, b in rows}


def merge_topics(db, dataset_id: int, unit: str, topics, into: int) -> int:
    """Show every topic of ``topics`` as part of ``into``; returns how many merges were stored. Topics
    already merged into one of ``topics`` follow them (no chains are left behind)."""
    unit, into = _unit(unit), _topic(into)
    sources = sorted({_topic(t) for t in topics} - {into})
    if not sources:
        raise ConfigError("choose at least one topic other than the one to merge into")
    with store.immediate(db):
        dataset_id = _dataset(db, dataset_id)
        now = _now()
        db.conn.execute("DELETE FROM topic_merges WHERE dataset_id = ? AND unit = ? AND topic = ?",
                        (dataset_id, unit, into))
        for source in sources:
            db.conn.execute("UPDATE topic_merges SET into_topic = ?, updated_at = ? WHERE dataset_id = ? AND "
                            "unit = ? AND into_topic = ?", (into, now, dataset_id, unit, source))
            db.conn.execute("INSERT INTO topic_merges (dataset_id, unit, topic, into_topic, updated_at) "
                            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (dataset_id, unit, topic) DO UPDATE SET "
                            "into_topic = excluded.into_topic, updated_at = excluded.updated_at",
                            (dataset_id, unit, source, into, now))
    return len(sources)


def unmerge_topic(db, dataset_id: int, unit: str, topic: int) -> int:
    """Undo the merges into ``topic`` and of ``topic`` itself; returns how many were removed."""
    unit, topic = _unit(unit), _topic(topic)
    with store.immediate(db):
        cur = db.conn.execute("DELETE FROM topic_merges WHERE dataset_id = ? AND unit = ? AND "
                              "(topic = ? OR into_topic = ?)", (int(dataset_id), unit, topic, topic))
    return cur.rowcount


# --------------------------------------------------------------------------- all of it

@dataclass(frozen=True)
class TopicState:
    """Everything stored for one dataset and unit: ``snapshot`` (the last run; None before the first),
    ``basis`` (what that run started from: None for a first run), ``version`` and ``options_key`` of that
    run (0 and "" before the first), ``names`` (:func:`load_names`) and ``merges`` (:func:`load_merges`).

    :meth:`previous_for` is the snapshot a new run should start from: the stored run's own basis when the
    data version and options are the same (the run is repeated exactly), else the stored run.
    """

    snapshot: TopicSnapshot | None
    basis: TopicSnapshot | None
    version: int
    options_key: str
    names: pd.DataFrame
    merges: dict

    def previous_for(self, version: int, options_key: str) -> TopicSnapshot | None:
        if self.snapshot is not None and int(version) == self.version and options_key == self.options_key:
            return self.basis
        return self.snapshot


def load_state(db, dataset_id: int, unit: str) -> TopicState:
    """:class:`TopicState` of ``(dataset_id, unit)``."""
    unit = _unit(unit)
    run = db.conn.execute("SELECT next_id, basis_next_id, dataset_version, options_key FROM topic_runs "
                          "WHERE dataset_id = ? AND unit = ?", (int(dataset_id), unit)).fetchone()
    if run is None:
        snapshot = basis = None
        version, key = 0, ""
    else:
        snapshot = _read_snapshot(db, dataset_id, unit, "current", run[0])
        basis = None if run[1] is None else _read_snapshot(db, dataset_id, unit, "basis", run[1])
        version, key = int(run[2]), str(run[3])
    return TopicState(snapshot, basis, version, key, load_names(db, dataset_id, unit),
                      load_merges(db, dataset_id, unit))


# --------------------------------------------------------------------------- topics as a filter

#: The units whose topics filter conversations elsewhere, in order of preference (gap topics do not).
FILTER_UNITS = ("messages", "first")


def conversation_topics(db, dataset_id: int, unit: str) -> pd.DataFrame:
    """The stored ``(conversation_id, topic)`` pairs of the last run of ``(dataset_id, unit)`` with each
    topic's shown ``name`` (the stored name, else the run's automatic label) and the run's
    ``dataset_version``; empty (same columns) before the first run. Merges are already applied."""
    unit = _unit(unit)
    rows = db.conn.execute(
        "SELECT p.conversation_id, p.topic, COALESCE(n.name, s.label, 'topic ' || p.topic), r.dataset_version "
        "FROM topic_conversations p JOIN topic_runs r ON r.dataset_id = p.dataset_id AND r.unit = p.unit "
        "LEFT JOIN topic_names n ON n.dataset_id = p.dataset_id AND n.unit = p.unit AND n.topic = p.topic "
        "LEFT JOIN topic_snapshots s ON s.dataset_id = p.dataset_id AND s.unit = p.unit AND s.role = 'current' "
        "AND s.topic = p.topic WHERE p.dataset_id = ? AND p.unit = ? ORDER BY p.conversation_id, p.topic",
        (int(dataset_id), unit)).fetchall()
    return pd.DataFrame({"conversation_id": pd.Series([r[0] for r in rows], dtype="str"),
                         "topic": pd.Series([r[1] for r in rows], dtype="int64"),
                         "name": pd.Series([r[2] for r in rows], dtype="str"),
                         "dataset_version": pd.Series([r[3] for r in rows], dtype="int64")})


def run_topic_names(db, dataset_id: int, unit: str) -> dict[int, str]:
    """``{topic: shown name}`` of the topics that hold conversations in the last run of ``(dataset_id, unit)``
    (after merges), without reading the pairs themselves; empty before the first run."""
    rows = db.conn.execute(
        "SELECT p.topic, COALESCE(n.name, s.label, 'topic ' || p.topic) FROM (SELECT DISTINCT topic FROM "
        "topic_conversations WHERE dataset_id = ? AND unit = ?) p LEFT JOIN topic_names n ON n.dataset_id = ? AND "
        "n.unit = ? AND n.topic = p.topic LEFT JOIN topic_snapshots s ON s.dataset_id = ? AND s.unit = ? AND "
        "s.role = 'current' AND s.topic = p.topic ORDER BY p.topic",
        (int(dataset_id), _unit(unit)) * 3).fetchall()
    return {int(t): str(n) for t, n in rows}


def filter_run(db, dataset_id: int) -> tuple[str | None, str]:
    """Which stored run the shared "Topic" filter uses for a dataset: ``(unit, token)`` for the first unit of
    :data:`FILTER_UNITS` with stored conversations (``token`` changes whenever that assignment or a name
    changes: a cache key for :func:`conversation_topics`), or ``(None, "")`` before any topic run."""
    for unit in FILTER_UNITS:
        run = db.conn.execute("SELECT pairs_digest FROM topic_runs WHERE dataset_id = ? AND unit = ? "
                              "AND pairs_digest IS NOT NULL", (int(dataset_id), unit)).fetchone()
        if run is None:
            continue
        names = db.conn.execute("SELECT group_concat(topic || '=' || name || '@' || updated_at, '|') FROM "
                                "topic_names WHERE dataset_id = ? AND unit = ?", (int(dataset_id), unit)).fetchone()
        return unit, hashlib.sha1(f"{unit}|{run[0]}|{names[0]}".encode()).hexdigest()[:16]
    return None, ""
