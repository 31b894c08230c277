"""Cost per outcome and ROI (metrics.roi, metrics.roi.charts, metrics.roi.cli)."""

from __future__ import annotations

import argparse
import json
import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import messages_frame
from metrics import roi
from metrics.roi import cli as cli_roi
from metrics.roi import charts as roi_charts
from metrics.errors import ConfigError
from metrics.core.rollup import conversation_rollup
from metrics.roi import RoiInputs, compute_roi

# The guide's numbers with every other cost at zero, so the total is exactly the $5,000.
SEED = RoiInputs(platform_cost_monthly=5000, maintenance_cost_monthly=0, training_hours_monthly=0,
                 development_cost=0, escalation_rate=0, quality_cost_per_negative=0,
                 conversations_monthly=10000, successful_outcomes_monthly=2500, human_cost_per_ticket=15,
                 leads_monthly=100, value_per_lead=10000, lead_conversion_rate=0.10)


# --------------------------------------------------------------------------- the guide's examples

def test_seed_leads_example_exact():
    # $5,000/month, 100 leads x $10,000 = $1,000,000 pipeline; 10% -> $100,000; 100,000 / 5,000 = 20x.
    r = compute_roi(SEED)
    assert r.total_monthly_cost == 5000.0
    assert r.pipeline_value == 1_000_000.0
    assert r.attributed_revenue == 100_000.0
    assert r.return_multiple == 20.0
    assert r.net_roi == 19.0  # (100,000 - 5,000) / 5,000


def test_seed_support_example_exact():
    # 10,000 conversations at $5,000 -> $0.50; 2,500 successful -> $2.00; $15 / $2 = 7.5x cheaper.
    r = compute_roi(SEED)
    assert r.cost_per_conversation == 0.5
    assert r.cost_per_outcome == 2.0
    assert r.human_cost_per_outcome == 15.0
    assert r.human_cost_ratio == 7.5


def test_defaults_are_the_seed_example():
    assert RoiInputs() == SEED


def test_escalation_cost_is_ignored_when_rate_is_zero_and_counted_otherwise():
    # A cost per escalation without escalations adds nothing; 10% of 10,000 x $15 adds $15,000.
    assert compute_roi(SEED.replace(cost_per_escalation=99)).total_monthly_cost == 5000.0
    assert compute_roi(SEED.replace(escalation_rate=0.1)).total_monthly_cost == 20000.0


# --------------------------------------------------------------------------- hand-computed cases

def test_hand_computed_with_amortisation_escalation_training_and_quality():
    inputs = RoiInputs(platform_cost_monthly=3000, maintenance_cost_monthly=500, training_hours_monthly=10,
                       training_hourly_rate=40, development_cost=36000, amortization_months=12,
                       conversations_monthly=4000, successful_outcomes_monthly=2000, escalation_rate=0.25,
                       cost_per_escalation=8, human_cost_per_ticket=25, leads_monthly=50, value_per_lead=4000,
                       lead_conversion_rate=0.2, negative_experience_rate=0.05, quality_cost_per_negative=2)
    r = compute_roi(inputs)
    # training 10 h x $40 = 400; development 36,000 / 12 = 3,000 per month
    assert r.training_cost_monthly == 400.0
    assert r.amortized_development_monthly == 3000.0
    # fixed = 3,000 + 500 + 400 + 3,000 = 6,900
    assert r.fixed_monthly_cost == 6900.0
    # escalated 4,000 x 0.25 = 1,000 x $8 = 8,000; negative 4,000 x 0.05 = 200 x $2 = 400
    assert r.escalated_conversations == 1000.0 and r.contained_conversations == 3000.0
    assert r.escalation_cost_monthly == 8000.0
    assert r.quality_cost_monthly == pytest.approx(400.0)
    # total = 6,900 + 8,000 + 400 = 15,300
    assert r.total_monthly_cost == pytest.approx(15300.0)
    assert r.cost_per_conversation == pytest.approx(15300 / 4000)  # 3.825
    assert r.cost_per_outcome == pytest.approx(7.65)  # 15,300 / 2,000
    assert r.human_cost_ratio == pytest.approx(25 / 7.65)  # 3.268x
    assert r.automation_savings == pytest.approx(3000 * 25 - 15300)  # 59,700
    assert r.pipeline_value == 200_000.0 and r.attributed_revenue == 40_000.0
    assert r.return_multiple == pytest.approx(40000 / 15300)
    assert r.net_roi == pytest.approx(24700 / 15300)
    assert r.break_even_conversion_rate == pytest.approx(0.0765)  # 15,300 / 200,000
    assert r.break_even_leads == pytest.approx(19.125)  # 15,300 / (4,000 x 0.2)
    # per conversation: revenue 50/4,000 x 4,000 x 0.2 = 10, variable 0.25 x 8 + 0.05 x 2 = 2.1
    assert r.break_even_conversations == pytest.approx(6900 / 7.9)
    # payback: 36,000 / (40,000 - (15,300 - 3,000)) = 36,000 / 27,700
    assert r.payback_months == pytest.approx(36000 / 27700)
    assert r.notes == ()


