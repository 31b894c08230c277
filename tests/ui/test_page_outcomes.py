"""The Outcomes & escalations page (pages/3_Outcomes.py) under AppTest: the default sample, the outcome-rule
widgets, the five-definition table, the early-escalation warning, selection-driven drill-downs, the
ten-conversation golden fixture and a dataset without timestamps.

Expected numbers are computed independently with metrics.outcomes / escalation / abandonment."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest
from test_outcomes import ten_conversations

from conftest import drill_count, ROOT, apptest_metric, apptest_page, apptest_rerun, messages_frame
from metrics import outcomes
from metrics.outcomes import abandonment
from metrics.outcomes import escalation
from metrics.core.rollup import conversation_rollup

PAGE = "pages/3_Outcomes.py"
SAMPLE = ROOT / "data" / "sample_transcripts.csv.gz"


_listed = drill_count


def _table_with_ids(at: AppTest, n: int) -> bool:
    return any("conversation_id" in d.value.columns and len(d.value) == min(n, 1000) for d in at.dataframe)


def _pct(v) -> str:
    return "—" if v != v else f"{v:.1%}"


@pytest.fixture(scope="module")
def sample():
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} is absent (generate it with python -m data.generate)")
    from metrics.io.loaders import load_bytes

    frame = load_bytes(SAMPLE.read_bytes(), SAMPLE.name).frame
    return frame, conversation_rollup(frame)


def _rules(frame, **kw):
    return outcomes.OutcomeRules(export_end=frame["timestamp"].max(), **kw)


def _seed(db_path, frame, name="outcomes test"):
    from metrics import store

    db = store.connect(str(db_path))
    store.save_messages(db, frame, dataset_name=name, source_format="csv", file_name="outcomes.csv")
    db.close()


def test_default_sample_renders_every_section(db_path, sample):
    m, r = sample
    at = apptest_page(PAGE)
    heads = [s.value for s in at.subheader]
    for section in ("Outcome mix over time", "Same data, five definitions", "Escalations",
                    "Hand-off wait and success", "Where users drop off", "Resolution by topic and intent"):
        assert section in heads
    rates = outcomes.outcome_rates(m, r, rules=_rules(m))
    assert apptest_metric(at, "Resolution · period").value == _pct(rates.resolution_rate)
    assert apptest_metric(at, "Abandonment · period").value == _pct(rates.abandonment_rate)
    assert apptest_metric(at, "Containment · period").value == _pct(rates.containment_rate)
    # the five-definition table, each definition in an expander
    tables = [d.value for d in at.dataframe if "style" in d.value.columns]
    assert tables and tables[0]["style"].tolist() == list(outcomes.VENDOR_STYLES)
    labels = [e.label for e in at.expander]
    assert all(f"How {style} counts" in labels for style in outcomes.VENDOR_STYLES)
    # the sample escalates early: the 40 % warning is shown with the computed share
    timing = escalation.escalation_timing(m, r)
    assert timing.warning and any(w.value == timing.warning for w in at.warning)
    assert len(at.get("vega_lite_chart")) >= 8 and len(at.get("download_button")) >= 9


def test_reason_and_vendor_drill_downs(db_path, sample):
    m, r = sample
    at = apptest_page(PAGE)
    reasons = escalation.escalation_reasons(m, r).set_index("reason")["conversation_count"]
    top = reasons.index[0]
    at.session_state["outcomes_reasons"] = {"selection": {"reason_pick": [{"reason": top}]}}
    at.session_state["outcomes_vendor"] = {"selection": {"vendor_pick": [{"style": "Rasa style",
                                                                           "metric": "abandonment"}]}}
    apptest_rerun(at)
    assert _listed(at, "Escalations (reason") == reasons[top]
    assert _table_with_ids(at, int(reasons[top]))
    vendor = outcomes.vendor_definitions(m, r, rules=_rules(m)).set_index("style")
    assert _listed(at, "Rasa style: abandoned") == vendor.loc["Rasa style", "abandoned_count"]


def test_abandonment_and_turn_drill_downs(db_path, sample):
    m, r = sample
    at = apptest_page(PAGE)
    last = abandonment.last_bot_messages(m, r, rules=_rules(m))
    text, count = last.iloc[0]["text"], int(last.iloc[0]["abandoned_count"])
    turns = escalation.escalation_turns(m, r).set_index("turn")["conversation_count"]
    at.session_state["outcomes_lastbot"] = {"selection": {"lastbot_pick": [{"text": text}]}}
    at.session_state["outcomes_turns"] = {"selection": {"turn_pick": [{"turn": 2}]}}
    apptest_rerun(at)
    assert _listed(at, "Abandoned after") == count
    assert _listed(at, "Escalations at that turn") == turns[2]


def test_outcome_rule_widgets(db_path, sample):
    m, r = sample
    at = apptest_page(PAGE)
    at.radio(key="outcomes_mode").set_value("no_goal")
    at.number_input(key="outcomes_timeout").set_value(120)
    apptest_rerun(at)
    rates = outcomes.outcome_rates(m, r, rules=_rules(m, abandonment_mode="no_goal", timeout_minutes=120))
    assert apptest_metric(at, "Abandonment · period").value == _pct(rates.abandonment_rate)
    assert apptest_metric(at, "In progress").value == f"{rates.in_progress_count:,}"
    # the Chatlens row of the definitions table follows the widgets too
    table = [d.value for d in at.dataframe if "style" in d.value.columns][0].set_index("style")
    assert table.loc["Chatlens default", "abandonment"] == _pct(rates.abandonment_rate)  # shown as text
    assert "None" not in table.to_string() and "nan" not in table.to_string()


def test_ten_conversation_fixture(db_path):
    m = ten_conversations()
    _seed(db_path, m)
    at = apptest_page(PAGE)
    # export end = c10's last message, so c10 is in progress: 4 resolved of 9 decided (see test_outcomes)
    assert apptest_metric(at, "Resolution · period").value == "44.4%"
    assert apptest_metric(at, "In progress").value == "1"
    assert apptest_metric(at, "Escalated conversations").value == "2"
    # c03 waited 120 s for Sam
    assert any("Median wait 2.0 min" in c.value for c in at.caption)
    at.session_state["outcomes_tag"] = {"selection": {"tag_pick": [{"tag": "complaint"}]}}
    apptest_rerun(at)
    assert _listed(at, "Conversations tagged") == 3  # c03 c04 c08


def test_without_timestamps(db_path):
    frame = messages_frame([
        {"conversation_id": "a", "speaker": "user", "text": "price?", "topic": "inquiry"},
        {"conversation_id": "a", "speaker": "bot", "text": "Which plan?", "topic": "inquiry"},
        {"conversation_id": "b", "speaker": "user", "text": "human please", "topic": "request"},
        {"conversation_id": "b", "speaker": "agent", "text": "Hi", "topic": "request"},
    ])
    _seed(db_path, frame)
    at = apptest_page(PAGE)
    infos = " ".join(i.value for i in at.info)
    assert "needs timestamps" in infos
    assert apptest_metric(at, "Abandonment · period").value == "50.0%"   # a: unanswered bot question
    assert apptest_metric(at, "Escalation · period").value == "50.0%"    # b: agent
    assert [r.options for r in at.radio if r.key == "outcomes_esc_by"][0] == ["topic", "intent", "channel"]


@pytest.mark.e2e
def test_browser_click_a_reason_bar_lists_conversations(streamlit_server, page):
    import re

    from conftest import screenshot, wait_idle

    page.goto(f"{streamlit_server.url}/Outcomes")
    wait_idle(page)
    page.get_by_role("heading", name="Outcomes & escalations").first.wait_for(timeout=60000)
    assert page.locator('[data-testid="stException"]').count() == 0
    # charts in page order: outcome mix, five definitions, escalation reasons (bars sorted, longest first)
    marks = page.get_by_test_id("stVegaLiteChart").nth(2).locator("svg.marks")
    marks.wait_for(timeout=60000)
    top_bar = marks.locator("g.mark-rect path").first
    listed = page.get_by_text(re.compile(r"Escalations \(reason .+\): [\d,]+ conversation\(s\)")).first
    for _attempt in range(3):  # vega may still be wiring its handlers on a busy machine: retry the click
        top_bar.click(timeout=30000)
        wait_idle(page)
        try:
            listed.wait_for(timeout=20000)
            break
        except Exception:  # noqa: BLE001 - retried, then asserted below
            continue
    listed.wait_for(timeout=20000)
    # the server opened on the built-in sample: the top bar is its most frequent reason
    if SAMPLE.exists():
        from metrics.io.loaders import load_bytes

        frame = load_bytes(SAMPLE.read_bytes(), SAMPLE.name).frame
        top = escalation.escalation_reasons(frame, conversation_rollup(frame)).iloc[0]
        assert f"(reason {top['reason']}): {top['conversation_count']:,} conversation(s)" in listed.inner_text()
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "outcomes_reason_drill_down")
