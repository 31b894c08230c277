"""The ROI page's body: cost per outcome, return and sensitivity, with what-ifs, scenarios and shareable links.

Every input is a widget keyed ``roi_<field>`` (rates in percent), seeded from the data
(:func:`metrics.roi.inputs_from_data`) or, on the first load, from the URL's query
parameters. The ROI section is an ``st.fragment`` (:func:`roi_section`): moving a slider reruns
only it, and it mirrors the inputs (and the dataset's id) into ``st.query_params`` so a copied link opens
the same scenario on the same dataset. Everything data-derived is kept per (dataset id, version) in
``roi_slots``: switching datasets loads that dataset's own inputs and never carries another's figures.
"""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from metrics import roi, store
from metrics.roi import charts as roi_charts
from metrics.roi import params as roi_params
from metrics.roi import store as roi_store
from metrics.errors import ChatlensError
from ui import shell
from ui.fmt import by_unit, literal, money

_state = st.session_state
SPECS = {f.name: f for f in roi.FIELDS}
WIDGET = {f.name: f"roi_{f.name}" for f in roi.FIELDS}
#: Shown precision of each input unit: cents for money, tenths for hours and monthly counts (averages).
FORMATS = {"hours/month": "%.1f", "count/month": "%.1f"}
STEPS = {"currency/month": 100.0, "currency": 1.0, "hours/month": 1.0, "currency/hour": 5.0, "count/month": 100.0}
GROUPS = (
    ("Costs", ("platform_cost_monthly", "maintenance_cost_monthly", "training_hours_monthly",
               "training_hourly_rate", "development_cost", "amortization_months")),
    ("Volume & escalation", ("conversations_monthly", "successful_outcomes_monthly", "escalation_rate",
                             "cost_per_escalation", "human_cost_per_ticket")),
    ("Leads", ("leads_monthly", "value_per_lead", "lead_conversion_rate")),
    ("Quality (optional)", ("negative_experience_rate", "quality_cost_per_negative")),
)


def render(ctx: shell.PageContext) -> None:
    st.caption("A monthly cost model: what the bot costs per conversation and per successful outcome, what it "
               "saves against people, and the return on the leads it brings. Move the inputs; the link in your "
               "address bar always holds the current scenario, so you can share it.")
    data_defaults = _seed_inputs(ctx)
    roi_section(data_defaults)
    _scenarios(ctx, data_defaults)


# --------------------------------------------------------------------------- widget <-> model values

def _to_widget(name: str, value: float) -> float:
    """Rates are shown in percent; everything else as is."""
    return round(value * 100, 6) if SPECS[name].is_rate else float(value)


def _from_widget(name: str, value) -> float:
    return round(float(value) / 100, 8) if SPECS[name].is_rate else float(value)


def _inputs_from_state(fallback: roi.RoiInputs) -> roi.RoiInputs:
    values = {n: _from_widget(n, _state[k]) for n, k in WIDGET.items() if k in _state}
    return fallback.replace(**values)


def _put_in_state(inputs: roi.RoiInputs) -> None:
    for name, key in WIDGET.items():
        _state[key] = _to_widget(name, getattr(inputs, name))


def _fmt(name: str, v: float) -> str:
    """An ROI output in its unit (:data:`metrics.roi.OUTPUTS`)."""
    return by_unit(v, roi.OUTPUTS[name][1])


def _output(result: roi.RoiResult, name: str) -> str:
    """``result``'s output ``name`` for a table cell, in words when it cannot be computed."""
    if name == "payback_months" and not result.amortized_development_monthly:
        return "needs a development cost"
    return _fmt(name, getattr(result, name))


# --------------------------------------------------------------------------- defaults from the data

def _slot() -> dict:
    """The state of the active dataset version (see :func:`_seed_inputs`)."""
    return _state["roi_slots"][_state["roi_active_slot"]]


