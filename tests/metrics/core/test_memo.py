"""metrics.core.memo: a result is reused only for frames with the same data, and cannot be changed through a caller."""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd
import pytest

from conftest import messages_frame
from metrics import outcomes
from metrics.outcomes import escalation
from metrics.core import memo
from metrics.core.rollup import conversation_rollup


@pytest.fixture(autouse=True)
def fresh_memo():
    memo.clear()
    yield
    memo.clear()


def _frame() -> pd.DataFrame:
    return messages_frame([
        {"conversation_id": "a", "timestamp": "2026-08-03T10:00:00Z", "speaker": "user", "text": "hi",
         "confidence": 0.5, "is_test": False},
        {"conversation_id": "a", "timestamp": "2026-08-03T10:01:00Z", "speaker": "bot", "text": "Which order?",
         "confidence": None, "is_test": None},
        {"conversation_id": "b", "timestamp": "2026-08-03T11:00:00Z", "speaker": "user",
         "text": "let me speak to a person", "confidence": 0.9, "is_test": True},
        {"conversation_id": "b", "timestamp": "2026-08-03T11:02:00Z", "speaker": "agent", "text": "Ana here",
         "confidence": None, "is_test": None},
    ])


def _counting(value):
    calls = []

    def compute():
        calls.append(1)
        return value() if callable(value) else value

    return compute, calls


def test_equal_data_is_computed_once_and_other_options_again():
    f = _frame()
    hits = memo.stats()["hits"]
    compute, calls = _counting(lambda: f["confidence"].sum())
    assert memo.cached("t", (f,), 1, compute) == 1.4
    assert memo.cached("t", (f,), 1, compute) == 1.4
    assert memo.cached("t", (f.copy(),), 1, compute) == 1.4  # a copy shares the Arrow arrays, same numbers
    assert memo.cached("t", (f[list(f.columns)],), 1, compute) == 1.4
    assert len(calls) == 1
    memo.cached("t", (f,), 2, compute)  # other options
    memo.cached("u", (f,), 1, compute)  # another derivation
    assert len(calls) == 3
    assert memo.stats()["hits"] - hits == 3


CHANGES = {
    "float in place": lambda f: f.loc.__setitem__((0, "confidence"), 0.75),
    "timestamp in place": lambda f: f.loc.__setitem__((1, "timestamp"), pd.Timestamp("2030-01-01", tz="UTC")),
    "NaT in place": lambda f: f.loc.__setitem__((3, "timestamp"), pd.NaT),
    "boolean in place": lambda f: f.loc.__setitem__((2, "is_test"), False),
    "boolean mask in place": lambda f: f.loc.__setitem__((2, "is_test"), pd.NA),
    "Arrow string": lambda f: f.loc.__setitem__((0, "text"), "hello"),
    "missing string": lambda f: f.loc.__setitem__((3, "text"), None),
    "column replaced": lambda f: f.__setitem__("row", f["row"].to_numpy()[::-1].copy()),
    "column renamed": lambda f: setattr(f, "columns", [c if c != "text" else "body" for c in f.columns]),
    "index changed": lambda f: setattr(f, "index", pd.Index([5, 6, 7, 8])),
}


@pytest.mark.parametrize("change", list(CHANGES.values()), ids=list(CHANGES))
def test_a_frame_changed_in_place_is_a_new_key(change):
    f = _frame()
    compute, calls = _counting(1)
    memo.cached("t", (f,), None, compute)
    memo.cached("t", (f,), None, compute)
    assert len(calls) == 1
    change(f)
    memo.cached("t", (f,), None, compute)
    assert len(calls) == 2


def test_a_frame_of_python_objects_is_not_cached():
    f = pd.DataFrame({"x": pd.Series([{"a": 1}, [2]], dtype=object)})
    compute, calls = _counting(3)
    assert memo.cached("t", (f,), None, compute) == 3
    assert memo.cached("t", (f,), None, compute) == 3
    assert len(calls) == 2


def test_results_cannot_be_changed_through_the_caller():
    f = _frame()
    table = memo.cached("frame", (f,), None, lambda: pd.DataFrame({"n": [1, 2]}))
    table.loc[0, "n"] = 99  # changes the caller's copy only
    assert memo.cached("frame", (f,), None, lambda: None)["n"].tolist() == [1, 2]
    array = memo.cached("array", (f,), None, lambda: np.array([1, 2]))
    with pytest.raises(ValueError):
        array[0] = 99


def test_an_entry_dies_with_its_arrow_array():
    f = _frame()
    memo.cached("t", (f,), None, lambda: 1)
    assert memo.stats()["entries"] == 1
    del f
    gc.collect()
    assert memo.stats()["entries"] == 0


def test_at_most_max_entries_are_kept(monkeypatch):
    monkeypatch.setattr(memo, "MAX_ENTRIES", 3)
    f = _frame()
    for k in range(5):
        memo.cached("t", (f,), k, lambda: k)
    assert memo.stats()["entries"] == 3


def test_metric_results_follow_a_changed_frame():
    """The cached intermediate tables of outcomes and escalation see a frame changed in place."""
    m = _frame()
    r = conversation_rollup(m)
    first = outcomes.outcome_table(m, r)
    assert escalation.escalation_table(m, r)["conversation_id"].tolist() == ["b"]
    m.loc[3, "speaker"] = "bot"  # the agent message becomes a bot message: no escalation any more
    r2 = conversation_rollup(m)
    assert escalation.escalation_table(m, r2).empty
    pd.testing.assert_frame_equal(outcomes.outcome_table(m, r2), outcomes.outcome_table(m.copy(deep=True), r2))
    assert not outcomes.outcome_table(m, r2).equals(first)


def test_funnel_reach_is_shared_by_a_scored_copy_but_not_when_a_field_stage_column_differs():
    from metrics import funnel

    m = _frame().assign(event=pd.array(["inquiry", None, "inquiry", None], dtype="str"))
    stages = [funnel.parse_stage("asked=event:inquiry"), funnel.parse_stage("flag=field:is_test=true")]
    first = funnel.funnel_table(m, stages, strict=True)
    misses = memo.stats()["misses"]
    scored = m.assign(compound=[0.1, 0.2, 0.3, 0.4])  # a column no stage reads
    pd.testing.assert_frame_equal(funnel.funnel_table(scored, stages, strict=True), first)
    assert memo.stats()["misses"] == misses  # reach and positions came from the memo
    flipped = m.assign(is_test=pd.array([False, None, False, None], dtype="boolean"))  # the field stage column
    assert not funnel.funnel_table(flipped, stages, strict=True).equals(first)
