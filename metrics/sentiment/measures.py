"""Customer sentiment and ratings: distribution, trend, breakdowns, shift, reactions, calibration.

Every sentiment function takes a *scored frame*: the validated messages plus a
float ``compound`` column (:func:`metrics.sentiment.add_sentiment`). Labels are
recomputed from ``compound`` with the ``cutoffs`` given (default VADER's: positive
>= 0.05, negative <= -0.05). Messages whose ``compound`` is NaN (no text) are
left out everywhere. ``speaker="user"`` (the default) measures the customer;
``speaker="bot"`` the bot's tone; ``None`` every speaker.

Rating functions take the per-conversation rollup (:mod:`metrics.core.rollup`),
whose ``rating`` (1-5), ``thumbs`` (up/down) and ``survey_solved`` columns are
the conversation's feedback.

Definitions
-----------
``*_rate`` of sentiment
    messages with that label / scored messages of the speaker (NaN when none).
Conversation sentiment
    the conversation's user messages in (timestamp, row) order (the conversation
    order of :mod:`metrics.core.order`): first, last, mean and min compound; its
    label is the label of the mean.
Shift
    ``last_compound - first_compound`` of conversations with at least two
    scored user messages. *Worsened* when the shift is below ``-min_drop``
    (default 0.05, the width of VADER's neutral band), *improved* above
    ``+min_drop``, else unchanged. ``worsened_conversation_rate`` = worsened /
    eligible conversations (NaN when none is eligible).
Reaction to a bot message
    the next non-system message of the conversation, when it is a user
    message with a score.
``survey_response_rate``
    conversations with any feedback (a rating, a thumb, or a "did we solve
    it" answer) / conversations (NaN when there are none).
``thumbs_up_rate``
    up / (up + down) (NaN without thumbs).
Human label (calibration)
    a 1-5 human score (a rating, or an audit tone score averaged over the
    reviewers) rounded half up: 1-2 negative, 3 neutral, 4-5 positive.
Quality bands (:class:`QualityBands`)
    the guide's two reference points: "a 3.2-star average rating with 45%
    negative sentiment indicates serious quality issues, while 4.5 stars with
    75% positive sentiment means your bot is hitting the mark".
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metrics.core import memo
from metrics.errors import ConfigError, InsufficientDataError
from metrics.core.frames import filter_rows
from metrics.core.order import conversation_order, sort_messages
from metrics.core.periods import normalise_freq, period_end, period_label, period_range, period_start
from metrics.io.schema import CONVERSATION_FIELDS, has_timestamps
from metrics.sentiment import LABELS, Cutoffs, sentiment_labels

__all__ = [
    "FREQUENCIES",
    "SentimentDistribution",
    "sentiment_distribution",
    "sentiment_trend",
    "trend_from_totals",
    "sentiment_breakdown",
    "conversation_sentiment",
    "SentimentShift",
    "sentiment_shift",
    "conversation_first_last",
    "shift_from_conversations",
    "worsened_conversation_rate",
    "bot_reaction_pairs",
    "negative_reactions",
    "conversations_matching",
    "reaction_conversations",
    "most_negative_conversations",
    "RatingSummary",
    "rating_summary",
    "rating_trend",
    "rating_by_group",
    "rating_correlations",
    "conversations_with_rating",
    "QualityBands",
    "QualityAssessment",
    "quality_band",
    "human_judgements",
    "SentimentCalibration",
    "sentiment_calibration",
]

FREQUENCIES = ("day", "week")

#: Fields filled per conversation before grouping (constant within a conversation).
_CONVERSATION_LEVEL = set(CONVERSATION_FIELDS) | {"channel", "user_id"}


# --------------------------------------------------------------------------- helpers

def _require(frame: pd.DataFrame, columns: tuple[str, ...], *, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        hint = " (the messages' sentiment scores)" if "compound" in missing else ""
        names = ", ".join(f"'{c}'" for c in missing)
        raise InsufficientDataError(f"{what} needs the column(s) {names}{hint}, which the data does not have")


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` in conversation order (:mod:`metrics.core.order`), index labels kept; ``frame``
    itself when it is in that order already."""
    take = sort_messages(frame)
    return frame if take is None else frame.iloc[take]


