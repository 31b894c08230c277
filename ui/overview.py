"""Rendering of the Overview (home) page. Later issues add goals, KPI tiles and the weekly review here."""

from __future__ import annotations

import streamlit as st

from metrics.overview import dataset_overview
from ui import shell


def render(ctx: shell.PageContext) -> None:
    if ctx.dataset_id is None:
        st.info("No dataset is loaded yet. Upload an export on the **Data** page.")
        shell.page_link("pages/1_Data.py", label="Go to Data", icon=":material/upload_file:")
        return
    summary = dataset_overview(ctx.messages, ctx.rollup)
    st.caption(f"Dataset: {ctx.dataset_name}")
    cols = st.columns(4)
    cols[0].metric("Conversations", f"{summary.conversation_count:,}")
    cols[1].metric("Messages", f"{summary.message_count:,}")
    cols[2].metric("Users", f"{summary.user_count:,}")
    cols[3].metric("Mean user turns", "—" if summary.mean_user_turns is None else f"{summary.mean_user_turns:.1f}")
    if summary.first_day is not None:
        st.caption(f"From {summary.first_day} to {summary.last_day} (UTC).")
    else:
        st.caption("This dataset has no timestamps: time-based views will say they need them.")
