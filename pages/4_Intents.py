"""Intents: how well the bot recognises what users want (confusion, per-intent quality,
confidence calibration, threshold what-if, weekly drift, model A/B).

Definitions live in metrics/intents/__init__.py; the rendering is in ui/intents_view.py.
"""

import streamlit as st

from ui import intents_view, shell

with shell.page_guard():  # errors become one line, never a traceback (ui/shell.py)
    ctx = shell.setup_page("Intents")
    st.title("Intents")
    intents_view.render(ctx)
