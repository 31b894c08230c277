"""Abandonment: the turn users leave at and the last bot message before they do."""

from __future__ import annotations

import pytest
from conftest import messages_frame
from test_outcomes import EXPORT_END, ten_conversations

from metrics.outcomes.abandonment import abandonment_table, abandonment_turns, last_bot_messages
from metrics.errors import ConfigError
from metrics.outcomes import OutcomeRules
from metrics.core.rollup import conversation_rollup

RULES = OutcomeRules(export_end=EXPORT_END)


def funnel_drop_offs():
    """Five lead-gen conversations; three drop at the e-mail question, one at the greeting, one converts."""
    rows = []

    def conv(cid, turns, last_bot, goal=None):
        for i, user in enumerate(turns):
            rows.append({"conversation_id": cid, "timestamp": f"2026-08-03 10:{i * 2:02d}", "speaker": "user",
                         "text": user, "goal_achieved": goal})
            rows.append({"conversation_id": cid, "timestamp": f"2026-08-03 10:{i * 2 + 1:02d}", "speaker": "bot",
                         "text": "How many seats do you need?" if i < len(turns) - 1 else last_bot,
                         "goal_achieved": goal})

    conv("a", ["pricing?", "10"], "  What's the best   e-mail to send the quote to?")
    conv("b", ["pricing?", "3"], "What's the best e-mail to send the quote to?")
    conv("c", ["pricing?", "50"], "What's the best e-mail to send the quote to?")
    conv("d", ["hi"], "Hello! How can I help you today?")
    conv("e", ["pricing?", "5"], "What's the best e-mail to send the quote to?", goal=True)  # converted
    rows.append({"conversation_id": "f", "timestamp": "2026-08-03 10:00", "speaker": "bot",
                 "text": "Hello! How can I help you today?"})  # the user never wrote
    return messages_frame(rows)


def test_ten_conversations():
    m = ten_conversations()
    r = conversation_rollup(m)
    t = abandonment_table(m, r, rules=RULES).set_index("conversation_id")
    # abandoned: c05, c06, c10 (see test_outcomes); each had 1 user turn
    assert sorted(t.index) == ["c05", "c06", "c10"] and t["turn"].tolist() == [1, 1, 1]
    assert t.loc["c06", "last_bot_text"] == "Hello! How can I help you today?"
    assert abandonment_turns(m, r, rules=RULES)[["turn", "abandoned_count"]].values.tolist() == [[0, 0], [1, 3]]


def test_last_bot_messages_golden():
    m = funnel_drop_offs()
    r = conversation_rollup(m)
    last = last_bot_messages(m, r, rules=RULES)
    # a, b, c end on the e-mail question (white space normalised), d and f on the greeting; e converted
    # (goal achieved) after the same question, so that question ended 4 conversations and lost 3 of them
    assert last[["text", "abandoned_count", "ending_count"]].values.tolist() == [
        ["What's the best e-mail to send the quote to?", 3, 4],
        ["Hello! How can I help you today?", 2, 2],
    ]
    assert last["abandonment_rate"].tolist() == pytest.approx([0.75, 1.0])
    assert last["share_rate"].tolist() == pytest.approx([0.6, 0.4])


def test_abandonment_turn_histogram():
    m = funnel_drop_offs()
    turns = abandonment_turns(m, conversation_rollup(m), rules=RULES)
    # f: 0 user turns; d: 1; a, b, c: 2
    assert turns[["turn", "abandoned_count"]].values.tolist() == [[0, 1], [1, 1], [2, 3]]
    assert turns["share_rate"].sum() == pytest.approx(1.0)


def test_top_limits_rows_and_ties_sort_by_text():
    rows = []
    for i in range(12):
        rows += [{"conversation_id": f"c{i:02d}", "speaker": "user", "text": "x"},
                 {"conversation_id": f"c{i:02d}", "speaker": "bot", "text": f"Question {i:02d}?"}]
    m = messages_frame(rows)
    last = last_bot_messages(m, conversation_rollup(m))
    assert len(last) == 10 and last["text"].iloc[0] == "Question 00?" and last["text"].iloc[-1] == "Question 09?"
    assert len(last_bot_messages(m, conversation_rollup(m), top=3)) == 3
    with pytest.raises(ConfigError, match="0"):
        last_bot_messages(m, conversation_rollup(m), top=0)


def test_mode_changes_what_counts():
    m = funnel_drop_offs()
    r = conversation_rollup(m)
    # in no_goal mode every conversation without a goal is abandoned; the same five drop-offs here
    no_goal = abandonment_table(m, r, rules=OutcomeRules(export_end=EXPORT_END, abandonment_mode="no_goal"))
    assert sorted(no_goal["conversation_id"]) == ["a", "b", "c", "d", "f"]
    assert set(no_goal["rule"]) == {"no_goal"}


def test_no_abandonment_is_empty():
    m = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "x", "goal_achieved": True}])
    r = conversation_rollup(m)
    assert abandonment_table(m, r).empty and abandonment_turns(m, r).empty and last_bot_messages(m, r).empty


