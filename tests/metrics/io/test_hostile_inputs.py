"""Hostile and broken exports: every case ends in an exact ValidationError or an exact load.

The committed corpus is ``tests/fixtures/hostile`` (written by its ``make_corpus.py``; expected
outcomes in its ``expected.json``); the big cases (1 MB message, 10,000 columns, 100,000 levels
of JSON nesting, zip/gzip bombs) are built in memory here. The older ``tests/fixtures/bad``
corpus is tested in test_loaders.py and not repeated.

For every case, in both ``refuse`` and ``skip`` modes: only a ChatlensError may escape, and a
load accounts for every source row (``len(frame) + skipped_rows + excluded_messages ==
source_rows``). For a subset, the UI's load-then-save runs against a real store: a refused
file leaves the store byte-for-byte unchanged, an accepted one round-trips exactly.
Known bugs in other modules are ``xfail(strict=True)`` with the exception they raise today.
"""

from __future__ import annotations

import _csv
import gzip
import io
import json
import sys
import zipfile
import zlib
from pathlib import Path

import pandas as pd
import pytest

from conftest import FIXTURES
from metrics import store
from metrics.io import adapters
from metrics.errors import ChatlensError, ValidationError
from metrics.io.loaders import load_bytes
from metrics.io.schema import SPEAKERS

HOSTILE = FIXTURES / "hostile"
sys.path.insert(0, str(HOSTILE))
import make_corpus  # noqa: E402  (the corpus generator, next to the files it writes)

EXPECTED = {k: v for k, v in json.loads((HOSTILE / "expected.json").read_text("utf-8")).items()
            if not k.startswith("_")}
_RAISES = {"Error": _csv.Error, "UnicodeEncodeError": UnicodeEncodeError, "ValueError": ValueError,
           "AssertionError": AssertionError, "error": zlib.error, "RuntimeError": RuntimeError,
           "BadZipFile": zipfile.BadZipFile, "TypeError": TypeError}
_LIMIT = 10_000_000  # max_expanded_bytes for the bombs: 10 MB


def _options(spec: dict) -> dict:
    options = dict(spec.get("options", {}))
    if "now" in options:
        options["now"] = pd.Timestamp(options["now"])
    return options


def _param(name: str, *, crash_only: bool = False):
    """A pytest param for ``name``, xfail(strict) when expected.json names a bug in another module.

    ``crash_only``: only mark cases whose bug is an exception escaping (not a wrong outcome).
    """
    spec = EXPECTED[name]
    if "xfail" in spec and not (crash_only and spec["xfail_raises"] == "AssertionError"):
        return pytest.param(name, marks=pytest.mark.xfail(strict=True, raises=_RAISES[spec["xfail_raises"]],
                                                          reason=spec["xfail"]))
    return pytest.param(name)


# --------------------------------------------------------------------------- the corpus itself

def test_corpus_matches_its_generator_and_expectations():
    cases = make_corpus.small_cases()
    files = sorted(p.name for p in HOSTILE.iterdir() if p.is_file() and p.name not in ("expected.json",
                                                                                         "make_corpus.py"))
    assert files == sorted(cases) == sorted(EXPECTED), "run tests/fixtures/hostile/make_corpus.py; every file " \
                                                        "needs an expected outcome and vice versa"
    for name, data in cases.items():
        assert (HOSTILE / name).read_bytes() == data, f"{name} is stale: run make_corpus.py"
    bad = {p.name for p in (FIXTURES / "bad").iterdir()}
    assert not (set(cases) & bad), "do not repeat the bad corpus"
    # 82 committed + 13 generated new hostile cases (the 28-file bad corpus is counted separately)
    assert len(cases) + len(make_corpus.generated_cases()) >= 40 + 40


# --------------------------------------------------------------------------- exact outcomes

def _check_error(info, name: str, expected: dict) -> None:
    problem = info.value.problems[0]
    if "file_prefix" in expected:  # a bug's fix may name the archive or its member
        assert problem.file.startswith(expected["file_prefix"])
    else:
        assert problem.file == expected.get("file", name)
    assert problem.row == expected["row"]
    assert problem.column == expected["column"]
    assert problem.message.startswith(expected["message"]), problem.message
    if "value" in expected:
        assert problem.value == expected["value"]
    if expected.get("total") is not None:
        assert info.value.total == expected["total"]
    assert problem.fix, "every problem says how to fix it"
    assert str(info.value).startswith(f"{info.value.total} problem(s): {problem.file}")


