"""Input and output: the transcript schema, file readers, validation, loaders, PII redaction, intent labels, CSV export and the platform adapters.

Import the modules themselves (``from metrics.io import ...``); this package re-exports nothing."""

__all__: list[str] = []