def _conversation_rows(frame: pd.DataFrame, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """The rows selected by ``mask`` in conversation order (:mod:`metrics.core.order`), without
    copying the frame.

    Returns their positions in ``frame``, their conversation codes (position of the id, as str,
    among the sorted distinct ids; -1 when missing) and those sorted distinct ids. Speed (issue
    10): positions and integer codes replace filtered copies of 1M-row string columns, and the
    order of the whole frame is computed once per frame for every metric of a page.
    """
    order = conversation_order(frame)
    selected = np.asarray(mask, dtype=bool)
    if order.take is None:
        positions = np.flatnonzero(selected)
        return positions, order.codes[positions], order.ids
    keep = selected[order.take]
    return order.take[keep], order.codes[keep], order.ids


def _group_key(codes: np.ndarray) -> np.ndarray:
    """Group key from conversation codes: a missing id (-1) becomes NaN so groupby drops it."""
    return codes if (codes >= 0).all() else np.where(codes >= 0, codes, np.nan)


def _rows_mask(scored: pd.DataFrame, speaker: str | None, *, what: str) -> np.ndarray:
    """Boolean array: the scored messages of the speaker (every speaker when None)."""
    _require(scored, ("conversation_id", "speaker", "compound"), what=what)
    mask = scored["compound"].notna().to_numpy(dtype=bool)
    if speaker is not None:
        mask = mask & scored["speaker"].eq(speaker).fillna(False).to_numpy(dtype=bool)
    return mask


def _rows(scored: pd.DataFrame, speaker: str | None, *, what: str, columns=None) -> pd.DataFrame:
    """Scored messages of the speaker; only ``columns`` (plus the required ones) when given."""
    mask = _rows_mask(scored, speaker, what=what)  # Arrow's filter: pandas' mask or take cost several times more
    if columns is None:
        return filter_rows(scored, mask)
    keep = dict.fromkeys(["conversation_id", "speaker", "compound", *columns])
    return filter_rows(scored[[c for c in keep if c in scored.columns]], mask)  # cheaper than every column


def _label_flags(compound, cutoffs: Cutoffs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positive, neutral, negative) masks: the rule of :func:`metrics.sentiment.sentiment_labels`
    without building an array of label strings (NaN is in none of them)."""
    values = np.asarray(compound, dtype="float64")
    positive = values >= cutoffs.positive
    negative = ~positive & (values <= cutoffs.negative)
    neutral = ~positive & ~negative & ~np.isnan(values)
    return positive, neutral, negative


def _label_array(compound, cutoffs: Cutoffs) -> np.ndarray:
    """Object array of labels, None where the score is NaN: the values of
    :func:`metrics.sentiment.sentiment_labels`, built from :func:`_label_flags` (no Series round trip)."""
    positive, neutral, negative = _label_flags(compound, cutoffs)
    out = np.full(len(positive), None, dtype=object)
    out[positive], out[neutral], out[negative] = "positive", "neutral", "negative"
    return out


def _rate(num, den) -> float:
    return float(num) / float(den) if den else math.nan


def _check_int(name: str, value, low: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low} (got {value!r})")
    return int(value)


def _conversation_values(frame: pd.DataFrame, column: str) -> pd.Series:
    """The column with each conversation's first non-missing value (in time order) on every one of its rows."""
    ordered = _ordered(frame.reset_index(drop=True))
    first = ordered.groupby("conversation_id", sort=False)[column].transform("first").sort_index()
    return pd.Series(first.to_numpy(), index=frame.index, name=column, dtype=frame[column].dtype)


def _stars(rating: pd.Series) -> pd.Series:
    """Ratings rounded half up to whole stars and clipped to 1..5 (NaN stays NaN)."""
    values = pd.to_numeric(rating, errors="coerce").astype("float64")
    return np.floor(values + 0.5).clip(1, 5)


# --------------------------------------------------------------------------- distribution

@dataclass(frozen=True)
class SentimentDistribution:
    """Shares of positive / neutral / negative scored messages of one speaker.

    Rates are counts / ``message_count``; with no scored message every rate and
    ``mean_compound`` are NaN and the counts 0.
    """

    message_count: int
    positive_count: int
    neutral_count: int
    negative_count: int
    positive_rate: float
    neutral_rate: float
    negative_rate: float
    mean_compound: float

    def to_frame(self) -> pd.DataFrame:
        """Columns ``sentiment`` (negative, neutral, positive), ``message_count``, ``share``."""
        return pd.DataFrame({
            "sentiment": pd.Series(LABELS, dtype="str"),
            "message_count": [self.negative_count, self.neutral_count, self.positive_count],
            "share": [self.negative_rate, self.neutral_rate, self.positive_rate],
        })


def sentiment_distribution(scored: pd.DataFrame, *, speaker: str | None = "user",
                           cutoffs: Cutoffs = Cutoffs()) -> SentimentDistribution:
    """Share of the speaker's scored messages in each label, and their mean compound.

    Examples
    --------
    >>> f = pd.DataFrame({"conversation_id": ["a", "a", "b"], "speaker": ["user", "bot", "user"],
    ...                   "compound": [0.6, 0.9, -0.3]})
    >>> d = sentiment_distribution(f)
    >>> d.message_count, d.positive_rate, d.negative_rate, round(d.mean_compound, 2)
    (2, 0.5, 0.5, 0.15)
    """
    rows = _rows(scored, speaker, what="sentiment_distribution", columns=())
    positive, neutral, negative = _label_flags(rows["compound"], cutoffs)
    n = len(rows)
    counts = {"positive": int(positive.sum()), "neutral": int(neutral.sum()), "negative": int(negative.sum())}
    return SentimentDistribution(
        message_count=n,
        positive_count=counts["positive"], neutral_count=counts["neutral"], negative_count=counts["negative"],
        positive_rate=_rate(counts["positive"], n), neutral_rate=_rate(counts["neutral"], n),
        negative_rate=_rate(counts["negative"], n),
        mean_compound=float(rows["compound"].mean()) if n else math.nan,
    )


# --------------------------------------------------------------------------- trend

# Days and ISO weeks are metrics.core.periods', on the timestamps' own calendar: UTC, as every loaded
# frame's timestamps (and the rollup's start times) are.

def _check_freq(freq: str) -> str:
    """``"D"`` or ``"W"`` (:mod:`metrics.core.periods`; ``"day"``/``"week"`` accepted): no monthly trend."""
    return normalise_freq(freq, allowed=FREQUENCIES)


def sentiment_trend(scored: pd.DataFrame, *, freq: str = "day", speaker: str | None = "user",
                    window: int | None = None, cutoffs: Cutoffs = Cutoffs()) -> pd.DataFrame:
    """Mean compound per day or ISO week (Monday start, UTC), with a rolling mean.

    Columns: ``period`` (UTC start), ``label`` ("2026-08-03" or "2026-W32"),
    ``message_count``, ``mean_compound``, ``positive_rate``, ``negative_rate``
    and ``rolling_mean_compound``: the message-weighted mean compound of the
    ``window`` periods ending at this one (default 7 days or 4 weeks). Every
    period from the first to the last is present; a period without messages
    has count 0 and NaN means (it adds nothing to the rolling mean).

    No scored message of the speaker: an empty frame. Messages without a
    timestamp are left out; ``InsufficientDataError`` when none has one.

    Examples
    --------
    >>> f = pd.DataFrame({"conversation_id": ["a", "b", "c"], "speaker": ["user"] * 3,
    ...     "compound": [0.5, -0.5, 0.3],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 11:00", "2026-08-05 09:00"], utc=True)})
    >>> t = sentiment_trend(f, window=2)
    >>> t["label"].tolist(), t["message_count"].tolist(), t["rolling_mean_compound"].round(2).tolist()
    (['2026-08-03', '2026-08-04', '2026-08-05'], [2, 0, 1], [0.0, 0.0, 0.3])
    """
    code = _check_freq(freq)
    window = (7 if code == "D" else 4) if window is None else _check_int("window", window, 1)
    rows = _rows(scored, speaker, what="sentiment_trend", columns=("timestamp",))
    columns = ["period", "label", "message_count", "mean_compound", "positive_rate", "negative_rate",
               "rolling_mean_compound"]
    if len(rows) == 0:
        return _empty(columns, period="datetime64[ns, UTC]", label="str", message_count="int64")
    if not has_timestamps(rows):
        raise InsufficientDataError("the sentiment trend needs timestamps, and no scored message has one")
    rows = rows[rows["timestamp"].notna()]
    positive, _, negative = _label_flags(rows["compound"], cutoffs)
    # .array keeps the datetime dtype (.to_numpy() of tz-aware times builds slow Timestamp objects).
    work = pd.DataFrame({"period": period_start(rows["timestamp"], code).array,
                         "compound": rows["compound"].to_numpy(dtype="float64"),
                         "pos": positive, "neg": negative})
    grouped = work.groupby("period").agg(message_count=("compound", "size"), total=("compound", "sum"),
                                         pos=("pos", "sum"), neg=("neg", "sum"))
    return trend_from_totals(grouped, freq=code, window=window)


def trend_from_totals(grouped: pd.DataFrame, *, freq: str = "day", window: int | None = None) -> pd.DataFrame:
    """:func:`sentiment_trend` from per-period totals: ``grouped`` is indexed by period start (the
    timestamps' calendar, :func:`metrics.core.periods.period_start`) with columns ``message_count``,
    ``total`` (sum of compound), ``pos`` and ``neg`` (label counts); at least one row. Used by the
    trend itself and by the facts (:mod:`metrics.sentiment.facts`), whose totals add up across shards.

    Examples
    --------
    >>> g = pd.DataFrame({"message_count": [2, 1], "total": [0.5, -0.25], "pos": [1, 0], "neg": [0, 1]},
    ...     index=pd.to_datetime(["2026-08-03", "2026-08-17"], utc=True))
    >>> t = trend_from_totals(g, freq="week")
    >>> t["label"].tolist(), t["message_count"].tolist(), t["mean_compound"].tolist()
    (['2026-W32', '2026-W33', '2026-W34'], [2, 0, 1], [0.25, nan, -0.25])
    """
    code = _check_freq(freq)
    window = (7 if code == "D" else 4) if window is None else _check_int("window", window, 1)
    full = period_range(grouped.index.min(), grouped.index.max(), code)
    grouped = grouped.reindex(full, fill_value=0)
    count = grouped["message_count"].astype("int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (grouped["total"] / count).where(count > 0)
        roll_total = grouped["total"].rolling(window, min_periods=1).sum()
        roll_count = count.rolling(window, min_periods=1).sum()
        rolling = (roll_total / roll_count).where(roll_count > 0)
    period = pd.Series(full, dtype="datetime64[ns, UTC]")
    return pd.DataFrame({
        "period": period,
        "label": period_label(period, code),
        "message_count": count.to_numpy(),
        "mean_compound": mean.to_numpy(dtype="float64"),
        "positive_rate": (grouped["pos"] / count).where(count > 0).to_numpy(dtype="float64"),
        "negative_rate": (grouped["neg"] / count).where(count > 0).to_numpy(dtype="float64"),
        "rolling_mean_compound": rolling.to_numpy(dtype="float64"),
    })


def _empty(columns: list[str], **dtypes: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=dtypes.get(c, "float64")) for c in columns})


