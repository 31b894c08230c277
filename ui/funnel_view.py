"""The Funnel page's body: how far conversations get through the stages you define, where they stop,
and what the leads were worth downstream (segments, conversion, value, lead quality vs volume).

Definitions live in metrics/funnel/__init__.py (saved funnels in metrics/funnel/store.py, charts in
metrics/funnel/charts.py). Contact details (e-mail addresses, phone numbers) are masked in every
table and export.
"""

from __future__ import annotations

import streamlit as st

from metrics import funnel as F
from metrics import kpis
from metrics.funnel import charts
from metrics.funnel import store as funnel_store
from metrics.errors import ChatlensError
from ui import drill, shell, tiles, urlstate
from ui.fmt import literal, num, pct

BUILTIN = ""  # selectbox value of the built-in lead funnel
BUILTIN_LABEL = "Lead generation (built-in)"
SEGMENT_LABELS = {"utm_source": "UTM source", "utm_campaign": "UTM campaign", "week": "ISO week"}
VALUE_LABELS = {"rate_of_entry": "% of entry", "step_rate": "Step conversion", "conversations": "Conversations"}


def _choices(saved: list[str], available: list[str] = ()) -> tuple:
    """The page's choices kept in the URL: ``?funnel=`` (a saved funnel's name), ``?order=any``, ``?by=``,
    ``?show=``."""
    return (urlstate.Choice("funnel", "funnel_pick", tuple([BUILTIN] + saved), label="funnel"),
            urlstate.Choice("order", "funnel_strict", (True, False), label="stage order"),
            urlstate.Choice("by", "funnel_by", tuple(available) or ("channel",), label="comparison"),
            urlstate.Choice("show", "funnel_by_value", tuple(VALUE_LABELS), label="value shown"))


def render(ctx: shell.PageContext) -> None:
    st.caption("How many conversations reach each stage, where they stop, and which leads convert downstream.")
    saved = _saved_names(ctx.db)
    choices = _choices(saved)
    urlstate.bind("funnel", choices[:2])
    pick = _pick_funnel(ctx.db, saved)
    urlstate.sync("funnel", choices[:1])
    flash = st.session_state.pop("funnel_flash", None)  # the outcome of the last form action (after its rerun)
    if flash:
        st.success(literal(flash), icon=":material/check_circle:")
    _form(ctx, pick, saved)
    try:
        stages = F.stages_from_dicts(st.session_state["funnel_applied"])
    except (ChatlensError, KeyError):
        stages = list(F.DEFAULT_LEAD_FUNNEL)

    st.caption("Stages: " + " → ".join(f"**{literal(s.name)}** ({literal(F.rule_label(s.rule), code=True)})"
                                       for s in stages))
    if F.contact_stage_warning(stages):
        st.info("**Privacy:** this funnel has stages that capture contact details. Views and exports show "
                "which stage was reached, never the value: e-mail addresses and phone numbers are masked as "
                "`<EMAIL>` and `<PHONE>`.", icon=":material/lock:")

    messages = ctx.messages
    if ctx.dataset_id is None or len(messages) == 0:
        st.info("No messages to analyse. Load a dataset on the **Data** page (or widen the filters).")
        return
    if _needs_missing_events(stages, ctx.all_messages):
        _explain_without_events(ctx, stages)
        return
    strict = st.toggle("Strict order", key="funnel_strict",
                       help="On: a stage counts only at or after the message that reached the previous stage. "
                            "Off: the stages may happen in any order.")
    urlstate.sync("funnel", _choices(saved)[1:2])
    for warning in shell.cached(ctx, F.validate_funnel, stages, messages):
        st.warning(literal(warning), icon=":material/warning:")
    try:
        table = shell.cached(ctx, F.funnel_table, messages, stages, strict=strict)
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    _stages(ctx, stages, table, strict)
    available = shell.cached(ctx, F.segment_columns, messages)
    _segments(ctx, stages, strict, available)
    _conversion(ctx, stages, strict, available)


