"""Change log: entries, before/after windows with interval and significance, attribution warnings,
annotations in chart specs, persistence."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from conftest import messages_frame
from metrics import kpis, store
from metrics.improve import changelog
from metrics.improve import changelog_charts
from metrics.improve import store as goals_store
from metrics.improve.changelog import ChangeEntry, before_after
from metrics.errors import ConfigError, InsufficientDataError
from metrics.core.rollup import conversation_rollup


def _daily(days=28, start="2026-09-01", escalate=lambda d: False, rating=None):
    """One conversation a day at 10:00 UTC; ``escalate(day)`` adds an agent message; ``rating(day)`` a rating."""
    rows = []
    for d in range(days):
        ts = (pd.Timestamp(start, tz="UTC") + pd.Timedelta(days=d, hours=10)).isoformat()
        row = {"conversation_id": f"c{d:03d}", "speaker": "user", "text": "hi", "timestamp": ts}
        if rating is not None:
            row["rating"] = rating(d)
        rows.append(row)
        if escalate(d):
            rows.append({**row, "speaker": "agent", "text": "Sam here"})
    m = messages_frame(rows)
    return m, conversation_rollup(m)


CHANGE = ChangeEntry("2026-09-15", "New hand-off flow", "workflow_change", "escalation_rate", why="too many handoffs",
                     id=1)


def test_entry_validation_repeats_the_bad_value():
    with pytest.raises(ConfigError, match="got 'magic'"):
        ChangeEntry("2026-09-15", "x", "magic", "escalation_rate")
    with pytest.raises(ConfigError, match="got 'speed'"):
        ChangeEntry("2026-09-15", "x", "other", "speed")
    with pytest.raises(ConfigError, match="YYYY-MM-DD.*'soon'"):
        ChangeEntry("soon", "x", "other", "csat")
    with pytest.raises(ConfigError, match="must not be empty"):
        ChangeEntry("2026-09-15", "  ", "other", "csat")
    assert ChangeEntry(pd.Timestamp("2026-09-15 13:00"), " t ", "other", "csat").title == "t"


def test_rate_before_after_with_newcombe_interval_and_z_test():
    # Days 0-13 (Sep 1-14, before): every second day escalated -> 7/14 = 0.5. Days 14-27 (after): none -> 0/14.
    m, r = _daily(escalate=lambda d: d < 14 and d % 2 == 1)
    ba = before_after(m, r, CHANGE)
    assert (ba.before, ba.after, ba.before_n, ba.after_n, ba.difference) == (0.5, 0.0, 14, 14, -0.5)
    assert (ba.before_days, ba.after_days) == (14.0, 14.0)
    # Newcombe's hybrid score interval from the Wilson intervals (z = 1.96): 7/14 -> (0.2680, 0.7320),
    # 0/14 -> (0, 0.2153). low = -0.5 - sqrt(0^2 + (0.7320 - 0.5)^2) = -0.7320;
    # high = -0.5 + sqrt(0.2153^2 + (0.5 - 0.2680)^2) = -0.5 + 0.3165 = -0.1835.
    assert ba.ci_low == pytest.approx(-0.73201, abs=1e-4)
    assert ba.ci_high == pytest.approx(-0.18348, abs=1e-4)
    from scipy.stats import chi2_contingency

    assert ba.p_value == pytest.approx(chi2_contingency([[7, 7], [0, 14]], correction=False).pvalue)
    assert ba.attributable and ba.significant and ba.reasons == ()
    assert "significant improvement" in ba.verdict


def test_short_windows_cannot_be_attributed():
    m, r = _daily(escalate=lambda d: d < 14 and d % 2 == 1)
    seven = before_after(m, r, CHANGE, window_days=7)
    assert not seven.attributable and not seven.significant
    assert "the windows are 7 days; at least 14 are needed" in seven.reasons[0]
    assert "cannot be attributed" in seven.verdict
    # A configurable minimum: 7-day windows accepted when the team decides so.
    assert before_after(m, r, CHANGE, window_days=7, min_days=7).attributable


def test_data_shorter_than_the_window_cannot_be_attributed():
    m, r = _daily(days=20)                                   # Sep 1 .. Sep 20: only 6 days after Sep 15
    ba = before_after(m, r, CHANGE)
    assert ba.after_days == 6.0 and not ba.attributable
    assert ba.reasons == ("the data covers only 6.0 days after the change (< 14)",)
    late = ChangeEntry("2026-09-05", "x", "other", "escalation_rate")
    assert "only 4.0 days before" in before_after(m, r, late).reasons[0]


def test_another_change_inside_the_window_cannot_be_attributed():
    m, r = _daily(escalate=lambda d: d < 14 and d % 2 == 1)
    inside = ChangeEntry("2026-09-20", "Rewrote the greeting", "response_rewrite", "csat", id=2)
    outside = ChangeEntry("2026-10-20", "Later change", "other", "csat", id=3)
    ba = before_after(m, r, CHANGE, entries=[CHANGE, inside, outside])
    assert not ba.attributable and not ba.significant
    assert ba.reasons == ("another change falls inside the window: 'Rewrote the greeting' on 2026-09-20",)
    assert before_after(m, r, CHANGE, entries=[CHANGE, outside]).attributable


def test_score_uses_welch_and_count_uses_the_binomial_test():
    from scipy import stats

    m, r = _daily(rating=lambda d: 3 + (d % 3 == 0) if d < 14 else 4 + (d % 2))
    entry = ChangeEntry("2026-09-15", "Tone rewrite", "response_rewrite", "csat")
    ba = before_after(m, r, entry)
    before = [3 + (d % 3 == 0) for d in range(14)]
    after = [4 + (d % 2) for d in range(14, 28)]
    assert ba.difference == pytest.approx(sum(after) / 14 - sum(before) / 14)
    assert ba.p_value == pytest.approx(stats.ttest_ind(after, before, equal_var=False).pvalue)
    assert ba.test == "Welch t-test"

    more = messages_frame([{"conversation_id": f"c{i}", "speaker": "user", "text": "x",
                            "timestamp": (pd.Timestamp("2026-09-01T10:00Z")
                                          + pd.Timedelta(hours=12 * i if i < 28 else 6 * (i - 28) + 14 * 24 - 10)
                                          ).isoformat()} for i in range(28 + 56)])
    count = before_after(more, conversation_rollup(more),
                         ChangeEntry("2026-09-15", "Launched on WhatsApp", "workflow_change", "total_conversations"))
    # 28 conversations before (every 12 h from Sep 1), 56 after (every 6 h from Sep 15 00:00 to Sep 28 18:00):
    # under "no change" each of the 84 falls after with probability 1/2 (equal windows) -> binomial test.
    assert (count.before, count.after) == (28.0, 56.0)
    assert count.p_value == pytest.approx(stats.binomtest(56, 84, 0.5).pvalue)
    assert "volume alone says nothing about quality" in count.verdict


def test_money_kpis_are_not_tested_and_missing_columns_are_reported():
    m, r = _daily()
    ba = before_after(m, r, ChangeEntry("2026-09-15", "x", "other", "cost_per_outcome"))
    assert ba.test == kpis.NOT_TESTED and ba.p_value != ba.p_value and "Not tested" in ba.verdict
    table = changelog.before_after_table(m, r, [ChangeEntry("2026-09-15", "x", "other", "csat", id=9)])
    assert table.loc[0, "verdict"].startswith("Not measurable") and "rating" in table.loc[0, "verdict"]
    with pytest.raises(InsufficientDataError, match="timestamps"):
        m0 = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "x"}])
        before_after(m0, conversation_rollup(m0), CHANGE)


def test_annotations_frame_and_chart_spec():
    entries = [CHANGE, ChangeEntry("2026-09-21", "Deploy nlu-v2", "training_data", "intent_accuracy",
                                   why="billing confused with refund")]
    frame = changelog.annotations_frame(entries)
    assert frame["title"].tolist() == ["New hand-off flow", "Deploy nlu-v2"]
    assert frame["detail"].iloc[1] == "New training data: billing confused with refund (expected to move intent accuracy)"
    m, r = _daily(escalate=lambda d: d % 3 == 0)
    series = kpis.kpi_series(m, r, metric="escalation_rate")
    chart = changelog_charts.kpi_trend_chart(series, annotations=frame, band=(0.3, 0.2),
                                             windows={"before": (CHANGE.start - pd.Timedelta(days=14), CHANGE.start),
                                                      "after": (CHANGE.start, CHANGE.start + pd.Timedelta(days=14))})
    spec = chart.to_dict()
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]]
    assert marks == ["rect", "line", "point", "rule", "rule", "text"]
    text = json.dumps(spec)
    assert "Deploy nlu-v2" in text and "New hand-off flow" in text and '"title": "what"' in text
    # Any other trend chart can take the same layers.
    import altair as alt

    base = alt.Chart(pd.DataFrame({"date": pd.to_datetime(["2026-09-01"], utc=True), "y": [1]})).mark_line().encode(
        x="date:T", y="y:Q")
    layered = changelog_charts.with_annotations(base, frame).to_dict()
    assert len(layered["layer"]) == 3 and "Deploy nlu-v2" in json.dumps(layered)
    assert changelog_charts.with_annotations(base, changelog.annotations_frame([])) is base


def test_store_change_log_scopes_and_delete_with_dataset(memory_db):
    m, _ = _daily(days=3)
    saved = store.save_messages(memory_db, m, dataset_name="d1")
    everywhere = goals_store.add_change(memory_db, CHANGE)
    scoped = goals_store.add_change(memory_db, ChangeEntry("2026-09-21", "Only d1", "other", "csat",
                                                           dataset_id=saved.dataset_id))
    assert [e.id for e in goals_store.list_changes(memory_db, dataset_id=saved.dataset_id)] == [everywhere, scoped]
    assert [e.id for e in goals_store.list_changes(memory_db, dataset_id=999)] == [everywhere]
    assert changelog.annotations(memory_db, saved.dataset_id)["title"].tolist() == ["New hand-off flow", "Only d1"]
    goals_store.update_change(memory_db, everywhere, ChangeEntry("2026-09-16", "Moved", "other", "csat"))
    assert goals_store.get_change(memory_db, everywhere).title == "Moved"
    removed = store.delete_dataset(memory_db, saved.dataset_id)
    assert removed.get("change_log") == 1
    assert [e.title for e in goals_store.list_changes(memory_db)] == ["Moved"]
    assert goals_store.delete_change(memory_db, everywhere) and not goals_store.delete_change(memory_db, everywhere)
    with pytest.raises(ConfigError, match=re.escape(f"no change log entry with id {everywhere}")):
        goals_store.get_change(memory_db, everywhere)


def test_inputs_are_not_modified():
    m, r = _daily(escalate=lambda d: d % 2 == 0)
    m0, r0 = m.copy(), r.copy()
    before_after(m, r, CHANGE)
    pd.testing.assert_frame_equal(m, m0)
    pd.testing.assert_frame_equal(r, r0)