# --------------------------------------------------------------------------- breakdown

def sentiment_breakdown(scored: pd.DataFrame, *, by: str, speaker: str | None = "user",
                        cutoffs: Cutoffs = Cutoffs(), min_count: int = 1) -> pd.DataFrame:
    """Sentiment of the speaker's messages per value of ``by`` (intent, topic, channel, segment, ...).

    Columns: ``<by>``, ``message_count``, ``conversation_count``,
    ``mean_compound``, ``positive_rate``, ``neutral_rate``, ``negative_rate``;
    groups with fewer than ``min_count`` messages are dropped; worst (lowest
    mean) first. Conversation fields (topic, channel, segment, ...) take the
    conversation's first non-missing value; ``intent`` is each message's own.
    Messages whose group is missing are left out. ``InsufficientDataError``
    when the frame has no ``by`` column. No scored message: an empty frame.

    Examples
    --------
    >>> f = pd.DataFrame({"conversation_id": ["a", "a", "b"], "speaker": ["user"] * 3,
    ...     "compound": [0.6, -0.2, -0.8], "topic": ["billing", None, "refund"]})
    >>> sentiment_breakdown(f, by="topic").round(3)[["topic", "message_count", "mean_compound"]].values.tolist()
    [['refund', 1, -0.8], ['billing', 2, 0.2]]
    """
    min_count = _check_int("min_count", min_count, 1)
    _require(scored, (by,), what=f"the sentiment breakdown by {by!r}")
    columns = [by, "message_count", "conversation_count", "mean_compound", "positive_rate", "neutral_rate",
               "negative_rate"]
    work = scored[["conversation_id", "speaker", "compound", by]] if by != "conversation_id" else \
        scored[["conversation_id", "speaker", "compound"]]
    if by in _CONVERSATION_LEVEL and len(work):
        work = work.assign(**{by: _conversation_values(scored, by)})
    rows = _rows(work, speaker, what="sentiment_breakdown")
    rows = rows[rows[by].notna()]
    if len(rows) == 0:
        return _empty(columns, **{by: "str", "message_count": "int64", "conversation_count": "int64"})
    positive, neutral, negative = _label_flags(rows["compound"], cutoffs)
    # Group on integer codes (sorted like the strings) instead of on the strings themselves.
    group, names = pd.factorize(rows[by].astype("str"), sort=True)
    work = pd.DataFrame({"group": group, "compound": rows["compound"].to_numpy(dtype="float64"),
                         "pos": positive, "neu": neutral, "neg": negative})
    out = work.groupby("group", sort=True).agg(
        message_count=("compound", "size"), mean_compound=("compound", "mean"), positive_rate=("pos", "mean"),
        neutral_rate=("neu", "mean"), negative_rate=("neg", "mean"))
    # conversation_count: distinct (group, conversation) pairs per group; a missing id is not counted.
    cid, cids = pd.factorize(rows["conversation_id"])
    pairs = pd.unique(group[cid >= 0].astype(np.int64) * (len(cids) + 1) + cid[cid >= 0])  # hash, no sort
    distinct = np.bincount(pairs // (len(cids) + 1), minlength=len(names))
    out.insert(0, "conversation_count", distinct[out.index.to_numpy()])
    out.insert(0, by, np.asarray(names, dtype=object)[out.index.to_numpy()])
    out = out.reset_index(drop=True)
    out = out[out["message_count"] >= min_count]
    out = out.sort_values(["mean_compound", by], kind="stable").reset_index(drop=True)
    out[by] = out[by].astype("str")
    return out[columns].astype({"message_count": "int64", "conversation_count": "int64"})


# --------------------------------------------------------------------------- conversations

def conversation_sentiment(scored: pd.DataFrame, *, speaker: str = "user",
                           cutoffs: Cutoffs = Cutoffs()) -> pd.DataFrame:
    """One row per conversation with at least one scored message of the speaker.

    Columns: ``conversation_id``, ``user_message_count``, ``first_compound``,
    ``last_compound`` (in timestamp, row order), ``mean_compound``,
    ``min_compound``, ``worst_text`` (the text of the lowest-scored message,
    the earliest on a tie) and ``sentiment`` (label of the mean). Sorted by
    conversation_id. No scored message: an empty frame.

    Examples
    --------
    >>> f = pd.DataFrame({"conversation_id": ["a", "a"], "speaker": ["user", "user"], "row": [1, 2],
    ...     "text": ["great", "awful"], "compound": [0.6, -0.4]})
    >>> row = conversation_sentiment(f).iloc[0]
    >>> float(row["first_compound"]), float(row["last_compound"]), row["worst_text"], row["sentiment"]
    (0.6, -0.4, 'awful', 'positive')
    """
    mask = _rows_mask(scored, speaker, what="conversation_sentiment")
    columns = ["conversation_id", "user_message_count", "first_compound", "last_compound", "mean_compound",
               "min_compound", "worst_text", "sentiment"]
    if not mask.any():
        return _empty(columns, conversation_id="str", user_message_count="int64", worst_text="str",
                      sentiment="str")
    # Group on numeric codes sorted like the ids instead of on the strings. A missing id stays a
    # missing key (NaN), dropped by groupby exactly as before, so pandas aggregates identically.
    positions, codes, ids = _conversation_rows(scored, mask)
    compound = scored["compound"].to_numpy(dtype="float64")[positions]
    g = pd.Series(compound).groupby(_group_key(codes), sort=True)
    out = g.agg(user_message_count="size", first_compound="first", last_compound="last",
                mean_compound="mean", min_compound="min")
    worst = positions[g.idxmin().to_numpy()]  # the lowest score of each conversation (earliest on a tie)
    # Strings stay arrow-backed ``str`` arrays (taken by position), no round trip through objects.
    if "text" in scored.columns:
        out["worst_text"] = scored["text"].astype("str").iloc[worst].array
    else:
        out["worst_text"] = pd.array([None] * len(out), dtype="str")
    out.insert(0, "conversation_id", ids.take(out.index.to_numpy(dtype=np.int64)))
    out = out.reset_index(drop=True)
    out["sentiment"] = _label_array(out["mean_compound"], cutoffs)
    out["conversation_id"] = out["conversation_id"].astype("str")
    out["worst_text"] = out["worst_text"].astype("str")
    out["sentiment"] = out["sentiment"].astype("str")
    return out[columns].astype({"user_message_count": "int64"})


@dataclass(frozen=True)
class SentimentShift:
    """First vs last user message of each conversation with at least two scored user messages.

    ``table`` columns: conversation_id, user_message_count, first_compound,
    last_compound, shift (last - first), direction (worsened | improved |
    unchanged). Rates are counts / ``eligible_count`` (NaN when 0).
    """

    table: pd.DataFrame
    eligible_count: int
    worsened_count: int
    improved_count: int
    unchanged_count: int
    worsened_conversation_rate: float
    improved_conversation_rate: float
    mean_shift: float
    min_drop: float = 0.05

    def counts_frame(self) -> pd.DataFrame:
        """Columns ``direction`` (worsened, unchanged, improved), ``conversation_count``, ``share``."""
        counts = [self.worsened_count, self.unchanged_count, self.improved_count]
        return pd.DataFrame({"direction": pd.Series(["worsened", "unchanged", "improved"], dtype="str"),
                             "conversation_count": counts,
                             "share": [_rate(c, self.eligible_count) for c in counts]})


def sentiment_shift(scored: pd.DataFrame, *, min_drop: float = 0.05) -> SentimentShift:
    """Did the customer's mood get worse between their first and last message?

    A conversation *worsened* when ``last - first < -min_drop``, *improved*
    when ``> min_drop``, else unchanged; only conversations with two or more
    scored user messages count. No eligible conversation: counts 0 and NaN
    rates. ``ConfigError`` unless 0 <= min_drop < 2.

    Examples
    --------
    >>> f = pd.DataFrame({"conversation_id": ["a", "a", "b", "b", "c"], "speaker": ["user"] * 5,
    ...     "row": [1, 2, 3, 4, 5], "compound": [0.5, -0.4, 0.0, 0.03, 0.9]})
    >>> s = sentiment_shift(f)
    >>> s.eligible_count, s.worsened_count, s.worsened_conversation_rate
    (2, 1, 0.5)
    """
    try:
        ok = 0.0 <= float(min_drop) < 2.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"min_drop must be a number in [0, 2) (got {min_drop!r})")
    return shift_from_conversations(conversation_first_last(scored), min_drop=min_drop)


