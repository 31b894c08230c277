"""Metric tiles that read the semantic layer (:data:`metrics.kpis.CATALOGUE`).

A page that shows a registry KPI calls :func:`kpi_tile`: the label is the registry's label plus the slice it
covers (``· period``: the filtered data the page shows; the Overview's tiles say ``· last week`` or
``· all data``), the value is :func:`metrics.kpis.kpi_value` on that slice (the same computation everywhere), the
format is the registry's unit, and the tooltip quotes the registry's definition and provenance. One label, one
number: ``tests/ui/test_tiles_agree.py`` checks it across every page.
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
    """The tooltip: the registry's definition and provenance, the number of units, ``extra`` (plain text: all
    escaped here)."""
    k = kpis.get_kpi(metric)
    definition = literal(k.definition)
    source = PROVENANCE_WORDS[k.provenance]
    units = f"\n\nOver {n:,} {literal(k.population)} in the selected period." if n is not None else ""
    more = f"\n\n{literal(extra)}" if extra else ""
    return f"**Definition:** {definition}.\n\n**From:** {source}.{units}{more}"


def kpi_tile(ctx: "shell.PageContext", column, metric: str, messages, rollup, *, options=None,
             slice_word: str = "period", missing: str = "no data", extra_help: str | None = None,
             label_suffix: str = "", border: bool = False):
    """Render ``metric`` over ``messages``/``rollup`` (the page's slice) in ``column``; return its
    :class:`metrics.kpis.KpiValue`, or None when the data lacks what the KPI needs (the tile then says
    ``missing`` and its tooltip what is needed, never an invented value). ``label_suffix`` (a constant) says
    more about the slice, e.g. that an input is assumed."""
    k = kpis.get_kpi(metric)
    label = literal(kpi_label(metric, slice_word) + label_suffix)
    try:
        value = shell.cached(ctx, kpis.kpi_value, messages, rollup, metric=metric, options=options)
    except InsufficientDataError as exc:
        column.metric(label, literal(missing), help=kpi_help(metric, extra=str(exc)), border=border)
        return None
    column.metric(label, literal(kpis.format_value(value.value, k.kind)),
                  help=kpi_help(metric, n=value.n, extra=extra_help),
                  border=border)
    return value
