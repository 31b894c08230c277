"""Audit: sample conversations, score them with a rubric, label intents, and see where reviewers
and the automated metrics disagree.

Definitions live in metrics/audit/__init__.py (sampling, rubric, results) and metrics/audit/store.py
(saving); the rendering is in ui/audit_view.py.
"""

import streamlit as st

from ui import audit_view, shell

with shell.page_guard():  # errors become one line, never a traceback (ui/shell.py)
    ctx = shell.setup_page("Audit")
    st.title("Audit")
    st.caption("Human review of sampled conversations: the guide's 50-100 a week, scored 1-5 on a simple rubric. "
               "Your reviews are saved as you submit them; two reviewers can work at the same time.")
    audit_view.render(ctx)
