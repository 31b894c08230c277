"""Altair charts of the improvement loop: change-log annotations any trend chart can layer on,
a KPI trend with its goal band, and the before/after windows of a change.

Use :func:`annotation_layer` on any time chart whose x field is a UTC time::

    alt.layer(my_trend, *annotation_layer(changelog.annotations(db, dataset_id)))

or :func:`with_annotations` (``alt.layer`` of the chart and the annotations).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from metrics.kpis import CATALOGUE

__all__ = ["ANNOTATION_COLOR", "annotation_layer",
    "period_annotation_layer", "with_annotations", "kpi_trend_chart"]

ANNOTATION_COLOR = "#7b3294"


def annotation_layer(frame: pd.DataFrame | None, *, x: str = "date", label: bool = True) -> list[alt.Chart]:
    """Vertical rules (dashed) at each change date, with ``title`` and ``detail`` as tooltip, and
    the title written beside the rule when ``label``. ``frame`` is
    :func:`metrics.improve.changelog.annotations_frame` (columns ``date``, ``title``, optional
    ``detail``). The x field is named ``x`` (default ``date``) so it shares the trend's axis.
    Returns a list of layers (empty when there is no entry) to splat into ``alt.layer``.

    Examples
    --------
    >>> f = pd.DataFrame({"date": pd.to_datetime(["2026-09-21"], utc=True), "title": ["Deploy nlu-v2"],
    ...                   "detail": ["New training data"]})
    >>> [layer.mark.type if hasattr(layer.mark, "type") else layer.mark for layer in annotation_layer(f)]
    ['rule', 'text']
    """
    if frame is None or len(frame) == 0 or not {"date", "title"} <= set(frame.columns):
        return []
    notes = pd.DataFrame({x: pd.to_datetime(frame["date"], utc=True, errors="coerce"),
                          "title": frame["title"].astype("str"),
                          "detail": (frame["detail"] if "detail" in frame.columns
                                     else pd.Series([""] * len(frame), index=frame.index)).astype("str")})
    notes = notes.dropna(subset=[x])
    if len(notes) == 0:
        return []
    base = alt.Chart(notes)
    rule = base.mark_rule(color=ANNOTATION_COLOR, strokeDash=[4, 3], strokeWidth=1.5).encode(
        x=alt.X(f"{x}:T"),
        tooltip=[alt.Tooltip(f"{x}:T", title="change", format="%Y-%m-%d"), alt.Tooltip("title:N", title="what"),
                 alt.Tooltip("detail:N", title="detail")])
    layers = [rule]
    if label:
        layers.append(base.mark_text(align="left", dx=4, dy=4, baseline="top", color=ANNOTATION_COLOR,
                                     fontSize=10).encode(x=alt.X(f"{x}:T"), y=alt.value(0), text="title:N"))
    return layers


def period_annotation_layer(frame: pd.DataFrame | None, *, period: str, field: str = "period") -> list[alt.Chart]:
    """Change-log rules for a trend whose x axis is a *period label* ('YYYY-MM-DD', 'YYYY-Www', 'YYYY-MM',
    as :func:`metrics.engagement.volume.conversations_per_period` makes them): each change is drawn on the period
    holding its date, with the title and detail as tooltip. Empty frame: no layer.

    Examples
    --------
    >>> f = pd.DataFrame({"date": pd.to_datetime(["2026-09-30"], utc=True), "title": ["Fix"], "detail": [""]})
    >>> period_annotation_layer(f, period="week")[0].data["period"].tolist()
    ['2026-W40']
    """
    from metrics.engagement.volume import period_labels

    if frame is None or len(frame) == 0 or not {"date", "title"} <= set(frame.columns):
        return []
    dates = pd.to_datetime(frame["date"], utc=True, errors="coerce")
    keep = dates.notna()
    if not keep.any():
        return []
    notes = pd.DataFrame({
        field: period_labels(dates[keep].dt.strftime("%Y-%m-%d").tolist(), period=period),
        "title": frame.loc[keep, "title"].astype("str").to_numpy(),
        "detail": (frame.loc[keep, "detail"] if "detail" in frame.columns
                   else pd.Series([""] * int(keep.sum()))).astype("str").to_numpy(),
    })
    rule = alt.Chart(notes).mark_rule(color=ANNOTATION_COLOR, strokeDash=[4, 3], strokeWidth=1.5).encode(
        x=alt.X(f"{field}:O", sort=None),
        tooltip=[alt.Tooltip(f"{field}:N", title="period"), alt.Tooltip("title:N", title="change"),
                 alt.Tooltip("detail:N", title="detail")])
    return [rule]


def with_annotations(chart, frame: pd.DataFrame | None, *, x: str = "date"):
    """``alt.layer(chart, *annotation_layer(frame))`` (the chart unchanged when there is nothing to add)."""
    layers = annotation_layer(frame, x=x)
    return alt.layer(chart, *layers) if layers else chart


def kpi_trend_chart(series: pd.DataFrame, *, annotations: pd.DataFrame | None = None,
                    band: tuple[float, float] | None = None, windows: dict | None = None,
                    height: int = 260) -> alt.LayerChart:
    """A KPI per period (:func:`metrics.kpis.kpi_series`), complete periods solid, with optional
    goal band lines (``(red, green)``), before/after ``windows`` (``{"before": (start, end),
    "after": (start, end)}`` shaded) and change-log annotations.

    Examples
    --------
    >>> s = pd.DataFrame({"metric": ["escalation_rate"] * 2, "period": ["2026-W32", "2026-W33"],
    ...     "period_start": pd.to_datetime(["2026-08-03", "2026-08-10"], utc=True), "complete": [True, True],
    ...     "value": [0.2, 0.25], "n": [100, 90]})
    >>> spec = kpi_trend_chart(s, band=(0.3, 0.2)).to_dict()
    >>> len(spec["layer"])
    3
    """
    metric = str(series["metric"].iloc[0]) if len(series) else ""
    kpi = CATALOGUE.get(metric)
    fmt = ".1%" if kpi is not None and kpi.kind == "rate" else ",.2f"
    data = pd.DataFrame({"date": pd.to_datetime(series["period_start"], utc=True), "period": series["period"],
                         "value": series["value"].astype("float64"), "n": series["n"],
                         "complete": series["complete"].map({True: "complete", False: "partial"})})
    y = alt.Y("value:Q", title=kpi.label if kpi else metric, scale=alt.Scale(zero=False, nice=True),
              axis=alt.Axis(format=".0%" if kpi is not None and kpi.kind == "rate" else ",.2~f"))
    line = alt.Chart(data).mark_line(color="#4c78a8").encode(x=alt.X("date:T", title=None), y=y)
    points = alt.Chart(data).mark_point(filled=True, size=50).encode(
        x="date:T", y="value:Q",
        color=alt.Color("complete:N", scale=alt.Scale(domain=["complete", "partial"], range=["#4c78a8", "#bbbbbb"]),
                        legend=alt.Legend(title=None, orient="bottom")),
        tooltip=[alt.Tooltip("period:N", title="period"), alt.Tooltip("value:Q", title="value", format=fmt),
                 alt.Tooltip("n:Q", title="units"), alt.Tooltip("complete:N", title="period is")])
    layers = []
    if windows:
        rows = [{"start": pd.Timestamp(a), "end": pd.Timestamp(b), "window": name}
                for name, (a, b) in windows.items()]
        layers.append(alt.Chart(pd.DataFrame(rows)).mark_rect(opacity=0.12).encode(
            x="start:T", x2="end:T",
            color=alt.Color("window:N", scale=alt.Scale(domain=["before", "after"], range=["#999999", "#2ca02c"]),
                            legend=alt.Legend(title="window", orient="bottom")),
            tooltip=["window:N", alt.Tooltip("start:T", format="%Y-%m-%d"), alt.Tooltip("end:T", format="%Y-%m-%d")]))
    layers += [line, points]
    if band is not None and kpi is not None:
        red, green = band
        refs = pd.DataFrame({"y": [red, green], "line": ["red line", "green line"]})
        layers.append(alt.Chart(refs).mark_rule(strokeDash=[2, 2]).encode(
            y="y:Q", color=alt.Color("line:N", scale=alt.Scale(domain=["red line", "green line"],
                                                                range=["#d62728", "#2ca02c"]), legend=None),
            tooltip=[alt.Tooltip("line:N"), alt.Tooltip("y:Q", format=fmt)]))
    layers += annotation_layer(annotations)
    return alt.layer(*layers).resolve_scale(color="independent").properties(
        height=height, title=f"{kpi.label if kpi else metric} over time")
