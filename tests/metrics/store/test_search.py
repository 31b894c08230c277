"""metrics.store.search: FTS5 search over a dataset's messages, checked against pandas on the built-in sample."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from conftest import ROOT
from metrics import store
from metrics.store import search
from metrics.errors import StoreError
from metrics.io.loaders import load_path


@pytest.fixture(scope="module")
def sample():
    return load_path(ROOT / "data" / "sample_transcripts.csv.gz").frame


@pytest.fixture
def saved(tmp_path, sample):
    db = store.connect(tmp_path / "search.db")
    result = store.save_messages(db, sample, dataset_name="sample")
    yield db, result.dataset_id
    db.close()


def expected(frame: pd.DataFrame, *words: str) -> set[str]:
    """Conversations where every word appears as a whole word (case-insensitive), by pandas."""
    keep = None
    text = frame["text"].fillna("")
    for word in words:
        pattern = r"\b" + r"\W+".join(re.escape(part) for part in word.split()) + r"\b"
        hits = set(frame.loc[text.str.contains(pattern, case=False, regex=True), "conversation_id"])
        keep = hits if keep is None else keep & hits
    return keep if keep is not None else set()


def _tables(db) -> set[str]:
    return {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'search_fts_%'")}


@pytest.mark.parametrize("word", ["cancel", "refund", "ORDER", "Password", "agent", "thanks", "card", "19"])
def test_a_word_finds_exactly_the_conversations_containing_it(saved, sample, word):
    db, dataset_id = saved
    want = expected(sample, word)
    assert want, f"pick a word of the sample: {word!r} is in no message"
    assert set(search.search(db, dataset_id, word)) == want


def test_every_word_must_appear_in_the_conversation(saved, sample):
    db, dataset_id = saved
    got = set(search.search(db, dataset_id, "refund  order"))
    assert got == expected(sample, "refund", "order") and got < expected(sample, "refund")


def test_results_come_in_dataset_order_without_duplicates(saved, sample):
    db, dataset_id = saved
    got = search.search(db, dataset_id, "order")
    order = {cid: i for i, cid in enumerate(sample["conversation_id"].drop_duplicates())}
    assert len(got) == len(set(got)) and got == sorted(got, key=order.__getitem__)


def test_an_empty_query_lists_everything(saved):
    db, dataset_id = saved
    assert search.search(db, dataset_id, "") is None
    assert search.search(db, dataset_id, "   ") is None
    assert not _tables(db)  # nothing to search for: no index built yet


@pytest.mark.parametrize("query, words", [
    ('"', []), ("*", []), ("NEAR(", ["near"]), ("a OR b", ["a", "or", "b"]), ("-x", ["x"]),
    ("'; DROP TABLE", ["drop", "table"]), ('refund" OR "x', ["refund", "or", "x"]), ("order*", ["order"]),
    ("can't", ["can t"]), ("NEAR(refund order, 2)", ["near refund", "order", "2"]), ("^order", ["order"]),
    ("col:refund", ["col refund"]), ("{text}: order", ["text", "order"]),
])
def test_hostile_queries_never_raise_and_match_literally(saved, sample, query, words):
    db, dataset_id = saved
    assert search.query_words(query) == words
    got = search.search(db, dataset_id, query)
    if not words:
        assert got is None  # no letters or digits: no restriction
    else:
        assert set(got) == expected(sample, *words)
    assert store.list_datasets(db)["id"].tolist() == [dataset_id]  # nothing dropped


def test_a_very_long_query_is_bounded(saved):
    db, dataset_id = saved
    words = search.query_words(" ".join(["x" * 10_000] * 1000))
    assert len(words) == search.MAX_WORDS and all(len(w) == search.MAX_WORD_CHARS for w in words)
    assert search.search(db, dataset_id, "y" * 100_000) == []


def test_the_index_is_built_once_and_stored_in_the_same_file(saved, sample):
    db, dataset_id = saved
    version = store.dataset_version(db, dataset_id)
    assert not search.has_index(db, dataset_id)
    search.search(db, dataset_id, "refund")
    assert search.has_index(db, dataset_id) and _tables(db) >= {search.index_table(dataset_id, version)}
    (built_at,) = db.conn.execute("SELECT built_at FROM search_indexes").fetchone()
    search.search(db, dataset_id, "order")
    assert db.conn.execute("SELECT built_at FROM search_indexes").fetchall() == [(built_at,)]
    row = db.conn.execute("SELECT messages, conversations FROM search_indexes").fetchone()
    assert row == (len(sample), sample["conversation_id"].nunique())


def test_the_index_is_dropped_with_the_dataset(saved, sample):
    db, dataset_id = saved
    other = store.save_messages(db, sample.head(100), dataset_name="other").dataset_id
    search.build_index(db, dataset_id)
    search.build_index(db, other)
    removed = store.delete_dataset(db, dataset_id)
    assert removed[search.index_table(dataset_id, 1)] == len(sample)  # emptied by delete_dataset (dataset_id)
    assert removed[search.REGISTRY] == 1
    assert _tables(db) == {search.index_table(other, 1)} | {f"{search.index_table(other, 1)}_{s}" for s in
                                                           ("data", "idx", "content", "docsize", "config")}
    assert set(search.search(db, other, "order")) == expected(sample.head(100), "order")


def test_a_new_version_rebuilds_the_index(saved, sample, tmp_path):
    db, dataset_id = saved
    first = sample[sample["conversation_id"] <= "conv-01000"]
    rest = sample[sample["conversation_id"] > "conv-01000"]
    db2 = store.connect(tmp_path / "versions.db")
    ds = store.save_messages(db2, first, dataset_name="grows").dataset_id
    assert set(search.search(db2, ds, "refund")) == expected(first, "refund")
    store.save_messages(db2, rest, dataset_name="grows")
    version = store.dataset_version(db2, ds)
    assert version == 2 and not search.has_index(db2, ds)
    assert set(search.search(db2, ds, "refund")) == expected(sample, "refund")
    names = _tables(db2)
    assert search.index_table(ds, 2) in names and not any(n.startswith(search.index_table(ds, 1)) for n in names)
    db2.close()


def test_build_right_after_a_save_uses_the_kept_frame(tmp_path, sample):
    db = store.connect(tmp_path / "kept.db")
    saved = store.save_messages(db, sample, dataset_name="kept", keep_frame=True)
    search.build_index(db, saved.dataset_id, saved.frame, version=saved.version)
    assert search.has_index(db, saved.dataset_id, saved.version)
    assert set(search.search(db, saved.dataset_id, "agent")) == expected(sample, "agent")
    db.close()


def test_an_index_of_an_older_version_never_replaces_the_current_one(saved, sample):
    db, dataset_id = saved
    store.rename_dataset(db, dataset_id, "renamed")  # version 2, while a page still shows version 1
    with pytest.raises(StoreError, match="changed meanwhile"):
        search.search(db, dataset_id, "order", messages=sample, version=1)
    assert set(search.search(db, dataset_id, "order")) == expected(sample, "order")
    assert db.conn.execute("SELECT version FROM search_indexes").fetchall() == [(2,)]
