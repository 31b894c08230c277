"""Alert rules: thresholds on catalogue KPIs, evaluated on the latest complete ISO week.

The guide: "Set up alerts that notify you when metrics drop below threshold (e.g., accuracy
< 80%)".

Rule syntax (:func:`parse_rule`)
--------------------------------
``METRIC OP THRESHOLD`` where METRIC is a catalogue name (:data:`metrics.kpis.KPI_NAMES`;
spaces may replace underscores, case is ignored: "intent accuracy" = ``intent_accuracy``),
OP is one of ``<``, ``<=``, ``>``, ``>=`` and THRESHOLD a number; for a rate it may be a
percentage (``80%`` = 0.80) and must lie in [0, 1]. Or the word ``volume_spike``: breached
when :func:`metrics.engagement.volume.spike_days` flags a day of the week (a spike may be a bug, not
success). Or the word ``topic_growth``: breached when a topic of the user messages is growing
or new in the week (:func:`metrics.topics.topic_growth`: at least ``max(5, min_count)``
messages in the 7 days up to the week's last message, +50 % on the 7 days before and unlikely by
chance, or 80 % of its messages in the last 14 days), naming the topics (their stored names when
given). Examples: ``intent_accuracy < 80%``, ``escalation_rate > 0.30``, ``volume_spike``,
``topic_growth``.

Evaluation (:func:`evaluate_rules`)
-----------------------------------
Every rule is evaluated on the same week: the latest complete ISO week (UTC) of the data
(see :mod:`metrics.kpis` for "complete"). A rule is *breached* when the KPI's value in that
week satisfies the comparison. It is *not evaluated* (never breached) when the data lacks
what the KPI needs, when the week has no value, or when the week has fewer than the rule's
``min_count`` units (default 1).

Rules file (:func:`load_rules_file`)
------------------------------------
JSON (``.json``) or TOML (``.toml``). JSON: a list, or an object with a ``rules`` list.
TOML: an array of tables ``[[rules]]``. Each rule is a string in the syntax above or a table
with ``rule`` (the string) or ``metric`` + ``op`` + ``threshold``, and optionally ``name``
and ``min_count``. Any mistake raises :class:`~metrics.errors.ConfigError` naming the rule
(its position and text) and what is wrong.
"""

from __future__ import annotations

import json
import math
import operator
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from metrics.errors import ChatlensError, ConfigError, InsufficientDataError
from metrics.kpis import CATALOGUE, KPI_NAMES, KpiData, KpiOptions, format_value, latest_complete_period

__all__ = [
    "OPERATORS",
    "VOLUME_SPIKE",
    "TOPIC_GROWTH",
    "EVENT_RULES",
    "DEFAULT_RULES",
    "AlertRule",
    "AlertResult",
    "parse_rule",
    "rule_from_mapping",
    "parse_rules",
    "load_rules_file",
    "default_rules",
    "evaluate_rules",
    "results_frame",
    "alerts_report",
]

OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
VOLUME_SPIKE = "volume_spike"
TOPIC_GROWTH = "topic_growth"
#: Rules that are a word, with no operator or threshold: breached when the event happens in the week.
EVENT_RULES = (VOLUME_SPIKE, TOPIC_GROWTH)
#: The issue's three examples; used when no rule is saved or given.
DEFAULT_RULES = ("intent_accuracy < 80%", "escalation_rate > 30%", VOLUME_SPIKE)
_RULE_RX = re.compile(r"^\s*(?P<metric>[A-Za-z](?:[A-Za-z0-9_ ]*[A-Za-z0-9_])?)\s*(?P<op><=|>=|<|>)\s*"
                      r"(?P<value>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<pct>%?)\s*$")
_KEYS = {"rule", "metric", "op", "threshold", "name", "min_count"}


