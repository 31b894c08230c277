"""Shared kernels: the conversation rollup, row selection, the memo of intermediate tables and statistics.

Import the modules themselves (``from metrics.core import ...``); this package re-exports nothing."""

__all__: list[str] = []
