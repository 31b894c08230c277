"""Altair chart builders for the Engagement page (volume, heatmap, turns, hours, repeat users, spikes).

Each builder takes the typed frame of a metric function and returns an ``alt.Chart`` whose
bars / cells carry a named point selection (:data:`PARAMS`), so a page can pass
``on_select="rerun"`` and list the conversations behind a click with
:func:`selection_points` + :func:`rows_matching`. Nothing here computes a metric.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from metrics.engagement.volume import WEEKDAY_NAMES

__all__ = [
    "PARAMS",
    "selection_points",
    "rows_matching",
    "volume_trend_chart",
    "daily_spike_chart",
    "heatmap_chart",
    "count_bar_chart",
    "segment_chart",
]

#: Chart -> (selection parameter name, fields a click selects).
PARAMS = {
    "volume": ("volume_pick", ["period"]),
    "spikes": ("spike_pick", ["day"]),
    "heatmap": ("heatmap_pick", ["weekday_name", "hour"]),
    "turns": ("turns_pick", ["user_turns"]),
    "messages": ("messages_pick", ["message_count"]),
    "duration": ("duration_pick", ["bucket"]),
    "hours": ("hours_pick", ["segment"]),
    "repeat": ("repeat_pick", ["segment"]),
    "channel": ("channel_pick", ["channel"]),
}
SPIKE_COLOR = "#d62728"
BASE_COLOR = "#4c78a8"


def selection_points(event, param: str) -> list[dict]:
    """The points selected under ``param`` in a Streamlit chart event (``[]`` when none).

    Accepts the dict Streamlit returns from ``st.altair_chart(..., on_select="rerun")`` or
    the value AppTest stores in session state: ``{"selection": {param: [{...}, ...]}}``.

    Examples
    --------
    >>> selection_points({"selection": {"turns_pick": [{"user_turns": 2}]}}, "turns_pick")
    [{'user_turns': 2}]
    >>> selection_points(None, "turns_pick")
    []
    """
    if not event:
        return []
    try:
        selection = event["selection"]
        points = selection[param] if param in selection else []
    except (KeyError, TypeError):
        return []
    if isinstance(points, dict):  # interval-style selection: {field: [values]}
        return []
    return [dict(p) for p in (points or []) if isinstance(p, dict)]


def rows_matching(table: pd.DataFrame, points: list[dict]) -> pd.DataFrame:
    """Rows of ``table`` equal to any selected point on every field the point and table share.

    Numbers compare by value (vega may send 2.0 for 2). No points, or points sharing no field
    with the table: an empty frame.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"conversation_id": ["a", "b", "c"], "hour": [9, 10, 10],
    ...                   "weekday_name": ["Mon", "Mon", "Tue"]})
    >>> rows_matching(t, [{"weekday_name": "Mon", "hour": 10.0}])["conversation_id"].tolist()
    ['b']
    """
    keep = pd.Series(False, index=table.index)
    for point in points:
        fields = [f for f in point if f in table.columns and not f.startswith("vlPoint")]
        if not fields:
            continue
        hit = pd.Series(True, index=table.index)
        for f in fields:
            value = point[f]
            column = table[f]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                hit &= pd.to_numeric(column, errors="coerce").eq(float(value)).fillna(False)
            else:
                hit &= column.astype("str").eq(str(value)).fillna(False)
        keep |= hit
    return table[keep.to_numpy(bool)]


def _pick(name: str):
    param, fields = PARAMS[name]
    return alt.selection_point(name=param, fields=fields)


def volume_trend_chart(per_period: pd.DataFrame, *, spike_periods: list[str] | tuple = ()) -> alt.Chart:
    """Bars of conversations per period (from ``conversations_per_period``); periods holding a
    spike day are red. Selection ``volume_pick`` on ``period``.

    Examples
    --------
    >>> import pandas as pd
    >>> c = volume_trend_chart(pd.DataFrame({"period": ["2026-W32"], "period_start": [pd.Timestamp("2026-08-03")],
    ...                                      "conversation_count": [3]}))
    >>> c.to_dict()["params"][0]["name"]
    'volume_pick'
    """
    data = per_period.copy()
    data["spike"] = data["period"].isin(list(spike_periods)).map({True: "contains a spike day", False: "normal"})
    pick = _pick("volume")
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("period:O", sort=None, title=None),
        y=alt.Y("conversation_count:Q", title="Conversations"),
        color=alt.Color("spike:N", scale=alt.Scale(domain=["normal", "contains a spike day"],
                                                   range=[BASE_COLOR, SPIKE_COLOR]), title=None),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
        tooltip=["period", "conversation_count", "spike"],
    ).add_params(pick).properties(title="Conversations per period", height=260)


def daily_spike_chart(spikes: pd.DataFrame) -> alt.LayerChart:
    """Daily volume (line), the spike threshold (dashed) and spike days (red points) from
    ``volume_spikes``. Selection ``spike_pick`` on ``day`` (click a point).

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"day": ["2026-08-03"], "day_start": [pd.Timestamp("2026-08-03")], "conversation_count": [4],
    ...                   "threshold": [float("nan")], "is_spike": [False]})
    >>> len(daily_spike_chart(s).to_dict()["layer"])
    3
    """
    data = spikes[["day", "day_start", "conversation_count", "threshold", "is_spike"]].copy()
    data["marker"] = data["is_spike"].map({True: "spike", False: "normal"})
    pick = _pick("spikes")
    base = alt.Chart(data).encode(x=alt.X("day_start:T", title=None))
    line = base.mark_line(color=BASE_COLOR).encode(y=alt.Y("conversation_count:Q", title="Conversations per day"))
    threshold = base.mark_line(strokeDash=[4, 4], color="#888").encode(y="threshold:Q")
    points = base.mark_point(filled=True).encode(
        y="conversation_count:Q",
        color=alt.Color("marker:N", scale=alt.Scale(domain=["normal", "spike"], range=[BASE_COLOR, SPIKE_COLOR]),
                        title=None),
        size=alt.condition("datum.is_spike", alt.value(120), alt.value(20)),
        tooltip=["day", "conversation_count", alt.Tooltip("threshold:Q", format=".1f"), "marker"],
    ).add_params(pick)
    return alt.layer(line, threshold, points).properties(title="Conversations per day, with spike days", height=240)


def heatmap_chart(heat: pd.DataFrame) -> alt.Chart:
    """Hour x weekday cells coloured by conversations (from ``hour_weekday_heatmap``).
    Selection ``heatmap_pick`` on ``weekday_name`` and ``hour``.

    Examples
    --------
    >>> import pandas as pd
    >>> h = pd.DataFrame({"weekday": [0], "weekday_name": ["Mon"], "hour": [9], "conversation_count": [2],
    ...                   "share_rate": [1.0]})
    >>> heatmap_chart(h).to_dict()["mark"]["type"]
    'rect'
    """
    pick = _pick("heatmap")
    return alt.Chart(heat).mark_rect().encode(
        x=alt.X("hour:O", title="Hour of day"),
        y=alt.Y("weekday_name:O", sort=list(WEEKDAY_NAMES), title=None),
        color=alt.Color("conversation_count:Q", title="Conversations", scale=alt.Scale(scheme="blues")),
        stroke=alt.condition(pick, alt.value("black"), alt.value(None)),
        tooltip=["weekday_name", "hour", "conversation_count", alt.Tooltip("share_rate:Q", format=".1%")],
    ).add_params(pick).properties(title="Conversations by weekday and hour (UTC)", height=220)


def count_bar_chart(frame: pd.DataFrame, *, x: str, chart: str, x_title: str, sort=None) -> alt.Chart:
    """Bars of ``conversation_count`` per ``x`` (turn / message / duration distributions, channels).
    ``chart`` names the selection in :data:`PARAMS` (``'turns'``, ``'messages'``, ``'duration'``,
    ``'channel'``).

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"user_turns": [0, 1], "conversation_count": [1, 3], "share_rate": [0.25, 0.75]})
    >>> count_bar_chart(d, x="user_turns", chart="turns", x_title="User turns").to_dict()["params"][0]["name"]
    'turns_pick'
    """
    pick = _pick(chart)
    return alt.Chart(frame).mark_bar(color=BASE_COLOR).encode(
        x=alt.X(f"{x}:O", title=x_title, sort=sort),
        y=alt.Y("conversation_count:Q", title="Conversations"),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
        tooltip=[x, "conversation_count", alt.Tooltip("share_rate:Q", format=".1%")],
    ).add_params(pick).properties(title=f"Conversations by {x_title[:1].lower()}{x_title[1:]}", height=240)


def segment_chart(frame: pd.DataFrame, *, value: str, chart: str, title: str) -> alt.Chart:
    """Bars of ``value`` per ``segment`` (business vs after hours, new vs repeat users).
    ``chart`` is ``'hours'`` or ``'repeat'``.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"segment": ["new user", "repeat user"], "conversation_count": [3, 1],
    ...                   "share_rate": [0.75, 0.25]})
    >>> segment_chart(s, value="conversation_count", chart="repeat", title="Conversations").to_dict()["mark"]["type"]
    'bar'
    """
    pick = _pick(chart)
    tooltip = [c for c in frame.columns if c != "segment"]
    return alt.Chart(frame).mark_bar().encode(
        y=alt.Y("segment:N", title=None),
        x=alt.X(f"{value}:Q", title=title),
        color=alt.Color("segment:N", legend=None),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
        tooltip=["segment"] + tooltip,
    ).add_params(pick).properties(title=f"{title} by segment", height=120)
