"""Honest empty and partial states on real exports (issue 19, items 4-6), under AppTest.

Each real export of ../shared/data (skipped with a reason when absent) is loaded into a store of its own, and every
page is visited: no text reads "None", "null", "nan" or "NaN", no notice carries CLI syntax ("--map ...",
"design_mode_is_test=True"), a module path or a timing. Then the specific behaviours: the Funnel explains how to
define stages on data without events (with a suggestion from the data), time axes span the dense range with the
outliers named, the Overview says what is missing in words.
"""

from __future__ import annotations

import io
import re

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, shared_path

pytestmark = pytest.mark.shared_data

EXPORTS = {
    "rasa": ("rasa_tracker_customer_support", "trackers.jsonl"),
    "twcs": ("twcs_sample", "twcs.csv"),
    "copilot": ("copilot_studio_transcripts", "demos", "misc", "Copilot-Studio-Advanced-Analytics", "examples",
                "conversationtranscripts.json"),
    "hint3": ("hint3", "dataset", "v1", "test", "sofmattress_test.csv"),
}
PAGES = ("app.py", "pages/1_Data.py", "pages/2_Engagement.py", "pages/3_Outcomes.py", "pages/4_Intents.py",
         "pages/5_Sentiment.py", "pages/6_Funnel.py", "pages/7_ROI.py", "pages/8_Audit.py")
#: Words a missing value leaks as.
MISSING_WORDS = re.compile(r"\b(?:None|null|nan|NaN)\b")
#: Developer text: CLI options, module paths, the adapter option, timings.
DEVELOPER_TEXT = re.compile(r"(?<![-\w])--[a-z]|\bmetrics[/.]\w+\.(?:py|\w+)|design_mode_is_test|computed in \d+ ?ms")
NOTICES = ("Alert", "Caption", "Markdown", "Subheader", "Metric", "Success", "Info", "Warning", "Error")


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """One store per real export (absent exports are left out), each holding that export alone."""
    from metrics import store
    from metrics.io.loaders import load_path

    paths = {}
    for name, parts in EXPORTS.items():
        try:
            source = shared_path(*parts)
        except pytest.skip.Exception:
            continue
        path = tmp_path_factory.mktemp(name) / "chatlens.db"
        result = load_path(source, on_error="skip")
        db = store.connect(str(path))
        store.save_messages(db, result.frame, dataset_name=name, source_format=result.format, file_name=source.name)
        db.close()
        paths[name] = path
    if not paths:
        pytest.skip("no real export in ../shared/data")
    return paths


