"""Altair chart builders for topics and knowledge gaps (no streamlit here).

The topic and gap bar charts carry a point selection on the field ``topic`` (:data:`TOPIC_PARAM`,
:data:`GAP_PARAM`), so a click on a bar gives ``{"selection": {"topic_pick": [{"topic": 3}]}}`` in
Streamlit's ``on_select`` event; :func:`selected_topic` reads it back.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from metrics.errors import ConfigError

__all__ = ["TOPIC_PARAM", "GAP_PARAM", "RATE_TITLES", "topic_bar_chart", "topic_trend_chart", "gap_rank_chart",
           "silhouette_chart", "selected_topic"]

TOPIC_PARAM = "topic_pick"
GAP_PARAM = "gap_pick"
RATE_TITLES = {"escalation_rate": "Escalation rate", "resolution_rate": "Resolution rate",
                "abandonment_rate": "Abandonment rate", "negative_rate": "Negative sentiment"}


def _require(frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(f"{what} needs the columns {missing!r}")


def _shown(frame: pd.DataFrame, top: int | None) -> pd.DataFrame:
    data = frame.copy()
    data["shown"] = [f"{int(t)} · {n}" for t, n in zip(data["topic"], data["name"] if "name" in data.columns
                                                        else data["label"])]
    return data.head(top) if top else data


def topic_bar_chart(table: pd.DataFrame, *, color: str = "escalation_rate", top: int | None = 30) -> alt.Chart:
    """Horizontal bars of messages per topic (largest first), coloured by ``color`` (a rate column of
    :func:`metrics.topics.topic_outcomes`). Clicking a bar selects its topic (:data:`TOPIC_PARAM`).

    Examples
    --------
    >>> t = pd.DataFrame({"topic": [1, 2], "label": ["a", "b"], "message_count": [5, 3],
    ...                   "escalation_rate": [0.1, 0.5]})
    >>> [p["name"] for p in topic_bar_chart(t).to_dict()["params"]]
    ['topic_pick']
    """
    _require(table, ("topic", "label", "message_count", color), "the topic chart")
    data = _shown(table.sort_values("message_count", ascending=False, kind="stable"), top)
    pick = alt.selection_point(name=TOPIC_PARAM, fields=["topic"], on="click", clear="dblclick")
    title = RATE_TITLES.get(color, color.replace("_", " "))
    return alt.Chart(data).mark_bar().encode(
        y=alt.Y("shown:N", sort=data["shown"].tolist(), title=None, axis=alt.Axis(labelLimit=320)),
        x=alt.X("message_count:Q", title="Messages"),
        color=alt.Color(f"{color}:Q", title=title, scale=alt.Scale(scheme="orangered", domain=[0, 1]),
                        legend=alt.Legend(format=".0%")),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.45)),
        tooltip=[alt.Tooltip("topic:Q", title="Topic"), alt.Tooltip("shown:N", title="Name"),
                 alt.Tooltip("message_count:Q", title="Messages", format=","),
                 alt.Tooltip(f"{color}:Q", title=title, format=".1%")],
    ).add_params(pick).properties(height=alt.Step(22))


def topic_trend_chart(trend: pd.DataFrame, *, topics=None) -> alt.Chart:
    """Messages per week (or day) of the given topics (all when None), one line per topic.

    Examples
    --------
    >>> tr = pd.DataFrame({"topic": [1, 1], "label": ["a", "a"], "message_count": [2, 4],
    ...                    "period": pd.to_datetime(["2026-08-03", "2026-08-10"], utc=True)})
    >>> topic_trend_chart(tr).to_dict()["mark"]["type"]
    'line'
    """
    _require(trend, ("topic", "label", "period", "message_count"), "the trend chart")
    data = trend if topics is None else trend[trend["topic"].isin(list(topics))]
    data = _shown(data, None)
    return alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("period:T", title="Week starting"),
        y=alt.Y("message_count:Q", title="Messages"),
        color=alt.Color("shown:N", title="Topic", legend=alt.Legend(labelLimit=260)),
        tooltip=[alt.Tooltip("shown:N", title="Topic"), alt.Tooltip("period:T", title="Week starting"),
                 alt.Tooltip("message_count:Q", title="Messages", format=",")],
    ).properties(height=280)


def gap_rank_chart(gaps: pd.DataFrame, *, top: int | None = 20) -> alt.Chart:
    """Gap topics by score (messages x impact), ranked; colour = escalation rate. Clicking selects a gap
    topic (:data:`GAP_PARAM`).

    Examples
    --------
    >>> g = pd.DataFrame({"rank": [1], "topic": [4], "label": ["x"], "score": [9.0], "message_count": [6],
    ...                   "impact": [1.5], "escalation_rate": [0.5], "negative_rate": [0.0]})
    >>> [p["name"] for p in gap_rank_chart(g).to_dict()["params"]]
    ['gap_pick']
    """
    _require(gaps, ("rank", "topic", "label", "score", "message_count", "impact", "escalation_rate"),
             "the gap chart")
    data = _shown(gaps.sort_values("rank", kind="stable"), top)
    pick = alt.selection_point(name=GAP_PARAM, fields=["topic"], on="click", clear="dblclick")
    return alt.Chart(data).mark_bar().encode(
        y=alt.Y("shown:N", sort=data["shown"].tolist(), title=None, axis=alt.Axis(labelLimit=320)),
        x=alt.X("score:Q", title="Score = messages × impact"),
        color=alt.Color("escalation_rate:Q", title="Escalation rate",
                        scale=alt.Scale(scheme="orangered", domain=[0, 1]), legend=alt.Legend(format=".0%")),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.45)),
        tooltip=[alt.Tooltip("rank:Q", title="Rank"), alt.Tooltip("shown:N", title="Gap topic"),
                 alt.Tooltip("message_count:Q", title="Messages", format=","),
                 alt.Tooltip("impact:Q", title="Impact", format=".2f"),
                 alt.Tooltip("escalation_rate:Q", title="Escalation rate", format=".1%")],
    ).add_params(pick).properties(height=alt.Step(22))


def silhouette_chart(k_scores: pd.DataFrame, *, chosen: int | None = None) -> alt.Chart:
    """Mean silhouette per number of topics tried, with the chosen k marked.

    Examples
    --------
    >>> s = pd.DataFrame({"k": [2, 3, 4], "silhouette": [0.1, 0.3, 0.32]})
    >>> silhouette_chart(s, chosen=3).to_dict()["layer"][0]["mark"]["type"]
    'line'
    """
    _require(k_scores, ("k", "silhouette"), "the silhouette chart")
    line = alt.Chart(k_scores).mark_line(point=True).encode(
        x=alt.X("k:Q", title="Number of topics"), y=alt.Y("silhouette:Q", title="Mean silhouette (cosine)"),
        tooltip=[alt.Tooltip("k:Q"), alt.Tooltip("silhouette:Q", format=".3f")])
    marks = pd.DataFrame({"k": [chosen] if chosen is not None else []})
    rule = alt.Chart(marks).mark_rule(strokeDash=[4, 3], color="#d62728").encode(x="k:Q")
    return alt.layer(line, rule).properties(height=220)


def selected_topic(event, param: str = TOPIC_PARAM) -> int | None:
    """The topic id clicked in a chart event (None when nothing is selected).

    Examples
    --------
    >>> selected_topic({"selection": {"topic_pick": [{"topic": 3}]}})
    3
    >>> selected_topic(None) is None
    True
    """
    try:
        points = event["selection"][param]
    except (KeyError, TypeError):
        return None
    if not isinstance(points, list) or not points or not isinstance(points[0], dict):
        return None
    try:
        return int(points[0].get("topic"))
    except (TypeError, ValueError):
        return None
