"""Streamed ingest of a large CSV (metrics/io/stream.py, metrics.cli_ingest.ingest_streaming).

The streaming size is lowered with ``CHATLENS_STREAM_MIN_BYTES`` so small files take the streamed path;
each test compares it with the ordinary whole-file load of the same file.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT
from metrics import store
from metrics.cli_ingest import ingest, ingest_streaming
from metrics.errors import ValidationError
from metrics.io import stream
from metrics.io.loaders import load_path
from metrics.summary import build_summary


@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "sample.csv"
    path.write_bytes(gzip.decompress((ROOT / "data" / "sample_transcripts.csv.gz").read_bytes()))
    return path


def _summary(db, name):
    from metrics.cli_ingest import stored_result

    return build_summary(stored_result(db, name))


def test_a_streamed_ingest_stores_exactly_what_the_whole_file_load_stores(sample_csv, tmp_path):
    a, b = store.connect(tmp_path / "a.db"), store.connect(tmp_path / "b.db")
    key = store.pseudonym_key(a)
    whole = ingest(a, load_path(sample_csv, pseudonym_key=key), dataset="d")
    parts = []
    streamed = ingest_streaming(b, sample_csv, dataset="d", pseudonym_key=key,
                                progress=lambda done, total: parts.append((done, total)))
    assert (streamed.new, streamed.duplicates, streamed.messages, streamed.conversations) == \
        (whole.new, whole.duplicates, whole.messages, whole.conversations) == (29948, 0, 29948, 2955)
    assert len(parts) > 1 and parts[-1][0] == parts[-1][1]
    # the same sentences, with the counts of the parts added up
    assert streamed.notices == whole.notices
    left, right = _summary(a, "d"), _summary(b, "d")
    for section in left:
        if section != "dataset":
            assert json.dumps(left[section]) == json.dumps(right[section]), section
    # the rows keep their numbers in the original file
    fa, fb = store.load_messages(a, 1), store.load_messages(b, 1)
    pd.testing.assert_frame_equal(fa.sort_values("row").reset_index(drop=True),
                                  fb.sort_values("row").reset_index(drop=True))
    # a second ingest of the same file adds nothing: every message is a duplicate
    again = ingest_streaming(b, sample_csv, dataset="d", pseudonym_key=key)
    assert again.new == 0 and again.duplicates == 29948


def test_a_bad_row_in_a_later_part_names_its_row_in_the_file_and_saves_nothing(tmp_path):
    rows = ["conversation_id,timestamp,speaker,text"]
    for i in range(400):
        rows.append(f"c{i % 40},2026-08-03T10:{i % 60:02d}:00Z,user,message {i}")
    rows[351] = "c10,not a time,user,broken"  # record 351 of the file
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(rows) + "\n")
    db = store.connect(tmp_path / "s.db")
    with pytest.raises(ValidationError) as err:
        ingest_streaming(db, path, dataset="d")
    assert [(p.row, p.column) for p in err.value.problems] == [(351, "timestamp")]
    assert "bad.csv" in str(err.value)
    assert len(store.list_datasets(db)) == 0  # one transaction: no part was kept
    # --skip-bad-rows: every other row is stored, the bad one is reported with its number
    ok = ingest_streaming(db, path, dataset="d", on_error="skip")
    assert ok.new == 399 and ok.skipped == 1
    assert 351 not in set(store.load_messages(db, ok.dataset_id)["row"])


def test_a_large_file_without_conversation_ids_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "nlu.csv"
    path.write_text("text,intent\n" + "".join(f"hello {i},greet\n" for i in range(50)))
    with pytest.raises(ValidationError, match="no conversation id column") as err:
        stream.spill(path)
    assert "map the column" in err.value.problems[0].fix


def test_only_plain_generic_csv_is_streamed(tmp_path, sample_csv):
    assert stream.can_stream(sample_csv, min_bytes=1000)
    assert not stream.can_stream(sample_csv)  # 5 MB: under the default 256 MiB
    assert not stream.can_stream(ROOT / "data" / "sample_transcripts.csv.gz", min_bytes=1)
    assert not stream.can_stream(sample_csv, platform="rasa", min_bytes=1)


def test_a_native_platform_csv_is_never_streamed(shared_data):
    twcs = shared_data("twcs_sample", "twcs.csv")
    assert not stream.can_stream(twcs, min_bytes=1)


def test_the_cli_streams_a_large_file_and_prints_progress(sample_csv, tmp_path):
    db = tmp_path / "cli.db"
    proc = subprocess.run([sys.executable, "-m", "metrics", "ingest", str(sample_csv), "--db", str(db),
                           "--dataset", "big", "--format", "json"], capture_output=True, text=True, cwd=ROOT,
                          env={**__import__("os").environ, "CHATLENS_STREAM_MIN_BYTES": "1000"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "ingest: part" in proc.stderr
    out = json.loads(proc.stdout)
    assert out["new"] == 29948 and out["conversations"] == 2955


def test_merge_notices_adds_counts_and_keeps_file_level_sentences_once():
    merged = stream.merge_notices([["Ignored 2 column(s) not in the Chatlens format: a, b", "Skipped 3 row(s)."],
                                   ["Ignored 2 column(s) not in the Chatlens format: a, b", "Skipped 4 row(s)."]])
    assert merged == ["Ignored 2 column(s) not in the Chatlens format: a, b", "Skipped 7 row(s)."]


def test_a_message_id_repeated_in_another_part_is_a_problem_as_in_the_whole_file_load(tmp_path):
    rows = ["conversation_id,message_id,speaker,text"]
    for i in range(300):
        rows.append(f"c{i % 30},m{i},user,message {i}")
    rows.append("c7,m3,user,same id as record 4 in another conversation")  # record 301 repeats m3 (record 4)
    path = tmp_path / "ids.csv"
    path.write_text("\n".join(rows) + "\n")
    spilled = stream.spill(path, buckets=8)
    try:
        assert spilled.repeated_ids.tolist() == [301]
    finally:
        spilled.close()
    db = store.connect(tmp_path / "s.db")
    with pytest.raises(ValidationError) as err:
        ingest_streaming(db, path, dataset="d")
    assert [(p.row, p.column, p.message) for p in err.value.problems] == [(301, "message_id", "duplicate message id")]
    whole = pytest.raises(ValidationError, load_path, path)
    assert [p.row for p in whole.value.problems] == [301]  # the same row the whole-file load names
    ok = ingest_streaming(db, path, dataset="d", on_error="skip")
    assert (ok.new, ok.skipped) == (300, 1)
    assert any(n.startswith("Skipped 1 row(s)") for n in ok.notices)


def test_a_record_with_too_many_fields_is_named_by_its_number_and_later_rows_keep_theirs(tmp_path):
    rows = ["conversation_id,speaker,text"] + [f"c{i % 20},user,message {i}" for i in range(200)]
    rows[120] = "c3,user,an unquoted, comma"  # record 120
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(rows) + "\n")
    db = store.connect(tmp_path / "s.db")
    with pytest.raises(ValidationError) as err:
        ingest_streaming(db, path, dataset="d")
    assert [p.row for p in err.value.problems] == [120]
    ok = ingest_streaming(db, path, dataset="d", on_error="skip")
    assert (ok.new, ok.skipped) == (199, 1)
    stored = store.load_messages(db, ok.dataset_id)
    by_row = dict(zip(stored["row"], stored["text"]))
    assert 120 not in by_row and by_row[121] == "message 120" and by_row[200] == "message 199"
