"""The Improvement loop page's body: the change log, before/after comparisons with attribution warnings,
the ranked improvement backlog (impact ÷ effort) and the improvement report.

Definitions live in metrics/improve/changelog.py (entries, before/after), metrics/improve/backlog.py
(candidates, ranking), metrics/improve/review.py (report) and metrics/improve/store.py (persistence);
charts in metrics/improve/changelog_charts.py. Widget keys start with ``improve_``.
"""

from __future__ import annotations

import datetime as dt
from functools import partial

import pandas as pd
import streamlit as st

from metrics import kpis
from metrics.improve import changelog
from metrics.improve import changelog_charts
from metrics.improve import store as goals_store
from metrics.improve.backlog import DEFAULT_MIN_COUNT, SOURCE_LABELS, improvement_candidates, rank_backlog
from metrics.errors import ChatlensError
from metrics.improve.review import improvement_report
from ui import shell
from ui.fmt import harden_markdown, literal
from ui.overview import audit_scores, scored_messages

FLASH = "improve_flash"
METRICS = list(kpis.KPI_NAMES)
KINDS = list(changelog.CHANGE_KINDS)


def metric_label(name: str) -> str:
    return kpis.CATALOGUE[name].label


def render(ctx: shell.PageContext) -> None:
    if ctx.dataset_id is None or len(ctx.messages) == 0:
        st.info("No conversations to analyse. Load a dataset on the **Data** page (or widen the filters).")
        return
    flash = st.session_state.pop(FLASH, None)  # plain text (it may name a change): escaped when shown
    if flash:
        st.success(literal(flash), icon=":material/check_circle:")
    try:
        entries = goals_store.list_changes(ctx.db, dataset_id=ctx.dataset_id)
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    _change_log(ctx, entries)
    results = _before_after(ctx, entries)
    _backlog(ctx)
    _report(ctx, entries, results)


def _act(action, done) -> None:
    """Run a store action; on success keep ``done(result)`` for the next run's banner and rerun. A typed
    error is shown on the page instead (never a traceback)."""
    try:
        result = action()
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    st.session_state[FLASH] = done(result)
    st.rerun()


# ----------------------------------------------------------------------------------------- change log
def _change_log(ctx: shell.PageContext, entries: list) -> None:
    st.header("Change log")
    with st.form("improve_add_form", clear_on_submit=True):
        c1, c2, c3 = st.columns([1, 1, 2])
        date = c1.date_input("Went live on", value=dt.date.today(), key="improve_date")
        kind = c2.selectbox("What changed", KINDS, format_func=changelog.KIND_LABELS.get, key="improve_kind")
        metric = c3.selectbox("Metric it should move", METRICS, format_func=metric_label, key="improve_metric")
        title = st.text_input("Change (short title)", key="improve_title", max_chars=200,
                              placeholder="e.g. Added 40 billing training phrases")
        why = st.text_area("Why", key="improve_why", height=68, placeholder="e.g. billing was confused with refund")
        detail = st.text_input("Detail (optional)", key="improve_detail")
        only_here = st.checkbox("Only this dataset (otherwise the change applies to every dataset)",
                                key="improve_scope")
        if st.form_submit_button("Add to the change log", type="primary"):
            def add() -> changelog.ChangeEntry:
                entry = changelog.ChangeEntry(date, title, kind, metric, why=why, detail=detail,
                                              dataset_id=ctx.dataset_id if only_here else None)
                goals_store.add_change(ctx.db, entry)
                return entry

            _act(add, lambda entry: f"Added “{entry.title}” to the change log.")

    if entries:
        log = pd.DataFrame([{"id": e.id, "date": e.date.isoformat(), "what changed": e.kind_label, "change": e.title,
                             "why": e.why, "metric": metric_label(e.metric),
                             "scope": "this dataset" if e.dataset_id is not None else "all datasets",
                             "from backlog": e.backlog_key or ""} for e in entries])
        st.dataframe(log, hide_index=True, width="stretch")
        c1, c2 = st.columns([3, 1])
        by_id = {e.id: e for e in entries}
        doomed = c1.selectbox("Entry", list(by_id), format_func=lambda i: f"#{i} {by_id[i].date} {by_id[i].title}",
                              key="improve_delete_pick", label_visibility="collapsed")
        if c2.button("Delete entry", key="improve_delete"):
            goals_store.delete_change(ctx.db, int(doomed))
            st.session_state[FLASH] = f"Deleted change #{doomed}."
            st.rerun()
        chosen = by_id[doomed]
        with st.expander(f"Edit #{chosen.id:d} {literal(chosen.title)}"):
            with st.form(f"improve_edit_form_{chosen.id}"):
                e1, e2, e3 = st.columns([1, 1, 2])
                new_date = e1.date_input("Went live on", value=chosen.date, key=f"improve_edit_date_{chosen.id}")
                new_kind = e2.selectbox("What changed", KINDS, index=KINDS.index(chosen.kind),
                                        format_func=changelog.KIND_LABELS.get, key=f"improve_edit_kind_{chosen.id}")
                new_metric = e3.selectbox("Metric it should move", METRICS, index=METRICS.index(chosen.metric),
                                          format_func=metric_label, key=f"improve_edit_metric_{chosen.id}")
                new_title = st.text_input("Change (short title)", value=chosen.title, max_chars=200,
                                          key=f"improve_edit_title_{chosen.id}")
                new_why = st.text_area("Why", value=chosen.why, height=68, key=f"improve_edit_why_{chosen.id}")
                new_detail = st.text_input("Detail (optional)", value=chosen.detail,
                                           key=f"improve_edit_detail_{chosen.id}")
                if st.form_submit_button("Save changes"):
                    _act(lambda: goals_store.update_change(ctx.db, chosen.id, changelog.ChangeEntry(
                        new_date, new_title, new_kind, new_metric, why=new_why, detail=new_detail,
                        dataset_id=chosen.dataset_id, backlog_key=chosen.backlog_key)),
                         lambda _: f"Saved change #{chosen.id}.")
    else:
        st.info("The change log is empty: add the first change above, or accept a backlog item below.")