# ----------------------------------------------------------------------------------------- data without events
def _needs_missing_events(stages, messages) -> bool:
    """True when a stage is an ``event:`` rule and the dataset records no event at all."""
    has_events = "event" in messages.columns and bool(messages["event"].notna().any())
    return not has_events and any(s.rule.kind == "event" for s in stages)


def _use_suggestion(lines: str, dicts: list) -> None:
    st.session_state["funnel_stages_text"] = lines
    st.session_state["funnel_applied"] = dicts
    st.session_state["funnel_flash"] = "Applied the suggested stages. Edit them under “Define, edit, copy or " \
                                       "delete funnels”, and save them to keep them."


def _explain_without_events(ctx: shell.PageContext, stages) -> None:
    """Instead of running a funnel whose event stages cannot match: how to define stages from intents or text,
    with a suggestion built from this dataset."""
    event_stages = [s.name for s in stages if s.rule.kind == "event"]
    st.info("**This dataset records no events**, so the stages that wait for an event ("
            + ", ".join(f"“{literal(n)}”" for n in event_stages)
            + ") can never be reached. Define the stages from what the data has instead: an **intent** the bot "
              "recognised (`intent:NAME`), or **text** the user or the bot wrote (`user~WORDS` or `bot~WORDS`, "
              "case-insensitive; e.g. `user~price|quote`).", icon=":material/filter_alt_off:")
    suggested = shell.cached(ctx, F.suggest_stages, ctx.all_messages)
    from_intents = all(s.rule.kind == "intent" for s in suggested)
    st.markdown("**Suggested from this dataset** — "
                + ("its most frequent intents, in the order they usually come:" if from_intents else
                   "it has no usable intents, so these stages use its text:"))
    lines = F.stages_to_lines(suggested)
    st.code(lines, language=None)
    st.button("Use these stages", key="funnel_use_suggestion", type="primary", on_click=_use_suggestion,
              args=(lines, F.stages_to_dicts(suggested)))
    st.caption("You can edit them first under “Define, edit, copy or delete funnels” above: one stage per line, "
               "NAME=RULE.")


# ----------------------------------------------------------------------------------------- funnel choice
def _saved_names(db) -> list[str]:
    try:
        return funnel_store.list_funnels(db)["name"].tolist()
    except ChatlensError as exc:
        shell.show_error(exc)
        return []


def _load(db, pick: str) -> list[F.Stage]:
    if pick == BUILTIN:
        return list(F.DEFAULT_LEAD_FUNNEL)
    return funnel_store.load_funnel(db, pick)


def _pick_funnel(db, saved: list[str]) -> str:
    """The funnel selector; loading another funnel fills the form and applies its stages."""
    state = st.session_state
    if "funnel_next_pick" in state:  # set by a form action before the rerun
        state["funnel_pick"] = state.pop("funnel_next_pick")
        state["funnel_loaded_pick"] = None
    options = [BUILTIN] + saved
    if state.get("funnel_pick") not in options:
        state["funnel_pick"] = BUILTIN
    pick = st.selectbox("Funnel", options, key="funnel_pick",
                        format_func=lambda n: BUILTIN_LABEL if n == BUILTIN else n,
                        help="Saved funnels are shared by every dataset in this store.")
    if state.get("funnel_loaded_pick", "-") != pick:
        try:
            loaded = _load(db, pick)
        except ChatlensError as exc:
            shell.show_error(exc)
            loaded = list(F.DEFAULT_LEAD_FUNNEL)
        state["funnel_name"] = "" if pick == BUILTIN else pick
        state["funnel_stages_text"] = F.stages_to_lines(loaded)
        state["funnel_applied"] = F.stages_to_dicts(loaded)
        state["funnel_loaded_pick"] = pick
    return pick


# ----------------------------------------------------------------------------------------- form
def _finish(message: str, next_pick: str) -> None:
    """After a saving form action: remember its outcome and which funnel to select, then rerun."""
    st.session_state["funnel_flash"] = message
    st.session_state["funnel_next_pick"] = next_pick
    st.rerun()


