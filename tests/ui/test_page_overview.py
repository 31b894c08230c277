"""AppTest of the home page: executive and operational views, goals editor, alert rules, weekly review."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, messages_frame
from metrics import kpis, store
from metrics.improve import store as goals_store


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    """One on-disk store for the module (the sample loads once), set as CHATLENS_DB."""
    path = tmp_path_factory.mktemp("overview") / "chatlens.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHATLENS_DB", str(path))
        yield path


def home() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


def _db(path):
    return store.connect(str(path))


def test_executive_view_tiles_strip_and_review(store_path):
    at = home()
    labels = [m.label for m in at.metric]
    # The dataset's size, then the goals first (the suggested ones: nothing saved yet), then extra KPIs, at most
    # 8 tiles; then the 4-figure business strip.
    assert labels[0] == "Conversations" and at.metric[0].value == "2,955"
    assert labels[1:5] == ["Resolution rate · last week", "Lead conversion · last week",
                           "Intent accuracy · last week", "Cost per outcome · last week"]
    assert labels[9:] == ["Leads per month", "Attributed revenue · period", "Cost savings · period",
                          "Cost per outcome · period"]
    tiles = {m.label: m for m in at.metric}
    assert tiles["Resolution rate · last week"].value == "55.1%"
    assert tiles["Escalation rate · last week"].value == "20.5%"
    assert tiles["Escalation rate · last week"].delta == "-3.4 pp"
    badges = [m.value for m in at.markdown if "-badge[" in m.value]
    assert badges[:4] == [":red-badge[Off track]", ":green-badge[On track]", ":orange-badge[Watch]",
                          ":orange-badge[Watch]"]
    assert any("suggested goals" in s.value for s in at.subheader)
    review = [m.value for m in at.markdown if "Weekly review: 2026-W44" in m.value]
    # real Markdown: only the $ is escaped on the page (Streamlit reads $...$ as maths), never . ( ) - or %
    assert review and "One thing to optimise this week" in review[0] and "\\$14.50" in review[0]
    assert "\\." not in review[0] and "\\(" not in review[0] and "\\%" not in review[0]
    assert [b.label for b in at.get("download_button")] == ["Download the comparison (CSV)", "Download Markdown",
                                                            "Download CSV", "Download report"]
    assert any("No alert breached in 2026-W44" in s.value for s in at.success)


def test_goals_editor_refuses_without_a_revenue_or_cost_metric_then_saves(store_path):
    at = home()
    # Row 3 (0-based) is the suggested cost goal: turn it into an escalation goal -> no revenue/cost metric left.
    at.session_state["overview_goals_editor"] = {
        "edited_rows": {3: {"name": "Fewer hand-offs", "metric": "escalation_rate", "target": 0.2, "red": 0.3,
                            "green": 0.2}},
        "added_rows": [], "deleted_rows": []}
    at.run()
    at.button(key="overview_goals_save").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("revenue or cost metric" in e for e in errors), errors
    assert goals_store.list_goals(_db(store_path)) == []          # nothing saved

    at.session_state["overview_goals_editor"] = {
        "edited_rows": {3: {"name": "Recorded revenue", "metric": "revenue", "target": 20000.0, "red": 5000.0,
                            "green": 20000.0}},
        "added_rows": [], "deleted_rows": []}
    at.run()
    at.button(key="overview_goals_save").click().run()
    assert not at.exception
    saved = goals_store.list_goals(_db(store_path))
    assert [g.metric for g in saved] == ["resolution_rate", "lead_conversion_rate", "intent_accuracy", "revenue"]
    assert any("Saved 4 goals." in s.value for s in at.success)
    assert [m.label for m in at.metric][4] == "Revenue (recorded) · last week"
    assert not any("suggested goals" in s.value for s in at.subheader)
    # "Use suggestions" refills the editor (nothing is saved until "Save goals").
    at.button(key="overview_goals_reset").click().run()
    assert not at.exception
    assert [g.metric for g in goals_store.list_goals(_db(store_path))][-1] == "revenue"
    at.button(key="overview_goals_save").click().run()
    assert [g.metric for g in goals_store.list_goals(_db(store_path))][-1] == "cost_per_outcome"


def test_vanity_goal_shows_a_warning(store_path):
    at = home()
    at.session_state["overview_goals_editor"] = {
        "edited_rows": {}, "deleted_rows": [],
        "added_rows": [{"name": "Handle volume", "bot_type": "support", "metric": "total_conversations",
                        "target": 300, "red": 100, "green": 300}]}
    at.run()
    assert any("vanity" in w.value for w in at.warning)


def test_operational_view_links_each_item_to_its_page_and_filter(store_path):
    at = home()
    at.segmented_control(key="overview_view").set_value("Operational").run()
    assert not at.exception
    links = [(p.proto.page, p.proto.query_string, p.proto.label) for p in at.get("page_link")]
    pages = {page for page, _, _ in links}
    assert {"Intents", "Outcomes", "Funnel", "Sentiment", "Improvement"} <= pages
    assert ("Outcomes", "reason=Customer+requested+agent") in {(p, q) for p, q, _ in links}
    assert any(p == "Funnel" and q.startswith("stage=") for p, q, _ in links)
    assert any(p == "Intents" and q.startswith("intent=") for p, q, _ in links)
    texts = " ".join(m.value for m in at.markdown)
    for heading in ("Worst-recognised intents", "Top escalation reasons", "Funnel stage with the biggest drop",
                    "Bot messages most often answered negatively", "Lowest-scoring audit topics"):
        assert heading in texts
    assert any("no audit scores yet" in c.value for c in at.caption)
    assert not [m for m in at.metric if m.label.endswith("· last week")]     # the tiles belong to the executive view
    at.radio(key="overview_ops_window").set_value("Latest complete week").run()
    assert any("over 2026-W44" in c.value for c in at.caption)


def test_saved_alert_rule_is_breached_on_the_dashboard(store_path):
    at = home()
    at.segmented_control(key="overview_view").set_value("Operational").run()
    at.session_state["overview_rules_editor"] = {
        "edited_rows": {0: {"rule": "intent_accuracy < 99%", "name": "NLU floor"}}, "added_rows": [],
        "deleted_rows": []}
    at.run()
    at.button(key="overview_rules_save").click().run()
    assert not at.exception
    stored = goals_store.list_alert_rules(_db(store_path))
    assert stored["rule"].tolist() == ["intent_accuracy < 0.99", "escalation_rate > 0.3", "volume_spike"]
    breached = [e.value for e in at.error]
    assert any("Breached alerts" in e and "NLU floor: 94.2% in 2026-W44" in e for e in breached), breached

    at.session_state["overview_rules_editor"] = {"edited_rows": {1: {"rule": "escalation rate >> 3"}},
                                                 "added_rows": [], "deleted_rows": []}
    at.run()
    at.button(key="overview_rules_save").click().run()
    shown = [e.value.replace("\\", "") for e in at.error]            # Markdown-escaped on the page
    assert any("row 2" in e and "escalation rate >> 3" in e for e in shown), shown
    goals_store.save_alert_rules(_db(store_path), [])                 # back to the default rules for other tests


def test_dataset_without_timestamps_degrades_gracefully(tmp_path, monkeypatch):
    path = tmp_path / "untimed.db"
    monkeypatch.setenv("CHATLENS_DB", str(path))
    frame = messages_frame([{"conversation_id": f"c{i}", "speaker": s, "text": "hi"} for i in range(4)
                            for s in (("user", "agent") if i % 2 else ("user", "bot"))])
    store.save_messages(store.connect(str(path)), frame, dataset_name="untimed")
    at = home()
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Escalation rate · all data"] == "50.0%"          # over all the data, no deltas
    assert any("Alerts not evaluated" in c.value and "timestamps" in c.value for c in at.caption)
    assert any("Intent accuracy" in m.label for m in at.metric)     # a goal's tile stays, showing "—"
    assert tiles["Intent accuracy · all data"] == "—"
    at.segmented_control(key="overview_view").set_value("Operational").run()
    assert not at.exception


def test_download_report_builds_a_self_contained_page_of_the_selected_data(store_path):
    import re

    from ui import overview

    at = home()
    assert not at.exception
    button = [b for b in at.get("download_button") if b.proto.label == "Download report"]
    assert button, "the Overview offers the report"
    # build it the way the button does (AppTest does not run deferred downloads)
    from metrics import store
    from metrics.core.rollup import conversation_rollup
    from metrics.sentiment import add_sentiment

    db = _db(store_path)
    info = store.list_datasets(db).iloc[0]
    messages = store.load_messages(db, int(info["id"]))
    scored = add_sentiment(messages)
    ctx = type("Ctx", (), {"db": db, "dataset_id": int(info["id"]), "dataset_name": info["name"],
                           "rollup": conversation_rollup(messages)})()
    html = overview.report_html(ctx, scored, goals=(), rules=("volume_spike",), options=None, view="executive")
    text = html.decode()
    assert text.startswith("<!DOCTYPE html>") and "Resolution rate" in text
    assert not re.search(r"""(?:src|href)\s*=\s*["']?https?://""", text)


