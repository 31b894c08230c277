"""Outcomes per topic: volume, resolution / escalation / abandonment, sentiment, CSAT, week-over-week change,
and which topics are growing or new.

Definitions
-----------
A conversation *belongs to* a topic when at least one of its clustered messages is in the topic (so a
conversation can count in several topics, once in each).

``conversation_count``, ``decided_count``
    conversations of the topic, and those whose outcome is not ``in_progress``.
``resolution_rate``, ``escalation_rate``, ``abandonment_rate``
    resolved / escalated / abandoned conversations of the topic over ``decided_count``, the outcome being
    :func:`metrics.outcomes.outcome_table`'s (rules: ``rules``); NaN when nothing is decided.
``mean_sentiment``, ``negative_rate``
    the mean VADER compound score of the topic's clustered messages (:mod:`metrics.sentiment`), and the
    share of them at or below the negative cut-off (-0.05); NaN without scores.
``mean_rating``, ``csat_rate``, ``rated_count``
    over the topic's conversations with a ``rating`` (1-5): the mean, and the share rated 4 or 5 (CSAT);
    NaN without ratings.
``recent_count``, ``prior_count``, ``wow_change``
    the topic's messages in the 7 days up to the latest clustered message (the end), in the 7 days before,
    and ``recent_count / prior_count - 1`` (NaN when ``prior_count`` is 0 or without timestamps).
``growing``
    ``recent_count >= min_count``, ``wow_change >= growth`` (default +50 %), and the rise is unlikely to be
    chance: a one-sided binomial test of ``recent_count`` out of ``recent_count + prior_count`` against 1/2
    (two equal Poisson rates; ``scipy.stats.binomtest``) gives p < ``alpha`` (0.05).
``new``
    at least ``new_share`` (80 %) of the topic's messages fall in the last ``new_days`` (14) days and the topic
    has at least ``min_count`` messages: it emerged recently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scipy.stats import binomtest

from metrics.errors import ConfigError
from metrics.outcomes import OutcomeRules, outcome_table
from metrics.core.rollup import conversation_rollup
from metrics.sentiment import Cutoffs, score_messages
from metrics.topics._discover import TopicModel
from metrics.core.periods import period_start

__all__ = ["TREND_FREQUENCIES", "topic_outcomes", "topic_growth", "topic_trend", "week_start"]

TREND_FREQUENCIES = ("week", "day")
_NAN = float("nan")


def week_start(stamps: pd.Series) -> pd.Series:
    """The Monday 00:00 UTC starting the ISO week of each timestamp (NaT stays NaT).

    Examples
    --------
    >>> week_start(pd.Series(pd.to_datetime(["2026-08-06 15:00", "2026-08-03 00:00"], utc=True))).dt.date.tolist()
    [datetime.date(2026, 8, 3), datetime.date(2026, 8, 3)]
    """
    return period_start(stamps.dt.tz_convert("UTC"), "W")


def topic_trend(model: TopicModel, *, freq: str = "week") -> pd.DataFrame:
    """Messages per topic per period: columns ``topic``, ``label``, ``period`` (its start, UTC),
    ``message_count``. Periods with no message of a topic are filled with 0 between the first and last
    period of the data. Without timestamps (or topics): an empty frame with these columns.

    Examples
    --------
    >>> from metrics.topics._discover import discover_topics, TopicOptions
    >>> m = pd.DataFrame({"conversation_id": list("abc"), "speaker": "user", "row": [1, 2, 3],
    ...                   "text": ["refund please", "refund my order", "a refund"],
    ...                   "timestamp": pd.to_datetime(["2026-08-03", "2026-08-04", "2026-08-12"], utc=True)})
    >>> topic_trend(discover_topics(m, options=TopicOptions(n_topics=1)))["message_count"].tolist()
    [2, 1]
    """
    if freq not in TREND_FREQUENCIES:
        raise ConfigError(f"freq must be one of {TREND_FREQUENCIES}, got {freq!r}")
    cols = {"topic": "int64", "label": "str", "period": "datetime64[ns, UTC]", "message_count": "int64"}
    a = model.assignments
    stamps = a["timestamp"] if len(a) else pd.Series([], dtype="datetime64[ns, UTC]")
    have = stamps.notna()
    if model.empty or not have.any():
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in cols.items()})
    stamps = stamps[have]
    period = week_start(stamps) if freq == "week" else stamps.dt.tz_convert("UTC").dt.floor("D")
    counts = pd.DataFrame({"topic": a.loc[have, "topic"].to_numpy(), "period": period.to_numpy()})
    counts = counts.groupby(["topic", "period"]).size()
    step = pd.Timedelta(days=7 if freq == "week" else 1)
    periods = pd.date_range(period.min(), period.max(), freq=step)
    full = pd.MultiIndex.from_product([model.topics["topic"].to_numpy(), periods], names=["topic", "period"])
    counts.index = counts.index.set_levels(
        [counts.index.levels[0], pd.DatetimeIndex(counts.index.levels[1]).tz_convert("UTC")])
    out = counts.reindex(full, fill_value=0).rename("message_count").reset_index()
    labels = dict(zip(model.topics["topic"], model.topics["label"]))
    out["label"] = out["topic"].map(labels)
    out["period"] = pd.DatetimeIndex(out["period"]).as_unit("ns")
    return out[list(cols)].astype(cols)


def _rate(num, den) -> np.ndarray:
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def _check_growth(growth, min_count, new_days, new_share, alpha) -> None:
    for name, value, low in (("growth", growth, -1.0), ("new_share", new_share, 0.0), ("alpha", alpha, 0.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= low:
            raise ConfigError(f"{name} must be a number >= {low}, got {value!r}")
    for name, value in (("min_count", min_count), ("new_days", new_days)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")


def _growth(model: TopicModel, pos: np.ndarray, k: int, *, growth, min_count, new_days, new_share, alpha) -> dict:
    """``recent_count``, ``prior_count``, ``wow_change``, ``growing``, ``new`` per topic (module docstring);
    ``pos`` is each assignment's topic position."""
    out = {"recent_count": np.zeros(k, dtype=np.int64), "prior_count": np.zeros(k, dtype=np.int64),
           "wow_change": np.full(k, np.nan), "growing": np.zeros(k, dtype=bool), "new": np.zeros(k, dtype=bool)}
    stamps = model.assignments["timestamp"]
    if not stamps.notna().any():
        return out
    end = stamps.max()
    week = pd.Timedelta(days=7)
    recent = (stamps > end - week).fillna(False).to_numpy(bool)
    prior = ((stamps > end - 2 * week) & (stamps <= end - week)).fillna(False).to_numpy(bool)
    out["recent_count"] = np.bincount(pos[recent], minlength=k).astype(np.int64)
    out["prior_count"] = np.bincount(pos[prior], minlength=k).astype(np.int64)
    out["wow_change"] = _rate(out["recent_count"], out["prior_count"]) - 1.0
    growing = (out["recent_count"] >= min_count) & (np.nan_to_num(out["wow_change"], nan=-np.inf) >= growth)
    for i in np.flatnonzero(growing):
        trials = int(out["recent_count"][i] + out["prior_count"][i])
        growing[i] = binomtest(int(out["recent_count"][i]), trials, 0.5, alternative="greater").pvalue < alpha
    late = (stamps > end - pd.Timedelta(days=new_days)).fillna(False).to_numpy(bool)
    dated = np.bincount(pos[stamps.notna().to_numpy(bool)], minlength=k)
    late_share = _rate(np.bincount(pos[late], minlength=k), dated)
    message_count = np.bincount(pos, minlength=k)
    out["growing"] = np.asarray(growing, dtype=bool)
    out["new"] = (message_count >= min_count) & (np.nan_to_num(late_share, nan=0.0) >= new_share)
    return out