def _form(ctx: shell.PageContext, pick: str, saved: list[str]) -> None:
    db = ctx.db
    with st.expander("Define, edit, copy or delete funnels", expanded=not saved):
        st.caption("One stage per line, `NAME=RULE`. RULE is `event:NAME`, `intent:NAME` (predicted or true), "
                   "`user~REGEX` / `bot~REGEX` (case-insensitive), or `field:NAME=VALUE` (e.g. "
                   "`field:converted=true`).")
        with st.form("funnel_form"):
            name = st.text_input("Funnel name", key="funnel_name", placeholder="e.g. Lead gen (web)")
            text = st.text_area("Stages (in order)", key="funnel_stages_text", height=160)
            confirm = st.checkbox("Yes, delete the selected funnel", key="funnel_confirm_delete")
            b = st.columns(5)
            do_save = b[0].form_submit_button("Save", type="primary", key="funnel_save")
            do_apply = b[1].form_submit_button("Apply without saving", key="funnel_apply")
            do_copy = b[2].form_submit_button("Save as a copy", key="funnel_copy")
            do_rename = b[3].form_submit_button("Rename selected", key="funnel_rename")
            do_delete = b[4].form_submit_button("Delete selected", key="funnel_delete")
            feedback = st.container()

        try:
            if do_save or do_apply or do_copy:
                stages = F.parse_stage_lines(text)
                for warning in F.validate_funnel(stages, ctx.messages):
                    feedback.warning(literal(warning), icon=":material/warning:")
                if do_apply:
                    st.session_state["funnel_applied"] = F.stages_to_dicts(stages)
                    feedback.info("Applied below without saving.")
                elif do_save:
                    clean = funnel_store.clean_funnel_name(name)
                    funnel_store.save_funnel(db, clean, stages)
                    _finish(f"Saved funnel '{clean}' ({len(stages)} stages).", clean)
                else:
                    clean = funnel_store.clean_funnel_name(name)
                    funnel_store.save_funnel(db, clean, stages, overwrite=False)
                    _finish(f"Saved a copy as '{clean}'.", clean)
            elif do_rename:
                if pick == BUILTIN:
                    feedback.error("The built-in funnel cannot be renamed: save it under a name first.")
                else:
                    clean = funnel_store.clean_funnel_name(name)
                    funnel_store.rename_funnel(db, pick, clean)
                    _finish(f"Renamed '{pick}' to '{clean}'.", clean)
            elif do_delete:
                if pick == BUILTIN:
                    feedback.error("The built-in funnel cannot be deleted.")
                elif not confirm:
                    feedback.error(f"Tick 'Yes, delete the selected funnel' to delete '{literal(pick)}'.")
                else:
                    funnel_store.delete_funnel(db, pick)
                    _finish(f"Deleted funnel '{pick}'.", BUILTIN)
        except ChatlensError as exc:
            for problem in str(exc).split(" | "):  # parse_stage_lines joins one problem per line
                feedback.error(literal(problem), icon=":material/error:")