def test_longer_amortisation_lowers_the_monthly_cost():
    # 36,000 over 18 months = 2,000/month; over 24 months = 1,500/month.
    a = compute_roi(SEED.replace(development_cost=36000, amortization_months=18))
    b = compute_roi(SEED.replace(development_cost=36000, amortization_months=24))
    assert a.total_monthly_cost == 7000.0 and b.total_monthly_cost == 6500.0


def test_break_even_volume_and_payback_hand_computed_and_undefined():
    # revenue per conversation 100/10,000 x 10,000 x 0.1 = 10; variable 0.5 x 15 = 7.5 -> margin 2.5
    # fixed 5,000 + 1,000/18 = 5,055.56 -> break-even volume 5,055.56 / 2.5 = 2,022.2 conversations
    r = compute_roi(SEED.replace(escalation_rate=0.5, development_cost=1000))
    assert r.break_even_conversations == pytest.approx((5000 + 1000 / 18) / 2.5)
    # monthly gain = 100,000 - (5,000 + 75,000) = 20,000 > 0 -> payback 1,000 / 20,000 months
    assert r.payback_months == pytest.approx(0.05)
    # variable 0.8 x 15 = 12 > 10 per conversation: volume never breaks even;
    # gain 100,000 - (5,000 + 120,000) < 0: development never pays back
    never = compute_roi(SEED.replace(escalation_rate=0.8, development_cost=1000))
    assert math.isnan(never.break_even_conversations) and math.isnan(never.payback_months)
    losing = compute_roi(SEED.replace(lead_conversion_rate=0.0, development_cost=1000))
    assert math.isnan(losing.payback_months)
    assert losing.net_roi == -1.0  # (0 - cost) / cost


# --------------------------------------------------------------------------- zero denominators

def test_no_conversations_gives_nan_per_conversation_and_per_outcome():
    r = compute_roi(SEED.replace(conversations_monthly=0, successful_outcomes_monthly=0))
    assert math.isnan(r.cost_per_conversation) and math.isnan(r.cost_per_outcome)
    assert math.isnan(r.human_cost_ratio) and math.isnan(r.break_even_conversations)
    assert r.automation_savings == -5000.0  # nothing contained, the bot still costs 5,000
    assert any("No conversations" in n for n in r.notes)


def test_zero_cost_gives_nan_multiple_and_roi():
    r = compute_roi(SEED.replace(platform_cost_monthly=0))
    assert r.total_monthly_cost == 0.0
    assert math.isnan(r.return_multiple) and math.isnan(r.net_roi)
    assert r.cost_per_outcome == 0.0 and math.isnan(r.human_cost_ratio)


def test_no_pipeline_gives_nan_break_even_rate():
    r = compute_roi(SEED.replace(leads_monthly=0))
    assert math.isnan(r.break_even_conversion_rate) and r.attributed_revenue == 0.0


def test_unreachable_break_even_is_noted():
    r = compute_roi(SEED.replace(leads_monthly=1, value_per_lead=100))  # 5,000 / 100 = 50 (5,000%)
    assert r.break_even_conversion_rate == 50.0
    assert any("above 100%" in n for n in r.notes)


def test_overflowing_quotient_is_nan_not_inf():
    r = compute_roi(SEED.replace(successful_outcomes_monthly=1e-310, conversations_monthly=1e-310))
    assert math.isnan(r.cost_per_outcome) and math.isnan(r.cost_per_conversation)
    json.dumps(r.as_dict(json_safe=True), allow_nan=False)


def test_json_safe_dict_turns_nan_into_none():
    d = compute_roi(SEED.replace(conversations_monthly=0)).as_dict(json_safe=True)
    assert d["cost_per_conversation"] is None
    json.dumps(d, allow_nan=False)


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("field, value", [
    ("lead_conversion_rate", 1.5), ("escalation_rate", -0.1), ("platform_cost_monthly", -1),
    ("amortization_months", 0), ("conversations_monthly", float("nan")), ("value_per_lead", float("inf")),
    ("leads_monthly", "100"), ("development_cost", True),
])
def test_bad_values_raise_config_error_repeating_the_value(field, value):
    with pytest.raises(ConfigError) as err:
        RoiInputs(**{field: value})
    assert field in str(err.value) and repr(value) in str(err.value)