def topic_growth(model: TopicModel, *, growth: float = 0.5, min_count: int = 5, new_days: int = 14,
                 new_share: float = 0.8, alpha: float = 0.05) -> pd.DataFrame:
    """Which topics are growing or new (module docstring), without the outcome columns: one row per topic of
    ``model`` with ``topic``, ``label``, ``message_count``, ``recent_count``, ``prior_count``, ``wow_change``,
    ``growing`` and ``new``. The windows end at the model's latest clustered message. The alert rule
    ``topic_growth`` (:mod:`metrics.improve.alerts`) reads it.

    Examples
    --------
    >>> from metrics.topics._discover import discover_topics, TopicOptions
    >>> days = pd.to_datetime(["2026-08-03"] + ["2026-08-11"] * 9, utc=True)
    >>> m = pd.DataFrame({"conversation_id": [f"c{i}" for i in range(10)], "speaker": "user", "row": range(10),
    ...                   "text": ["refund please"] * 10, "timestamp": days})
    >>> topic_growth(discover_topics(m, options=TopicOptions(n_topics=1)))[["recent_count", "prior_count",
    ...                                                                        "growing"]].values.tolist()
    [[9, 1, True]]
    """
    _check_growth(growth, min_count, new_days, new_share, alpha)
    cols = {"topic": "int64", "label": "str", "message_count": "int64", "recent_count": "int64",
            "prior_count": "int64", "wow_change": "float64", "growing": "bool", "new": "bool"}
    if model.empty:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in cols.items()})
    order = {int(t): i for i, t in enumerate(model.topics["topic"])}
    k = len(order)
    pos = model.assignments["topic"].map(order).to_numpy(dtype=np.int64)
    moves = _growth(model, pos, k, growth=growth, min_count=min_count, new_days=new_days, new_share=new_share,
                    alpha=alpha)
    frame = pd.DataFrame({"topic": model.topics["topic"].to_numpy(), "label": model.topics["label"].to_numpy(),
                          "message_count": np.bincount(pos, minlength=k), **moves})
    return frame[list(cols)].astype(cols)


