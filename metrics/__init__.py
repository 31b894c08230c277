"""Chatlens metrics: pure functions over a validated transcript frame, laid out by family.

``io/``
    the transcript schema, file readers, validation, loaders, PII redaction, intent labels, CSV export and the
    platform adapters (``io/adapters``).
``core/``
    shared kernels: the conversation rollup, the one message order (``order``), the one period helper
    (``periods``: day / ISO week / month), row selection, the memo of intermediate tables, statistics.
``store/``
    the SQLite store (datasets, Parquet parts), its one schema-migration mechanism (``migrations``: every table
    of every family, one ordered plan) and its full-text search index.
``engagement/``, ``outcomes/``, ``intents/``, ``sentiment/``, ``funnel/``, ``roi/``, ``audit/``, ``topics/``
    one package per metric family: the package itself is the family's compute API (``from metrics import
    intents; intents.confusion_matrix(...)``), beside its ``charts`` (Altair builders), ``store``
    (persistence) and ``cli`` (its subcommand).
``improve/``
    goals, alert rules and notifications, the change log and its before/after effects, the backlog, period
    comparisons and the weekly review.
``report/``
    the weekly report (HTML, PDF, Markdown).
``kpis``
    the semantic layer: one registry of every KPI the product shows (definition, provenance, computation).
``cli``, ``cli_ingest``, ``cli_report``, ``summary``, ``overview``, ``errors``
    the command line, the summary report, the executive overview's numbers and the typed errors.

The package never imports streamlit, a family's compute never imports persistence or a command line, and no
module names a page file (the pages are the UI's: ``ui/kpi_pages.py``); ``tests/metrics/test_layout.py`` and
``tests/metrics/test_purity.py`` enforce it. Masking contact details is ``io.pii`` everywhere.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
