"""Chatlens home page: the Overview (executive dashboard)."""

import streamlit as st

from ui import overview, shell

with shell.page_guard():  # errors become one line, never a traceback (ui/shell.py)
    ctx = shell.setup_page("Overview")
    st.title("Overview")
    overview.render(ctx)
