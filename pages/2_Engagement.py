"""Engagement: volume trend (week/month/day), spikes, peak hours, engagement depth, business hours,
repeat users, channels.

Definitions live in metrics/engagement/volume.py and metrics/engagement/__init__.py; the rendering is in
ui/engagement_view.py. Clicking a bar or cell lists the conversations behind it.
"""

import streamlit as st

from ui import engagement_view, shell

with shell.page_guard():  # errors become one line, never a traceback (ui/shell.py)
    ctx = shell.setup_page("Engagement")
    st.title("Engagement")
    engagement_view.render(ctx)
