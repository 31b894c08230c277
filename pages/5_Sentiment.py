"""Sentiment: how customers feel (VADER on user messages), how the bot sounds, what ratings say,
and how far VADER agrees with people.

Definitions live in metrics/sentiment/__init__.py (scoring), metrics/sentiment/measures.py (metrics) and
metrics/sentiment/charts.py (charts); the rendering is in ui/sentiment_view.py.
"""

import streamlit as st

from ui import sentiment_view, shell

with shell.page_guard():  # errors become one line, never a traceback (ui/shell.py)
    ctx = shell.setup_page("Sentiment")
    st.title("Sentiment")
    sentiment_view.render(ctx)
