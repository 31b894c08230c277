"""Time axes over the dense range of the data: a few stray dates (a 2011 tweet in a 2017 export) must not stretch
every chart over time across years, with everything squashed at one end.

``frame = timeaxis.dense(ctx, ctx.rollup)`` (or the slice's messages) before a chart over time: the rows inside
:func:`metrics.engagement.volume.dense_span` of the slice, and a caption naming the conversations left off the axis.
The other numbers of the page keep counting them.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from metrics.engagement import volume
from ui import shell
from ui.fmt import literal

__all__ = ["span", "dense", "note"]


def span(ctx: shell.PageContext) -> volume.DenseSpan:
    """The dense time range of the slice's conversations (computed once per slice)."""
    return shell.cached(ctx, volume.dense_span, ctx.rollup)


def note(dense_span: volume.DenseSpan) -> None:
    """The caption naming what a time axis leaves out (nothing when it leaves nothing out)."""
    if not dense_span.trimmed:
        return
    days = list(dense_span.outlier_days)
    more = dense_span.outlier_count - len(days)
    st.caption(f":material/date_range: The time axis spans {dense_span.start:%Y-%m-%d} to {dense_span.end:%Y-%m-%d}, "
               f"where the conversations are. {dense_span.outlier_count:,} conversation(s) far outside it are left "
               f"off the charts over time: started on {literal(', '.join(days))}"
               + (f" and {more:,} more" if more > 0 else "") + ". Every other number on the page counts them.")


def _in_conversations(messages: pd.DataFrame, rollup: pd.DataFrame) -> pd.DataFrame:
    """The messages of the conversations in ``rollup``."""
    keep = messages["conversation_id"].isin(rollup["conversation_id"]).to_numpy(bool)
    return messages[keep].reset_index(drop=True)


def dense(ctx: shell.PageContext, frame: pd.DataFrame, *, show_note: bool = True) -> pd.DataFrame:
    """The rows of ``frame`` (the slice's rollup, or messages: those of its conversations) inside the dense time
    range, shared once per slice; ``frame`` itself when nothing lies outside. Shows :func:`note`."""
    dense_span = span(ctx)
    if not dense_span.trimmed:
        return frame
    if show_note:
        note(dense_span)
    rollup = shell.derive(ctx, "dense rollup", volume.within_dense_span, ctx.rollup, dense_span)
    if frame is ctx.rollup:
        return rollup
    if "started_at" in frame.columns:
        return shell.derive(ctx, "dense frame", volume.within_dense_span, frame, dense_span)
    return shell.derive(ctx, "dense messages", _in_conversations, frame, rollup)