def _load_basis(ctx: shell.PageContext):
    try:
        basis = shell.cached(ctx, roi.data_basis, ctx.messages, ctx.rollup) if not ctx.empty else None
        return basis, (roi.inputs_from_basis(basis) if basis is not None else roi.RoiInputs())
    except ChatlensError as exc:
        shell.show_error(exc)
        return None, roi.RoiInputs()


def _follow_link_dataset(ctx: shell.PageContext) -> None:
    """On the first load, a link naming another stored dataset switches to it (and reruns)."""
    raw = st.query_params.get(roi_params.DATASET_PARAM)
    if raw is None or ctx.dataset_id is None or str(raw) == str(ctx.dataset_id):
        return
    try:
        ids = store.list_datasets(ctx.db)["id"].astype(int).tolist()
    except ChatlensError:
        ids = []
    wanted = int(raw) if str(raw).isdigit() else None
    if wanted in ids:
        _state["active_dataset_id"] = wanted
        st.rerun()
    _state["roi_link_dataset_notice"] = (f"Link parameter {roi_params.DATASET_PARAM!r} = {str(raw)!r} names no "
                                         f"stored dataset; showing {ctx.dataset_name}.")


def _seed_inputs(ctx: shell.PageContext) -> roi.RoiInputs:
    """Put the starting inputs in the widgets' state and return what the data gives (the defaults).

    Everything data-derived lives in ``roi_slots[(dataset id, version)]``: its defaults, the inputs last
    shown for it (what the user typed is kept per dataset version: switching back restores it) and the link's
    notices. The widgets (keys ``roi_<field>``) always show the active slot's inputs: on a switch, they are
    loaded from the new slot, never carried over from the old one.
    """
    slots = _state.setdefault("roi_slots", {})
    slot_key, filters_key = (ctx.dataset_id, ctx.version), repr(sorted(ctx.filters.items()))
    first_load = not _state.get("roi_link_read")
    if first_load:
        _follow_link_dataset(ctx)
    slot = slots.get(slot_key)
    reload_widgets = _state.get("roi_active_slot") != slot_key or any(k not in _state for k in WIDGET.values())
    if slot is None:
        basis, data_defaults = _load_basis(ctx)
        notices = []
        if first_load:  # first load in this session: the link wins; bad values fall back with a notice
            start, notices = roi_params.from_query_params(st.query_params, defaults=data_defaults)
            link_notice = _state.pop("roi_link_dataset_notice", None)
            notices = ([link_notice] if link_notice else []) + notices
        else:  # another dataset (or version) opened in this session: it starts from its own data
            start = data_defaults
        slot = slots[slot_key] = {"basis": basis, "defaults": data_defaults, "filters": filters_key,
                                  "inputs": start, "notices": notices}
        reload_widgets = True
    elif slot["filters"] != filters_key:
        # Other filters on the same data: refresh what the data gives, keep what the user changed.
        old_defaults = slot["defaults"]
        current = _inputs_from_state(slot["inputs"]) if not reload_widgets else slot["inputs"]
        basis, data_defaults = _load_basis(ctx)
        kept = {n: getattr(current, n) for n in WIDGET if getattr(current, n) != getattr(old_defaults, n)}
        slot.update(basis=basis, defaults=data_defaults, filters=filters_key, inputs=data_defaults.replace(**kept))
        reload_widgets = True
    _state["roi_link_read"] = True
    _state["roi_active_slot"] = slot_key
    if reload_widgets:
        _put_in_state(slot["inputs"])
    basis, data_defaults = slot["basis"], slot["defaults"]
    _state["roi_inputs"] = slot["inputs"]

    for notice in slot["notices"]:
        st.warning(literal(notice), icon=":material/link_off:")  # it repeats the link's value
    if ctx.empty:
        st.info("No data loaded: the inputs start from the guide's worked example ($5,000/month, 10,000 "
                "conversations, 100 leads worth $10,000).")
    elif basis is not None:
        with st.expander("Where the starting values come from (the data)"):
            st.caption("Costs are never in the data: they start at the guide's example and are yours to set.")
            st.dataframe(pd.DataFrame({"input": [SPECS[k].label for k in basis.sources],
                                       "starting value": [f"{getattr(data_defaults, k):.1%}" if SPECS[k].is_rate
                                                          else f"{getattr(data_defaults, k):,.2f}"
                                                          for k in basis.sources],
                                       "derived from": list(basis.sources.values())}),
                         hide_index=True, width="stretch")
    return data_defaults


