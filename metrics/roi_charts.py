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
        return alt.Chart(pd.DataFrame({"text": [f"No input moves {title}"]})).mark_text().encode(text="text:N")
    pct = f"{swing:.0%}" if swing is not None else "swing"
    long = pd.concat([
        pd.DataFrame({"label": rows["label"], "case": f"input -{pct}", "value": rows["low_value"],
                      "start": rows["base_result"], "end": rows["low_result"], "order": range(len(rows))}),
        pd.DataFrame({"label": rows["label"], "case": f"input +{pct}", "value": rows["high_value"],
                      "start": rows["base_result"], "end": rows["high_result"], "order": range(len(rows))}),
    ], ignore_index=True)
    fmt = axis_format(target)
    order = rows["label"].tolist()
    bars = alt.Chart(long).mark_bar().encode(
        y=alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        x=alt.X("start:Q", title=title, axis=alt.Axis(format=fmt), scale=alt.Scale(zero=False)),
        x2="end:Q",
        # neutral colours: for a cost a rise is bad, for revenue it is good
        color=alt.Color("case:N", title=None, scale=alt.Scale(domain=[f"input -{pct}", f"input +{pct}"],
                                                              range=["#4c78a8", "#f58518"])),
        tooltip=[alt.Tooltip("label:N", title="Input"), alt.Tooltip("case:N", title="Change"),
                 alt.Tooltip("value:Q", title="Input value", format=",.4g"),
                 alt.Tooltip("end:Q", title=title, format=fmt)],
    )
    base = alt.Chart(pd.DataFrame({"base": [float(rows["base_result"].iloc[0])]})).mark_rule(
        color="black").encode(x="base:Q")
    return (bars + base).properties(height=alt.Step(26))


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
    scale = alt.Scale(scheme="redyellowgreen", domainMid=0) if target in _SIGNED else alt.Scale(scheme="redyellowgreen")
    rect = base.mark_rect().encode(color=alt.Color("value:Q", title=title, scale=scale,
                                                   legend=alt.Legend(format=fmt)),
                                   tooltip=[alt.Tooltip("conversations_monthly:Q", format=",.0f"),
                                            alt.Tooltip("lead_conversion_rate:Q", format=".1%"),
                                            alt.Tooltip("value:Q", title=title, format=fmt)])
    text = base.mark_text(color="black").encode(text=alt.Text("value:Q", format=fmt))
    return (rect + text).properties(height=alt.Step(36))


def fast_spec(chart: alt.TopLevelMixin) -> dict:
    """The Vega-Lite spec of ``chart`` without altair's JSON-schema validation.

    Validation costs about half of a chart's build time (30 ms -> 14 ms for the tornado); the
    ROI page renders with ``st.vega_lite_chart(fast_spec(chart))`` to keep a slider rerun
    under 0.1 s. The tests validate the same charts with ``chart.to_dict()``.
    """
    return chart.to_dict(validate=False)