def topic_outcomes(model: TopicModel, messages: pd.DataFrame, rollup: pd.DataFrame | None = None, *,
                   rules: OutcomeRules | None = None, compound: pd.Series | None = None,
                   cutoffs: Cutoffs = Cutoffs(), growth: float = 0.5, min_count: int = 5,
                   new_days: int = 14, new_share: float = 0.8, alpha: float = 0.05) -> pd.DataFrame:
    """One row per topic of ``model`` (same order) with the columns of the module docstring, plus ``topic``,
    ``label`` and ``message_count``.

    ``messages`` is the frame the model was discovered from, ``rollup`` its conversation rollup (computed
    when None). ``compound``: VADER scores of ``messages`` (a Series on its index, e.g. from the app's scored
    frame); when None the clustered texts are scored here. Nothing is modified. An empty model gives an
    empty frame with these columns.

    Examples
    --------
    >>> from metrics.topics._discover import discover_topics, TopicOptions
    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b", "b"], "speaker": ["user", "agent", "user", "bot"],
    ...                   "text": ["refund please", "On it", "my refund is late", "Done. Anything else?"],
    ...                   "row": [1, 2, 3, 4], "rating": [2.0, 2.0, 5.0, 5.0]})
    >>> out = topic_outcomes(discover_topics(m, options=TopicOptions(n_topics=1)), m)
    >>> out[["escalation_rate", "abandonment_rate", "mean_rating", "csat_rate"]].values.tolist()
    [[0.5, 0.5, 3.5, 0.5]]
    """
    _check_growth(growth, min_count, new_days, new_share, alpha)
    cols = {"topic": "int64", "label": "str", "message_count": "int64", "conversation_count": "int64",
            "decided_count": "int64", "resolution_rate": "float64", "escalation_rate": "float64",
            "abandonment_rate": "float64", "mean_sentiment": "float64", "negative_rate": "float64",
            "rated_count": "int64", "mean_rating": "float64", "csat_rate": "float64", "recent_count": "int64",
            "prior_count": "int64", "wow_change": "float64", "growing": "bool", "new": "bool"}
    if model.empty:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in cols.items()})
    topics = model.topics
    a = model.assignments
    order = {int(t): i for i, t in enumerate(topics["topic"])}
    k = len(topics)
    pos = a["topic"].map(order).to_numpy(dtype=np.int64)
    out = {c: np.zeros(k, dtype=np.int64) if t == "int64" else np.full(k, np.nan) for c, t in cols.items()
           if c not in ("topic", "label", "growing", "new")}
    out["message_count"] = np.bincount(pos, minlength=k).astype(np.int64)

    # conversations and their outcomes
    pairs = pd.DataFrame({"conversation_id": a["conversation_id"].to_numpy(), "pos": pos}).drop_duplicates()
    out["conversation_count"] = np.bincount(pairs["pos"], minlength=k).astype(np.int64)
    if rollup is None:
        rollup = conversation_rollup(messages)
    table = outcome_table(messages, rollup, rules=rules)
    joined = pairs.merge(table[["conversation_id", "outcome"]], on="conversation_id", how="left")
    decided = joined["outcome"].notna() & joined["outcome"].ne("in_progress")
    out["decided_count"] = np.bincount(joined.loc[decided, "pos"], minlength=k).astype(np.int64)
    for outcome, col in (("resolved", "resolution_rate"), ("escalated", "escalation_rate"),
                         ("abandoned", "abandonment_rate")):
        hits = np.bincount(joined.loc[joined["outcome"].eq(outcome).fillna(False), "pos"], minlength=k)
        out[col] = _rate(hits, out["decided_count"])

    # sentiment of the clustered messages
    if compound is not None:
        keyed = pd.DataFrame({"conversation_id": messages["conversation_id"].astype("str").to_numpy(),
                              "row": pd.to_numeric(messages["row"], errors="coerce").to_numpy()
                              if "row" in messages.columns else np.arange(1, len(messages) + 1),
                              "compound": pd.to_numeric(compound, errors="coerce").to_numpy(dtype=float)})
        scores = a[["conversation_id", "row"]].merge(keyed.drop_duplicates(["conversation_id", "row"]),
                                                     on=["conversation_id", "row"], how="left")["compound"]
        scores = scores.to_numpy(dtype=float)
    else:
        scores = score_messages(a[["text"]]).to_numpy(dtype=float)
    have = ~np.isnan(scores)
    n_scored = np.bincount(pos[have], minlength=k)
    out["mean_sentiment"] = _rate(np.bincount(pos[have], weights=scores[have], minlength=k), n_scored)
    out["negative_rate"] = _rate(np.bincount(pos[have & (scores <= cutoffs.negative)], minlength=k), n_scored)

    # ratings (one per conversation)
    if "rating" in rollup.columns:
        rated = pairs.merge(rollup[["conversation_id", "rating"]], on="conversation_id", how="left")
        rated = rated[pd.to_numeric(rated["rating"], errors="coerce").notna()]
        values = pd.to_numeric(rated["rating"]).to_numpy(dtype=float)
        where = rated["pos"].to_numpy(dtype=np.int64)
        out["rated_count"] = np.bincount(where, minlength=k).astype(np.int64)
        out["mean_rating"] = _rate(np.bincount(where, weights=values, minlength=k), out["rated_count"])
        out["csat_rate"] = _rate(np.bincount(where[values >= 4], minlength=k), out["rated_count"])

    # week over week, growing, new
    moves = _growth(model, pos, k, growth=growth, min_count=min_count, new_days=new_days, new_share=new_share,
                    alpha=alpha)
    for c in ("recent_count", "prior_count", "wow_change"):
        out[c] = moves[c]
    growing, new = moves["growing"], moves["new"]
    frame = pd.DataFrame({"topic": topics["topic"].to_numpy(), "label": topics["label"].to_numpy(), **out,
                          "growing": growing, "new": new})
    return frame[list(cols)].astype(cols)
