"""Loaders on real public exports in ../shared/data (skipped with a reason when absent)."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT, shared_path
from metrics.errors import ValidationError
from metrics.io.loaders import load_path
from metrics.core.rollup import conversation_rollup

pytestmark = pytest.mark.shared_data


def test_twcs_flat_csv_loads_and_reports_the_malformed_record():
    path = shared_path("twcs_sample", "twcs.csv")
    # Refusing mode names the broken record (an unquoted line break splits tweet 3398's row).
    # platform="generic": the flat table, without the twcs adapter's thread rebuilding
    with pytest.raises(ValidationError) as info:
        load_path(path, platform="generic")
    assert info.value.problems[0].row == 2486
    assert "missing timestamp" in info.value.problems[0].message
    result = load_path(path, on_error="skip", platform="generic")
    # 5,000 tweets become 5,001 CSV records because of that line break; one record is skipped
    assert result.source_rows == 5001
    assert len(result.frame) == 5000 and result.skipped_rows == 1
    assert result.mapping["timestamp"] == "created_at" and result.mapping["message_id"] == "tweet_id"
    # inbound=True tweets are the customers
    raw = pd.read_csv(path)
    assert (result.frame["speaker"] == "user").sum() == int(raw["inbound"].eq(True).sum())
    # "Tue Oct 31 22:10:47 +0000 2017" parses to UTC
    first = result.frame.set_index("message_id").loc["1", "timestamp"]
    assert first == pd.Timestamp("2017-10-31T22:10:47Z")


@pytest.mark.parametrize("system", ["bert", "dialogflow", "haptik", "luis", "rasa"])
@pytest.mark.parametrize("bot", ["curekart", "powerplay11"])
def test_hint3_predictions_load_without_conversation_ids(system, bot):
    path = shared_path("hint3", "preds", f"{system}_{bot}.csv")
    result = load_path(path)
    raw = pd.read_csv(path, keep_default_na=False)
    assert len(result.frame) == len(raw)
    assert result.frame["conversation_id"].nunique() == len(raw)
    assert result.mapping == {"text": "sentence", "intent": "predicted_node", "confidence": "predicted_node_score",
                              "true_intent": "label"}
    assert result.frame["confidence"].between(0, 1).all()
    assert (result.frame["speaker"] == "user").all()
    rollup = conversation_rollup(result.frame)
    assert rollup["user_turns"].eq(1).all()


@pytest.mark.parametrize("name,conversations,messages", [
    ("data_intermediate.json", 291, 4316),
    ("data_volunteers.json", 1111, 14623),
])
def test_convai2_json_loads_nested_dialogs(name, conversations, messages):
    path = shared_path("convai2_wild", "data", name)
    result = load_path(path, platform="generic")  # the generic nested-JSON reader, not the ConvAI adapter
    raw = json.loads(path.read_text())
    assert len(raw) == conversations
    assert sum(len(d["dialog"]) for d in raw) == messages
    assert result.conversations == conversations and len(result.frame) == messages
    assert set(result.frame["speaker"]) == {"user", "bot"}
    assert result.mapping["speaker"] == "sender_class"


def test_convai2_without_sender_class_names_the_unknown_speakers():
    path = shared_path("convai2_wild", "data", "export_2018-07-04_train.json")
    with pytest.raises(ValidationError) as info:
        load_path(path, platform="generic")
    assert info.value.problems[0].message == "unknown speaker"
    assert info.value.problems[0].value in {"participant1", "participant2"}


def test_cli_summary_json_on_real_export():
    path = shared_path("hint3", "preds", "rasa_curekart.csv")
    out = subprocess.run([sys.executable, "-m", "metrics", "summary", str(path), "--format", "json"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    ds = report["dataset"]
    assert ds["messages"] == ds["conversations"] == len(pd.read_csv(path))
    assert ds["first_timestamp"] is None and ds["excluded_conversations"] == 0
    assert any("own conversation" in w for w in ds["warnings"])
