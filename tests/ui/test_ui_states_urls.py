"""Shareable views (issue 19, item 5): each page's main choices live in the URL query string, a copied link
reopens them, an out-of-range value falls back with a notice. On the built-in sample, under AppTest."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    """One store for the module (the sample loads on the first page), set as CHATLENS_DB."""
    path = tmp_path_factory.mktemp("urls") / "chatlens.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHATLENS_DB", str(path))
        yield path


def _open(page: str, **query) -> AppTest:
    """``page`` opened from a link carrying ``query`` (as a colleague opening a shared URL)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    if page == "app.py":
        for key, value in query.items():
            at.query_params[key] = value
    at.run()
    if page != "app.py":
        at.switch_page(page)
        for key, value in query.items():
            at.query_params[key] = value
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _notices(at: AppTest) -> list[str]:
    return [w.value for w in at.warning if "The link" in w.value]


def test_overview_view_from_the_link_and_back_into_it(store_path):
    at = _open("app.py", view="Operational", window="All selected data")
    assert at.segmented_control(key="overview_view").value == "Operational"
    assert at.radio(key="overview_ops_window").value == "All selected data"
    assert not _notices(at)
    at.segmented_control(key="overview_view").set_value("Executive").run()
    assert "view" not in at.query_params  # the default is left out of the link
    at.segmented_control(key="overview_view").set_value("Operational").run()
    assert at.query_params["view"] == "Operational"


def test_overview_bad_link_value_falls_back_with_a_notice(store_path):
    at = _open("app.py", view="Bogus")
    assert at.segmented_control(key="overview_view").value == "Executive"
    notices = _notices(at)
    assert len(notices) == 1 and "Bogus" in notices[0] and "Executive" in notices[0]
    assert "view" not in at.query_params


def test_engagement_choices_round_trip_and_a_threshold_out_of_range(store_path):
    at = _open("pages/2_Engagement.py", group="month", k="99")
    assert at.radio(key="engagement_period").value == "month"
    assert at.number_input(key="engagement_spike_k").value == 3.5
    notices = _notices(at)
    assert len(notices) == 1 and "99" in notices[0] and "1.0 to 10.0" in notices[0]
    at.number_input(key="engagement_spike_k").set_value(5.0).run()
    assert at.query_params["k"] == "5.0" and at.query_params["group"] == "month"
    assert not _notices(at)  # shown once, on the run that read the link


def test_outcomes_definition_choices_come_from_the_link(store_path):
    at = _open("pages/3_Outcomes.py", timeout="45", abandoned="no_goal", rasa="abc")
    assert at.number_input(key="outcomes_timeout").value == 45
    assert at.radio(key="outcomes_mode").value == "no_goal"
    assert at.number_input(key="outcomes_rasa_minutes").value == 60
    assert any("abc" in n for n in _notices(at))


def test_funnel_and_intents_choices_from_the_link(store_path):
    at = _open("pages/6_Funnel.py", order="False", show="conversations")
    assert at.toggle(key="funnel_strict").value is False
    assert at.radio(key="funnel_by_value").value == "conversations"
    at = _open("pages/4_Intents.py", threshold="0.8", top="500")
    assert at.slider(key="intents_threshold").value == pytest.approx(0.8)
    assert at.number_input(key="intents_top_n").value == 12
    assert any("500" in n for n in _notices(at))


def test_sentiment_period_from_the_link(store_path):
    at = _open("pages/5_Sentiment.py", group="day")
    assert at.radio(key="sentiment_freq").value == "day"
    at.radio(key="sentiment_freq").set_value("week").run()
    assert "group" not in at.query_params


def test_audit_tab_link_with_an_unknown_tab_says_so(store_path):
    from metrics import store
    from metrics.audit import store as audit_store

    db = store.connect(str(store_path))
    audit_store.add_reviewer(db, "Ana")
    db.close()
    at = _open("pages/8_Audit.py", reviewer="Ana", tab="Nope", kappa="nonsense")
    assert any("Nope" in n and "Review" in n for n in _notices(at))


def test_overview_roi_costs_from_the_link(store_path):
    """The Overview's "ROI costs from" is a choice of the link (?costs=<saved scenario>); an unknown scenario
    falls back to the guide's example costs with a notice."""
    from metrics import roi, store
    from metrics.roi import store as roi_store

    _open("app.py")  # the store (and its sample) exists
    db = store.connect(str(store_path))
    roi_store.save_scenario(db, "Lean team", roi.RoiInputs(platform_cost_monthly=100.0))
    db.close()
    shared = _open("app.py", costs="Lean team")
    assert shared.selectbox(key="overview_roi_scenario").value == "Lean team"
    assert not _notices(shared)
    assert any("Lean team" in c.value for c in shared.caption)
    bad = _open("app.py", costs="Nobody's")
    assert bad.selectbox(key="overview_roi_scenario").value == "Guide's example costs"
    assert any("Nobody's" in n for n in _notices(bad))
    bad.selectbox(key="overview_roi_scenario").set_value("Lean team").run()
    assert bad.query_params["costs"] == "Lean team"