def _check_load(result, name: str, expected: dict) -> None:
    frame = result.frame
    assert frame[["conversation_id", "speaker", "text"]].values.tolist() == expected["rows"]
    assert frame["row"].tolist() == expected["row"]
    assert result.source_rows == expected["source_rows"]
    assert result.skipped_rows == expected["skipped_rows"]
    assert result.file == expected.get("file", name)
    if "format" in expected:
        assert result.format == expected["format"]
    if "timestamps" in expected:
        assert [None if pd.isna(t) else t.isoformat() for t in frame["timestamp"]] == expected["timestamps"]
    else:
        assert frame["timestamp"].isna().all()
    if "confidence" in expected:
        assert [None if pd.isna(c) else c for c in frame["confidence"]] == pytest.approx(expected["confidence"])
    if "message_id" in expected:
        assert frame["message_id"].tolist() == expected["message_id"]
    if "skipped" in expected:
        got = [[int(r.row), r.column, r.message] for r in result.skipped.itertuples()]
        assert [g[:2] for g in got] == [e[:2] for e in expected["skipped"]]
        assert all(g[2].startswith(e[2]) for g, e in zip(got, expected["skipped"]))
    for notice in expected["notices"]:
        assert any(notice in n for n in result.notices), (notice, result.notices)
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"


@pytest.mark.parametrize("name", [_param(n) for n in sorted(EXPECTED)])
def test_hostile_file_gives_the_exact_outcome(name):
    spec = EXPECTED[name]
    data = (HOSTILE / name).read_bytes()
    if "error" in spec:
        with pytest.raises(ValidationError) as info:
            load_bytes(data, name, **_options(spec))
        _check_error(info, name, spec["error"])
    else:
        _check_load(load_bytes(data, name, **_options(spec)), name, spec["load"])


@pytest.mark.parametrize("on_error", ["refuse", "skip"])
@pytest.mark.parametrize("name", [_param(n, crash_only=True) for n in sorted(EXPECTED)])
def test_no_traceback_and_no_silently_dropped_row(name, on_error):
    options = {**_options(EXPECTED[name]), "on_error": on_error}
    try:
        result = load_bytes((HOSTILE / name).read_bytes(), name, **options)
    except ChatlensError as exc:
        assert str(exc)
        return
    assert len(result.frame) + result.skipped_rows + result.excluded_messages == result.source_rows
    assert set(result.frame["speaker"].unique()) <= set(SPEAKERS)
    assert result.frame["conversation_id"].notna().all()
    if on_error == "skip":
        assert result.skipped["row"].nunique() == result.skipped_rows


@pytest.mark.parametrize("platform", adapters.list_platforms())
def test_every_adapter_refuses_every_hostile_file_cleanly(platform):
    outcomes = {}
    for name, data in {**make_corpus.small_cases(), **make_corpus.generated_cases()}.items():
        try:
            result = load_bytes(data, name, platform=platform, max_expanded_bytes=_LIMIT)
        except ChatlensError as exc:
            outcomes[name] = type(exc).__name__
            continue
        assert len(result.frame) + result.skipped_rows + result.excluded_messages == result.source_rows
        outcomes[name] = "loaded"
    assert len(outcomes) == len(make_corpus.small_cases()) + len(make_corpus.generated_cases())
    # none of these is a native export of any platform: every adapter refuses them all
    assert set(outcomes.values()) == {"ValidationError"}, {k: v for k, v in outcomes.items() if v != "ValidationError"}


# --------------------------------------------------------------------------- the store after a load (subset)

