"""Cost per outcome and ROI: a monthly cost model, sensitivity analysis and break-even points.

Every quantity is *per month* and in one currency (whatever the user types; the page shows
``$``). The model is a handful of written formulas (see :func:`compute_roi`); nothing here
reads a file, a store or streamlit.

Inputs (:class:`RoiInputs`, every field documented in :data:`FIELDS`)
    costs: platform/hosting, maintenance, training (hours x hourly rate), development cost
    amortised over N months; volume: conversations and successful outcomes per month;
    escalation rate and the human cost of an escalated conversation; the human cost per
    ticket in the traditional channel; leads per month, value per lead and the
    lead-to-customer conversion rate; an optional quality cost per negative-experience
    conversation.

Formulas (:func:`compute_roi`)::

    training_cost_monthly         = training_hours_monthly x training_hourly_rate
    amortized_development_monthly = development_cost / amortization_months
    fixed_monthly_cost            = platform_cost_monthly + maintenance_cost_monthly
                                    + training_cost_monthly + amortized_development_monthly
    escalated_conversations       = conversations_monthly x escalation_rate
    contained_conversations       = conversations_monthly - escalated_conversations
    escalation_cost_monthly       = escalated_conversations x cost_per_escalation
    negative_conversations        = conversations_monthly x negative_experience_rate
    quality_cost_monthly          = negative_conversations x quality_cost_per_negative
    total_monthly_cost            = fixed_monthly_cost + escalation_cost_monthly + quality_cost_monthly
    cost_per_conversation         = total_monthly_cost / conversations_monthly
    cost_per_outcome              = total_monthly_cost / successful_outcomes_monthly
    human_cost_per_outcome        = human_cost_per_ticket   (one ticket = one outcome)
    human_cost_ratio              = human_cost_per_ticket / cost_per_outcome   ("x times cheaper")
    automation_savings            = contained_conversations x human_cost_per_ticket - total_monthly_cost
    pipeline_value                = leads_monthly x value_per_lead
    attributed_revenue            = pipeline_value x lead_conversion_rate
    return_multiple               = attributed_revenue / total_monthly_cost
    net_roi                       = (attributed_revenue - total_monthly_cost) / total_monthly_cost
    break_even_conversion_rate    = total_monthly_cost / pipeline_value
    break_even_leads              = total_monthly_cost / (value_per_lead x lead_conversion_rate)
    break_even_conversations      = fixed_monthly_cost / (revenue_per_conversation - variable_cost_per_conversation)
        with revenue_per_conversation = leads_monthly / conversations_monthly x value_per_lead
                                        x lead_conversion_rate
        and  variable_cost_per_conversation = escalation_rate x cost_per_escalation
                                              + negative_experience_rate x quality_cost_per_negative
        (leads and costs scale with volume; the fixed costs do not)
    payback_months                = development_cost / (attributed_revenue
                                    - (total_monthly_cost - amortized_development_monthly))

Zero denominators give NaN (``None`` in JSON), never an error (so does a quotient too large
for a float): no conversations -> no cost
per conversation; no successful outcomes -> no cost per outcome (and no ratio); a total cost
of 0 -> no return multiple, net ROI or ratio; no pipeline -> no break-even conversion rate;
revenue per conversation not above the variable cost per conversation -> no break-even
volume; a monthly gain <= 0 -> no payback (``payback_months`` is 0 without development cost).

The guide's worked examples (they are the defaults of :class:`RoiInputs`):

* Leads: $5,000/month, 100 qualified leads worth $10,000 each, 10% converting ->
  $1,000,000 pipeline, $100,000 revenue, a 20x return.
* Support: 10,000 conversations at $5,000 -> $0.50 per conversation; 2,500 successful
  outcomes -> $2.00 per outcome; against $15 per human ticket the bot is 7.5x cheaper.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from metrics.errors import ConfigError

__all__ = [
    "RoiField",
    "FIELDS",
    "FIELD_NAMES",
    "RoiInputs",
    "RoiResult",
    "OUTPUTS",
    "WHAT_IFS",
    "compute_roi",
    "scale_volume",
    "what_if",
    "tornado",
    "two_way_table",
    "grid_around",
    "compare_scenarios",
    "DataBasis",
    "data_basis",
    "inputs_from_data",
    "inputs_from_basis",
]

_NAN = float("nan")
_DAYS_PER_MONTH = 365.25 / 12  # 30.4375


@dataclass(frozen=True)
class RoiField:
    """One input of the cost model: its unit, allowed range [minimum, maximum] and default."""

    name: str
    label: str
    unit: str  # "currency/month" | "currency" | "hours/month" | "currency/hour" | "months" | "count/month" | "rate"
    minimum: float
    maximum: float
    default: float
    help: str

    @property
    def is_rate(self) -> bool:
        return self.unit == "rate"

    def check(self, value) -> float:
        """``value`` as a float, or :class:`ConfigError` repeating the bad value."""
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ConfigError(f"{self.name} must be a number ({self.unit}), got {value!r}")
        number = float(value)
        if not math.isfinite(number) or not (self.minimum <= number <= self.maximum):
            raise ConfigError(f"{self.name} must be between {_fmt(self.minimum)} and {_fmt(self.maximum)} "
                              f"({self.unit}), got {value!r}")
        return number


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


_MONEY_MAX = 1e9
FIELDS: tuple[RoiField, ...] = (
    RoiField("platform_cost_monthly", "Platform / hosting cost", "currency/month", 0.0, _MONEY_MAX, 5000.0,
             "Licence, hosting and API fees paid every month."),
    RoiField("maintenance_cost_monthly", "Maintenance cost", "currency/month", 0.0, _MONEY_MAX, 0.0,
             "Monthly upkeep: content updates, bug fixes, monitoring."),
    RoiField("training_hours_monthly", "Training time", "hours/month", 0.0, 1e6, 0.0,
             "Hours per month spent training and tuning the bot (intents, answers)."),
    RoiField("training_hourly_rate", "Training hourly rate", "currency/hour", 0.0, 1e6, 50.0,
             "Loaded cost of one hour of that work."),
    RoiField("development_cost", "Development cost (one-off)", "currency", 0.0, 1e10, 0.0,
             "The build cost, spread over the amortisation period."),
    RoiField("amortization_months", "Amortisation period", "months", 1.0, 120.0, 18.0,
             "Months over which the development cost is spread (the guide suggests 12-24)."),
    RoiField("conversations_monthly", "Conversations", "count/month", 0.0, 1e9, 10000.0,
             "Conversations the bot handles per month (from the data, or overridden)."),
    RoiField("successful_outcomes_monthly", "Successful outcomes", "count/month", 0.0, 1e9, 2500.0,
             "Conversations per month that reached a successful outcome (resolved / goal achieved)."),
    RoiField("escalation_rate", "Escalation rate", "rate", 0.0, 1.0, 0.0,
             "Share of conversations handed to a human."),
    RoiField("cost_per_escalation", "Human cost per escalated conversation", "currency", 0.0, 1e6, 15.0,
             "What a human agent costs to handle one escalated conversation."),
    RoiField("human_cost_per_ticket", "Human cost per ticket (traditional channel)", "currency", 0.0, 1e6, 15.0,
             "Cost of one ticket handled entirely by people, the channel the bot is compared with."),
    RoiField("leads_monthly", "Qualified leads", "count/month", 0.0, 1e9, 100.0,
             "Qualified leads the bot produces per month."),
    RoiField("value_per_lead", "Value per lead", "currency", 0.0, 1e9, 10000.0,
             "Value of a lead that becomes a customer (deal value)."),
    RoiField("lead_conversion_rate", "Lead-to-customer conversion rate", "rate", 0.0, 1.0, 0.10,
             "Share of leads that become customers."),
    RoiField("negative_experience_rate", "Negative-experience rate", "rate", 0.0, 1.0, 0.0,
             "Share of conversations that leave a bad impression (rating <= 2 or thumbs down)."),
    RoiField("quality_cost_per_negative", "Quality cost per negative experience", "currency", 0.0, 1e6, 0.0,
             "Optional (default 0): brand damage you attribute to one bad conversation, e.g. the chance of "
             "losing the customer times their value. Poor chatbot experiences damage brand value; this puts "
             "a price on it so that it shows up in the total cost."),
)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
_BY_NAME = {f.name: f for f in FIELDS}


@dataclass(frozen=True)
class RoiInputs:
    """All inputs of the cost model, per month, validated on construction.

    Units and ranges are in :data:`FIELDS` (``rate`` fields are shares in [0, 1], money is
    in the user's currency). The defaults are the guide's worked example: $5,000/month,
    10,000 conversations, 2,500 successful outcomes, $15 per human ticket, 100 leads worth
    $10,000 each converting at 10%, no escalation, no development, maintenance or training
    cost. A value that is not a finite number or is out of range raises
    :class:`~metrics.errors.ConfigError` naming the field and repeating the value. Every
    field is stored as a float.

    ``successful_outcomes_monthly`` is normally at most ``conversations_monthly``; this is
    not enforced (so each input can be varied alone) but :class:`RoiResult` notes it.

    Examples
    --------
    >>> RoiInputs().platform_cost_monthly
    5000.0
    >>> RoiInputs(lead_conversion_rate=1.5)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.ConfigError: lead_conversion_rate must be between 0 and 1 (rate), got 1.5
    """

    platform_cost_monthly: float = 5000.0
    maintenance_cost_monthly: float = 0.0
    training_hours_monthly: float = 0.0
    training_hourly_rate: float = 50.0
    development_cost: float = 0.0
    amortization_months: float = 18.0
    conversations_monthly: float = 10000.0
    successful_outcomes_monthly: float = 2500.0
    escalation_rate: float = 0.0
    cost_per_escalation: float = 15.0
    human_cost_per_ticket: float = 15.0
    leads_monthly: float = 100.0
    value_per_lead: float = 10000.0
    lead_conversion_rate: float = 0.10
    negative_experience_rate: float = 0.0
    quality_cost_per_negative: float = 0.0

    def __post_init__(self):
        for spec in FIELDS:
            object.__setattr__(self, spec.name, spec.check(getattr(self, spec.name)))

    def replace(self, **changes) -> "RoiInputs":
        """A copy with some fields changed (validated). Unknown names raise ConfigError."""
        unknown = sorted(set(changes) - set(FIELD_NAMES))
        if unknown:
            raise ConfigError(f"unknown ROI input(s) {unknown!r}; known: {', '.join(FIELD_NAMES)}")
        return replace(self, **changes)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, object], *, base: "RoiInputs | None" = None) -> "RoiInputs":
        """Inputs from a mapping; missing fields come from ``base`` (default :class:`RoiInputs`)."""
        base = base or cls()
        known = {k: v for k, v in values.items() if k in FIELD_NAMES}
        return base.replace(**known)


@dataclass(frozen=True)
class RoiResult:
    """Outputs of :func:`compute_roi` (formulas in the module docstring; NaN = undefined).

    Money is per month unless the name says otherwise; ``*_ratio``/``return_multiple`` are
    multiples, ``net_roi`` and ``break_even_conversion_rate`` are fractions (0.2 = 20%),
    ``payback_months`` is in months. ``notes`` lists plain-language warnings (for example a
    break-even conversion rate above 100%).
    """

    training_cost_monthly: float
    amortized_development_monthly: float
    fixed_monthly_cost: float
    escalated_conversations: float
    contained_conversations: float
    escalation_cost_monthly: float
    negative_conversations: float
    quality_cost_monthly: float
    total_monthly_cost: float
    cost_per_conversation: float
    cost_per_outcome: float
    human_cost_per_outcome: float
    human_cost_ratio: float
    automation_savings: float
    pipeline_value: float
    attributed_revenue: float
    return_multiple: float
    net_roi: float
    break_even_conversion_rate: float
    break_even_leads: float
    break_even_conversations: float
    payback_months: float
    notes: tuple[str, ...] = field(default=())

    def as_dict(self, *, json_safe: bool = False) -> dict:
        """Every output by name (``notes`` as a list); ``json_safe`` turns NaN/inf into None."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "notes"}
        if json_safe:
            out = {k: (v if math.isfinite(v) else None) for k, v in out.items()}
        out["notes"] = list(self.notes)
        return out


#: Output name -> (label, unit, formula). ``unit`` is money | money/month | multiple | fraction | count | months.
OUTPUTS: dict[str, tuple[str, str, str]] = {
    "total_monthly_cost": ("Total monthly cost", "money/month",
                           "platform + maintenance + training hours x rate + development / amortisation months"
                           " + conversations x escalation rate x cost per escalation"
                           " + conversations x negative rate x quality cost"),
    "cost_per_conversation": ("Cost per conversation", "money", "total monthly cost / conversations"),
    "cost_per_outcome": ("Cost per successful outcome", "money", "total monthly cost / successful outcomes"),
    "human_cost_per_outcome": ("Human cost per outcome", "money", "human cost per ticket (one ticket = one outcome)"),
    "human_cost_ratio": ("Times cheaper than people", "multiple",
                         "human cost per ticket / cost per successful outcome"),
    "automation_savings": ("Automation savings", "money/month",
                           "contained conversations x human cost per ticket - total monthly cost, where contained"
                           " = conversations x (1 - escalation rate)"),
    "pipeline_value": ("Pipeline value", "money/month", "leads x value per lead"),
    "attributed_revenue": ("Attributed revenue", "money/month", "pipeline value x lead conversion rate"),
    "return_multiple": ("Return multiple", "multiple", "attributed revenue / total monthly cost"),
    "net_roi": ("Net ROI", "fraction", "(attributed revenue - total monthly cost) / total monthly cost"),
    "break_even_conversion_rate": ("Break-even conversion rate", "fraction", "total monthly cost / pipeline value"),
    "break_even_leads": ("Break-even leads", "count", "total monthly cost / (value per lead x conversion rate)"),
    "break_even_conversations": ("Break-even volume", "count",
                                 "fixed cost / (leads per conversation x value per lead x conversion rate"
                                 " - escalation rate x cost per escalation - negative rate x quality cost)"),
    "payback_months": ("Payback of development", "months",
                       "development cost / (attributed revenue - (total monthly cost - amortised development))"),
}

#: What-if id -> label (the guide's "what if conversion improves by 5% or volume doubles?").
WHAT_IFS: dict[str, str] = {
    "conversion_plus_5": "Conversion rate +5 points",
    "volume_doubles": "Volume doubles",
    "escalation_minus_10": "Escalation rate -10 points",
}


def _div(num: float, den: float) -> float:
    """num / den, NaN when den is 0 or the quotient is not finite (e.g. a subnormal denominator)."""
    if den == 0 or not math.isfinite(den):
        return _NAN
    try:
        out = num / den
    except OverflowError:
        return _NAN
    return out if math.isfinite(out) else _NAN


def compute_roi(inputs: RoiInputs) -> RoiResult:
    """Every output of the cost model for one set of inputs (formulas: module docstring).

    Zero denominators give NaN (see the module docstring); the function never raises for a
    valid :class:`RoiInputs`.

    Examples
    --------
    >>> r = compute_roi(RoiInputs())   # the guide's worked example
    >>> r.total_monthly_cost, r.pipeline_value, r.attributed_revenue, r.return_multiple
    (5000.0, 1000000.0, 100000.0, 20.0)
    >>> r.cost_per_conversation, r.cost_per_outcome, r.human_cost_ratio
    (0.5, 2.0, 7.5)
    >>> compute_roi(RoiInputs(conversations_monthly=0, successful_outcomes_monthly=0)).cost_per_conversation
    nan
    """
    x = inputs
    training = x.training_hours_monthly * x.training_hourly_rate
    amortized = x.development_cost / x.amortization_months
    fixed = x.platform_cost_monthly + x.maintenance_cost_monthly + training + amortized
    escalated = x.conversations_monthly * x.escalation_rate
    contained = x.conversations_monthly - escalated
    escalation_cost = escalated * x.cost_per_escalation
    negative = x.conversations_monthly * x.negative_experience_rate
    quality_cost = negative * x.quality_cost_per_negative
    total = fixed + escalation_cost + quality_cost

    per_conversation = _div(total, x.conversations_monthly)
    per_outcome = _div(total, x.successful_outcomes_monthly)
    ratio = _div(x.human_cost_per_ticket, per_outcome) if per_outcome == per_outcome else _NAN
    savings = contained * x.human_cost_per_ticket - total
    pipeline = x.leads_monthly * x.value_per_lead
    revenue = pipeline * x.lead_conversion_rate
    multiple = _div(revenue, total)
    net = _div(revenue - total, total)
    be_rate = _div(total, pipeline)
    be_leads = _div(total, x.value_per_lead * x.lead_conversion_rate)
    if x.conversations_monthly > 0:
        revenue_per_conv = x.leads_monthly / x.conversations_monthly * x.value_per_lead * x.lead_conversion_rate
        variable_per_conv = (x.escalation_rate * x.cost_per_escalation
                             + x.negative_experience_rate * x.quality_cost_per_negative)
        margin = revenue_per_conv - variable_per_conv
        be_conversations = _div(fixed, margin) if margin > 0 else _NAN
    else:
        be_conversations = _NAN
    monthly_gain = revenue - (total - amortized)
    if x.development_cost == 0:
        payback = 0.0
    else:
        payback = _div(x.development_cost, monthly_gain) if monthly_gain > 0 else _NAN

    notes = []
    if x.successful_outcomes_monthly > x.conversations_monthly:
        notes.append(f"Successful outcomes ({_fmt(x.successful_outcomes_monthly)}) exceed conversations "
                     f"({_fmt(x.conversations_monthly)}); check the volume inputs.")
    if be_rate == be_rate and be_rate > 1:
        notes.append("Break-even needs a conversion rate above 100%: leads alone cannot cover the cost.")
    if x.conversations_monthly == 0:
        notes.append("No conversations: cost per conversation is undefined.")
    if x.successful_outcomes_monthly == 0:
        notes.append("No successful outcomes: cost per outcome is undefined.")
    if total == 0:
        notes.append("Total cost is 0: return multiple and net ROI are undefined.")
    return RoiResult(
        training_cost_monthly=training, amortized_development_monthly=amortized, fixed_monthly_cost=fixed,
        escalated_conversations=escalated, contained_conversations=contained,
        escalation_cost_monthly=escalation_cost, negative_conversations=negative,
        quality_cost_monthly=quality_cost, total_monthly_cost=total,
        cost_per_conversation=per_conversation, cost_per_outcome=per_outcome,
        human_cost_per_outcome=x.human_cost_per_ticket, human_cost_ratio=ratio,
        automation_savings=savings, pipeline_value=pipeline, attributed_revenue=revenue,
        return_multiple=multiple, net_roi=net, break_even_conversion_rate=be_rate,
        break_even_leads=be_leads, break_even_conversations=be_conversations, payback_months=payback,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- what-ifs

def _clip(name: str, value: float) -> float:
    spec = _BY_NAME[name]
    return min(spec.maximum, max(spec.minimum, value))


def scale_volume(inputs: RoiInputs, factor: float) -> RoiInputs:
    """Multiply the volumes (conversations, successful outcomes, leads) by ``factor``.

    Rates and costs per unit stay the same, so escalations, contained conversations and
    revenue scale too; fixed costs do not. Values are capped at the field maximum.

    Examples
    --------
    >>> s = scale_volume(RoiInputs(), 2)
    >>> s.conversations_monthly, s.successful_outcomes_monthly, s.leads_monthly
    (20000.0, 5000.0, 200.0)
    """
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor < 0:
        raise ConfigError(f"volume factor must be a finite number >= 0, got {factor!r}")
    return inputs.replace(**{name: _clip(name, getattr(inputs, name) * factor)
                             for name in ("conversations_monthly", "successful_outcomes_monthly", "leads_monthly")})


def what_if(inputs: RoiInputs, name: str) -> RoiInputs:
    """The inputs after one of the guide's one-click what-ifs (:data:`WHAT_IFS`).

    ``conversion_plus_5``: lead conversion rate + 0.05 (percentage points, capped at 1).
    ``volume_doubles``: :func:`scale_volume` by 2 (conversations, successful outcomes, leads).
    ``escalation_minus_10``: escalation rate - 0.10 (points, floored at 0).
    An unknown name raises ConfigError.

    Examples
    --------
    >>> what_if(RoiInputs(), "conversion_plus_5").lead_conversion_rate
    0.15
    >>> what_if(RoiInputs(escalation_rate=0.05), "escalation_minus_10").escalation_rate
    0.0
    """
    if name == "conversion_plus_5":
        return inputs.replace(lead_conversion_rate=round(min(1.0, inputs.lead_conversion_rate + 0.05), 12))
    if name == "volume_doubles":
        return scale_volume(inputs, 2.0)
    if name == "escalation_minus_10":
        return inputs.replace(escalation_rate=round(max(0.0, inputs.escalation_rate - 0.10), 12))
    raise ConfigError(f"unknown what-if {name!r}; known: {', '.join(WHAT_IFS)}")


# --------------------------------------------------------------------------- sensitivity

_RESULT_NAMES = tuple(f.name for f in fields(RoiResult) if f.name != "notes")


def _check_targets(targets: Sequence[str]) -> tuple[str, ...]:
    if isinstance(targets, str):
        targets = (targets,)
    targets = tuple(targets)
    bad = [t for t in targets if t not in _RESULT_NAMES]
    if not targets or bad:
        raise ConfigError(f"unknown ROI target(s) {bad or list(targets)!r}; known: {', '.join(_RESULT_NAMES)}")
    return targets


_TORNADO_COLUMNS = ("target", "input", "label", "base_value", "low_value", "high_value", "base_result",
                    "low_result", "high_result", "low_delta", "high_delta", "span")


def tornado(inputs: RoiInputs, *, swing: float = 0.2, targets: Sequence[str] = ("net_roi", "cost_per_outcome"),
            names: Iterable[str] | None = None) -> pd.DataFrame:
    """One-at-a-time sensitivity: each input moved by -swing and +swing (relative), others fixed.

    For every target in ``targets`` and every input in ``names`` (default: all of
    :data:`FIELDS`): ``low_value = value x (1 - swing)`` and ``high_value = value x (1 + swing)``,
    clipped to the input's range (rates stay in [0, 1], months >= 1); ``low_result`` /
    ``high_result`` are the target computed with that one input changed, ``low_delta`` /
    ``high_delta`` their difference from ``base_result`` and ``span = |high_result -
    low_result|``. An input at 0 does not move (span 0). NaN results (undefined outputs) give
    a NaN span and sort last.

    Columns: ``target, input, label, base_value, low_value, high_value, base_result,
    low_result, high_result, low_delta, high_delta, span``; rows grouped by target (in the
    order given), then by span descending (the tornado order), ties by input name.
    ``swing`` must be in (0, 1]; unknown targets or inputs raise ConfigError.

    Examples
    --------
    >>> t = tornado(RoiInputs(), targets=("cost_per_outcome",))
    >>> row = t.iloc[0]
    >>> row["input"], float(row["low_result"]), float(row["high_result"])   # 5000/2000, 5000/3000
    ('successful_outcomes_monthly', 2.5, 1.6666666666666667)
    """
    if isinstance(swing, bool) or not isinstance(swing, (int, float)) or not (0 < swing <= 1):
        raise ConfigError(f"swing must be a fraction in (0, 1], got {swing!r}")
    targets = _check_targets(targets)
    names = tuple(FIELD_NAMES if names is None else names)
    bad = [n for n in names if n not in FIELD_NAMES]
    if bad:
        raise ConfigError(f"unknown ROI input(s) {bad!r}; known: {', '.join(FIELD_NAMES)}")
    base = compute_roi(inputs)
    rows = []
    for name in names:
        value = getattr(inputs, name)
        low_v, high_v = _clip(name, value * (1 - swing)), _clip(name, value * (1 + swing))
        low_r, high_r = compute_roi(inputs.replace(**{name: low_v})), compute_roi(inputs.replace(**{name: high_v}))
        for target in targets:
            b, lo, hi = getattr(base, target), getattr(low_r, target), getattr(high_r, target)
            rows.append((target, name, _BY_NAME[name].label, value, low_v, high_v, b, lo, hi,
                         lo - b, hi - b, abs(hi - lo)))
    frame = pd.DataFrame(rows, columns=list(_TORNADO_COLUMNS))
    order = {t: i for i, t in enumerate(targets)}
    frame["_t"] = frame["target"].map(order)
    frame["_s"] = frame["span"].round(9)  # float noise must not break ties (0.08 x 1e6 != 80000 exactly)
    frame = frame.sort_values(["_t", "_s", "input"], ascending=[True, False, True], na_position="last",
                              kind="stable")
    return frame.drop(columns=["_t", "_s"]).reset_index(drop=True).astype(
        {"target": "str", "input": "str", "label": "str"})


def two_way_table(inputs: RoiInputs, *, conversion_rates: Sequence[float], volumes: Sequence[float],
                  target: str = "net_roi") -> pd.DataFrame:
    """``target`` for every (volume, conversion rate) pair: rows = volumes, columns = rates.

    ``volumes`` are conversations per month; each is applied with :func:`scale_volume`
    (successful outcomes and leads move in proportion to conversations). When the base has
    no conversations the proportion is undefined: only ``conversations_monthly`` is set and
    outcomes and leads stay as they are. ``conversion_rates`` are lead-to-customer rates in
    [0, 1]. The index is named ``conversations_monthly`` and the columns
    ``lead_conversion_rate``; both keep the order given. Empty or invalid lists raise
    ConfigError.

    Examples
    --------
    >>> t = two_way_table(RoiInputs(), conversion_rates=[0.1, 0.2], volumes=[10000, 20000])
    >>> t.values.tolist()   # (revenue - 5000) / 5000
    [[19.0, 39.0], [39.0, 79.0]]
    """
    target = _check_targets((target,))[0]
    rates = [_BY_NAME["lead_conversion_rate"].check(r) for r in conversion_rates]
    vols = [_BY_NAME["conversations_monthly"].check(v) for v in volumes]
    if not rates or not vols:
        raise ConfigError(f"two_way_table needs at least one rate and one volume, got {list(conversion_rates)!r} "
                          f"and {list(volumes)!r}")
    base_conv = inputs.conversations_monthly
    table = np.empty((len(vols), len(rates)))
    for i, vol in enumerate(vols):
        scaled = scale_volume(inputs, vol / base_conv).replace(conversations_monthly=vol) if base_conv > 0 \
            else inputs.replace(conversations_monthly=vol)
        for j, rate in enumerate(rates):
            table[i, j] = getattr(compute_roi(scaled.replace(lead_conversion_rate=rate)), target)
    return pd.DataFrame(table, index=pd.Index(vols, name="conversations_monthly"),
                        columns=pd.Index(rates, name="lead_conversion_rate"))


def grid_around(inputs: RoiInputs) -> tuple[list[float], list[float]]:
    """A default grid for :func:`two_way_table` around the current inputs.

    Rates: the current conversion rate -10, -5, 0, +5, +10 points (kept in [0, 1], rounded to
    4 decimals, duplicates removed). Volumes: the current conversations x 0.5, 1, 1.5, 2
    (or 0, 1,000, 5,000, 10,000 when there are none).

    Examples
    --------
    >>> grid_around(RoiInputs())
    ([0.0, 0.05, 0.1, 0.15, 0.2], [5000.0, 10000.0, 15000.0, 20000.0])
    """
    rates = []
    for step in (-0.10, -0.05, 0.0, 0.05, 0.10):
        r = round(min(1.0, max(0.0, inputs.lead_conversion_rate + step)), 4)
        if r not in rates:
            rates.append(r)
    conv = inputs.conversations_monthly
    volumes = [conv * f for f in (0.5, 1.0, 1.5, 2.0)] if conv > 0 else [0.0, 1000.0, 5000.0, 10000.0]
    volumes = [min(v, _BY_NAME["conversations_monthly"].maximum) for v in volumes]
    return rates, list(dict.fromkeys(volumes))


def compare_scenarios(scenarios: Mapping[str, RoiInputs]) -> pd.DataFrame:
    """Scenarios side by side: one row per input and output, one column per scenario.

    Columns: ``kind`` (``input`` | ``output``), ``name`` (field name), ``label``, then one
    float column per scenario in the order given. Inputs come first (order of
    :data:`FIELDS`), then the outputs of :data:`OUTPUTS`. An empty mapping raises
    ConfigError.

    Examples
    --------
    >>> c = compare_scenarios({"now": RoiInputs(), "better": RoiInputs(lead_conversion_rate=0.2)})
    >>> c.set_index("name").loc["attributed_revenue", ["now", "better"]].tolist()
    [100000.0, 200000.0]
    """
    if not scenarios:
        raise ConfigError("compare_scenarios needs at least one scenario, got none")
    results = {name: compute_roi(inp) for name, inp in scenarios.items()}
    rows = [{"kind": "input", "name": f.name, "label": f.label,
             **{s: getattr(inp, f.name) for s, inp in scenarios.items()}} for f in FIELDS]
    rows += [{"kind": "output", "name": name, "label": label,
              **{s: getattr(res, name) for s, res in results.items()}} for name, (label, _, _) in OUTPUTS.items()]
    frame = pd.DataFrame(rows)
    return frame.astype({"kind": "str", "name": "str", "label": "str"})


# --------------------------------------------------------------------------- from the data

@dataclass(frozen=True)
class DataBasis:
    """What the data says, before it becomes monthly inputs (:func:`data_basis`).

    ``months`` is the span covered (first conversation start to last conversation end, in
    months of 30.4375 days), at least 1: data covering less than a month is counted as one
    month (never extrapolated up), and data without timestamps is one month. ``sources``
    maps each data-derived input to a sentence saying how it was derived, or why the
    default was kept.
    """

    conversation_count: int
    months: float
    resolved_count: int
    escalated_count: int
    lead_count: int
    converted_count: int
    conversion_known_count: int
    mean_conversion_value: float
    negative_count: int
    sources: Mapping[str, str] = field(default_factory=dict)
    derived: Mapping[str, float] = field(default_factory=dict)


def _str_col(frame: pd.DataFrame, name: str) -> pd.Series | None:
    if name not in frame.columns:
        return None
    return frame[name].astype("str").str.strip().str.lower()


def data_basis(messages: pd.DataFrame, rollup: pd.DataFrame) -> DataBasis:
    """Counts behind the data-derived ROI inputs. Neither input is modified.

    Definitions (per conversation, over ``rollup``'s conversations):

    * successful outcome = :func:`metrics.outcomes.classify_outcomes` says ``resolved``
      (explicit outcome, goal achieved or survey solved). When the data has none of
      ``outcome``, ``goal_achieved``, ``survey_solved``, contained conversations (no
      escalation) stand in, and ``sources`` says so.
    * escalated = :func:`metrics.outcomes.escalation_signal` (agent message, handoff event or
      an explicit escalated outcome): every conversation a human had to handle.
    * lead = a message with ``event`` ``email`` (the funnel's "email provided" stage), or a
      known ``converted`` value.
    * conversion rate = converted True / leads whose ``converted`` is known.
    * value per lead = mean ``conversion_value`` of converted conversations with a value > 0.
    * negative experience = ``rating`` <= 2 or ``thumbs`` ``down``.

    Missing columns leave the matching input at its default (see ``sources``). An empty
    rollup gives zero counts and ``months`` 1.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["user", "agent"], "text": ["x", "y"],
    ...     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True), "row": [1, 2]})
    >>> b = data_basis(m, conversation_rollup(m))
    >>> b.conversation_count, b.months, b.escalated_count
    (2, 1.0, 1)
    """
    return _basis_of(_basis_facts(messages, rollup))


_OUTCOME_COLUMNS = ("outcome", "goal_achieved", "survey_solved")


@dataclass(frozen=True)
class _BasisFacts:
    """The per-conversation flags :func:`data_basis` counts (``table``, rollup order) and which
    columns the data has. Every flag depends on its own conversation only, so the counts of any
    subset of conversations (:meth:`take`) equal :func:`data_basis` of that subset: the KPI
    series (metrics.kpis) classifies the whole data once and counts each period from here."""

    table: pd.DataFrame  # started_at, ended_at, escalated, resolved, lead, known, converted, value, negative
    outcome_cols: tuple[str, ...]
    has_event: bool
    has_converted: bool
    has_value: bool
    has_feedback: bool

    def take(self, rows) -> "_BasisFacts":
        return replace(self, table=self.table.iloc[rows])


def _basis_facts(messages: pd.DataFrame, rollup: pd.DataFrame, *, outcome_table=None) -> _BasisFacts:
    """:class:`_BasisFacts` of the data. ``outcome_table`` (optional callable) returns
    :func:`metrics.outcomes.outcome_table` of these messages and rollup under any rules:
    ``resolved`` (rules 1-3 of classify_outcomes: outcome field, goal, survey) and
    ``escalated`` (the escalation signal) do not depend on the rules' options, so a caller
    that already has the table passes it instead of classifying twice."""
    from metrics.outcomes import escalation_signal
    from metrics.outcomes import outcome_table as make_outcome_table

    n = int(len(rollup))
    nat = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]")
    table = pd.DataFrame({c: rollup[c].reset_index(drop=True) if c in rollup.columns else nat
                          for c in ("started_at", "ended_at")})
    outcome_cols = tuple(c for c in _OUTCOME_COLUMNS if c in rollup.columns)
    resolved = np.zeros(n, bool)
    if n and outcome_cols:  # one classification gives both the escalation signal and the resolved flag
        t = outcome_table() if outcome_table is not None else make_outcome_table(messages, rollup)
        escalated = t["escalated"].to_numpy(bool)
        resolved = t["outcome"].eq("resolved").fillna(False).to_numpy(bool)
    elif n:
        escalated = escalation_signal(messages, rollup).to_numpy(bool)
    else:
        escalated = np.zeros(0, bool)
    table["escalated"], table["resolved"] = escalated, resolved

    ids = rollup["conversation_id"].astype("str") if n else pd.Series([], dtype="str")
    has_event = "event" in messages.columns
    email_ids = set()
    if has_event and len(messages):
        # normalise the few distinct event values, not every message (same result as strip().lower() per row)
        codes, uniques = pd.factorize(messages["event"])
        email = pd.Series(uniques).astype("str").str.strip().str.lower().eq("email").fillna(False).to_numpy(bool)
        hit = np.append(email, False)[codes]  # code -1 (missing) -> the appended False
        email_ids = set(messages.loc[hit, "conversation_id"].astype("str")) if hit.any() else set()
    converted = rollup["converted"].astype("boolean") if "converted" in rollup.columns else None
    known = converted.notna().to_numpy(bool) if converted is not None else np.zeros(n, bool)
    table["lead"] = ids.isin(email_ids).to_numpy(bool) | known
    table["known"] = known
    converted_true = converted.fillna(False).to_numpy(bool) if converted is not None else np.zeros(n, bool)
    table["converted"] = converted_true
    has_value = "conversion_value" in rollup.columns and converted is not None
    table["value"] = pd.to_numeric(rollup["conversion_value"], errors="coerce").to_numpy(float) if has_value \
        else np.full(n, _NAN)

    negative = np.zeros(n, bool)
    has_feedback = False
    if "rating" in rollup.columns:
        has_feedback = True
        negative |= (pd.to_numeric(rollup["rating"], errors="coerce") <= 2).fillna(False).to_numpy(bool)
    thumbs = _str_col(rollup, "thumbs")
    if thumbs is not None:
        has_feedback = True
        negative |= thumbs.eq("down").fillna(False).to_numpy(bool)
    table["negative"] = negative
    return _BasisFacts(table, outcome_cols, has_event, converted is not None, has_value, has_feedback)


def _basis_of(facts: _BasisFacts) -> DataBasis:
    """The counts and sentences of :func:`data_basis` from per-conversation facts."""
    t = facts.table
    n = int(len(t))
    sources: dict[str, str] = {}
    derived: dict[str, float] = {}
    starts, ends = t["started_at"].dropna(), t["ended_at"].dropna()
    if len(starts) and len(ends):
        span_days = (ends.max() - starts.min()).total_seconds() / 86400
        months = max(1.0, span_days / _DAYS_PER_MONTH)
        span_text = f"{n:,} conversations over {months:.2f} month(s)"
    else:
        months = 1.0
        span_text = f"{n:,} conversations; no timestamps, so the data counts as one month"
    derived["conversations_monthly"] = n / months
    sources["conversations_monthly"] = f"{span_text} -> {n / months:,.1f} per month"

    escalated = t["escalated"].to_numpy(bool)
    escalated_count = int(escalated.sum()) if n else 0
    if n:
        derived["escalation_rate"] = escalated_count / n
        sources["escalation_rate"] = (f"{escalated_count:,} of {n:,} conversations had an agent message, "
                                      "a handoff event or an escalated outcome")
    else:
        sources["escalation_rate"] = "no conversations: default kept"

    if n and facts.outcome_cols:
        resolved_count = int(t["resolved"].to_numpy(bool).sum())
        sources["successful_outcomes_monthly"] = (f"{resolved_count:,} resolved conversations (from "
                                                  f"{', '.join(facts.outcome_cols)}) / {months:.2f} month(s)")
    else:
        resolved_count = n - escalated_count
        sources["successful_outcomes_monthly"] = ("no outcome, goal_achieved or survey_solved column: contained "
                                                  f"conversations ({resolved_count:,}) stand in for successes")
    derived["successful_outcomes_monthly"] = resolved_count / months

    is_lead, known = t["lead"].to_numpy(bool), t["known"].to_numpy(bool)
    converted_true = t["converted"].to_numpy(bool)
    lead_count = int(is_lead.sum())
    conversion_known = int((is_lead & known).sum())
    converted_count = int((is_lead & converted_true).sum())
    if not facts.has_event and not facts.has_converted:
        sources["leads_monthly"] = "no event or converted column: default kept"
    else:
        derived["leads_monthly"] = lead_count / months
        sources["leads_monthly"] = (f"{lead_count:,} conversations with an 'email' event or a known converted "
                                    f"value / {months:.2f} month(s)")
    if conversion_known:
        derived["lead_conversion_rate"] = converted_count / conversion_known
        sources["lead_conversion_rate"] = (f"{converted_count:,} converted of {conversion_known:,} leads with a "
                                           "known outcome")
    else:
        sources["lead_conversion_rate"] = "no lead with a known converted value: default kept"

    mean_value = _NAN
    if facts.has_value:
        values = t["value"].to_numpy(float)
        pick = converted_true & np.isfinite(values) & (values > 0)
        if pick.any():
            mean_value = float(values[pick].mean())
            derived["value_per_lead"] = mean_value
            sources["value_per_lead"] = f"mean conversion_value of {int(pick.sum()):,} converted conversations"
    sources.setdefault("value_per_lead", "no conversion_value on converted conversations: default kept")

    negative_count = int(t["negative"].to_numpy(bool).sum())
    if facts.has_feedback and n:
        derived["negative_experience_rate"] = negative_count / n
        sources["negative_experience_rate"] = f"{negative_count:,} of {n:,} conversations rated <= 2 or thumbs down"
    else:
        sources["negative_experience_rate"] = "no rating or thumbs column: default kept"

    return DataBasis(conversation_count=n, months=months, resolved_count=resolved_count,
                     escalated_count=escalated_count, lead_count=lead_count, converted_count=converted_count,
                     conversion_known_count=conversion_known, mean_conversion_value=mean_value,
                     negative_count=negative_count, sources=sources, derived=derived)


def inputs_from_basis(basis: DataBasis, *, base: RoiInputs | None = None) -> RoiInputs:
    """``base`` (default :class:`RoiInputs`) with the derived inputs of ``basis`` (a :func:`data_basis`
    result), rounded and clipped as :func:`inputs_from_data` says. A page that shows the basis too computes
    it once and passes it here. A basis with nothing derived returns ``base`` unchanged.

    Examples
    --------
    >>> b = DataBasis(conversation_count=8, months=1.0, resolved_count=5, escalated_count=1, lead_count=0,
    ...               converted_count=0, conversion_known_count=0, mean_conversion_value=float("nan"),
    ...               negative_count=0, derived={"escalation_rate": 0.12345})
    >>> inputs_from_basis(b).escalation_rate, inputs_from_basis(b).platform_cost_monthly
    (0.123, 5000.0)
    """
    values = {}
    for name, value in basis.derived.items():
        value = round(value, 3 if _BY_NAME[name].is_rate else 2)
        values[name] = _clip(name, value)
    return (base or RoiInputs()).replace(**values)


def inputs_from_data(messages: pd.DataFrame, rollup: pd.DataFrame, *, base: RoiInputs | None = None) -> RoiInputs:
    """``base`` (default :class:`RoiInputs`) with the data-derived inputs of :func:`data_basis`.

    Derived (per month = count / ``DataBasis.months``): ``conversations_monthly``,
    ``successful_outcomes_monthly``, ``escalation_rate``, ``leads_monthly``,
    ``lead_conversion_rate``, ``value_per_lead``, ``negative_experience_rate``. Rates are
    rounded to 3 decimals (0.1 percentage point), counts and money to 2. Inputs the data cannot give
    (costs, and any field whose column is missing) keep ``base``'s value. An empty rollup keeps ``base`` except for zero
    conversations, outcomes and leads.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["user", "agent"], "text": ["x", "y"],
    ...     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True), "row": [1, 2]})
    >>> i = inputs_from_data(m, conversation_rollup(m))
    >>> i.conversations_monthly, i.escalation_rate, i.platform_cost_monthly
    (2.0, 0.5, 5000.0)
    """
    return inputs_from_basis(data_basis(messages, rollup), base=base)
