"""Static charts of the report: Altair specs rendered to SVG by vl-convert (no browser, no network)."""

from __future__ import annotations

import base64
import io

import altair as alt
import pandas as pd

from metrics.errors import ChatlensError

CHART_WIDTH = 300
CHART_HEIGHT = 140


class ChartRenderError(ChatlensError):
    """vl-convert is missing or could not render a chart."""


def trend_chart(series: pd.DataFrame, *, band=None, annotations: pd.DataFrame | None = None) -> alt.LayerChart:
    """The KPI's weekly trend (:func:`metrics.improve.changelog_charts.kpi_trend_chart`) sized for print."""
    from metrics.improve.changelog_charts import kpi_trend_chart

    return kpi_trend_chart(series, annotations=annotations, band=band, height=CHART_HEIGHT).properties(
        width=CHART_WIDTH)


def reasons_chart(reasons: pd.DataFrame) -> alt.Chart:
    """Horizontal bars: escalated conversations per reason in the period."""
    data = pd.DataFrame({"reason": reasons["reason"].astype(str).str.slice(0, 60),
                         "conversations": reasons["conversation_count"].astype(int)})
    return alt.Chart(data).mark_bar(color="#4c78a8").encode(
        x=alt.X("conversations:Q", title="escalated conversations"),
        y=alt.Y("reason:N", sort="-x", title=None),
    ).properties(width=CHART_WIDTH, height=max(40, 18 * len(data)))


def to_svg(chart) -> str:
    """The chart as an SVG document (altair's ``save(format="svg")``, which runs vl-convert)."""
    buf = io.StringIO()
    try:
        chart.save(buf, format="svg")
    except (ImportError, ValueError) as exc:  # altair raises ValueError when vl-convert is absent
        raise ChartRenderError(f"cannot draw the report's charts ({exc}); install vl-convert-python") from None
    return buf.getvalue()


def svg_data_uri(svg: str) -> str:
    """``data:image/svg+xml;base64,...``: each chart is its own document inside an ``<img>``, so the
    ids of one chart's clip paths never clash with another's, and nothing is fetched."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
