"""metrics.topics.persist: runs, names, merges in the store; renames survive a re-upload; deleting a dataset
removes its topic rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from metrics import store
from metrics.errors import ConfigError, StoreError
from metrics.io.loaders import load_path
from metrics.topics import TopicOptions, discover_topics, persist, with_names

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample_transcripts.csv.gz"
TABLES = ("topic_runs", "topic_snapshots", "topic_names", "topic_merges", "topic_conversations")


@pytest.fixture(scope="module")
def sample():
    return load_path(str(SAMPLE)).frame


def _run(db, info, messages, unit="first", options=None):
    """What the page does: repeat the stored run, or start from it; then store this run."""
    options = options or TopicOptions(unit=unit)
    key = repr(options)
    state = persist.load_state(db, info.dataset_id, unit)
    previous = state.previous_for(info.version, key)
    model = discover_topics(messages, options=options, previous=previous, merges=state.merges)
    persist.save_snapshot(db, info.dataset_id, unit, model.snapshot, version=info.version, options_key=key,
                          basis=previous, assignments=model.assignments)
    return model, persist.load_state(db, info.dataset_id, unit)


def test_the_topic_steps_are_recorded_and_idempotent(memory_db):
    assert store.migrate(memory_db) == store.migrate(memory_db) == store.SCHEMA_VERSION
    steps = [name for name, _, _ in persist.MIGRATION_STEPS]
    assert steps == ["topic_tables", "topic_conversations", "forget_sqlite_utils_records"]
    recorded = [n for (n,) in memory_db.execute("SELECT name FROM schema_migrations WHERE name LIKE 'topics:%' "
                                                "ORDER BY version")]
    assert recorded == [description for _, description, _ in persist.MIGRATION_STEPS]
    assert set(TABLES) <= set(memory_db.table_names())
    for table in TABLES:
        assert "dataset_id" in memory_db[table].columns_dict


def test_rename_survives_a_reupload(memory_db, sample):
    convs = np.sort(sample["conversation_id"].unique())
    rng = np.random.default_rng(5)
    held_back = set(rng.choice(convs, size=int(0.05 * len(convs)), replace=False))
    first_upload = sample[~sample["conversation_id"].isin(held_back)].reset_index(drop=True)
    saved = store.save_messages(memory_db, first_upload, dataset_name="weekly")
    model, state = _run(memory_db, saved, store.load_messages(memory_db, saved.dataset_id))
    password = int(model.topics.loc[model.topics["label"].str.contains("password"), "topic"].iloc[0])
    persist.rename_topic(memory_db, saved.dataset_id, "first", password, "Password resets")
    pinned = int(model.topics["topic"].iloc[-1])
    persist.pin_topic(memory_db, saved.dataset_id, "first", pinned, model.topics["label"].iloc[-1])

    again = store.save_messages(memory_db, sample, dataset_name="weekly")  # the full export: 5% more
    assert again.dataset_id == saved.dataset_id and again.version == saved.version + 1 and again.new_rows > 0
    grown, state = _run(memory_db, again, store.load_messages(memory_db, again.dataset_id))
    named = with_names(grown.topics, state.names).set_index("topic")
    assert named.loc[password, "name"] == "Password resets"
    assert "password" in named.loc[password, "label"]
    assert named.loc[pinned, "name_source"] == "pinned"
    # the topic keeps (almost all of) its messages
    before = model.assignments[model.assignments["topic"] == password].set_index(["conversation_id", "row"])
    after = grown.assignments.set_index(["conversation_id", "row"])["topic"].reindex(before.index)
    assert (after == password).mean() >= 0.9


def test_the_same_run_is_repeated_not_rewritten(memory_db, sample):
    saved = store.save_messages(memory_db, sample, dataset_name="s")
    messages = store.load_messages(memory_db, saved.dataset_id)
    first, state1 = _run(memory_db, saved, messages)
    second, state2 = _run(memory_db, saved, messages)
    assert first.topics.equals(second.topics)
    assert state1.basis is None and state2.basis is None  # still the first run, repeated
    options = TopicOptions(unit="first", warm_start=False)
    fresh, state3 = _run(memory_db, saved, messages, options=options)  # re-discover: starts from the stored run
    assert state3.basis is not None and not state3.basis.empty
    assert fresh.topics["matched"].all()


def test_merges_are_stored_and_applied(memory_db, sample):
    saved = store.save_messages(memory_db, sample, dataset_name="m")
    messages = store.load_messages(memory_db, saved.dataset_id)
    model, _ = _run(memory_db, saved, messages)
    a, b, c = (int(t) for t in model.topics["topic"].iloc[:3])
    assert persist.merge_topics(memory_db, saved.dataset_id, "first", [b], a) == 1
    assert persist.merge_topics(memory_db, saved.dataset_id, "first", [a], c) == 1  # b follows a into c
    assert persist.load_merges(memory_db, saved.dataset_id, "first") == {a: c, b: c}
    merged, _ = _run(memory_db, saved, messages)
    assert a not in set(merged.topics["topic"]) and b not in set(merged.topics["topic"])
    assert merged.topics.set_index("topic").loc[c, "merged_from"] == f"{min(a, b)}, {max(a, b)}"
    assert persist.unmerge_topic(memory_db, saved.dataset_id, "first", c) == 2
    assert persist.load_merges(memory_db, saved.dataset_id, "first") == {}
    with pytest.raises(ConfigError):
        persist.merge_topics(memory_db, saved.dataset_id, "first", [a], a)


def test_bad_names_and_ids(memory_db, sample):
    saved = store.save_messages(memory_db, sample.head(50), dataset_name="n")
    for bad in ("", "   ", "two\nlines", "x" * 81, None):
        with pytest.raises(ConfigError):
            persist.rename_topic(memory_db, saved.dataset_id, "first", 1, bad)
    with pytest.raises(ConfigError):
        persist.rename_topic(memory_db, saved.dataset_id, "first", 0, "ok")
    with pytest.raises(ConfigError):
        persist.rename_topic(memory_db, saved.dataset_id, "everything", 1, "ok")
    with pytest.raises(StoreError):
        persist.rename_topic(memory_db, 999, "first", 1, "ok")
    persist.rename_topic(memory_db, saved.dataset_id, "first", 1, "  Spaces   inside ")
    assert persist.load_names(memory_db, saved.dataset_id, "first")["name"].tolist() == ["Spaces inside"]
    assert persist.reset_name(memory_db, saved.dataset_id, "first", 1)
    assert not persist.reset_name(memory_db, saved.dataset_id, "first", 1)


def test_deleting_the_dataset_removes_its_topic_rows(memory_db, sample):
    keep = store.save_messages(memory_db, sample.head(400), dataset_name="keep")
    gone = store.save_messages(memory_db, sample.tail(400), dataset_name="gone")
    for info in (keep, gone):
        _run(memory_db, info, store.load_messages(memory_db, info.dataset_id))
        persist.rename_topic(memory_db, info.dataset_id, "first", 1, "A name")
        persist.merge_topics(memory_db, info.dataset_id, "first", [2], 1)
    removed = store.delete_dataset(memory_db, gone.dataset_id)
    assert all(removed.get(t, 0) > 0 for t in TABLES)
    for table in TABLES:
        ids = {r[0] for r in memory_db.execute(f"SELECT DISTINCT dataset_id FROM {table}").fetchall()}
        assert ids == {keep.dataset_id}
    assert persist.load_state(memory_db, gone.dataset_id, "first").snapshot is None


def test_snapshot_round_trip(memory_db, sample):
    saved = store.save_messages(memory_db, sample.head(2000), dataset_name="rt")
    model = discover_topics(store.load_messages(memory_db, saved.dataset_id), options=TopicOptions(unit="first"))
    assert persist.save_snapshot(memory_db, saved.dataset_id, "first", model.snapshot, version=1, options_key="k")
    assert not persist.save_snapshot(memory_db, saved.dataset_id, "first", model.snapshot, version=1,
                                     options_key="k")
    back = persist.load_snapshot(memory_db, saved.dataset_id, "first")
    for a, b in ((back.topics, model.snapshot.topics), (back.members, model.snapshot.members),
                 (back.terms, model.snapshot.terms)):
        assert a.reset_index(drop=True).equals(b.reset_index(drop=True))
    assert back.next_id == model.snapshot.next_id


def test_stored_conversations_follow_the_run_and_its_merges(memory_db, sample):
    info = store.save_messages(memory_db, sample.head(600), dataset_name="pairs")
    messages = store.load_messages(memory_db, info.dataset_id)
    model, _ = _run(memory_db, info, messages, unit="messages")
    pairs = persist.conversation_topics(memory_db, info.dataset_id, "messages")
    expected = model.assignments[["conversation_id", "topic"]].drop_duplicates()
    assert len(pairs) == len(expected) > 0
    assert set(map(tuple, pairs[["conversation_id", "topic"]].values.tolist())) == \
        set(map(tuple, expected.astype({"conversation_id": "str"}).values.tolist()))
    labels = dict(zip(model.topics["topic"], model.topics["label"]))
    assert (pairs["name"] == pairs["topic"].map(labels)).all()
    unit, token = persist.filter_run(memory_db, info.dataset_id)
    assert unit == "messages" and token
    assert persist.run_topic_names(memory_db, info.dataset_id, "messages") == dict(
        sorted(zip(pairs["topic"].astype(int), pairs["name"])))

    # a rename changes the shown name and the token; a repeated run writes nothing
    first = int(model.topics["topic"].iloc[0])
    persist.rename_topic(memory_db, info.dataset_id, "messages", first, "Renamed")
    assert persist.filter_run(memory_db, info.dataset_id)[1] != token
    assert set(persist.conversation_topics(memory_db, info.dataset_id, "messages").query("topic == @first")["name"]) \
        == {"Renamed"}
    key = repr(TopicOptions(unit="messages"))
    assert not persist.save_snapshot(memory_db, info.dataset_id, "messages", model.snapshot, version=info.version,
                                     options_key=key, basis=persist.load_state(memory_db, info.dataset_id,
                                                                               "messages").basis,
                                     assignments=model.assignments)

    # a merge re-runs with the same snapshot but other assignments: only the pairs are rewritten
    second = int(model.topics["topic"].iloc[1])
    persist.merge_topics(memory_db, info.dataset_id, "messages", [second], first)
    merged, _ = _run(memory_db, info, messages, unit="messages")
    pairs = persist.conversation_topics(memory_db, info.dataset_id, "messages")
    assert second not in set(pairs["topic"])
    assert set(pairs.loc[pairs["topic"] == first, "conversation_id"]) == set(
        merged.assignments.loc[merged.assignments["topic"] == first, "conversation_id"])


def test_filter_run_before_any_run_and_for_gaps_only(memory_db, sample):
    info = store.save_messages(memory_db, sample.head(300), dataset_name="nothing yet")
    assert persist.filter_run(memory_db, info.dataset_id) == (None, "")
    assert len(persist.conversation_topics(memory_db, info.dataset_id, "messages")) == 0
