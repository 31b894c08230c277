"""Data: upload exports, check the mapping and validation, manage datasets, browse conversations."""

import streamlit as st

from ui import data_page, shell

with shell.page_guard():  # errors become one line, never a traceback (ui/shell.py)
    ctx = shell.setup_page("Data")
    st.title("Data")
    data_page.render_upload(ctx)
    st.divider()
    data_page.render_datasets(ctx)
    st.divider()
    data_page.render_browser(ctx)