def test_replace_rejects_unknown_field():
    with pytest.raises(ConfigError, match="colour"):
        RoiInputs().replace(colour=1)


def test_fields_match_the_dataclass_defaults():
    for spec in roi.FIELDS:
        assert getattr(RoiInputs(), spec.name) == spec.default
        assert spec.minimum <= spec.default <= spec.maximum


# --------------------------------------------------------------------------- what-ifs

def test_what_if_conversion_plus_5_points():
    out = roi.what_if(SEED, "conversion_plus_5")
    assert out.lead_conversion_rate == 0.15
    assert compute_roi(out).attributed_revenue == 150_000.0  # 1,000,000 x 0.15
    assert roi.what_if(SEED.replace(lead_conversion_rate=0.98), "conversion_plus_5").lead_conversion_rate == 1.0


def test_what_if_volume_doubles():
    out = roi.what_if(SEED, "volume_doubles")
    assert (out.conversations_monthly, out.successful_outcomes_monthly, out.leads_monthly) == (20000, 5000, 200)
    r = compute_roi(out)
    # fixed $5,000 over twice the volume: $0.25 per conversation, $1 per outcome, revenue 200,000 -> 40x
    assert r.cost_per_conversation == 0.25 and r.cost_per_outcome == 1.0 and r.return_multiple == 40.0


def test_what_if_escalation_minus_10_points():
    base = SEED.replace(escalation_rate=0.3)  # 3,000 escalations x $15 = 45,000 + 5,000
    out = roi.what_if(base, "escalation_minus_10")
    assert out.escalation_rate == 0.2
    assert compute_roi(base).total_monthly_cost == 50000.0
    assert compute_roi(out).total_monthly_cost == 35000.0  # 2,000 x 15 + 5,000
    assert roi.what_if(SEED.replace(escalation_rate=0.04), "escalation_minus_10").escalation_rate == 0.0


def test_unknown_what_if():
    with pytest.raises(ConfigError, match="'triple'"):
        roi.what_if(SEED, "triple")


# --------------------------------------------------------------------------- sensitivity

def test_tornado_columns_order_and_values():
    t = roi.tornado(SEED, swing=0.2)
    assert list(t.columns) == ["target", "input", "label", "base_value", "low_value", "high_value", "base_result",
                               "low_result", "high_result", "low_delta", "high_delta", "span"]
    assert t["target"].unique().tolist() == ["net_roi", "cost_per_outcome"]
    net = t[t["target"] == "net_roi"]
    # platform cost 4,000 -> ROI 24; 6,000 -> 15.67: span 8.33, the largest
    assert net.iloc[0]["input"] == "platform_cost_monthly"
    assert net.iloc[0]["low_result"] == 24.0 and net.iloc[0]["high_result"] == pytest.approx((100000 - 6000) / 6000)
    # leads, value per lead and conversion rate tie at span 8 (15 .. 23); ties by name
    assert net.iloc[1:4]["input"].tolist() == ["lead_conversion_rate", "leads_monthly", "value_per_lead"]
    assert net.iloc[1]["span"] == pytest.approx(8.0)
    assert (net["span"].diff().dropna() <= 1e-9).all()


def test_tornado_clips_rates_and_keeps_zero_inputs():
    t = roi.tornado(SEED.replace(lead_conversion_rate=0.9), swing=0.5, targets="net_roi")
    row = t.set_index("input").loc["lead_conversion_rate"]
    assert row["low_value"] == 0.45 and row["high_value"] == 1.0  # 1.35 clipped to 1
    assert t.set_index("input").loc["maintenance_cost_monthly", "span"] == 0.0


@pytest.mark.parametrize("kwargs", [{"swing": 0}, {"swing": 1.5}, {"targets": ("profit",)}, {"names": ["x"]}])
def test_tornado_bad_options(kwargs):
    with pytest.raises(ConfigError):
        roi.tornado(SEED, **kwargs)