# ----------------------------------------------------------------------------------------- stages
def _stages(ctx: shell.PageContext, stages, table, strict: bool) -> None:
    messages = ctx.messages
    entered = int(table["conversations"].iloc[0])
    finished = int(table["conversations"].iloc[-1])
    m = st.columns(3)
    m[0].metric("Entered the funnel", f"{entered:,}",
                help=f"Conversations reaching '{literal(stages[0].name)}', of {len(ctx.rollup):,}.")
    m[1].metric("Finished", f"{finished:,}", help=f"Conversations reaching '{literal(stages[-1].name)}'.")
    m[2].metric("Entry to finish", "—" if entered == 0 else f"{finished / entered:.1%}")

    st.subheader("Stages")
    event = shell.show_chart(ctx, charts.funnel_chart, table, on_select="rerun", key="funnel_chart")
    st.caption("Bars: conversations reaching each stage, with the share of entry and how many stopped there. "
               "Click a bar to list the conversations that stopped at that stage.")
    st.dataframe(table.drop(columns=["stage_index", "rule"]), width="stretch", hide_index=True, key="funnel_table",
                 column_config={
                     "rate_of_entry": st.column_config.NumberColumn("% of entry", format="percent"),
                     "step_rate": st.column_config.NumberColumn("step conversion", format="percent"),
                     "dropped": st.column_config.NumberColumn("stopped here"),
                     "median_seconds_from_previous": st.column_config.NumberColumn(
                         "median s from previous", format="%.0f")})
    st.caption("Step conversion of the first stage is the share of all conversations that entered; "
               "'stopped here' reached the stage but not the next.")
    shell.download_csv(table, label="Download the funnel (CSV)", file_name="funnel.csv", key="funnel_table_csv")

    picked = charts.selected_stage(event) or drill.linked("stage")  # a click, or a link from the Overview
    names = [s.name for s in stages]
    if picked in names:
        stopped = shell.cached(ctx, F.dropoff_conversations, messages, stages, stage=picked, strict=strict)
        if picked == names[-1]:
            st.markdown(f"**'{literal(picked)}' is the last stage: conversations there finished the funnel.**")
        else:
            st.markdown(f"**Stopped at '{literal(picked)}': {len(stopped):,} conversation(s)**")
            st.caption("Each reached this stage but not the next; the bot's last message is shown masked.")
            shell.conversation_list(stopped, key="funnel_drill_convs")
            shell.download_csv(stopped, label="Download these conversations (CSV)",
                               file_name="funnel_stopped.csv", key="funnel_drill_csv")
    else:
        st.caption("No stage selected.")

    with st.expander("The bot's last message before drop-off, per stage"):
        last = shell.cached(ctx, F.last_bot_message_before_dropoff, messages, stages, strict=strict, top=5)
        st.dataframe(last, width="stretch", hide_index=True, key="funnel_last_bot",
                     column_config={"dropoff_rate": st.column_config.NumberColumn("share of the stage's drop-offs",
                                                                                  format="percent")})
        st.caption("What the bot said last in conversations that stopped at each stage (top 5, masked).")
        shell.download_csv(last, label="Download (CSV)", file_name="funnel_last_bot_messages.csv",
                           key="funnel_last_bot_csv")


# ----------------------------------------------------------------------------------------- segments
def _segments(ctx: shell.PageContext, stages, strict: bool, available: list[str]) -> None:
    messages = ctx.messages
    st.subheader("Segments side by side")
    if not available:
        st.info("No channel, segment, UTM or timestamp column to compare by.")
        return
    choices = _choices(_saved_names(ctx.db), available)[2:]
    urlstate.bind("funnel", choices)
    c1, c2 = st.columns(2)
    by = c1.selectbox("Compare by", available, key="funnel_by",
                      format_func=lambda c: SEGMENT_LABELS.get(c, c.capitalize()))
    value = c2.radio("Show", ["rate_of_entry", "step_rate", "conversations"], horizontal=True,
                     key="funnel_by_value", format_func=lambda v: VALUE_LABELS[v])
    urlstate.sync("funnel", choices)
    try:
        seg = shell.cached(ctx, F.funnel_by_segment, messages, stages, by=by, strict=strict)
        shell.show_chart(ctx, charts.segment_comparison_chart, seg, value=value)
        st.caption(f"Each stage's bars compare the values of {literal(by)}; look for a segment that drops earlier.")
        if seg["segment"].nunique() > charts.MAX_SEGMENTS:
            st.caption(f"The chart shows the {charts.MAX_SEGMENTS} values with the most conversations at the first "
                       f"stage, of {seg['segment'].nunique():,}; the table and the download have them all.")
        wide = seg.pivot(index=["stage_index", "stage"], columns="segment", values=value).reset_index()
        fmt = "%d" if value == "conversations" else "percent"
        st.dataframe(wide.drop(columns="stage_index"), width="stretch", hide_index=True, key="funnel_seg_table",
                     column_config={c: st.column_config.NumberColumn(str(c), format=fmt)
                                    for c in wide.columns if c not in ("stage_index", "stage")})
        shell.download_csv(seg, label="Download the comparison (CSV)", file_name=f"funnel_by_{by}.csv",
                           key="funnel_seg_csv")
    except ChatlensError as exc:
        shell.show_error(exc)


