"""Business goals: 3-5 goals, each a bot type, catalogue metrics and a red/amber/green band.

The guide's first step: "Document your top 3-5 goals in writing", "Map each goal to
specific metrics", "Include at least one metric tied directly to revenue or cost savings",
"Don't confuse activity metrics (total conversations) with quality metrics (resolution rate)".

A :class:`Goal` has a ``name``, a ``bot_type`` (:data:`BOT_TYPES`), one or more ``metrics``
from :data:`metrics.kpis.CATALOGUE` (the first is the goal's *primary* metric: the target
and band apply to it; the others are tracked beside it), a ``target`` and a band given by
two thresholds, ``red`` and ``green`` (:func:`metrics.kpis.rag_status`: for a
higher-is-better metric green at or above ``green``, red below ``red``, amber between;
mirrored for lower-is-better). ``direction`` defaults to the primary metric's.

A goal *set* (:func:`check_goals`) is valid with 3 to 5 goals, distinct names, and at least
one goal whose metrics include a revenue or cost metric (``Kpi.business``: revenue, cost per
outcome, cost savings, attributed revenue); otherwise the error says so
(:data:`NO_BUSINESS_MESSAGE`). A goal whose primary metric is a volume-only vanity metric
(total conversations) gets a warning, not an error.

Suggested starting bands (:data:`SUGGESTIONS`) come from the guide's industry figures, each
with the sentence it comes from. Convention: the industry range is the *amber* band (what
typical bots achieve), below it is red, at or beyond its better end green; the target is
the better end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from metrics.errors import ConfigError
from metrics.kpis import CATALOGUE, KPI_NAMES, rag_status

__all__ = [
    "BOT_TYPES",
    "BOT_TYPE_LABELS",
    "MIN_GOALS",
    "MAX_GOALS",
    "MAX_NAME_LENGTH",
    "NO_BUSINESS_MESSAGE",
    "Goal",
    "GoalCheck",
    "Suggestion",
    "SUGGESTIONS",
    "SUGGESTED_ALERT",
    "SUGGESTED_ALERT_SOURCE",
    "check_goals",
    "suggested_goals",
    "goal_bands",
    "goals_from_records",
    "goals_to_records",
    "business_metrics",
    "RECORD_COLUMNS",
]

BOT_TYPES = ("lead_generation", "support", "sales")
BOT_TYPE_LABELS = {"lead_generation": "Lead generation", "support": "Support", "sales": "Sales"}
MIN_GOALS, MAX_GOALS = 3, 5
MAX_NAME_LENGTH = 80
NO_BUSINESS_MESSAGE = ("At least one goal must use a revenue or cost metric ({names}): the guide asks to "
                       "\"include at least one metric tied directly to revenue or cost savings\". "
                       "Add one before saving.")


def business_metrics() -> tuple[str, ...]:
    """Names of the catalogue's revenue or cost metrics (``Kpi.business``).

    Examples
    --------
    >>> "cost_per_outcome" in business_metrics()
    True
    """
    return tuple(k.name for k in CATALOGUE.values() if k.business)


def _number(name: str, value, what: str) -> float:
    if isinstance(value, bool) or value is None:
        raise ConfigError(f"{what}: {name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{what}: {name} must be a finite number, got {value!r}")
    return number


@dataclass(frozen=True)
class Goal:
    """One business goal (module docstring). Validated on construction; ConfigError repeats the bad value.

    Examples
    --------
    >>> g = Goal("Resolve support issues", "support", ("resolution_rate",), target=0.75, red=0.60, green=0.75)
    >>> g.metric, g.direction, g.status(0.7)
    ('resolution_rate', 'higher', 'amber')
    >>> Goal("x", "retail", ("resolution_rate",), 0.7, 0.6, 0.75)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.ConfigError: goal 'x': bot_type must be one of ..., got 'retail'
    """

    name: str
    bot_type: str
    metrics: tuple[str, ...]
    target: float
    red: float
    green: float
    direction: str | None = None

    def __post_init__(self):
        name = self.name.strip() if isinstance(self.name, str) else ""
        if not name:
            raise ConfigError(f"a goal needs a name, got {self.name!r}")
        if len(name) > MAX_NAME_LENGTH:
            raise ConfigError(f"goal name is longer than {MAX_NAME_LENGTH} characters: {name!r}")
        what = f"goal {name!r}"
        if self.bot_type not in BOT_TYPES:
            raise ConfigError(f"{what}: bot_type must be one of {', '.join(BOT_TYPES)}, got {self.bot_type!r}")
        metrics = (self.metrics,) if isinstance(self.metrics, str) else tuple(self.metrics or ())
        metrics = tuple(m.strip() if isinstance(m, str) else m for m in metrics)
        if not metrics:
            raise ConfigError(f"{what}: choose at least one metric from the catalogue ({', '.join(KPI_NAMES)})")
        for m in metrics:
            if m not in CATALOGUE:
                raise ConfigError(f"{what}: unknown metric {m!r}; known: {', '.join(KPI_NAMES)}")
        if len(set(metrics)) != len(metrics):
            raise ConfigError(f"{what}: a metric is listed twice in {list(metrics)!r}")
        kpi = CATALOGUE[metrics[0]]
        direction = self.direction or kpi.direction
        if direction not in ("higher", "lower"):
            raise ConfigError(f"{what}: direction must be 'higher' or 'lower', got {self.direction!r}")
        target, red, green = (_number(n, getattr(self, n), what) for n in ("target", "red", "green"))
        if kpi.kind == "rate":
            for n, v in (("target", target), ("red", red), ("green", green)):
                if not 0.0 <= v <= 1.0:
                    raise ConfigError(f"{what}: {n} of the rate {kpi.name} must be between 0 and 1 "
                                      f"(e.g. 0.75 for 75%), got {v!r}")
        if direction == "higher" and red > green:
            raise ConfigError(f"{what}: {kpi.name} is better when higher, so red ({red!r}) must be <= green ({green!r})")
        if direction == "lower" and red < green:
            raise ConfigError(f"{what}: {kpi.name} is better when lower, so red ({red!r}) must be >= green ({green!r})")
        for attr, value in (("name", name), ("metrics", metrics), ("direction", direction), ("target", target),
                            ("red", red), ("green", green)):
            object.__setattr__(self, attr, value)

    @property
    def metric(self) -> str:
        """The primary metric (the band applies to it)."""
        return self.metrics[0]

    @property
    def business(self) -> bool:
        """True when one of the goal's metrics is a revenue or cost metric."""
        return any(CATALOGUE[m].business for m in self.metrics)

    @property
    def vanity(self) -> bool:
        """True when the primary metric is a volume-only vanity metric."""
        return CATALOGUE[self.metric].vanity

    def status(self, value) -> str:
        """RAG status of a value of the primary metric (:func:`metrics.kpis.rag_status`)."""
        return rag_status(value, red=self.red, green=self.green, direction=self.direction)