def test_two_way_table_hand_computed():
    t = roi.two_way_table(SEED, conversion_rates=[0.05, 0.1], volumes=[5000, 10000, 20000])
    assert t.index.name == "conversations_monthly" and t.columns.name == "lead_conversion_rate"
    # leads scale with volume: 50 / 100 / 200 leads x 10,000 x rate, cost fixed at 5,000
    assert t.loc[5000.0].tolist() == [(25000 - 5000) / 5000, (50000 - 5000) / 5000]
    assert t.loc[20000.0].tolist() == [(100000 - 5000) / 5000, (200000 - 5000) / 5000]
    cpo = roi.two_way_table(SEED, conversion_rates=[0.1], volumes=[5000], target="cost_per_outcome")
    assert cpo.iloc[0, 0] == 4.0  # 5,000 / 1,250 outcomes


def test_two_way_table_rejects_bad_grid():
    with pytest.raises(ConfigError, match="1.2"):
        roi.two_way_table(SEED, conversion_rates=[1.2], volumes=[1])
    with pytest.raises(ConfigError):
        roi.two_way_table(SEED, conversion_rates=[], volumes=[1])


def test_grid_around_and_compare():
    rates, volumes = roi.grid_around(SEED.replace(lead_conversion_rate=0.03))
    assert rates == [0.0, 0.03, 0.08, 0.13]  # -10 and -5 points both clip to 0
    assert volumes == [5000.0, 10000.0, 15000.0, 20000.0]
    c = roi.compare_scenarios({"a": SEED, "b": roi.what_if(SEED, "volume_doubles")})
    assert list(c.columns) == ["kind", "name", "label", "a", "b"]
    out = c.set_index("name")
    assert out.loc["return_multiple", "a"] == 20.0 and out.loc["return_multiple", "b"] == 40.0
    assert out.loc["conversations_monthly", "b"] == 20000.0
    with pytest.raises(ConfigError):
        roi.compare_scenarios({})


# --------------------------------------------------------------------------- property tests

_money = st.floats(0, 1e6, allow_nan=False)
_rate = st.floats(0, 1, allow_nan=False)
# realistic volumes: none, or at least 0.01 a month (a subnormal count would overflow the quotients;
# that case has its own test below)
_count = st.one_of(st.just(0.0), st.floats(0.01, 1e6))
inputs_strategy = st.builds(
    RoiInputs, platform_cost_monthly=_money, maintenance_cost_monthly=_money,
    training_hours_monthly=st.floats(0, 1000), training_hourly_rate=st.floats(0, 500),
    development_cost=_money, amortization_months=st.floats(1, 120), conversations_monthly=_count,
    successful_outcomes_monthly=_count, escalation_rate=_rate, cost_per_escalation=st.floats(0, 1000),
    human_cost_per_ticket=st.floats(0, 1000), leads_monthly=_count, value_per_lead=_money,
    lead_conversion_rate=_rate, negative_experience_rate=_rate, quality_cost_per_negative=st.floats(0, 1000))

COST_FIELDS = ("platform_cost_monthly", "maintenance_cost_monthly", "training_hours_monthly",
               "training_hourly_rate", "development_cost", "cost_per_escalation", "quality_cost_per_negative")


@settings(max_examples=150, deadline=None)
@given(inputs_strategy, st.sampled_from(COST_FIELDS), st.floats(0, 1e5))
def test_cost_per_outcome_never_falls_when_a_cost_rises(inputs, name, extra):
    spec = {f.name: f for f in roi.FIELDS}[name]
    raised = inputs.replace(**{name: min(spec.maximum, getattr(inputs, name) + extra)})
    before, after = compute_roi(inputs), compute_roi(raised)
    assert after.total_monthly_cost >= before.total_monthly_cost
    if inputs.successful_outcomes_monthly > 0:
        assert after.cost_per_outcome >= before.cost_per_outcome
    else:
        assert math.isnan(after.cost_per_outcome)


@settings(max_examples=100, deadline=None)
@given(inputs_strategy, st.floats(1, 120))
def test_shorter_amortisation_never_lowers_cost_per_outcome(inputs, months):
    shorter = inputs.replace(amortization_months=min(months, inputs.amortization_months))
    a, b = compute_roi(inputs), compute_roi(shorter)
    assert b.total_monthly_cost >= a.total_monthly_cost
    if inputs.successful_outcomes_monthly > 0:
        assert b.cost_per_outcome >= a.cost_per_outcome


