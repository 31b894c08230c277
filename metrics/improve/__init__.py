"""The improvement loop: goals, alert rules and notifications, the change log with its measured before/after effects, the backlog, period comparisons and the weekly review.

Import the modules themselves (``from metrics.improve import ...``); this package re-exports nothing."""

__all__: list[str] = []
