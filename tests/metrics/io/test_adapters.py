"""The platform-adapter registry (metrics.io.adapters): registration, detection, override, options.

Per-platform mappings are tested in tests/test_adapter_<name>.py; the arbitrary-bytes fuzz that
every adapter must survive is here, once, over the registry.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, FUZZ_EXAMPLES, ROOT, SHARED_DATA, only_chatlens_errors, shared_path
from metrics.io import adapters
from metrics.io.adapters import ADAPTERS, Adapter, detect_platform, get_adapter, list_platforms, read
from metrics.io.adapters._common import FALLBACK_INTENT
from metrics.errors import ConfigError, ValidationError
from metrics.io.loaders import load_bytes
from metrics.io.readers import RawTable
from metrics.io.schema import BY_NAME

PLATFORMS = FIXTURES / "platforms"
COPILOT = ("copilot_studio_transcripts", "demos", "misc", "Copilot-Studio-Advanced-Analytics", "examples")

#: (file under ../shared/data or tests/fixtures/platforms, expected platform)
REAL = [
    (("rasa_tracker_customer_support", "events_table.csv"), "rasa"),
    (("rasa_tracker_customer_support", "trackers.jsonl"), "rasa"),
    ((*COPILOT, "conversationtranscripts.json"), "copilot_studio"),
    ((*COPILOT, "content", "content0.json"), "copilot_studio"),
    (("twcs_sample", "twcs.csv"), "twcs"),
    (("convai2_wild", "data", "data_volunteers.json"), "convai"),
    (("convai2_wild", "data", "data_intermediate.json"), "convai"),
    (("convai2_wild", "data", "export_2018-07-04_train.json"), "convai"),
]
FIXTURE_FILES = [
    ("dialogflow_cx_bigquery.csv", "dialogflow_cx"),
    ("dialogflow_cx_bigquery.jsonl", "dialogflow_cx"),
    ("intercom_conversations.json", "intercom"),
    ("langfuse_traces.json", "langfuse"),
    ("langfuse_scores.json", "langfuse"),
    ("langfuse_trace_download.json", "langfuse"),
    ("langfuse_blob/traces.jsonl", "langfuse"),
    ("langfuse_blob/scores.jsonl", "langfuse"),
]


# --------------------------------------------------------------------------- registry

def test_registry_lists_one_adapter_per_module_in_detection_order():
    assert list_platforms() == ["rasa", "copilot_studio", "dialogflow_cx", "intercom", "langfuse", "twcs", "convai"]
    for name, adapter in ADAPTERS.items():
        assert isinstance(adapter, Adapter) and adapter.name == name
        assert adapter.label and adapter.description
        module = __import__(f"metrics.io.adapters.{name}", fromlist=["ADAPTER"])
        assert module.ADAPTER is adapter  # adding a platform = adding one module


def test_every_adapter_documents_where_the_required_columns_come_from():
    for adapter in ADAPTERS.values():
        documented = {c.strip() for key in adapter.source_fields for c in key.split(",")}
        assert {"conversation_id", "speaker", "text"} <= documented, adapter.name
        assert documented <= set(BY_NAME), (adapter.name, documented - set(BY_NAME))
        assert all(isinstance(v, str) and v for v in adapter.source_fields.values())
        assert all(isinstance(v, str) and v for v in adapter.options.values())


def test_fallback_intent_is_the_intents_module_default():
    from metrics.intents import DEFAULT_FALLBACK_INTENT

    assert FALLBACK_INTENT == DEFAULT_FALLBACK_INTENT


def test_unknown_platform_name_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        get_adapter("slack")
    assert "'slack'" in str(info.value)
    assert all(name in str(info.value) for name in list_platforms())
    with pytest.raises(ConfigError, match="known platforms"):
        read(b"a,b\n1,2\n", "x.csv", platform="slack")
    with pytest.raises(ConfigError, match="known platforms"):
        load_bytes(b"a,b\n1,2\n", "x.csv", platform="Rasa")  # names are exact


def test_unknown_or_bad_options_are_config_errors_repeating_the_value():
    data = (PLATFORMS / "intercom_conversations.json").read_bytes()
    with pytest.raises(ConfigError, match=r"'handoff_names'.*accepted: none"):
        read(data, "c.json", platform="intercom", options={"handoff_names": ["x"]})
    rasa = b'{"sender_id": "s", "events": [{"event": "user", "text": "hi", "timestamp": 1}]}\n'
    with pytest.raises(ConfigError, match=r"handoff_names.*42"):
        read(rasa, "t.jsonl", options={"handoff_names": 42})
    with pytest.raises(ConfigError, match="participant_roles"):
        read(b'[{"dialog": [{"sender": "participant1", "text": "hi"}]}]', "d.json",
             options={"participant_roles": {"participant1": "robot"}})


# --------------------------------------------------------------------------- detection

@pytest.mark.shared_data
@pytest.mark.parametrize("parts,platform", REAL, ids=[p[0][-1] for p in REAL])
def test_real_exports_are_detected(parts, platform):
    path = shared_path(*parts)
    assert detect_platform(path.read_bytes(), path.name) == platform


@pytest.mark.parametrize("name,platform", FIXTURE_FILES)
def test_hand_built_fixtures_are_detected(name, platform):
    path = PLATFORMS / name
    assert detect_platform(path.read_bytes(), path.name) == platform


@pytest.mark.parametrize("name,platform", FIXTURE_FILES[:4])
def test_detection_sees_through_gzip_and_zip_and_file_names(name, platform):
    raw = (PLATFORMS / name).read_bytes()
    assert detect_platform(gzip.compress(raw), name + ".gz") == platform
    assert detect_platform(gzip.compress(raw), "upload") == platform  # gzip magic, no extension
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export/" + Path(name).name, raw)
    assert detect_platform(buf.getvalue(), "export.zip") == platform
    assert detect_platform(raw, "no_extension") == platform


@pytest.mark.parametrize("name,platform", [FIXTURE_FILES[1], FIXTURE_FILES[2]])
def test_utf16_exports_are_detected_and_read(name, platform):
    raw = (PLATFORMS / name).read_text(encoding="utf-8").encode("utf-16")
    assert detect_platform(raw, name) == platform
    table, found = read(raw, name)
    assert found == platform and len(table.frame) == 14


def _generic_files():
    files = sorted(p for p in (FIXTURES / "good").iterdir()) + sorted(p for p in (FIXTURES / "bad").iterdir())
    files.append(ROOT / "data" / "sample_transcripts.csv.gz")
    return [p for p in files if p.is_file()]


@pytest.mark.parametrize("path", _generic_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_generic_and_broken_files_are_not_taken_for_a_platform(path):
    assert detect_platform(path.read_bytes(), path.name) is None


@pytest.mark.shared_data
def test_generic_real_exports_are_not_taken_for_a_platform():
    preds = sorted((SHARED_DATA / "hint3" / "preds").glob("*.csv")) if (SHARED_DATA / "hint3").exists() else []
    if not preds:
        pytest.skip("../shared/data/hint3 is absent")
    assert [p.name for p in preds if detect_platform(p.read_bytes(), p.name) is not None] == []


@pytest.mark.parametrize("data,name", [
    (b"conversation_id,speaker,text,session_id,input,output\n1,user,hi,s,a,b\n", "look_alike.csv"),
    (b'[{"sender_id": "s", "events": [{"role": "user", "text": "hi", "event_type": "message"}]}]', "events.json"),
    (b'[{"dialog": [{"speaker": "user", "text": "hi"}]}]', "dialog.json"),
    (b'{"conversations": [{"id": "1", "messages": [{"role": "user", "body": "hi"}]}]}', "convs.json"),
    (b'[{"id": "1", "timestamp": "2024-01-01", "input": "hi", "output": "ho", "session_id": "s"}]', "io.json"),
    (b"tweet_id,text,created_at\n1,hi,Tue Oct 31 22:10:47 +0000 2017\n", "tweets.csv"),
    (b"", "empty.csv"), (b"\x00\x01\x02", "binary.bin"), (b"PK\x03\x04broken", "x.zip"), (b"\x1f\x8bxx", "x.gz"),
])
def test_look_alike_generic_files_stay_generic(data, name):
    assert detect_platform(data, name) is None
    if data.strip(b"\x00\x01\x02") and not name.endswith((".zip", ".gz")):
        table, platform = read(data, name)
        assert platform is None and isinstance(table, RawTable) and table.format in ("csv", "json")


# --------------------------------------------------------------------------- read / override

def test_auto_returns_the_generic_table_when_nothing_matches():
    data = (FIXTURES / "good" / "epochs.csv").read_bytes()
    table, platform = read(data, "epochs.csv")
    assert platform is None and table.format == "csv"
    generic = load_bytes(data, "epochs.csv", platform="auto")
    assert generic.format == "csv"


def test_a_detected_platform_gives_canonical_columns_and_its_name_as_format():
    data = (PLATFORMS / "intercom_conversations.json").read_bytes()
    table, platform = read(data, "conversations.json")
    assert platform == "intercom" and table.format == "intercom"
    assert {"conversation_id", "speaker", "text", "timestamp"} <= set(table.frame.columns)
    assert all(c in BY_NAME or c.startswith("__") for c in table.frame.columns)
    assert len(table.rows) == len(table.frame) and table.rows.min() >= 1
    assert table.notices[0] == "conversations.json: read as Intercom conversations (API JSON) (intercom)."
    result = load_bytes(data, "conversations.json")
    assert result.format == "intercom"
    assert result.mapping == {c: c for c in table.frame.columns if c in BY_NAME}  # identity mapping


def test_override_forces_generic_reading_or_another_adapter():
    data = (PLATFORMS / "dialogflow_cx_bigquery.csv").read_bytes()
    table, platform = read(data, "turns.csv", platform="generic")
    assert platform is None and "request" in table.frame.columns  # the raw BigQuery columns
    table, platform = read(data, "turns.csv", platform=None)
    assert platform is None
    # forcing the wrong adapter gives a clear error naming that platform
    with pytest.raises(ValidationError) as info:
        read(data, "turns.csv", platform="twcs")
    assert "Customer support on Twitter" in str(info.value) and "in_response_to_tweet_id" in str(info.value)
    with pytest.raises(ValidationError, match="Rasa tracker store"):
        load_bytes(data, "turns.csv", platform="rasa")


def test_platform_must_be_a_name():
    with pytest.raises(ConfigError, match="platform must be"):
        read(b"a\n1\n", "x.csv", platform=3)


def test_a_user_mapping_still_applies_on_top_of_an_adapter():
    data = (PLATFORMS / "intercom_conversations.json").read_bytes()
    result = load_bytes(data, "c.json", mapping={"segment": "channel"})
    assert result.mapping["segment"] == "channel"
    assert set(result.frame["segment"].dropna()) == {"conversation", "email"}


def test_reading_does_not_touch_the_input_bytes():
    data = bytearray((PLATFORMS / "dialogflow_cx_bigquery.jsonl").read_bytes())
    before = bytes(data)
    read(data, "turns.jsonl")
    assert bytes(data) == before


def test_adapter_tables_validate_with_only_chatlens_columns_surviving():
    data = (PLATFORMS / "dialogflow_cx_bigquery.jsonl").read_bytes()
    table, _ = read(data, "turns.jsonl")
    assert "__sentiment_score" in table.frame.columns
    result = load_bytes(data, "turns.jsonl")
    assert "__sentiment_score" not in result.frame.columns
    assert not any("__sentiment_score" in n for n in result.notices)  # internal columns are not "ignored" noise
    assert isinstance(result.frame["timestamp"].dtype, pd.DatetimeTZDtype)


# --------------------------------------------------------------------------- fuzz (every adapter)

#: platform -> (file names the fuzz gives the bytes, a header that makes them look like the export or None)
FUZZ_FILES = {
    "rasa": (["t.jsonl", "t.json", "events.csv", "t.json.gz", "t.zip", "t"], None),
    "copilot_studio": (["t.json", "t.jsonl", "t.csv", "t.json.gz", "t.zip", "t"], None),
    "dialogflow_cx": (["t.json", "t.jsonl", "t.csv", "t.json.gz", "t.zip", "t"], None),
    "intercom": (["c.json", "c.jsonl", "c.csv", "c.json.gz", "c.zip", "c"], None),
    "langfuse": (["t.json", "t.jsonl", "t.csv", "t.json.gz", "t.zip", "t"], None),
    "twcs": (["t.csv", "t.json", "t.csv.gz", "t.zip", "t"],
             b"tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"),
    "convai": (["d.json", "d.jsonl", "d.csv", "d.json.gz", "d.zip", "d"], None),
}


def test_every_registered_adapter_is_fuzzed():
    assert list(FUZZ_FILES) == list_platforms()


@pytest.mark.parametrize("platform", list(FUZZ_FILES))
@settings(max_examples=FUZZ_EXAMPLES)
@given(data=st.binary(max_size=600), draw=st.data())
def test_fuzz_arbitrary_bytes_raise_only_chatlens_errors(platform, data, draw):
    names, header = FUZZ_FILES[platform]
    name = draw.draw(st.sampled_from(names), label="file name")
    assert ADAPTERS[platform].detect(data, name) in (True, False)  # detect never raises
    only_chatlens_errors(lambda: read(data, name, platform=platform))
    if header is not None:  # past a valid header the bytes reach the record parser
        only_chatlens_errors(lambda: read(header + data, name.replace(".gz", ""), platform=platform))