@settings(max_examples=150, deadline=None)
@given(inputs_strategy, _rate, _rate)
def test_roi_is_monotone_in_conversion_rate(inputs, r1, r2):
    lo, hi = sorted((r1, r2))
    a, b = compute_roi(inputs.replace(lead_conversion_rate=lo)), compute_roi(inputs.replace(lead_conversion_rate=hi))
    assert b.attributed_revenue >= a.attributed_revenue
    if a.total_monthly_cost > 0:
        assert b.net_roi >= a.net_roi and b.return_multiple >= a.return_multiple
    else:
        assert math.isnan(a.net_roi) and math.isnan(b.net_roi)


@settings(max_examples=60, deadline=None)
@given(inputs_strategy, st.floats(0.05, 0.5))
def test_tornado_sanity(inputs, swing):
    t = roi.tornado(inputs, swing=swing)
    for target, group in t.groupby("target", sort=False):
        spans = group["span"].round(9)
        finite = spans.dropna()
        # tornado order: spans descending, undefined spans last
        assert finite.is_monotonic_decreasing
        assert spans.isna().sum() == 0 or spans.iloc[-spans.isna().sum():].isna().all()
        assert ((group["span"] - (group["high_result"] - group["low_result"]).abs()).abs().fillna(0) < 1e-6).all()
    net = t[(t["target"] == "net_roi") & (t["input"] == "platform_cost_monthly")].iloc[0]
    cpo = t[(t["target"] == "cost_per_outcome") & (t["input"] == "platform_cost_monthly")].iloc[0]
    if inputs.platform_cost_monthly > 0 and inputs.successful_outcomes_monthly > 0:
        # cost per outcome is linear in the platform cost: the two bars are mirror images
        assert cpo["low_delta"] == pytest.approx(-cpo["high_delta"], rel=1e-6, abs=1e-9)
        assert cpo["low_delta"] <= 0 <= cpo["high_delta"]
    if inputs.platform_cost_monthly > 0 and net["base_result"] == net["base_result"]:
        # more cost, less ROI
        assert net["high_delta"] <= 1e-12 and net["low_delta"] >= -1e-12


@settings(max_examples=100, deadline=None)
@given(inputs_strategy)
def test_outputs_defined_or_nan_and_total_is_the_sum(inputs):
    r = compute_roi(inputs)
    assert r.total_monthly_cost == pytest.approx(
        r.fixed_monthly_cost + r.escalation_cost_monthly + r.quality_cost_monthly)
    assert r.contained_conversations + r.escalated_conversations == pytest.approx(inputs.conversations_monthly)
    json.dumps(r.as_dict(json_safe=True), allow_nan=False)


# --------------------------------------------------------------------------- from the data

def _rows():
    # four conversations spanning exactly 60.875 days = 2.0 months of 30.4375 days
    return [
        # c1: explicit resolved, email given, converted for 1,000, rated 5
        dict(conversation_id="c1", speaker="user", text="I need a quote", timestamp="2024-01-01T00:00:00Z",
             event=None, outcome="resolved", converted=True, conversion_value=1000.0, rating=5.0),
        dict(conversation_id="c1", speaker="user", text="me@example.com", timestamp="2024-01-01T00:01:00Z",
             event="email", outcome="resolved", converted=True, conversion_value=1000.0, rating=5.0),
        dict(conversation_id="c1", speaker="bot", text="Thanks!", timestamp="2024-01-01T00:02:00Z",
             event=None, outcome="resolved", converted=True, conversion_value=1000.0, rating=5.0),
        # c2: an agent took over; did not convert (a lead: converted is known); rated 1 (negative)
        dict(conversation_id="c2", speaker="user", text="agent please", timestamp="2024-01-10T00:00:00Z",
             outcome="escalated", converted=False, rating=1.0),
        dict(conversation_id="c2", speaker="agent", text="Hi, Sam here", timestamp="2024-01-10T00:05:00Z",
             outcome="escalated", converted=False, rating=1.0),
        # c3: goal achieved (resolved), email event, conversion unknown, thumbs down (negative)
        dict(conversation_id="c3", speaker="user", text="x@y.org", timestamp="2024-02-01T00:00:00Z",
             event="email", goal_achieved=True, thumbs="down"),
        dict(conversation_id="c3", speaker="bot", text="Got it", timestamp="2024-02-01T00:00:10Z",
             goal_achieved=True, thumbs="down"),
        # c4: handoff event (escalated), converted for 3,000; last message ends the span
        dict(conversation_id="c4", speaker="user", text="buy", timestamp="2024-03-01T20:59:00Z",
             converted=True, conversion_value=3000.0),
        dict(conversation_id="c4", speaker="bot", text="Passing you on", timestamp="2024-03-01T21:00:00Z",
             event="handoff", converted=True, conversion_value=3000.0),
    ]


