"""Metric tiles that read the semantic layer (:data:`metrics.kpis.CATALOGUE`).

A page that shows a registry KPI calls :func:`kpi_tile`: the label is the registry's label plus the slice it
covers (``· period``: the filtered data the page shows; the Overview's tiles say ``· last week`` or
``· all data``), the value is :func:`metrics.kpis.kpi_value` on that slice (the same computation everywhere), the
format is the registry's unit, and the tooltip quotes the registry's definition and provenance. One label, one
number: ``tests/test_tiles_agree.py`` checks it across every page.
"""

from __future__ import annotations

import streamlit as st

from metrics import kpis
from metrics.errors import InsufficientDataError
from ui import shell
from ui.fmt import literal

__all__ = ["PROVENANCE_WORDS", "kpi_label", "kpi_help", "kpi_tile"]

PROVENANCE_WORDS = {"data": "the data only",
                    "assumption": "your assumptions (ROI page)",
                    "mixed": "the data and your assumed costs (ROI page)"}


def kpi_label(metric: str, slice_word: str = "period") -> str:
    """``"Resolution rate · period"``: the registry's label and the slice shown."""
    return f"{kpis.CATALOGUE[metric].label} · {slice_word}"


def kpi_help(metric: str, *, n: int | None = None, extra: str | None = None) -> str:
    """The tooltip: the registry's definition and provenance (escaped), the number of units, ``extra``."""
    k = kpis.get_kpi(metric)
    parts = [f"**Definition:** {literal(k.definition)}.", f"**From:** {PROVENANCE_WORDS[k.provenance]}."]
    if n is not None:
        parts.append(f"Over {n:,} {literal(k.population)} in the selected period.")
    if extra:
        parts.append(extra)
    return "\n\n".join(parts)


def kpi_tile(ctx: "shell.PageContext", column, metric: str, messages, rollup, *, options=None,
             slice_word: str = "period", missing: str = "no data", extra_help: str | None = None):
    """Render ``metric`` over ``messages``/``rollup`` (the page's slice) in ``column``; return its
    :class:`metrics.kpis.KpiValue`, or None when the data lacks what the KPI needs (the tile then says
    ``missing`` and its tooltip what is needed, never an invented value)."""
    k = kpis.get_kpi(metric)
    label = kpi_label(metric, slice_word)
    try:
        value = shell.cached(ctx, kpis.kpi_value, messages, rollup, metric=metric, options=options)
    except InsufficientDataError as exc:
        column.metric(label, missing, help=kpi_help(metric, extra=literal(str(exc))))
        return None
    column.metric(label, kpis.format_value(value.value, k.kind), help=kpi_help(metric, n=value.n, extra=extra_help))
    return value
