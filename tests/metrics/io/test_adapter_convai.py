"""ConvAI dialogs adapter (metrics.io.adapters.convai) on the real ConvAI2 wild-evaluation exports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FUZZ_EXAMPLES, ROOT, fuzz_json, only_chatlens_errors, shared_path
from metrics.errors import ConfigError, ValidationError
from metrics.io.loaders import load_bytes, load_path

LABEL = "ConvAI dialogs (JSON)"
ROLES = {"participant_roles": {"participant1": "user", "participant2": "bot"}}


def _data(name):
    return shared_path("convai2_wild", "data", name)


@pytest.mark.shared_data
@pytest.mark.parametrize("name,dialogs,messages,humans,bots,rated", [
    # counted by hand from the JSON (see the independent count in the test body)
    ("data_volunteers.json", 1111, 14623, 7664, 6959, 593),
    ("data_intermediate.json", 291, 4316, 2125, 2191, 198),
])
def test_golden_counts(name, dialogs, messages, humans, bots, rated):
    path = _data(name)
    raw = json.loads(path.read_text())
    classes = Counter(m["sender_class"] for d in raw for m in d["dialog"])
    assert (len(raw), sum(len(d["dialog"]) for d in raw)) == (dialogs, messages)
    assert (classes["Human"], classes["Bot"]) == (humans, bots)
    assert sum(d["eval_score"] is not None for d in raw) == rated
    result = load_path(path)
    assert result.format == "convai"
    frame = result.frame
    assert result.conversations == dialogs and len(frame) == messages
    assert (frame["speaker"] == "user").sum() == humans and (frame["speaker"] == "bot").sum() == bots
    ratings = frame.groupby("conversation_id", sort=False)["rating"].first()
    assert ratings.notna().sum() == rated
    expected = Counter(float(d["eval_score"]) for d in raw if d["eval_score"] is not None)
    assert Counter(ratings.dropna().tolist()) == expected
    # the bot of each dialog (participant2_id.user_id, e.g. "Bot 004") is the model version
    bots_by_dialog = Counter(d["participant2_id"]["user_id"] for d in raw)
    assert Counter(frame.groupby("conversation_id")["model_version"].first()) == bots_by_dialog
    assert frame.loc[frame["speaker"] == "user", "user_id"].str.startswith("User ").all()


@pytest.mark.shared_data
def test_timestamps_come_from_the_dialog_start_and_end():
    raw = json.loads(_data("data_volunteers.json").read_text())
    frame = load_path(_data("data_volunteers.json")).frame
    dialog = raw[1]  # "Hello!" ... 2018-10-29 09:08:40, with several messages
    from metrics.io.adapters._common import upload_tag

    # dialogs without dialog_id: <file stem>@<content tag>:<record number>, unique per file content
    conv = frame[frame["conversation_id"] == f"data_volunteers@{upload_tag(_data('data_volunteers.json').read_bytes())}:2"]
    assert conv["text"].iloc[0] == dialog["dialog"][0]["text"] == "Hello!"
    assert conv["timestamp"].iloc[0] == pd.Timestamp(dialog["start_time"], tz="UTC")
    assert conv["timestamp"].iloc[-1] == pd.Timestamp(dialog["end_time"], tz="UTC")
    assert conv["timestamp"].iloc[1:-1].eq(conv["timestamp"].iloc[0]).all()


@pytest.mark.shared_data
def test_exports_without_sender_class_need_participant_roles():
    path = _data("export_2018-07-04_train.json")
    with pytest.raises(ValidationError) as info:
        load_path(path)
    assert info.value.total == 1  # one clear file-level problem, not one per dialog
    problem = info.value.problems[0]
    assert problem.message == (f"{LABEL}: none of the 427 dialog(s) says who is the human and who the bot "
                               "(no sender_class, no participant1_id/participant2_id class)")
    assert "participant_roles" in problem.fix
    result = load_path(path, platform_options=ROLES)
    raw = json.loads(path.read_text())
    senders = Counter(m["sender"] for d in raw for m in d["dialog"])
    assert result.conversations == 427 and len(result.frame) == 3754
    assert (result.frame["speaker"] == "user").sum() == senders["participant1"] == 2002
    assert "timestamp" in result.frame.columns and result.frame["timestamp"].isna().all()  # no times in the export


def test_participant_classes_fill_in_a_missing_sender_class():
    dialog = {"dialog": [{"id": 0, "sender": "participant2", "text": "Hi!"},
                         {"id": 1, "sender": "participant1", "text": "hello", "sender_class": "Human"}],
              "participant1_id": {"class": "User", "user_id": "User 1"},
              "participant2_id": {"class": "Bot", "user_id": "Bot 9"}, "eval_score": 4, "dialog_id": "d1"}
    frame = load_bytes(json.dumps([dialog]).encode(), "d.json").frame
    assert frame[["speaker", "text"]].values.tolist() == [["bot", "Hi!"], ["user", "hello"]]
    assert frame["user_id"].isna().tolist() == [True, False] and frame["user_id"].iloc[1] == "User 1"
    assert set(frame["model_version"]) == {"Bot 9"} and set(frame["rating"]) == {4.0}


def test_some_dialogs_unknown_are_problem_rows():
    ok = {"dialog": [{"sender": "participant1", "sender_class": "Human", "text": "hi"}]}
    unknown = {"dialog": [{"sender": "participant7", "text": "?"}]}
    with pytest.raises(ValidationError) as info:
        load_bytes(json.dumps([ok, unknown]).encode(), "d.json")
    assert info.value.problems[0].row == 2
    assert load_bytes(json.dumps([ok, unknown]).encode(), "d.json", on_error="skip").conversations == 1


def test_bad_roles_option_is_a_config_error():
    with pytest.raises(ConfigError, match="participant_roles"):
        load_bytes(b'[{"dialog": [{"sender": "participant1", "text": "x"}]}]', "d.json",
                   platform_options={"participant_roles": ["participant1"]})


def test_out_of_range_eval_scores_are_validation_problems():
    dialog = {"dialog": [{"sender": "participant1", "sender_class": "Human", "text": "hi"}], "eval_score": 7}
    with pytest.raises(ValidationError, match="rating outside 1-5"):
        load_bytes(json.dumps([dialog]).encode(), "d.json")


@pytest.mark.shared_data
def test_truncated_export_is_refused_naming_the_platform():
    raw = _data("data_intermediate.json").read_bytes()
    with pytest.raises(ValidationError) as info:
        load_bytes(raw[: len(raw) // 2], "data_intermediate.json")
    message = info.value.problems[0].message
    assert re.match(rf"{re.escape(LABEL)}: invalid JSON at line 1 column \d+", message) and "truncated" in message


@pytest.mark.shared_data
def test_cli_summary_names_the_platform():
    out = subprocess.run([sys.executable, "-m", "metrics", "summary", str(_data("data_volunteers.json")), "--format",
                          "json"], cwd=ROOT, capture_output=True, text=True, check=True)
    dataset = json.loads(out.stdout)["dataset"]
    assert dataset["format"] == "convai"
    assert (dataset["conversations"], dataset["messages"]) == (1111, 14623)


# --------------------------------------------------------------------------- fuzz

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                     st.sampled_from(["Human", "Bot", "User", "participant1", "participant2", "2018-07-09 04:29:15",
                                      "\ud800"]))
_KEYS = st.one_of(st.sampled_from(["dialog", "sender", "sender_class", "text", "eval_score", "start_time",
                                   "end_time", "participant1_id", "participant2_id", "class", "user_id",
                                   "dialog_id"]),
                  st.text(max_size=4))
_JSON = fuzz_json(_SCALARS, _KEYS)


@settings(max_examples=FUZZ_EXAMPLES)
@given(_JSON, st.lists(_JSON, max_size=3), st.booleans())
def test_fuzz_arbitrary_json_raises_only_chatlens_errors(payload, messages, with_roles):
    records = [payload, {"dialog": messages, "eval_score": payload}]
    raw = json.dumps(records).encode("utf-8", "surrogatepass")
    options = ROLES if with_roles else {}
    only_chatlens_errors(lambda: load_bytes(raw, "d.json", platform="convai", on_error="skip",
                                            platform_options=options))
