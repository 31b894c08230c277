"""Langfuse adapter (metrics.io.adapters.langfuse) on hand-built exports in Langfuse's documented shapes.

Fixtures (tests/fixtures/platforms):
* langfuse_traces.json: a GET /api/public/traces page ({"data": [...], "meta": {...}}) of five traces with the
  API's camelCase fields (id, timestamp, name, input, output, sessionId, release, version, userId, metadata,
  tags, environment, htmlPath, latency, totalCost): sess-A has two turns (a chat-format input), sess-B two turns
  (object inputs/outputs; the second trace has no output), and t5 has no session.
* langfuse_scores.json: a scores page (traceId, name, value, stringValue, dataType, source, comment, timestamp):
  two BOOLEAN user-feedback scores on sess-A (up, then a later down), a NUMERIC csat of 2 on sess-B, two EVAL
  "correctness" scores (LLM-as-a-judge) and one feedback score on a trace that is not in the export.
* langfuse_trace_download.json: the UI's "Download JSON" of trace t3 with its observations and scores.
* langfuse_blob/traces.jsonl, scores.jsonl: the same data as the blob-storage export writes it (snake_case,
  naive "YYYY-MM-DD HH:MM:SS.ffffff" UTC times, input/output as JSON text).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, FUZZ_EXAMPLES, ROOT, fuzz_json, only_chatlens_errors
from metrics.io.adapters import read
from metrics.io.adapters.langfuse import message_text
from metrics.errors import ValidationError
from metrics.io.loaders import load_bytes, load_path

LABEL = "Langfuse traces/scores export"
DIR = FIXTURES / "platforms"
TRACES = DIR / "langfuse_traces.json"
SCORES = DIR / "langfuse_scores.json"


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _first(frame, column):
    values = frame.groupby("conversation_id")[column].first()
    return values.astype(object).where(values.notna(), None).to_dict()


def test_traces_golden_counts():
    result = load_path(TRACES)
    assert result.format == "langfuse"
    frame = result.frame
    traces = json.loads(TRACES.read_text())["data"]
    # Independent count: one user message per trace with an input, one bot message per trace with an output;
    # a conversation per sessionId, or per trace without one.
    assert sum(t["input"] is not None for t in traces) == 5 and sum(t["output"] is not None for t in traces) == 4
    assert {t["sessionId"] or t["id"] for t in traces} == {"sess-A", "sess-B", "t5"}
    assert result.conversations == 3 and len(frame) == 9
    assert frame.groupby("conversation_id").size().to_dict() == {"sess-A": 4, "sess-B": 3, "t5": 2}
    assert frame["speaker"].value_counts().to_dict() == {"user": 5, "bot": 4}
    texts = frame.set_index("message_id")["text"]
    assert texts["t1:input"] == "How do I export my invoices?"  # the last user message of the chat input
    assert texts["t1:output"] == "Go to Billing > Invoices and click Export CSV."
    assert texts["t3:input"] == "Cancel my plan" and texts["t3:output"].startswith("I can't cancel plans")
    assert _first(frame, "model_version") == {"sess-A": "v1.4.0", "sess-B": "v1.5.0-rc1", "t5": "2"}
    assert _first(frame, "user_id") == {"sess-A": "u-1", "sess-B": "u-2", "t5": "u-3"}
    # the reply is dated timestamp + latency: 09:00:00 + 1.84 s
    stamps = frame.set_index("message_id")["timestamp"]
    assert stamps["t1:output"] - stamps["t1:input"] == pd.Timedelta(seconds=1.84)
    assert "rating" not in frame.columns and "thumbs" not in frame.columns


def test_scores_in_the_same_zip_become_ratings_and_thumbs():
    data = _zip({"traces.json": TRACES.read_bytes(), "scores.json": SCORES.read_bytes()})
    result = load_bytes(data, "langfuse-export.zip")
    frame = result.frame
    # by hand: sess-A got feedback 1 (09:00:30) then 0 (09:02:00): the latest, down, wins; sess-B a csat of 2
    assert _first(frame, "thumbs") == {"sess-A": "down", "sess-B": None, "t5": None}
    assert _first(frame, "rating") == {"sess-A": None, "sess-B": 2.0, "t5": None}
    # the two LLM-as-a-judge correctness scores (0.9, 0.7) are audit-style: summarised, not loaded
    assert any("correctness: 2 score(s), mean 0.8" in n for n in result.notices)
    assert any("1 rating/feedback score(s) belong to traces not in the file" in n for n in result.notices)


def test_blob_storage_export_reads_like_the_api_export():
    blob = _zip({"traces/2026-03-03.jsonl": (DIR / "langfuse_blob" / "traces.jsonl").read_bytes(),
                 "scores/2026-03-03.jsonl": (DIR / "langfuse_blob" / "scores.jsonl").read_bytes()})
    api = _zip({"traces.json": TRACES.read_bytes(), "scores.json": SCORES.read_bytes()})
    a, b = load_bytes(blob, "blob.zip").frame, load_bytes(api, "api.zip").frame
    cols = ["conversation_id", "speaker", "text", "message_id", "user_id", "model_version", "rating", "thumbs"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    # blob times are naive but documented as UTC; it has no latency, so replies carry the trace time
    assert a["timestamp"].iloc[0] == pd.Timestamp("2026-03-02T09:00:00Z")


def test_csv_export_of_the_traces_table():
    traces = json.loads(TRACES.read_text())["data"]
    table = pd.DataFrame([{k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in t.items()}
                          for t in traces])
    result = load_bytes(table.to_csv(index=False).encode(), "traces.csv")
    assert result.format == "langfuse"
    pd.testing.assert_frame_equal(result.frame, load_path(TRACES).frame)


def test_single_trace_download_with_nested_scores():
    result = load_path(DIR / "langfuse_trace_download.json")
    frame = result.frame
    assert frame["message_id"].tolist() == ["t3:input", "t3:output"]
    assert set(frame["rating"]) == {2.0}
    assert any("1 observation(s) are not messages" in n for n in result.notices)


def test_root_observations_stand_in_when_there_are_no_traces():
    observations = [
        {"id": "o1", "traceId": "t1", "type": "SPAN", "name": "chat", "startTime": "2026-03-02T09:00:00Z",
         "endTime": "2026-03-02T09:00:02Z", "parentObservationId": None, "input": "hi", "output": "hello"},
        {"id": "o2", "traceId": "t1", "type": "GENERATION", "name": "llm", "startTime": "2026-03-02T09:00:00.5Z",
         "endTime": "2026-03-02T09:00:01.9Z", "parentObservationId": "o1", "input": "hi", "output": "hello"},
    ]
    result = load_bytes(json.dumps(observations).encode(), "observations.json")
    assert result.format == "langfuse"
    assert result.frame[["speaker", "text"]].values.tolist() == [["user", "hi"], ["bot", "hello"]]
    assert result.frame["timestamp"].tolist() == [pd.Timestamp("2026-03-02T09:00:00Z"),
                                                  pd.Timestamp("2026-03-02T09:00:02Z")]
    assert any("1 root observation(s) of 2" in n for n in result.notices)


def test_score_names_are_configurable():
    data = _zip({"traces.json": TRACES.read_bytes(), "scores.json": SCORES.read_bytes()})
    frame = load_bytes(data, "x.zip", platform_options={"rating_scores": ["correctness"],
                                                        "thumbs_scores": ["none"]}).frame
    # correctness 0.9 / 0.7 are outside 1-5, so no rating; user-feedback is still BOOLEAN -> thumbs
    assert "rating" not in frame.columns and _first(frame, "thumbs")["sess-A"] == "down"


def test_message_text_shapes():
    assert message_text("plain", "user") == "plain"
    assert message_text('"quoted"', "user") == "quoted"
    assert message_text([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "assistant") == "b"
    assert message_text({"choices": [{"message": {"role": "assistant", "content": "c"}}]}, "assistant") == "c"
    assert message_text({"unknown": 1}, "user") == '{"unknown": 1}'
    assert message_text(42, "user") == "42"


def test_scores_alone_are_refused_with_a_reason():
    with pytest.raises(ValidationError, match=re.escape(f"{LABEL}: the file holds scores but no traces")):
        load_path(SCORES)


def test_truncated_export_is_refused_naming_the_platform():
    raw = TRACES.read_bytes()
    with pytest.raises(ValidationError) as info:
        load_bytes(raw[: len(raw) // 2], "langfuse_traces.json")
    message = info.value.problems[0].message
    assert message.startswith(f"{LABEL}: invalid JSON") and "truncated" in message


def test_a_record_that_is_no_trace_is_a_problem_row():
    traces = json.loads(TRACES.read_text())["data"]
    data = json.dumps(traces + [{"hello": "world"}]).encode()
    with pytest.raises(ValidationError, match=re.escape(f"{LABEL}: record 6 is neither a trace")):
        load_bytes(data, "t.json", platform="langfuse")


def test_cli_summary_names_the_platform():
    out = subprocess.run([sys.executable, "-m", "metrics", "summary", str(TRACES), "--format", "json"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    dataset = json.loads(out.stdout)["dataset"]
    assert dataset["format"] == "langfuse"
    assert (dataset["conversations"], dataset["messages"]) == (3, 9)


# --------------------------------------------------------------------------- fuzz

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                     st.sampled_from(["BOOLEAN", "NUMERIC", "user-feedback", "csat", '{"messages": []}', "\ud800",
                                      "2026-03-02 09:00:00.000000", "user", "assistant"]))
_KEYS = st.one_of(st.sampled_from(["id", "timestamp", "input", "output", "sessionId", "userId", "release",
                                   "version", "latency", "htmlPath", "traceId", "name", "value", "dataType",
                                   "stringValue", "messages", "role", "content", "choices", "traces",
                                   "observations", "scores", "startTime", "type", "parentObservationId"]),
                  st.text(max_size=4))
_JSON = fuzz_json(_SCALARS, _KEYS)


@settings(max_examples=FUZZ_EXAMPLES)
@given(_JSON, st.lists(st.tuples(st.sampled_from(["input", "output", "sessionId", "timestamp", "latency", "id",
                                                  "traceId", "value", "name", "dataType"]), _JSON), max_size=4))
def test_fuzz_arbitrary_json_raises_only_chatlens_errors(payload, replacements):
    records = json.loads(TRACES.read_text())["data"] + json.loads(SCORES.read_text())["data"]
    for i, (key, value) in enumerate(replacements):
        records[(i * 3) % len(records)][key] = value
    raw = json.dumps(records + [payload]).encode("utf-8", "surrogatepass")
    only_chatlens_errors(lambda: load_bytes(raw, "t.json", platform="langfuse", on_error="skip"))
    only_chatlens_errors(lambda: message_text(payload, "user"))
    only_chatlens_errors(lambda: read(json.dumps(payload).encode("utf-8", "surrogatepass"), "t.json",
                                      platform="langfuse"))
