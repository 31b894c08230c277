"""Engagement: volume trend (week/month/day), spikes, peak hours, engagement depth, business hours,
repeat users, channels.

Definitions live in metrics/volume.py and metrics/engagement.py; the rendering is in
ui/engagement_view.py. Clicking a bar or cell lists the conversations behind it.
"""

import streamlit as st

from ui import engagement_view, shell

ctx = shell.setup_page("Engagement")
st.title("Engagement")
engagement_view.render(ctx)