def conversation_first_last(scored: pd.DataFrame, *, speaker: str = "user") -> pd.DataFrame:
    """The first columns of :func:`conversation_sentiment`: ``conversation_id``,
    ``user_message_count``, ``first_compound`` and ``last_compound`` (in conversation order) of
    every conversation with a scored message of the speaker, sorted by conversation_id. What
    :func:`sentiment_shift` needs; one row per conversation, so a facts table
    (:mod:`metrics.sentiment.facts`).

    Examples
    --------
    >>> f = pd.DataFrame({"conversation_id": ["b", "a", "a"], "speaker": ["user"] * 3, "row": [1, 3, 2],
    ...     "compound": [0.1, -0.4, 0.6]})
    >>> conversation_first_last(f).values.tolist()
    [['a', 2, 0.6, -0.4], ['b', 1, 0.1, 0.1]]
    """
    mask = _rows_mask(scored, speaker, what="conversation_sentiment")
    columns = ["conversation_id", "user_message_count", "first_compound", "last_compound"]
    if not mask.any():
        return _empty(columns, conversation_id="str", user_message_count="int64")
    positions, codes, ids = _conversation_rows(scored, mask)
    compound = scored["compound"].to_numpy(dtype="float64")[positions]
    out = pd.Series(compound).groupby(_group_key(codes), sort=True).agg(
        user_message_count="size", first_compound="first", last_compound="last")
    out.insert(0, "conversation_id", ids.take(out.index.to_numpy(dtype=np.int64)))
    out = out.reset_index(drop=True)
    out["conversation_id"] = out["conversation_id"].astype("str")
    return out[columns].astype({"user_message_count": "int64", "first_compound": "float64",
                                "last_compound": "float64"})


def shift_from_conversations(conversations: pd.DataFrame, *, min_drop: float = 0.05) -> SentimentShift:
    """:func:`sentiment_shift` from :func:`conversation_first_last` (or :func:`conversation_sentiment`)
    rows: the conversations with ``user_message_count >= 2`` are the eligible ones.

    Examples
    --------
    >>> c = pd.DataFrame({"conversation_id": ["a", "b"], "user_message_count": [2, 1],
    ...     "first_compound": [0.5, 0.1], "last_compound": [-0.4, 0.1]})
    >>> s = shift_from_conversations(c)
    >>> s.eligible_count, s.worsened_conversation_rate
    (1, 1.0)
    """
    try:
        ok = 0.0 <= float(min_drop) < 2.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"min_drop must be a number in [0, 2) (got {min_drop!r})")
    conv = conversations
    table = conv[conv["user_message_count"] >= 2][["conversation_id", "user_message_count", "first_compound",
                                                    "last_compound"]].reset_index(drop=True)
    shift = (table["last_compound"] - table["first_compound"]).astype("float64")
    table = table.assign(shift=shift, direction=pd.Series(
        np.where(shift < -min_drop, "worsened", np.where(shift > min_drop, "improved", "unchanged")),
        index=table.index, dtype="str"))
    n = len(table)
    worse = int((table["direction"] == "worsened").sum())
    better = int((table["direction"] == "improved").sum())
    return SentimentShift(table=table, eligible_count=n, worsened_count=worse, improved_count=better,
                          unchanged_count=n - worse - better, worsened_conversation_rate=_rate(worse, n),
                          improved_conversation_rate=_rate(better, n),
                          mean_shift=float(shift.mean()) if n else math.nan, min_drop=float(min_drop))


def worsened_conversation_rate(scored: pd.DataFrame, *, min_drop: float = 0.05) -> float:
    """Share of eligible conversations whose last user message scores below the first by more
    than ``min_drop`` (:func:`sentiment_shift`); NaN when none has two scored user messages.

    Examples
    --------
    >>> f = pd.DataFrame({"conversation_id": ["a", "a"], "speaker": ["user"] * 2, "compound": [0.2, -0.2]})
    >>> worsened_conversation_rate(f)
    1.0
    """
    return sentiment_shift(scored, min_drop=min_drop).worsened_conversation_rate


# --------------------------------------------------------------------------- reactions

def bot_reaction_pairs(scored: pd.DataFrame, *, cutoffs: Cutoffs = Cutoffs()) -> pd.DataFrame:
    """Each bot message whose next non-system message (same conversation) is a scored user message.

    Columns: ``conversation_id``, ``bot_text``, ``bot_compound``, ``reply_text``,
    ``reply_compound``, ``reply_sentiment``; in conversation, timestamp, row
    order. No pair: an empty frame.

    Examples
    --------
    >>> f = pd.DataFrame({"conversation_id": ["a"] * 3, "speaker": ["bot", "system", "user"], "row": [1, 2, 3],
    ...     "text": ["Please wait", "typing", "this is useless"], "compound": [0.32, 0.0, -0.42]})
    >>> bot_reaction_pairs(f)[["bot_text", "reply_text", "reply_sentiment"]].values.tolist()
    [['Please wait', 'this is useless', 'negative']]
    """
    _require(scored, ("conversation_id", "speaker", "text", "compound"), what="bot_reaction_pairs")
    # once per scored frame (metrics.core.memo): the Overview, Sentiment and Improvement pages all use it
    return memo.cached("sentiment_metrics.bot_reaction_pairs", (scored,), cutoffs,
                       lambda: _bot_reaction_pairs(scored, cutoffs))


def _bot_reaction_pairs(scored: pd.DataFrame, cutoffs: Cutoffs) -> pd.DataFrame:
    columns = ["conversation_id", "bot_text", "bot_compound", "reply_text", "reply_compound", "reply_sentiment"]
    not_system = scored["speaker"].ne("system").fillna(True).to_numpy(dtype=bool)
    if not not_system.any():
        return _empty(columns, conversation_id="str", bot_text="str", reply_text="str", reply_sentiment="str")
    # In conversation order, a message's successor in its conversation is simply the next row
    # when both have the same (known) conversation id.
    positions, codes, ids = _conversation_rows(scored, not_system)
    speaker = scored["speaker"].astype("str")
    is_bot = speaker.eq("bot").fillna(False).to_numpy(dtype=bool)[positions]
    is_user = speaker.eq("user").fillna(False).to_numpy(dtype=bool)[positions]
    compound = scored["compound"].to_numpy(dtype="float64")[positions]
    keep = np.flatnonzero(is_bot[:-1] & is_user[1:] & ~np.isnan(compound[1:])
                          & (codes[:-1] == codes[1:]) & (codes[:-1] >= 0))
    text = scored["text"].astype("str")
    out = pd.DataFrame({
        "conversation_id": ids.take(codes[keep]),
        "bot_text": text.iloc[positions[keep]].reset_index(drop=True),
        "bot_compound": compound[keep],
        "reply_text": text.iloc[positions[keep + 1]].reset_index(drop=True),
        "reply_compound": compound[keep + 1],
    })
    out["reply_sentiment"] = _label_array(out["reply_compound"], cutoffs)
    return out.astype({"conversation_id": "str", "bot_text": "str", "reply_text": "str", "reply_sentiment": "str"})


