"""Altair chart builders for the Outcomes & escalations page.

Every builder takes the typed frame of a metric function (``outcome_mix``,
``vendor_definitions``, ``escalation_reasons``, ``escalation_turns``, ``escalation_by``,
``last_bot_messages``, ``abandonment_turns``, ``resolution_by_tag``, ``handoff_wait_times``)
and returns a chart whose marks carry the named point selection of :data:`PARAMS`; use
:func:`metrics.engagement.charts.selection_points` and
:func:`metrics.engagement.charts.rows_matching` to list the conversations behind a click.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from metrics.engagement.charts import BASE_COLOR, SPIKE_COLOR
from metrics.outcomes import OUTCOMES

__all__ = [
    "PARAMS",
    "OUTCOME_COLORS",
    "WAIT_BUCKETS",
    "outcome_mix_chart",
    "vendor_chart",
    "vendor_long",
    "reasons_chart",
    "escalation_turns_chart",
    "escalation_by_chart",
    "last_bot_chart",
    "abandonment_turns_chart",
    "resolution_tag_chart",
    "wait_buckets",
    "wait_chart",
]

PARAMS = {
    "mix": ("mix_pick", ["period", "outcome"]),
    "vendor": ("vendor_pick", ["style", "metric"]),
    "reasons": ("reason_pick", ["reason"]),
    "turns": ("turn_pick", ["turn"]),
    "by": ("by_pick", ["group"]),
    "lastbot": ("lastbot_pick", ["text"]),
    "abandon_turns": ("abandon_turn_pick", ["turn"]),
    "tag": ("tag_pick", ["tag"]),
    "wait": ("wait_pick", ["wait_bucket"]),
}
OUTCOME_COLORS = {"resolved": "#2ca02c", "escalated": "#ff7f0e", "abandoned": SPIKE_COLOR,
                  "unresolved": "#7f7f7f", "in_progress": "#9ecae9"}
#: (label, lower seconds inclusive, upper seconds exclusive)
WAIT_BUCKETS = (("< 1 min", 0, 60), ("1-2 min", 60, 120), ("2-5 min", 120, 300), ("5-10 min", 300, 600),
                ("10-30 min", 600, 1800), (">= 30 min", 1800, np.inf))


def _pick(name: str):
    param, fields = PARAMS[name]
    return alt.selection_point(name=param, fields=fields)


def outcome_mix_chart(mix: pd.DataFrame) -> alt.Chart:
    """Stacked share of outcomes per period (from ``outcome_mix``). Selection ``mix_pick`` on
    ``period`` and ``outcome``.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"period": ["2026-W32"], "period_start": [pd.Timestamp("2026-08-03")], "outcome": ["resolved"],
    ...                   "conversation_count": [3], "share_rate": [1.0]})
    >>> outcome_mix_chart(m).to_dict()["params"][0]["name"]
    'mix_pick'
    """
    pick = _pick("mix")
    return alt.Chart(mix).mark_bar().encode(
        x=alt.X("period:O", sort=None, title=None),
        y=alt.Y("conversation_count:Q", stack="normalize", title="Share of conversations", axis=alt.Axis(format="%")),
        color=alt.Color("outcome:N", sort=list(OUTCOMES), scale=alt.Scale(domain=list(OUTCOME_COLORS),
                                                                          range=list(OUTCOME_COLORS.values()))),
        order=alt.Order("outcome_order:Q"),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
        tooltip=["period", "outcome", "conversation_count", alt.Tooltip("share_rate:Q", format=".1%")],
    ).transform_calculate(
        outcome_order="indexof(" + str(list(OUTCOMES)) + ", datum.outcome)"
    ).add_params(pick).properties(title="Outcome mix over time", height=280)


def vendor_long(vendor: pd.DataFrame) -> pd.DataFrame:
    """``vendor_definitions`` in long form: ``style``, ``metric`` (resolution | escalation |
    abandonment | containment), ``rate``, ``count``, ``counted_count``, ``definition``.

    Examples
    --------
    >>> import pandas as pd
    >>> v = pd.DataFrame({"style": ["Rasa style"], "resolution_rate": [0.5], "escalation_rate": [0.1],
    ...     "abandonment_rate": [0.2], "containment_rate": [0.9], "counted_count": [10], "resolved_count": [5],
    ...     "escalated_count": [1], "abandoned_count": [2], "contained_count": [9], "definition": ["..."]})
    >>> vendor_long(v)["metric"].tolist()
    ['resolution', 'escalation', 'abandonment', 'containment']
    """
    rows = []
    pairs = (("resolution", "resolved"), ("escalation", "escalated"), ("abandonment", "abandoned"),
             ("containment", "contained"))
    for _, r in vendor.iterrows():
        for metric, flag in pairs:
            rows.append({"style": r["style"], "metric": metric, "rate": r[f"{metric}_rate"],
                         "count": int(r[f"{flag}_count"]), "counted_count": int(r["counted_count"]),
                         "definition": r["definition"]})
    out = pd.DataFrame(rows, columns=["style", "metric", "rate", "count", "counted_count", "definition"])
    return out.astype({"style": "str", "metric": "str", "definition": "str", "rate": "float64"})


def vendor_chart(vendor: pd.DataFrame) -> alt.LayerChart:
    """Style x metric cells with the rate written in, from ``vendor_definitions``; the tooltip
    carries the style's definition. Selection ``vendor_pick`` on ``style`` and ``metric``.

    Examples
    --------
    >>> import pandas as pd
    >>> v = pd.DataFrame({"style": ["Rasa style"], "resolution_rate": [0.5], "escalation_rate": [0.1],
    ...     "abandonment_rate": [0.2], "containment_rate": [0.9], "counted_count": [10], "resolved_count": [5],
    ...     "escalated_count": [1], "abandoned_count": [2], "contained_count": [9], "definition": ["..."]})
    >>> len(vendor_chart(v).to_dict()["layer"])
    3
    """
    data = vendor_long(vendor)
    pick = _pick("vendor")
    order = ["resolution", "escalation", "abandonment", "containment"]
    base = alt.Chart(data).encode(x=alt.X("metric:N", sort=order, title=None,
                                          axis=alt.Axis(labelAngle=0, orient="top")),
                                  y=alt.Y("style:N", sort=list(dict.fromkeys(vendor["style"])), title=None,
                                          axis=alt.Axis(labelLimit=220)))
    # colour follows meaning: green is good, red is bad; escalation and abandonment are worse when higher
    worse_higher = data["metric"].isin(["escalation", "abandonment"]).to_numpy(bool)
    rate = data["rate"].to_numpy(float)
    data = data.assign(goodness=np.where(worse_higher, 1.0 - rate, rate),
                       label=[f"{r:.0%}" if np.isfinite(r) else "no data" for r in rate])
    base = base.properties(data=data)
    cells = base.mark_rect().encode(
        color=alt.condition("isValid(datum.goodness) && isFinite(datum.goodness)",
                            alt.Color("goodness:Q", scale=alt.Scale(domain=[0, 1], scheme="redyellowgreen"),
                                      legend=alt.Legend(title="Green good, red bad", format=".0%", gradientLength=150,
                                                        labelExpr="datum.value == 0 ? 'bad' : "
                                                                  "datum.value == 1 ? 'good' : ''")),
                            alt.value("#eeeeee")),
        stroke=alt.condition(pick, alt.value("black"), alt.value(None)),
        tooltip=["style", "metric", alt.Tooltip("label:N", title="rate"), "count", "counted_count", "definition"],
    ).add_params(pick)
    empty = base.mark_rect(color="#eeeeee")  # under every cell: a rate without data stays a grey cell
    text = base.mark_text().encode(text=alt.Text("label:N"))
    return alt.layer(empty, cells, text).properties(title="Same data, five definitions", height=260)


def reasons_chart(reasons: pd.DataFrame) -> alt.Chart:
    """Horizontal bars of escalations per reason (``escalation_reasons``); ``reason_pick``.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"reason": ["low confidence"], "reason_source": ["derived"], "conversation_count": [2],
    ...                   "share_rate": [1.0]})
    >>> reasons_chart(r).to_dict()["params"][0]["name"]
    'reason_pick'
    """
    pick = _pick("reasons")
    return alt.Chart(reasons).mark_bar(color="#ff7f0e").encode(
        y=alt.Y("reason:N", sort="-x", title=None, axis=alt.Axis(labelLimit=260)),
        x=alt.X("conversation_count:Q", title="Escalated conversations"),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
        tooltip=["reason", "reason_source", "conversation_count", alt.Tooltip("share_rate:Q", format=".1%")],
    ).add_params(pick).properties(title="Escalation reasons", height=max(160, 40 * len(reasons)))


def escalation_turns_chart(turns: pd.DataFrame) -> alt.Chart:
    """Histogram of escalation turns (``escalation_turns``), turns <= 3 in red; ``turn_pick``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"turn": [1, 4], "conversation_count": [2, 1], "share_rate": [0.67, 0.33],
    ...                   "early": [True, False]})
    >>> escalation_turns_chart(t).to_dict()["mark"]["type"]
    'bar'
    """
    data = turns.copy()
    data["when"] = data["early"].map({True: "first 3 user turns", False: "later"})
    pick = _pick("turns")
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("turn:O", title="User turns before the hand-off"),
        y=alt.Y("conversation_count:Q", title="Escalations"),
        color=alt.Color("when:N", scale=alt.Scale(domain=["first 3 user turns", "later"],
                                                  range=[SPIKE_COLOR, BASE_COLOR]), title=None),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
        tooltip=["turn", "conversation_count", alt.Tooltip("share_rate:Q", format=".1%")],
    ).add_params(pick).properties(title="User turn at which conversations escalate", height=240)


def escalation_by_chart(frame: pd.DataFrame, *, by: str) -> alt.Chart:
    """Escalation rate per group (``escalation_by``; the group column is copied to ``group``);
    ``by_pick`` on ``group``.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"topic": ["complaint"], "conversation_count": [2], "escalated_count": [1],
    ...                   "escalation_rate": [0.5]})
    >>> escalation_by_chart(f, by="topic").to_dict()["params"][0]["name"]
    'by_pick'
    """
    data = frame.copy()
    data["group"] = data["weekday_name"] if by == "weekday" else data[by]
    pick = _pick("by")
    sort = None if by in ("hour", "weekday") else "-y"
    return alt.Chart(data).mark_bar(color="#ff7f0e").encode(
        x=alt.X("group:O", sort=sort, title=by),
        y=alt.Y("escalation_rate:Q", title="Escalation rate", axis=alt.Axis(format="%")),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
        tooltip=["group", "conversation_count", "escalated_count", alt.Tooltip("escalation_rate:Q", format=".1%")],
    ).add_params(pick).properties(title=f"Escalation rate by {by}", height=240)


def last_bot_chart(last: pd.DataFrame) -> alt.Chart:
    """Top bot messages read last before abandonment (``last_bot_messages``); ``lastbot_pick``.

    Examples
    --------
    >>> import pandas as pd
    >>> l = pd.DataFrame({"text": ["Your email?"], "abandoned_count": [3], "share_rate": [1.0], "ending_count": [4],
    ...                   "abandonment_rate": [0.75]})
    >>> last_bot_chart(l).to_dict()["params"][0]["name"]
    'lastbot_pick'
    """
    data = last.copy()
    data["label"] = data["text"].map(lambda t: t if len(t) <= 60 else t[:57] + "...")
    pick = _pick("lastbot")
    return alt.Chart(data).mark_bar(color=SPIKE_COLOR).encode(
        y=alt.Y("label:N", sort="-x", title=None, axis=alt.Axis(labelLimit=360)),
        x=alt.X("abandoned_count:Q", title="Abandoned conversations"),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
        tooltip=["text", "abandoned_count", alt.Tooltip("share_rate:Q", format=".1%"), "ending_count",
                 alt.Tooltip("abandonment_rate:Q", format=".1%")],
    ).add_params(pick).properties(title="Last bot message before abandonment", height=max(160, 30 * len(data)))


def abandonment_turns_chart(turns: pd.DataFrame) -> alt.Chart:
    """Abandoned conversations per user turn (``abandonment_turns``); ``abandon_turn_pick``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"turn": [0, 1], "abandoned_count": [1, 2], "share_rate": [0.33, 0.67]})
    >>> abandonment_turns_chart(t).to_dict()["params"][0]["name"]
    'abandon_turn_pick'
    """
    pick = _pick("abandon_turns")
    return alt.Chart(turns).mark_bar(color=SPIKE_COLOR).encode(
        x=alt.X("turn:O", title="User turns before leaving"),
        y=alt.Y("abandoned_count:Q", title="Abandoned conversations"),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
        tooltip=["turn", "abandoned_count", alt.Tooltip("share_rate:Q", format=".1%")],
    ).add_params(pick).properties(title="User turn at which conversations are abandoned", height=220)


def resolution_tag_chart(frame: pd.DataFrame, *, by: str) -> alt.LayerChart:
    """Resolution rate per topic / intent with its Wilson interval (``resolution_by_tag``); small
    groups are hollow. The tag column is copied to ``tag``; ``tag_pick`` on ``tag``.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"topic": ["complaint"], "conversation_count": [2], "resolved_count": [1],
    ...     "resolution_rate": [0.5], "ci_low": [0.1], "ci_high": [0.9], "small_group": [True]})
    >>> len(resolution_tag_chart(f, by="topic").to_dict()["layer"])
    2
    """
    data = frame.copy()
    data["tag"] = data[by]
    data["group_size"] = data["small_group"].map({True: "small group", False: "enough data"})
    pick = _pick("tag")
    base = alt.Chart(data).encode(y=alt.Y("tag:N", sort=alt.EncodingSortField("resolution_rate", order="descending"),
                                          title=by, axis=alt.Axis(labelLimit=220)))
    bars = base.mark_rule(color="#888").encode(x=alt.X("ci_low:Q", title="Resolution rate (95% Wilson interval)",
                                                       scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
                                               x2="ci_high:Q")
    points = base.mark_point(size=90).encode(
        x="resolution_rate:Q",
        shape=alt.Shape("group_size:N", title=None),
        fill=alt.condition("datum.small_group", alt.value("white"), alt.value("#2ca02c")),
        color=alt.value("#2ca02c"),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
        tooltip=["tag", "conversation_count", "resolved_count", alt.Tooltip("resolution_rate:Q", format=".1%"),
                 alt.Tooltip("ci_low:Q", format=".1%"), alt.Tooltip("ci_high:Q", format=".1%"), "group_size"],
    ).add_params(pick)
    return alt.layer(bars, points).properties(title=f"Resolution rate by {by}", height=max(200, 34 * len(data) + 60))


def wait_buckets(times: pd.DataFrame) -> pd.DataFrame:
    """``handoff_wait_times`` plus ``wait_bucket`` (:data:`WAIT_BUCKETS`; ``'no agent reply'``
    when unanswered), for the histogram and its drill-down.

    Examples
    --------
    >>> import pandas as pd
    >>> times = pd.DataFrame({"conversation_id": ["a", "b"], "wait_seconds": [90.0, float("nan")]})
    >>> wait_buckets(times)["wait_bucket"].tolist()
    ['1-2 min', 'no agent reply']
    """
    out = times.copy()
    labels = pd.Series("no agent reply", index=out.index, dtype="object")
    for label, low, high in WAIT_BUCKETS:
        labels[(out["wait_seconds"] >= low) & (out["wait_seconds"] < high)] = label
    out["wait_bucket"] = labels.astype("str")
    return out


def wait_chart(times: pd.DataFrame) -> alt.Chart:
    """Hand-offs per wait bucket (from :func:`wait_buckets`); ``wait_pick`` on ``wait_bucket``.

    Examples
    --------
    >>> import pandas as pd
    >>> times = wait_buckets(pd.DataFrame({"conversation_id": ["a"], "wait_seconds": [30.0]}))
    >>> wait_chart(times).to_dict()["mark"]["type"]
    'bar'
    """
    order = [w[0] for w in WAIT_BUCKETS] + ["no agent reply"]
    counts = times["wait_bucket"].value_counts().reindex(order, fill_value=0)
    data = pd.DataFrame({"wait_bucket": pd.Series(order, dtype="str"), "handoff_count": counts.to_numpy()})
    pick = _pick("wait")
    return alt.Chart(data).mark_bar(color="#ff7f0e").encode(
        x=alt.X("wait_bucket:O", sort=order, title="Wait from hand-off to first agent message"),
        y=alt.Y("handoff_count:Q", title="Hand-offs"),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
        tooltip=["wait_bucket", "handoff_count"],
    ).add_params(pick).properties(title="Wait for a human agent", height=220)
