"""Drill-downs: a chart the user can click, and the list of conversations behind what was clicked.

``picked(event, param)`` reads a chart's selection (the dict ``st.altair_chart(..., on_select="rerun")``
returns, or what AppTest puts in session state). ``chart_with_drill`` draws a selectable chart and,
when something is picked, lists the conversations of the matching rows with
:func:`ui.shell.conversation_list` (whose button opens one on the Conversations page), and offers
:func:`conversations_link`: the Conversations page's list filtered like the picked point (``?intent=``, ...).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from metrics.engagement.charts import rows_matching, selection_points
from ui import shell
from ui.fmt import literal

__all__ = ["picked", "linked", "listing", "conversations", "chart_with_drill", "conversations_link"]


def picked(event, param: str) -> list[dict]:
    """The points picked under the chart selection ``param`` (``[]`` when nothing is selected)."""
    return selection_points(event, param)


def linked(field: str) -> str | None:
    """The value a link from another page asked for (``?field=value`` in the URL), or None.

    The Overview's operational view links to a page with ``?intent=``, ``?reason=``, ``?stage=``,
    ``?bot_text=`` or ``?topic=``; a page uses it as the selection when nothing is clicked yet.
    """
    value = st.query_params.get(field)
    return str(value) if value not in (None, "") else None


def listing(frame: pd.DataFrame, *, heading: str, key: str) -> None:
    """A bold heading (plain text: it is escaped here), then the conversations of ``frame`` (needs
    ``conversation_id``)."""
    st.markdown(f"**{literal(heading)}**")
    shell.conversation_list(frame, key=key)


def conversations(frame: pd.DataFrame, *, details: pd.DataFrame, title: str, key: str) -> None:
    """List the distinct conversations of ``frame`` with their ``details`` columns (joined on conversation_id)."""
    details = details() if callable(details) else details
    ids = frame[["conversation_id"]].drop_duplicates()
    shown = ids.merge(details, on="conversation_id", how="left")
    listing(shown, heading=f"{title}: {len(shown):,} conversation(s)", key=key)


def chart_with_drill(chart, *, key: str, param: str, rows, title: str, details) -> list[dict]:
    """Render a selectable chart (an altair chart, or what :func:`ui.shell.chart` returns); when points are
    picked, list the conversations of the ``rows`` matching them (under ``f"{title} (field value, ...)"``,
    widget key ``f"{key}_list"``). Returns the points.

    ``rows`` and ``details`` may be frames or zero-argument callables returning them: a callable is only
    called when something is picked (or linked), so a rerun without a selection builds no drill-down frame.
    """
    event = shell.render_chart(chart, key=key, on_select="rerun")
    points = picked(event, param)
    if not points and len(st.query_params):  # a link from the Overview (?reason=...) selects matching rows
        rows = rows() if callable(rows) else rows
        points = [{col: value} for col in rows.columns if (value := linked(col)) is not None][:1]
    if points:
        rows = rows() if callable(rows) else rows
        details = details() if callable(details) else details
        label = ", ".join(f"{k} {v}" for p in points for k, v in p.items() if not k.startswith("vl"))
        conversations(rows_matching(rows, points), details=details, title=f"{title} ({label})", key=f"{key}_list")
        conversations_link(points, key=f"{key}_search")
    return points


#: Chart fields that are filters of the Conversations page (field -> its URL parameter).
CONVERSATIONS_FILTERS = {"intent": "intent", "escalation_reason": "reason", "reason": "reason", "topic": "topic",
                         "channel": "channel"}


def conversations_link(points: list[dict], *, key: str) -> dict[str, str]:
    """A link to the Conversations page filtered like the picked point (when its field is one of that page's
    filters: intent, escalation reason, topic, channel); returns the query parameters (``{}``: no link)."""
    params: dict[str, str] = {}
    for point in points[:1]:
        for field, value in point.items():
            name = CONVERSATIONS_FILTERS.get(field)
            if name and value is not None and str(value) != "":
                params[name] = str(value)
    if params:
        if st.button("Search and filter these conversations", key=key, icon=":material/search:"):
            shell.open_conversations(**params)
    return params