@dataclass(frozen=True)
class GoalCheck:
    """Result of :func:`check_goals`: ``errors`` block saving, ``warnings`` do not."""

    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


def check_goals(goals: Sequence[Goal]) -> GoalCheck:
    """Validate a goal set: 3-5 goals, distinct names, one revenue/cost metric; warn on vanity metrics.

    Examples
    --------
    >>> check_goals(suggested_goals()).ok
    True
    >>> no_money = [g for g in suggested_goals() if not g.business]
    >>> c = check_goals(no_money)
    >>> c.ok, "revenue or cost" in c.errors[0]
    (False, True)
    """
    goals = list(goals)
    errors, warnings = [], []
    if not all(isinstance(g, Goal) for g in goals):
        raise ConfigError("check_goals takes Goal objects")
    if not MIN_GOALS <= len(goals) <= MAX_GOALS:
        errors.append(f"Document your top {MIN_GOALS}-{MAX_GOALS} goals: there are {len(goals)}.")
    names = [g.name.casefold() for g in goals]
    dupes = sorted({g.name for g in goals if names.count(g.name.casefold()) > 1})
    if dupes:
        errors.append(f"Goal names must be distinct: {', '.join(repr(d) for d in dupes)} repeated.")
    if goals and not any(g.business for g in goals):
        errors.append(NO_BUSINESS_MESSAGE.format(names=", ".join(business_metrics())))
    elif not goals:
        errors.append(NO_BUSINESS_MESSAGE.format(names=", ".join(business_metrics())))
    for g in goals:
        if g.vanity:
            warnings.append(
                f"Goal {g.name!r} uses {CATALOGUE[g.metric].label.lower()}, a volume-only (vanity) metric, as its "
                "quality measure: the guide says \"don't confuse activity metrics (total conversations) with "
                "quality metrics (resolution rate)\". Make a quality metric its primary metric.")
    return GoalCheck(tuple(errors), tuple(warnings))


# --------------------------------------------------------------------------- suggestions

@dataclass(frozen=True)
class Suggestion:
    """A starting band from the guide: the industry range ``low``-``high`` and its source sentence."""

    name: str
    bot_type: str
    metric: str
    low: float
    high: float
    target: float
    red: float
    green: float
    source: str
    note: str = ""

    def goal(self) -> Goal:
        return Goal(self.name, self.bot_type, (self.metric,), self.target, self.red, self.green)


_RESOLUTION_SOURCE = ("\"Industry data shows successful customer support chatbots achieve 60-75% resolution rate on "
                      "first interaction, while lead qualification bots typically convert 15-25% of conversations "
                      "to qualified leads.\"")
_NLU_SOURCE = ("\"Most production chatbots achieve 85-95% accuracy on common intents, but performance varies "
               "dramatically by use case and training data quality.\"")
