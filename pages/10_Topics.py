"""Topics and knowledge gaps: what users ask about, how each topic ends, and what the bot does not handle.

Definitions live in metrics/topics/ (charts in metrics/topics/charts.py, stored names and runs in
metrics/topics/persist.py); the rendering is in ui/topics_view.py.
"""

import streamlit as st

from ui import shell, topics_view

with shell.page_guard():  # errors become one line, never a traceback (ui/shell.py)
    ctx = shell.setup_page("Topics")
    st.title("Topics")
    topics_view.render(ctx)
