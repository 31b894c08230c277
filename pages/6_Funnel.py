"""Funnel: how far conversations get through the stages you define, where they stop, and what
the leads were worth downstream (segments, conversion, value, lead quality vs volume).

Definitions live in metrics/funnel/__init__.py (saved funnels in metrics/funnel/store.py, charts in
metrics/funnel/charts.py); the rendering is in ui/funnel_view.py. Contact details (e-mail
addresses, phone numbers) are masked in every table and export.
"""

import streamlit as st

from ui import funnel_view, shell

with shell.page_guard():  # errors become one line, never a traceback (ui/shell.py)
    ctx = shell.setup_page("Funnel")
    st.title("Funnel")
    funnel_view.render(ctx)
