"""Headline counts of a dataset (the Overview page's first row)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["DatasetOverview", "dataset_overview"]


@dataclass(frozen=True)
class DatasetOverview:
    conversation_count: int
    message_count: int
    user_count: int
    mean_user_turns: float | None
    first_day: str | None
    last_day: str | None


def dataset_overview(messages: pd.DataFrame, rollup: pd.DataFrame) -> DatasetOverview:
    """Counts of conversations, messages and distinct users, mean user turns, and the date span.

    ``user_count`` is 0 without a ``user_id`` column; ``mean_user_turns`` is None for no
    conversations; the days are None without timestamps.

    Examples
    --------
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a"], "speaker": ["user", "bot"], "text": ["hi", "yo"],
    ...                   "timestamp": pd.to_datetime(["2024-01-01 10:00:00"] * 2, utc=True)})
    >>> o = dataset_overview(m, conversation_rollup(m))
    >>> (o.conversation_count, o.message_count, o.mean_user_turns, o.first_day)
    (1, 2, 1.0, '2024-01-01')
    """
    users = int(messages["user_id"].nunique()) if "user_id" in messages.columns else 0
    starts = rollup["started_at"].dropna() if len(rollup) else pd.Series([], dtype="datetime64[ns, UTC]")
    return DatasetOverview(
        conversation_count=int(len(rollup)),
        message_count=int(len(messages)),
        user_count=users,
        mean_user_turns=float(rollup["user_turns"].mean()) if len(rollup) else None,
        first_day=str(starts.min().date()) if len(starts) else None,
        last_day=str(rollup["ended_at"].max().date()) if len(starts) else None,
    )