def test_inputs_from_data_golden():
    m = messages_frame(_rows())
    r = conversation_rollup(m)
    m_copy, r_copy = m.copy(), r.copy()
    basis = roi.data_basis(m, r)
    assert basis.months == pytest.approx(2.0)
    assert (basis.conversation_count, basis.resolved_count, basis.escalated_count) == (4, 2, 2)
    assert (basis.lead_count, basis.converted_count, basis.conversion_known_count) == (4, 2, 3)
    assert basis.mean_conversion_value == 2000.0 and basis.negative_count == 2
    inputs = roi.inputs_from_data(m, r, base=SEED)
    assert inputs.conversations_monthly == 2.0  # 4 / 2 months
    assert inputs.successful_outcomes_monthly == 1.0  # c1 (explicit) + c3 (goal) = 2 / 2 months
    assert inputs.escalation_rate == 0.5  # c2 (agent), c4 (handoff)
    assert inputs.leads_monthly == 2.0  # c1, c3 (email) + c2, c4 (converted known) = 4 / 2
    assert inputs.lead_conversion_rate == 0.667  # 2 of 3 known, rounded to 3 decimals
    assert inputs.value_per_lead == 2000.0  # mean(1,000, 3,000)
    assert inputs.negative_experience_rate == 0.5  # c2 rating 1, c3 thumbs down
    assert inputs.platform_cost_monthly == 5000.0  # costs are never derived
    pd.testing.assert_frame_equal(m, m_copy)
    pd.testing.assert_frame_equal(r, r_copy)


def test_inputs_from_basis_is_inputs_from_data_given_the_basis():
    """The pages compute the basis once and derive the inputs from it: same numbers as inputs_from_data."""
    m = messages_frame(_rows())
    r = conversation_rollup(m)
    basis = roi.data_basis(m, r)
    assert roi.inputs_from_basis(basis, base=SEED) == roi.inputs_from_data(m, r, base=SEED)
    assert roi.inputs_from_basis(basis).lead_conversion_rate == 0.667   # 2 of 3, rounded as documented
    empty = roi.data_basis(m.iloc[:0], r.iloc[:0])
    assert roi.inputs_from_basis(empty, base=SEED).platform_cost_monthly == SEED.platform_cost_monthly


def test_inputs_from_data_ignores_row_order():
    m = messages_frame(_rows())
    shuffled = m.sample(frac=1, random_state=7).reset_index(drop=True)
    assert roi.inputs_from_data(shuffled, conversation_rollup(shuffled)) == roi.inputs_from_data(
        m, conversation_rollup(m))


def test_inputs_from_data_without_optional_columns_or_timestamps():
    m = messages_frame([
        {"conversation_id": "a", "speaker": "user", "text": "hi"},
        {"conversation_id": "a", "speaker": "bot", "text": "hello"},
        {"conversation_id": "b", "speaker": "user", "text": "help"},
        {"conversation_id": "b", "speaker": "agent", "text": "here"},
    ])
    basis = roi.data_basis(m, conversation_rollup(m))
    assert basis.months == 1.0 and "no timestamps" in basis.sources["conversations_monthly"]
    inputs = roi.inputs_from_data(m, conversation_rollup(m), base=SEED)
    # no outcome columns: the contained conversation 'a' stands in for the successes
    assert inputs.conversations_monthly == 2.0 and inputs.successful_outcomes_monthly == 1.0
    assert inputs.escalation_rate == 0.5
    # no event / converted / value / rating columns: defaults kept
    assert (inputs.leads_monthly, inputs.lead_conversion_rate, inputs.value_per_lead) == (100.0, 0.1, 10000.0)
    assert "default kept" in basis.sources["leads_monthly"]


def test_inputs_from_empty_data():
    from metrics.io.schema import empty_frame

    m = empty_frame()
    inputs = roi.inputs_from_data(m, conversation_rollup(m), base=SEED)
    assert inputs.conversations_monthly == 0.0 and inputs.successful_outcomes_monthly == 0.0
    assert inputs.escalation_rate == SEED.escalation_rate
    assert math.isnan(compute_roi(inputs).cost_per_conversation)


