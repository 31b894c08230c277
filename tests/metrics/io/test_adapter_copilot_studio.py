"""Copilot Studio adapter (metrics.io.adapters.copilot_studio) on the real Dataverse transcript export."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FUZZ_EXAMPLES, ROOT, fuzz_json, only_chatlens_errors, shared_path
from metrics.io.adapters import read
from metrics.errors import ChatlensError, ValidationError
from metrics.io.loaders import load_bytes, load_path

LABEL = "Microsoft Copilot Studio transcripts"
EXAMPLES = ("copilot_studio_transcripts", "demos", "misc", "Copilot-Studio-Advanced-Analytics", "examples")


def _path():
    return shared_path(*EXAMPLES, "conversationtranscripts.json")


def _values(frame, columns):
    return frame[columns].astype(object).where(frame[columns].notna(), None).values.tolist()


def _transcript(activities, tid="t-1", bot="cr3e5_demo"):
    return {"conversationtranscriptid": tid, "metadata": json.dumps({"BotName": bot}),
            "content": json.dumps({"activities": activities})}


def _msg(role, text, t, aid):
    return {"id": aid, "type": "message", "timestamp": t, "from": {"id": f"who-{role}", "role": role},
            "channelId": "msteams", "text": text}


def _tracing(topic, t, action_type="SendActivity"):
    return {"type": "event", "name": "DialogTracing", "timestamp": t, "from": {"id": "", "role": 0},
            "value": {"actions": [{"topicId": topic, "actionType": action_type}]}}


# --------------------------------------------------------------------------- golden counts on the real export

@pytest.mark.shared_data
def test_real_transcripts_golden_counts():
    path = _path()
    result = load_path(path)
    assert result.format == "copilot_studio"
    # Independent count straight from the JSON: message activities by from.role, and SessionInfo outcomes.
    records = json.loads(path.read_text())
    expected_users = expected_bots = 0
    outcomes, fallbacks = {}, 0
    for record in records:
        activities = json.loads(record["content"])["activities"]
        messages = [a for a in activities if a["type"] == "message"]
        expected_users += sum(a["from"]["role"] == 1 for a in messages)
        expected_bots += sum(a["from"]["role"] == 0 for a in messages)
        info = next(a["value"] for a in activities if a.get("valueType") == "SessionInfo")
        outcomes[record["conversationtranscriptid"]] = info["outcome"]
        fallbacks += sum(a.get("valueType") == "UnknownIntent" for a in activities)
    # by hand: 11 transcripts; user turns 1,1,1,1,1,4,1,0,1,0,1 = 12; bot messages 3,2,2,2,2,5,2,2,2,1,1 = 24
    assert (expected_users, expected_bots) == (12, 24)
    frame = result.frame
    assert result.conversations == 11 and len(frame) == 36
    assert (frame["speaker"] == "user").sum() == 12 and (frame["speaker"] == "bot").sum() == 24
    # 10 user questions are followed by an UnknownIntent trace -> the fallback intent; the other 2 (two
    # unengaged sessions) went to generative orchestration, whose plan ran the AddAccountRowfromCS tool
    assert fallbacks == 10
    intents = frame.loc[frame["speaker"] == "user", "intent"].value_counts().to_dict()
    assert intents == {"nlu_fallback": 10, "AddAccountRowfromCS": 2}
    # outcomes: 7 Abandoned (engaged) sessions, 4 None (unengaged) -> missing
    assert sorted(outcomes.values()).count("Abandoned") == 7 and list(outcomes.values()).count("None") == 4
    per_conv = frame.groupby("conversation_id")["outcome"].first()
    assert per_conv.eq("abandoned").sum() == 7 and per_conv.isna().sum() == 4
    assert set(frame["model_version"]) == {"cr3e5_testCopilot", "cr3e5_dorBot"}
    assert set(frame["channel"]) == {"pva-studio"}
    assert frame["message_id"].is_unique
    # epoch seconds -> UTC: the first message of the export is the greeting at 1725904553
    assert frame["timestamp"].min() == pd.Timestamp(1725904553, unit="s", tz="UTC")
    assert any("Unengaged" in n for n in result.notices) and any("isDesignMode" in n for n in result.notices)


@pytest.mark.shared_data
def test_csv_and_odata_forms_of_the_table_read_the_same():
    path = _path()
    reference = load_path(path).frame
    records = json.loads(path.read_text())
    as_csv = pd.DataFrame(records).to_csv(index=False).encode()
    odata = json.dumps({"@odata.context": "https://org.crm.dynamics.com/api/data/v9.2/$metadata#conversationtranscripts",
                        "value": records}).encode()
    for data, name in ((as_csv, "conversationtranscripts.csv"), (odata, "response.json")):
        result = load_bytes(data, name)
        assert result.format == "copilot_studio"
        pd.testing.assert_frame_equal(result.frame, reference)


@pytest.mark.shared_data
def test_a_bare_content_file_is_one_conversation():
    # content/content0.json is the parsed `content` of the first transcript record
    content = shared_path(*EXAMPLES, "content", "content0.json")
    frame = load_path(content).frame
    first = json.loads(_path().read_text())[0]["conversationtranscriptid"]
    reference = load_path(_path()).frame
    reference = reference[reference["conversation_id"] == first].reset_index(drop=True)
    assert frame["conversation_id"].unique().tolist() == ["content0"]
    cols = ["timestamp", "speaker", "text", "message_id", "intent", "outcome"]
    pd.testing.assert_frame_equal(frame[cols], reference[cols])


@pytest.mark.shared_data
def test_design_mode_transcripts_can_be_excluded_as_test_traffic():
    # every transcript of the demo export is a design-mode test: nothing is left to load, said as an error
    # (saving it would make an empty dataset)
    with pytest.raises(ChatlensError, match="every conversation is test or bot-to-bot traffic"):
        load_path(_path(), platform_options={"design_mode_is_test": True})
    with pytest.raises(ChatlensError, match="design_mode_is_test"):
        load_path(_path(), platform_options={"design_mode_is_test": "yes"})


# --------------------------------------------------------------------------- mapping rules (hand-made transcripts)

def test_topics_escalation_and_session_info():
    activities = [
        {"type": "trace", "valueType": "ConversationInfo", "timestamp": 1, "from": {"role": 0},
         "value": {"isDesignMode": False}},
        _msg(0, "Hi, how can I help?", 1_700_000_000, "a1"),
        _msg(1, "when are you open", 1_700_000_010, "a2"),
        _tracing("cr3e5_demo.topic.StoreHours", 1_700_000_011),
        _msg(0, "9 to 5.", 1_700_000_011, "a3"),
        _msg(1, "talk to a person", 1_700_000_020, "a4"),
        _tracing("cr3e5_demo.topic.Escalate", 1_700_000_021),
        _msg(0, "Transferring you now.", 1_700_000_021, "a5"),
        {"type": "trace", "valueType": "SessionInfo", "timestamp": 1_700_000_022, "from": {"role": 0},
         "value": {"type": "Engaged", "outcome": "Escalated", "outcomeReason": "UserRequestedAgent",
                   "turnCount": 3, "impliedSuccess": False}},
    ]
    table, platform = read(json.dumps([_transcript(activities)]).encode(), "t.json")
    assert platform == "copilot_studio"
    frame = load_bytes(json.dumps([_transcript(activities)]).encode(), "t.json").frame
    assert _values(frame, ["speaker", "text", "intent", "event"]) == [
        ["bot", "Hi, how can I help?", None, None],
        ["user", "when are you open", "StoreHours", None],
        ["bot", "9 to 5.", None, None],
        ["user", "talk to a person", "Escalate", "handoff"],
        ["bot", "Transferring you now.", None, None]]
    assert set(frame["outcome"]) == {"escalated"} and set(frame["escalation_reason"]) == {"UserRequestedAgent"}
    assert frame["user_id"].dropna().unique().tolist() == ["who-1"]
    assert table.frame["__turn_count"].unique().tolist() == ["3"]
    assert "is_test" not in frame.columns


def test_resolved_and_attachment_only_messages():
    activities = [_msg(1, "hi", 1_700_000_010, "u1"),
                  {"id": "b1", "type": "message", "timestamp": 1_700_000_011, "from": {"role": 0}, "text": "",
                   "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive"}]},
                  {"type": "trace", "valueType": "SessionInfo", "timestamp": 1_700_000_012, "from": {"role": 0},
                   "value": {"outcome": "Resolved", "impliedSuccess": True}}]
    frame = load_bytes(json.dumps(_transcript(activities)).encode(), "one.json").frame
    assert frame["text"].tolist() == ["hi", "[application/vnd.microsoft.card.adaptive]"]
    assert set(frame["outcome"]) == {"resolved"}


# --------------------------------------------------------------------------- broken files

@pytest.mark.shared_data
def test_truncated_export_is_refused_naming_the_platform():
    raw = _path().read_bytes()
    with pytest.raises(ValidationError) as info:
        load_bytes(raw[: len(raw) // 3], "conversationtranscripts.json")
    message = info.value.problems[0].message
    assert message.startswith(f"{LABEL}: invalid JSON") and "truncated" in message


@pytest.mark.shared_data
def test_a_cut_content_string_is_a_problem_on_its_record():
    records = json.loads(_path().read_text())
    records[3]["content"] = records[3]["content"][:500]
    data = json.dumps(records).encode()
    with pytest.raises(ValidationError) as info:
        load_bytes(data, "conversationtranscripts.json")
    problem = info.value.problems[0]
    assert (problem.row, problem.column) == (4, "content")
    assert problem.message == f"{LABEL}: record 4: 'content' is missing or not valid JSON (it may be cut)"
    skipped = load_bytes(data, "conversationtranscripts.json", on_error="skip")
    assert skipped.conversations == 10 and skipped.skipped_rows == 1


@pytest.mark.parametrize("content", [float("nan"), None, 17, "", "{not json"])
def test_a_content_that_is_not_json_text_is_a_problem_naming_its_record(content):
    """Found by the fuzz test: {"content": NaN} raised a TypeError instead of a problem."""
    data = json.dumps([{"content": content}]).encode()  # json.dumps writes NaN as the bare token NaN
    with pytest.raises(ValidationError) as info:
        load_bytes(data, "export.json", platform="copilot_studio")
    problem = info.value.problems[0]
    assert (problem.row, problem.column) == (1, "content")
    assert "'content' is missing or not valid JSON" in problem.message


def test_unknown_roles_are_reported():
    data = json.dumps([_transcript([_msg(7, "?", 1, "x")])]).encode()
    with pytest.raises(ValidationError, match=r"from.role 7 \(expected 0 = bot or 1 = user\)"):
        load_bytes(data, "t.json")


# --------------------------------------------------------------------------- CLI

@pytest.mark.shared_data
def test_cli_summary_names_the_platform():
    out = subprocess.run([sys.executable, "-m", "metrics", "summary", str(_path()), "--format", "json"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    dataset = json.loads(out.stdout)["dataset"]
    assert dataset["format"] == "copilot_studio"
    assert (dataset["conversations"], dataset["messages"]) == (11, 36)


# --------------------------------------------------------------------------- fuzz

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                     st.sampled_from(["message", "trace", "event", "SessionInfo", "UnknownIntent", "DialogTracing",
                                      "ConversationInfo", "Escalated", "x.topic.Escalate", "\ud800"]))
_KEYS = st.one_of(st.sampled_from(["activities", "type", "valueType", "from", "role", "id", "text", "timestamp",
                                   "value", "name", "actions", "topicId", "actionType", "outcome", "content",
                                   "conversationtranscriptid", "metadata", "attachments", "isDesignMode"]),
                  st.text(max_size=4))
_JSON = fuzz_json(_SCALARS, _KEYS)


@settings(max_examples=FUZZ_EXAMPLES)
@given(_JSON, st.booleans())
def test_fuzz_arbitrary_json_raises_only_chatlens_errors(payload, as_content_string):
    records = [{"conversationtranscriptid": "t", "content": json.dumps(payload) if as_content_string else payload},
               payload]
    raw = json.dumps(records).encode("utf-8", "surrogatepass")
    only_chatlens_errors(lambda: load_bytes(raw, "t.json", platform="copilot_studio", on_error="skip"))
    bare = json.dumps({"activities": payload} if isinstance(payload, list) else payload)
    only_chatlens_errors(lambda: read(bare.encode("utf-8", "surrogatepass"), "c.json", platform="copilot_studio"))


@settings(max_examples=FUZZ_EXAMPLES)
@given(st.lists(st.tuples(st.text(max_size=6), _JSON), max_size=5))
def test_fuzz_csv_table_raises_only_chatlens_errors(rows):
    frame = pd.DataFrame([{"conversationtranscriptid": tid, "content": json.dumps(content)} for tid, content in rows],
                         columns=["conversationtranscriptid", "content"])
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    raw = buffer.getvalue().encode("utf-8", "surrogatepass")
    only_chatlens_errors(lambda: load_bytes(raw, "t.csv", platform="copilot_studio", on_error="skip"))
