"""Data: upload exports, check the mapping and validation, manage datasets, browse conversations."""

import streamlit as st

from ui import data_page, shell

ctx = shell.setup_page("Data")
st.title("Data")
data_page.render_upload(ctx)
st.divider()
data_page.render_datasets(ctx)
st.divider()
data_page.render_browser(ctx)
