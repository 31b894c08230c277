"""The Intents page (pages/4_Intents.py) under AppTest: the default sample, the threshold slider,
a confusion-cell drill-down, the configurable fallback intent, the under-30-labels notice, and
data without timestamps / labels / intents.

Expected numbers are computed independently with metrics.intents on the same data."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, messages_frame
from metrics import intents as I

PAGE = "pages/4_Intents.py"
SAMPLE = ROOT / "data" / "sample_transcripts.csv.gz"


def _pct(value) -> str:
    return "—" if value != value else f"{value:.1%}"


def _app() -> AppTest:
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metric(at: AppTest, label: str, nth: int = 0):
    found = [m for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}: {[m.label for m in at.metric]}"
    return found[nth]


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


@pytest.fixture(scope="module")
def sample():
    """The default sample as the page sees it (loaded from the committed file, no filters)."""
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} is absent (generate it with python -m data.generate)")
    from metrics.io.loaders import load_bytes

    return load_bytes(SAMPLE.read_bytes(), SAMPLE.name).frame


def _seed(db_path, frame, name="intents test"):
    from metrics import store

    db = store.connect(str(db_path))
    store.save_messages(db, frame, dataset_name=name, source_format="csv", file_name="intents.csv")
    db.close()


def test_default_sample_renders_every_section(db_path, sample):
    at = _app()
    heads = [s.value for s in at.subheader]
    for section in ("Confusion matrix", "Per-intent quality (worst first)", "Confidence", "Threshold what-if",
                    "Drift by week", "Model A/B"):
        assert section in heads
    report = I.intent_report(sample)
    assert _metric(at, "Labelled messages").value == f"{report.labelled_count:,}"
    assert _metric(at, "Accuracy as predicted").value == _pct(report.accuracy)
    assert _metric(at, "MCC").value == f"{report.mcc:.3f}"
    # The sample has far more than 30 labels: no reliability notice.
    assert "unreliable" not in _texts(at.warning)
    # Threshold what-if at the default 0.60.
    assert at.slider(key="intents_threshold").value == pytest.approx(0.6)
    row = I.threshold_table(sample, thresholds=[0.6]).iloc[0]
    assert _metric(at, "Coverage").value == _pct(row["coverage"])
    assert _metric(at, "Would escalate at threshold").value == _pct(row["escalation_rate"])
    # Four altair charts at least (heatmap, histogram, reliability, threshold, drift x2, A/B) and a CSV
    # download and a caption for each.
    charts = at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    assert len(charts) >= 7
    downloads = at.get("download_button")
    assert len(downloads) >= len(charts)
    captions = _texts(at.caption)
    assert "Click a cell" in captions and "No cell selected." in captions
    assert "over-confident" in captions and "dashed rule marks your threshold (0.60)" in captions
    # The per-intent table is worst first.
    [per_intent] = [d for d in at.dataframe if "f1" in d.value.columns and "confused_with" in d.value.columns]
    f1 = per_intent.value["f1"].tolist()
    assert f1 == sorted(f1)


def test_threshold_slider_moves_every_threshold_view(db_path, sample):
    at = _app()
    at.slider(key="intents_threshold").set_value(0.8)
    at = _rerun(at)
    row = I.threshold_table(sample, thresholds=[0.6, 0.8]).set_index("threshold")
    esc = _metric(at, "Would escalate at threshold")
    assert esc.value == _pct(row.loc[0.8, "escalation_rate"])
    delta = (row.loc[0.8, "escalation_rate"] - row.loc[0.6, "escalation_rate"]) * 100
    assert esc.delta == f"{delta:+.1f} pts vs 0.60"
    assert _metric(at, "Coverage").value == _pct(row.loc[0.8, "coverage"])
    captions = _texts(at.caption)
    fp = I.false_positives(sample, threshold=0.8)
    fn = I.false_negatives(sample, threshold=0.8)
    assert f"{len(fp):,} confident (≥ 0.80) but wrong answers" in captions
    assert f"{len(fn):,} in-scope messages the bot fell back on or scored below 0.80" in captions
    assert "dashed rule marks your threshold (0.80)" in captions


def test_confusion_cell_drilldown_lists_its_messages(db_path, sample):
    at = _app()
    top = I.top_confused_pairs(sample, limit=1).iloc[0]
    at.session_state["intents_confusion"] = {
        "selection": {"cell": [{"true_intent": top["true_intent"], "intent": top["intent"]}]}}
    at = _rerun(at)
    heading = f"**Messages labelled `{top['true_intent']}` and predicted `{top['intent']}`: {int(top['count']):,}**"
    assert heading in _texts(at.markdown)
    drill = [d for d in at.dataframe if {"true_intent", "intent", "text"} <= set(d.value.columns)
             and len(d.value) == int(top["count"])
             and (d.value["true_intent"] == top["true_intent"]).all() and (d.value["intent"] == top["intent"]).all()]
    assert drill, "the drill-down table is missing"
    assert "No cell selected." not in _texts(at.caption)


def test_drilldown_on_the_folded_other_cell(db_path, sample):
    at = _app()
    at.number_input(key="intents_top_n").set_value(3)
    at = _rerun(at)
    conf = I.confusion(sample, top_n=3)
    expected = int(conf.counts.loc["other", "other"])
    at.session_state["intents_confusion"] = {"selection": {"cell": [{"true_intent": "other", "intent": "other"}]}}
    at = _rerun(at)
    assert f"predicted `other`: {expected:,}**" in _texts(at.markdown)


def test_fallback_intent_is_configurable(db_path, sample):
    at = _app()
    assert at.text_input(key="intents_fallback").value == "nlu_fallback"
    at.text_input(key="intents_fallback").set_value("no_such_intent")
    at = _rerun(at)
    # No true label is 'no_such_intent': out-of-scope recall is undefined and shown as a dash.
    assert _metric(at, "Out-of-scope recall").value == "—"
    row = I.threshold_table(sample, thresholds=[0.6], fallback_intent="no_such_intent").iloc[0]
    assert _metric(at, "In-scope accuracy").value == _pct(row["in_scope_accuracy"])


def _small_rows(n_labelled: int, *, timestamps: bool = True, model: bool = False):
    rows = []
    for i in range(n_labelled):
        true = ("greet", "bye", "nlu_fallback")[i % 3]
        pred = true if i % 4 else "bye"
        row = {"conversation_id": f"c{i}", "speaker": "user", "text": f"message {i}", "intent": pred,
               "confidence": 0.35 + (i % 7) / 10, "true_intent": true}
        if timestamps:
            row["timestamp"] = f"2024-01-{1 + i % 20:02d}T10:00:00Z"
        if model:
            row["model_version"] = "v1" if i % 2 else "v2"
        rows.append(row)
        rows.append({**row, "speaker": "bot", "text": "ok", "intent": None, "confidence": None, "true_intent": None})
    return rows


def test_notice_under_30_labelled_messages(db_path):
    _seed(db_path, messages_frame(_small_rows(12)))
    at = _app()
    warning = _texts(at.warning)
    assert "Only 12 labelled message(s)" in warning and "unreliable" in warning and "Audit" in warning
    assert _metric(at, "Labelled messages").value == "12"


def test_utterance_file_without_timestamps_or_models(db_path):
    # Like the HINT3 predictions: one utterance per conversation, no timestamps, no model_version.
    frame = messages_frame([r for r in _small_rows(40, timestamps=False) if r["speaker"] == "user"])
    _seed(db_path, frame)
    at = _app()
    assert "unreliable" not in _texts(at.warning)
    assert "Drift needs timestamps" in _texts(at.info)
    assert "Model A/B" not in [s.value for s in at.subheader]
    assert _metric(at, "Labelled messages").value == "40"


def test_without_labels_only_the_threshold_view(db_path):
    rows = [{k: v for k, v in r.items() if k != "true_intent"} for r in _small_rows(10)]
    _seed(db_path, messages_frame(rows))
    at = _app()
    assert "need human labels" in _texts(at.info)
    heads = [s.value for s in at.subheader]
    assert "Threshold what-if" in heads and "Confusion matrix" not in heads
    assert _metric(at, "Accuracy at threshold").value == "—"


def test_without_intents_says_what_to_map(db_path):
    _seed(db_path, messages_frame([{"conversation_id": "a", "speaker": "user", "text": "hi"}]))
    at = _app()
    assert "no predicted intents" in _texts(at.info)
    assert not at.subheader


def test_reviewer_labels_from_the_audit_store_are_read(db_path, monkeypatch):
    # The Audit page's reader (metrics.audit.store.intent_labels, another feature) is stood in
    # for here: it labels 20 of the unlabelled user messages, lifting 12 labels above 30.
    import pandas as pd

    from metrics.store import message_keys

    frame = messages_frame(_small_rows(32))
    users = frame[frame["speaker"] == "user"].copy()
    unlabelled = users.index[:20]
    frame.loc[unlabelled, "true_intent"] = pd.NA
    _seed(db_path, frame)
    labels = pd.DataFrame({"message_key": message_keys(frame.loc[unlabelled]).to_numpy(),
                           "true_intent": frame.loc[unlabelled, "intent"].to_numpy()})
    from metrics.audit import store as audit_store

    monkeypatch.setattr(audit_store, "intent_labels", lambda db, dataset_id: labels)
    at = _app()
    assert _metric(at, "Labelled messages").value == "32"
    assert "20 reviewer label(s) from the Audit page are applied" in _texts(at.caption)
    assert "unreliable" not in _texts(at.warning)