def negative_reactions(scored: pd.DataFrame, *, cutoffs: Cutoffs = Cutoffs(), min_count: int = 5,
                       top: int = 20) -> pd.DataFrame:
    """The bot messages most often followed by a negative user message.

    Groups :func:`bot_reaction_pairs` by bot text. Columns: ``bot_text``,
    ``reply_count`` (times a user replied right after it), ``negative_count``,
    ``negative_rate`` (= negative_count / reply_count), ``mean_reply_compound``,
    ``bot_compound`` (the bot's own tone) and ``conversation_count``. Keeps
    texts with at least ``min_count`` replies and one negative reply; sorted by
    negative_count, then negative_rate (both descending), then text; the first
    ``top`` rows. No pair: an empty frame.

    Examples
    --------
    >>> f = pd.DataFrame({"conversation_id": ["a", "a", "b", "b"], "speaker": ["bot", "user"] * 2,
    ...     "row": [1, 2, 3, 4], "text": ["Rephrase?", "ugh", "Rephrase?", "ok"], "compound": [0, -0.4, 0, 0.3]})
    >>> negative_reactions(f, min_count=2)[["bot_text", "reply_count", "negative_count", "negative_rate"]
    ...     ].values.tolist()
    [['Rephrase?', 2, 1, 0.5]]
    """
    min_count = _check_int("min_count", min_count, 1)
    top = _check_int("top", top, 1)
    pairs = bot_reaction_pairs(scored, cutoffs=cutoffs)
    columns = ["bot_text", "reply_count", "negative_count", "negative_rate", "mean_reply_compound",
               "bot_compound", "conversation_count"]
    if len(pairs) == 0:
        return _empty(columns, bot_text="str", reply_count="int64", negative_count="int64",
                      conversation_count="int64")
    work = pairs.assign(neg=pairs["reply_sentiment"].eq("negative").to_numpy(bool))
    out = work.groupby("bot_text", sort=True).agg(
        reply_count=("reply_compound", "size"), negative_count=("neg", "sum"),
        mean_reply_compound=("reply_compound", "mean"), bot_compound=("bot_compound", "first"),
        conversation_count=("conversation_id", "nunique")).reset_index()
    out["negative_rate"] = out["negative_count"] / out["reply_count"]
    out = out[(out["reply_count"] >= min_count) & (out["negative_count"] > 0)]
    out = out.sort_values(["negative_count", "negative_rate", "bot_text"], ascending=[False, False, True],
                          kind="stable").head(top).reset_index(drop=True)
    out["bot_text"] = out["bot_text"].astype("str")
    return out[columns].astype({"reply_count": "int64", "negative_count": "int64", "conversation_count": "int64"})


def reaction_conversations(scored: pd.DataFrame, bot_text: str, *, sentiment: str | None = "negative",
                           cutoffs: Cutoffs = Cutoffs()) -> pd.DataFrame:
    """Conversations where ``bot_text`` was answered by a user message with that label (None: any).

    Columns: ``conversation_id``, ``reply_count``, ``reply_text`` (the first
    such reply), ``reply_compound`` (its score). Sorted by reply_compound.
    """
    if sentiment is not None and sentiment not in LABELS:
        raise ConfigError(f"sentiment must be one of {LABELS} or None (got {sentiment!r})")
    pairs = bot_reaction_pairs(scored, cutoffs=cutoffs)
    pairs = pairs[pairs["bot_text"].eq(bot_text).fillna(False).astype(bool)]
    if sentiment is not None:
        pairs = pairs[pairs["reply_sentiment"].eq(sentiment).fillna(False).astype(bool)]
    out = pairs.groupby("conversation_id", sort=True).agg(
        reply_count=("reply_text", "size"), reply_text=("reply_text", "first"),
        reply_compound=("reply_compound", "first")).reset_index()
    return out.sort_values(["reply_compound", "conversation_id"], kind="stable").reset_index(drop=True)


def conversations_matching(scored: pd.DataFrame, *, speaker: str | None = "user", sentiment: str | None = None,
                           by: str | None = None, value: object = None, period: object = None,
                           freq: str = "day", cutoffs: Cutoffs = Cutoffs()) -> pd.DataFrame:
    """The conversations behind a bar or point: messages of ``speaker`` with label ``sentiment``,
    ``by == value`` and a timestamp in the ``period`` starting at the given day/week start.

    Each filter is skipped when None. Columns: ``conversation_id``,
    ``message_count`` (matching messages), ``mean_compound`` (of those),
    ``example_text`` (the lowest-scored matching message). Most negative first.

    Examples
    --------
    >>> f = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["user"] * 2, "text": ["bad", "good"],
    ...     "compound": [-0.5, 0.4]})
    >>> conversations_matching(f, sentiment="negative")["conversation_id"].tolist()
    ['a']
    """
    if sentiment is not None and sentiment not in LABELS:
        raise ConfigError(f"sentiment must be one of {LABELS} or None (got {sentiment!r})")
    code = _check_freq(freq)
    _require(scored, ("conversation_id", "speaker", "compound"), what="conversations_matching")
    base = scored.reset_index(drop=True)
    keep = np.array(base["compound"].notna(), dtype=bool)
    if speaker is not None:
        keep &= base["speaker"].eq(speaker).fillna(False).to_numpy(bool)
    if sentiment is not None:
        keep &= _label_array(base["compound"], cutoffs) == sentiment
    if by is not None:
        _require(scored, (by,), what=f"a drill-down by {by!r}")
        values = _conversation_values(base, by) if by in _CONVERSATION_LEVEL else base[by]
        keep &= values.astype("str").eq(str(value)).fillna(False).to_numpy(bool)
    if period is not None:
        _require(scored, ("timestamp",), what="a drill-down by period")
        start = pd.Timestamp(period)
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
        end = period_end(start, code)
        keep &= (base["timestamp"].ge(start) & base["timestamp"].lt(end)).fillna(False).to_numpy(bool)
    rows = _ordered(base[keep])
    columns = ["conversation_id", "message_count", "mean_compound", "example_text"]
    if len(rows) == 0:
        return _empty(columns, conversation_id="str", message_count="int64", example_text="str")
    text = rows["text"] if "text" in rows.columns else pd.Series(pd.NA, index=rows.index, dtype="str")
    work = pd.DataFrame({"conversation_id": rows["conversation_id"].astype("str").to_numpy(),
                         "compound": rows["compound"].to_numpy(dtype="float64"),
                         "text": text.astype("str").to_numpy(dtype=object, na_value=None),
                         "order": np.arange(len(rows))})
    work = work.sort_values(["conversation_id", "compound", "order"], kind="stable")
    out = work.groupby("conversation_id", sort=True).agg(
        message_count=("compound", "size"), mean_compound=("compound", "mean"),
        example_text=("text", "first")).reset_index()
    out = out.sort_values(["mean_compound", "conversation_id"], kind="stable").reset_index(drop=True)
    return out.astype({"conversation_id": "str", "message_count": "int64", "example_text": "str"})


def most_negative_conversations(scored: pd.DataFrame, *, limit: int = 20,
                                cutoffs: Cutoffs = Cutoffs()) -> pd.DataFrame:
    """The conversations whose user messages are the most negative on average (label negative only).

    :func:`conversation_sentiment` rows labelled negative, sorted by
    mean_compound, then min_compound, then id; the first ``limit``. These are
    what the page sends to the audit queue (the guide: "prioritize
    conversations with negative sentiment").

    Examples
    --------
    >>> f = pd.DataFrame({"conversation_id": ["a", "b", "c"], "speaker": ["user"] * 3,
    ...     "compound": [-0.2, -0.9, 0.5]})
    >>> most_negative_conversations(f)["conversation_id"].tolist()
    ['b', 'a']
    """
    limit = _check_int("limit", limit, 1)
    conv = conversation_sentiment(scored, cutoffs=cutoffs)
    conv = conv[conv["sentiment"].eq("negative").fillna(False).astype(bool)]
    return conv.sort_values(["mean_compound", "min_compound", "conversation_id"], kind="stable") \
        .head(limit).reset_index(drop=True)


