"""Fuzzing the loaders and every platform adapter: only ChatlensError subclasses may escape.

Targets: ``load_bytes`` with ``platform="auto"`` and ``"generic"``, and ``load_bytes`` forced
through each adapter of :func:`metrics.io.adapters.list_platforms` (``platform=name``). Inputs:

* arbitrary bytes under every file-name kind (.csv .json .jsonl .tsv .gz .zip, none);
* arbitrary structured JSON (``st.recursive`` of dicts/lists/scalars, keys drawn mostly from the
  field names the adapters look for), written as JSON, JSONL or CSV, plain, gzipped or zipped;
* small valid exports of each platform, mutated (truncated, bytes flipped, slices deleted or
  repeated, hostile tokens inserted) - these reach deep into each adapter.

A load that succeeds must account for every message (see ``_check``). ``max_examples`` per test is
``CHATLENS_FUZZ_EXAMPLES`` (default 200; CI sets 2000); the number of cases each target ran
is printed at the end of the module (run with ``-s``).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import traceback
import zipfile
from collections import Counter
from pathlib import Path

import hypothesis.strategies as st
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from conftest import FIXTURES
from metrics.io import adapters
from metrics.io import pii
from metrics.errors import ChatlensError
from metrics.io.loaders import load_bytes
from metrics.io.schema import SPEAKERS

EXAMPLES = int(os.environ.get("CHATLENS_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
PLATFORMS = ["auto", "generic"] + adapters.list_platforms()
RUNS: Counter = Counter()  # (target, input kind) -> cases run
KNOWN_HITS: Counter = Counter()  # known bug -> times the fuzz met it
_LIMIT = 5_000_000  # max_expanded_bytes for every fuzz load: an archive bomb must be refused, not expanded


@pytest.fixture(scope="module", autouse=True)
def _report_case_counts():
    yield
    lines = [f"  {target:>15} {kind:<10} {n:>6}" for (target, kind), n in sorted(RUNS.items())]
    print(f"\nfuzz cases run (CHATLENS_FUZZ_EXAMPLES={EXAMPLES}), total {sum(RUNS.values())}:\n" + "\n".join(lines))
    if KNOWN_HITS:
        print("known bugs met (reported, xfail in test_hostile_inputs.py): "
              + "; ".join(f"{label}: {n}" for label, n in KNOWN_HITS.items()))


#: Bugs already reported in other modules (each has a strict xfail in test_hostile_inputs.py):
#: (file, function, exception type) of the innermost metrics frame. The fuzz counts them instead of failing.
KNOWN_BUGS: dict = {}  # all four reported bugs (zip members, bare-CR header, huge JSON ints, sub-second
# non-ISO timestamps) are fixed; add (file, function, exception type) here only for a newly reported one


def _known_bug(exc: BaseException) -> str | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/metrics/" in f.filename.replace("\\", "/")]
    if not frames:
        return None
    where = frames[-1].filename.replace("\\", "/")
    where = where[where.rindex("/metrics/") + 1:]
    for (file, function, kind), label in KNOWN_BUGS.items():
        if where == file and frames[-1].name == function and kind in (None, type(exc).__name__):
            return label
    return None


def _check(data: bytes, name: str, platform: str, kind: str) -> None:
    """Load in skip mode; only a ChatlensError may escape, and no message may vanish unaccounted.

    Accounting is per message: every message the reader produced is in the result, or belongs to a
    skipped record (``result.skipped.row``), or to an excluded test conversation.
    """
    RUNS[(platform, kind)] += 1
    try:
        result = load_bytes(data, name, platform=platform, max_expanded_bytes=_LIMIT, on_error="skip")
    except ChatlensError:
        return
    except Exception as exc:  # noqa: BLE001 - tolerate only the bugs reported already
        if _known_bug(exc) is None:
            raise
        KNOWN_HITS[_known_bug(exc)] += 1
        return
    table, _ = adapters.read(data, name, platform=platform, max_expanded_bytes=_LIMIT)
    records = table.rows if table.rows is not None else pd.Series(range(1, len(table.frame) + 1))
    skipped = set(result.skipped["row"].astype("int64")) if result.skipped_rows else set()
    dropped = int(records.isin(skipped).sum())
    frame = result.frame
    assert len(frame) + dropped + result.excluded_messages == len(table.frame)
    assert set(records) <= set(frame["row"]) | skipped | (set(records) if result.excluded_messages else set())
    assert set(frame["speaker"].dropna().unique()) <= set(SPEAKERS)
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame["conversation_id"].notna().all()
    if "confidence" in frame.columns:
        conf = frame["confidence"].dropna()
        assert ((conf >= 0) & (conf <= 1)).all()


# --------------------------------------------------------------------------- strategies

_NAMES = st.sampled_from(["f.csv", "f.tsv", "f.json", "f.jsonl", "f.ndjson", "f.txt", "f.csv.gz", "f.gz", "f.zip", "f"])

#: Field names the adapters and the generic reader look for, plus a few odd ones.
_KEYS = st.one_of(st.sampled_from([
    "conversation_id", "text", "speaker", "role", "timestamp", "messages", "conversations", "id", "type", "from",
    "content", "body", "author", "data", "value", "records", "items", "turns", "dialog", "events", "event",
    "sender_id", "parse_data", "intent", "name", "confidence", "activities", "valueType", "outcome", "turnCount",
    "channelId", "conversationtranscriptid", "conversation_name", "turn_position", "request_time", "request",
    "response", "queryResult", "queryInput", "responseMessages", "match", "conversation_signals", "turnSignals",
    "conversation_parts", "source", "part_type", "created_at", "conversation_rating", "rating", "ai_agent",
    "sessionId", "traceId", "input", "output", "observations", "scores", "dataType", "userId", "traces",
    "tweet_id", "author_id", "inbound", "in_response_to_tweet_id", "sender", "sender_class", "eval_score",
    "participant1_id", "start_time", "dialog_id", "class", "user_id", "__proto__", ""]), st.text(max_size=8))
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["user", "bot", "agent", "Human", "Bot", "assistant", "message", "trace", "SessionInfo", "1", "0",
                     "2024-01-01T10:00:00Z", "Tue Oct 31 22:10:47 +0000 2017", "1700000000", "NO_MATCH", "THUMBS_UP",
                     "session_started", "comment", "note", "admin", "BOOLEAN", "NUMERIC", "True", "", "nan"]))
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                                       st.dictionaries(_KEYS, inner, max_size=8)), max_leaves=40)


def _cell(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, allow_nan=True)


@st.composite
def _structured(draw):
    """(name, bytes): arbitrary JSON written as JSON, JSONL or CSV, plain, gzipped or zipped."""
    value = draw(_JSON)
    layout = draw(st.sampled_from(["json", "jsonl", "csv"]))
    if layout == "json":
        name, data = "export.json", json.dumps(value, allow_nan=True).encode()
    elif layout == "jsonl":
        items = value if isinstance(value, list) else [value]
        name, data = "export.jsonl", b"\n".join(json.dumps(v, allow_nan=True).encode() for v in items)
    else:
        rows = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict)] or [{"text": value}]
        header = list(dict.fromkeys(k for r in rows for k in r))
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(header)
        for r in rows:
            writer.writerow([_cell(r.get(k, "")) for k in header])
        name, data = "export.csv", buf.getvalue().encode("utf-8", "surrogatepass")
    return _wrap(draw, name, data)


def _wrap(draw, name: str, data: bytes) -> tuple[str, bytes]:
    how = draw(st.sampled_from(["plain", "plain", "gz", "zip", "noext"]))
    if how == "gz":
        return name + ".gz", gzip.compress(data, mtime=0)
    if how == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
        return "export.zip", buf.getvalue()
    if how == "noext":
        return "export", data
    return name, data


def _j(value) -> bytes:
    return json.dumps(value).encode()


def _seeds() -> list[tuple[str, bytes]]:
    """Small valid exports of every platform (and generic tables), to be mutated."""
    p = FIXTURES / "platforms"
    rasa_tracker = {"sender_id": "s1", "events": [
        {"event": "session_started", "timestamp": 1700000000},
        {"event": "user", "timestamp": 1700000001, "text": "hi",
         "parse_data": {"intent": {"name": "greet", "confidence": 0.9}}},
        {"event": "action", "timestamp": 1700000002, "name": "utter_greet"},
        {"event": "bot", "timestamp": 1700000003, "text": "hello"},
        {"event": "user", "timestamp": 1700000004, "text": "human please",
         "parse_data": {"intent": {"name": "human_handoff", "confidence": 0.8}}}]}
    copilot = {"conversationtranscriptid": "t1", "content": json.dumps({"activities": [
        {"type": "message", "id": "a1", "from": {"role": 1, "id": "u1"}, "timestamp": 1700000000, "text": "hi",
         "channelId": "msteams"},
        {"type": "trace", "valueType": "DialogTracing", "timestamp": 1700000000,
         "value": {"actions": [{"topicId": "bot.topic.Greeting", "actionType": "BeginDialog"}]}},
        {"type": "message", "id": "a2", "from": {"role": 0}, "timestamp": 1700000001, "text": "hello"},
        {"type": "trace", "valueType": "SessionInfo", "timestamp": 1700000002,
         "value": {"outcome": "Resolved", "turnCount": 1, "impliedSuccess": True}}]})}
    convai = {"dialog": [{"id": 0, "sender": "participant1", "text": "hi", "sender_class": "Human"},
                         {"id": 1, "sender": "participant2", "text": "hello", "sender_class": "Bot"}],
              "eval_score": 4, "profile_match": 1, "start_time": "2018-10-01 10:00:00",
              "end_time": "2018-10-01 10:05:00", "participant1_id": {"class": "Human", "user_id": "u1"},
              "participant2_id": {"class": "Bot", "user_id": "Bot 004"}, "dialog_id": "d1"}
    langfuse_zip = io.BytesIO()
    with zipfile.ZipFile(langfuse_zip, "w") as archive:
        archive.writestr("traces.json", (p / "langfuse_traces.json").read_bytes())
        archive.writestr("scores.json", (p / "langfuse_scores.json").read_bytes())
    return [
        ("trackers.jsonl", _j(rasa_tracker) + b"\n"),
        ("events.csv", b"id,sender_id,type_name,timestamp,intent_name,action_name,data\n"
                       b'1,s1,user,1700000001,greet,,"{""event"": ""user"", ""text"": ""hi"", ""timestamp"": 1700000001}"\n'
                       b'2,s1,bot,1700000002,,,"{""event"": ""bot"", ""text"": ""hello"", ""timestamp"": 1700000002}"\n'),
        ("conversationtranscripts.json", _j([copilot])),
        ("dfcx.jsonl", b"\n".join((p / "dialogflow_cx_bigquery.jsonl").read_bytes().splitlines()[:3]) + b"\n"),
        ("dfcx.csv", b"\n".join((p / "dialogflow_cx_bigquery.csv").read_bytes().split(b"\n")[:3]) + b"\n"),
        ("intercom.json", (p / "intercom_conversations.json").read_bytes()),
        ("traces.json", (p / "langfuse_traces.json").read_bytes()),
        ("trace.json", (p / "langfuse_trace_download.json").read_bytes()),
        ("langfuse.zip", langfuse_zip.getvalue()),
        ("twcs.csv", b"tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
                     b"1,sprintcare,False,Tue Oct 31 22:10:47 +0000 2017,@115712 I understand.,,2\n"
                     b"2,115712,True,Tue Oct 31 22:08:27 +0000 2017,@sprintcare help me,1,\n"),
        ("convai.json", _j([convai])),
        ("generic.csv", b"conversation_id,timestamp,speaker,text,intent,confidence,rating\n"
                        b"c1,2024-01-01T10:00:00Z,user,hi,greet,0.9,5\nc1,2024-01-01T10:00:05Z,bot,hello,,,5\n"),
        ("nested.json", _j({"conversations": [{"id": "c1", "messages": [{"role": "user", "content": "hi"},
                                                                        {"role": "assistant", "content": "yo"}]}]})),
    ]


SEEDS = _seeds()
_TOKENS = [b'"', b"{", b"}", b"[", b"]", b",", b":", b"\n", b"\r", b"\r\n", b"\x00", b"null", b"true", b"-1",
           b"1e400", b"NaN", b'"\\ud800"', b"\xff\xfe", b"\xef\xbb\xbf", b"\x81", b"9" * 5000, b"[" * 3000,
           b'{"a":' * 500, b"\t", b";", b'""', b"<script>", b"=1+1", b"1970-01-01", b"2024-03-10 02:30:00"]


@st.composite
def _mutated(draw):
    """(name, bytes): a seed export with 1-4 random edits."""
    name, seed = draw(st.sampled_from(SEEDS))
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "flip", "delete", "insert", "repeat"]))
        at = draw(st.integers(0, len(data)))
        if op == "truncate":
            del data[at:]
        elif op == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif op == "insert":
            data[at:at] = draw(st.sampled_from(_TOKENS))
        elif op == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 200))] * draw(st.integers(1, 20))
    return _wrap(draw, name, bytes(data)) if draw(st.booleans()) else (name, bytes(data))


# --------------------------------------------------------------------------- the fuzz tests

@pytest.mark.parametrize("platform", PLATFORMS)
@FUZZ
@given(data=st.binary(max_size=3000), name=_NAMES)
def test_arbitrary_bytes(platform, data, name):
    _check(data, name, platform, "bytes")


@pytest.mark.parametrize("platform", PLATFORMS)
@FUZZ
@given(case=_structured())
def test_arbitrary_structured_json(platform, case):
    name, data = case
    _check(data, name, platform, "json")


@pytest.mark.parametrize("platform", PLATFORMS)
@FUZZ
@given(case=_mutated())
def test_mutated_real_exports(platform, case):
    name, data = case
    _check(data, name, platform, "mutated")


@FUZZ
@given(text=st.text(max_size=200))
def test_pii_redaction_never_raises(text):
    RUNS[("pii", "text")] += 1
    out = pii.redact_text(text)
    assert pii.redact_text(out) == out
    series, counts = pii.redact_series(pd.Series([text, out], dtype="str"))
    assert series.tolist() == [out, out] and counts.total_count >= 0


def test_every_seed_is_a_valid_export():
    """The mutation seeds load cleanly, so mutations start from deep inside each adapter."""
    loaded = {}
    for name, data in SEEDS:
        result = load_bytes(data, name)
        assert len(result.frame) > 0
        loaded[name] = result.format
    assert set(loaded.values()) >= set(adapters.list_platforms())


def test_every_registered_adapter_is_fuzzed():
    assert set(adapters.list_platforms()) <= set(PLATFORMS) and len(adapters.list_platforms()) >= 7
    assert Path(__file__).read_text().count("@pytest.mark.parametrize(\"platform\", PLATFORMS)") == 3