# --------------------------------------------------------------------------- callbacks

@shell.guarded
def _apply_what_if(name: str, data_defaults: roi.RoiInputs) -> None:
    _put_in_state(roi.what_if(_inputs_from_state(data_defaults), name))


@shell.guarded
def _reset_to_data(data_defaults: roi.RoiInputs) -> None:
    _put_in_state(data_defaults)
    _slot()["notices"] = []


# --------------------------------------------------------------------------- the ROI section

def _input_widget(name: str) -> None:
    spec, key = SPECS[name], WIDGET[name]
    if spec.is_rate:
        st.slider(f"{literal(spec.label)} (%)", 0.0, 100.0, step=0.1, format="%.1f%%", key=key,
                  help=literal(spec.help))
    elif name == "amortization_months":
        # 12-24 months as the guide suggests, widened (never narrowed: a new range would reset the
        # slider) when a link or a scenario brings a value outside it
        slot = _slot()
        lo, hi = slot.get("amortization_range", (12.0, 24.0))
        lo, hi = min(lo, _state[key]), max(hi, _state[key])
        slot["amortization_range"] = (lo, hi)
        st.slider(f"{literal(spec.label)} (months)", lo, hi, step=1.0, format="%.0f", key=key,
                  help=literal(spec.help))
    else:
        st.number_input(f"{literal(spec.label)} ({literal(spec.unit.replace('currency', '$'))})",
                        min_value=spec.minimum, max_value=spec.maximum, step=STEPS.get(spec.unit, 1.0),
                        format=FORMATS.get(spec.unit, "%.2f"), key=key, help=literal(spec.help))


def _render_outputs(result: roi.RoiResult) -> None:
    rows = (("total_monthly_cost", "cost_per_conversation", "cost_per_outcome", "human_cost_ratio",
             "automation_savings"),
            ("pipeline_value", "attributed_revenue", "return_multiple", "net_roi", "break_even_conversion_rate"),
            ("break_even_leads", "break_even_conversations", "payback_months", "human_cost_per_outcome"))
    for names in rows:
        cols = st.columns(5)
        for col, name in zip(cols, names):
            label, _, formula = roi.OUTPUTS[name]
            if name == "payback_months" and not result.amortized_development_monthly:
                col.metric(label, "—", help="Payback needs a development cost: enter the one-off development cost "
                                            "under Costs.")
                continue
            col.metric(label, _fmt(name, getattr(result, name)), help=f"= {formula}")
    for note in result.notes:
        st.caption(f":material/info: {literal(note)}")
    if not result.amortized_development_monthly:
        st.caption(":material/info: Payback needs a development cost: enter the one-off development cost under "
                   "Costs to see how many months the bot takes to earn it back.")
    with st.expander("Formulas, with this scenario's numbers"):
        st.dataframe(pd.DataFrame({"output": [v[0] for v in roi.OUTPUTS.values()],
                                   "value": [_output(result, n) for n in roi.OUTPUTS],
                                   "formula": [v[2] for v in roi.OUTPUTS.values()]}),
                     hide_index=True, width="stretch")
        st.markdown("Parts of the total: "  # literal(): a pair of $ amounts would read as LaTeX
                    f"training {literal(money(result.training_cost_monthly, 0))}, amortised development "
                    f"{literal(money(result.amortized_development_monthly, 0))}, escalation handling "
                    f"{literal(money(result.escalation_cost_monthly, 0))} ({result.escalated_conversations:,.0f} "
                    f"escalated conversations), quality cost {literal(money(result.quality_cost_monthly, 0))}. "
                    "Zero denominators (no conversations, no outcomes, no cost) show **—**.")
        st.caption("The quality cost is optional: it prices the brand damage of a bad conversation so that "
                   "poor experiences are not free in the model.")