def _snapshot(path: Path) -> dict:
    """Every row of every table, as plain sqlite3 sees it."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"').fetchall())) for t in tables}
    finally:
        conn.close()


@pytest.fixture
def seeded_store(tmp_path):
    """An on-disk store holding one earlier dataset, so 'unchanged' is not trivially an empty file."""
    path = tmp_path / "store.db"
    db = store.connect(path)
    seed = load_bytes(b"conversation_id,speaker,text\ns1,user,earlier upload\ns1,bot,kept\n", "seed.csv")
    store.save_messages(db, seed.frame, dataset_name="seed", file_name="seed.csv")
    yield db, path
    db.close()


STORE_CASES = sorted(n for n, s in EXPECTED.items() if s.get("store"))


def test_store_subset_is_large_enough():
    assert len(STORE_CASES) >= 12


@pytest.mark.parametrize("name", [_param(n, crash_only=True) for n in STORE_CASES])
def test_load_then_save_leaves_no_half_written_store(name, seeded_store):
    db, path = seeded_store
    before = _snapshot(path)
    try:  # what the Data page does: load, and save only what loaded
        result = load_bytes((HOSTILE / name).read_bytes(), name, **_options(EXPECTED[name]))
    except ChatlensError:
        assert _snapshot(path) == before, "a refused file changed the store"
        return
    saved = store.save_messages(db, result.frame, dataset_name=name, file_name=name,
                                skipped_rows=result.skipped_rows)
    assert saved.new_rows + saved.duplicate_rows == len(result.frame)
    stored = store.load_messages(db, saved.dataset_id)
    expected = result.frame.sort_values(["conversation_id", "timestamp", "row"], kind="stable")
    for column in ("conversation_id", "speaker", "text", "row"):
        assert stored[column].tolist() == expected[column].tolist(), column
    assert stored["timestamp"].tolist() == expected["timestamp"].tolist()
    after = _snapshot(path)
    for table, rows in before.items():  # every row of the earlier dataset is still there, unchanged
        if table != "sqlite_sequence":  # AUTOINCREMENT counters move on
            assert set(rows) <= set(after[table]), table
    seed = store.load_messages(db, int(store.list_datasets(db)["id"].iloc[0]))
    assert seed["text"].tolist() == ["earlier upload", "kept"]


def test_a_failing_save_rolls_back_everything(seeded_store, monkeypatch):
    """A save that fails half-way (after the dataset, the load and a first part were written) leaves nothing."""
    import pyarrow as pa

    db, path = seeded_store
    before = _snapshot(path)
    result = load_bytes((HOSTILE / "html_js_markdown.csv").read_bytes(), "html_js_markdown.csv")
    calls = {"n": 0}
    real = store._encode_table
    lock = __import__("threading").Lock()

    def failing(table):
        with lock:  # parts are encoded on two threads
            calls["n"] += 1
            n = calls["n"]
        if n == 2:
            raise pa.ArrowInvalid("injected failure")
        return real(table)

    monkeypatch.setattr(store, "_PART_ROWS", 2)  # several parts: the second one fails
    monkeypatch.setattr(store, "_encode_table", failing)
    with pytest.raises(ChatlensError, match="injected failure.*Nothing was saved"):
        store.save_messages(db, result.frame, dataset_name="half", file_name="html_js_markdown.csv")
    assert calls["n"] >= 2
    assert _snapshot(path) == before


# --------------------------------------------------------------------------- the big cases (built here)

@pytest.fixture(scope="module")
def generated():
    return make_corpus.generated_cases()


@pytest.mark.parametrize("name", ["one_mb_message.csv", "one_mb_message_quoted.csv", "one_mb_message.jsonl"])
def test_a_one_megabyte_message_loads_whole(generated, name, tmp_path):
    expected = "x" * 1_000_000 if "quoted" not in name else "a,b\n" * 250_000
    result = load_bytes(generated[name], name)
    assert len(result.frame["text"].iloc[0]) == 1_000_000
    assert result.frame["text"].iloc[0] == expected
    tail = [["c1", "bot", "ok"]] if name.endswith(".csv") else []
    assert result.frame[["conversation_id", "speaker"]].values.tolist() == [["c1", "user"]] + [r[:2] for r in tail]
    assert result.source_rows == len(result.frame) == 1 + len(tail)
    db = store.connect(tmp_path / "big.db")  # and it survives the store
    saved = store.save_messages(db, result.frame, dataset_name="big")
    assert store.load_messages(db, saved.dataset_id)["text"].str.len().max() == 1_000_000
    db.close()


def test_ten_thousand_columns(generated):
    # More columns than the reader's limit (metrics.io.readers.DEFAULT_MAX_COLUMNS, 2,000): refused from the header
    # line, before parsing. Wide files within the limit, and the 20-column listing of a missing text column, are
    # tested in test_readers_limits.py.
    for name, columns in (("ten_thousand_columns.csv", 10_003), ("ten_thousand_columns_no_text.csv", 10_000)):
        with pytest.raises(ValidationError) as info:
            load_bytes(generated[name], name)
        problem = info.value.problems[0]
        assert (problem.file, problem.row, problem.column) == (name, None, None)
        assert problem.message == f"the header has {columns:,} columns, more than the 2,000 allowed"


@pytest.mark.parametrize("name,row,message", [
    ("deep_array.json", None, "the JSON is nested too deeply to read"),
    ("deep_object.json", None, "the JSON is nested too deeply to read"),
    ("deep_inside_message.json", None, "the JSON is nested too deeply to read"),
    ("deep_line.jsonl", 2, "line 2 is nested too deeply to read"),
])
def test_deep_nesting_is_a_clear_error_not_a_recursion_error(generated, name, row, message):
    with pytest.raises(ValidationError) as info:
        load_bytes(generated[name], name)
    problem = info.value.problems[0]
    assert (problem.file, problem.row, problem.column, problem.message) == (name, row, None, message)
    assert not isinstance(info.value.__context__, RecursionError) or info.value.__suppress_context__


@pytest.mark.parametrize("name,message", [
    ("zip_bomb.zip", "the zip expands to 22,000,029 bytes, more than the 10,000,000 allowed"),
    ("zip_bomb_many_members.zip", "the zip expands to 11,001,450 bytes, more than the 10,000,000 allowed"),
    ("gzip_bomb.csv.gz", "the gzip file expands to more than 10,000,000 bytes"),
])
def test_bombs_are_refused_above_the_configured_size(generated, name, message):
    data = generated[name]
    assert len(data) < 200_000  # small on the wire ...
    with pytest.raises(ValidationError) as info:
        load_bytes(data, name, max_expanded_bytes=_LIMIT)  # ... huge once expanded
    problem = info.value.problems[0]
    assert (problem.file, problem.row, problem.column) == (name, None, None)
    assert problem.message.startswith(message)
    assert "raise the expanded-size limit" in problem.fix


def test_a_zip_bomb_that_lies_about_its_size_is_refused(generated):
    name = "zip_bomb_lying_size.zip"
    with pytest.raises(ValidationError) as info:
        load_bytes(generated[name], name, max_expanded_bytes=_LIMIT)
    problem = info.value.problems[0]
    assert problem.file.startswith(name) and (problem.row, problem.column) == (None, None)


def test_the_expanded_size_limit_is_exact_and_configurable():
    data = (HOSTILE / "several_files.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        size = sum(i.file_size for i in archive.infolist() if not i.filename.endswith(".md"))
    assert load_bytes(data, "several_files.zip", max_expanded_bytes=size).source_rows == 3
    with pytest.raises(ValidationError, match=f"more than the {size - 1:,} allowed"):
        load_bytes(data, "several_files.zip", max_expanded_bytes=size - 1)
    plain = b"conversation_id,speaker,text\nc1,user,hi\n"
    packed = gzip.compress(plain, mtime=0)
    assert load_bytes(packed, "g.csv.gz", max_expanded_bytes=len(plain)).frame["text"].tolist() == ["hi"]
    with pytest.raises(ValidationError, match=f"expands to more than {len(plain) - 1:,} bytes"):
        load_bytes(packed, "g.csv.gz", max_expanded_bytes=len(plain) - 1)


def test_a_multi_member_gzip_keeps_every_row_in_an_adapter_too():
    header = b"tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
    first = header + b"1,115712,True,Tue Oct 31 22:10:47 +0000 2017,@sprintcare help,2,\n"
    second = b"2,sprintcare,False,Tue Oct 31 22:11:47 +0000 2017,@115712 sure,,1\n"
    data = gzip.compress(first, mtime=0) + gzip.compress(second, mtime=0)
    result = load_bytes(data, "twcs.csv.gz", platform="twcs")
    assert result.frame["text"].tolist() == ["@sprintcare help", "@115712 sure"]

