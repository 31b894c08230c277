"""The sentiment family's facts: the customer's scored messages per ISO week, and the first and
last score of each conversation.

Each shard's messages are scored in the facts step (:func:`metrics.sentiment.add_sentiment`, VADER
with the blind-spot fixes; ``cache`` as ``summary`` uses it: none unless given). Only the user
messages are scored: every table is about the customer, and a text's score does not depend on the
other texts.

Tables (:mod:`metrics.core.facts` explains how they combine across shards):

``messages``
    Additive, keyed by ``week``: the start (UTC instant) of the ISO week holding the message,
    :func:`metrics.core.periods.period_start` on the timestamps' own calendar, as
    :func:`metrics.sentiment.measures.sentiment_trend` takes it; NaT for a message without a
    timestamp. Columns ``messages`` (scored user messages), ``compound_sum``, ``positive``,
    ``neutral``, ``negative`` (label counts, VADER's cut-offs), all sums.
``conversations``
    :func:`metrics.sentiment.measures.conversation_first_last`: one row per conversation with a
    scored user message: ``conversation_id``, ``user_message_count``, ``first_compound``,
    ``last_compound``.

Sections: ``sentiment`` and ``ratings``, the keys of :func:`metrics.sentiment.cli.summary_section`.
``ratings`` comes from the engagement family's conversation rows
(:func:`metrics.engagement.facts.rollup`); this family keeps no rating table.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from metrics.core.facts import Context, Table
from metrics.core.periods import period_start

__all__ = ["TABLES", "shard_facts", "sections"]

TABLES = {
    "messages": Table(keys=("week",), agg={"messages": "sum", "compound_sum": "sum", "positive": "sum",
                                           "neutral": "sum", "negative": "sum"}),
    "conversations": Table(keys=("conversation_id",)),
}

_WEEK_DTYPE = "datetime64[ns, UTC]"


def _week_starts(stamps: pd.Series) -> pd.Series:
    """The ISO week start of each timestamp as a UTC instant (NaT stays NaT)."""
    start = period_start(stamps, "W")
    if getattr(start.dt, "tz", None) is None:
        start = start.dt.tz_localize("UTC")
    return start.dt.tz_convert("UTC").astype(_WEEK_DTYPE)


@functools.lru_cache(maxsize=1)
def _scorer():
    """One default :class:`metrics.sentiment.SentimentScorer` per process (building VADER's lexicon
    costs about 15 ms, once per shard otherwise); ``add_sentiment`` would build the same one."""
    from metrics.sentiment import SentimentScorer

    return SentimentScorer()


def _empty_messages() -> pd.DataFrame:
    return pd.DataFrame({"week": pd.Series([], dtype=_WEEK_DTYPE),
                         "messages": pd.Series([], dtype="int64"),
                         "compound_sum": pd.Series([], dtype="float64"),
                         "positive": pd.Series([], dtype="int64"),
                         "neutral": pd.Series([], dtype="int64"),
                         "negative": pd.Series([], dtype="int64")})


def shard_facts(shard: pd.DataFrame, ctx: Context, *, cache=None) -> dict[str, pd.DataFrame]:
    """The two tables of one shard (module docstring). ``cache``: a
    :class:`metrics.sentiment.ScoreCache` passed to :func:`metrics.sentiment.add_sentiment`.

    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "a"], "speaker": ["user", "bot", "user"],
    ...     "text": ["This is great", "ok", "now it is broken"], "row": [1, 2, 3],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 10:01", "2026-08-11 10:05"], utc=True)})
    >>> f = shard_facts(m, Context())
    >>> f["messages"][["messages", "positive", "negative"]].values.tolist()
    [[1, 1, 0], [1, 0, 1]]
    >>> f["conversations"].values.tolist()
    [['a', 2, 0.6249, -0.4767]]
    """
    from metrics.sentiment import Cutoffs, add_sentiment
    from metrics.sentiment import measures as sm

    user = shard["speaker"].eq("user").fillna(False).to_numpy(dtype=bool) if "speaker" in shard.columns \
        else np.zeros(len(shard), dtype=bool)
    users = shard[user]
    scored = add_sentiment(users, scorer=_scorer(), cache=cache)
    conversations = sm.conversation_first_last(scored)
    rows = scored[scored["compound"].notna().to_numpy(dtype=bool)]
    if len(rows) == 0:
        return {"messages": _empty_messages(), "conversations": conversations}
    if "timestamp" in rows.columns and pd.api.types.is_datetime64_any_dtype(rows["timestamp"].dtype):
        week = _week_starts(rows["timestamp"])
    else:
        week = pd.Series(pd.NaT, index=rows.index, dtype=_WEEK_DTYPE)
    positive, neutral, negative = sm._label_flags(rows["compound"], Cutoffs())
    work = pd.DataFrame({"week": week.array, "messages": np.ones(len(rows), dtype="int64"),
                         "compound_sum": rows["compound"].to_numpy(dtype="float64"),
                         "positive": positive.astype("int64"), "neutral": neutral.astype("int64"),
                         "negative": negative.astype("int64")})
    out = work.groupby("week", dropna=False, sort=True).sum().reset_index()
    out = out.astype({"week": _WEEK_DTYPE, "messages": "int64", "compound_sum": "float64", "positive": "int64",
                      "neutral": "int64", "negative": "int64"})
    return {"messages": out, "conversations": conversations}


def _num(value) -> float | None:
    """A JSON number: None for missing, NaN and infinite values."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _rate(num, den) -> float:
    return float(num) / float(den) if den else math.nan


def sections(facts: dict, ctx: Context, meta: dict) -> dict:
    """``sentiment`` and ``ratings`` from the combined facts (module docstring)."""
    from metrics.engagement.facts import rollup
    from metrics.sentiment import measures as sm

    own = facts["sentiment"]
    weeks = own["messages"]
    n = int(weeks["messages"].sum())
    total = float(weeks["compound_sum"].sum())
    shift = sm.shift_from_conversations(own["conversations"])
    weekly: dict[str, float | None] = {}
    timed = weeks[weeks["week"].notna() & weeks["messages"].gt(0)]
    if len(timed):
        grouped = pd.DataFrame({"message_count": timed["messages"].to_numpy(dtype="int64"),
                                "total": timed["compound_sum"].to_numpy(dtype="float64"),
                                "pos": timed["positive"].to_numpy(dtype="int64"),
                                "neg": timed["negative"].to_numpy(dtype="int64")},
                               index=pd.DatetimeIndex(timed["week"], name="period"))
        trend = sm.trend_from_totals(grouped, freq="week")
        weekly = {str(label): (None if pd.isna(mean) else round(float(mean), 4))
                  for label, mean in zip(trend["label"], trend["mean_compound"])}
    ratings = sm.rating_summary(rollup(facts))
    return {
        "sentiment": {
            "mean_compound": _num(total / n if n else math.nan),
            "positive_rate": _num(_rate(weeks["positive"].sum(), n)),
            "neutral_rate": _num(_rate(weeks["neutral"].sum(), n)),
            "negative_rate": _num(_rate(weeks["negative"].sum(), n)),
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