def _render_what_ifs(inputs: roi.RoiInputs, result: roi.RoiResult, data_defaults: roi.RoiInputs) -> None:
    st.subheader("What if…")
    cols = st.columns(len(roi.WHAT_IFS) + 1)
    for col, (name, label) in zip(cols, roi.WHAT_IFS.items()):
        col.button(literal(label), key=f"roi_whatif_{name}", on_click=_apply_what_if, args=(name, data_defaults),
                   width="stretch")
    cols[-1].button("Reset to the data", key="roi_reset", on_click=_reset_to_data, args=(data_defaults,),
                    width="stretch")
    shown = ("total_monthly_cost", "cost_per_outcome", "attributed_revenue", "return_multiple", "net_roi")
    rows = [("Current", result)] + [(label, roi.compute_roi(roi.what_if(inputs, name)))
                                    for name, label in roi.WHAT_IFS.items()]
    st.dataframe(pd.DataFrame([{"scenario": label, **{roi.OUTPUTS[n][0]: _fmt(n, getattr(r, n)) for n in shown}}
                               for label, r in rows]), hide_index=True, width="stretch")
    st.caption("Clicking a what-if applies it to the inputs above (points are percentage points; "
               "'volume doubles' doubles conversations, successful outcomes and leads).")


def _render_sensitivity(inputs: roi.RoiInputs) -> None:
    st.subheader("Sensitivity")
    swing = st.slider("Swing of each input (±%)", 5, 50, 20, step=5, key="roi_swing") / 100
    frame = roi.tornado(inputs, swing=swing)
    st.caption(f"Each bar moves one input by ±{swing:.0%} with the others fixed; the longest bars are the "
               "inputs worth getting right.")
    left, right = st.columns(2)
    for col, target in zip((left, right), ("net_roi", "cost_per_outcome")):
        with col:  # the chart's own title names the output (and goes with an exported PNG)
            chart = roi_charts.tornado_chart(frame, target=target, swing=swing)
            st.vega_lite_chart(roi_charts.fast_spec(chart), width="stretch", key=f"roi_tornado_{target}")
    shell.download_csv(frame, label="Download the tornado numbers (CSV)", file_name="roi_tornado.csv",
                       key="roi_tornado_csv")

    target = st.selectbox("Two-way table of", ("net_roi", "return_multiple", "attributed_revenue",
                                               "cost_per_outcome"),
                          format_func=lambda n: roi.OUTPUTS[n][0], key="roi_two_way_target")
    rates, volumes = roi.grid_around(inputs)
    table = roi.two_way_table(inputs, conversion_rates=rates, volumes=volumes, target=target)
    st.caption("Conversion rate (columns) × conversations per month (rows; successful outcomes and leads "
               "scale with them).")
    st.vega_lite_chart(roi_charts.fast_spec(roi_charts.two_way_heatmap(table, target=target)), width="stretch",
                       key="roi_heatmap")
    shown = table.map(lambda v: _fmt(target, v))
    shown.index = [f"{v:,.0f} conv." for v in table.index]
    shown.columns = [f"{r:.1%}" for r in table.columns]
    st.dataframe(shown, width="stretch")
    shell.download_csv(table.reset_index(), label="Download the two-way table (CSV)", file_name="roi_two_way.csv",
                       key="roi_two_way_csv")


