"""The weekly (or monthly, or any period's) report: HTML, PDF and Markdown for stakeholders.

:func:`build_report` computes a typed :class:`Report` from one dataset: the KPI tiles of the
whole catalogue (:mod:`metrics.kpis`) with their goal's red/amber/green status and the deltas
against the previous period (and month over month for a weekly report) with the test used
(:mod:`metrics.improve.compare`), weekly trends, the top escalation reasons, the change log's
before/after effects (:mod:`metrics.improve.changelog`), "what needs improvement this week"
(:mod:`metrics.improve.review` and :mod:`metrics.improve.backlog`) and the alert rules (:mod:`metrics.improve.alerts`).
Renderers draw it: :func:`render_html` (self-contained, printable), :func:`render_markdown`
and :func:`html_to_pdf` (Chromium's print of the same HTML). The CLI is ``python -m metrics
report`` (:mod:`metrics.cli_report`).
"""

from metrics.report._build import EXECUTIVE_TRENDS, TREND_WEEKS, VIEWS, Report, build_report
from metrics.report._charts import ChartRenderError
from metrics.report._html import render_html
from metrics.report._markdown import md_text, render_markdown
from metrics.report._pdf import PdfRenderError, PdfRendererMissing, find_chromium, html_to_pdf

__all__ = [
    "VIEWS",
    "FORMATS",
    "TREND_WEEKS",
    "EXECUTIVE_TRENDS",
    "Report",
    "build_report",
    "render_html",
    "render_markdown",
    "md_text",
    "html_to_pdf",
    "find_chromium",
    "ChartRenderError",
    "PdfRenderError",
    "PdfRendererMissing",
]

FORMATS = ("html", "pdf", "md")