# ----------------------------------------------------------------------------------------- before / after
def _before_after(ctx: shell.PageContext, entries: list) -> pd.DataFrame:
    st.header("Before / after")
    window = st.number_input("Window on each side (days)", min_value=1, max_value=120, value=changelog.MIN_WINDOW_DAYS,
                             step=1, key="improve_window",
                             help="At least 14 days: shorter windows are shown but never attributed.")
    results = shell.cached(ctx, changelog.before_after_table, ctx.messages, ctx.rollup, entries,
                            window_days=int(window)) if entries else pd.DataFrame()
    if len(results):
        shown = results.copy()
        for c in ("before", "after", "difference", "ci_low", "ci_high"):
            if c in shown.columns:
                shown[c] = [kpis.format_value(v, kpis.CATALOGUE[m].kind) if c in ("before", "after")
                            else kpis.format_delta(v, kpis.CATALOGUE[m].kind) for v, m in zip(shown[c],
                                                                                              shown["metric"])]
        cols = [c for c in ("date", "title", "metric", "before", "after", "difference", "ci_low", "ci_high", "p_value",
                            "attributable", "verdict") if c in shown.columns]
        st.dataframe(shown[cols], hide_index=True, width="stretch",
                     column_config={"p_value": st.column_config.NumberColumn("p", format="%.3g"),
                                    "ci_low": "CI low", "ci_high": "CI high", "verdict": st.column_config.TextColumn(
                                        "what happened", width="large")})
        for row in results.itertuples(index=False):
            if not row.attributable:
                st.warning(f"**{literal(row.title)}**: cannot be attributed — {literal(row.reasons)}",
                           icon=":material/warning:")
        pick = st.selectbox("Chart", list(range(len(entries))), key="improve_chart_entry",
                            format_func=lambda i: f"{entries[i].date} {entries[i].title} → {metric_label(entries[i].metric)}")
        e = entries[pick]
        verdict = results.iloc[pick]["verdict"]
        (st.success if results.iloc[pick].get("significant", False) else st.info)(literal(verdict))
        try:
            series = shell.cached(ctx, kpis.kpi_series, ctx.messages, ctx.rollup, metric=e.metric, freq="W")
            span = pd.Timedelta(days=int(window))
            chart = changelog_charts.kpi_trend_chart(
                series, annotations=changelog.annotations_frame(entries),
                windows={"before": (e.start - span, e.start), "after": (e.start, e.start + span)})
            st.altair_chart(chart, width="stretch")
            st.caption("Weekly values; the dashed purple rules are the change log (hover for what and why), the shaded "
                       "bands the before and after windows of the chosen change.")
        except ChatlensError as exc:
            shell.show_error(exc)
    else:
        st.caption("Add a change to compare the expected metric before and after it.")
    return results