def test_compare_two_periods_shows_every_kpi_side_by_side_with_its_test(store_path):
    from metrics.improve import compare
    from metrics import store as store_mod
    from metrics.core.rollup import conversation_rollup
    from metrics.sentiment import add_sentiment

    at = home()
    assert not at.exception
    frames = [d.value for d in at.dataframe if "p-value" in getattr(d.value, "columns", [])]
    assert len(frames) == 1
    shown = frames[0]
    # the same numbers as metrics.improve.compare on the latest week of the stored data, each in its unit's precision
    db = _db(store_path)
    info = store_mod.list_datasets(db).iloc[0]
    messages = store_mod.load_messages(db, int(info["id"]))
    rollup = conversation_rollup(messages)
    expected = compare.compare_periods(add_sentiment(messages), rollup, compare.latest_period(rollup, freq="W"))
    assert shown["KPI"].tolist() == expected["label"].tolist()
    assert shown["A"].tolist() == [kpis.format_value(v, k) if v == v else "no value"
                                   for v, k in zip(expected["value_a"], expected["kind"])]
    csat = shown.set_index("KPI").loc["CSAT (mean rating)"]
    assert re.fullmatch(r"\d\.\d\d", csat["A"]) and re.fullmatch(r"0\.\d{3}|1\.000", csat["p-value"])
    assert not shown.isna().any().any() and not shown.map(lambda v: v in ("None", "nan")).any().any()
    assert set(shown["test"]) >= {"two-proportion z-test"}
    at.radio(key="overview_compare_periods").set_value("Latest month vs the month before").run()
    assert not at.exception
    month = [d.value for d in at.dataframe if "p-value" in getattr(d.value, "columns", [])][0]
    assert month["A"].tolist() != shown["A"].tolist()
    assert at.query_params["compare"] == "Latest month vs the month before"  # the choice is in the URL
