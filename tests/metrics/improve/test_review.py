"""Weekly review (what changed, one thing to optimise, exports) and the improvement report."""

from __future__ import annotations

import doctest
import importlib

import pandas as pd
import pytest

from conftest import messages_frame
from metrics.improve import review
from metrics.improve.alerts import AlertResult
from metrics.improve.changelog import ChangeEntry
from metrics.io.export import to_csv_bytes
from metrics.improve.goals import suggested_goals
from metrics.core.rollup import conversation_rollup


def _table(rows):
    base = {"available": True, "period": "2026-W44", "wow_p_value": float("nan"), "wow_significant": False,
            "wow_test": "not tested", "status": "none"}
    return pd.DataFrame([{**base, **r} for r in rows])


TABLE = _table([
    {"name": "escalation_rate", "value": 0.20, "wow_previous": 0.30, "wow_delta": -0.10, "wow_relative_delta": -1 / 3,
     "wow_p_value": 0.001, "wow_significant": True, "wow_test": "two-proportion z-test"},
    {"name": "resolution_rate", "value": 0.56, "wow_previous": 0.55, "wow_delta": 0.01, "wow_relative_delta": 0.018,
     "wow_p_value": 0.80, "wow_significant": False, "wow_test": "two-proportion z-test"},
    {"name": "intent_accuracy", "value": 0.90, "wow_previous": 0.95, "wow_delta": -0.05, "wow_relative_delta": -0.05,
     "wow_p_value": 0.02, "wow_significant": True, "wow_test": "two-proportion z-test"},
    {"name": "cost_per_outcome", "value": 30.0, "wow_previous": 15.0, "wow_delta": 15.0, "wow_relative_delta": 1.0},
    {"name": "csat", "value": 4.1, "wow_previous": 4.0, "wow_delta": 0.1, "wow_relative_delta": 0.025},
])


def test_what_changed_lists_significant_moves_first_then_large_untested_ones():
    r = review.weekly_review(TABLE)
    # Significant rates by p-value (0.001, then 0.02); the not-significant resolution move is left out; the
    # untested cost per outcome doubled (>= 20 %) and is listed as "not tested"; CSAT moved 2.5 %: left out.
    assert r.moves["metric"].tolist() == ["escalation_rate", "intent_accuracy", "cost_per_outcome"]
    assert r.moves["better"].tolist() == [True, False, False]
    assert r.moves["sentence"].iloc[2] == "Cost per outcome rose from $15.00 to $30.00 (+$15.00; not tested)"
    assert r.week == "2026-W44"
    assert review.weekly_review(TABLE, max_moves=1).moves["metric"].tolist() == ["escalation_rate"]


def test_one_thing_to_optimise_is_the_top_open_backlog_item():
    backlog = pd.DataFrame({"key": ["a", "b"], "source": ["intent", "bot_message"], "subject": ["billing", "Rephrase?"],
                            "problem": ["misread", "negative replies"], "metric": ["intent_accuracy",
                                                                                  "negative_sentiment_rate"],
                            "impact_per_week": [9.0, 5.0], "effort": [1.0, 1.0], "score": [9.0, 5.0],
                            "status": ["accepted", "open"]})
    r = review.weekly_review(TABLE, backlog=backlog, goals=suggested_goals())
    assert r.focus["subject"] == "Rephrase?"                                 # "billing" is already accepted
    assert r.goals[["metric", "status"]].values.tolist()[:1] == [["resolution_rate", "red"]]


