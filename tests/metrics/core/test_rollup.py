"""Per-conversation rollup: a hand-computed golden fixture and properties."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from conftest import messages_frame
from metrics.errors import ConfigError
from metrics.core.rollup import ROLLUP_COLUMNS, BusinessHours, conversation_rollup

GOLDEN_ROWS = [
    # c1: Monday 2024-01-01 10:00 UTC (inside business hours). user, bot after 10 s, user, handoff
    # event on the 2nd user message, agent after 4 min. Duration 10:00:00 -> 10:05:00 = 300 s.
    dict(conversation_id="c1", timestamp="2024-01-01T10:00:00Z", speaker="user", text="hi", user_id="u1",
         channel="web", rating=4),
    dict(conversation_id="c1", timestamp="2024-01-01T10:00:10Z", speaker="bot", text="How can I help?",
         user_id="u1", channel="web"),
    dict(conversation_id="c1", timestamp="2024-01-01T10:01:00Z", speaker="user", text="agent please",
         user_id="u1", channel="web", event="handoff"),
    dict(conversation_id="c1", timestamp="2024-01-01T10:05:00Z", speaker="agent", text="Hello, Sam here",
         user_id="u1", channel="web"),
    # c2: Saturday 2024-01-06 20:00 UTC (after hours), same user u1 again -> repeat user.
    # A bot greeting *before* the user speaks does not count as the first response; the
    # reply 60 s after the user's message does.
    dict(conversation_id="c2", timestamp="2024-01-06T19:59:00Z", speaker="bot", text="Welcome back!",
         user_id="u1", channel="app"),
    dict(conversation_id="c2", timestamp="2024-01-06T20:00:00Z", speaker="user", text="order status?",
         user_id="u1", channel="app"),
    dict(conversation_id="c2", timestamp="2024-01-06T20:01:00Z", speaker="bot", text="It ships today.",
         user_id="u1", channel="app"),
    # c3: one user message from a new user, no reply at all.
    dict(conversation_id="c3", timestamp="2024-01-02T16:59:59Z", speaker="user", text="hello?", user_id="u2",
         channel="web"),
]

EXPECTED = {
    "c1": dict(duration_seconds=300.0, message_count=4, user_turns=2, bot_turns=1, agent_turns=1,
               first_response_seconds=10.0, business_hours=True, repeat_user=False, has_agent=True,
               handoff_event=True, first_handoff_turn=2.0, channel="web", rating=4.0),
    "c2": dict(duration_seconds=120.0, message_count=3, user_turns=1, bot_turns=2, agent_turns=0,
               first_response_seconds=60.0, business_hours=False, repeat_user=True, has_agent=False,
               handoff_event=False, first_handoff_turn=np.nan, channel="app", rating=np.nan),
    "c3": dict(duration_seconds=0.0, message_count=1, user_turns=1, bot_turns=0, agent_turns=0,
               first_response_seconds=np.nan, business_hours=True, repeat_user=False, has_agent=False,
               handoff_event=False, first_handoff_turn=np.nan, channel="web", rating=np.nan),
}


def test_golden_rollup():
    rollup = conversation_rollup(messages_frame(GOLDEN_ROWS)).set_index("conversation_id")
    assert list(rollup.index) == ["c1", "c2", "c3"]
    for cid, expected in EXPECTED.items():
        for column, value in expected.items():
            got = rollup.loc[cid, column]
            if isinstance(value, float) and np.isnan(value):
                assert pd.isna(got), (cid, column, got)
            else:
                assert got == value, (cid, column, got, value)
    assert rollup.loc["c1", "started_at"] == pd.Timestamp("2024-01-01T10:00:00Z")
    assert rollup.loc["c2", "ended_at"] == pd.Timestamp("2024-01-06T20:01:00Z")


def test_business_hours_are_configurable():
    frame = messages_frame(GOLDEN_ROWS)
    # c3 starts 16:59:59 UTC = 17:59:59 in Berlin (UTC+1 in January) -> outside 9-17 Berlin
    berlin = conversation_rollup(frame, business_hours=BusinessHours(timezone="Europe/Berlin"))
    assert berlin.set_index("conversation_id").loc["c3", "business_hours"] == False  # noqa: E712
    weekend = conversation_rollup(frame, business_hours=BusinessHours(days=(5, 6), start_hour=0, end_hour=24))
    assert weekend["business_hours"].tolist() == [False, True, False]
    with pytest.raises(ConfigError, match="start=18"):
        BusinessHours(start_hour=18, end_hour=9)
    with pytest.raises(ConfigError, match="Mars/Base"):
        BusinessHours(timezone="Mars/Base")


def test_without_timestamps():
    frame = messages_frame([dict(conversation_id="x", speaker="user", text="a"),
                            dict(conversation_id="x", speaker="bot", text="b")])
    r = conversation_rollup(frame)
    assert r.loc[0, "message_count"] == 2
    assert pd.isna(r.loc[0, "duration_seconds"]) and pd.isna(r.loc[0, "first_response_seconds"])
    assert r.loc[0, "business_hours"] == False  # noqa: E712


def test_empty_input_gives_empty_rollup_with_columns():
    empty = messages_frame(GOLDEN_ROWS).iloc[0:0]
    r = conversation_rollup(empty)
    assert len(r) == 0
    assert list(r.columns[: len(ROLLUP_COLUMNS)]) == list(ROLLUP_COLUMNS)


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False))
def test_shuffling_rows_changes_nothing_and_input_is_not_mutated(rnd):
    frame = messages_frame(GOLDEN_ROWS)
    expected = conversation_rollup(frame)
    order = list(range(len(frame)))
    rnd.shuffle(order)
    shuffled = frame.iloc[order].reset_index(drop=True)
    before = shuffled.copy()
    got = conversation_rollup(shuffled)
    pd.testing.assert_frame_equal(shuffled, before)
    pd.testing.assert_frame_equal(got, expected)


def test_handoff_event_is_matched_like_escalation_stripped_and_any_case():
    """A frame built by hand may carry " Handoff " (the loader strips cells): the rollup's flag and turn
    must agree with escalation's handoff rows (waits), which strip and lower-case the event."""
    from metrics.outcomes.escalation import handoff_wait_times

    frame = messages_frame([
        dict(conversation_id="h", timestamp="2024-01-01T10:00:00Z", speaker="user", text="hi"),
        dict(conversation_id="h", timestamp="2024-01-01T10:00:05Z", speaker="user", text="a human please",
             event=" Handoff "),
        dict(conversation_id="h", timestamp="2024-01-01T10:01:05Z", speaker="agent", text="hello"),
    ])
    r = conversation_rollup(frame)
    assert r.loc[0, "handoff_event"] == True  # noqa: E712
    assert r.loc[0, "first_handoff_turn"] == 2.0
    assert handoff_wait_times(frame, r)["wait_seconds"].tolist() == [60.0]