# --------------------------------------------------------------------------- ratings

@dataclass(frozen=True)
class RatingSummary:
    """Post-conversation feedback of the conversations in a rollup.

    ``distribution`` maps every star 1..5 to its conversation count (ratings
    rounded half up). ``mean_rating`` is NaN without ratings,
    ``thumbs_up_rate`` = up / (up + down), NaN without thumbs;
    ``survey_response_rate`` = conversations with any feedback / conversations;
    ``survey_solved_rate`` = "solved" answers / answers (NaN without answers).
    """

    conversation_count: int
    rating_count: int
    mean_rating: float
    distribution: dict = field(default_factory=dict)
    thumbs_count: int = 0
    thumbs_up_count: int = 0
    thumbs_up_rate: float = math.nan
    feedback_count: int = 0
    survey_response_rate: float = math.nan
    survey_solved_count: int = 0
    survey_answer_count: int = 0
    survey_solved_rate: float = math.nan

    def distribution_frame(self) -> pd.DataFrame:
        """Columns ``stars`` (1..5), ``conversation_count``, ``share`` (of rated conversations)."""
        stars = list(range(1, 6))
        counts = [int(self.distribution.get(s, 0)) for s in stars]
        return pd.DataFrame({"stars": stars, "conversation_count": counts,
                             "share": [_rate(c, self.rating_count) for c in counts]})


def _column(frame: pd.DataFrame, name: str, dtype: str) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series([None] * len(frame), index=frame.index, dtype=dtype)


def rating_summary(conversations: pd.DataFrame) -> RatingSummary:
    """Mean stars, their distribution, thumbs-up share and survey response rate (one row per conversation).

    Missing ``rating``/``thumbs``/``survey_solved`` columns count as no answer.
    Empty rollup: zero counts and NaN rates.

    Examples
    --------
    >>> r = pd.DataFrame({"conversation_id": ["a", "b", "c", "d"], "rating": [5, 2, None, None],
    ...                   "thumbs": ["up", None, "down", None]})
    >>> s = rating_summary(r)
    >>> s.rating_count, s.mean_rating, s.distribution[5], s.thumbs_up_rate, s.survey_response_rate
    (2, 3.5, 1, 0.5, 0.75)
    """
    n = len(conversations)
    rating = pd.to_numeric(_column(conversations, "rating", "float64"), errors="coerce").astype("float64")
    stars = _stars(rating)
    thumbs = _column(conversations, "thumbs", "str").astype("str").str.strip().str.lower()
    up = thumbs.eq("up").fillna(False).astype(bool)
    down = thumbs.eq("down").fillna(False).astype(bool)
    solved = _column(conversations, "survey_solved", "boolean").astype("boolean")
    answered = solved.notna().to_numpy(bool)
    feedback = rating.notna().to_numpy(bool) | up.to_numpy() | down.to_numpy() | answered
    rated = int(rating.notna().sum())
    thumbs_count = int(up.sum() + down.sum())
    solved_count = int(solved.fillna(False).astype(bool).sum())
    return RatingSummary(
        conversation_count=n, rating_count=rated,
        mean_rating=float(rating.mean()) if rated else math.nan,
        distribution={s: int((stars == s).sum()) for s in range(1, 6)},
        thumbs_count=thumbs_count, thumbs_up_count=int(up.sum()), thumbs_up_rate=_rate(int(up.sum()), thumbs_count),
        feedback_count=int(feedback.sum()), survey_response_rate=_rate(int(feedback.sum()), n),
        survey_solved_count=solved_count, survey_answer_count=int(answered.sum()),
        survey_solved_rate=_rate(solved_count, int(answered.sum())),
    )


def rating_trend(conversations: pd.DataFrame, *, freq: str = "week") -> pd.DataFrame:
    """Mean rating per day or ISO week of the conversation's start (``started_at``).

    Columns: ``period``, ``label``, ``rating_count``, ``mean_rating`` (NaN in a
    period without ratings); every period from the first to the last rated one.
    No rating: an empty frame. ``InsufficientDataError`` when rated
    conversations have no start time.
    """
    code = _check_freq(freq)
    columns = ["period", "label", "rating_count", "mean_rating"]
    rating = pd.to_numeric(_column(conversations, "rating", "float64"), errors="coerce").astype("float64")
    rated = conversations[rating.notna().to_numpy(bool)]
    if len(rated) == 0:
        return _empty(columns, period="datetime64[ns, UTC]", label="str", rating_count="int64")
    if "started_at" not in rated.columns or rated["started_at"].notna().sum() == 0:
        raise InsufficientDataError("the rating trend needs conversation start times, and no rated "
                                    "conversation has one")
    rated = rated[rated["started_at"].notna()]
    work = pd.DataFrame({"period": period_start(rated["started_at"], code).to_numpy(),
                         "rating": rating[rated.index].to_numpy()})
    g = work.groupby("period").agg(rating_count=("rating", "size"), mean_rating=("rating", "mean"))
    full = period_range(g.index.min(), g.index.max(), code)
    g = g.reindex(full)
    period = pd.Series(full, dtype="datetime64[ns, UTC]")
    return pd.DataFrame({"period": period, "label": period_label(period, code),
                         "rating_count": g["rating_count"].fillna(0).astype("int64").to_numpy(),
                         "mean_rating": g["mean_rating"].to_numpy(dtype="float64")})


def _conversation_attribute(messages: pd.DataFrame, conversations: pd.DataFrame, by: str) -> pd.Series:
    """Per-conversation value of ``by`` indexed by conversation_id."""
    from metrics import outcomes

    if by == "intent":
        if "intent" not in messages.columns:
            raise InsufficientDataError("ratings by intent need an 'intent' column in the messages")
        return outcomes.primary_intent(messages)
    if by == "escalated":
        for col in ("has_agent", "handoff_event"):
            if col not in conversations.columns:
                raise InsufficientDataError(f"ratings by escalation need the rollup column {col!r}")
        signal = outcomes.escalation_signal(messages, conversations)
        return signal.map({True: "escalated", False: "not escalated"}).astype("str")
    _require(conversations, (by,), what=f"ratings by {by!r}")
    return pd.Series(conversations[by].to_numpy(), index=conversations["conversation_id"].astype("str"))


