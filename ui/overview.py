"""The Overview (home) page: the executive dashboard and the operational view.

Executive view: goal-first KPI tiles (value, RAG colour, WoW/MoM deltas marked significant or
not, sparkline), the business-impact strip from the ROI model, and the goals editor.
Operational view: what needs improvement (worst intents, escalation reasons, the funnel's
biggest drop, negative bot messages, low audit topics, the backlog's top items), each linking
to the page that shows it, and the alert-rules editor. Both views show the breached alerts
and the weekly review (Markdown and CSV downloads).

Definitions live in metrics/kpis.py, goals.py, alerts.py, backlog.py and review.py; this
module reads widgets, calls them and renders. Widget keys start with ``overview_``.
"""

from __future__ import annotations

import math
from functools import partial

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from metrics.improve import alerts as alerts_mod
from metrics.improve import goals as goals_mod
from metrics import kpis, store
from metrics.improve import store as goals_store
from metrics.improve.backlog import SOURCE_LABELS, improvement_candidates, rank_backlog
from metrics.errors import ChatlensError, InsufficientDataError
from metrics.io.export import to_csv_bytes
from metrics.overview import dataset_overview
from metrics.improve.review import recent_window, review_frame, review_markdown, weekly_review
from ui import auth, shell, tiles, urlstate
from ui.fmt import harden_markdown, literal

VIEWS = ("Executive", "Operational")
MAX_TILES = 8  # the guide: "stick to 7-10 key metrics on your main dashboard"
EXTRA_TILES = ("escalation_rate", "containment_rate", "csat", "negative_sentiment_rate", "abandonment_rate",
               "total_conversations")
BADGES = {"green": ("On track", "green"), "amber": ("Watch", "orange"), "red": ("Off track", "red"),
          "none": ("No goal", "gray")}
OPS_WINDOWS = {"Latest complete week": 1, "Last 4 weeks": 4, "All selected data": None}
DEFAULT_ROI = "Guide's example costs"
PERIOD_CHOICES = ("Latest week vs the week before", "Latest month vs the month before", "Two date ranges")
#: The page's choices kept in the URL (``?view=``, ``?window=``, ``?compare=``).
URL_CHOICES = (urlstate.Choice("view", "overview_view", VIEWS, label="view"),
               urlstate.Choice("window", "overview_ops_window", tuple(OPS_WINDOWS), default="Last 4 weeks",
                               label="period"),
               urlstate.Choice("compare", "overview_compare_periods", PERIOD_CHOICES, label="comparison"))
GOALS_DRAFT = "overview_goals_draft"
FLASH = "overview_flash"


# --------------------------------------------------------------------------- cached computations

def scored_messages(ctx) -> tuple[pd.DataFrame, str]:
    """The filtered messages with VADER scores (cached in the store), or unscored with the reason."""
    try:
        return shell.scored(ctx), ""
    except ChatlensError as exc:
        return ctx.messages, str(exc)


def audit_scores(db, dataset_id) -> pd.DataFrame | None:
    """Every saved review of the dataset's audit rounds (None when there is none or no audit yet)."""
    try:
        from metrics.audit import store as audit_store

        rounds = audit_store.list_rounds(db, dataset_id)
        frames = [audit_store.load_scores(db, int(rid)) for rid in rounds["id"]]
    except (ImportError, AttributeError, ChatlensError):
        return None
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else None


def current_goals(db) -> tuple[list, bool]:
    """The saved goals, or the guide's suggested starting goals (second value False)."""
    try:
        saved = goals_store.list_goals(db)
    except ChatlensError:
        saved = []
    return (saved, True) if saved else (goals_mod.suggested_goals(), False)


def current_rules(db) -> tuple[list, bool]:
    try:
        frame = goals_store.list_alert_rules(db)
    except ChatlensError:
        frame = pd.DataFrame()
    if len(frame):
        return [r for r, on in zip(frame["parsed"], frame["enabled"]) if on], True
    return alerts_mod.default_rules(), False


def scenario_names(db) -> list[str]:
    """The ROI costs the Overview can use: the guide's example, then the saved scenarios of the ROI page."""
    from metrics.roi import store as roi_store

    try:
        return [DEFAULT_ROI] + roi_store.list_scenarios(db)["name"].astype(str).tolist()
    except ChatlensError:
        return [DEFAULT_ROI]