def _metric_name(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


@dataclass(frozen=True)
class AlertRule:
    """A threshold on a KPI, or an event rule (``metric`` in :data:`EVENT_RULES`: ``volume_spike``,
    ``topic_growth``).

    Examples
    --------
    >>> AlertRule("escalation_rate", ">", 0.3).text
    'escalation_rate > 0.3'
    >>> AlertRule("escalation_rate", ">", 30)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.ConfigError: rule 'escalation_rate > 30': the threshold of a rate must be between 0 and 1 ...
    """

    metric: str
    op: str | None = None
    threshold: float | None = None
    name: str = ""
    min_count: int = 1

    def __post_init__(self):
        metric = _metric_name(self.metric) if isinstance(self.metric, str) else self.metric
        shown = f"{self.metric} {self.op or ''} {self.threshold if self.threshold is not None else ''}".strip()
        where = f"rule {shown!r}"
        if metric in EVENT_RULES:
            if self.op is not None or self.threshold is not None:
                raise ConfigError(f"{where}: {metric} takes no operator or threshold")
        else:
            if metric not in CATALOGUE:
                raise ConfigError(f"{where}: unknown metric {self.metric!r}; known: {', '.join(KPI_NAMES)}, "
                                  f"{VOLUME_SPIKE} or {TOPIC_GROWTH}")
            if self.op not in OPERATORS:
                raise ConfigError(f"{where}: the operator must be one of {', '.join(OPERATORS)}, got {self.op!r}")
            if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) \
                    or not math.isfinite(self.threshold):
                raise ConfigError(f"{where}: the threshold must be a finite number, got {self.threshold!r}")
            if CATALOGUE[metric].kind == "rate" and not 0 <= self.threshold <= 1:
                raise ConfigError(f"{where}: the threshold of a rate must be between 0 and 1 "
                                  f"(write 0.8 or 80%), got {self.threshold!r}")
            object.__setattr__(self, "threshold", float(self.threshold))
        if isinstance(self.min_count, bool) or not isinstance(self.min_count, int) or self.min_count < 1:
            raise ConfigError(f"{where}: min_count must be a whole number >= 1, got {self.min_count!r}")
        if not isinstance(self.name, str) or len(self.name) > 120:
            raise ConfigError(f"{where}: name must be text of at most 120 characters, got {self.name!r}")
        object.__setattr__(self, "metric", metric)
        object.__setattr__(self, "name", self.name.strip())

    @property
    def text(self) -> str:
        """The rule in the syntax of :func:`parse_rule` (threshold as written, ``:g``)."""
        if self.metric in EVENT_RULES:
            return self.metric
        return f"{self.metric} {self.op} {self.threshold:g}"

    @property
    def label(self) -> str:
        return self.name or self.text