_COST_SOURCE = ("\"If 2,500 are successful outcomes, that's $2 per successful outcome. Compare this to your "
                "traditional channel costs - if human support costs $15 per ticket, your bot is 7x cheaper.\"")
SUGGESTED_ALERT = "intent_accuracy < 80%"
SUGGESTED_ALERT_SOURCE = ("\"Set up alerts that notify you when metrics drop below threshold (e.g., accuracy "
                          "< 80%)\"")

#: The guide's industry figures as starting goals (edit them to your own benchmark).
SUGGESTIONS: tuple[Suggestion, ...] = (
    Suggestion("Resolve support issues on first contact", "support", "resolution_rate", 0.60, 0.75,
               target=0.75, red=0.60, green=0.75, source=_RESOLUTION_SOURCE,
               note="support resolution 60-75%: below 60% red, 60-75% amber, 75% or more green"),
    Suggestion("Turn conversations into qualified leads", "lead_generation", "lead_conversion_rate", 0.15, 0.25,
               target=0.25, red=0.15, green=0.25, source=_RESOLUTION_SOURCE,
               note="lead conversion 15-25%: below 15% red, 15-25% amber, 25% or more green"),
    Suggestion("Understand what customers ask", "support", "intent_accuracy", 0.85, 0.95,
               target=0.95, red=0.85, green=0.95, source=_NLU_SOURCE,
               note=("NLU accuracy 85-95%: below 85% red, 85-95% amber, 95% or more green; "
                     f"plus the alert {SUGGESTED_ALERT}")),
    Suggestion("Cheaper than a human ticket", "support", "cost_per_outcome", 2.0, 15.0,
               target=2.0, red=15.0, green=2.0, source=_COST_SOURCE,
               note="cost per outcome: $2 or less green (the guide's example), above $15 (a human ticket) red"),
)


def suggested_goals() -> list[Goal]:
    """The :data:`SUGGESTIONS` as goals (a valid set: 4 goals, one cost metric).

    Examples
    --------
    >>> [g.metric for g in suggested_goals()]
    ['resolution_rate', 'lead_conversion_rate', 'intent_accuracy', 'cost_per_outcome']
    """
    return [s.goal() for s in SUGGESTIONS]


def goal_bands(goals: Iterable[Goal]) -> dict[str, tuple[float, float]]:
    """``{primary metric: (red, green)}`` for :func:`metrics.kpis.kpi_table` (first goal wins).

    Examples
    --------
    >>> goal_bands(suggested_goals())["resolution_rate"]
    (0.6, 0.75)
    """
    out: dict[str, tuple[float, float]] = {}
    for g in goals:
        out.setdefault(g.metric, (g.red, g.green))
    return out


# --------------------------------------------------------------------------- editor records

RECORD_COLUMNS = ("name", "bot_type", "metric", "also_track", "target", "red", "green")


def _split(value) -> tuple[str, ...]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ()
    if isinstance(value, str):
        return tuple(p.strip() for p in value.replace(";", ",").split(",") if p.strip())
    try:
        return tuple(str(v).strip() for v in value if str(v).strip())
    except TypeError:
        return (str(value),)


def _blank(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def goals_from_records(records: Iterable[Mapping]) -> list[Goal]:
    """Goals from editor rows (``name, bot_type, metric, also_track, target, red, green``).

    ``also_track`` is a list or a comma-separated string of further metrics. Rows whose
    every field is blank are skipped. A bad row raises ConfigError naming the row (1-based).

    Examples
    --------
    >>> rows = [{"name": "Cheap", "bot_type": "support", "metric": "cost_per_outcome", "also_track": "revenue",
    ...          "target": 2, "red": 15, "green": 2}]
    >>> goals_from_records(rows)[0].metrics
    ('cost_per_outcome', 'revenue')
    """
    goals = []
    for i, rec in enumerate(records, start=1):
        rec = dict(rec)
        if all(_blank(rec.get(c)) or (c == "also_track" and not _split(rec.get(c))) for c in RECORD_COLUMNS):
            continue
        metric = rec.get("metric")
        metrics = ((metric,) if not _blank(metric) else ()) + tuple(
            m for m in _split(rec.get("also_track")) if m != metric)
        try:
            goals.append(Goal(rec.get("name") if not _blank(rec.get("name")) else "", rec.get("bot_type"),
                              metrics, rec.get("target"), rec.get("red"), rec.get("green")))
        except ConfigError as exc:
            raise ConfigError(f"goal row {i}: {exc}") from None
    return goals


def goals_to_records(goals: Iterable[Goal]) -> list[dict]:
    """Editor rows of goals (inverse of :func:`goals_from_records`).

    Examples
    --------
    >>> goals_to_records(suggested_goals()[:1])[0]["metric"]
    'resolution_rate'
    """
    return [{"name": g.name, "bot_type": g.bot_type, "metric": g.metric, "also_track": list(g.metrics[1:]),
             "target": g.target, "red": g.red, "green": g.green} for g in goals]
