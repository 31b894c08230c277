"""AppTest of the Improvement page: change log, before/after warnings, backlog effort, accept, done, report."""

from __future__ import annotations

import datetime as dt

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from metrics import store
from metrics.improve import store as goals_store


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("improve") / "chatlens.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHATLENS_DB", str(path))
        yield path


def page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "9_Improvement.py"), default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


def _db(path):
    return store.connect(str(path))


def _add(at: AppTest, date: dt.date, title: str, metric: str, kind: str = "training_data") -> AppTest:
    at.date_input(key="improve_date").set_value(date)
    at.selectbox(key="improve_kind").set_value(kind)
    at.selectbox(key="improve_metric").set_value(metric)
    at.text_input(key="improve_title").set_value(title)
    at.text_area(key="improve_why").set_value("billing was confused with refund")
    at.form_submit_button[0].click().run()
    assert not at.exception, at.exception
    return at


def test_add_changes_and_see_before_after_with_attribution_warnings(store_path):
    at = page()
    assert any("change log is empty" in i.value for i in at.info)
    _add(at, dt.date(2026, 9, 21), "Deploy nlu-v2", "intent_accuracy")
    assert any("Added “Deploy nlu-v2” to the change log." in s.value for s in at.success)
    results = at.dataframe[1].value
    row = results.iloc[0]
    # 2026-09-07..20 vs 2026-09-21..10-04 on the labelled messages: 88.7% -> 93.6% (the sample's nlu-v2 switch).
    assert (row["before"], row["after"], row["difference"], bool(row["attributable"])) == \
        ("88.7%", "93.6%", "+4.9 pp", True)
    assert "significant improvement" in row["verdict"]
    assert not at.warning

    # A second change a week later falls inside both windows: neither can be attributed any more.
    _add(at, dt.date(2026, 9, 28), "Fix the app bug", "total_conversations", kind="workflow_change")
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 2 and all("cannot be attributed" in w for w in warnings)
    assert "another change falls inside the window" in warnings[0]
    # The chart layers the change log as annotations.
    spec = at.get("vega_lite_chart")[0].proto.spec
    assert "Deploy nlu-v2" in spec or any(b"Deploy nlu-v2" in d.data.data for d in at.get("vega_lite_chart")[0]
                                          .proto.datasets)

    # Edit the second entry: moved a month later, outside the first entry's windows -> both attributable again.
    at.selectbox(key="improve_delete_pick").set_value(2).run()
    at.date_input(key="improve_edit_date_2").set_value(dt.date(2026, 10, 26))
    at.text_input(key="improve_edit_title_2").set_value("Fix the app bug (later)")
    [b for b in at.button if b.label == "Save changes"][0].click().run()
    assert goals_store.get_change(_db(store_path), 2).title == "Fix the app bug (later)"
    assert not [w for w in at.warning if "Deploy nlu" in w.value]

    # A window shorter than 14 days is never attributed.
    goals_store.delete_change(_db(store_path), 2)
    at.run()
    at.number_input(key="improve_window").set_value(7).run()
    assert any("at least 14 are needed" in w.value for w in at.warning)
    at.number_input(key="improve_window").set_value(14).run()


def test_backlog_effort_accept_and_done(store_path):
    at = page()
    db = _db(store_path)
    dataset = int(store.list_datasets(db)["id"].iloc[0])
    # Rank 1 on the sample is the escalation reason "Customer requested agent" (280 over 13.1 weeks = 21.6/week).
    assert at.selectbox(key="improve_pick").value == "escalation_reason:Customer requested agent"
    # Effort 10 for it: 21.6 / 10 = 2.2 drops it below the next items.
    at.session_state["improve_backlog_editor"] = {"edited_rows": {0: {"effort": 10.0}}, "added_rows": [],
                                                  "deleted_rows": []}
    at.run()
    at.button(key="improve_save_efforts").click().run()
    assert not at.exception
    state = goals_store.backlog_state(db, dataset)
    assert state.set_index("item_key").loc["escalation_reason:Customer requested agent", "effort"] == 10.0
    # The edit was positional: after re-ranking, saving again must not give row 0's new item that effort.
    at.button(key="improve_save_efforts").click().run()
    assert len(goals_store.backlog_state(db, dataset)) == 1
    options = at.selectbox(key="improve_pick").options
    assert options[0] == "#1 Is there anything else I can help you with?"        # 15.9/week, effort 1
    # 21.6 / 10 = 2.16 per week of effort: 24 candidates score higher (the 33rd and last scores 1.54).
    assert "#25 Customer requested agent" in options

    picked = "bot_message:Is there anything else I can help you with?"
    at.selectbox(key="improve_pick").set_value(picked)
    at.date_input(key="improve_accept_date").set_value(dt.date(2026, 10, 12))
    at.button(key="improve_accept").click().run()
    assert not at.exception
    accepted = [e for e in goals_store.list_changes(db, dataset_id=dataset) if e.backlog_key == picked]
    assert len(accepted) == 1 and accepted[0].date == dt.date(2026, 10, 12) and accepted[0].title.startswith("Fix: ")
    assert at.selectbox(key="improve_done_pick").value == picked
    at.button(key="improve_done").click().run()
    state = goals_store.backlog_state(db, dataset).set_index("item_key")
    assert state.loc[picked, "status"] == "done"


def test_report_lists_each_change_with_what_happened(store_path):
    at = page()
    report = [m.value for m in at.markdown if "Improvement report" in m.value]
    # real Markdown: only what would change the document is escaped (a "-" inside a title is not)
    assert report and "##### 2026-09-21: Deploy nlu-v2" in report[0] and "What happened" in report[0]
    assert any(b.label == "Download the improvement report (Markdown)" for b in at.get("download_button"))
