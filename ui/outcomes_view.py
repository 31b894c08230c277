"""The Outcomes & escalations page's body: outcome mix over time, five definitions side by side,
escalation reasons and turns, hand-off wait and success, the last bot message before abandonment,
resolution by topic/intent. Definitions live in metrics/outcomes/__init__.py, metrics/outcomes/escalation.py and
metrics/outcomes/abandonment.py; every number of one data slice and one set of options is computed once
(:func:`compute`, cached), so a click only re-renders.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from metrics import outcomes
from metrics.outcomes import abandonment
from metrics.outcomes import escalation
from metrics.engagement import volume
from metrics.outcomes import charts
from metrics.errors import ChatlensError
from metrics.io.schema import has_timestamps
from ui import drill, shell, timeaxis, urlstate
from ui.fmt import literal, num, pct

DRILL = ["conversation_id", "started_at", "channel", "user_turns", "topic"]
#: The five-definition chart's metric -> the vendor table's flag column listed when a cell is clicked.
VENDOR_FLAGS = {"resolution": "resolved", "escalation": "escalated", "abandonment": "abandoned",
                "containment": "contained"}


def compute(m: pd.DataFrame, r: pd.DataFrame, *, timeout_minutes: float, mode: str, end: str | None, fin: float,
            rasa: float, zendesk: float, period: str) -> dict:
    """Every number of the page for one data slice and one set of options (the page calls it through
    :func:`ui.shell.derive`: computed once per slice and options, so clicks only re-render)."""
    rules = outcomes.OutcomeRules(timeout_minutes=timeout_minutes, abandonment_mode=mode, export_end=end)
    vendor_opts = dict(rules=rules, fin_window_hours=fin, rasa_session_minutes=rasa, zendesk_session_hours=zendesk)
    timed = has_timestamps(m)
    out = {
        "table": outcomes.outcome_table(m, r, rules=rules),
        "rates": outcomes.outcome_rates(m, r, rules=rules),
        "vendor": outcomes.vendor_definitions(m, r, **vendor_opts),
        "vtable": outcomes.vendor_outcome_table(m, r, **vendor_opts),
        "esc": escalation.escalation_summary(m, r),
        "timing": escalation.escalation_timing(m, r),
        "etable": escalation.escalation_table(m, r),
        "reasons": escalation.escalation_reasons(m, r),
        "turns": escalation.escalation_turns(m, r),
        "success": escalation.handoff_success(m, r),
        "atable": abandonment.abandonment_table(m, r, rules=rules),
        "last": abandonment.last_bot_messages(m, r, rules=rules),
        "aturns": abandonment.abandonment_turns(m, r, rules=rules),
        "tags": {by: outcomes.conversation_tags(m, r, by=by) for by in _tag_options(m, r)},
    }
    if timed:
        # the time axis spans the dense range: a few stray dates must not stretch it over years
        span = out["span"] = volume.dense_span(r)
        rt = volume.within_dense_span(r, span) if span.trimmed else r
        mt = m[m["conversation_id"].isin(rt["conversation_id"]).to_numpy(bool)] if span.trimmed else m
        out["mix"] = outcomes.outcome_mix(mt, rt, rules=rules, period=period)
        out["periods"] = volume.conversation_periods(rt)
        out["wait_times"] = escalation.handoff_wait_times(m, r)
        out["wait"] = escalation.handoff_wait(m, r)
    return out


def _tag_options(messages: pd.DataFrame, rollup: pd.DataFrame) -> list[str]:
    """The tags this data has: ``topic`` (a rollup column) and ``intent`` (a message column)."""
    return [t for t in outcomes.TAGS if t in (rollup.columns if t == "topic" else messages.columns)]


def render(ctx: shell.PageContext) -> None:
    st.caption("Did conversations end resolved, escalated to a human, abandoned or unresolved? Every rule is "
               "written down; change the options to see how much the numbers depend on them.")
    messages, rollup = ctx.messages, ctx.rollup
    if ctx.dataset_id is None or len(rollup) == 0:
        st.info("No conversations to analyse. Load a dataset on the **Data** page (or widen the filters).")
        return
    timed = has_timestamps(messages)
    options = _options()
    all_stamps = ctx.all_messages["timestamp"] if has_timestamps(ctx.all_messages) else None
    export_end = all_stamps.max() if all_stamps is not None else None
    try:
        rules = outcomes.OutcomeRules(timeout_minutes=float(options["timeout"]), abandonment_mode=options["mode"],
                                      export_end=export_end)
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    if export_end is not None:
        st.caption(f"Export end (for in-progress and time-outs): {export_end:%Y-%m-%d %H:%M} UTC, the dataset's "
                   "latest message, whatever the filters.")
    period = options["period"]
    try:
        results = shell.derive(ctx, "outcomes", compute, messages, rollup, timeout_minutes=float(options["timeout"]),
                               mode=options["mode"], end=None if export_end is None else export_end.isoformat(),
                               fin=float(options["fin_hours"]), rasa=float(options["rasa_minutes"]),
                               zendesk=float(options["zendesk_hours"]), period=period)
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    table = results["table"]

    def details() -> pd.DataFrame:  # built only when a chart is clicked
        return rollup[[c for c in DRILL if c in rollup.columns]].merge(
            table[["conversation_id", "outcome", "rule"]], on="conversation_id", how="left")

    _headline(results["rates"])
    _mix(results, table, details, period, timed, ctx)
    _vendors(ctx, results, details)
    _escalations(ctx, results, details, timed)
    _handoffs(ctx, results, details, timed)
    _abandonment(ctx, results, details)
    _by_tag(ctx, results, details, rules)


#: The page's definition choices kept in the URL: ``?timeout=``, ``?abandoned=``, ``?group=``, ``?fin=``, ``?rasa=``,
#: ``?zendesk=``.
URL_CHOICES = (
    urlstate.Choice("timeout", "outcomes_timeout", default=30, lo=1, hi=24 * 60, cast=int, label="time-out (min)"),
    urlstate.Choice("abandoned", "outcomes_mode", tuple(outcomes.ABANDONMENT_MODES), label="abandonment rule"),
    urlstate.Choice("group", "outcomes_period", ("week", "month", "day"), label="grouping"),
    urlstate.Choice("fin", "outcomes_fin_hours", default=24, lo=1, hi=168, cast=int, label="Intercom Fin window (h)"),
    urlstate.Choice("rasa", "outcomes_rasa_minutes", default=60, lo=1, hi=24 * 60, cast=int,
                    label="Rasa session expiry (min)"),
    urlstate.Choice("zendesk", "outcomes_zendesk_hours", default=2, lo=1, hi=168, cast=int,
                    label="Zendesk session end (h)"),
)


def _options() -> dict:
    urlstate.bind("outcomes", URL_CHOICES)
    with st.container(border=True):
        c1, c2, c3 = st.columns([1, 2, 1])
        timeout = c1.number_input("Inactivity time-out (min)", min_value=1, max_value=24 * 60, step=5,
                                  key="outcomes_timeout",
                                  help="A conversation quiet for less than this at the export's end is in progress; "
                                       "silence after a bot question longer than this is abandonment.")
        mode = c2.radio("Abandoned means", outcomes.ABANDONMENT_MODES, horizontal=True, key="outcomes_mode",
                        format_func={"silence_after_bot_question": "silent after a bot question",
                                     "no_goal": "ended without goal, escalation or survey answer"}.get)
        period = c3.radio("Group by", ["week", "month", "day"], horizontal=True, key="outcomes_period")
        with st.expander("Vendor-style options"):
            v1, v2, v3 = st.columns(3)
            fin_hours = v1.number_input("Intercom Fin: no further request within (h)", min_value=1, max_value=168,
                                        key="outcomes_fin_hours")
            rasa_minutes = v2.number_input("Rasa: session expiry (min)", min_value=1, max_value=24 * 60,
                                           key="outcomes_rasa_minutes")
            zendesk_hours = v3.number_input("Zendesk: messaging session end (h)", min_value=1, max_value=168,
                                            key="outcomes_zendesk_hours")
    urlstate.sync("outcomes", URL_CHOICES)
    return {"timeout": timeout, "mode": mode, "period": period, "fin_hours": fin_hours,
            "rasa_minutes": rasa_minutes, "zendesk_hours": zendesk_hours}


def _chart(chart, *, key: str, name: str, rows, title: str, details) -> None:
    drill.chart_with_drill(chart, key=key, param=charts.PARAMS[name][0], rows=rows, title=title, details=details)


def _headline(rates) -> None:
    cols = st.columns(5)
    # "· period": the sidebar's selection (the Overview's tiles are "· last week"); the rates are over decided
    # conversations, so the escalation rate here is escalated / decided (the KPI's is escalated / all)
    cols[0].metric("Resolution · period", pct(rates.resolution_rate),
                   help=f"Resolved / decided conversations of the selected period: {rates.resolved_count:,} resolved")
    cols[1].metric("Escalation · period", pct(rates.escalation_rate),
                   help=f"Escalated / decided conversations of the selected period: {rates.escalated_count:,} "
                        "escalated")
    cols[2].metric("Abandonment · period", pct(rates.abandonment_rate),
                   help=f"Abandoned / decided conversations of the selected period: {rates.abandoned_count:,} "
                        "abandoned")
    cols[3].metric("Containment · period", pct(rates.containment_rate),
                   help=f"{rates.contained_count:,} conversations without any human (agent or hand-off)")
    cols[4].metric("In progress", f"{rates.in_progress_count:,}", help="Left out of every rate: no outcome yet.")
    st.caption(f"Rates over {rates.decided_count:,} decided conversations ({rates.unresolved_count:,} unresolved). "
               "Precedence: explicit outcome, goal / survey 'yes', agent or hand-off, survey 'no', in progress, "
               "abandonment, else unresolved.")


def _mix(results: dict, table, details, period: str, timed: bool, ctx: shell.PageContext) -> None:
    st.subheader("Outcome mix over time")
    if not timed:
        st.info("The outcome mix over time needs timestamps.")
        return
    timeaxis.note(results["span"])
    try:
        mix = results["mix"]
        def rows() -> pd.DataFrame:  # built only when a segment is clicked
            periods = results["periods"].rename(columns={period: "period"})
            return periods.merge(table[["conversation_id", "outcome"]], on="conversation_id")

        _chart(shell.chart(ctx, charts.outcome_mix_chart, mix, annotate=("period", period, "period")),
               key="outcomes_mix",
               name="mix", rows=rows,
               title="Conversations", details=details)
        st.caption(f"Share of each outcome per {literal(period)}: watch the green (resolved) band shrink or the red "
                   "(abandoned) band grow. Click a segment for its conversations.")
        shell.download_csv(mix, label="Download outcome mix (CSV)", file_name=f"outcome_mix_{period}.csv",
                           key="outcomes_mix_csv")
    except ChatlensError as exc:
        shell.show_error(exc)


def _vendors(ctx: shell.PageContext, results: dict, details) -> None:
    st.subheader("Same data, five definitions")
    vendor, vtable = results["vendor"], results["vtable"]
    event = shell.show_chart(ctx, charts.vendor_chart, vendor, on_select="rerun", key="outcomes_vendor")
    st.caption("Why two dashboards disagree: the same conversations scored the way each tool defines its rates "
               "(hover a cell for the definition; click it for the conversations counted).")
    # shown in words: a rate a style does not define reads "not defined", never "None"; headers without codes
    shown = vendor.drop(columns=["style_id", "definition"])
    rates = [c for c in shown.columns if c.endswith("_rate")]
    shown = shown.assign(**{c: [pct(v) if pd.notna(v) else "not defined" for v in shown[c]] for c in rates})
    shown = shown.rename(columns=lambda c: c.removesuffix("_rate").removesuffix("_count").replace("_", " "))
    st.dataframe(shown, width="stretch", hide_index=True, key="outcomes_vendor_table")
    for _, row in vendor.iterrows():
        with st.expander(f"How {literal(row['style'])} counts"):
            st.markdown(literal(row["definition"]))
    shell.download_csv(vendor, label="Download the five definitions (CSV)", file_name="outcome_definitions.csv",
                       key="outcomes_vendor_csv")
    points = drill.picked(event, charts.PARAMS["vendor"][0])
    if points:
        p = points[0]
        flag = VENDOR_FLAGS.get(str(p.get("metric")), "counted")
        chosen = vtable[(vtable["style"] == str(p.get("style"))) & vtable[flag]]
        drill.conversations(chosen, details=details, title=f"{p.get('style')}: {flag}", key="outcomes_vendor_list")


def _escalations(ctx: shell.PageContext, results: dict, details, timed: bool) -> None:
    messages, rollup = ctx.messages, ctx.rollup
    st.subheader("Escalations")
    esc, timing, etable = results["esc"], results["timing"], results["etable"]
    cols = st.columns(3)
    cols[0].metric("Escalated conversations", f"{esc.escalated_count:,}", help="Agent message or hand-off event, "
                   "including hand-offs that were resolved afterwards.")
    cols[1].metric("Escalation rate (all hand-offs)", pct(esc.escalation_rate))
    cols[2].metric("Within the first 3 user turns", pct(timing.early_escalation_rate))
    if timing.warning:
        st.warning(literal(timing.warning), icon=":material/warning:")
    st.caption("High escalation is not always bad - it protects users when the bot is not ready. Don't optimise "
               "it down at the expense of satisfaction.")

    left, right = st.columns(2)
    with left:
        reasons = results["reasons"]
        if len(reasons):
            _chart(shell.chart(ctx, charts.reasons_chart, reasons), key="outcomes_reasons", name="reasons", rows=etable,
                   title="Escalations", details=details)
            st.caption("Why conversations reach a human: the `escalation_reason` field, or a derived rule (asked for "
                       "an agent > sensitive topic > negative sentiment > low confidence). The top bar is the first "
                       "fix.")
            shell.download_csv(reasons, label="Download reasons (CSV)", file_name="escalation_reasons.csv",
                               key="outcomes_reasons_csv")
        else:
            st.info("No escalations in this selection.")
    with right:
        turns = results["turns"]
        if len(turns):
            _chart(shell.chart(ctx, charts.escalation_turns_chart, turns), key="outcomes_turns", name="turns",
                   rows=etable,
                   title="Escalations at that turn", details=details)
            st.caption("User turns before the hand-off: red bars (first 3 turns) mean the bot gave up early - "
                       "40% or more there signals missing training or capabilities.")
            shell.download_csv(turns, label="Download escalation turns (CSV)", file_name="escalation_turns.csv",
                               key="outcomes_turns_csv")
        else:
            st.info("No escalation with a known turn.")

    if not esc.escalated_count:
        st.caption("No escalation to break down by hour, weekday, topic, intent or channel.")
        return
    groups = [g for g in escalation.ESCALATION_GROUPS if timed or g not in ("hour", "weekday")]
    by = st.radio("Escalation rate by", groups, horizontal=True, key="outcomes_esc_by")
    try:
        by_frame = shell.cached(ctx, escalation.escalation_by, messages, rollup, by=by)
        group_col = "weekday_name" if by == "weekday" else by
        _chart(shell.chart(ctx, charts.escalation_by_chart, by_frame, by=by), key="outcomes_esc_by_chart", name="by",
               rows=lambda: etable.assign(group=etable[group_col].fillna("(none)")), title="Escalations in that group",
               details=details)
        st.caption(f"Escalation rate per {literal(by)}: a bar far above the rest is a time or topic the bot can't "
                   "cover. Click it for the escalated conversations.")
        shell.download_csv(by_frame, label=f"Download escalation by {by} (CSV)", file_name=f"escalation_by_{by}.csv",
                           key="outcomes_esc_by_csv")
    except ChatlensError as exc:
        shell.show_error(exc)


def _handoffs(ctx: shell.PageContext, results: dict, details, timed: bool) -> None:
    st.subheader("Hand-off wait and success")
    left, right = st.columns(2)
    with left:
        if timed:
            times, wait = results["wait_times"], results["wait"]
            if len(times):
                buckets = charts.wait_buckets(times)
                _chart(shell.chart(ctx, charts.wait_chart, buckets), key="outcomes_wait", name="wait", rows=buckets,
                       title="Hand-offs",
                       details=details)
                st.caption(f"Median wait {wait.median_wait_seconds / 60:.1f} min over {wait.answered_count:,} "
                           f"answered of {wait.handoff_count:,} hand-offs: long queues mean the bot needs better "
                           "coverage." if wait.answered_count else "No agent answered a hand-off in this selection.")
                shell.download_csv(times, label="Download wait times (CSV)", file_name="handoff_wait.csv",
                                   key="outcomes_wait_csv")
            else:
                st.info("No `handoff` event in this selection: the wait from hand-off to agent cannot be measured.")
        else:
            st.info("The hand-off wait needs timestamps.")
    with right:
        success = results["success"]
        c1, c2, c3 = st.columns(3)
        c1.metric("Resolved after hand-off", pct(success.resolved_after_handoff_rate),
                  help=f"{success.resolved_after_handoff_count:,} of {success.escalated_count:,} escalated "
                       "conversations ended resolved (outcome, goal or survey 'yes').")
        c2.metric("Rating after hand-off", num(success.rating_after_handoff_mean, "{:.2f}"),
                  help=f"{success.rating_after_handoff_count:,} ratings")
        c3.metric("Rating, bot only", num(success.rating_bot_only_mean, "{:.2f}"),
                  help=f"{success.rating_bot_only_count:,} ratings")
        st.caption("Did the hand-off help? Compare the rating after a hand-off with bot-only conversations.")
        success_frame = pd.DataFrame([success.__dict__])
        shell.download_csv(success_frame, label="Download hand-off success (CSV)", file_name="handoff_success.csv",
                           key="outcomes_success_csv")


def _abandonment(ctx: shell.PageContext, results: dict, details) -> None:
    st.subheader("Where users drop off")
    atable = results["atable"]
    left, right = st.columns([3, 2])
    with left:
        last = results["last"]
        if len(last):
            _chart(shell.chart(ctx, charts.last_bot_chart, last), key="outcomes_lastbot", name="lastbot",
                   rows=lambda: atable.rename(columns={"last_bot_text": "text"}), title="Abandoned after",
                   details=details)
            st.caption("The last bot message users read before leaving (top 10): rewrite the top ones first. "
                       "abandonment_rate = how often that message, when it was the bot's last, lost the user.")
            shell.download_csv(last, label="Download last bot messages (CSV)", file_name="last_bot_messages.csv",
                               key="outcomes_lastbot_csv")
        else:
            st.info("No abandoned conversation with a bot message in this selection.")
    with right:
        aturns = results["aturns"]
        if len(aturns):
            _chart(shell.chart(ctx, charts.abandonment_turns_chart, aturns), key="outcomes_abandon_turns",
                   name="abandon_turns",
                   rows=atable, title="Abandoned at that turn", details=details)
            st.caption("User turns before leaving: a peak at 0-1 means the opening fails, later peaks a step of the "
                       "flow.")
            shell.download_csv(aturns, label="Download abandonment turns (CSV)", file_name="abandonment_turns.csv",
                               key="outcomes_abandon_turns_csv")


def _by_tag(ctx: shell.PageContext, results: dict, details, rules) -> None:
    messages, rollup = ctx.messages, ctx.rollup
    st.subheader("Resolution by topic and intent")
    tag_options = _tag_options(messages, rollup)
    if not tag_options:
        st.info("Tag conversations with a `topic` (inquiry / complaint / request) or predicted intents to compare "
                "which categories succeed.")
        return
    tag_by = st.radio("Tag", tag_options, horizontal=True, key="outcomes_tag_by", format_func=literal)
    tags = shell.cached(ctx, outcomes.resolution_by_tag, messages, rollup, by=tag_by, rules=rules)
    _chart(shell.chart(ctx, charts.resolution_tag_chart, tags, by=tag_by), key="outcomes_tag", name="tag",
           rows=results["tags"][tag_by], title="Conversations tagged", details=details)
    small = int(tags["small_group"].sum())
    st.caption(f"Resolution rate per {literal(tag_by)} with its 95% Wilson interval: compare intervals, not dots. "
               f"Hollow points are small groups (< 30 conversations, {small} here): read them with care.")
    shell.download_csv(tags, label=f"Download resolution by {tag_by} (CSV)",
                       file_name=f"resolution_by_{tag_by}.csv", key="outcomes_tag_csv")