# ----------------------------------------------------------------------------------------- conversion
def _conversion(ctx: shell.PageContext, stages, strict: bool, available: list[str]) -> None:
    messages = ctx.messages
    st.subheader("Downstream conversion and value")
    if "converted" not in messages.columns:
        st.info("This dataset has no `converted` column. Map one (and `conversion_value`) on the **Data** page, "
                "or join a conversations file, to follow leads to customers.")
        return
    names = [s.name for s in stages]
    c1, c2 = st.columns(2)
    contact = [i for i, s in enumerate(stages) if F.contact_stage_warning([s])]
    lead_stage = c1.selectbox("A lead is a conversation that reached", names, key="funnel_lead_stage",
                              index=contact[0] if contact else 0,
                              help="By default the first stage that captures contact details.")
    try:
        summary = shell.cached(ctx, F.conversion_summary, messages, stages, lead_stage=lead_stage, strict=strict)
        k = st.columns(5)
        # the registry's KPIs (one definition everywhere), on this page's stages and lead stage
        options = kpis.KpiOptions(funnel=tuple(stages), lead_stage=lead_stage, funnel_strict=bool(strict))
        tiles.kpi_tile(ctx, k[0], "lead_count", messages, ctx.rollup, options=options,
                       extra_help="The Overview's business strip shows leads per month from the ROI model.")
        k[1].metric("Converted leads · period", f"{summary.converted_count:,}")
        tiles.kpi_tile(ctx, k[2], "conversion_rate", messages, ctx.rollup, options=options)
        k[3].metric("Value of converted leads · period", num(summary.total_value, "{:,.0f}"))
        k[4].metric("Value per lead · period", num(summary.revenue_per_lead, "{:,.2f}"))
        st.caption("Value sums `conversion_value` over converted leads; a missing value counts as 0.")

        by_stage = shell.cached(ctx, F.conversion_by_stage, messages, stages, strict=strict)
        shell.show_chart(ctx, charts.conversion_by_stage_chart, by_stage)
        st.caption("Conversion rate by the furthest stage reached: does getting further mean converting more?")
        shell.download_csv(by_stage, label="Download conversion by stage (CSV)",
                           file_name="funnel_conversion_by_stage.csv", key="funnel_conv_csv")

        quality_by = [c for c in ("segment", "utm_source", "utm_campaign", "channel", "week") if c in available]
        if quality_by:
            qb = c2.selectbox("Lead quality by", quality_by, key="funnel_quality_by")
            quality = shell.cached(ctx, F.lead_quality, messages, stages, by=qb, lead_stage=lead_stage, strict=strict)
            st.markdown("**Lead quality vs volume**")
            shell.show_chart(ctx, charts.lead_quality_chart, quality)
            st.caption("Right = more leads, up = more of them convert: 500 leads with 10 sales is worse "
                       "than 50 leads with 15.")
            st.dataframe(quality, width="stretch", hide_index=True, key="funnel_quality_table",
                         column_config={
                             **{c: st.column_config.NumberColumn(c.replace("_", " "), format="percent")
                                for c in ("conversion_rate", "share_of_leads", "share_of_conversions")},
                             **{c: st.column_config.NumberColumn(c.replace("_", " "), format="%.2f")
                                for c in ("total_value", "revenue_per_lead", "rate_vs_overall")}})
            shell.download_csv(quality, label="Download lead quality (CSV)", file_name=f"lead_quality_by_{qb}.csv",
                               key="funnel_quality_csv")
    except ChatlensError as exc:
        shell.show_error(exc)
