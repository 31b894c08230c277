"""Goals: validation of a goal and of a goal set, suggestions from the guide, persistence."""

from __future__ import annotations

import re

import pytest

from conftest import SHARED_DATA
from metrics.improve import goals
from metrics.improve import store as goals_store
from metrics.errors import ConfigError
from metrics.improve.goals import Goal, check_goals, goals_from_records, suggested_goals

GUIDE = SHARED_DATA.parent / "docs" / "chatbot-analytics-guide.txt"


def _goal(name="Resolve", metric="resolution_rate", bot="support", target=0.75, red=0.6, green=0.75, also=()):
    return Goal(name, bot, (metric, *also), target, red, green)


def test_suggested_goals_are_a_valid_set_with_a_cost_metric():
    check = check_goals(suggested_goals())
    assert check.ok and check.warnings == ()
    assert [g.metric for g in suggested_goals()] == ["resolution_rate", "lead_conversion_rate", "intent_accuracy",
                                                     "cost_per_outcome"]
    bands = {s.metric: (s.low, s.high) for s in goals.SUGGESTIONS}
    # The seed's figures: support resolution 60-75%, lead conversion 15-25%, NLU accuracy 85-95%.
    assert bands["resolution_rate"] == (0.60, 0.75)
    assert bands["lead_conversion_rate"] == (0.15, 0.25)
    assert bands["intent_accuracy"] == (0.85, 0.95)
    assert goals.SUGGESTED_ALERT == "intent_accuracy < 80%"


def test_suggestion_sources_are_sentences_of_the_guide():
    if not GUIDE.exists():
        pytest.skip(f"the guide {GUIDE} is absent")
    text = GUIDE.read_text(encoding="utf-8")
    for source in [s.source for s in goals.SUGGESTIONS] + [goals.SUGGESTED_ALERT_SOURCE]:
        assert source.strip('"') in text, source


@pytest.mark.parametrize("count", [2, 6])
def test_a_set_needs_three_to_five_goals(count):
    base = [_goal(f"g{i}") for i in range(count - 1)] + [_goal("cost", "cost_per_outcome", target=2, red=15, green=2)]
    check = check_goals(base)
    assert not check.ok and f"there are {count}" in check.errors[0]


def test_a_set_without_revenue_or_cost_metric_is_refused_and_says_so():
    check = check_goals([_goal("a"), _goal("b", "intent_accuracy", target=0.9, red=0.85, green=0.95),
                         _goal("c", "escalation_rate", target=0.2, red=0.3, green=0.2)])
    assert not check.ok
    assert any("revenue or cost" in e and "cost_per_outcome" in e for e in check.errors)


def test_a_revenue_metric_tracked_beside_the_primary_counts():
    assert check_goals([_goal("a", also=("revenue",)), _goal("b"), _goal("c")]).ok
    assert not check_goals([_goal("a"), _goal("b"), _goal("c")]).ok


def test_duplicate_names_are_refused():
    check = check_goals([_goal("Same"), _goal("same"), _goal("cost", "cost_per_outcome", target=2, red=15, green=2)])
    assert any("distinct" in e and "Same" in e for e in check.errors)


def test_vanity_primary_metric_warns_but_saves():
    vanity = _goal("Volume", "total_conversations", target=1000, red=100, green=1000)
    check = check_goals([vanity, _goal("b"), _goal("cost", "cost_per_outcome", target=2, red=15, green=2)])
    assert check.ok
    assert len(check.warnings) == 1 and "vanity" in check.warnings[0] and "Volume" in check.warnings[0]


@pytest.mark.parametrize("kwargs, message", [
    ({"bot": "retail"}, "bot_type must be one of lead_generation, support, sales, got 'retail'"),
    ({"metric": "speed"}, "unknown metric 'speed'"),
    ({"target": 75}, "between 0 and 1 (e.g. 0.75 for 75%), got 75.0"),
    ({"red": 0.8, "green": 0.7}, "red (0.8) must be <= green (0.7)"),
    ({"metric": "escalation_rate", "red": 0.1, "green": 0.2, "target": 0.2}, "red (0.1) must be >= green (0.2)"),
    ({"target": "high"}, "target must be a number, got 'high'"),
    ({"name": "  "}, "a goal needs a name"),
])
def test_goal_validation_repeats_the_bad_value(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        _goal(**kwargs)


def test_goal_status_uses_the_band_of_the_primary_metric():
    g = _goal("cost", "cost_per_outcome", target=2, red=15, green=2)
    assert (g.direction, g.status(1.5), g.status(14.5), g.status(16), g.status(float("nan"))) == \
        ("lower", "green", "amber", "red", "none")


def test_records_round_trip_and_name_the_bad_row():
    rows = goals.goals_to_records(suggested_goals())
    assert goals_from_records(rows) == suggested_goals()
    rows.append({"name": None, "bot_type": None, "metric": None, "also_track": [], "target": None, "red": None,
                 "green": None})                                   # a blank row from the editor is skipped
    assert len(goals_from_records(rows)) == 4
    rows[1]["metric"] = "nope"
    with pytest.raises(ConfigError, match="goal row 2: .*unknown metric 'nope'"):
        goals_from_records(rows)
    parsed = goals_from_records([{"name": "x", "bot_type": "sales", "metric": "revenue", "also_track": "conversion_rate, lead_count",
                                  "target": 1000, "red": 100, "green": 1000}])
    assert parsed[0].metrics == ("revenue", "conversion_rate", "lead_count")


def test_store_refuses_an_invalid_set_and_saves_nothing(memory_db):
    no_cost = [g for g in suggested_goals() if not g.business]
    with pytest.raises(ConfigError, match="revenue or cost"):
        goals_store.save_goals(memory_db, no_cost)
    assert goals_store.list_goals(memory_db) == []
    goals_store.save_goals(memory_db, suggested_goals())
    assert goals_store.list_goals(memory_db) == suggested_goals()
    # Saving replaces the whole set, in order.
    new = list(reversed(suggested_goals()))[:3]
    goals_store.save_goals(memory_db, new)
    assert goals_store.list_goals(memory_db) == new


def test_goal_bands_feed_the_kpi_table():
    assert goals.goal_bands(suggested_goals()) == {"resolution_rate": (0.6, 0.75),
                                                   "lead_conversion_rate": (0.15, 0.25),
                                                   "intent_accuracy": (0.85, 0.95), "cost_per_outcome": (15.0, 2.0)}