def test_inputs_from_sample_data_are_valid():
    from conftest import ROOT
    from metrics.io.loaders import load_bytes

    path = ROOT / "data" / "sample_transcripts.csv.gz"
    if not path.exists():
        pytest.skip("sample data not generated yet")
    m = load_bytes(path.read_bytes(), path.name).frame
    inputs = roi.inputs_from_data(m, conversation_rollup(m))
    assert 500 < inputs.conversations_monthly < 2000  # ~3,000 conversations over 13 weeks
    assert 0 < inputs.successful_outcomes_monthly <= inputs.conversations_monthly
    assert 0 < inputs.escalation_rate < 1 and 0 < inputs.lead_conversion_rate < 1


_conversation = st.fixed_dictionaries({
    "day": st.integers(0, 40), "speakers": st.lists(st.sampled_from(["user", "bot", "agent"]), min_size=1, max_size=4),
    "event": st.sampled_from([None, "email", " Email ", "handoff", "inquiry"]),
    "outcome": st.sampled_from([None, "resolved", "Transferred", "maybe", "abandoned"]),
    "goal": st.sampled_from([None, True, False]), "survey": st.sampled_from([None, True, False]),
    "converted": st.sampled_from([None, True, False]), "value": st.sampled_from([None, 0.0, 500.0, 1250.0]),
    "rating": st.sampled_from([None, 1.0, 2.0, 4.0]), "thumbs": st.sampled_from([None, "up", "down"])})


def _random_data(convs):
    rows = []
    for i, c in enumerate(convs):
        start = pd.Timestamp("2026-08-03T09:00Z") + pd.Timedelta(days=c["day"])
        for k, speaker in enumerate(c["speakers"]):
            rows.append({"conversation_id": f"c{i}", "speaker": speaker, "text": "Which order?" if k else "hi",
                         "timestamp": (start + pd.Timedelta(minutes=k)).isoformat(),
                         "event": c["event"] if k == len(c["speakers"]) - 1 else None, "outcome": c["outcome"],
                         "goal_achieved": c["goal"], "survey_solved": c["survey"], "converted": c["converted"],
                         "conversion_value": c["value"], "rating": c["rating"], "thumbs": c["thumbs"]})
    m = messages_frame(rows)
    return m, conversation_rollup(m)


@settings(max_examples=80, deadline=None)
@given(st.lists(_conversation, min_size=1, max_size=8), st.data())
def test_property_facts_of_any_subset_count_like_data_basis_of_that_subset(convs, data):
    # The KPI series counts each period's conversations from facts classified once for all the data
    # (roi._basis_facts, with the outcome table under any rules); the reference is data_basis of the
    # period's own messages and rollup, which the per-period ROI used to compute.
    from metrics.outcomes import OutcomeRules, outcome_table

    m, r = _random_data(convs)
    pick = data.draw(st.lists(st.booleans(), min_size=len(r), max_size=len(r)))
    rows = [i for i, keep in enumerate(pick) if keep]
    sub_r = r.iloc[rows]
    sub_m = m[m["conversation_id"].isin(set(sub_r["conversation_id"])).to_numpy(bool)]
    rules = OutcomeRules(abandonment_mode="no_goal", timeout_minutes=5)  # resolved/escalated do not depend on rules
    facts = roi._basis_facts(m, r, outcome_table=lambda: outcome_table(m, r, rules=rules))
    # repr: the counts, the NaN mean value and every source sentence must match
    assert repr(roi._basis_of(facts.take(rows))) == repr(roi.data_basis(sub_m, sub_r))
    assert _reference_counts(sub_m, sub_r) == _counts(roi.data_basis(sub_m, sub_r))


def _counts(b) -> tuple:
    return (b.conversation_count, round(b.months, 9), b.resolved_count, b.escalated_count, b.lead_count,
            b.converted_count, b.conversion_known_count, repr(b.mean_conversion_value), b.negative_count)


def _reference_counts(m, r) -> tuple:
    """data_basis's written definitions, one plain step each (message by message, no shared facts)."""
    from metrics.outcomes import classify_outcomes, escalation_signal

    n = len(r)
    if n == 0:
        return (0, 1.0, 0, 0, 0, 0, 0, "nan", 0)
    span = (r["ended_at"].max() - r["started_at"].min()).total_seconds() / 86400
    months = max(1.0, span / (365.25 / 12))
    escalated = int(escalation_signal(m, r).sum())
    resolved = int(classify_outcomes(m, r).eq("resolved").sum())
    email = {str(cid) for cid, ev in zip(m["conversation_id"], m["event"])
             if isinstance(ev, str) and ev.strip().lower() == "email"}
    leads = known = converted = 0
    values, negative = [], 0
    for row in r.itertuples(index=False):
        is_known = not pd.isna(row.converted)
        is_lead = str(row.conversation_id) in email or is_known
        leads += is_lead
        known += is_lead and is_known
        converted += is_lead and is_known and bool(row.converted)
        if is_known and bool(row.converted) and not pd.isna(row.conversion_value) and row.conversion_value > 0:
            values.append(row.conversion_value)
        negative += (not pd.isna(row.rating) and row.rating <= 2) or row.thumbs == "down"
    mean = sum(values) / len(values) if values else float("nan")
    return (n, round(months, 9), resolved, escalated, leads, converted, known, repr(mean), negative)


