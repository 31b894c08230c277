"""ROI: cost per outcome, return and sensitivity, with what-ifs, scenarios and shareable links.

Definitions live in metrics/roi/__init__.py (links in metrics/roi/params.py, saved scenarios in
metrics/roi/store.py); the rendering, with the ``st.fragment`` that reruns alone when an input
moves, is in ui/roi_view.py.
"""

import streamlit as st

from ui import roi_view, shell

with shell.page_guard():  # errors become one line, never a traceback (ui/shell.py)
    ctx = shell.setup_page("ROI")
    st.title("Cost per outcome & ROI")
    roi_view.render(ctx)
