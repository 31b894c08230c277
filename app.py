"""Chatlens home page: the Overview (executive dashboard)."""

import streamlit as st

from ui import overview, shell

ctx = shell.setup_page("Overview")
st.title("Overview")
overview.render(ctx)