def rating_by_group(messages: pd.DataFrame, conversations: pd.DataFrame, *, by: str = "intent",
                    min_count: int = 1) -> pd.DataFrame:
    """Ratings per conversation group: which intents (topics, channels, ...) satisfy users most and least.

    ``by="intent"`` uses the conversation's primary intent
    (:func:`metrics.outcomes.primary_intent`); ``by="escalated"`` splits on the
    escalation signal (:func:`metrics.outcomes.escalation_signal`); any other
    value is a rollup column. Columns: ``<by>``, ``rating_count``,
    ``mean_rating``, ``low_rating_rate`` (share of 1-2 stars),
    ``high_rating_rate`` (4-5 stars); groups with fewer than ``min_count``
    ratings dropped; highest mean first. No rating: an empty frame.

    Examples
    --------
    >>> r = pd.DataFrame({"conversation_id": ["a", "b", "c"], "topic": ["x", "x", "y"], "rating": [5, 1, 4]})
    >>> rating_by_group(pd.DataFrame(), r, by="topic")[["topic", "rating_count", "mean_rating"]].values.tolist()
    [['y', 1, 4.0], ['x', 2, 3.0]]
    """
    min_count = _check_int("min_count", min_count, 1)
    columns = [by, "rating_count", "mean_rating", "low_rating_rate", "high_rating_rate"]
    rating = pd.to_numeric(_column(conversations, "rating", "float64"), errors="coerce").astype("float64")
    if "conversation_id" not in conversations.columns or rating.notna().sum() == 0:
        return _empty(columns, **{by: "str", "rating_count": "int64"})
    group = _conversation_attribute(messages, conversations, by)
    cids = conversations["conversation_id"].astype("str")
    work = pd.DataFrame({by: group.reindex(cids.to_numpy()).to_numpy(dtype=object, na_value=None),
                         "rating": rating.to_numpy()})
    work = work[work["rating"].notna() & work[by].notna()]
    if len(work) == 0:
        return _empty(columns, **{by: "str", "rating_count": "int64"})
    stars = _stars(work["rating"])
    work = work.assign(low=(stars <= 2).to_numpy(), high=(stars >= 4).to_numpy())
    work[by] = work[by].astype("str")
    out = work.groupby(by, sort=True).agg(rating_count=("rating", "size"), mean_rating=("rating", "mean"),
                                          low_rating_rate=("low", "mean"),
                                          high_rating_rate=("high", "mean")).reset_index()
    out = out[out["rating_count"] >= min_count]
    out = out.sort_values(["mean_rating", by], ascending=[False, True], kind="stable").reset_index(drop=True)
    out[by] = out[by].astype("str")
    return out[columns].astype({"rating_count": "int64"})


def _spearman(x: pd.Series, y: pd.Series) -> tuple[float, float, int]:
    from scipy.stats import spearmanr

    both = pd.DataFrame({"x": x, "y": y}).dropna()
    n = len(both)
    if n < 3 or both["x"].nunique() < 2 or both["y"].nunique() < 2:
        return math.nan, math.nan, n
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = spearmanr(both["x"].to_numpy(dtype=float), both["y"].to_numpy(dtype=float))
    return float(result.statistic), float(result.pvalue), n


def rating_correlations(scored: pd.DataFrame, conversations: pd.DataFrame) -> pd.DataFrame:
    """Spearman rank correlation of the conversation rating with escalation and with sentiment.

    Rows (``variable``): ``escalated`` (1 when the escalation signal is set,
    needs the rollup's has_agent/handoff_event), ``mean_user_compound``,
    ``last_user_compound``, ``min_user_compound`` (from
    :func:`conversation_sentiment`). Columns: ``variable``, ``spearman_rho``,
    ``p_value`` (scipy.stats.spearmanr), ``conversation_count`` (pairs used).
    Fewer than 3 pairs, or a constant side: NaN. A negative rho for
    ``escalated`` means escalated conversations are rated lower.

    Examples
    --------
    >>> f = pd.DataFrame({"conversation_id": list("abcd"), "speaker": ["user"] * 4,
    ...                   "compound": [-0.5, 0.1, 0.4, 0.8]})
    >>> r = pd.DataFrame({"conversation_id": list("abcd"), "rating": [1, 2, 4, 5]})
    >>> float(rating_correlations(f, r).set_index("variable").loc["mean_user_compound", "spearman_rho"])
    1.0
    """
    from metrics import outcomes

    columns = ["variable", "spearman_rho", "p_value", "conversation_count"]
    if "conversation_id" not in conversations.columns:
        return _empty(columns, variable="str", conversation_count="int64")
    cids = conversations["conversation_id"].astype("str").to_numpy()
    rating = pd.Series(pd.to_numeric(_column(conversations, "rating", "float64"), errors="coerce")
                       .astype("float64").to_numpy(), index=cids)
    rows = []
    if {"has_agent", "handoff_event"} <= set(conversations.columns):
        esc = outcomes.escalation_signal(scored, conversations).astype(float)
        rows.append(("escalated", *_spearman(rating, esc.reindex(cids).set_axis(cids))))
    conv = conversation_sentiment(scored).set_index("conversation_id")
    at = conv.index.get_indexer(cids)  # once for the three columns (-1: no scored user message)
    for name, col in (("mean_user_compound", "mean_compound"), ("last_user_compound", "last_compound"),
                      ("min_user_compound", "min_compound")):
        values = np.full(len(cids), np.nan)  # NaN: no scored user message (conv may be empty: no at[-1])
        values[at >= 0] = conv[col].to_numpy(dtype="float64")[at[at >= 0]]
        rows.append((name, *_spearman(rating, pd.Series(values, index=cids))))
    out = pd.DataFrame(rows, columns=columns)
    return out.astype({"variable": "str", "conversation_count": "int64"})


