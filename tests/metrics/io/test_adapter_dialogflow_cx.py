"""Dialogflow CX adapter (metrics.io.adapters.dialogflow_cx) on a hand-built BigQuery interaction-log export.

tests/fixtures/platforms/dialogflow_cx_bigquery.jsonl (and the same rows as .csv) follow Google's documented
table: project_id, agent_id, conversation_name, turn_position, request_time, language_code, request
(DetectIntentRequest), response (DetectIntentResponse), partial_responses, derived_data (agentUtterances),
conversation_signals ({"turnSignals": {noMatch, userEscalated, agentEscalated, triggeredAbandonmentEvent,
reachedEndPage, sentimentScore, ...}}) and bot_answer_feedback ({"rating": "THUMBS_UP" | "THUMBS_DOWN"}).
Three sessions: s-1001 (welcome event, an order question, a request for a person: escalated), s-1002 (a
no-match turn with thumbs down, then an abandonment event) and s-1003 (two answers to one question, thumbs up).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, FUZZ_EXAMPLES, ROOT, fuzz_json, only_chatlens_errors
from metrics.io.adapters import read
from metrics.errors import ValidationError
from metrics.io.loaders import load_bytes, load_path

LABEL = "Dialogflow CX interaction logs (BigQuery)"
JSONL = FIXTURES / "platforms" / "dialogflow_cx_bigquery.jsonl"
CSV = FIXTURES / "platforms" / "dialogflow_cx_bigquery.csv"


def _turns():
    return [json.loads(line) for line in JSONL.read_text().splitlines() if line.strip()]


def _by_conversation(frame, column):
    return frame.groupby("conversation_id")[column].first().astype(object).where(
        frame.groupby("conversation_id")[column].first().notna(), None).to_dict()


def test_fixture_golden_counts():
    result = load_path(JSONL)
    assert result.format == "dialogflow_cx"
    frame = result.frame
    # Independent count from the raw turns: user messages are text inputs, bot messages the text responses.
    turns = _turns()
    users = sum(1 for t in turns if "text" in t["request"]["queryInput"])
    bots = sum(len(m["text"]["text"]) for t in turns for m in t["response"]["queryResult"]["responseMessages"]
               if "text" in m)
    # by hand: s-1001 has 2 user + 3 bot (welcome, order answer, "Connecting you"), s-1002 2 + 2,
    # s-1003 2 + 3 (two bubbles answer the first question) -> 6 user, 8 bot, 14 messages in 3 sessions
    assert (users, bots) == (6, 8)
    assert result.conversations == 3 and len(frame) == 14
    assert frame.groupby("conversation_id").size().to_dict() == {"s-1001": 5, "s-1002": 4, "s-1003": 5}
    assert (frame["speaker"] == "user").sum() == 6 and (frame["speaker"] == "bot").sum() == 8
    user_rows = frame[frame["speaker"] == "user"]
    assert user_rows["intent"].tolist() == ["order.status", "agent.request", "nlu_fallback", "subscription.cancel",
                                            "store.hours", "end"]
    assert user_rows["confidence"].tolist()[:2] == [0.91, 0.88]
    assert pd.isna(user_rows["confidence"].iloc[2])  # a NO_MATCH has no intent to be confident about
    assert frame.loc[frame["event"] == "handoff", "text"].tolist() == ["I want to talk to a person"]
    assert _by_conversation(frame, "outcome") == {"s-1001": "escalated", "s-1002": "abandoned", "s-1003": None}
    assert _by_conversation(frame, "thumbs") == {"s-1001": None, "s-1002": "down", "s-1003": "up"}
    assert _by_conversation(frame, "escalation_reason")["s-1001"] == "user asked for a live agent"
    assert set(frame["channel"]) == {"web"}
    # "2026-03-02 09:00:00.120000 UTC" -> UTC; both messages of a turn carry the request time
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2026-03-02T09:00:00.12Z")
    assert frame["message_id"].is_unique
    assert any("1 no-match turn(s), 1 escalation signal(s)" in n for n in result.notices)


def test_csv_jsonl_and_string_json_columns_read_the_same():
    reference = load_path(JSONL).frame
    pd.testing.assert_frame_equal(load_path(CSV).frame, reference)
    # tables whose JSON columns are STRING (older exports) give the JSON as text inside the JSONL
    as_text = "\n".join(json.dumps({k: json.dumps(v) if isinstance(v, dict) else v for k, v in t.items()})
                        for t in _turns())
    pd.testing.assert_frame_equal(load_bytes(as_text.encode(), "turns.jsonl").frame, reference)
    array = json.dumps(list(reversed(_turns()))).encode()  # turn order comes from turn_position, not the file
    pd.testing.assert_frame_equal(load_bytes(array, "turns.json").frame.drop(columns="row"),
                                  reference.drop(columns="row"))


def test_derived_data_is_the_fallback_bot_text():
    turn = _turns()[1]
    turn["response"]["queryResult"]["responseMessages"] = []
    frame = load_bytes(json.dumps(turn).encode(), "one.json").frame
    assert frame["text"].tolist() == ["where is my order 1234", "Order 1234 ships tomorrow. Anything else?"]


def test_agent_escalation_without_user_text_marks_the_bot_reply():
    turn = _turns()[0]
    turn["conversation_signals"]["turnSignals"]["agentEscalated"] = True
    frame = load_bytes(json.dumps(turn).encode(), "one.json").frame
    assert frame["event"].tolist() == ["handoff"] and frame["escalation_reason"].tolist() == ["live agent handoff"]


def test_truncated_export_is_refused_naming_the_platform_and_line():
    raw = JSONL.read_bytes()
    with pytest.raises(ValidationError) as info:
        load_bytes(raw[:-200], "turns.jsonl")
    problem = info.value.problems[0]
    assert problem.message.startswith(f"{LABEL}: line 7 is not valid JSON") and problem.row == 7


def test_a_cut_response_cell_is_a_problem_on_its_turn():
    lines = CSV.read_text().splitlines()
    lines[4] = lines[4].replace('"{""responseId"": ""r-1002-1""', '"{""responseId', 1)
    data = ("\n".join(lines) + "\n").encode()
    with pytest.raises(ValidationError) as info:
        load_bytes(data, "turns.csv")
    problem = info.value.problems[0]
    assert (problem.row, problem.column) == (4, "response")
    assert problem.message == f"{LABEL}: record 4: the response column is not valid JSON (it may be cut)"


def test_missing_required_columns_are_named():
    with pytest.raises(ValidationError, match=re.escape(f"{LABEL}: the header lacks column(s) turn_position")):
        load_bytes(b"conversation_name,request\nprojects/p/sessions/1,{}\n", "x.csv", platform="dialogflow_cx")


def test_cli_summary_names_the_platform():
    out = subprocess.run([sys.executable, "-m", "metrics", "summary", str(CSV), "--format", "json"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    dataset = json.loads(out.stdout)["dataset"]
    assert dataset["format"] == "dialogflow_cx"
    assert (dataset["conversations"], dataset["messages"]) == (3, 14)


# --------------------------------------------------------------------------- fuzz

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                     st.sampled_from(["NO_MATCH", "INTENT", "2026-03-02 09:00:00 UTC", "THUMBS_UP", "\ud800"]))
_KEYS = st.one_of(st.sampled_from(["conversation_name", "turn_position", "request_time", "request", "response",
                                   "queryInput", "text", "queryResult", "responseMessages", "match", "intent",
                                   "displayName", "confidence", "matchType", "derived_data", "agentUtterances",
                                   "conversation_signals", "turnSignals", "userEscalated", "noMatch",
                                   "bot_answer_feedback", "rating", "liveAgentHandoff"]),
                  st.text(max_size=4))
_JSON = fuzz_json(_SCALARS, _KEYS)


@settings(max_examples=FUZZ_EXAMPLES)
@given(st.lists(_JSON, max_size=4), st.lists(st.tuples(st.sampled_from(list(_turns()[0])), _JSON), max_size=4))
def test_fuzz_arbitrary_json_raises_only_chatlens_errors(payloads, replacements):
    turns = _turns()
    for i, (key, value) in enumerate(replacements):
        turns[i % len(turns)][key] = value
    raw = "\n".join(json.dumps(t) for t in turns + payloads).encode("utf-8", "surrogatepass")
    only_chatlens_errors(lambda: load_bytes(raw, "t.jsonl", platform="dialogflow_cx", on_error="skip"))
    raw = json.dumps(payloads).encode("utf-8", "surrogatepass")
    only_chatlens_errors(lambda: read(raw, "t.json", platform="dialogflow_cx"))