def parse_rule(text: str, *, name: str = "", min_count: int = 1) -> AlertRule:
    """Parse ``"METRIC OP THRESHOLD"`` or ``"volume_spike"`` (module docstring).

    Examples
    --------
    >>> parse_rule("intent accuracy < 80%")
    AlertRule(metric='intent_accuracy', op='<', threshold=0.8, name='', min_count=1)
    >>> parse_rule("volume_spike").text
    'volume_spike'
    >>> parse_rule("accuracy is bad")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.ConfigError: rule 'accuracy is bad': write METRIC OP THRESHOLD ...
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"an alert rule must be non-empty text, got {text!r}")
    if _metric_name(text) in EVENT_RULES:
        return AlertRule(_metric_name(text), name=name, min_count=min_count)
    match = _RULE_RX.match(text)
    if not match:
        raise ConfigError(f"rule {text!r}: write METRIC OP THRESHOLD, e.g. 'intent_accuracy < 80%' or "
                          f"'escalation_rate > 0.30', or '{VOLUME_SPIKE}' or '{TOPIC_GROWTH}'")
    metric = _metric_name(match["metric"])
    value = float(match["value"])
    if match["pct"]:
        if metric in CATALOGUE and CATALOGUE[metric].kind != "rate":
            raise ConfigError(f"rule {text!r}: a percentage threshold only fits a rate; {metric} is a "
                              f"{CATALOGUE[metric].kind}")
        value /= 100.0
    try:
        return AlertRule(metric, match["op"], value, name=name, min_count=min_count)
    except ConfigError as exc:
        raise ConfigError(f"rule {text!r}: {str(exc).split(': ', 1)[-1]}") from None


def rule_from_mapping(item, *, position: int = 1) -> AlertRule:
    """One rule of a rules file: a string, or a table with ``rule`` or ``metric``/``op``/``threshold``
    and optional ``name``, ``min_count``. ConfigError names the position and repeats the rule.

    Examples
    --------
    >>> rule_from_mapping({"metric": "escalation_rate", "op": ">", "threshold": 0.3, "name": "Too many handoffs"}).label
    'Too many handoffs'
    """
    where = f"rule #{position}"
    if isinstance(item, str):
        try:
            return parse_rule(item)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if not isinstance(item, dict):
        raise ConfigError(f"{where} must be a string or a table, got {item!r}")
    shown = json.dumps(item, ensure_ascii=False, default=str)
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise ConfigError(f"{where} {shown}: unknown key(s) {unknown}; use rule, or metric/op/threshold, "
                          "plus name and min_count")
    name = item.get("name", "")
    min_count = item.get("min_count", 1)
    try:
        if "rule" in item:
            if {"metric", "op", "threshold"} & set(item):
                raise ConfigError("give either rule or metric/op/threshold, not both")
            return parse_rule(item["rule"], name=name, min_count=min_count)
        if "metric" not in item:
            raise ConfigError("needs a rule (e.g. \"intent_accuracy < 80%\") or a metric")
        metric = item["metric"]
        if isinstance(metric, str) and _metric_name(metric) in EVENT_RULES:
            return AlertRule(_metric_name(metric), item.get("op"), item.get("threshold"), name=name,
                             min_count=min_count)
        threshold = item.get("threshold")
        if isinstance(threshold, str):
            return parse_rule(f"{metric} {item.get('op', '')} {threshold}", name=name, min_count=min_count)
        return AlertRule(metric, item.get("op"), threshold, name=name, min_count=min_count)
    except ConfigError as exc:
        raise ConfigError(f"{where} {shown}: {exc}") from None


def parse_rules(text: str, *, fmt: str) -> list[AlertRule]:
    """Rules from the text of a rules file, ``fmt`` ``'json'`` or ``'toml'`` (module docstring).

    Examples
    --------
    >>> [r.text for r in parse_rules('{"rules": ["intent_accuracy < 80%", "volume_spike"]}', fmt="json")]
    ['intent_accuracy < 0.8', 'volume_spike']
    >>> toml = '[[rules]]\\nmetric = "escalation_rate"\\nop = ">"\\nthreshold = 0.3\\n'
    >>> [r.text for r in parse_rules(toml, fmt="toml")]
    ['escalation_rate > 0.3']
    """
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"the rules file is not valid JSON: {exc.msg} at line {exc.lineno}, "
                              f"column {exc.colno}") from None
    elif fmt == "toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"the rules file is not valid TOML: {exc}") from None
    else:
        raise ConfigError(f"rules format must be 'json' or 'toml', got {fmt!r}")
    if isinstance(data, dict):
        extra = sorted(set(data) - {"rules"})
        if extra or "rules" not in data:
            raise ConfigError(f"the rules file must hold a 'rules' list{' ([[rules]] tables in TOML)' if fmt == 'toml' else ''}; "
                              f"found key(s) {sorted(data)}")
        data = data["rules"]
    if not isinstance(data, list):
        raise ConfigError(f"the rules must be a list, got {type(data).__name__}: {data!r}")
    if not data:
        raise ConfigError("the rules file holds no rule")
    return [rule_from_mapping(item, position=i) for i, item in enumerate(data, start=1)]


def load_rules_file(path) -> list[AlertRule]:
    """Read a ``.json`` or ``.toml`` rules file. ConfigError when it cannot be read or parsed.

    Examples
    --------
    >>> load_rules_file("rules.yaml")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.ConfigError: the rules file must end in .json or .toml, got 'rules.yaml'
    """
    path = Path(path)
    fmt = {".json": "json", ".toml": "toml"}.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"the rules file must end in .json or .toml, got {str(path)!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the rules file {str(path)!r}: {exc}") from None
    try:
        return parse_rules(text, fmt=fmt)
    except ConfigError as exc:
        raise ConfigError(f"{path.name}: {exc}") from None


def default_rules() -> list[AlertRule]:
    """:data:`DEFAULT_RULES` parsed.

    Examples
    --------
    >>> [r.metric for r in default_rules()]
    ['intent_accuracy', 'escalation_rate', 'volume_spike']
    """
    return [parse_rule(t) for t in DEFAULT_RULES]


# --------------------------------------------------------------------------- evaluation

@dataclass(frozen=True)
class AlertResult:
    """One rule on one week: ``breached``, ``evaluated`` and ``reason`` (why not evaluated / the spike days)."""

    rule: str
    name: str
    metric: str
    op: str | None
    threshold: float | None
    week: str | None
    value: float
    n: int
    evaluated: bool
    breached: bool
    reason: str = ""

    def sentence(self) -> str:
        if self.metric == VOLUME_SPIKE:
            return f"{self.name or 'Volume spike'}: {self.reason}" if self.breached else \
                f"{self.name or 'Volume spike'}: no spike in {self.week}"
        if self.metric == TOPIC_GROWTH:
            head = self.name or "Topic growth"
            if not self.evaluated:
                return f"{head}: not evaluated ({self.reason})"
            return f"{head}: {self.reason}" if self.breached else f"{head}: no growing or new topic in {self.week}"
        kpi = CATALOGUE[self.metric]
        shown = format_value(self.value, kpi.kind)
        limit = format_value(self.threshold, kpi.kind)
        head = self.name or kpi.label
        if not self.evaluated:
            return f"{head}: not evaluated ({self.reason})"
        return f"{head}: {shown} in {self.week} ({self.op} {limit}{', breached' if self.breached else ''})"


def evaluate_rules(messages: pd.DataFrame, rollup: pd.DataFrame, rules: Iterable[AlertRule], *,
                   options: KpiOptions | None = None, spike_k: float = 3.5, topic_model=None,
                   topic_names: pd.DataFrame | None = None) -> list[AlertResult]:
    """Evaluate each rule on the latest complete ISO week (module docstring), in rule order.

    ``topic_model`` (a :class:`metrics.topics.TopicModel` of ``messages``) is what ``topic_growth`` reads;
    when None and such a rule is given, the topics are discovered here (seeded). ``topic_names``
    (:func:`metrics.topics.persist.load_names`) names them in the reason.

    Raises InsufficientDataError without timestamps or without a complete week; a KPI the
    data cannot give makes its rule "not evaluated" (with the reason), not an error.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["user", "agent"], "text": ["x", "y"],
    ...     "timestamp": pd.to_datetime(["2026-08-03", "2026-08-09"], utc=True), "row": [1, 2]})
    >>> [(r.rule, r.value, r.breached) for r in evaluate_rules(m, conversation_rollup(m),
    ...                                                        [parse_rule("escalation_rate > 30%")])]
    [('escalation_rate > 0.3', 0.5, True)]
    """
    rules = list(rules)
    if not all(isinstance(r, AlertRule) for r in rules):
        raise ConfigError("evaluate_rules takes AlertRule objects (see parse_rule)")
    if len(rollup) == 0 or not rollup["started_at"].notna().any():
        raise InsufficientDataError("alerts are evaluated per week and need timestamps; this data has none")
    # every rule reads the same KpiData, so the outcome table, funnel reach, ... are computed once per call
    data = KpiData(messages, rollup, options)
    weeks = data.series("total_conversations")
    i = latest_complete_period(weeks)
    if i is None:
        raise InsufficientDataError("the data does not cover a complete ISO week (Monday to Sunday) yet")
    week = str(weeks["period"].iloc[i])
    week_start, week_end = weeks["period_start"].iloc[i], weeks["period_end"].iloc[i]
    cache: dict[str, pd.DataFrame | ChatlensError] = {}
    out = []
    for rule in rules:
        if rule.metric == VOLUME_SPIKE:
            out.append(_spike_result(rule, rollup, week, week_start, week_end, spike_k))
            continue
        if rule.metric == TOPIC_GROWTH:
            if topic_model is None:
                try:
                    from metrics.topics import discover_topics

                    topic_model = discover_topics(messages)
                except ChatlensError as exc:
                    topic_model = exc
            out.append(_topic_result(rule, topic_model, topic_names, week, week_end))
            continue
        if rule.metric not in cache:
            try:
                # wanted: an ROI metric runs the ROI model for the evaluated week only
                cache[rule.metric] = data.series(rule.metric, periods={week_start})
            except ChatlensError as exc:
                cache[rule.metric] = exc
        series = cache[rule.metric]
        base = dict(rule=rule.text, name=rule.name, metric=rule.metric, op=rule.op, threshold=rule.threshold,
                    week=week)
        if isinstance(series, ChatlensError):
            out.append(AlertResult(**base, value=float("nan"), n=0, evaluated=False, breached=False,
                                   reason=str(series)))
            continue
        row = series[series["period"].eq(week).to_numpy(bool)]
        value = float(row["value"].iloc[0]) if len(row) else float("nan")
        n = int(row["n"].iloc[0]) if len(row) else 0
        if math.isnan(value) or n < rule.min_count:
            reason = (f"only {n} unit(s) in {week}, the rule needs {rule.min_count}" if not math.isnan(value)
                      else f"no value in {week}")
            out.append(AlertResult(**base, value=value, n=n, evaluated=False, breached=False, reason=reason))
            continue
        out.append(AlertResult(**base, value=value, n=n, evaluated=True,
                               breached=bool(OPERATORS[rule.op](value, rule.threshold))))
    return out


def _spike_result(rule, rollup, week, week_start, week_end, spike_k) -> AlertResult:
    from metrics.engagement.volume import spike_days

    base = dict(rule=rule.text, name=rule.name, metric=VOLUME_SPIKE, op=None, threshold=None, week=week)
    try:
        days = spike_days(rollup, k=spike_k)
    except ChatlensError as exc:
        return AlertResult(**base, value=float("nan"), n=0, evaluated=False, breached=False, reason=str(exc))
    lo, hi = week_start.strftime("%Y-%m-%d"), (week_end - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    inside = [d for d in days if lo <= d <= hi]
    reason = (f"volume spike on {', '.join(inside)}: a spike may mean a bug that triggers unwanted conversations, "
              "not success") if inside else ""
    return AlertResult(**base, value=float(len(inside)), n=len(inside), evaluated=True, breached=bool(inside),
                       reason=reason)


def _topic_result(rule, model, names, week, week_end) -> AlertResult:
    import dataclasses

    from metrics.topics import topic_growth, with_names

    base = dict(rule=rule.text, name=rule.name, metric=TOPIC_GROWTH, op=None, threshold=None, week=week)
    if isinstance(model, ChatlensError):
        return AlertResult(**base, value=float("nan"), n=0, evaluated=False, breached=False, reason=str(model))
    a = model.assignments
    if model.empty or not a["timestamp"].notna().any():
        return AlertResult(**base, value=float("nan"), n=0, evaluated=False, breached=False,
                           reason="no clustered user message with a timestamp")
    upto = dataclasses.replace(model, assignments=a[(a["timestamp"] < week_end).fillna(False).to_numpy(bool)])
    moves = with_names(topic_growth(upto, min_count=max(5, rule.min_count)), names)
    flagged = moves[(moves["growing"] | moves["new"]).to_numpy(bool)].sort_values(
        ["recent_count", "topic"], ascending=[False, True], kind="stable")
    parts = []
    for row in flagged.itertuples(index=False):
        change = f"+{row.wow_change:.0%} week over week" if row.growing and row.wow_change == row.wow_change \
            else "new"
        parts.append(f"'{row.name}' ({change}, {int(row.recent_count)} message(s) in the last 7 days)")
    reason = ("growing or new topic(s): " + "; ".join(parts)) if parts else ""
    return AlertResult(**base, value=float(len(flagged)), n=len(flagged), evaluated=True, breached=bool(parts),
                       reason=reason)


def results_frame(results: Sequence[AlertResult]) -> pd.DataFrame:
    """Results as a frame (one row per rule, the fields of :class:`AlertResult` plus ``sentence``)."""
    cols = ["rule", "name", "metric", "op", "threshold", "week", "value", "n", "evaluated", "breached", "reason",
            "sentence"]
    return pd.DataFrame([{**r.__dict__, "sentence": r.sentence()} for r in results], columns=cols)


def alerts_report(results: Sequence[AlertResult]) -> dict:
    """The JSON object the CLI prints: ``week``, ``breached`` (list of rules with value and
    threshold), ``not_evaluated`` (rule and reason) and ``evaluated_count``. NaN -> None.

    Examples
    --------
    >>> alerts_report([])["breached"]
    []
    """
    def num(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    return {
        "week": results[0].week if results else None,
        "breached": [{"rule": r.rule, "name": r.name or None, "metric": r.metric, "op": r.op,
                      "threshold": num(r.threshold), "value": num(r.value), "n": r.n, "week": r.week,
                      "detail": r.reason or None} for r in results if r.breached],
        "not_evaluated": [{"rule": r.rule, "reason": r.reason} for r in results if not r.evaluated],
        "evaluated_count": sum(1 for r in results if r.evaluated),
    }
