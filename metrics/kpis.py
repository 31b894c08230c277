"""Key performance indicators: a catalogue of named metrics, their weekly/monthly series,
week-over-week and month-over-month deltas with significance, and red/amber/green status.

Every KPI is computed by the family that owns its definition (outcomes, intents, sentiment,
funnel, ROI); this module only assigns the family's units to periods and aggregates them.

Catalogue (:data:`CATALOGUE`)
-----------------------------
Each :class:`Kpi` has a ``name``, a ``label``, a ``kind`` (``rate`` in [0, 1], ``score``,
``count`` or ``money``), a ``direction`` (``higher`` or ``lower`` is better), ``vanity``
(a volume-only activity metric, not a quality measure: the guide's "don't confuse activity
metrics (total conversations) with quality metrics (resolution rate)"), ``business`` (money
tied to revenue or cost, as each goal set needs one) and its written ``definition``.

Units and periods
-----------------
A rate or score is the mean of *units* (0/1 for a rate): conversations, labelled user
messages or scored user messages. A unit belongs to the period of its conversation's start
(``started_at``): the ISO week (Monday 00:00 UTC to Sunday, label ``YYYY-Www``, ``freq="W"``)
or the calendar month in UTC (label ``YYYY-MM``, ``freq="M"``), as :mod:`metrics.core.periods`
defines them (``"week"`` and ``"month"`` are accepted too). Conversations without a
start time are left out of every series. ``money`` KPIs come from the ROI model
(:func:`metrics.roi.compute_roi` of :func:`metrics.roi.inputs_from_data` on the period's
conversations, with the period's volume scaled to a month: x 30.4375 / days in the period).

Complete period
---------------
A period is *complete* when the data reaches its first and its last day: the first
conversation start is before the end of the period's first day and the last message is on
or after the start of its last day (a weekly export taken on Sunday evening completes the
week). Deltas and alerts use complete periods only.

Deltas (:func:`kpi_delta`)
--------------------------
``WoW``: the latest complete ISO week against the week before; ``MoM``: the latest complete
calendar month against the month before. ``delta = current - previous`` (for a rate in
proportion units: 0.021 is +2.1 percentage points); ``relative_delta = delta / |previous|``.
Rates are tested with the pooled two-proportion z-test
(:func:`metrics.core.stats.two_proportion_ztest`); the move is *significant* when ``p < alpha``
(default 0.05). Scores, counts and money are "not tested" (their p-value is NaN).

RAG status (:func:`rag_status`)
-------------------------------
For a higher-is-better metric: ``green`` when ``value >= green``, ``red`` when
``value < red``, otherwise ``amber``; mirrored for lower-is-better (``green`` when
``value <= green``, ``red`` when ``value > red``). ``none`` when there is no value or no band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from metrics.errors import ChatlensError, ConfigError, InsufficientDataError
from metrics.core.periods import normalise_freq, period_end, period_label, period_range, period_start
from metrics.core.stats import two_proportion_ztest

__all__ = [
    "KINDS",
    "PROVENANCES",
    "AGGREGATES",
    "definitions_markdown",
    "FAMILY_TESTS",
    "KPI_TESTS",
    "DIRECTIONS",
    "FREQUENCIES",
    "STATUSES",
    "NOT_TESTED",
    "Z_TEST",
    "Kpi",
    "CATALOGUE",
    "KPI_NAMES",
    "get_kpi",
    "KpiOptions",
    "KpiData",
    "KpiValue",
    "KpiDelta",
    "kpi_units",
    "kpi_series",
    "kpi_value",
    "kpi_window",
    "kpi_delta",
    "period_delta",
    "latest_complete_period",
    "rag_status",
    "kpi_table",
    "format_value",
    "format_delta",
]

KINDS = ("rate", "score", "count", "money")
DIRECTIONS = ("higher", "lower")
FREQUENCIES = ("W", "M")
STATUSES = ("green", "amber", "red", "none")
NOT_TESTED = "not tested"
Z_TEST = "two-proportion z-test"
_NAN = float("nan")
_DAYS_PER_MONTH = 365.25 / 12  # the ROI model's month (30.4375 days)
_DAY = pd.Timedelta(days=1)


#: Where a KPI's number comes from: only the data; an assumption the user edits (the ROI page's costs and lead
#: values); or both.
PROVENANCES = ("data", "assumption", "mixed")
#: How a KPI aggregates its units: the mean (a rate or score), their count, their sum, or the ROI model.
AGGREGATES = ("mean", "count", "sum", "roi")


@dataclass(frozen=True)
class Kpi:
    """One entry of the semantic layer: everything the product says about a KPI, in one place.

    ``name``, ``label`` and ``kind`` (its unit: ``rate`` in [0, 1], ``score``, ``count``, ``money``);
    ``direction`` (``higher`` or ``lower`` is better); ``family`` (the package that owns the definition; the page
    that explores it is the UI's business: ``ui/kpi_pages.py``); ``definition`` (one sentence), with ``numerator``, ``denominator`` and
    ``population`` (the units it is a mean, count or sum of) spelled out; ``needs`` (the columns the data must
    have; none for the conversation basics); ``provenance`` (:data:`PROVENANCES`); ``units`` (the function
    giving its per-conversation units from :class:`KpiData`; None for the ROI model's money KPIs) and
    ``aggregate`` (:data:`AGGREGATES`). Every KPI is assigned to the period in which its conversation started
    (module docstring). Goal bands are the user's (:mod:`metrics.improve.goals`; suggested ones in
    :func:`metrics.improve.goals.suggested_goals`). ``vanity``: activity, not quality; ``business``: money tied to
    revenue or cost.
    """

    name: str
    label: str
    kind: str
    direction: str
    family: str
    definition: str
    vanity: bool = False
    business: bool = False
    numerator: str = ""
    denominator: str = ""
    population: str = ""
    needs: tuple = ()
    provenance: str = "data"
    units: Callable | None = None
    aggregate: str = "mean"

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher"


def _k(name, label, kind, direction, family, definition, *, vanity=False, business=False, numerator="",
       denominator="", population="", needs=(), provenance="data", units=None, aggregate="mean"):
    if provenance not in PROVENANCES or aggregate not in AGGREGATES or kind not in KINDS:
        raise ValueError(f"KPI {name}: bad provenance, aggregate or kind")
    return Kpi(name, label, kind, direction, family, definition, vanity, business, numerator, denominator,
               population, tuple(needs), provenance, units, aggregate)




def get_kpi(name: str) -> Kpi:
    """The catalogue entry ``name``; ConfigError naming the known metrics otherwise.

    Examples
    --------
    >>> get_kpi("escalation_rate").direction
    'lower'
    >>> get_kpi("speed")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.ConfigError: unknown metric 'speed'; known: ...
    """
    if isinstance(name, str) and name.strip() in CATALOGUE:
        return CATALOGUE[name.strip()]
    raise ConfigError(f"unknown metric {name!r}; known: {', '.join(KPI_NAMES)}")


@dataclass(frozen=True)
class KpiOptions:
    """Definitions the KPIs depend on (all optional, keyword only).

    ``outcome_rules``: :class:`metrics.outcomes.OutcomeRules` (default rules);
    ``fallback_intent``: the intent meaning "not understood" (default ``nlu_fallback``);
    ``funnel``: the lead funnel's stages (default :data:`metrics.funnel.DEFAULT_LEAD_FUNNEL`);
    ``lead_stage``: index or name of the stage that makes a lead (default ``"email provided"``,
    falling back to the last stage when no stage has that name); ``roi_base``: the
    :class:`metrics.roi.RoiInputs` whose costs the money KPIs use (default the guide's example);
    ``cutoffs``: sentiment label cut-offs (:class:`metrics.sentiment.Cutoffs`); ``funnel_strict``: stages must be
    reached in order (:func:`metrics.funnel.reached_stage`).
    """

    outcome_rules: object | None = None
    fallback_intent: str = "nlu_fallback"
    funnel: tuple | None = None
    lead_stage: int | str = "email provided"
    roi_base: object | None = None
    cutoffs: object | None = None
    funnel_strict: bool = True

    def stages(self) -> tuple:
        from metrics.funnel import DEFAULT_LEAD_FUNNEL

        return tuple(self.funnel) if self.funnel else DEFAULT_LEAD_FUNNEL

    def lead_index(self) -> int:
        stages = self.stages()
        if isinstance(self.lead_stage, (int, np.integer)) and not isinstance(self.lead_stage, bool):
            if not 0 <= int(self.lead_stage) < len(stages):
                raise ConfigError(f"lead_stage must be a stage index 0..{len(stages) - 1}, got {self.lead_stage!r}")
            return int(self.lead_stage)
        names = [s.name for s in stages]
        return names.index(self.lead_stage) if self.lead_stage in names else len(stages) - 1


# --------------------------------------------------------------------------- units per metric

class KpiData:
    """One slice of data plus the family results (outcome table, funnel reach, ...) its KPIs share.

    Computing several KPIs through one ``KpiData`` classifies the outcomes, reaches the funnel, ...
    once for all of them; :func:`kpi_series` and the alert rules (:mod:`metrics.improve.alerts`) use it.
    The frames are read, never modified. ``options``: :class:`KpiOptions` (default rules), keyword only.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["agent", "user"], "text": ["x", "y"],
    ...                   "row": [1, 2], "timestamp": pd.to_datetime(["2026-08-03", "2026-08-04"], utc=True)})
    >>> data = KpiData(m, conversation_rollup(m))
    >>> data.series("escalation_rate")["value"].tolist(), data.series("total_conversations")["value"].tolist()
    ([0.5], [2.0])
    """

    def __init__(self, messages: pd.DataFrame, rollup: pd.DataFrame, options: KpiOptions | None = None):
        self.messages, self.rollup, self.options = messages, rollup, _options(options)
        self._cache: dict[str, object] = {}
        self._errors: dict[str, str] | None = None  # set by from_facts: no messages, every unit precomputed

    @classmethod
    def from_facts(cls, rollup: pd.DataFrame, units: Mapping[str, pd.DataFrame], errors: Mapping[str, str],
                   roi_facts, options: KpiOptions | None = None) -> "KpiData":
        """A ``KpiData`` without messages: each unit KPI's units (``units[name]``, the frame its units
        function gives, in any row order) or the reason it is unavailable (``errors[name]``), and the
        ROI model's per-conversation facts (``metrics.roi._BasisFacts``, rows in ``rollup`` order).
        The facts pipeline (:mod:`metrics.improve.facts`) builds it from the combined shard facts."""
        data = cls(None, rollup, options)
        data._errors = dict(errors)
        for name, frame in units.items():
            data._cache[f"units_{name}"] = frame
        data._cache["roi_facts"] = roi_facts
        return data

    def metric_units(self, metric: str) -> pd.DataFrame:
        """The units of a (non-ROI) KPI on this slice, computed once."""
        if self._errors is not None:
            if metric in self._errors:
                raise InsufficientDataError(self._errors[metric])
            if f"units_{metric}" not in self._cache:
                raise ValueError(f"no precomputed units for {metric!r}")
        return self.get(f"units_{metric}", lambda: _UNITS[metric][0](self))

    def series(self, metric: str, *, freq: str = "W", periods: set | None = None) -> pd.DataFrame:
        """:func:`kpi_series` of ``metric`` on this slice; ``periods`` (period starts, UTC): the ROI
        metrics run their model for those periods only (others get NaN), the other KPIs ignore it."""
        return _series(self, get_kpi(metric).name, _check_freq(freq), periods)

    def get(self, key: str, make: Callable[[], object]):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def outcome_table(self) -> pd.DataFrame:
        from metrics.outcomes import outcome_table

        return self.get("outcomes", lambda: outcome_table(self.messages, self.rollup,
                                                          rules=self.options.outcome_rules))

    def reached(self) -> pd.DataFrame:
        from metrics.funnel import reached_stage

        if "event" not in self.messages.columns and any(s.rule.kind == "event" for s in self.options.stages()):
            raise InsufficientDataError("the lead funnel needs an 'event' column (inquiry, qualification, ...)")
        return self.get("reached", lambda: reached_stage(self.messages, self.options.stages(),
                                                          strict=self.options.funnel_strict))


def _units(ids, values) -> pd.DataFrame:
    # .array keeps the ids as a string array (to_numpy would box every id into a Python str and back)
    return pd.DataFrame({"conversation_id": pd.Series(ids, dtype="str").array,
                         "value": np.asarray(values, dtype="float64")})


def _u_outcome(column_rule: str) -> Callable[[KpiData], pd.DataFrame]:
    def units(data: KpiData) -> pd.DataFrame:
        t = data.outcome_table()
        decided = t["outcome"].ne("in_progress").to_numpy(bool)
        if column_rule == "escalated_all":
            return _units(t["conversation_id"], t["escalated"].to_numpy(bool))
        t = t[decided]
        if column_rule == "contained":
            return _units(t["conversation_id"], ~t["escalated"].to_numpy(bool))
        return _units(t["conversation_id"], t["outcome"].eq(column_rule).to_numpy(bool))
    return units


def _u_intent_accuracy(data: KpiData) -> pd.DataFrame:
    from metrics.intents import labelled_messages

    lab = labelled_messages(data.messages, fallback_intent=data.options.fallback_intent)
    correct = lab["intent"].astype("str").eq(lab["true_intent"].astype("str")).fillna(False).to_numpy(bool)
    return _units(lab["conversation_id"], correct)


def _u_csat(data: KpiData) -> pd.DataFrame:
    if "rating" not in data.rollup.columns:
        raise InsufficientDataError("CSAT needs a 'rating' column (1-5 stars)")
    rating = pd.to_numeric(data.rollup["rating"], errors="coerce").astype("float64")
    keep = rating.notna().to_numpy(bool)
    return _units(data.rollup["conversation_id"][keep], rating[keep])


def _u_negative_sentiment(data: KpiData) -> pd.DataFrame:
    from metrics.sentiment import Cutoffs, sentiment_labels

    m = data.messages
    if "compound" not in m.columns:
        raise InsufficientDataError("negative sentiment needs the messages' sentiment scores (a 'compound' "
                                    "column), and they could not be computed for this data")
    keep = m["speaker"].eq("user").fillna(False).to_numpy(bool) & m["compound"].notna().to_numpy(bool)
    compound = m["compound"][keep].astype("float64")
    # label each distinct score once (sentiment_labels is the definition), then map back to the messages
    codes, scores = pd.factorize(compound)
    labels = sentiment_labels(pd.Series(scores, dtype="float64"), cutoffs=data.options.cutoffs or Cutoffs())
    negative = labels.eq("negative").fillna(False).to_numpy(bool)
    return _units(m["conversation_id"][keep], negative[codes] if len(codes) else np.zeros(0, bool))


def _u_lead_conversion(data: KpiData) -> pd.DataFrame:
    r = data.reached()
    entered = r[r["highest_stage"].ge(0).to_numpy(bool)]
    return _units(entered["conversation_id"], entered["highest_stage"].ge(data.options.lead_index()).to_numpy(bool))


def _leads(data: KpiData) -> pd.DataFrame:
    r = data.reached()
    return r[r["highest_stage"].ge(data.options.lead_index()).to_numpy(bool)]


def _u_conversion(data: KpiData) -> pd.DataFrame:
    if "converted" not in data.rollup.columns:
        raise InsufficientDataError("lead-to-customer conversion needs a 'converted' column")
    leads = _leads(data)
    converted = data.rollup.set_index(data.rollup["conversation_id"].astype("str"))["converted"].astype("boolean")
    flags = converted.reindex(leads["conversation_id"].astype("str")).fillna(False).to_numpy(bool)
    return _units(leads["conversation_id"], flags)


def _u_lead_count(data: KpiData) -> pd.DataFrame:
    leads = _leads(data)
    return _units(leads["conversation_id"], np.ones(len(leads)))


def _u_revenue(data: KpiData) -> pd.DataFrame:
    r = data.rollup
    if "converted" not in r.columns or "conversion_value" not in r.columns:
        raise InsufficientDataError("recorded revenue needs 'converted' and 'conversion_value' columns")
    value = pd.to_numeric(r["conversion_value"], errors="coerce").astype("float64")
    keep = r["converted"].astype("boolean").fillna(False).to_numpy(bool) & value.notna().to_numpy(bool)
    return _units(r["conversation_id"][keep], value[keep])


def _u_total(data: KpiData) -> pd.DataFrame:
    return _units(data.rollup["conversation_id"], np.ones(len(data.rollup)))


# --------------------------------------------------------------------------- the catalogue (the semantic layer)

_CONV = "conversations"
_DECIDED = "decided conversations (the Chatlens outcome rules; in-progress ones are left out)"

#: Every KPI by name, in the order the dashboard offers them: the one registry the pages, the CLI, alerts, goals
#: and reports read (README "Definitions" is generated from it by :func:`definitions_markdown`).
CATALOGUE: dict[str, Kpi] = {k.name: k for k in (
    _k("resolution_rate", "Resolution rate", "rate", "higher", "outcomes",
       "resolved conversations / decided conversations (the Chatlens outcome rules; in-progress "
       "conversations are left out)", numerator="resolved conversations",
       denominator=_DECIDED, population=_CONV, units=_u_outcome("resolved")),
    _k("escalation_rate", "Escalation rate", "rate", "lower", "outcomes",
       "conversations with an escalation signal (agent message, handoff event or escalated outcome) / "
       "all conversations",
       numerator="conversations with an agent message, a handoff event or an escalated outcome",
       denominator="all conversations", population=_CONV, units=_u_outcome("escalated_all")),
    _k("abandonment_rate", "Abandonment rate", "rate", "lower", "outcomes",
       "abandoned conversations / decided conversations (the Chatlens outcome rules)",
       numerator="abandoned conversations", denominator=_DECIDED, population=_CONV,
       units=_u_outcome("abandoned")),
    _k("containment_rate", "Containment rate", "rate", "higher", "outcomes",
       "decided conversations without an escalation signal / decided conversations (no human involved)",
       numerator="decided conversations without an escalation signal",
       denominator=_DECIDED, population=_CONV, units=_u_outcome("contained")),
    _k("intent_accuracy", "Intent accuracy", "rate", "higher", "intents",
       "labelled user messages whose predicted intent equals the human label / labelled user messages "
       "(a missing prediction counts as the fallback intent)",
       numerator="labelled user messages predicted as their human label", denominator="labelled user messages",
       population="user messages with a human label", needs=("true_intent",), units=_u_intent_accuracy),
    _k("csat", "CSAT (mean rating)", "score", "higher", "sentiment",
       "mean post-conversation rating (1-5 stars) of rated conversations",
       numerator="sum of the ratings", denominator="rated conversations", population="rated conversations",
       needs=("rating",), units=_u_csat),
    _k("negative_sentiment_rate", "Negative sentiment", "rate", "lower", "sentiment",
       "scored user messages labelled negative (VADER compound <= -0.05) / scored user messages",
       numerator="user messages with VADER compound <= -0.05",
       denominator="scored user messages", population="user messages with text", needs=("text",),
       units=_u_negative_sentiment),
    _k("lead_conversion_rate", "Lead conversion", "rate", "higher", "funnel",
       "conversations that reached the lead stage of the lead funnel (default: e-mail provided) / "
       "conversations that entered the funnel",
       numerator="conversations that reached the lead stage (default: e-mail provided)",
       denominator="conversations that entered the funnel", population=_CONV, needs=("event",),
       units=_u_lead_conversion),
    _k("conversion_rate", "Lead-to-customer conversion", "rate", "higher", "funnel",
       "leads (conversations reaching the lead stage) with converted = true / leads",
       numerator="leads with converted = true", denominator="leads", population="leads",
       needs=("event", "converted"), units=_u_conversion),
    _k("lead_count", "Leads", "count", "higher", "funnel",
       "conversations that reached the lead stage of the lead funnel",
       numerator="conversations that reached the lead stage", population=_CONV, needs=("event",),
       units=_u_lead_count, aggregate="count"),
    _k("revenue", "Revenue (recorded)", "money", "higher", "funnel",
       "sum of conversion_value over converted conversations", business=True,
       numerator="conversion_value of converted conversations", population="converted conversations",
       needs=("converted", "conversion_value"), units=_u_revenue, aggregate="sum"),
    _k("cost_per_outcome", "Cost per outcome", "money", "lower", "roi",
       "ROI model: total monthly cost / successful outcomes per month", business=True,
       numerator="total monthly cost (assumed: the ROI page's costs)",
       denominator="successful outcomes per month (from the data)", population=_CONV, provenance="mixed",
       aggregate="roi"),
    _k("automation_savings", "Cost savings", "money", "higher", "roi",
       "ROI model: contained conversations x human cost per ticket - total monthly cost, per month",
       business=True,
       numerator="contained conversations per month (data) x human cost per ticket (assumed) - total monthly "
                 "cost (assumed)", population=_CONV, provenance="mixed", aggregate="roi"),
    _k("attributed_revenue", "Attributed revenue", "money", "higher", "roi",
       "ROI model: leads x value per lead x lead conversion rate, per month", business=True,
       numerator="leads per month x value per lead x lead conversion rate (each from the data when it has them, "
                 "else the ROI page's assumption)", population=_CONV, needs=("event",), provenance="mixed",
       aggregate="roi"),
    _k("total_conversations", "Total conversations", "count", "higher", "volume",
       "conversations started in the period: activity, not quality", vanity=True,
       numerator="conversations started in the period", population=_CONV, units=_u_total, aggregate="count"),
)}
KPI_NAMES: tuple[str, ...] = tuple(CATALOGUE)
#: name -> (units function, aggregate): a view of the catalogue for the period code below.
_UNITS: dict[str, tuple[Callable[[KpiData], pd.DataFrame] | None, str]] = {
    k.name: (k.units, k.aggregate) for k in CATALOGUE.values()}
_ROI_FIELDS = {"cost_per_outcome": "cost_per_outcome", "automation_savings": "automation_savings",
               "attributed_revenue": "attributed_revenue"}


#: The module that owns each family's definitions (what a KPI's units call).
_FAMILY_MODULES = {"outcomes": "metrics/outcomes/__init__.py", "intents": "metrics/intents/__init__.py",
                   "sentiment": "metrics/sentiment/measures.py", "funnel": "metrics/funnel/__init__.py",
                   "roi": "metrics/roi/__init__.py", "volume": "metrics/engagement/volume.py"}
#: Where each family's hand-computed golden tests live (the registry's own goldens: ``KPI_TESTS``).
FAMILY_TESTS = {"outcomes": "tests/metrics/outcomes/test_outcomes.py", "intents": "tests/metrics/intents/test_intents.py",
                "sentiment": "tests/metrics/sentiment/test_sentiment_metrics.py", "funnel": "tests/metrics/funnel/test_funnel.py",
                "roi": "tests/metrics/roi/test_roi.py", "volume": "tests/metrics/engagement/test_volume.py"}
KPI_TESTS = "tests/metrics/test_kpis.py"


def definitions_markdown(pages: Mapping[str, str] | None = None) -> str:
    """The README's "Definitions" section body, generated from :data:`CATALOGUE` (a test keeps them equal).

    ``pages`` maps a KPI name to the page that explores it (the UI's map, ``ui/kpi_pages.py``; this package
    never names pages): with it, the code column ends with that page.

    Examples
    --------
    >>> definitions_markdown().splitlines()[2].startswith("| Resolution rate | `resolution_rate` | rate |")
    True
    """
    from metrics.improve.goals import suggested_goals

    bands = {}
    for goal in suggested_goals():
        for metric in goal.metrics:
            bands.setdefault(metric, goal)
    head = ("| Label | Name | Unit | Better | Numerator | Denominator | Population | Needs | Provenance | "
            f"Suggested goal | Code | Tests (and `{KPI_TESTS}`) |")
    lines = [head, "|" + "---|" * 12]
    for k in CATALOGUE.values():
        goal = bands.get(k.name)
        band = "—"
        if goal is not None and goal.metrics[0] == k.name:
            band = f"red {format_value(goal.red, k.kind)}, green {format_value(goal.green, k.kind)}"
        units = k.units.__qualname__.split(".")[0] if k.units is not None else "_roi_series"
        code = f"`metrics/kpis.py:{units}`, `{_FAMILY_MODULES[k.family]}`"
        if pages and k.name in pages:
            code += f"; shown on `{pages[k.name]}`"
        cells = [k.label, f"`{k.name}`", k.kind, k.direction, k.numerator, k.denominator or "—",
                 k.population or "—", ", ".join(f"`{n}`" for n in k.needs) or "—", k.provenance, band, code,
                 f"`{FAMILY_TESTS[k.family]}`"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _options(options) -> KpiOptions:
    if options is None:
        return KpiOptions()
    if not isinstance(options, KpiOptions):
        raise ConfigError(f"options must be a KpiOptions, got {type(options).__name__}")
    return options


def kpi_units(messages: pd.DataFrame, rollup: pd.DataFrame, *, metric: str,
              options: KpiOptions | None = None) -> pd.DataFrame:
    """The units a KPI averages, counts or sums: columns ``conversation_id``, ``value`` (float).

    Rates give 0/1 values (the mean is the rate), ``csat`` the rating, ``revenue`` the
    conversion value, counts 1 per unit. ROI metrics have no units (ConfigError). Raises
    InsufficientDataError when the data lacks a needed column. Inputs are not modified.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["user", "agent"], "text": ["x", "y"],
    ...     "timestamp": pd.to_datetime(["2026-08-03", "2026-08-04"], utc=True), "row": [1, 2]})
    >>> kpi_units(m, conversation_rollup(m), metric="escalation_rate")["value"].tolist()
    [0.0, 1.0]
    """
    kpi = get_kpi(metric)
    fn, _ = _UNITS[kpi.name]
    if fn is None:
        raise ConfigError(f"{kpi.name} comes from the ROI model and has no per-conversation units")
    return fn(KpiData(messages, rollup, options))


# --------------------------------------------------------------------------- periods

# Periods are metrics.core.periods' ISO weeks and calendar months, taken in UTC.

def _check_freq(freq: str) -> str:
    """``"W"`` or ``"M"`` (either spelling accepted); days are not a KPI period."""
    return normalise_freq(freq, allowed=("W", "M"))


def _require_times(rollup: pd.DataFrame) -> None:
    if len(rollup) and not rollup["started_at"].notna().any():
        raise InsufficientDataError("KPIs over time need timestamps, and this dataset has none; "
                                    "load an export with a timestamp column")


def _periods(rollup: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Every period from the first to the last conversation start, with completeness."""
    cols = {"period": "str", "period_start": "datetime64[ns, UTC]", "period_end": "datetime64[ns, UTC]",
            "complete": "bool"}
    starts = rollup["started_at"].dropna() if len(rollup) else pd.Series([], dtype="datetime64[ns, UTC]")
    if len(starts) == 0:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in cols.items()})
    first_start, last_start = period_start(pd.Series([starts.min(), starts.max()]).dt.tz_convert("UTC"), freq)
    full = pd.Series(period_range(first_start, last_start, freq), dtype="datetime64[ns, UTC]")
    ends = pd.Series(period_end(pd.DatetimeIndex(full), freq), dtype="datetime64[ns, UTC]")
    data_first = starts.min()
    ended = rollup["ended_at"].dropna()
    data_last = max(ended.max(), starts.max()) if len(ended) else starts.max()
    complete = (data_first < full + _DAY).to_numpy(bool) & (data_last >= ends - _DAY).to_numpy(bool)
    return pd.DataFrame({"period": period_label(full, freq).astype("str").to_numpy(), "period_start": full.to_numpy(),
                         "period_end": ends.to_numpy(), "complete": complete}).astype(cols)


