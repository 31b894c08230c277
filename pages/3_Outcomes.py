"""Outcomes & escalations: outcome mix over time, five definitions side by side, escalation reasons and
turns, hand-off wait and success, the last bot message before abandonment, resolution by topic/intent.

Definitions live in metrics/outcomes/__init__.py, metrics/outcomes/escalation.py and metrics/outcomes/abandonment.py; the
rendering is in ui/outcomes_view.py. Clicking a bar or cell lists the conversations behind it.
"""

import streamlit as st

from ui import outcomes_view, shell

with shell.page_guard():  # errors become one line, never a traceback (ui/shell.py)
    ctx = shell.setup_page("Outcomes & escalations")
    st.title("Outcomes & escalations")
    outcomes_view.render(ctx)
