"""Engagement: user turns, messages, duration, repeat users, after-hours share, per segment."""

from __future__ import annotations

import math

import pytest
from conftest import messages_frame
from test_outcomes import ten_conversations

from metrics.engagement import (after_hours_rate, duration_distribution, engagement_by_segment, engagement_summary,
                                message_count_distribution, repeat_users, user_turns_distribution)
from metrics.errors import ConfigError, InsufficientDataError
from metrics.core.rollup import conversation_rollup


@pytest.fixture
def rollup():
    return conversation_rollup(ten_conversations())


def test_user_turns_distribution_golden(rollup):
    d = user_turns_distribution(rollup)
    # user turns: c02 has 2, c07 has 3, the other eight have 1; 0 turns appears with 0 conversations
    assert d["user_turns"].tolist() == [0, 1, 2, 3]
    assert d["conversation_count"].tolist() == [0, 8, 1, 1]
    assert d["share_rate"].tolist() == pytest.approx([0.0, 0.8, 0.1, 0.1])


def test_message_count_distribution(rollup):
    d = message_count_distribution(rollup).set_index("message_count")["conversation_count"]
    # messages: 2 -> c05 c06 c09 c10; 3 -> c01 c03 c04 c08; 4 -> c02; 6 -> c07
    assert d.to_dict() == {0: 0, 1: 0, 2: 4, 3: 4, 4: 1, 5: 0, 6: 1}


def test_engagement_summary_golden(rollup):
    s = engagement_summary(rollup)
    assert s.conversation_count == 10 and s.has_timestamps
    assert s.mean_user_turns == pytest.approx(1.3)   # (8 * 1 + 2 + 3) / 10
    assert s.median_user_turns == 1.0
    # messages: 2+2+2+2 (c05 c06 c09 c10) + 3+3+3+3 (c01 c03 c04 c08) + 4 (c02) + 6 (c07) = 30 -> 3.0
    assert s.mean_message_count == pytest.approx(3.0) and s.median_message_count == 3.0
    # durations (s): c01 10, c02 65, c03 125, c04 180, c05 5, c06 2, c07 123, c08 10, c09 60, c10 1500
    assert s.median_duration_seconds == pytest.approx((60 + 65) / 2)
    assert s.mean_duration_seconds == pytest.approx((10 + 65 + 125 + 180 + 5 + 2 + 123 + 10 + 60 + 1500) / 10)
    assert s.repeat_user_rate == pytest.approx(0.1)    # c10: u9 seen in c09
    assert s.after_hours_rate == pytest.approx(0.2)    # c06 Monday 20:00, c09 Sunday


def test_repeat_users_golden(rollup):
    ru = repeat_users(rollup)
    # 10 conversations with a user id, 9 users (u9 twice); one repeat conversation, one returning user
    assert (ru.identified_conversation_count, ru.repeat_conversation_count, ru.user_count,
            ru.returning_user_count) == (10, 1, 9, 1)
    assert ru.repeat_user_rate == pytest.approx(0.1)
    assert ru.returning_user_rate == pytest.approx(1 / 9)


def test_repeat_users_without_ids_is_nan():
    m = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "x"}])
    ru = repeat_users(conversation_rollup(m))
    assert ru.identified_conversation_count == 0 and math.isnan(ru.repeat_user_rate)
    assert math.isnan(engagement_summary(conversation_rollup(m)).repeat_user_rate)


def test_segments(rollup):
    by_user = engagement_by_segment(rollup, by="repeat_user").set_index("segment")
    assert by_user["conversation_count"].to_dict() == {"new user": 9, "repeat user": 1}
    # c10 (the repeat conversation) has 1 user turn; the nine new ones have 12 turns -> 1.333
    assert by_user.loc["repeat user", "mean_user_turns"] == 1.0
    assert by_user.loc["new user", "mean_user_turns"] == pytest.approx(12 / 9)
    by_hours = engagement_by_segment(rollup, by="business_hours").set_index("segment")
    assert by_hours["conversation_count"].to_dict() == {"after hours": 2, "business hours": 8}
    with pytest.raises(ConfigError, match="'weather'"):
        engagement_by_segment(rollup, by="weather")


def test_unknown_user_segment():
    m = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "x"},
                        {"conversation_id": "b", "speaker": "user", "text": "x", "user_id": "u1"}])
    seg = engagement_by_segment(conversation_rollup(m), by="repeat_user")
    assert seg["segment"].tolist() == ["new user", "unknown user"]


def test_duration_distribution(rollup):
    d = duration_distribution(rollup).set_index("bucket")["conversation_count"]
    # < 1 min: c01 10, c05 5, c06 2, c08 10 (c09 60 s goes to 1-5 min); 1-5 min: c02 65, c03 125, c04 180,
    # c07 123, c09 60; 15-30 min: c10 1500
    assert d.to_dict() == {"< 1 min": 4, "1-5 min": 5, "5-15 min": 0, "15-30 min": 1, "30-60 min": 0,
                           ">= 60 min": 0}


def test_time_views_need_timestamps():
    m = messages_frame([{"conversation_id": "a", "speaker": "user", "text": "x"}])
    r = conversation_rollup(m)
    with pytest.raises(InsufficientDataError, match="needs timestamps"):
        after_hours_rate(r)
    with pytest.raises(InsufficientDataError, match="needs timestamps"):
        duration_distribution(r)
    with pytest.raises(InsufficientDataError, match="needs timestamps"):
        engagement_by_segment(r, by="business_hours")
    s = engagement_summary(r)
    # the summary keeps the turn figures and marks time fields NaN
    assert s.mean_user_turns == 1.0 and not s.has_timestamps and math.isnan(s.after_hours_rate)
    assert math.isnan(s.median_duration_seconds)


def test_empty():
    r = conversation_rollup(messages_frame([{"conversation_id": "a", "speaker": "user", "text": "x"}]).iloc[0:0])
    s = engagement_summary(r)
    assert s.conversation_count == 0 and math.isnan(s.mean_user_turns) and math.isnan(s.repeat_user_rate)
    assert user_turns_distribution(r).empty and engagement_by_segment(r).empty
    assert math.isnan(after_hours_rate(r))
    assert duration_distribution(r)["conversation_count"].sum() == 0


