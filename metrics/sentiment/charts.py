"""Altair chart builders for the Sentiment page (no streamlit here).

Each builder takes the frame a :mod:`metrics.sentiment.measures` function
returns. Charts that drill down carry a point selection whose name is one of
the ``*_PARAM`` constants and whose fields are the columns the page reads back
from ``event["selection"][PARAM]`` (a list of ``{field: value}`` dicts).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from metrics.sentiment import LABELS
from metrics.sentiment.measures import QualityBands

__all__ = [
    "PERIOD_PARAM",
    "SENTIMENT_PARAM",
    "GROUP_PARAM",
    "DIRECTION_PARAM",
    "REACTION_PARAM",
    "STARS_PARAM",
    "CELL_PARAM",
    "LABEL_COLORS",
    "trend_chart",
    "distribution_chart",
    "breakdown_chart",
    "shift_chart",
    "reactions_chart",
    "rating_distribution_chart",
    "rating_trend_chart",
    "calibration_chart",
]

PERIOD_PARAM = "sentiment_period"      # fields: label
SENTIMENT_PARAM = "sentiment_label"    # fields: sentiment
GROUP_PARAM = "sentiment_group"        # fields: the breakdown column
DIRECTION_PARAM = "sentiment_shift"    # fields: direction
REACTION_PARAM = "sentiment_reaction"  # fields: bot_text
STARS_PARAM = "rating_stars"           # fields: stars
CELL_PARAM = "calibration_cell"        # fields: human_label, vader_label

LABEL_COLORS = {"negative": "#d62728", "neutral": "#9e9e9e", "positive": "#2ca02c"}
_LABEL_SCALE = alt.Scale(domain=list(LABELS), range=[LABEL_COLORS[k] for k in LABELS])
_DIVERGING = alt.Scale(scheme="redyellowgreen", domain=[-1, 1])
_STARS = alt.Scale(domain=[1, 5], zero=False, nice=False)


def _annotations(changes: pd.DataFrame | None) -> list[alt.Chart]:
    """Vertical rules (title, and ``detail`` when present, as tooltip) for a change log with columns
    date, title."""
    if changes is None or len(changes) == 0 or not {"date", "title"} <= set(changes.columns):
        return []
    notes = pd.DataFrame({"date": pd.to_datetime(changes["date"], utc=True, errors="coerce"),
                          "title": changes["title"].astype("str"),
                          "detail": (changes["detail"].astype("str").fillna("") if "detail" in changes.columns
                                     else "")}).dropna(subset=["date", "title"])
    if len(notes) == 0:
        return []
    base = alt.Chart(notes)
    rule = base.mark_rule(color="#7b3294", strokeDash=[4, 3]).encode(
        x="date:T", tooltip=[alt.Tooltip("date:T", title="change"), alt.Tooltip("title:N", title="what"),
                             alt.Tooltip("detail:N", title="why")])
    text = base.mark_text(align="left", dx=3, baseline="top", color="#7b3294", fontSize=10).encode(
        x="date:T", y=alt.value(2), text="title:N")
    return [rule, text]


def trend_chart(trend: pd.DataFrame, *, changes: pd.DataFrame | None = None,
                title: str = "Mean compound") -> alt.LayerChart:
    """Mean compound per period (points selectable by ``label``) and its rolling mean (dashed).

    ``changes`` (columns ``date``, ``title``, e.g. the improvement log) adds a
    vertical rule per entry with its title as tooltip.
    """
    pick = alt.selection_point(name=PERIOD_PARAM, fields=["label"], on="click")
    base = alt.Chart(trend).encode(x=alt.X("period:T", title=None))
    y = alt.Y("mean_compound:Q", title=title, scale=alt.Scale(zero=True, nice=True))
    tooltip = [alt.Tooltip("label:N", title="period"), alt.Tooltip("message_count:Q", title="messages"),
               alt.Tooltip("mean_compound:Q", format=".3f", title="mean"),
               alt.Tooltip("rolling_mean_compound:Q", format=".3f", title="rolling mean"),
               alt.Tooltip("negative_rate:Q", format=".1%", title="negative")]
    line = base.mark_line(color="#4c78a8", opacity=0.6).encode(y=y)
    points = base.mark_point(filled=True, size=60, color="#4c78a8").encode(
        y=y, tooltip=tooltip, opacity=alt.condition(pick, alt.value(1.0), alt.value(0.35))).add_params(pick)
    rolling = base.mark_line(color="#f58518", strokeDash=[6, 3], strokeWidth=2).encode(
        y=alt.Y("rolling_mean_compound:Q", scale=alt.Scale(zero=True, nice=True)))
    zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="#bbbbbb").encode(y="y:Q")
    return alt.layer(zero, line, rolling, points, *_annotations(changes)).properties(title="Sentiment over time", height=300)


def distribution_chart(distribution: pd.DataFrame, *, bands: QualityBands = QualityBands()) -> alt.LayerChart:
    """Share per label (bars selectable by ``sentiment``) with the guide's reference ticks:
    the problem line on the negative bar and the target line on the positive bar."""
    pick = alt.selection_point(name=SENTIMENT_PARAM, fields=["sentiment"], on="click")
    bars = alt.Chart(distribution).mark_bar().encode(
        x=alt.X("sentiment:N", sort=list(LABELS), title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("share:Q", axis=alt.Axis(format="%"), title="share of messages", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("sentiment:N", scale=_LABEL_SCALE, legend=None),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.4)),
        tooltip=["sentiment:N", alt.Tooltip("message_count:Q", title="messages"),
                 alt.Tooltip("share:Q", format=".1%")],
    ).add_params(pick)
    refs = pd.DataFrame({"sentiment": ["negative", "positive"],
                         "share": [bands.problem_negative_rate, bands.target_positive_rate],
                         "meaning": [f"serious problem at {bands.problem_negative_rate:.0%} negative",
                                     f"on target at {bands.target_positive_rate:.0%} positive"]})
    ticks = alt.Chart(refs).mark_tick(color="black", thickness=2, size=60).encode(
        x=alt.X("sentiment:N", sort=list(LABELS)), y="share:Q", tooltip=["meaning:N"])
    return alt.layer(bars, ticks).properties(title="Sentiment of user messages", height=260)


def breakdown_chart(breakdown: pd.DataFrame, *, by: str) -> alt.Chart:
    """Mean compound per group (horizontal bars, worst at the top), selectable by ``by``."""
    pick = alt.selection_point(name=GROUP_PARAM, fields=[by], on="click")
    return alt.Chart(breakdown).mark_bar().encode(
        y=alt.Y(f"{by}:N", sort=alt.EncodingSortField("mean_compound", order="ascending"), title=None,
                axis=alt.Axis(labelLimit=260)),
        x=alt.X("mean_compound:Q", title="mean compound", scale=alt.Scale(domain=[-1, 1])),
        color=alt.Color("mean_compound:Q", scale=_DIVERGING, legend=None),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.4)),
        tooltip=[f"{by}:N", alt.Tooltip("message_count:Q", title="messages"),
                 alt.Tooltip("conversation_count:Q", title="conversations"),
                 alt.Tooltip("mean_compound:Q", format=".3f"), alt.Tooltip("negative_rate:Q", format=".1%")],
    ).add_params(pick).properties(title=f"Sentiment by {by}", height=max(120, 22 * len(breakdown)))


def shift_chart(counts: pd.DataFrame) -> alt.Chart:
    """Conversations that worsened / stayed / improved (``SentimentShift.counts_frame``), selectable."""
    pick = alt.selection_point(name=DIRECTION_PARAM, fields=["direction"], on="click")
    colors = alt.Scale(domain=["worsened", "unchanged", "improved"], range=["#d62728", "#9e9e9e", "#2ca02c"])
    return alt.Chart(counts).mark_bar().encode(
        x=alt.X("direction:N", sort=["worsened", "unchanged", "improved"], title=None,
                axis=alt.Axis(labelAngle=0)),
        y=alt.Y("conversation_count:Q", title="conversations"),
        color=alt.Color("direction:N", scale=colors, legend=None),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.4)),
        tooltip=["direction:N", "conversation_count:Q", alt.Tooltip("share:Q", format=".1%")],
    ).add_params(pick).properties(title="Sentiment shift from the first to the last user message", height=240)


def reactions_chart(reactions: pd.DataFrame, *, max_label: int = 60) -> alt.Chart:
    """Negative replies per bot message (bars selectable by ``bot_text``)."""
    frame = reactions.assign(bot_label=reactions["bot_text"].astype("str").map(
        lambda t: t if len(t) <= max_label else t[:max_label - 1] + "…"))
    pick = alt.selection_point(name=REACTION_PARAM, fields=["bot_text"], on="click")
    return alt.Chart(frame).mark_bar(color="#d62728").encode(
        y=alt.Y("bot_label:N", sort=alt.EncodingSortField("negative_count", order="descending"), title=None,
                axis=alt.Axis(labelLimit=420, labelOverlap=False)),
        x=alt.X("negative_count:Q", title="negative user replies"),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.45)),
        tooltip=[alt.Tooltip("bot_text:N", title="bot message"), alt.Tooltip("reply_count:Q", title="replies"),
                 alt.Tooltip("negative_count:Q", title="negative"),
                 alt.Tooltip("negative_rate:Q", format=".1%", title="negative share")],
    ).add_params(pick).properties(title="Bot messages most often answered negatively", height=max(120, 26 * len(frame)))


def rating_distribution_chart(distribution: pd.DataFrame) -> alt.Chart:
    """Conversations per star 1..5 (``RatingSummary.distribution_frame``), selectable by ``stars``."""
    pick = alt.selection_point(name=STARS_PARAM, fields=["stars"], on="click")
    return alt.Chart(distribution).mark_bar().encode(
        x=alt.X("stars:O", title="stars", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("conversation_count:Q", title="conversations"),
        color=alt.Color("stars:Q", scale=alt.Scale(scheme="redyellowgreen", domain=[1, 5]), legend=None),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.4)),
        tooltip=["stars:O", "conversation_count:Q", alt.Tooltip("share:Q", format=".1%")],
    ).add_params(pick).properties(title="Ratings", height=240)


def rating_trend_chart(trend: pd.DataFrame, *, bands: QualityBands = QualityBands(),
                       changes: pd.DataFrame | None = None) -> alt.LayerChart:
    """Mean rating per period with the problem and target lines of the quality bands."""
    line = alt.Chart(trend).mark_line(point=True, color="#4c78a8").encode(
        x=alt.X("period:T", title=None),
        y=alt.Y("mean_rating:Q", title="mean rating", scale=_STARS),
        tooltip=[alt.Tooltip("label:N", title="period"), alt.Tooltip("rating_count:Q", title="ratings"),
                 alt.Tooltip("mean_rating:Q", format=".2f")])
    refs = pd.DataFrame({"y": [bands.problem_rating, bands.target_rating],
                         "meaning": [f"serious problem ({bands.problem_rating:g} stars)",
                                     f"on target ({bands.target_rating:g} stars)"]})
    rules = alt.Chart(refs).mark_rule(strokeDash=[5, 3]).encode(
        y=alt.Y("y:Q", scale=_STARS),
        color=alt.Color("meaning:N", scale=alt.Scale(domain=refs["meaning"].tolist(), range=["#d62728", "#2ca02c"]),
                                 legend=alt.Legend(title=None, orient="bottom")), tooltip=["meaning:N"])
    return alt.layer(rules, line, *_annotations(changes)).properties(title="Mean rating over time", height=260)


def calibration_chart(confusion: pd.DataFrame) -> alt.LayerChart:
    """Heatmap of human label (rows) x VADER label (columns); cells selectable."""
    long = confusion.stack().rename("conversation_count").reset_index()
    long.columns = ["human_label", "vader_label", "conversation_count"]
    pick = alt.selection_point(name=CELL_PARAM, fields=["human_label", "vader_label"], on="click")
    base = alt.Chart(long).encode(
        x=alt.X("vader_label:N", sort=list(LABELS), title="VADER", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("human_label:N", sort=list(LABELS), title="human"))
    cells = base.mark_rect().encode(
        color=alt.Color("conversation_count:Q", scale=alt.Scale(scheme="blues"), legend=None),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
        tooltip=["human_label:N", "vader_label:N", "conversation_count:Q"]).add_params(pick)
    text = base.mark_text(fontSize=14).encode(text="conversation_count:Q")
    return alt.layer(cells, text).properties(title="Sentiment against ratings", height=220)