def roi_base(db):
    """The ROI costs chosen in the sidebar-less selector (saved scenarios), with a label."""
    from metrics.roi import store as roi_store
    from metrics.roi import RoiInputs

    names = scenario_names(db)
    choice = st.session_state.get("overview_roi_scenario", DEFAULT_ROI)
    if choice not in names:
        st.session_state.pop("overview_roi_scenario", None)
        choice = DEFAULT_ROI
    if choice != DEFAULT_ROI and choice in names:
        try:
            return roi_store.load_scenario(db, choice), choice, names
        except ChatlensError:
            pass
    return RoiInputs(), DEFAULT_ROI, names


# --------------------------------------------------------------------------- small rendering helpers

def _short(text, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def link(page: str, label: str, *, params: dict | None = None, icon: str | None = None,
         help: str | None = None) -> None:
    """A page link carrying ``params`` as query parameters (the filter that shows the item). ``label`` and
    ``help`` are plain text (item names from the data): they are escaped here."""
    try:
        st.page_link(page, label=literal(label), icon=icon, query_params=params or None,
                     help=literal(help) if help else None)
    except StreamlitPageNotFoundError:
        st.markdown(f"{literal(label)} ({literal(page)})")


def _fmt(value, kind) -> str:
    """A KPI value in its unit, ready for Markdown (money's ``$`` escaped)."""
    return literal(kpis.format_value(value, kind))


def _evidence(test: str, p, significant: bool, *, short: bool = False) -> str:
    if test == kpis.NOT_TESTED:
        return "untested" if short else "not tested"
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "no test"
    if short:
        return "sig." if significant else "n.s."
    return f"{'significant' if significant else 'not significant'} (p = {p:.3g})"


def _absent(value) -> bool:
    """None, NaN or empty text: a value the tile must describe in words."""
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _change_help(weekly: bool, period, delta, test: str, p, significant: bool, kind: str) -> str:
    what = "Week-over-week" if weekly else "Month-over-month"
    unit = "week" if weekly else "month"
    if _absent(period):
        return f"**{what}:** no complete {unit} in the data yet."
    if _absent(delta):
        return f"**{what}:** {literal(period)}; no {unit} before it to compare with."
    test_name = f" ({literal(test)})" if test != kpis.NOT_TESTED else ""
    return (f"**{what}:** {literal(period)} vs the {unit} before: {literal(kpis.format_delta(delta, kind))}, "
            f"{_evidence(test, p, significant)}{test_name}.")


def tile_help(row, kpi, goal) -> str:
    """The tile's tooltip: Markdown with every value escaped."""
    parts = [f"**Definition:** {literal(kpi.definition)}.", f"**From:** {PROVENANCE_WORDS[kpi.provenance]}.",
             _change_help(True, row.period, row.wow_delta, row.wow_test, row.wow_p_value,
                          row.wow_significant, kpi.kind),
             _change_help(False, row.mom_period, row.mom_delta, row.mom_test, row.mom_p_value,
                          row.mom_significant, kpi.kind)]
    if goal is not None:
        word = "or more" if goal.direction == "higher" else "or less"
        side = "below" if goal.direction == "higher" else "above"
        parts.append(f"**Goal** “{literal(goal.name)}”: target {_fmt(goal.target, kpi.kind)}; green at "
                     f"{_fmt(goal.green, kpi.kind)} {word}, red {side} {_fmt(goal.red, kpi.kind)}.")
    if kpi.vanity:
        parts.append("Volume is activity, not quality.")
    if not _absent(row.period):
        parts.append(f"Units this week: {row.n:,}.")
    if not _absent(row.reason):
        parts.append(literal(row.reason))
    return "\n\n".join(parts)


def render_tile(row, goal=None, *, whole: bool = False) -> None:
    """One KPI tile; ``whole``: the tiles show all the data (it has no timestamps), not the latest week."""
    kpi = kpis.CATALOGUE[row.name]
    # the slice in the label: the latest complete ISO week, or all the data when it has no timestamps (the other
    # pages' tiles show other slices under other labels: one label, one number)
    label = literal(kpi.label) + (" · all data" if whole else " · last week")
    with st.container(border=True):
        text, color = BADGES[row.status if row.available else "none"]
        if goal is None and row.status == "none":
            text = "No goal"
        st.badge(text if row.available else "Unavailable", color=color if row.available else "gray")
        if not row.available:
            st.metric(label, "—", help=literal(_sentence(row.reason)))
            st.caption(literal(_sentence(row.reason)))
            return
        if _absent(row.value):  # measurable on this data, but not in the latest complete week
            st.metric(label, "—", help=tile_help(row, kpi, goal))
            st.caption(literal(_no_value(row, kpi)))
            return
        delta = None if math.isnan(row.wow_delta) else literal(kpis.format_delta(row.wow_delta, kpi.kind))
        colored = bool(row.wow_significant)
        delta_color = ("normal" if kpi.direction == "higher" else "inverse") if colored else "off"
        spark = [v for v in row.sparkline if not (isinstance(v, float) and math.isnan(v))]
        st.metric(label, _fmt(row.value, kpi.kind), delta=delta,
                  delta_color=delta_color,
                  delta_description=f"WoW · {_evidence(row.wow_test, row.wow_p_value, row.wow_significant, short=True)}"
                  if delta else None,
                  help=tile_help(row, kpi, goal), chart_data=spark if len(spark) >= 2 else None, chart_type="line")
        st.caption(tile_caption(row, kpi))


def _sentence(text) -> str:
    """A reason from the metrics layer as a sentence: capital first letter, a full stop."""
    text = "" if _absent(text) else str(text).strip()
    if not text:
        return "Not available on this data."
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def _no_value(row, kpi) -> str:
    if _absent(row.period):
        return ("No complete week in the data yet: the tiles show the latest complete ISO week (Monday to "
                "Sunday), and this data covers less.")
    if kpi.name == "cost_per_outcome":
        return f"No successful outcome in {row.period}, so no cost per outcome."
    return f"No value in {row.period}" + (f": {_sentence(row.reason)}" if not _absent(row.reason) else ".")


#: A KPI's provenance (metrics.kpis.PROVENANCES) in words, on its tile.
PROVENANCE_WORDS = {**tiles.PROVENANCE_WORDS,
                    "mixed": "the data and your assumed costs (ROI page: the scenario chosen above)"}


def tile_caption(row, kpi) -> str:
    """The line under a tile: the week shown and the month-over-month change, in words when one is missing;
    a KPI that mixes in assumed costs says so."""
    line = _period_caption(row, kpi)
    return line + " · uses assumed costs" if kpi.provenance != "data" else line


def _period_caption(row, kpi) -> str:
    if _absent(row.mom_period):
        return f"{literal(row.period)} · no complete month to compare"
    if _absent(row.mom_delta):
        return f"{literal(row.period)} · no month before {literal(row.mom_period)} to compare with"
    mom = literal(kpis.format_delta(row.mom_delta, kpi.kind))
    mom_p = "" if _absent(row.mom_p_value) else f" (p = {row.mom_p_value:.2g})"
    return (f"{literal(row.period)} · MoM {mom} · "
            f"{_evidence(row.mom_test, row.mom_p_value, row.mom_significant, short=True)}{mom_p}")


def tile_metrics(goals, table: pd.DataFrame, *, max_tiles: int = MAX_TILES) -> list[tuple[str, object]]:
    """(metric, goal or None) for the tiles: goals' primary metrics first, then their other
    metrics, then available extra KPIs, at most ``max_tiles``."""
    chosen: list[tuple[str, object]] = []
    seen = set()
    for g in goals:
        if g.metric not in seen:
            chosen.append((g.metric, g))
            seen.add(g.metric)
    for g in goals:
        for m in g.metrics[1:]:
            if m not in seen:
                chosen.append((m, None))
                seen.add(m)
    available = dict(zip(table["name"], table["available"])) if len(table) else {}
    for m in EXTRA_TILES:
        if len(chosen) >= max_tiles:
            break
        if m not in seen and available.get(m, False):
            chosen.append((m, None))
            seen.add(m)
    return chosen[:max_tiles]


# --------------------------------------------------------------------------- sections

def render_alerts(results: list, saved: bool, error: str) -> None:
    if error:
        st.caption(f"Alerts not evaluated: {literal(error)}")
        return
    breached = [r for r in results if r.breached]
    source = "saved rules" if saved else "default rules"
    if breached:
        st.error(f"**Breached alerts** ({literal(results[0].week or '')}, {source}):\n\n"
                 + "\n".join(f"- {literal(r.sentence())}" for r in breached), icon=":material/notifications_active:")
    else:
        st.success(f"No alert breached in {literal(results[0].week) if results else '—'} ({len(results):,} {source} "
                   "evaluated).",
                   icon=":material/notifications:")


def render_executive(ctx, table: pd.DataFrame, goals, saved_goals: bool, options) -> None:
    rows = {r.name: r for r in table.itertuples(index=False)}
    whole = bool(table["period"].astype("str").eq("all").any())
    shown = tile_metrics(goals, table)
    st.subheader("Key metrics" + ("" if saved_goals else " (suggested goals — not saved yet)"))
    for start in range(0, len(shown), 4):
        cols = st.columns(4)
        for col, (metric, goal) in zip(cols, shown[start:start + 4]):
            with col:
                render_tile(rows[metric], goal, whole=whole)
    st.caption("Values are the latest complete ISO week (UTC). Week-over-week deltas are coloured only when "
               "significant (sig.: two-proportion z-test for rates, p < 0.05; n.s.: not significant); scores, counts "
               "and money are not tested. Hover the ? for the p-values and the goal band. Sparklines: the last 12 "
               "complete weeks.")
    render_business_strip(ctx, options)
    render_goals_editor(ctx, goals, saved_goals)


def render_business_strip(ctx, options) -> None:
    from metrics.roi import data_basis, inputs_from_basis

    st.subheader("Business impact (per month)")
    label = st.session_state.get("overview_roi_scenario", DEFAULT_ROI)
    try:
        basis = shell.cached(ctx, data_basis, ctx.messages, ctx.rollup)
        inputs = inputs_from_basis(basis, base=options.roi_base)
    except ChatlensError as exc:
        st.info(f"The ROI model cannot run on this data: {literal(exc)}")
        return
    # no invented value shown as data: without lead events the leads (and the revenue they imply) are the
    # scenario's assumption, so the tiles say what is missing instead
    assumed = {f for f in ("leads_monthly", "value_per_lead", "lead_conversion_rate")
               if "default kept" in str(basis.sources.get(f, "default kept"))}
    # two by two: money values need the width at laptop sizes (a cut "$73,4…" would hide the number)
    cols = [c for _ in range(2) for c in st.columns(2)]
    if "leads_monthly" in assumed:
        cols[0].metric("Leads per month", "no lead data", border=True,
                       help="This data has no lead events (an 'email' event) or conversions: set the leads per "
                            "month on the ROI page.")
        cols[1].metric(literal(tiles.kpi_label("attributed_revenue")), "no lead data", border=True,
                       help="Attributed revenue needs leads: set them on the ROI page.")
    else:
        cols[0].metric("Leads per month", f"{inputs.leads_monthly:,.0f}", border=True,
                       help="Conversations with an e-mail event or a known conversion, per month (ROI model): "
                            "from the data.")
        # the registry's ROI KPIs (the ROI model on the selected data, with the chosen scenario's costs)
        tiles.kpi_tile(ctx, cols[1], "attributed_revenue", ctx.messages, ctx.rollup, options=options, border=True,
                       label_suffix=" · assumed lead value" if assumed else "",
                       extra_help="Per month. " + ("The value per lead and/or the conversion rate are the "
                                                   "scenario's assumptions." if assumed else "Each from the data."))
    tiles.kpi_tile(ctx, cols[2], "automation_savings", ctx.messages, ctx.rollup, options=options, border=True,
                   extra_help="Per month.")
    tiles.kpi_tile(ctx, cols[3], "cost_per_outcome", ctx.messages, ctx.rollup, options=options, border=True)
    st.caption(f"From the ROI model on the selected data: volumes and rates from the data, costs (assumed) from "
               f"“{literal(label)}”" + ("; no lead data, so no leads or revenue are shown." if "leads_monthly" in
                                        assumed else "."))
    link("pages/7_ROI.py", "Open the ROI model to change the costs", icon=":material/payments:")


def _editor_frame(goals) -> pd.DataFrame:
    records = goals_mod.goals_to_records(goals)
    frame = pd.DataFrame(records, columns=list(goals_mod.RECORD_COLUMNS))
    return frame


def render_goals_editor(ctx, goals, saved: bool) -> None:
    with st.expander("Goals: define 3-5, at least one revenue or cost metric", expanded=not saved):
        st.caption("The guide's first step: “Document your top 3-5 goals in writing” and “Include at least one metric "
                   "tied directly to revenue or cost savings.” The band colours the tiles: red beyond the red line, "
                   "green at the green line or better, amber between.")
        draft = st.session_state.get(GOALS_DRAFT)
        base = goals_mod.suggested_goals() if draft == "suggested" else goals
        names = list(kpis.KPI_NAMES)
        edited = st.data_editor(
            _editor_frame(base), key="overview_goals_editor", num_rows="dynamic", hide_index=True, width="stretch",
            column_config={
                "name": st.column_config.TextColumn("Goal", required=True, max_chars=goals_mod.MAX_NAME_LENGTH),
                "bot_type": st.column_config.SelectboxColumn("Bot type", options=list(goals_mod.BOT_TYPES),
                                                             required=True),
                "metric": st.column_config.SelectboxColumn("Primary metric", options=names, required=True),
                "also_track": st.column_config.MultiselectColumn("Also track", options=names),
                "target": st.column_config.NumberColumn("Target", help="rates as 0-1 (0.75 = 75%)"),
                "red": st.column_config.NumberColumn("Red line"),
                "green": st.column_config.NumberColumn("Green line"),
            })
        warnings, problem = [], ""
        try:
            parsed = goals_mod.goals_from_records(edited.to_dict("records"))
            check = goals_mod.check_goals(parsed)
            warnings = list(check.warnings)
        except ChatlensError as exc:
            parsed, check, problem = None, None, str(exc)
        for w in warnings:
            st.warning(literal(w), icon=":material/warning:")
        c1, c2, _ = st.columns([1, 1, 3])
        if c1.button("Save goals", key="overview_goals_save", type="primary") and \
                auth.require_admin("edit goals"):
            if problem:
                st.error(literal(problem))
            elif check is not None and not check.ok:
                for e in check.errors:
                    st.error(literal(e), icon=":material/block:")
            else:
                try:
                    goals_store.save_goals(ctx.db, parsed)
                except ChatlensError as exc:
                    shell.show_error(exc)
                else:
                    st.session_state.pop(GOALS_DRAFT, None)
                    st.session_state.pop("overview_goals_editor", None)   # the saved set is the editor's new base
                    st.session_state[FLASH] = f"Saved {len(parsed)} goals."
                    st.rerun()
        if c2.button("Use suggestions", key="overview_goals_reset"):
            st.session_state[GOALS_DRAFT] = "suggested"
            st.session_state.pop("overview_goals_editor", None)
            st.rerun()
        st.markdown("**Suggested starting bands** (the guide's industry figures):")
        for s in goals_mod.SUGGESTIONS:
            st.caption(f"• **{literal(s.note)}** — {literal(s.source)}")
        st.caption(f"• **alert when {literal(goals_mod.SUGGESTED_ALERT)}** — "
                   f"{literal(goals_mod.SUGGESTED_ALERT_SOURCE)}")


def _section(title: str, body) -> None:
    st.markdown(f"**{literal(title)}**")
    try:
        body()
    except ChatlensError as exc:
        st.caption(f"— {literal(exc)}")


def render_operational(ctx, scored: pd.DataFrame, sentiment_reason: str, ranked, skipped) -> None:
    from metrics import funnel, intents
    from metrics.outcomes import escalation
    from metrics.audit import group_means
    from metrics.sentiment.measures import negative_reactions

    label = st.radio("Period", list(OPS_WINDOWS), horizontal=True, key="overview_ops_window")
    urlstate.sync("overview", URL_CHOICES)
    weeks = OPS_WINDOWS[label]
    if weeks is None:
        m, r, span = scored, ctx.rollup, "the selected data"
    else:
        m, r, span = shell.derive(ctx, "overview_window", recent_window, scored, ctx.rollup, weeks=weeks)
    st.caption(f"What needs improvement, over {literal(span)} ({len(r):,} conversations). "
               "Each item opens the page that shows it.")
    left, right = st.columns(2)

    def worst_intents():
        table = shell.cached(ctx, intents.per_intent_table, m)
        table = table[table["support"].ge(10).to_numpy(bool)].head(5)
        if len(table) == 0:
            st.caption("— no intent with at least 10 labelled messages")
        for row in table.itertuples(index=False):
            link("pages/4_Intents.py", f"{row.intent} — F1 {row.f1:.2f}, recall {row.recall:.0%}, "
                 f"{row.support} labelled", params={"intent": row.intent}, icon=":material/psychology:")

    def reasons():
        table = shell.cached(ctx, escalation.escalation_reasons, m, r).head(5)
        if len(table) == 0:
            st.caption("— no escalation")
        for row in table.itertuples(index=False):
            link("pages/3_Outcomes.py", f"{row.reason} — {row.conversation_count:,} escalations "
                 f"({row.share_rate:.0%})", params={"reason": row.reason}, icon=":material/support_agent:")

    def biggest_drop():
        if "event" not in m.columns:
            st.caption("— the lead funnel needs an 'event' column")
            return
        table = shell.cached(ctx, funnel.funnel_table, m, funnel.DEFAULT_LEAD_FUNNEL)
        body = table.iloc[:-1]
        if len(body) == 0 or body["dropped"].max() == 0:
            st.caption("— no drop-off")
            return
        row = body.loc[body["dropped"].idxmax()]
        link("pages/6_Funnel.py", f"{row['stage']} — {int(row['dropped']):,} of "
             f"{int(row['conversations']):,} stopped here", params={"stage": row["stage"]}, icon=":material/filter_alt:")

    def negative_bot():
        if "compound" not in m.columns:
            st.caption(f"— sentiment not available: {literal(sentiment_reason or 'messages not scored')}")
            return
        table = shell.cached(ctx, negative_reactions, m, min_count=5, top=5)
        if len(table) == 0:
            st.caption("— no bot message with a negative reply")
        for row in table.itertuples(index=False):
            text = _short(row.bot_text, 40)
            link("pages/5_Sentiment.py", f"“{text}” — {row.negative_count} negative replies "
                 f"({row.negative_rate:.0%})", params={"bot_text": row.bot_text[:200]}, icon=":material/mood_bad:")

    def audit_topics():
        scores = audit_scores(ctx.db, ctx.dataset_id)
        if scores is None:
            st.caption("— no audit scores yet: score conversations on the Audit page")
            return
        if "topic" not in ctx.rollup.columns:
            st.caption("— audit topics need a 'topic' column")
            return
        table = group_means(scores, ctx.rollup[["conversation_id", "topic"]], by="topic").head(5)
        for row in table.itertuples(index=False):
            link("pages/8_Audit.py", f"{row.topic} — overall {row.overall:.1f}/5 "
                 f"({row.conversation_count} audited)", params={"topic": row.topic}, icon=":material/rate_review:")

    with left:
        _section("Worst-recognised intents", worst_intents)
        _section("Top escalation reasons", reasons)
        _section("Funnel stage with the biggest drop", biggest_drop)
    with right:
        _section("Bot messages most often answered negatively", negative_bot)
        _section("Lowest-scoring audit topics", audit_topics)
        st.markdown("**Improvement backlog (impact ÷ effort)**")
        if ranked is None or len(ranked) == 0:
            st.caption("— no candidate with enough conversations")
        else:
            for row in ranked.head(3).itertuples(index=False):
                link("pages/9_Improvement.py", f"{_short(row.subject, 40)} — "
                     f"{row.impact_per_week:.1f}/week", icon=":material/autorenew:",
                     help=f"{SOURCE_LABELS[row.source]}: {row.problem}")
    render_rules_editor(ctx)


def render_rules_editor(ctx) -> None:
    rules, saved = current_rules(ctx.db)
    with st.expander("Alert rules" + ("" if saved else " (defaults — not saved yet)")):
        st.caption("One rule per row: METRIC OP THRESHOLD (e.g. intent_accuracy < 80%, escalation_rate > 0.30) or "
                   "volume_spike or topic_growth (a topic of the user messages growing or new). Rules are "
                   "evaluated on the latest complete ISO week.")
        try:
            stored = goals_store.list_alert_rules(ctx.db)
        except ChatlensError:
            stored = pd.DataFrame()
        if len(stored):
            frame = stored[["name", "rule", "min_count", "enabled"]].copy()
        else:
            frame = pd.DataFrame({"name": [""] * len(rules), "rule": [r.text for r in rules],
                                  "min_count": [1] * len(rules), "enabled": [True] * len(rules)})
        edited = st.data_editor(frame, key="overview_rules_editor", num_rows="dynamic", hide_index=True,
                                width="stretch", column_config={
                                    "name": st.column_config.TextColumn("Name"),
                                    "rule": st.column_config.TextColumn("Rule", required=True),
                                    "min_count": st.column_config.NumberColumn("Min units", min_value=1, step=1),
                                    "enabled": st.column_config.CheckboxColumn("On")})
        if st.button("Save alert rules", key="overview_rules_save") and auth.require_admin("edit alert rules"):
            try:
                parsed, flags = [], []
                for i, row in enumerate(edited.to_dict("records"), start=1):
                    text = row.get("rule")
                    if text is None or (isinstance(text, float) and math.isnan(text)) or not str(text).strip():
                        continue
                    count = row.get("min_count")
                    count = 1 if count is None or (isinstance(count, float) and math.isnan(count)) else int(count)
                    name = row.get("name") if isinstance(row.get("name"), str) else ""
                    try:
                        parsed.append(alerts_mod.parse_rule(str(text), name=name, min_count=count))
                    except ChatlensError as exc:
                        raise type(exc)(f"row {i}: {exc}") from None
                    flags.append(bool(row.get("enabled", True)) if row.get("enabled") is not None else True)
                goals_store.save_alert_rules(ctx.db, parsed, enabled=flags)
            except ChatlensError as exc:
                st.error(literal(exc))
            else:
                st.session_state.pop("overview_rules_editor", None)
                st.session_state[FLASH] = f"Saved {len(parsed)} alert rule(s)."
                st.rerun()


def report_html(ctx, scored, goals, rules, options, view: str) -> bytes:
    """The report of the selected data (latest complete week) as one printable HTML page, built on click."""
    from metrics.report import build_report, render_html

    try:
        report = build_report(scored, ctx.rollup, period="last-week", view=view, dataset_name=ctx.dataset_name,
                              goals=goals, rules=rules, options=options,
                              changes=goals_store.list_changes(ctx.db, dataset_id=ctx.dataset_id),
                              backlog_state=goals_store.backlog_state(ctx.db, ctx.dataset_id),
                              backlog_added=goals_store.added_backlog_items(ctx.db, ctx.dataset_id))
        return render_html(report).encode("utf-8")
    except ChatlensError as exc:
        import html

        return (f"<!DOCTYPE html><meta charset='utf-8'><title>Chatlens report</title>"
                f"<p>The report could not be built: {html.escape(str(exc))}</p>").encode("utf-8")


def render_review(ctx, table, ranked, alert_results, goals, *, scored=None, rules=(), options=None,
                  view: str = "Executive") -> None:
    st.subheader("Weekly review")
    review = weekly_review(table, backlog=ranked, alert_results=alert_results, goals=goals)
    markdown = review_markdown(review, dataset_name=ctx.dataset_name)
    with st.container(border=True):
        st.markdown(harden_markdown(review_markdown(review, dataset_name=ctx.dataset_name, level=4)))
    week = review.week or "review"
    c1, c2, c3, _ = st.columns([1, 1, 1, 2])
    c1.download_button("Download Markdown", partial(str.encode, markdown, "utf-8"), file_name=f"weekly-review-{week}.md",
                       mime="text/markdown", key="overview_review_md")
    c2.download_button("Download CSV", partial(to_csv_bytes, review_frame(review)), file_name=f"weekly-review-{week}.csv",
                       mime="text/csv", key="overview_review_csv")
    if scored is not None:
        c3.download_button("Download report", partial(report_html, ctx, scored, goals, rules, options, view.lower()),
                           file_name=f"chatlens-report-{week}.html", mime="text/html", key="overview_report_html",
                           help="The weekly report as one self-contained page: KPI tiles with status and deltas, "
                                "trends, what needs improvement, escalation reasons and the change log. Print it to "
                                "PDF from the browser.")


# --------------------------------------------------------------------------- the page



def render_period_comparison(ctx, scored, options) -> None:
    """Every KPI in two periods side by side, with the delta, the test named per row and its p-value."""
    from metrics.improve import compare

    with st.expander("Compare two periods"):
        choice = st.radio("Periods", PERIOD_CHOICES, horizontal=True, key="overview_compare_periods")
        urlstate.sync("overview", URL_CHOICES)
        if ctx.rollup["started_at"].isna().all():
            st.info("Comparing periods needs timestamps, and this data has none.")
            return
        try:
            if choice == PERIOD_CHOICES[0]:
                current, previous = _pair(compare.latest_period(ctx.rollup, freq="W"))
            elif choice == PERIOD_CHOICES[1]:
                current, previous = _pair(compare.latest_period(ctx.rollup, freq="M"))
            else:
                starts = ctx.rollup["started_at"].dropna()
                first, last = starts.min().date(), starts.max().date()
                c1, c2 = st.columns(2)
                a = c1.date_input("Period A", value=(first, last), min_value=first, max_value=last,
                                  key="overview_compare_a")
                b = c2.date_input("Period B (compared with)", value=(first, first), min_value=first,
                                  max_value=last, key="overview_compare_b")
                if len(a) != 2 or len(b) != 2:
                    st.caption("Pick a start and an end date for both periods.")
                    return
                current = compare.parse_period(f"{a[0]}..{a[1]}", ctx.rollup).current
                previous = compare.parse_period(f"{b[0]}..{b[1]}", ctx.rollup).current
            table = shell.cached(ctx, compare.compare_periods, scored, ctx.rollup, current, previous,
                                 options=options)
        except InsufficientDataError as exc:
            st.info(literal(_sentence(exc)))
            return
        except ChatlensError as exc:
            shell.show_error(exc)
            return
        st.caption(f"A = {literal(current.label)}, B = {literal(previous.label)}. Rates are tested with the "
                   "two-proportion z-test, CSAT with Mann-Whitney U, counts with the exact Poisson rate test; "
                   "money is not tested. Significant at p < 0.05.")
        st.dataframe(comparison_display(table), width="stretch", hide_index=True)
        shell.download_csv(table, label="Download the comparison (CSV)", file_name="chatlens-comparison.csv",
                           key="overview_compare_csv")


def comparison_display(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison as the page shows it: each value in its unit's precision (rates as percents, money in
    cents, scores to two decimals), p-values to three decimals, and what is missing said in words (the CSV
    download keeps the raw numbers)."""
    rows = []
    for r in table.itertuples(index=False):
        missing_why = "" if r.available else _sentence(r.reason)
        rows.append({
            "KPI": r.label,
            "A": kpis.format_value(r.value_a, r.kind) if not _absent(r.value_a) else "no value",
            "B": kpis.format_value(r.value_b, r.kind) if not _absent(r.value_b) else "no value",
            "change": kpis.format_delta(r.delta, r.kind) if not _absent(r.delta) else "—",
            "p-value": f"{r.p_value:.3f}" if not _absent(r.p_value) else "not tested",
            "test": r.test,
            "significant": "yes" if r.significant else "no",
            "units A": f"{r.n_a:,}", "units B": f"{r.n_b:,}",
            "note": missing_why})
    return pd.DataFrame(rows, columns=["KPI", "A", "B", "change", "p-value", "test", "significant", "units A",
                                       "units B", "note"])


def _pair(pair):
    return pair.current, pair.previous


def render(ctx: shell.PageContext) -> None:
    if ctx.dataset_id is None:
        st.info("No dataset is loaded yet. Upload an export on the **Data** page.")
        st.page_link("pages/1_Data.py", label="Go to Data", icon=":material/upload_file:")
        return
    flash = st.session_state.pop(FLASH, None)  # plain text, escaped when shown
    if flash:
        st.success(literal(flash), icon=":material/check_circle:")
    summary = shell.cached(ctx, dataset_overview, ctx.messages, ctx.rollup)
    span = (f" · {literal(summary.first_day)} to {literal(summary.last_day)} (UTC)" if summary.first_day
            else " · no timestamps")
    st.caption(f"Dataset: {literal(ctx.dataset_name)} · {summary.conversation_count:,} conversations · "
               f"{summary.message_count:,} messages{span}")
    if len(ctx.messages) == 0:
        st.info("No conversation matches the filters. Widen them in the sidebar.")
        return

    # the ROI costs are a choice of the link too (?costs=<scenario>), among the scenarios stored now
    choices = URL_CHOICES + (urlstate.Choice("costs", "overview_roi_scenario", tuple(scenario_names(ctx.db)),
                                             default=DEFAULT_ROI, label="ROI costs"),)
    urlstate.bind("overview", choices)
    top = st.columns([3, 3, 2])  # room for "Operational" and a scenario name at laptop widths
    with top[0]:
        view = st.segmented_control("View", VIEWS, key="overview_view") or VIEWS[0]
    base, _, names = roi_base(ctx.db)
    with top[1]:
        st.selectbox("ROI costs from", names, key="overview_roi_scenario",
                     help="Saved scenarios of the ROI page; the volumes always come from the data.")
    urlstate.sync("overview", choices)
    with top[2]:
        st.metric("Conversations", f"{summary.conversation_count:,}",
                  help="Conversations in the selected data (sidebar filters): the size of what is measured, "
                       "not a quality measure.")

    goals, saved_goals = current_goals(ctx.db)
    options = kpis.KpiOptions(roi_base=base)
    scored, sentiment_reason = scored_messages(ctx)
    bands = goals_mod.goal_bands(goals)
    try:
        table = shell.cached(ctx, kpis.kpi_table, scored, ctx.rollup, options=options, bands=bands)
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    rules, saved_rules = current_rules(ctx.db)
    try:
        alert_results = shell.cached(ctx, alerts_mod.evaluate_rules, scored, ctx.rollup, rules, options=options)
        alert_error = ""
    except ChatlensError as exc:
        alert_results, alert_error = [], str(exc)
    audit = audit_scores(ctx.db, ctx.dataset_id)
    try:
        candidates = shell.cached(ctx, improvement_candidates, scored, ctx.rollup, audit_scores=audit, min_count=20,
                                  added=goals_store.added_backlog_items(ctx.db, ctx.dataset_id))
        ranked = rank_backlog(candidates.table, goals_store.backlog_state(ctx.db, ctx.dataset_id))
        skipped = candidates.skipped
    except ChatlensError as exc:
        ranked, skipped = None, (("intent", str(exc)),)

    render_alerts(alert_results, saved_rules, alert_error)
    if view == "Operational":
        render_operational(ctx, scored, sentiment_reason, ranked, skipped)
    else:
        render_executive(ctx, table, goals, saved_goals, options)
    render_period_comparison(ctx, scored, options)
    render_review(ctx, table, ranked, alert_results, goals, scored=scored, rules=rules, options=options, view=view)
