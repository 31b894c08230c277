"""Shared kernels used by every family:

* :mod:`metrics.core.rollup` -- the per-conversation rollup;
* :mod:`metrics.core.order` -- the conversation order of messages (conversation, time, source row);
* :mod:`metrics.core.periods` -- days, ISO weeks and calendar months: start, end and label;
* :mod:`metrics.core.frames` -- row selection;
* :mod:`metrics.core.memo` -- the memo of intermediate tables;
* :mod:`metrics.core.stats` -- statistics (intervals and tests).

Import the modules themselves (``from metrics.core import ...``); this package re-exports nothing."""

__all__: list[str] = []