@st.fragment
@shell.guarded  # a fragment rerun runs this alone, outside the page's guard
def roi_section(data_defaults: roi.RoiInputs) -> None:
    started, started_cpu = time.perf_counter(), time.thread_time()
    for (title, names), col in zip(GROUPS, st.columns(len(GROUPS))):
        with col:
            st.markdown(f"**{literal(title)}**")
            for name in names:
                _input_widget(name)
    try:
        inputs = _inputs_from_state(data_defaults)
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    _state["roi_inputs"] = _slot()["inputs"] = inputs
    wanted = roi_params.to_query_params(inputs, dataset_id=_state["roi_active_slot"][0])
    changed = {k: v for k, v in wanted.items() if st.query_params.get(k) != v}
    if changed:
        st.query_params.update(changed)
    result = roi.compute_roi(inputs)
    st.divider()
    _render_outputs(result)
    _render_what_ifs(inputs, result, data_defaults)
    _render_sensitivity(inputs)
    _state["roi_section_seconds"] = time.perf_counter() - started
    _state["roi_section_cpu_seconds"] = time.thread_time() - started_cpu  # unaffected by other processes
    # the timings are for the benchmark (tests/benchmarks/benchmark_pages.py), never shown on the page


# --------------------------------------------------------------------------- scenarios

@shell.guarded
def _save_current(data_defaults: roi.RoiInputs, db, dataset_id) -> None:
    name = _state.get("roi_scenario_name", "")
    try:
        saved = roi_store.save_scenario(db, name, _inputs_from_state(data_defaults), dataset_id=dataset_id)
        _state["roi_flash"] = ("success", f"Saved scenario '{saved}'.")
    except ChatlensError as exc:
        _state["roi_flash"] = ("error", str(exc))


@shell.guarded
def _load_picked(db) -> None:
    name = _state.get("roi_scenario_pick")
    try:
        _put_in_state(roi_store.load_scenario(db, name))
        _state["roi_flash"] = ("success", f"Loaded scenario '{name}'.")
    except ChatlensError as exc:
        _state["roi_flash"] = ("error", str(exc))


@shell.guarded
def _delete_picked(db) -> None:
    name = _state.get("roi_scenario_pick")
    try:
        roi_store.delete_scenario(db, name)
        _state["roi_flash"] = ("success", f"Deleted scenario '{name}'.")
    except ChatlensError as exc:
        _state["roi_flash"] = ("error", str(exc))


def _scenarios(ctx: shell.PageContext, data_defaults: roi.RoiInputs) -> None:
    st.divider()
    st.subheader("Scenarios")
    flash = _state.pop("roi_flash", None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(literal(flash[1]))  # plain text, escaped here
    try:
        saved = roi_store.list_scenarios(ctx.db)
    except ChatlensError as exc:
        shell.show_error(exc)
        saved = pd.DataFrame({"name": []})
    left, right = st.columns(2)
    with left:
        st.text_input("Scenario name", key="roi_scenario_name", max_chars=roi_store.MAX_NAME_LENGTH,
                      placeholder="e.g. Q3 plan, conversion +5")
        st.button("Save the current inputs", key="roi_save", on_click=_save_current,
                  args=(data_defaults, ctx.db, ctx.dataset_id))
    with right:
        names = saved["name"].tolist()
        if names:
            st.selectbox("Saved scenarios", names, key="roi_scenario_pick")
            b1, b2 = st.columns(2)
            b1.button("Load", key="roi_load", on_click=_load_picked, args=(ctx.db,), width="stretch")
            b2.button("Delete", key="roi_delete", on_click=_delete_picked, args=(ctx.db,), width="stretch")
        else:
            st.caption("No saved scenario yet.")

    if len(names) < 2:
        return
    chosen = st.multiselect("Compare side by side (2–4)", names, max_selections=4, key="roi_compare")
    if len(chosen) < 2:
        st.caption("Pick two to four scenarios to compare them.")
        return
    try:
        table = roi.compare_scenarios(roi_store.load_scenarios(ctx.db, chosen))
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    shown = table.copy()
    for name in chosen:
        shown[name] = [_fmt(n, v) if k == "output" else roi_params.format_number(v)
                       for k, n, v in zip(table["kind"], table["name"], table[name])]
    st.dataframe(shown.drop(columns=["name"]), hide_index=True, width="stretch")
    shell.download_csv(table, label="Download the comparison (CSV)", file_name="roi_scenarios.csv",
                       key="roi_compare_csv")