def test_markdown_escapes_data_and_csv_is_one_row_per_line():
    backlog = pd.DataFrame({"key": ["k"], "source": ["bot_message"], "subject": ["Pro is $79 *per* month"],
                            "problem": ["x"], "metric": ["negative_sentiment_rate"], "impact_per_week": [3.0],
                            "effort": [2.0], "score": [1.5], "status": ["open"]})
    alert = AlertResult("escalation_rate > 0.3", "Handoffs", "escalation_rate", ">", 0.3, "2026-W44", 0.4, 100,
                        True, True)
    r = review.weekly_review(TABLE, backlog=backlog, alert_results=[alert], goals=suggested_goals())
    md = review.review_markdown(r, dataset_name="Shop_bot")
    assert md.startswith("# Weekly review: 2026-W44\nDataset: Shop_bot\n")
    assert "**Pro is $79 \\*per\\* month** (Negative reaction to a bot message)" in md
    assert "## Breached alerts\n- Handoffs: 40.0% in 2026-W44 (> 30.0%, breached)" in md
    # $30 per outcome against the suggested band (green <= $2, red > $15): red.
    assert "| Cheaper than a human ticket | Cost per outcome | $30.00 | red | $2.00 |" in md
    assert review.review_markdown(r, level=4).startswith("#### Weekly review")
    frame = review.review_frame(r)
    assert frame["section"].tolist() == ["what changed"] * 3 + ["one thing to optimise"] + ["goal"] * 4 + \
        ["breached alert"]
    csv = to_csv_bytes(frame).decode()
    assert csv.splitlines()[0] == "week,section,item,value,previous,delta,p_value,status,detail"


def test_empty_review_says_why():
    r = review.weekly_review(_table([]).assign(name=[], value=[]))
    assert r.week is None and r.focus is None and len(r.moves) == 0
    assert any("No complete ISO week" in n for n in r.notes)
    assert "Nothing moved significantly" in review.review_markdown(r)


def test_improvement_report_says_what_changed_why_and_what_happened():
    entries = [ChangeEntry("2026-09-21", "Deploy nlu-v2", "training_data", "intent_accuracy", why="billing misread",
                           id=1),
               ChangeEntry("2026-09-28", "Fix *app* bug", "workflow_change", "total_conversations", id=2)]
    results = pd.DataFrame({"change_id": [1, 2], "verdict": ["Intent accuracy went from 88.7% to 93.6%.",
                                                             "The effect cannot be attributed: another change."],
                            "before": [0.887, 416.0], "after": [0.936, 698.0], "before_n": [300, 416],
                            "after_n": [310, 698], "window_days": [14, 14], "p_value": [0.0238, float("nan")]})
    md = review.improvement_report(entries, results, dataset_name="Sample")
    assert "## 2026-09-21: Deploy nlu-v2" in md and "## 2026-09-28: Fix \\*app\\* bug" in md
    assert "- **What changed:** New training data" in md and "- **Why:** billing misread" in md
    assert "- **Expected to move:** intent accuracy (up is better)" in md
    assert "- **What happened:** The effect cannot be attributed: another change." in md
    assert "- Before (14 days): 88.7% (n = 300); after: 93.6% (n = 310); p = 0.0238" in md
    assert "p = not tested" in md
    assert review.improvement_report([], pd.DataFrame()).endswith("The change log is empty.\n")


def test_recent_window_keeps_the_last_complete_weeks():
    m = messages_frame([{"conversation_id": f"c{i}", "speaker": "user", "text": "x",
                         "timestamp": (pd.Timestamp("2026-08-03T10:00Z") + pd.Timedelta(days=3 * i)).isoformat()}
                        for i in range(10)])                                       # Aug 3 .. Aug 30 (a Sunday)
    r = conversation_rollup(m)
    mm, rr, label = review.recent_window(m, r, weeks=2)
    # Complete weeks W32..W35; the last two (Aug 17-30) hold the conversations of Aug 17, 20, 23, 26, 29.
    assert label == "2026-W34 to 2026-W35" and rr["conversation_id"].tolist() == ["c5", "c6", "c7", "c8", "c9"]
    assert set(mm["conversation_id"]) == set(rr["conversation_id"])
    with pytest.raises(Exception, match="weeks must be"):
        review.recent_window(m, r, weeks=0)


@pytest.mark.parametrize("module", ["metrics.improve.review", "metrics.kpis", "metrics.improve.goals", "metrics.improve.alerts",
                                    "metrics.improve.cli_alerts", "metrics.improve.changelog", "metrics.improve.changelog_charts",
                                    "metrics.improve.backlog"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
