"""Switching the active dataset never carries one dataset's figures into another.

A session visits a page on dataset A (the built-in sample: it derives leads, lead value and conversion
from its data), then switches the sidebar's dataset to B (a small hand-made export with no lead columns,
so the leads inputs keep the guide's defaults). Every figure the page shows must then equal what a fresh
session that opened B directly shows. What the user typed on A is kept for A: switching back restores it.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, messages_frame

ROI = "pages/7_ROI.py"


def _small_rows() -> list[dict]:
    rows = []
    for i in range(8):
        day = f"2026-0{1 + i % 3}-{10 + i:02d}"
        rows += [{"conversation_id": f"b{i}", "speaker": "user", "text": f"where is my order {i}",
                  "timestamp": f"{day}T10:00:00Z", "intent": "order_status", "channel": "web"},
                 {"conversation_id": f"b{i}", "speaker": "bot", "text": "It ships tomorrow.",
                  "timestamp": f"{day}T10:00:05Z"}]
        if i % 4 == 0:
            rows.append({"conversation_id": f"b{i}", "speaker": "agent", "text": "Let me check.",
                         "timestamp": f"{day}T10:01:00Z"})
    return rows


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    """A store holding the sample (A) and a small dataset without lead columns (B); CHATLENS_DB points at it."""
    from metrics import store
    from metrics.io.loaders import load_bytes
    from ui.shell import SAMPLE_NAME, SAMPLE_PATH

    path = tmp_path_factory.mktemp("switching") / "chatlens.db"
    db = store.connect(str(path))
    sample = load_bytes(SAMPLE_PATH.read_bytes(), SAMPLE_PATH.name)
    a = store.save_messages(db, sample.frame, dataset_name=SAMPLE_NAME, source_format=sample.format).dataset_id
    b = store.save_messages(db, messages_frame(_small_rows()), dataset_name="small export").dataset_id
    from metrics.audit import store as audit_store

    audit_store.add_reviewer(db, "ann")  # the Audit page shows the round builder for a reviewer
    import pandas as pd

    from metrics import audit

    ids = sample.frame["conversation_id"].drop_duplicates().head(4).tolist()
    audit_store.create_round(db, name="round on A", dataset_id=a, strategy="random", seed=1,
                             sample=pd.DataFrame({"position": range(1, 5), "conversation_id": ids}),
                             assignments=audit.assign_reviewers(ids, ["ann"], overlap_rate=0.0))
    db.close()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHATLENS_DB", str(path))
        yield int(a), int(b)


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _open(path: str, dataset_id: int, *, reviewer: bool = False) -> AppTest:
    """``path`` opened through app.py (so the shell's page links resolve) with ``dataset_id`` active;
    ``reviewer``: as the stored reviewer "ann" (``?reviewer=ann``)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["active_dataset_id"] = dataset_id
    _run(at)
    if path != "app.py":
        at.switch_page(path)
        if reviewer:
            at.query_params["reviewer"] = "ann"
        _run(at)
    return at


def _switch(at: AppTest, title: str, dataset_id: int) -> AppTest:
    """Pick ``dataset_id`` in the sidebar's dataset selector, as a user does."""
    at.selectbox(key=f"shell_dataset_{title}").set_value(dataset_id)
    return _run(at)


def _figures(at: AppTest) -> dict:
    """Every metric tile, number input and slider of the page (label/key -> value)."""
    shown = {f"metric {m.label}": m.value for m in at.metric}
    shown |= {f"number {n.key}": n.value for n in at.number_input}
    shown |= {f"slider {s.key}": s.value for s in at.slider}
    return shown


def _roi_link(at: AppTest) -> dict:
    from metrics.roi import FIELDS

    return {f.name: at.query_params.get(f.name) for f in FIELDS}


def test_roi_after_a_switch_equals_roi_opened_on_the_new_dataset(two_datasets):
    a, b = two_datasets
    at = _open(ROI, a)
    on_a = _figures(at)
    fresh_b = _open(ROI, b)
    expected = _figures(fresh_b)
    assert on_a != expected  # the sample derives other leads, so the check below can fail

    _switch(at, "ROI", b)
    assert _figures(at) == expected
    assert _roi_link(at) == _roi_link(fresh_b)  # the link holds B's inputs, not A's
    assert not [w.value for w in at.warning]


def test_typed_what_ifs_are_kept_per_dataset(two_datasets):
    a, b = two_datasets
    at = _open(ROI, a)
    at.number_input(key="roi_platform_cost_monthly").set_value(7000.0).run()
    at.number_input(key="roi_leads_monthly").set_value(150.0).run()
    typed_on_a = _figures(at)
    assert typed_on_a["number roi_leads_monthly"] == 150.0

    _switch(at, "ROI", b)
    assert _figures(at) == _figures(_open(ROI, b))  # nothing typed on A shows on B
    at.number_input(key="roi_value_per_lead").set_value(2500.0).run()
    typed_on_b = _figures(at)

    _switch(at, "ROI", a)
    assert _figures(at) == typed_on_a  # switching back restores what was typed on A
    assert at.query_params["platform_cost_monthly"] == "7000" and at.query_params["leads_monthly"] == "150"
    _switch(at, "ROI", b)
    assert _figures(at) == typed_on_b


def test_a_roi_link_reopens_its_dataset(two_datasets):
    """A copied link names its dataset: a fresh session opening it shows that dataset's scenario."""
    a, b = two_datasets
    first = _open(ROI, b)
    first.number_input(key="roi_value_per_lead").set_value(2500.0).run()
    link = dict(first.query_params)
    assert link.get("dataset") == str(b)

    second = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    second.session_state["active_dataset_id"] = a
    _run(second)
    second.switch_page(ROI)
    second.query_params.update(link)
    _run(second)
    assert second.session_state["active_dataset_id"] == b
    assert _figures(second) == _figures(first)


def _everything(at: AppTest) -> dict:
    """:func:`_figures` plus every table's content and every caption, info and warning text (the numbers a page
    writes in sentences), without the URL-notice of a fresh session."""
    shown = _figures(at)
    for i, frame in enumerate(at.dataframe):
        shown[f"table {i}"] = frame.value.astype("string").fillna("<NA>").to_dict("list")
    shown["text"] = [e.value for e in [*at.caption, *at.info, *at.warning]]
    shown.pop("number audit_seed", None)  # a fresh random seed per session, by design (the round records it)
    return shown


PAGES = [("app.py", "Overview"), ("pages/1_Data.py", "Data"), ("pages/2_Engagement.py", "Engagement"),
         ("pages/3_Outcomes.py", "Outcomes & escalations"), ("pages/4_Intents.py", "Intents"),
         ("pages/5_Sentiment.py", "Sentiment"), ("pages/6_Funnel.py", "Funnel"), ("pages/7_ROI.py", "ROI"),
         ("pages/8_Audit.py", "Audit"), ("pages/9_Improvement.py", "Improvement"), ("pages/10_Topics.py", "Topics"),
         ("pages/11_Conversations.py", "Conversations")]


@pytest.mark.parametrize(("path", "title"), PAGES, ids=[t for _, t in PAGES])
def test_every_page_after_a_switch_equals_a_fresh_open(two_datasets, path, title):
    """The issue's test: each page first on the sample, then switched to B, shows what a fresh session on B
    shows (tiles, inputs, sliders, tables, and the numbers in captions and notices)."""
    a, b = two_datasets
    at = _open(path, a, reviewer=title == "Audit")
    on_a = _everything(at)
    _switch(at, title, b)
    on_b = _everything(at)
    fresh = _everything(_open(path, b, reviewer=title == "Audit"))
    assert on_b == fresh
    assert on_a != fresh  # the two datasets differ on this page, so the check above can fail


def test_a_filter_change_refreshes_the_data_values_and_keeps_typed_costs(two_datasets):
    """Same dataset, other filters: what the data gives follows the filter; what the user typed stays."""
    a, _ = two_datasets
    at = _open(ROI, a)
    before = _figures(at)
    at.number_input(key="roi_platform_cost_monthly").set_value(7000.0).run()
    at.multiselect(key="shell_channel_ROI").set_value(["web"])
    _run(at)
    after = _figures(at)
    assert after["number roi_platform_cost_monthly"] == 7000.0
    assert after["number roi_conversations_monthly"] < before["number roi_conversations_monthly"]
    assert at.query_params["platform_cost_monthly"] == "7000"
