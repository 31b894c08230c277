"""The ``sentiment`` and ``ratings`` sections of ``python -m metrics summary``.

Register as ``"metrics.sentiment.cli:summary_section"`` in
:data:`metrics.summary.SECTION_PROVIDERS`. Keys (NaN is written as ``null``):

``sentiment`` (the customer's: user messages, VADER compound with the blind-spot fixes)
    ``mean_compound``, ``positive_rate``, ``neutral_rate``, ``negative_rate``
    (:func:`metrics.sentiment.measures.sentiment_distribution`),
    ``worsened_conversation_rate`` (:func:`metrics.sentiment.measures.sentiment_shift`)
    and ``weekly``: ISO week such as ``"2026-W32"`` -> mean compound, every week from
    the first to the last (``null`` for a week without user messages; ``{}`` without
    timestamps).
``ratings``
    ``count`` (rated conversations), ``mean`` (stars), ``distribution`` (``"1"``..``"5"``
    -> conversations), ``thumbs_up_rate``, ``survey_response_rate``
    (:func:`metrics.sentiment.measures.rating_summary`).
"""

from __future__ import annotations

import math

import pandas as pd

from metrics.sentiment import measures as sm
from metrics.io.schema import has_timestamps
from metrics.sentiment import ScoreCache, add_sentiment

__all__ = ["summary_section", "SENTIMENT_KEYS", "RATING_KEYS"]

SENTIMENT_KEYS = ("mean_compound", "positive_rate", "neutral_rate", "negative_rate",
                  "worsened_conversation_rate", "weekly")
RATING_KEYS = ("count", "mean", "distribution", "thumbs_up_rate", "survey_response_rate")


def _num(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def summary_section(messages: pd.DataFrame, rollup: pd.DataFrame, *, cache: ScoreCache | None = None) -> dict:
    """``{"sentiment": {...}, "ratings": {...}}`` with exactly the keys in the module docstring.

    Empty input: ``null`` rates, ``{}`` weekly, zero counts. Neither input is modified.
    ``cache`` (optional) avoids rescoring texts already scored.

    Examples
    --------
    >>> m = pd.DataFrame({"conversation_id": ["a", "a"], "speaker": ["user", "user"],
    ...     "text": ["This is great", "now it is broken"], "row": [1, 2],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 10:05"], utc=True)})
    >>> r = pd.DataFrame({"conversation_id": ["a"], "rating": [2.0], "thumbs": [None]})
    >>> s = summary_section(m, r)
    >>> s["sentiment"]["positive_rate"], s["sentiment"]["worsened_conversation_rate"], s["sentiment"]["weekly"]
    (0.5, 1.0, {'2026-W32': 0.0741})
    >>> s["ratings"]["count"], s["ratings"]["distribution"]["2"], s["ratings"]["survey_response_rate"]
    (1, 1, 1.0)
    """
    scored = add_sentiment(messages, cache=cache)
    dist = sm.sentiment_distribution(scored)
    shift = sm.sentiment_shift(scored)
    weekly: dict[str, float | None] = {}
    users = scored[scored["speaker"].eq("user").fillna(False).astype(bool) & scored["compound"].notna()]
    if len(users) and has_timestamps(users):
        trend = sm.sentiment_trend(scored, freq="week")
        weekly = {str(label): (None if pd.isna(mean) else round(float(mean), 4))
                  for label, mean in zip(trend["label"], trend["mean_compound"])}
    ratings = sm.rating_summary(rollup)
    return {
        "sentiment": {
            "mean_compound": _num(dist.mean_compound),
            "positive_rate": _num(dist.positive_rate),
            "neutral_rate": _num(dist.neutral_rate),
            "negative_rate": _num(dist.negative_rate),
            "worsened_conversation_rate": _num(shift.worsened_conversation_rate),
            "weekly": weekly,
        },
        "ratings": {
            "count": int(ratings.rating_count),
            "mean": _num(ratings.mean_rating),
            "distribution": {str(k): int(v) for k, v in sorted(ratings.distribution.items())},
            "thumbs_up_rate": _num(ratings.thumbs_up_rate),
            "survey_response_rate": _num(ratings.survey_response_rate),
        },
    }