def _ns(stamps: pd.Series) -> np.ndarray:
    """UTC timestamps as int64 epoch nanoseconds (fast keys; no per-element Timestamp objects)."""
    return stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view("int64")


def _conversation_periods(rollup: pd.DataFrame, freq: str) -> pd.Series:
    """Period start (int64 UTC ns) of every timed conversation, indexed by conversation_id."""
    timed = rollup[rollup["started_at"].notna()]
    return pd.Series(_ns(period_start(timed["started_at"].dt.tz_convert("UTC"), freq)),
                     index=pd.Index(timed["conversation_id"].astype("str"), name="conversation_id"),
                     name="period_start", dtype="int64")


def _period_codes(ids: pd.Series, period_of: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(period start ns, found mask) of each conversation id (exact int64, no float round trip)."""
    pos = period_of.index.get_indexer(ids.astype("str"))
    found = pos >= 0
    return period_of.to_numpy()[np.where(found, pos, 0)], found


def _aggregate(units: pd.DataFrame, positions: np.ndarray, period_of: pd.Series, periods: pd.DataFrame,
               how: str) -> pd.DataFrame:
    """Units per period; ``positions`` locate each unit's conversation in ``period_of`` (-1: untimed)."""
    keep = positions >= 0
    starts = period_of.to_numpy()[np.where(keep, positions, 0)]
    keys = pd.Index(_ns(periods["period_start"]))
    g = pd.Series(units["value"].to_numpy(dtype="float64")[keep]).groupby(starts[keep])
    n = g.size().reindex(keys, fill_value=0).to_numpy("int64")
    total = g.sum().reindex(keys, fill_value=0.0).to_numpy("float64")
    if how == "mean":
        value = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        successes = total
    elif how == "count":
        value, successes = n.astype("float64"), np.full(len(n), np.nan)
    else:  # sum
        value, successes = total, np.full(len(n), np.nan)
    return pd.DataFrame({"value": value, "successes": successes, "n": n})


def _roi_of(messages: pd.DataFrame, rollup: pd.DataFrame, days: float, base):
    """The ROI model on the conversations of a ``days``-long window, volumes scaled to a month."""
    from metrics.roi import inputs_from_data

    return _roi_scaled(inputs_from_data(messages, rollup, base=base), len(rollup), days)


def _roi_scaled(inputs, conversation_count: int, days: float):
    """compute_roi of ``inputs`` (derived from ``conversation_count`` conversations over ``days``
    days) with the volumes scaled to a month."""
    from metrics.roi import compute_roi, scale_volume

    months = conversation_count / inputs.conversations_monthly if inputs.conversations_monthly else 1.0
    return compute_roi(scale_volume(inputs, months * _DAYS_PER_MONTH / days))


def _roi_facts(data: KpiData):
    """The ROI model's per-conversation facts of all the data, classified once (metrics.roi's
    data_basis counts them; the outcome table is the one the outcome KPIs share)."""
    from metrics.roi import _basis_facts

    return data.get("roi_facts", lambda: _basis_facts(data.messages, data.rollup, outcome_table=data.outcome_table))


def _roi_series(data: KpiData, metric: str, freq: str, periods: pd.DataFrame, period_of: pd.Series,
                wanted: set | None = None) -> pd.DataFrame:
    """The ROI metric per period; only the ``wanted`` period starts are computed (all when None).

    Each period counts its conversations' facts (:func:`_roi_facts`, computed once for the
    whole data): the same numbers as inputs_from_data on the period's messages and rollup,
    since every fact belongs to one conversation."""
    from metrics.roi import RoiInputs, _basis_of, inputs_from_basis

    cache = data.get(f"roi_{freq}", dict)
    slices = data.get(f"roi_slices_{freq}", lambda: _period_rows(data.rollup, period_of))
    base = data.options.roi_base or RoiInputs()
    field_name = _ROI_FIELDS[metric]
    values, counts = [], []
    for row in periods.itertuples(index=False):
        rows = slices.get(int(row.period_start.value))
        if rows is None or (wanted is not None and row.period_start not in wanted):
            values.append(_NAN)
            counts.append(0 if rows is None else len(rows))
            continue
        if row.period_start not in cache:
            inputs = inputs_from_basis(_basis_of(_roi_facts(data).take(rows)), base=base)
            cache[row.period_start] = _roi_scaled(inputs, len(rows), (row.period_end - row.period_start) / _DAY)
        values.append(getattr(cache[row.period_start], field_name))
        counts.append(len(rows))
    return pd.DataFrame({"value": np.asarray(values, dtype="float64"), "successes": np.full(len(values), np.nan),
                         "n": np.asarray(counts, dtype="int64")})


def _period_rows(rollup: pd.DataFrame, period_of: pd.Series) -> dict:
    """``{period_start ns: rollup positions}`` of the conversations started in each period."""
    r_code, r_found = _period_codes(rollup["conversation_id"], period_of)
    r_idx = np.flatnonzero(r_found)
    return {int(k): r_idx[v] for k, v in pd.Series(r_idx).groupby(r_code[r_found]).indices.items()}


def _positions(index: pd.Index, ids: pd.Series) -> np.ndarray:
    """Position of each of ``ids`` in ``index`` (-1: absent); no hashing when they are the same ids in order."""
    ids = ids.astype("str")
    if len(ids) == len(index) and index.equals(pd.Index(ids.array)):
        return np.arange(len(index))
    return index.get_indexer(ids)


def _series(data: KpiData, metric: str, freq: str, wanted: set | None = None) -> pd.DataFrame:
    _require_times(data.rollup)
    periods = data.get(f"periods_{freq}", lambda: _periods(data.rollup, freq))
    period_of = data.get(f"period_of_{freq}", lambda: _conversation_periods(data.rollup, freq))
    fn, how = _UNITS[metric]
    if how == "roi":
        values = _roi_series(data, metric, freq, periods, period_of, wanted)
    else:
        units = data.metric_units(metric)
        # every freq's period_of has the same index (the timed conversations, rollup order): locate once
        positions = data.get(f"positions_{metric}", lambda: _positions(period_of.index, units["conversation_id"]))
        values = _aggregate(units, positions, period_of, periods, how)
    out = pd.concat([periods.reset_index(drop=True), values], axis=1)
    out.insert(0, "metric", pd.Series([metric] * len(out), dtype="str"))
    return out


def kpi_series(messages: pd.DataFrame, rollup: pd.DataFrame, *, metric: str, freq: str = "W",
               options: KpiOptions | None = None) -> pd.DataFrame:
    """The KPI per ISO week (``freq="W"``) or calendar month (``"M"``), UTC.

    Columns: ``metric``, ``period`` (``YYYY-Www`` / ``YYYY-MM``), ``period_start``,
    ``period_end`` (UTC, end exclusive), ``complete`` (bool, module docstring), ``value``
    (float; NaN for a period without units), ``successes`` (rates: units equal to 1; NaN
    otherwise), ``n`` (units; for ROI metrics the period's conversations). Every period from
    the first to the last conversation start is present, oldest first.

    Empty rollup: empty frame. No timestamps: InsufficientDataError; a missing column the
    KPI needs: InsufficientDataError naming it. Inputs are not modified.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b", "c"], "speaker": ["user", "agent", "user"],
    ...     "text": ["x", "y", "z"], "row": [1, 2, 3],
    ...     "timestamp": pd.to_datetime(["2026-08-03", "2026-08-04", "2026-08-10"], utc=True)})
    >>> s = kpi_series(m, conversation_rollup(m), metric="escalation_rate")
    >>> s[["period", "value", "successes", "n"]].values.tolist()
    [['2026-W32', 0.5, 1.0, 2], ['2026-W33', 0.0, 0.0, 1]]
    """
    kpi = get_kpi(metric)
    return _series(KpiData(messages, rollup, options), kpi.name, _check_freq(freq))


@dataclass(frozen=True)
class KpiValue:
    """A KPI over all the data given: ``value`` (NaN without units), ``successes`` (rates), ``n`` units."""

    metric: str
    value: float
    successes: float
    n: int


def _value(data: KpiData, metric: str) -> KpiValue:
    fn, how = _UNITS[metric]
    if how == "roi":
        from metrics.roi import RoiInputs, _basis_of, compute_roi, inputs_from_basis

        res = compute_roi(inputs_from_basis(_basis_of(_roi_facts(data)), base=data.options.roi_base or RoiInputs()))
        return KpiValue(metric, float(getattr(res, _ROI_FIELDS[metric])), _NAN, int(len(data.rollup)))
    units = data.metric_units(metric)
    n = int(len(units))
    total = float(units["value"].sum()) if n else 0.0
    if how == "mean":
        return KpiValue(metric, total / n if n else _NAN, total, n)
    if how == "count":
        return KpiValue(metric, float(n), _NAN, n)
    return KpiValue(metric, total, _NAN, n)


def kpi_value(messages: pd.DataFrame, rollup: pd.DataFrame, *, metric: str,
              options: KpiOptions | None = None) -> KpiValue:
    """The KPI over every conversation given (no period split; timestamps not needed).

    ROI metrics are the ROI model on the data as a whole (:func:`metrics.roi.inputs_from_data`).
    Empty input: ``value`` NaN (0 for counts and sums), ``n`` 0.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["user", "agent"], "text": ["x", "y"],
    ...     "timestamp": pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns, UTC]"), "row": [1, 2]})
    >>> kpi_value(m, conversation_rollup(m), metric="escalation_rate")
    KpiValue(metric='escalation_rate', value=0.5, successes=1.0, n=2)
    """
    kpi = get_kpi(metric)
    return _value(KpiData(messages, rollup, options), kpi.name)


def kpi_window(messages: pd.DataFrame, rollup: pd.DataFrame, *, metric: str, start, end,
               options: KpiOptions | None = None) -> KpiValue:
    """The KPI over the conversations started in ``[start, end)`` (UTC).

    Rates, scores, counts and sums as in :func:`kpi_series`; ROI metrics are the ROI model on
    the window's conversations with their volume scaled to a month (x 30.4375 / window days),
    exactly as per period. No conversation in the window: ``value`` NaN (0 for counts and
    sums), ``n`` 0. Raises InsufficientDataError without timestamps.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b", "c"], "speaker": ["user", "agent", "agent"],
    ...     "text": ["x"] * 3, "row": [1, 2, 3],
    ...     "timestamp": pd.to_datetime(["2026-08-03", "2026-08-04", "2026-08-20"], utc=True)})
    >>> kpi_window(m, conversation_rollup(m), metric="escalation_rate", start="2026-08-01", end="2026-08-15")
    KpiValue(metric='escalation_rate', value=0.5, successes=1.0, n=2)
    """
    kpi = get_kpi(metric)
    _require_times(rollup)
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    lo = lo.tz_localize("UTC") if lo.tzinfo is None else lo.tz_convert("UTC")
    hi = hi.tz_localize("UTC") if hi.tzinfo is None else hi.tz_convert("UTC")
    if not hi > lo:
        raise ConfigError(f"the window must end after it starts, got {start!r} to {end!r}")
    keep = (rollup["started_at"].ge(lo) & rollup["started_at"].lt(hi)).fillna(False).to_numpy(bool)
    if _UNITS[kpi.name][1] == "roi":
        from metrics.roi import RoiInputs

        r = rollup[keep]
        if len(r) == 0:
            return KpiValue(kpi.name, _NAN, _NAN, 0)
        m = messages[messages["conversation_id"].astype("str").isin(set(r["conversation_id"].astype("str")))
                     .to_numpy(bool)]
        res = _roi_of(m, r, (hi - lo) / _DAY, _options(options).roi_base or RoiInputs())
        return KpiValue(kpi.name, float(getattr(res, _ROI_FIELDS[kpi.name])), _NAN, int(len(r)))
    ids = set(rollup["conversation_id"].astype("str")[keep])
    fn, how = _UNITS[kpi.name]
    units = fn(KpiData(messages, rollup, options))
    values = units["value"].to_numpy(float)[units["conversation_id"].astype("str").isin(ids).to_numpy(bool)]
    n = int(len(values))
    total = float(values.sum()) if n else 0.0
    if how == "mean":
        return KpiValue(kpi.name, total / n if n else _NAN, total, n)
    if how == "count":
        return KpiValue(kpi.name, float(n), _NAN, n)
    return KpiValue(kpi.name, total, _NAN, n)


# --------------------------------------------------------------------------- deltas

@dataclass(frozen=True)
class KpiDelta:
    """The change of a KPI between the latest complete period and the one before.

    ``delta = current - previous``; ``relative_delta = delta / |previous|`` (NaN when the
    previous value is 0 or missing); ``p_value`` of the two-proportion z-test for rates (NaN
    when not tested); ``significant`` is ``p_value < alpha``; ``test`` names the test or says
    :data:`NOT_TESTED`. ``reason`` explains a missing delta (no complete period, ...).
    """

    metric: str
    freq: str
    current_period: str | None
    previous_period: str | None
    current: float
    previous: float
    current_n: int
    previous_n: int
    delta: float
    relative_delta: float
    p_value: float
    significant: bool
    test: str
    reason: str = ""


def latest_complete_period(series: pd.DataFrame) -> int | None:
    """Row position of the latest complete period in a :func:`kpi_series` frame, or None."""
    if len(series) == 0:
        return None
    complete = np.flatnonzero(series["complete"].to_numpy(bool))
    return int(complete[-1]) if len(complete) else None


def period_delta(series: pd.DataFrame, *, alpha: float = 0.05) -> KpiDelta:
    """:class:`KpiDelta` of a :func:`kpi_series` frame: latest complete period vs the period before.

    The previous period must be complete too; otherwise (or without a complete period) the
    delta is NaN and ``reason`` says why. Rates with units in both periods are tested.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"metric": ["escalation_rate"] * 2, "period": ["2026-W32", "2026-W33"],
    ...     "complete": [True, True], "value": [0.5, 0.25], "successes": [50.0, 25.0], "n": [100, 100]})
    >>> d = period_delta(s)
    >>> d.delta, round(d.p_value, 4), d.significant
    (-0.25, 0.0003, True)
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    metric = str(series["metric"].iloc[0]) if len(series) else ""
    kpi = CATALOGUE.get(metric)
    freq = "W" if len(series) and str(series["period"].iloc[0]).count("-W") else "M"
    what = "week" if freq == "W" else "month"
    i = latest_complete_period(series)

    def empty(reason: str, cur=None) -> KpiDelta:
        row = series.iloc[cur] if cur is not None else None
        return KpiDelta(metric, freq, None if row is None else str(row["period"]), None,
                        _NAN if row is None else float(row["value"]), _NAN,
                        0 if row is None else int(row["n"]), 0, _NAN, _NAN, _NAN, False, NOT_TESTED, reason)

    if i is None:
        return empty(f"no complete {what} in the data")
    if i == 0 or not bool(series["complete"].iloc[i - 1]):
        return empty(f"no complete {what} before {series['period'].iloc[i]}", i)
    cur, prev = series.iloc[i], series.iloc[i - 1]
    current, previous = float(cur["value"]), float(prev["value"])
    delta = current - previous
    relative = delta / abs(previous) if previous and not math.isnan(previous) else _NAN
    is_rate = kpi is not None and kpi.kind == "rate"
    p, test, reason = _NAN, NOT_TESTED, ""
    if is_rate and int(cur["n"]) > 0 and int(prev["n"]) > 0:
        _, p = two_proportion_ztest(int(round(cur["successes"])), int(cur["n"]),
                                    int(round(prev["successes"])), int(prev["n"]))
        test = Z_TEST
    elif is_rate:
        reason = f"no units in one of the two {what}s"
    return KpiDelta(metric, freq, str(cur["period"]), str(prev["period"]), current, previous, int(cur["n"]),
                    int(prev["n"]), delta, relative, p, bool(not math.isnan(p) and p < alpha), test, reason)


def kpi_delta(messages: pd.DataFrame, rollup: pd.DataFrame, *, metric: str, freq: str = "W",
              options: KpiOptions | None = None, alpha: float = 0.05) -> KpiDelta:
    """Week-over-week (``freq="W"``) or month-over-month (``"M"``) change of a KPI.

    See :func:`period_delta` and the module docstring for the definitions.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b", "c"], "speaker": ["user", "agent", "user"],
    ...     "text": ["x", "y", "z"], "row": [1, 2, 3],
    ...     "timestamp": pd.to_datetime(["2026-08-03", "2026-08-09", "2026-08-16"], utc=True)})
    >>> d = kpi_delta(m, conversation_rollup(m), metric="total_conversations")
    >>> d.current_period, d.previous_period, d.delta, d.test
    ('2026-W33', '2026-W32', -1.0, 'not tested')
    """
    return period_delta(kpi_series(messages, rollup, metric=metric, freq=freq, options=options), alpha=alpha)


# --------------------------------------------------------------------------- status

def rag_status(value, *, red, green, direction: str = "higher") -> str:
    """``'green' | 'amber' | 'red' | 'none'`` of ``value`` against a band (module docstring).

    ``none`` when the value, ``red`` or ``green`` is missing/NaN. ConfigError for an unknown
    direction or a band in the wrong order (higher: red <= green; lower: red >= green).

    Examples
    --------
    >>> rag_status(0.72, red=0.60, green=0.75), rag_status(0.80, red=0.60, green=0.75)
    ('amber', 'green')
    >>> rag_status(0.35, red=0.30, green=0.20, direction="lower")
    'red'
    >>> rag_status(float("nan"), red=0.6, green=0.75)
    'none'
    """
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction must be 'higher' or 'lower', got {direction!r}")
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (value, red, green)):
        return "none"
    value, red, green = float(value), float(red), float(green)
    if direction == "higher":
        if red > green:
            raise ConfigError(f"for a higher-is-better metric red ({red!r}) must be <= green ({green!r})")
        return "green" if value >= green else "red" if value < red else "amber"
    if red < green:
        raise ConfigError(f"for a lower-is-better metric red ({red!r}) must be >= green ({green!r})")
    return "green" if value <= green else "red" if value > red else "amber"


# --------------------------------------------------------------------------- the dashboard table

_TABLE_COLUMNS = ["name", "label", "kind", "direction", "vanity", "business", "available", "reason", "period",
                  "value", "n", "wow_previous", "wow_delta", "wow_relative_delta", "wow_p_value", "wow_significant",
                  "wow_test", "mom_period", "mom_value", "mom_delta", "mom_relative_delta", "mom_p_value",
                  "mom_significant", "mom_test", "red", "green", "status", "sparkline"]


def kpi_table(messages: pd.DataFrame, rollup: pd.DataFrame, *, metrics: Sequence[str] | None = None,
              options: KpiOptions | None = None, bands: Mapping[str, tuple[float, float]] | None = None,
              spark_periods: int = 12, alpha: float = 0.05) -> pd.DataFrame:
    """One row per KPI: the latest complete week's value, WoW and MoM deltas, status, sparkline.

    ``metrics`` defaults to the whole catalogue; ``bands`` maps a metric to ``(red, green)``
    for :func:`rag_status` (metrics without a band get ``none``). Columns: ``name, label,
    kind, direction, vanity, business``; ``available`` (False when the data lacks what the
    KPI needs; ``reason`` says what); ``period`` (latest complete ISO week), ``value``, ``n``;
    ``wow_previous, wow_delta, wow_relative_delta, wow_p_value, wow_significant, wow_test``;
    ``mom_period, mom_value, mom_delta, mom_relative_delta, mom_p_value, mom_significant,
    mom_test``; ``red, green, status``; ``sparkline`` (list of the last ``spark_periods``
    complete weeks' values, NaN kept; ``spark_periods=0`` for none, which also spares the ROI
    model runs of the earlier weeks).

    Without timestamps ``value`` is the KPI over all the data, ``period`` is ``"all"`` and the
    deltas are NaN with the reason. The family results are computed once for all KPIs.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["user", "agent"], "text": ["x", "y"],
    ...     "timestamp": pd.to_datetime(["2026-08-03", "2026-08-09"], utc=True), "row": [1, 2]})
    >>> t = kpi_table(m, conversation_rollup(m), metrics=["escalation_rate"], bands={"escalation_rate": (0.3, 0.2)})
    >>> t[["name", "period", "value", "status"]].values.tolist()
    [['escalation_rate', '2026-W32', 0.5, 'red']]
    """
    names = list(KPI_NAMES) if metrics is None else [get_kpi(m).name for m in metrics]
    if isinstance(spark_periods, bool) or not isinstance(spark_periods, int) or spark_periods < 0:
        raise ConfigError(f"spark_periods must be a whole number >= 0, got {spark_periods!r}")
    return _kpi_table(KpiData(messages, rollup, options), names, bands=bands, spark_periods=spark_periods,
                      alpha=alpha)


def _kpi_table(data: KpiData, names: Sequence[str], *, bands: Mapping[str, tuple[float, float]] | None,
               spark_periods: int, alpha: float) -> pd.DataFrame:
    """:func:`kpi_table` of the KPIs ``names`` (catalogue names) on ``data`` (from messages or from facts)."""
    rollup = data.rollup
    bands = dict(bands or {})
    timed = bool(len(rollup)) and bool(rollup["started_at"].notna().any())
    wanted = {}
    if timed:  # ROI metrics are computed only for the periods shown (each is a run of the ROI model)
        for freq, keep in (("W", max(spark_periods, 2)), ("M", 2)):
            periods = data.get(f"periods_{freq}", lambda f=freq: _periods(rollup, f))
            wanted[freq] = set(periods.loc[periods["complete"].to_numpy(bool), "period_start"].tail(keep))
    rows = []
    for name in names:
        kpi = CATALOGUE[name]
        red, green = bands.get(name, (None, None))
        row = {"name": name, "label": kpi.label, "kind": kpi.kind, "direction": kpi.direction,
               "vanity": kpi.vanity, "business": kpi.business, "available": True, "reason": "",
               "period": None, "value": _NAN, "n": 0, "wow_previous": _NAN, "wow_delta": _NAN,
               "wow_relative_delta": _NAN, "wow_p_value": _NAN, "wow_significant": False, "wow_test": NOT_TESTED,
               "mom_period": None, "mom_value": _NAN, "mom_delta": _NAN, "mom_relative_delta": _NAN,
               "mom_p_value": _NAN, "mom_significant": False, "mom_test": NOT_TESTED,
               "red": _NAN if red is None else float(red), "green": _NAN if green is None else float(green),
               "status": "none", "sparkline": []}
        try:
            if not timed:
                v = _value(data, name)
                row.update(period="all", value=v.value, n=v.n,
                           reason="no timestamps: the value covers all the data; deltas need timestamps")
            else:
                weekly = _series(data, name, "W", wanted["W"])
                monthly = _series(data, name, "M", wanted["M"])
                wow, mom = period_delta(weekly, alpha=alpha), period_delta(monthly, alpha=alpha)
                complete = weekly[weekly["complete"].to_numpy(bool)]
                row.update(period=wow.current_period, value=wow.current, n=wow.current_n,
                           wow_previous=wow.previous, wow_delta=wow.delta, wow_relative_delta=wow.relative_delta,
                           wow_p_value=wow.p_value, wow_significant=wow.significant, wow_test=wow.test,
                           mom_period=mom.current_period, mom_value=mom.current, mom_delta=mom.delta,
                           mom_relative_delta=mom.relative_delta, mom_p_value=mom.p_value,
                           mom_significant=mom.significant, mom_test=mom.test,
                           sparkline=complete["value"].tail(spark_periods).astype(float).tolist()
                           if spark_periods else [],
                           reason=wow.reason)
            row["status"] = rag_status(row["value"], red=red, green=green, direction=kpi.direction)
        except ChatlensError as exc:
            row.update(available=False, reason=str(exc))
        rows.append(row)
    if not rows:
        return pd.DataFrame({c: [] for c in _TABLE_COLUMNS})
    return pd.DataFrame(rows, columns=_TABLE_COLUMNS)


# --------------------------------------------------------------------------- formatting

def format_value(value, kind: str, *, currency: str = "$") -> str:
    """A KPI value as text: rates as %, money with the currency, counts with separators, scores 2 dp.

    Examples
    --------
    >>> format_value(0.7234, "rate"), format_value(14.5, "money"), format_value(1234.0, "count")
    ('72.3%', '$14.50', '1,234')
    >>> format_value(float("nan"), "rate")
    '—'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    value = float(value)
    if kind == "rate":
        return f"{value:.1%}"
    if kind == "money":
        return f"-{currency}{abs(value):,.2f}" if value < 0 else f"{currency}{value:,.2f}"
    if kind == "count":
        return f"{value:,.0f}"
    return f"{value:.2f}"


def format_delta(delta, kind: str, *, currency: str = "$") -> str:
    """A delta as signed text: rates in percentage points (``+2.1 pp``), others in their unit.

    Examples
    --------
    >>> format_delta(0.021, "rate"), format_delta(-3.0, "count"), format_delta(1.5, "money")
    ('+2.1 pp', '-3', '+$1.50')
    """
    if delta is None or (isinstance(delta, float) and math.isnan(delta)):
        return "—"
    delta = float(delta)
    sign = "+" if delta >= 0 else "-"
    if kind == "rate":
        return f"{sign}{abs(delta) * 100:.1f} pp"
    if kind == "money":
        return f"{sign}{currency}{abs(delta):,.2f}"
    if kind == "count":
        return f"{sign}{abs(delta):,.0f}"
    return f"{sign}{abs(delta):.2f}"
