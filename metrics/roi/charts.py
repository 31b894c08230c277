"""Altair charts for the ROI page: the tornado chart and the conversion x volume heatmap.

Builders only: they take the frames of :func:`metrics.roi.tornado` and
:func:`metrics.roi.two_way_table` and return ``alt.Chart`` objects; no computation of their own.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from metrics.errors import ConfigError
from metrics.roi import OUTPUTS

__all__ = ["tornado_chart", "two_way_heatmap", "axis_format", "fast_spec"]

_FORMATS = {"money": "$,.2f", "money/month": "$,.0f", "multiple": ",.2f", "fraction": ".1%", "count": ",.0f",
            "months": ",.1f"}
_SIGNED = {"net_roi", "automation_savings"}
_LOWER_IS_BETTER = {"cost_per_outcome", "cost_per_conversation", "total_monthly_cost",
                    "break_even_conversion_rate", "break_even_leads", "break_even_conversations", "payback_months"}


def axis_format(target: str) -> str:
    """d3 format string for an output of :data:`metrics.roi.OUTPUTS` (``,.2f`` when unknown)."""
    unit = OUTPUTS.get(target, ("", "", ""))[1]
    return _FORMATS.get(unit, ",.2f")


def tornado_chart(frame: pd.DataFrame, *, target: str, top: int = 10, swing: float | None = None) -> alt.Chart:
    """Horizontal bars from the base value to the result at -swing and at +swing, per input.

    Uses the rows of ``frame`` (a :func:`metrics.roi.tornado` result) for ``target``, drops
    inputs whose span is 0 or undefined, keeps the ``top`` largest spans, largest on top.
    An empty selection gives a chart with a single "no input moves this output" text mark.
    """
    if top < 1:
        raise ConfigError(f"top must be >= 1, got {top!r}")
    rows = frame[(frame["target"] == target) & np.isfinite(frame["span"].astype(float))
                 & (frame["span"].astype(float) > 0)].head(top)
    title = OUTPUTS.get(target, (target,))[0]
    if rows.empty:
        return alt.Chart(pd.DataFrame({"text": [f"No input moves {title}"]})).mark_text().encode(
            text="text:N").properties(title=alt.TitleParams(f"{title}: sensitivity", anchor="start"))
    pct = f"{swing:.0%}" if swing is not None else "swing"
    long = pd.concat([
        pd.DataFrame({"label": rows["label"], "case": f"input -{pct}", "value": rows["low_value"],
                      "start": rows["base_result"], "end": rows["low_result"], "order": range(len(rows))}),
        pd.DataFrame({"label": rows["label"], "case": f"input +{pct}", "value": rows["high_value"],
                      "start": rows["base_result"], "end": rows["high_result"], "order": range(len(rows))}),
    ], ignore_index=True)
    fmt = axis_format(target)
    order = rows["label"].tolist()
    base_value = float(rows["base_result"].iloc[0])
    # padding leaves room for the bar-end labels inside the plot
    x = alt.X("start:Q", title=title, axis=alt.Axis(format=fmt, tickCount=6, grid=True),
              scale=alt.Scale(zero=False, padding=48))
    y = alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=260))
    bars = alt.Chart(long).mark_bar().encode(
        y=y, x=x, x2="end:Q",
        # neutral colours: for a cost a rise is bad, for revenue it is good
        color=alt.Color("case:N", title=None, scale=alt.Scale(domain=[f"input -{pct}", f"input +{pct}"],
                                                              range=["#4c78a8", "#f58518"]),
                        legend=alt.Legend(orient="bottom")),
        tooltip=[alt.Tooltip("label:N", title="Input"), alt.Tooltip("case:N", title="Change"),
                 alt.Tooltip("value:Q", title="Input value", format=",.4g"),
                 alt.Tooltip("end:Q", title=title, format=fmt)],
    )
    # each bar's end labelled with the output it gives, on the side it points to
    # a bar too short to hold its label next to the other side's label is left unlabelled (its tooltip has it)
    spans = (long["end"] - long["start"]).abs()
    long = long.assign(labelled=spans >= 0.04 * max(float(spans.max()), 1e-12))
    ends = alt.Chart(long).transform_filter("datum.labelled").transform_calculate(right="datum.end >= datum.start")
    right = ends.transform_filter("datum.right").mark_text(align="left", dx=3, fontSize=10).encode(
        y=y, x=alt.X("end:Q"), text=alt.Text("end:Q", format=fmt))
    left = ends.transform_filter("!datum.right").mark_text(align="right", dx=-3, fontSize=10).encode(
        y=y, x=alt.X("end:Q"), text=alt.Text("end:Q", format=fmt))
    base_frame = pd.DataFrame({"base": [base_value], "text": [f"base {_d3_like(base_value, fmt)}"]})
    base = alt.Chart(base_frame).mark_rule(color="black", strokeWidth=1.5).encode(x="base:Q")
    base_label = alt.Chart(base_frame).mark_text(align="left", baseline="bottom", dx=4, dy=-2, fontWeight="bold",
                                                 fontSize=11).encode(x="base:Q", y=alt.value(0), text="text:N")
    return (bars + left + right + base + base_label).properties(
        height=alt.Step(26), title=alt.TitleParams(f"{title}: each input moved by ±{pct}",
                                                   subtitle=f"The black line is the base case "
                                                            f"({_d3_like(base_value, fmt)}).",
                                                   anchor="start"))


def _d3_like(value: float, fmt: str) -> str:
    """``value`` as the d3 format ``fmt`` of :data:`_FORMATS` shows it (for text built in Python)."""
    if fmt.startswith("$"):
        decimals = int(fmt.split(".")[1][0])
        return f"{'-' if value < 0 else ''}${abs(value):,.{decimals}f}"
    if fmt.endswith("%"):
        return f"{value:.1%}"
    decimals = int(fmt.split(".")[1][0]) if "." in fmt else 2
    return f"{value:,.{decimals}f}"


def two_way_heatmap(table: pd.DataFrame, *, target: str = "net_roi") -> alt.Chart:
    """Heatmap of a :func:`metrics.roi.two_way_table`: volume rows x conversion-rate columns, value labels."""
    long = table.stack().rename("value").reset_index()
    long.columns = ["conversations_monthly", "lead_conversion_rate", "value"]
    fmt = axis_format(target)
    title = OUTPUTS.get(target, (target,))[0]
    base = alt.Chart(long).encode(
        x=alt.X("lead_conversion_rate:O", title="Lead conversion rate", axis=alt.Axis(format=".1%", labelAngle=0)),
        y=alt.Y("conversations_monthly:O", title="Conversations / month", sort="descending",
                axis=alt.Axis(format=",.0f")),
    )
    # Gains green, losses red: centre the diverging scale on 0 for outputs that can be negative.
    # costs are worse when higher: their scale runs the other way (red is always bad)
    lower_is_better = target in _LOWER_IS_BETTER
    scale = alt.Scale(scheme="redyellowgreen", domainMid=0) if target in _SIGNED else \
        alt.Scale(scheme="redyellowgreen", reverse=lower_is_better)
    rect = base.mark_rect().encode(color=alt.Color("value:Q", title=title, scale=scale,
                                                   legend=alt.Legend(format=fmt)),
                                   tooltip=[alt.Tooltip("conversations_monthly:Q", format=",.0f"),
                                            alt.Tooltip("lead_conversion_rate:Q", format=".1%"),
                                            alt.Tooltip("value:Q", title=title, format=fmt)])
    text = base.mark_text(color="black").encode(text=alt.Text("value:Q", format=fmt))
    return (rect + text).properties(height=alt.Step(36), title=alt.TitleParams(
        f"{title} by lead conversion rate and monthly volume", anchor="start"))


def fast_spec(chart: alt.TopLevelMixin) -> dict:
    """The Vega-Lite spec of ``chart`` without altair's JSON-schema validation.

    Validation costs about half of a chart's build time (30 ms -> 14 ms for the tornado); the
    ROI page renders with ``st.vega_lite_chart(fast_spec(chart))`` to keep a slider rerun
    under 0.1 s. The tests validate the same charts with ``chart.to_dict()``.
    """
    return chart.to_dict(validate=False)