def _open(monkeypatch, db_path, page: str, query: dict | None = None) -> AppTest:
    monkeypatch.setenv("CHATLENS_DB", str(db_path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    if page != "app.py":
        at.switch_page(page)
        for key, value in (query or {}).items():
            at.query_params[key] = value
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest) -> list[tuple[str, str]]:
    """(element type, text) for every text of the page: values, labels, help, options, metric values."""
    out: list[tuple[str, str]] = []

    def walk(node):
        kind = type(node).__name__
        if kind in ("Divider", "Code", "Dataframe", "UnknownElement"):
            return
        for attr in ("value", "label", "help", "delta", "placeholder"):
            try:
                value = getattr(node, attr)
            except Exception:  # noqa: BLE001 - not every element has every attribute
                continue
            if isinstance(value, str) and value:
                out.append((kind, value))
        for option in getattr(node, "options", None) or []:
            if isinstance(option, str):
                out.append((kind, option))
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for child in children.values():
                walk(child)

    walk(at._tree)
    return out


def _chart_specs(at: AppTest) -> list[tuple[dict, list]]:
    """(Vega-Lite spec, its datasets as lists of records) of every chart of the page."""
    import json

    found = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if type(node).__name__ == "UnknownElement" and proto is not None and hasattr(proto, "spec"):
            frames = []
            for dataset in getattr(proto, "datasets", []):
                table = pa.ipc.open_stream(io.BytesIO(dataset.data.data)).read_all()
                frames.append(table.to_pylist())
            try:
                if proto.HasField("data") and proto.data.data:
                    frames.append(pa.ipc.open_stream(io.BytesIO(proto.data.data)).read_all().to_pylist())
            except ValueError:  # no such field in this element
                pass
            found.append((json.loads(proto.spec), frames))
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for child in children.values():
                walk(child)

    walk(at._tree)
    return found


# --------------------------------------------------------------------------- every page, every export
@pytest.mark.parametrize("export", list(EXPORTS))
def test_no_missing_value_words_nor_developer_text_on_any_page(export, stores, monkeypatch):
    if export not in stores:
        pytest.skip(f"{export} export absent")
    for page in PAGES:
        at = _open(monkeypatch, stores[export], page)
        texts = _texts(at)
        leaks = [(k, t[:160]) for k, t in texts if MISSING_WORDS.search(t)]
        assert not leaks, (page, leaks)
        developer = [(k, t[:160]) for k, t in texts if k in NOTICES and DEVELOPER_TEXT.search(t)]
        assert not developer, (page, developer)
        # table cells: a text or date column shows no missing cell (the grid draws it as "None") and no word of
        # one ("None", "nan", "NaT" from str()); numeric columns may still hold NaN (the grid has no null text)
        for frame in at.dataframe:
            table = frame.value
            for column in table.columns:
                kind = str(table[column].dtype)
                if kind == "object" or kind.startswith(("str", "string", "datetime")):
                    cells = table[column]
                    words = {str(v) for v in cells.dropna().astype(str)} & {"None", "nan", "NaN", "NaT", "<NA>"}
                    assert not words and not cells.isna().any(), (page, column, words, int(cells.isna().sum()))
        # chart labels drawn from the data never print a missing value either
        for spec, frames in _chart_specs(at):
            for rows in frames:
                for row in rows:
                    for column in ("label", "text"):
                        assert row.get(column, "") is not None and not MISSING_WORDS.search(
                            str(row.get(column, ""))), (page, spec.get("title"), row)
        # every chart exports with its title (part of the spec, so a downloaded PNG carries it)
        for spec, _ in _chart_specs(at):
            title = spec.get("title") or next((layer.get("title") for layer in spec.get("layer", [])
                                               if layer.get("title")), None)
            assert title, (page, spec.get("mark"), spec.get("encoding", {}).keys())


# --------------------------------------------------------------------------- funnel without events
@pytest.mark.parametrize("export", ["twcs", "rasa"])
def test_funnel_without_events_explains_and_suggests_from_the_data(export, stores, monkeypatch):
    if export not in stores:
        pytest.skip(f"{export} export absent")
    at = _open(monkeypatch, stores[export], "pages/6_Funnel.py")
    infos = " ".join(i.value for i in at.info)
    assert "This dataset records no events" in infos and "intent:NAME" in infos and "user~" in infos
    assert "--" not in infos and not [w for w in at.warning if "event" in w.value]
    assert not _chart_specs(at), "the lead funnel must not run on data without events"
    lines = at.code[0].value.splitlines()
    if export == "rasa":  # its most frequent intents, as intent rules
        assert lines and all("=intent:" in line for line in lines)
        assert "ask_order_status=intent:ask_order_status" in lines
    else:  # no intents: text rules
        assert lines[0] == "user wrote=user~\\S"
    at.button(key="funnel_use_suggestion").click().run()
    assert not at.exception
    assert not [i for i in at.info if "records no events" in i.value]
    funnels = [d.value for d in at.dataframe if "conversations" in d.value.columns and "stage" in d.value.columns]
    assert funnels and funnels[0]["conversations"].iloc[0] > 0
    for spec, _ in _chart_specs(at):  # no chart thousands of pixels tall (one bar group per brand)
        height = spec.get("height")
        assert not isinstance(height, (int, float)) or height <= 1200, (spec.get("title"), height)


# --------------------------------------------------------------------------- sparse outliers on time axes
@pytest.mark.parametrize("page", ["pages/2_Engagement.py", "pages/3_Outcomes.py", "pages/5_Sentiment.py"])
def test_time_axes_span_the_dense_range_and_name_the_outliers(page, stores, monkeypatch):
    if "twcs" not in stores:
        pytest.skip("twcs export absent")
    at = _open(monkeypatch, stores["twcs"], page)
    notes = [c.value for c in at.caption if "The time axis spans" in c.value]
    assert notes and "2011-08-29" in notes[0] and "2017" in notes[0].split("spans", 1)[1][:6]
    years = set()
    for spec, frames in _chart_specs(at):
        if "over time" not in str(spec.get("title")) and "per period" not in str(spec.get("title")) \
                and "per day" not in str(spec.get("title")):
            continue
        for rows in frames:
            for row in rows:
                for value in row.values():
                    text = str(value)
                    if re.match(r"^\d{4}-", text):
                        years.add(int(text[:4]))
    assert years and min(years) >= 2017, sorted(years)


def test_no_timestamps_means_no_time_controls(stores, monkeypatch):
    if "hint3" not in stores:
        pytest.skip("HINT3 export absent")
    at = _open(monkeypatch, stores["hint3"], "pages/2_Engagement.py")
    assert not [r for r in at.radio if r.label == "Group by"]
    assert any("no timestamps" in i.value for i in at.info)
    at = _open(monkeypatch, stores["hint3"], "app.py")
    # the comparison of two periods says it needs timestamps instead of failing
    assert any("needs timestamps" in i.value for i in at.info)


# --------------------------------------------------------------------------- the Overview in words
def test_overview_says_what_is_missing_in_words(stores, monkeypatch):
    if "rasa" not in stores:
        pytest.skip("Rasa export absent")
    at = _open(monkeypatch, stores["rasa"], "app.py")
    captions = [c.value for c in at.caption]
    assert not [c for c in captions if "MoM —" in c or c.startswith("— ·") or "untested" in c], captions
    assert any("No complete week in the data yet" in c for c in captions), captions
    # a missing column is named in words, not as a Python list of every column
    assert not [c for c in captions if "['" in c or "\\['" in c]
    assert any("'true_intent' column" in c and "Audit page" in c for c in captions)


def test_copilot_studio_notice_offers_what_the_ui_has(stores, monkeypatch):
    source = shared_path(*EXPORTS["copilot"])
    db_path = stores.get("copilot") or pytest.skip("Copilot Studio export absent")
    at = _open(monkeypatch, db_path, "pages/1_Data.py")
    at.file_uploader(key="data_upload").set_value((source.name, source.read_bytes(), "application/json"))
    at.run()
    assert not at.exception
    notices = " ".join(i.value for i in at.info)
    assert "test canvas" in notices and "design_mode_is_test" not in notices and "None" not in notices
    box = at.checkbox(key="data_copilot_design_is_test")
    box.check().run()
    assert not at.exception
