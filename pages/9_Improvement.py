"""Improvement loop: the change log, before/after comparisons with attribution warnings, the
ranked improvement backlog (impact ÷ effort) and the improvement report (body: ui/improvement_view.py)."""

import streamlit as st

from ui import improvement_view, shell

with shell.page_guard():  # errors become one line, never a traceback (ui/shell.py)
    ctx = shell.setup_page("Improvement")
    st.title("Improvement loop")
    st.caption("Weekly review finds a problem → the team fixes it (new training data, response rewrite, workflow "
               "change) → the change log records what changed and why → before/after windows of at least 14 days "
               "measure the effect. “Avoid continuous tweaking that prevents you from seeing the impact of changes - "
               "use 2-week sprints minimum.”")
    improvement_view.render(ctx)
