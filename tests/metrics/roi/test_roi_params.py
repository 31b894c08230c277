"""ROI inputs <-> URL query parameters (metrics.roi.params)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.roi import FIELD_NAMES, FIELDS, RoiInputs
from metrics.roi.params import format_number, from_query_params, to_query_params


def test_every_field_is_written_in_order():
    params = to_query_params(RoiInputs())
    assert list(params) == list(FIELD_NAMES)
    assert params["platform_cost_monthly"] == "5000"  # whole numbers without ".0"
    assert params["lead_conversion_rate"] == "0.1"
    assert all(isinstance(v, str) for v in params.values())


def test_round_trip_default_and_custom():
    custom = RoiInputs(platform_cost_monthly=1234.5, lead_conversion_rate=1 / 3, amortization_months=24,
                       escalation_rate=0.166, development_cost=99999.99)
    for inputs in (RoiInputs(), custom):
        back, notices = from_query_params(to_query_params(inputs))
        assert back == inputs and notices == []


def test_missing_parameters_take_the_defaults_silently():
    defaults = RoiInputs(conversations_monthly=991.8)
    back, notices = from_query_params({"leads_monthly": "7"}, defaults=defaults)
    assert back == defaults.replace(leads_monthly=7.0) and notices == []


def test_unrelated_parameters_are_ignored():
    back, notices = from_query_params({"page": "roi", "dataset": "3", "platform_cost_monthly": "10"})
    assert back.platform_cost_monthly == 10.0 and notices == []


def test_bad_values_fall_back_with_a_notice_naming_parameter_and_value():
    defaults = RoiInputs(escalation_rate=0.2)
    back, notices = from_query_params({
        "lead_conversion_rate": "1.5",          # out of range
        "escalation_rate": "abc",               # not a number
        "platform_cost_monthly": "-100",        # negative money
        "amortization_months": "0",             # below the 1-month minimum
        "conversations_monthly": "nan",         # not finite
        "leads_monthly": "inf",
        "value_per_lead": "",                   # empty
        "successful_outcomes_monthly": "1200",  # fine
    }, defaults=defaults)
    assert back == defaults.replace(successful_outcomes_monthly=1200.0)
    assert len(notices) == 7
    joined = "\n".join(notices)
    assert "'lead_conversion_rate' = '1.5' is out of range [0, 1]; using the default 0.1." in joined
    assert "'escalation_rate' = 'abc' is not a number; using the default 0.2." in joined
    assert "'platform_cost_monthly' = '-100' is out of range" in joined
    assert "'amortization_months' = '0' is out of range [1, 120]; using the default 18." in joined
    assert "'conversations_monthly' = 'nan' is not a number" in joined
    assert "'leads_monthly' = 'inf' is not a number" in joined
    assert "'value_per_lead' = '' is not a number" in joined


def test_repeated_parameter_uses_the_last_value():
    back, notices = from_query_params({"leads_monthly": ["5", "8"]})
    assert back.leads_monthly == 8.0 and notices == []


def test_format_number_reads_back_exactly():
    for value in (0.0, 1.0, 0.1, 0.15, 1 / 3, 1e9, 123456.789, 5e-324):
        assert float(format_number(value)) == value


_values = {f.name: st.floats(f.minimum, f.maximum, allow_nan=False, allow_infinity=False) for f in FIELDS}


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries(_values))
def test_round_trip_property(values):
    inputs = RoiInputs(**values)
    back, notices = from_query_params(to_query_params(inputs))
    assert back == inputs and notices == []


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELD_NAMES), st.text(max_size=12)))
def test_arbitrary_text_never_raises_and_every_rejection_is_noticed(params):
    back, notices = from_query_params(params)
    assert isinstance(back, RoiInputs)
    for name, text in params.items():
        if getattr(back, name) != getattr(RoiInputs(), name) or any(f"'{name}'" in n for n in notices):
            continue
        # accepted silently: it must have parsed to the default value itself
        assert float(text.strip()) == getattr(RoiInputs(), name)
