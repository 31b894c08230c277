"""The Engagement page (pages/2_Engagement.py) under AppTest: the default sample, the week/month toggle,
spike markers and warning, selection-driven drill-downs, and a dataset without timestamps.

Expected numbers are computed independently with metrics.engagement.volume / metrics.engagement on the same data."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from conftest import drill_count, ROOT, apptest_metric, apptest_page, apptest_rerun, messages_frame
from metrics import engagement
from metrics.engagement import volume
from metrics.core.rollup import conversation_rollup

PAGE = "pages/2_Engagement.py"
SAMPLE = ROOT / "data" / "sample_transcripts.csv.gz"


_listed = drill_count


def _table_with_ids(at: AppTest, n: int) -> bool:
    return any("conversation_id" in d.value.columns and len(d.value) == n for d in at.dataframe)


@pytest.fixture(scope="module")
def sample():
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} is absent (generate it with python -m data.generate)")
    from metrics.io.loaders import load_bytes

    frame = load_bytes(SAMPLE.read_bytes(), SAMPLE.name).frame
    return frame, conversation_rollup(frame)


def _seed(db_path, frame, name="engagement test"):
    from metrics import store

    db = store.connect(str(db_path))
    store.save_messages(db, frame, dataset_name=name, source_format="csv", file_name="engagement.csv")
    db.close()


def test_default_sample_renders_every_view(db_path, sample):
    _, rollup = sample
    at = apptest_page(PAGE)
    heads = [s.value for s in at.subheader]
    for section in ("Volume trend", "Spikes", "Peak hours", "Engagement depth", "Business vs after hours",
                    "Repeat users", "Channels"):
        assert section in heads
    s = engagement.engagement_summary(rollup)
    assert apptest_metric(at, "Conversations").value == f"{s.conversation_count:,}"
    assert apptest_metric(at, "Mean user turns").value == f"{s.mean_user_turns:.1f}"
    assert apptest_metric(at, "Repeat-user share").value == f"{s.repeat_user_rate:.1%}"
    assert apptest_metric(at, "After hours").value == f"{s.after_hours_rate:.1%}"
    # the sample's week-9 spike is flagged, with the warning that a spike may be a bug
    days = volume.spike_days(rollup)
    assert days, "the sample has a volume spike"
    warnings = " ".join(w.value for w in at.warning)
    assert "may mean a bug" in warnings and all(d in warnings for d in days)
    assert len(at.get("vega_lite_chart")) >= 8
    assert len(at.get("download_button")) >= 8


def test_volume_bar_drill_down_lists_the_week(db_path, sample):
    _, rollup = sample
    at = apptest_page(PAGE)
    weeks = volume.conversations_per_period(rollup, period="week").set_index("period")["conversation_count"]
    spike_week = volume.period_labels(volume.spike_days(rollup), period="week")[0]
    at.session_state["engagement_volume"] = {"selection": {"volume_pick": [{"period": spike_week}]}}
    apptest_rerun(at)
    assert _listed(at, "Conversations started") == weeks[spike_week]
    assert _table_with_ids(at, int(weeks[spike_week]))


def test_month_toggle_and_heatmap_cell(db_path, sample):
    _, rollup = sample
    at = apptest_page(PAGE)
    at.radio(key="engagement_period").set_value("month")
    apptest_rerun(at)
    assert any("per month" in c.value for c in at.caption)
    months = volume.conversations_per_period(rollup, period="month")
    first = months.iloc[0]
    at.session_state["engagement_volume"] = {"selection": {"volume_pick": [{"period": first["period"]}]}}
    heat = volume.hour_weekday_heatmap(rollup)
    peak = heat.loc[heat["conversation_count"].idxmax()]
    at.session_state["engagement_heatmap"] = {"selection": {"heatmap_pick": [
        {"weekday_name": peak["weekday_name"], "hour": int(peak["hour"])}]}}
    apptest_rerun(at)
    assert _listed(at, "Conversations started") == first["conversation_count"]
    assert _listed(at, "Conversations started in that hour") == peak["conversation_count"]


def test_turns_and_repeat_drill_down(db_path, sample):
    _, rollup = sample
    at = apptest_page(PAGE)
    at.session_state["engagement_turns"] = {"selection": {"turns_pick": [{"user_turns": 2}]}}
    at.session_state["engagement_repeat"] = {"selection": {"repeat_pick": [{"segment": "repeat user"}]}}
    apptest_rerun(at)
    assert _listed(at, "Conversations with that many user turns") == int((rollup["user_turns"] == 2).sum())
    assert _listed(at, "Conversations of that segment") == engagement.repeat_users(rollup).repeat_conversation_count


def test_spike_threshold_widget(db_path, sample):
    _, rollup = sample
    at = apptest_page(PAGE)
    at.number_input(key="engagement_spike_k").set_value(10.0)
    apptest_rerun(at)
    expected = volume.spike_days(rollup, k=10.0)
    warnings = " ".join(w.value for w in at.warning)
    assert ("may mean a bug" in warnings) == bool(expected)


def test_without_timestamps_the_time_views_say_so(db_path):
    frame = messages_frame([
        {"conversation_id": "a", "speaker": "user", "text": "hi", "user_id": "u1"},
        {"conversation_id": "a", "speaker": "bot", "text": "Hello?", "user_id": "u1"},
        {"conversation_id": "b", "speaker": "user", "text": "price", "user_id": "u1"},
    ])
    _seed(db_path, frame)
    at = apptest_page(PAGE)
    assert any("no timestamps" in i.value for i in at.info)
    heads = [s.value for s in at.subheader]
    assert "Volume trend" not in heads and "Engagement depth" in heads
    assert apptest_metric(at, "Mean user turns").value == "1.0"