# ----------------------------------------------------------------------------------------- backlog
def _backlog(ctx: shell.PageContext) -> None:
    st.header("Improvement backlog")
    st.caption("Candidates from the data, ranked by impact (affected conversations per week) ÷ effort (your estimate, any "
               "unit). “Don't make changes based on single user complaints - look for patterns across many "
               "conversations”: a candidate needs a minimum number of affected conversations.")
    min_count = st.number_input("Minimum affected conversations", min_value=1, max_value=10_000,
                                value=DEFAULT_MIN_COUNT,
                                step=1, key="improve_min_count")
    scored, sentiment_reason = scored_messages(ctx)
    try:
        found = shell.cached(ctx, improvement_candidates, scored, ctx.rollup, min_count=int(min_count),
                             audit_scores=audit_scores(ctx.db, ctx.dataset_id),
                             added=goals_store.added_backlog_items(ctx.db, ctx.dataset_id))
        ranked = rank_backlog(found.table, goals_store.backlog_state(ctx.db, ctx.dataset_id))
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    for source, reason in found.skipped:
        st.caption(f"{SOURCE_LABELS[source]}: not available — {literal(reason)}")

    if len(ranked) == 0:
        st.info("No candidate reaches the minimum count.")
    else:
        table = pd.DataFrame({"rank": ranked["rank"], "source": ranked["source"].map(SOURCE_LABELS),
                              "subject": ranked["subject"], "impact / week": ranked["impact_per_week"].round(1),
                              "effort": ranked["effort"], "score": ranked["score"].round(2), "status": ranked["status"],
                              "problem": ranked["problem"]})
        edited = st.data_editor(table, key="improve_backlog_editor", hide_index=True, width="stretch",
                                disabled=[c for c in table.columns if c != "effort"],
                                column_config={"effort": st.column_config.NumberColumn(
                                    "effort", min_value=0.1, max_value=goals_store.MAX_EFFORT, step=0.5,
                                    help="Your estimate (days, points...): the same unit for every item"),
                                    "problem": st.column_config.TextColumn("problem", width="large")})
        if st.button("Save efforts", key="improve_save_efforts"):
            changes = {k: float(v) for k, v, old in zip(ranked["key"], edited["effort"], ranked["effort"]) if v != old}
            def save() -> int:
                n = goals_store.set_efforts(ctx.db, ctx.dataset_id, changes)
                st.session_state.pop("improve_backlog_editor", None)   # rows are re-ranked: drop positional edits
                return n

            _act(save, lambda n: f"Saved {n} effort estimate(s); the ranking is updated.")

        open_items = ranked[ranked["status"].eq("open").to_numpy(bool)]
        st.subheader("Accept into the change log")
        if len(open_items):
            keys = open_items["key"].tolist()
            item = st.selectbox("Candidate", keys, key="improve_pick",
                                format_func=lambda k: f"#{int(ranked.set_index('key').loc[k, 'rank'])} "
                                                      f"{ranked.set_index('key').loc[k, 'subject']}")
            row = ranked.set_index("key").loc[item]
            c1, c2 = st.columns(2)
            when = c1.date_input("Went live on", value=dt.date.today(), key="improve_accept_date")
            how = c2.selectbox("What changed", KINDS, format_func=changelog.KIND_LABELS.get, key="improve_accept_kind")
            if st.button("Accept into change log", key="improve_accept", type="primary"):
                entry = changelog.ChangeEntry(when, f"Fix: {row['subject']}"[:200], how, row["metric"],
                                              why=row["problem"], dataset_id=ctx.dataset_id)
                _act(lambda: goals_store.accept_item(ctx.db, ctx.dataset_id, item, entry, effort=float(row["effort"])),
                     lambda cid: f"Accepted into the change log as #{cid}.")
        else:
            st.caption("Every candidate is accepted or done.")
        added = open_items[open_items["source"].eq("knowledge_gap").to_numpy(bool)]
        if len(added):
            with st.expander("Items added from the Topics page"):
                gone = st.selectbox("Added item", added["key"].tolist(), key="improve_added_pick",
                                    format_func=lambda k: str(ranked.set_index("key").loc[k, "subject"]))
                if st.button("Remove from the backlog", key="improve_added_remove"):
                    _act(lambda: goals_store.remove_backlog_item(ctx.db, ctx.dataset_id, gone),
                         lambda _: "Removed from the backlog.")
        accepted = ranked[ranked["status"].eq("accepted").to_numpy(bool)]
        if len(accepted):
            st.subheader("Mark done")
            done = st.selectbox("Accepted item", accepted["key"].tolist(), key="improve_done_pick",
                                format_func=lambda k: str(ranked.set_index("key").loc[k, "subject"]))
            if st.button("Mark done", key="improve_done"):
                goals_store.set_status(ctx.db, ctx.dataset_id, done, "done")
                st.session_state[FLASH] = "Marked done."
                st.rerun()


# ----------------------------------------------------------------------------------------- report
def _report(ctx: shell.PageContext, entries: list, results: pd.DataFrame) -> None:
    st.header("Improvement report")
    report = improvement_report(entries, results, dataset_name=ctx.dataset_name)
    with st.expander("Preview", expanded=False):
        st.markdown(harden_markdown(improvement_report(entries, results, dataset_name=ctx.dataset_name, level=4)))
    st.download_button("Download the improvement report (Markdown)", partial(str.encode, report, "utf-8"),
                       file_name="improvement-report.md", mime="text/markdown", key="improve_report_md")