def conversations_with_rating(conversations: pd.DataFrame, stars: int) -> pd.DataFrame:
    """Conversations whose rating rounds to ``stars`` (columns conversation_id, rating), by id."""
    stars = _check_int("stars", stars, 1)
    if stars > 5:
        raise ConfigError(f"stars must be between 1 and 5 (got {stars!r})")
    rating = pd.to_numeric(_column(conversations, "rating", "float64"), errors="coerce").astype("float64")
    keep = (_stars(rating) == stars).to_numpy(bool)
    out = pd.DataFrame({"conversation_id": conversations["conversation_id"].astype("str").to_numpy()[keep],
                        "rating": rating.to_numpy()[keep]})
    return out.sort_values("conversation_id", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- quality bands

@dataclass(frozen=True)
class QualityBands:
    """The guide's reference points, configurable.

    Serious problem at or below ``problem_rating`` stars, or at or above
    ``problem_negative_rate`` negative ("a 3.2-star average rating with 45%
    negative sentiment indicates serious quality issues"); on target at or
    above ``target_rating`` stars and ``target_positive_rate`` positive ("4.5
    stars with 75% positive sentiment means your bot is hitting the mark").
    ``ConfigError`` unless 1 <= problem_rating < target_rating <= 5 and both
    rates are in [0, 1].
    """

    problem_rating: float = 3.2
    problem_negative_rate: float = 0.45
    target_rating: float = 4.5
    target_positive_rate: float = 0.75

    def __post_init__(self):
        try:
            ok = (1.0 <= float(self.problem_rating) < float(self.target_rating) <= 5.0
                  and 0.0 <= float(self.problem_negative_rate) <= 1.0
                  and 0.0 <= float(self.target_positive_rate) <= 1.0)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(
                "quality bands need 1 <= problem_rating < target_rating <= 5 and rates in [0, 1] "
                f"(got problem_rating={self.problem_rating!r}, target_rating={self.target_rating!r}, "
                f"problem_negative_rate={self.problem_negative_rate!r}, "
                f"target_positive_rate={self.target_positive_rate!r})")


@dataclass(frozen=True)
class QualityAssessment:
    """``band`` is serious_problem | in_between | on_target | unknown; ``reasons`` explain it."""

    band: str
    reasons: tuple[str, ...]


def quality_band(*, mean_rating: float, positive_rate: float, negative_rate: float,
                 bands: QualityBands = QualityBands()) -> QualityAssessment:
    """Place a bot on the guide's quality bands.

    serious_problem when any known signal is at or past a problem line (mean
    rating <= problem_rating, or negative share >= problem_negative_rate);
    on_target when every known signal is at or past its target (mean rating
    >= target_rating, positive share >= target_positive_rate); unknown when
    nothing is known (NaN rating and NaN shares); in_between otherwise. A NaN
    rating (no ratings) is judged on sentiment alone, and the reverse.

    Examples
    --------
    >>> quality_band(mean_rating=3.2, positive_rate=0.3, negative_rate=0.45).band
    'serious_problem'
    >>> quality_band(mean_rating=4.5, positive_rate=0.75, negative_rate=0.05).band
    'on_target'
    >>> quality_band(mean_rating=float("nan"), positive_rate=0.6, negative_rate=0.1).band
    'in_between'
    """
    def known(x) -> bool:
        return x is not None and not (isinstance(x, float) and math.isnan(x)) and not pd.isna(x)

    has_rating = known(mean_rating)
    has_sentiment = known(positive_rate) and known(negative_rate)
    if not has_rating and not has_sentiment:
        return QualityAssessment("unknown", ("no ratings and no scored user messages",))
    problems, short = [], []
    if has_rating:
        if mean_rating <= bands.problem_rating:
            problems.append(f"mean rating {mean_rating:.2f} <= {bands.problem_rating:g} stars")
        if mean_rating < bands.target_rating:
            short.append(f"mean rating {mean_rating:.2f} < {bands.target_rating:g} stars")
    if has_sentiment:
        if negative_rate >= bands.problem_negative_rate:
            problems.append(f"{negative_rate:.0%} negative >= {bands.problem_negative_rate:.0%}")
        if positive_rate < bands.target_positive_rate:
            short.append(f"{positive_rate:.0%} positive < {bands.target_positive_rate:.0%}")
    if problems:
        return QualityAssessment("serious_problem", tuple(problems))
    if not short:
        return QualityAssessment("on_target", ("every signal is at or past its target",))
    return QualityAssessment("in_between", tuple(short))


# --------------------------------------------------------------------------- calibration

def human_judgements(human: pd.DataFrame, *, score_column: str = "rating") -> pd.DataFrame:
    """Human labels per conversation from a 1-5 score (a rating, or audit tone scores).

    ``human`` has ``conversation_id`` and ``score_column``; several rows of one
    conversation (several reviewers) are averaged. Columns:
    ``conversation_id``, ``human_score``, ``human_label`` (score rounded half
    up: 1-2 negative, 3 neutral, 4-5 positive). Rows without a score are
    dropped. ``InsufficientDataError`` without the columns; ``ConfigError`` for
    a score outside 1-5 (the message names it).

    Examples
    --------
    >>> h = pd.DataFrame({"conversation_id": ["a", "a", "b"], "tone": [2, 3, 5]})
    >>> human_judgements(h, score_column="tone").values.tolist()
    [['a', 2.5, 'neutral'], ['b', 5.0, 'positive']]
    """
    _require(human, ("conversation_id", score_column), what="calibration against human scores")
    score = pd.to_numeric(human[score_column], errors="coerce").astype("float64")
    bad = score[(score < 1) | (score > 5)]
    if len(bad):
        raise ConfigError(f"human scores in {score_column!r} must be between 1 and 5 (got {bad.iloc[0]!r})")
    work = pd.DataFrame({"conversation_id": human["conversation_id"].astype("str").to_numpy(),
                         "human_score": score.to_numpy()}).dropna()
    out = work.groupby("conversation_id", sort=True)["human_score"].mean().reset_index()
    stars = _stars(out["human_score"])
    out["human_label"] = pd.Series(np.where(stars <= 2, "negative", np.where(stars == 3, "neutral", "positive")),
                                   index=out.index, dtype="str")
    return out.astype({"conversation_id": "str"})


@dataclass(frozen=True)
class SentimentCalibration:
    """Agreement between VADER's conversation label and the human label.

    ``confusion``: counts, index human label, columns VADER label (both in
    negative, neutral, positive order). ``kappa``: Cohen's kappa
    (sklearn ``cohen_kappa_score``); ``weighted_kappa``: the linear-weighted
    kappa on the ordered labels; both NaN when undefined (one label only).
    ``agreement_rate``: share of equal labels. ``pairs``: one row per
    conversation (conversation_id, human_score, human_label, vader_compound,
    vader_label, gap, agree) where ``gap`` = |vader_compound - (human_score -
    3) / 2|, the distance between the two on the [-1, 1] scale;
    ``disagreements``: the pairs whose labels differ, largest gap first.
    """

    conversation_count: int
    confusion: pd.DataFrame
    kappa: float
    weighted_kappa: float
    agreement_rate: float
    pairs: pd.DataFrame
    disagreements: pd.DataFrame
    source: str = "rating"


def sentiment_calibration(scored: pd.DataFrame, human: pd.DataFrame, *, score_column: str = "rating",
                          aggregate: str = "mean", cutoffs: Cutoffs = Cutoffs(),
                          top: int = 20) -> SentimentCalibration:
    """Compare VADER with human judgement on the conversations that have both.

    ``human`` is the rollup (``score_column="rating"``) or a frame of audit
    tone scores (e.g. ``score_column="tone"``), see :func:`human_judgements`.
    VADER's conversation score is the ``aggregate`` ("mean", "last" or "min")
    of its scored user messages, labelled with ``cutoffs``. ``top`` limits
    ``disagreements``. ``InsufficientDataError`` when no conversation has both.

    Examples
    --------
    >>> f = pd.DataFrame({"conversation_id": list("abcd"), "speaker": ["user"] * 4,
    ...                   "compound": [-0.6, 0.0, 0.7, 0.8]})
    >>> r = pd.DataFrame({"conversation_id": list("abcd"), "rating": [1, 3, 5, 1]})
    >>> c = sentiment_calibration(f, r)
    >>> c.conversation_count, c.agreement_rate, c.disagreements["conversation_id"].tolist()
    (4, 0.75, ['d'])
    """
    from sklearn.metrics import cohen_kappa_score

    choices = {"mean": "mean_compound", "last": "last_compound", "min": "min_compound"}
    if aggregate not in choices:
        raise ConfigError(f"aggregate must be one of {tuple(choices)} (got {aggregate!r})")
    top = _check_int("top", top, 1)
    judged = human_judgements(human, score_column=score_column)
    conv = conversation_sentiment(scored, cutoffs=cutoffs)
    pairs = judged.merge(conv[["conversation_id", choices[aggregate]]], on="conversation_id", how="inner")
    pairs = pairs.rename(columns={choices[aggregate]: "vader_compound"})
    if len(pairs) == 0:
        raise InsufficientDataError(f"no conversation has both a human {score_column!r} score and a scored "
                                    "user message: calibration needs both")
    pairs["vader_label"] = sentiment_labels(pairs["vader_compound"], cutoffs=cutoffs).to_numpy()
    pairs["gap"] = (pairs["vader_compound"] - (pairs["human_score"] - 3.0) / 2.0).abs()
    pairs["agree"] = pairs["human_label"].eq(pairs["vader_label"]).to_numpy(bool)
    pairs = pairs.astype({"vader_label": "str"})[["conversation_id", "human_score", "human_label",
                                                  "vader_compound", "vader_label", "gap", "agree"]]
    confusion = pd.crosstab(pd.Categorical(pairs["human_label"], categories=LABELS),
                            pd.Categorical(pairs["vader_label"], categories=LABELS), dropna=False)
    confusion.index = pd.Index(LABELS, name="human_label")
    confusion.columns = pd.Index(LABELS, name="vader_label")
    code = {label: i for i, label in enumerate(LABELS)}
    h = pairs["human_label"].map(code).to_numpy(int)
    v = pairs["vader_label"].map(code).to_numpy(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kappa = float(cohen_kappa_score(h, v, labels=[0, 1, 2]))
        weighted = float(cohen_kappa_score(h, v, labels=[0, 1, 2], weights="linear"))
    disagreements = pairs[~pairs["agree"]].sort_values(["gap", "conversation_id"], ascending=[False, True],
                                                       kind="stable").head(top).reset_index(drop=True)
    return SentimentCalibration(
        conversation_count=len(pairs), confusion=confusion.astype("int64"),
        kappa=kappa if np.isfinite(kappa) else math.nan,
        weighted_kappa=weighted if np.isfinite(weighted) else math.nan,
        agreement_rate=float(pairs["agree"].mean()), pairs=pairs.reset_index(drop=True),
        disagreements=disagreements, source=score_column)