# --------------------------------------------------------------------------- charts

def test_tornado_chart_has_bars_for_moving_inputs_only():
    t = roi.tornado(SEED, targets=("net_roi",))
    spec = roi_charts.tornado_chart(t, target="net_roi", swing=0.2).to_dict()
    data = next(iter(spec["datasets"].values()))
    labels = {row["label"] for row in data if "label" in row}
    assert labels == {"Platform / hosting cost", "Qualified leads", "Value per lead",
                      "Lead-to-customer conversion rate"}
    empty = roi_charts.tornado_chart(t.iloc[0:0], target="net_roi").to_dict()
    assert empty["mark"]["type"] == "text"


def test_heatmap_has_one_cell_per_pair():
    table = roi.two_way_table(SEED, conversion_rates=[0.05, 0.1], volumes=[5000, 10000, 20000])
    spec = roi_charts.two_way_heatmap(table).to_dict()
    data = next(iter(spec["datasets"].values()))
    assert len(data) == 6 and {d["value"] for d in data} >= {19.0, 39.0}


# --------------------------------------------------------------------------- CLI

def _cli(*argv):
    parser = argparse.ArgumentParser()
    cli_roi.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["roi", *argv])
    return args.handler(args)


def test_cli_json_seed(capsys):
    code = _cli("--monthly-cost", "5000", "--conversations", "10000", "--successful-outcomes", "2500",
                "--human-cost-per-ticket", "15", "--leads", "100", "--value-per-lead", "10000",
                "--lead-conversion-rate", "0.1", "--format", "json")
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert list(out)[:10] == list(cli_roi.HEADLINE_KEYS)
    assert (out["total_monthly_cost"], out["cost_per_conversation"], out["cost_per_outcome"]) == (5000, 0.5, 2)
    assert (out["human_cost_ratio"], out["pipeline_value"], out["attributed_revenue"]) == (7.5, 1e6, 1e5)
    assert (out["return_multiple"], out["net_roi"], out["break_even_conversion_rate"]) == (20, 19, 0.005)
    assert out["automation_savings"] == 145000  # 10,000 contained x 15 - 5,000


def test_cli_amortisation_and_escalation(capsys):
    code = _cli("--development-cost", "36000", "--amortization-months", "18", "--escalation-rate", "0.2",
                "--cost-per-escalation", "15", "--format", "json")
    out = json.loads(capsys.readouterr().out)
    # 5,000 + 36,000 / 18 + 2,000 escalations x 15 = 37,000
    assert code == 0 and out["total_monthly_cost"] == 37000 and out["cost_per_outcome"] == 14.8


def test_cli_zero_denominator_is_null(capsys):
    assert _cli("--conversations", "0", "--successful-outcomes", "0", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["cost_per_conversation"] is None


@pytest.mark.parametrize("argv, needle", [
    (("--leads", "abc"), "--leads must be a number, got 'abc'"),
    (("--lead-conversion-rate", "1.5"), "--lead-conversion-rate must be between 0 and 1"),
    (("--amortization-months", "0"), "--amortization-months"),
    (("--monthly-cost", "nan"), "got 'nan'"),
])
def test_cli_bad_values_exit_2_with_one_line(capsys, argv, needle):
    assert _cli(*argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_text_format(capsys):
    assert _cli() == 0
    out = capsys.readouterr().out
    assert "cost_per_outcome: 2\n" in out and "return_multiple: 20\n" in out


def test_cli_through_the_main_entry_point(monkeypatch, capsys):
    # `python -m metrics roi` once "metrics.roi.cli" is listed in metrics.cli.SUBCOMMANDS
    from metrics import cli

    monkeypatch.setattr(cli, "SUBCOMMANDS", ["metrics.roi.cli"])
    assert cli.main(["roi", "--leads", "200", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["attributed_revenue"] == 200000  # 200 x 10,000 x 10%
    assert cli.main(["roi", "--escalation-rate", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --escalation-rate must be between 0 and 1") and err.count("\n") == 1
