"""Chatlens metrics: pure functions over a validated transcript frame.

This package never imports streamlit (``tests/test_purity.py`` enforces it).
Families live in their own modules (``metrics.volume``, ``metrics.intents``,
...); loading (``metrics.loaders``), persistence (``metrics.store``) and chart
builders (``metrics.charts``) are kept apart from the metric functions.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
