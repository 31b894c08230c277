"""Rasa tracker store adapter (metrics.io.adapters.rasa) on the real customer-support tracker export."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import zipfile

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FUZZ_EXAMPLES, ROOT, fuzz_json, only_chatlens_errors, shared_path
from metrics.io.adapters import read
from metrics.io.adapters.rasa import DEFAULT_HANDOFF_NAMES
from metrics.errors import ValidationError
from metrics.io.loaders import load_bytes, load_path

LABEL = "Rasa tracker store"


def _events_csv():
    return shared_path("rasa_tracker_customer_support", "events_table.csv")


def _trackers():
    return shared_path("rasa_tracker_customer_support", "trackers.jsonl")


def _tracker(*events, sender="s1") -> bytes:
    return (json.dumps({"sender_id": sender, "events": list(events)}) + "\n").encode()


def _values(frame, columns):
    """Rows as lists with None for missing values (NaN != None in comparisons)."""
    return frame[columns].astype(object).where(frame[columns].notna(), None).values.tolist()


T0 = 1_700_000_000  # 2023-11-14T22:13:20Z: hand-made trackers start here (times before 1990 are refused)


def _user(text, intent, t, confidence=0.9):
    return {"event": "user", "timestamp": T0 + t, "text": text,
            "parse_data": {"intent": {"name": intent, "confidence": confidence}, "intent_ranking": []}}


# --------------------------------------------------------------------------- golden counts on the real export

@pytest.mark.shared_data
def test_events_table_golden_counts():
    path = _events_csv()
    result = load_path(path)
    assert result.format == "rasa"
    # Independent count with pandas: events in id order, a session index per sender = the number of
    # session_started events seen so far; messages are the user and bot events.
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    raw = raw.assign(n=raw["id"].astype(int)).sort_values("n")
    raw["session"] = raw.groupby("sender_id")["type_name"].transform(lambda s: (s == "session_started").cumsum())
    msgs = raw[raw["type_name"].isin(["user", "bot"])]
    per_conv = msgs.groupby(["sender_id", "session"]).size()
    # by hand: sender 4 has sessions of 84, 2, 10 and 19 messages, sender 5 one of 4 -> 5 conversations, 119 messages
    assert per_conv.tolist() == [84, 2, 10, 19, 4]
    frame = result.frame
    assert result.conversations == 5 and len(frame) == 119
    sizes = frame.groupby("conversation_id").size()
    # ids are the sender and the session's start time (stable across overlapping exports)
    assert sizes.to_dict() == {"4:2025-04-19T06:33:13.202479Z": 84, "4:2025-04-19T12:15:27.646482Z": 2,
                               "4:2025-04-19T13:16:50.250872Z": 10, "4:2025-04-19T16:47:22.661017Z": 19,
                               "5:2025-04-19T15:34:35.181230Z": 4}
    assert (frame["speaker"] == "user").sum() == 55 == (msgs["type_name"] == "user").sum()
    assert (frame["speaker"] == "bot").sum() == 64
    users = frame[frame["speaker"] == "user"]
    expected = msgs.loc[msgs["type_name"] == "user", "intent_name"].value_counts().to_dict()
    assert users["intent"].value_counts().to_dict() == expected
    assert expected["ask_order_status"] == 29 and expected["nlu_fallback"] == 4
    assert users["confidence"].between(0.7, 1.0).all()  # min 0.7, max 0.99973 in the data column
    assert set(users["channel"]) == {"rest"}
    assert set(frame["user_id"].dropna()) == {"4", "5"}
    # the tracker spans five trained models: metadata.model_id of the message events
    models = msgs["data"].map(lambda d: json.loads(d)["metadata"]["model_id"])
    assert frame["model_version"].value_counts().to_dict() == models.value_counts().to_dict()
    assert frame["model_version"].nunique() == 5
    assert "outcome" not in frame.columns  # Rasa has no outcome field; Chatlens derives it
    assert "event" not in frame.columns  # no handoff action in this export
    assert any("5 session(s)" in n for n in result.notices)
    assert any("intent_ranking" in n for n in result.notices)


@pytest.mark.shared_data
def test_tracker_jsonl_gives_the_same_conversations_as_the_events_table():
    a = load_path(_events_csv()).frame
    b = load_path(_trackers()).frame
    cols = ["conversation_id", "timestamp", "speaker", "text", "intent", "confidence", "message_id", "user_id"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


@pytest.mark.shared_data
def test_rasa_export_event_lines_and_tracker_arrays_read_the_same():
    trackers = [json.loads(line) for line in _trackers().read_text().splitlines() if line.strip()]
    reference = load_path(_trackers()).frame
    # `rasa export` publishes one event per line, each carrying its sender_id
    lines = "\n".join(json.dumps(dict(e, sender_id=t["sender_id"])) for t in trackers for e in t["events"])
    exported = load_bytes(lines.encode(), "export.jsonl")
    assert exported.format == "rasa"
    cols = ["conversation_id", "timestamp", "speaker", "text", "intent"]
    pd.testing.assert_frame_equal(exported.frame[cols], reference[cols])
    as_array = load_bytes(json.dumps(trackers).encode(), "trackers.json").frame
    pd.testing.assert_frame_equal(as_array[cols], reference[cols])
    single = load_bytes(json.dumps(trackers[1]).encode(), "tracker.json").frame  # GET /conversations/5/tracker
    assert single["conversation_id"].unique().tolist() == ["5:2025-04-19T15:34:35.181230Z"] and len(single) == 4


@pytest.mark.shared_data
def test_gzip_and_zip_wrappers_read_the_same():
    raw = _events_csv().read_bytes()
    plain = load_bytes(raw, "events_table.csv").frame
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("dump/events_table.csv", raw)
    for data, name in ((gzip.compress(raw), "events_table.csv.gz"), (zipped.getvalue(), "dump.zip")):
        result = load_bytes(data, name)
        assert result.format == "rasa"
        pd.testing.assert_frame_equal(result.frame, plain)


# --------------------------------------------------------------------------- mapping rules (small hand-made trackers)

def test_session_started_splits_conversations_and_leading_session_events_do_not():
    data = _tracker({"event": "action", "name": "action_session_start", "timestamp": T0 + 1},
                    {"event": "session_started", "timestamp": T0 + 1},
                    _user("hi", "greet", 2), {"event": "bot", "text": "Hello!", "timestamp": T0 + 3},
                    {"event": "session_started", "timestamp": T0 + 100},
                    {"event": "session_started", "timestamp": T0 + 101},  # an empty session is not a conversation
                    _user("bye", "goodbye", 102))
    frame = load_bytes(data, "t.jsonl").frame
    assert _values(frame, ["conversation_id", "speaker", "text"]) == [
        ["s1:2023-11-14T22:13:21Z", "user", "hi"], ["s1:2023-11-14T22:13:21Z", "bot", "Hello!"],
        ["s1:2023-11-14T22:15:01Z", "user", "bye"]]  # the empty session at T0 + 100 s is not one
    assert _values(frame, ["user_id"]) == [["s1"], [None], ["s1"]]
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2023-11-14T22:13:22Z")


def test_handoff_action_marks_the_user_message_before_it():
    data = _tracker(_user("I want a person", "ask_human", 10), {"event": "action", "name": "action_handoff",
                                                                 "timestamp": T0 + 11})
    frame = load_bytes(data, "t.jsonl").frame
    assert frame["event"].tolist() == ["handoff"]
    assert frame["escalation_reason"].tolist() == ["action action_handoff"]
    assert "action_handoff" in DEFAULT_HANDOFF_NAMES


def test_handoff_names_are_configurable_and_match_intents_too():
    data = _tracker(_user("I want a person", "ask_human", 10), {"event": "bot", "text": "Connecting", "timestamp": T0 + 11})
    assert "event" not in load_bytes(data, "t.jsonl").frame.columns
    frame = load_bytes(data, "t.jsonl", platform_options={"handoff_names": ["ASK_HUMAN"]}).frame
    assert _values(frame, ["event"]) == [["handoff"], [None]]
    assert frame["escalation_reason"].tolist() == ["intent ask_human"] * 2  # a conversation field


def test_handoff_without_a_user_message_is_a_system_row():
    data = _tracker({"event": "bot", "text": "Hi", "timestamp": T0 + 1}, {"event": "action", "name": "human_handoff",
                                                                      "timestamp": T0 + 2})
    frame = load_bytes(data, "t.jsonl").frame
    assert _values(frame, ["speaker", "text", "event"]) == [["bot", "Hi", None], ["system", "", "handoff"]]


def test_intent_ranking_is_kept_in_an_internal_column_and_counted():
    ranking = [{"name": "greet", "confidence": 0.8}, {"name": "bye", "confidence": 0.2}]
    event = _user("hi", "greet", 1, 0.8)
    event["parse_data"]["intent_ranking"] = ranking
    table, _ = read(_tracker(event), "t.jsonl")
    assert json.loads(table.frame["__intent_ranking"].iloc[0]) == ranking
    assert any("1 user message(s) carry an intent_ranking" in n for n in table.notices)


def test_bot_events_without_text_show_what_they_sent():
    data = _tracker({"event": "bot", "text": None, "timestamp": T0 + 1, "data": {"buttons": [{"title": "Yes"}]}})
    assert load_bytes(data, "t.jsonl").frame["text"].tolist() == ["[buttons]"]


def test_events_table_without_data_falls_back_on_its_columns():
    csv = ("id,sender_id,type_name,timestamp,intent_name,action_name,data\n"
           "1,u9,user,1700000000.5,greet,,\n"
           "2,u9,action,1700000001,,action_handoff,\n")
    frame = load_bytes(csv.encode(), "events.csv").frame
    assert _values(frame, ["conversation_id", "speaker", "intent", "event"]) == [
        ["u9:2023-11-14T22:13:20.500000Z", "user", "greet", "handoff"]]


# --------------------------------------------------------------------------- broken files

@pytest.mark.shared_data
def test_truncated_tracker_jsonl_is_refused_naming_the_platform_and_line():
    raw = _trackers().read_bytes()
    with pytest.raises(ValidationError) as info:
        load_bytes(raw[: len(raw) // 2], "trackers.jsonl")
    problem = info.value.problems[0]
    assert problem.message.startswith(f"{LABEL}: line 1 is not valid JSON")
    assert "truncated" in problem.fix and problem.row == 1


@pytest.mark.shared_data
def test_truncated_events_table_names_the_cut_record():
    raw = _events_csv().read_bytes()
    with pytest.raises(ValidationError) as info:
        load_bytes(raw[:-40], "events_table.csv")
    problem = info.value.problems[0]
    assert problem.row == 474 and problem.column == "data"
    assert problem.message == f"{LABEL}: record 474: the data column is not valid JSON (it is the last record: " \
                              "the file looks truncated)"
    skipped = load_bytes(raw[:-40], "events_table.csv", on_error="skip")
    assert skipped.skipped_rows == 1 and len(skipped.frame) == 119  # record 474 is an action, not a message


def test_a_tracker_without_sender_id_is_a_problem_row():
    data = _tracker(_user("hi", "greet", 1)) + json.dumps({"events": [_user("x", "y", 2)]}).encode() + b"\n"
    with pytest.raises(ValidationError, match=f"{LABEL}: record 2 has no sender_id"):
        load_bytes(data, "t.jsonl")
    assert len(load_bytes(data, "t.jsonl", on_error="skip").frame) == 1


def test_forced_on_a_foreign_file_the_error_says_what_is_missing():
    with pytest.raises(ValidationError) as info:
        load_bytes(b"a,b\n1,2\n", "x.csv", platform="rasa")
    assert "Rasa tracker store: the header lacks column(s) sender_id, type_name (it has: a, b)" in str(info.value)


# --------------------------------------------------------------------------- CLI

@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["events_table.csv", "trackers.jsonl"])
def test_cli_summary_names_the_platform(name):
    path = shared_path("rasa_tracker_customer_support", name)
    out = subprocess.run([sys.executable, "-m", "metrics", "summary", str(path), "--format", "json"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    dataset = json.loads(out.stdout)["dataset"]
    assert dataset["format"] == "rasa"
    assert dataset["conversations"] == 5 and dataset["messages"] == 119


# --------------------------------------------------------------------------- fuzz

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                     st.sampled_from(["user", "bot", "action", "session_started", "human_handoff", "\ud800"]))
_KEYS = st.one_of(st.sampled_from(["sender_id", "events", "event", "text", "parse_data", "intent", "name",
                                   "confidence", "timestamp", "metadata", "intent_ranking", "data", "model_id"]),
                  st.text(max_size=4))
_JSON = fuzz_json(_SCALARS, _KEYS)


@settings(max_examples=FUZZ_EXAMPLES)
@given(_JSON, st.booleans())
def test_fuzz_arbitrary_json_raises_only_chatlens_errors(payload, as_lines):
    if as_lines and isinstance(payload, list):
        data = "\n".join(json.dumps(p) for p in payload)
    else:
        data = json.dumps({"sender_id": "s", "events": payload} if isinstance(payload, list) else payload)
    raw = data.encode("utf-8", "surrogatepass")
    only_chatlens_errors(lambda: read(raw, "t.jsonl" if as_lines else "t.json", platform="rasa"))
    only_chatlens_errors(lambda: load_bytes(raw, "t.json", platform="rasa", on_error="skip"))


@settings(max_examples=FUZZ_EXAMPLES)
@given(st.lists(st.tuples(st.sampled_from(["s1", "s2", ""]), st.sampled_from(["user", "bot", "action", "slot",
                                                                               "session_started", ""]),
                          _JSON), max_size=8))
def test_fuzz_events_table_rows_raise_only_chatlens_errors(rows):
    lines = ["id,sender_id,type_name,timestamp,intent_name,action_name,data"]
    for i, (sender, kind, payload) in enumerate(rows):
        cell = json.dumps(json.dumps(payload))  # a CSV-quoted JSON cell
        lines.append(f"{i},{sender},{kind},{i},,,{cell}")
    raw = "\n".join(lines).encode("utf-8", "surrogatepass")
    only_chatlens_errors(lambda: load_bytes(raw, "events.csv", platform="rasa", on_error="skip"))
