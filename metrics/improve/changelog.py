"""The change log and the before/after comparison of each change.

The guide's improvement loop: "you implement a fix (new training data, response refinement,
workflow change), then you measure impact", "Document what you changed and why so you can
explain metric changes to stakeholders", "Avoid continuous tweaking that prevents you from
seeing the impact of changes - use 2-week sprints minimum".

Change entry (:class:`ChangeEntry`)
    ``date`` (the day the change went live; it takes effect at 00:00 UTC), ``title`` (what
    changed), ``kind`` (:data:`CHANGE_KINDS`: new training data, response rewrite, workflow
    change, other), ``why``, ``metric`` (the catalogue metric it is expected to move, in its
    better direction), an optional ``detail``, ``dataset_id`` (None: the change applies to
    every dataset) and ``backlog_key`` (the backlog item it came from). Persistence:
    :mod:`metrics.improve.store`.

Before/after (:func:`before_after`)
    Windows of ``window_days`` (default :data:`MIN_WINDOW_DAYS` = 14) on each side of the
    change: before = ``[date - window, date)``, after = ``[date, date + window)``; a unit
    (:func:`metrics.kpis.kpi_units`) belongs to the window of its conversation's start.

    * rates: ``difference = after - before`` with Newcombe's hybrid score interval (from the
      two Wilson intervals, :func:`metrics.core.stats.wilson_interval`) and the two-proportion
      z-test's p-value (:func:`metrics.core.stats.two_proportion_ztest`);
    * scores (CSAT): difference of means with Welch's t interval and test (scipy);
    * counts: difference of the two windows' counts, normal interval ``+- z sqrt(x1 + x2)``
      and the exact conditional binomial test of ``x_after`` out of ``x1 + x2`` at 1/2
      (equal windows, Poisson counts);
    * money (ROI model on each window, revenue sums): difference only, "not tested".

    The effect **cannot be attributed** when a window is shorter than ``min_days`` (default
    14): the chosen window, or the days the data actually covers on either side; or when
    another change of the log falls inside ``[date - window, date + window)``. ``significant``
    is ``p < alpha`` (default 0.05) and is only claimed for an attributable effect.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from metrics.errors import ConfigError, InsufficientDataError
from metrics.kpis import (CATALOGUE, KPI_NAMES, NOT_TESTED, KpiOptions, format_delta, format_value, kpi_units,
                          kpi_window)
from metrics.core.stats import two_proportion_ztest, wilson_interval

__all__ = [
    "CHANGE_KINDS",
    "KIND_LABELS",
    "MIN_WINDOW_DAYS",
    "MAX_TEXT_LENGTH",
    "ChangeEntry",
    "BeforeAfter",
    "before_after",
    "before_after_table",
    "annotations_frame",
    "annotations",
]

CHANGE_KINDS = ("training_data", "response_rewrite", "workflow_change", "other")
KIND_LABELS = {"training_data": "New training data", "response_rewrite": "Response rewrite",
               "workflow_change": "Workflow change", "other": "Other change"}
MIN_WINDOW_DAYS = 14
MAX_TEXT_LENGTH = 2000
_NAN = float("nan")
_DAY = pd.Timedelta(days=1)


def _as_date(value, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a date (YYYY-MM-DD), got {value!r}") from None
    if stamp is pd.NaT or pd.isna(stamp):
        raise ConfigError(f"{what} must be a date (YYYY-MM-DD), got {value!r}")
    return stamp.date()


def _text(value, what: str, *, required: bool, limit: int = MAX_TEXT_LENGTH) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        value = ""
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be text, got {value!r}")
    value = value.strip()
    if required and not value:
        raise ConfigError(f"{what} must not be empty")
    if len(value) > limit:
        raise ConfigError(f"{what} is longer than {limit} characters: {value[:40]!r}...")
    return value


@dataclass(frozen=True)
class ChangeEntry:
    """One change of the bot (module docstring). Validated; ConfigError repeats the bad value.

    Examples
    --------
    >>> e = ChangeEntry("2026-09-21", "Deploy nlu-v2", "training_data", "intent_accuracy", why="billing confusions")
    >>> e.date, e.kind_label
    (datetime.date(2026, 9, 21), 'New training data')
    >>> ChangeEntry("2026-09-21", "x", "magic", "intent_accuracy")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.ConfigError: change kind must be one of ..., got 'magic'
    """

    date: dt.date
    title: str
    kind: str
    metric: str
    why: str = ""
    detail: str = ""
    dataset_id: int | None = None
    backlog_key: str | None = None
    id: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "date", _as_date(self.date, "change date"))
        object.__setattr__(self, "title", _text(self.title, "change title (what changed)", required=True, limit=200))
        if self.kind not in CHANGE_KINDS:
            raise ConfigError(f"change kind must be one of {', '.join(CHANGE_KINDS)}, got {self.kind!r}")
        if self.metric not in CATALOGUE:
            raise ConfigError(f"the expected metric must be one of {', '.join(KPI_NAMES)}, got {self.metric!r}")
        object.__setattr__(self, "why", _text(self.why, "why", required=False))
        object.__setattr__(self, "detail", _text(self.detail, "detail", required=False))
        for name in ("dataset_id", "id"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not float(value).is_integer()):
                raise ConfigError(f"{name} must be a whole number or None, got {value!r}")
            object.__setattr__(self, name, None if value is None else int(value))
        if self.backlog_key is not None:
            object.__setattr__(self, "backlog_key", _text(self.backlog_key, "backlog key", required=True, limit=300))

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def start(self) -> pd.Timestamp:
        """The moment the change takes effect: 00:00 UTC of its date."""
        return pd.Timestamp(self.date).tz_localize("UTC")


def annotations_frame(entries: Iterable[ChangeEntry]) -> pd.DataFrame:
    """Change-log entries as chart annotations: columns ``date`` (UTC midnight), ``title``, ``detail``.

    ``detail`` reads "<kind>: <why> (expected to move <metric label>)". Sorted by date then
    title. No entries: an empty frame with these columns.

    Examples
    --------
    >>> f = annotations_frame([ChangeEntry("2026-09-21", "Deploy nlu-v2", "training_data", "intent_accuracy",
    ...                                    why="billing confusions")])
    >>> f[["title", "detail"]].values.tolist()
    [['Deploy nlu-v2', 'New training data: billing confusions (expected to move intent accuracy)']]
    """
    rows = []
    for e in entries:
        why = f": {e.why}" if e.why else ""
        rows.append({"date": e.start, "title": e.title,
                     "detail": f"{e.kind_label}{why} (expected to move {CATALOGUE[e.metric].label.lower()})"})
    if not rows:
        return pd.DataFrame({"date": pd.Series([], dtype="datetime64[ns, UTC]"), "title": pd.Series([], dtype="str"),
                             "detail": pd.Series([], dtype="str")})
    out = pd.DataFrame(rows).sort_values(["date", "title"], kind="stable").reset_index(drop=True)
    return out.astype({"date": "datetime64[ns, UTC]", "title": "str", "detail": "str"})


def annotations(db, dataset_id: int | None = None) -> pd.DataFrame:
    """The stored change log of a dataset (its entries and those for every dataset) as
    :func:`annotations_frame`. This is the hook other pages' trend charts call.

    Examples
    --------
    >>> from metrics import store
    >>> len(annotations(store.connect(":memory:"), 1))
    0
    """
    from metrics.improve import store as goals_store

    return annotations_frame(goals_store.list_changes(db, dataset_id=dataset_id))


# --------------------------------------------------------------------------- before / after

@dataclass(frozen=True)
class BeforeAfter:
    """The metric in equal windows before and after a change (module docstring).

    Windows are ``[before_start, change_start)`` and ``[change_start, after_end)``;
    ``before_days`` / ``after_days`` are the days of each window the data covers. ``difference
    = after - before`` with its ``ci_low``-``ci_high`` interval at ``confidence``; ``p_value``
    (NaN when ``test`` is "not tested"); ``attributable`` and the ``reasons`` it is not;
    ``verdict`` is a sentence for people.
    """

    change_id: int | None
    title: str
    metric: str
    change_start: pd.Timestamp
    before_start: pd.Timestamp
    after_end: pd.Timestamp
    window_days: int
    before_days: float
    after_days: float
    before: float
    after: float
    before_n: int
    after_n: int
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    significant: bool
    attributable: bool
    reasons: tuple[str, ...]
    verdict: str

    def as_dict(self) -> dict:
        out = dict(self.__dict__)
        out["reasons"] = "; ".join(self.reasons)
        return out


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def _rate_test(x1: int, n1: int, x2: int, n2: int, confidence: float) -> tuple[float, float, float, str]:
    """Newcombe hybrid score interval of p2 - p1 and the z-test p-value (1 = before, 2 = after)."""
    if n1 == 0 or n2 == 0:
        return _NAN, _NAN, _NAN, NOT_TESTED
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, confidence=confidence)
    l2, u2 = wilson_interval(x2, n2, confidence=confidence)
    d = p2 - p1
    low = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    _, p = two_proportion_ztest(x2, n2, x1, n1)
    return low, high, p, "two-proportion z-test, Newcombe interval"


def _welch(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float, float, str]:
    """Welch interval and test of mean(b) - mean(a)."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return _NAN, _NAN, _NAN, NOT_TESTED
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    d = float(b.mean() - a.mean())
    if se == 0:
        return d, d, (1.0 if d == 0 else 0.0), "Welch t-test"
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    t = stats.t.ppf(1.0 - (1.0 - confidence) / 2.0, df)
    p = float(stats.ttest_ind(b, a, equal_var=False).pvalue)
    return d - t * se, d + t * se, p, "Welch t-test"


def _count_test(x1: int, x2: int, confidence: float) -> tuple[float, float, float, str]:
    from scipy import stats

    total = x1 + x2
    if total == 0:
        return 0.0, 0.0, 1.0, "conditional binomial test"
    half = _z(confidence) * math.sqrt(total)
    p = float(stats.binomtest(x2, total, 0.5).pvalue)
    return (x2 - x1) - half, (x2 - x1) + half, p, "conditional binomial test"


def _data_span(rollup: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    starts = rollup["started_at"].dropna()
    ends = rollup["ended_at"].dropna()
    return starts.min(), max(ends.max(), starts.max()) if len(ends) else starts.max()


def _covered_days(lo: pd.Timestamp, hi: pd.Timestamp, first: pd.Timestamp, last: pd.Timestamp) -> float:
    """Days of [lo, hi) the data covers: whole days from the first day with data to the last one."""
    a = max(lo, first.floor("D"))
    b = min(hi, last.floor("D") + _DAY)
    return max(0.0, (b - a) / _DAY)


def _check_days(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a whole number of days >= 1, got {value!r}")
    return int(value)


def before_after(messages: pd.DataFrame, rollup: pd.DataFrame, entry: ChangeEntry, *,
                 entries: Sequence[ChangeEntry] = (), window_days: int = MIN_WINDOW_DAYS,
                 min_days: int = MIN_WINDOW_DAYS, options: KpiOptions | None = None,
                 confidence: float = 0.95, alpha: float = 0.05) -> BeforeAfter:
    """Compare ``entry.metric`` before and after ``entry`` (definitions in the module docstring).

    ``entries`` is the whole change log (``entry`` itself is ignored in it) for the
    "another change inside the window" rule. Raises InsufficientDataError without timestamps
    and when the data lacks what the metric needs; ConfigError for bad options.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> days = pd.date_range("2026-09-01", periods=28, freq="D", tz="UTC")
    >>> m = pd.DataFrame({"conversation_id": [f"c{i}" for i in range(28)], "row": range(1, 29), "text": ["x"] * 28,
    ...     "speaker": ["agent" if i < 14 and i % 2 else "user" for i in range(28)], "timestamp": days})
    >>> ba = before_after(m, conversation_rollup(m), ChangeEntry("2026-09-15", "New flow", "workflow_change",
    ...                                                          "escalation_rate"))
    >>> ba.before, ba.after, ba.attributable
    (0.5, 0.0, True)
    """
    if not isinstance(entry, ChangeEntry):
        raise ConfigError("before_after needs a ChangeEntry")
    window_days = _check_days("window_days", window_days)
    min_days = _check_days("min_days", min_days)
    if not 0 < confidence < 1 or not 0 < alpha < 1:
        raise ConfigError(f"confidence and alpha must be strictly between 0 and 1, got {confidence!r}, {alpha!r}")
    if len(rollup) == 0 or not rollup["started_at"].notna().any():
        raise InsufficientDataError("a before/after comparison needs timestamps, and this data has none")
    kpi = CATALOGUE[entry.metric]
    start = entry.start
    lo, hi = start - window_days * _DAY, start + window_days * _DAY
    first, last = _data_span(rollup)
    before_days = _covered_days(lo, start, first, last)
    after_days = _covered_days(start, hi, first, last)

    reasons = []
    if window_days < min_days:
        reasons.append(f"the windows are {window_days} days; at least {min_days} are needed "
                       "(the guide: use 2-week sprints at minimum)")
    if before_days < min_days:
        reasons.append(f"the data covers only {before_days:.1f} days before the change (< {min_days})")
    if after_days < min_days:
        reasons.append(f"the data covers only {after_days:.1f} days after the change (< {min_days})")
    for other in entries:
        if other is entry or (other.id is not None and other.id == entry.id):
            continue
        if other == entry:
            continue
        if lo <= other.start < hi:
            reasons.append(f"another change falls inside the window: {other.title!r} on {other.date.isoformat()}")

    starts = rollup["started_at"].set_axis(rollup["conversation_id"].astype("str"))
    in_before = starts.ge(lo) & starts.lt(start)
    in_after = starts.ge(start) & starts.lt(hi)
    before_ids = set(starts.index[in_before.to_numpy(bool)])
    after_ids = set(starts.index[in_after.to_numpy(bool)])

    low = high = p = _NAN
    test = NOT_TESTED
    if kpi.family == "roi":
        vb = kpi_window(messages, rollup, metric=kpi.name, start=lo, end=start, options=options)
        va = kpi_window(messages, rollup, metric=kpi.name, start=start, end=hi, options=options)
        b, a, nb, na = vb.value, va.value, vb.n, va.n
    else:
        units = kpi_units(messages, rollup, metric=kpi.name, options=options)
        ids = units["conversation_id"].astype("str")
        vb = units["value"].to_numpy(float)[ids.isin(before_ids).to_numpy(bool)]
        va = units["value"].to_numpy(float)[ids.isin(after_ids).to_numpy(bool)]
        nb, na = len(vb), len(va)
        if kpi.kind == "count":
            b, a = float(nb), float(na)
            low, high, p, test = _count_test(nb, na, confidence)
        elif kpi.kind == "money":
            b, a = float(vb.sum()), float(va.sum())
        else:
            b = float(vb.mean()) if nb else _NAN
            a = float(va.mean()) if na else _NAN
            if kpi.kind == "rate":
                low, high, p, test = _rate_test(int(round(vb.sum())), nb, int(round(va.sum())), na, confidence)
            else:
                low, high, p, test = _welch(vb, va, confidence)
    diff = a - b if not (math.isnan(a) or math.isnan(b)) else _NAN
    attributable = not reasons
    significant = bool(attributable and not math.isnan(p) and p < alpha)
    verdict = _verdict(entry, kpi, b, a, diff, low, high, p, test, attributable, significant, reasons, confidence)
    return BeforeAfter(entry.id, entry.title, kpi.name, start, lo, hi, window_days, before_days, after_days,
                       b, a, int(nb), int(na), diff, low, high, p, test, significant, attributable, tuple(reasons),
                       verdict)


def _verdict(entry, kpi, b, a, diff, low, high, p, test, attributable, significant, reasons, confidence) -> str:
    label = kpi.label.lower()
    if math.isnan(diff):
        moved = f"{kpi.label} cannot be compared: one window has no data"
    else:
        moved = (f"{kpi.label} went from {format_value(b, kpi.kind)} to {format_value(a, kpi.kind)} "
                 f"({format_delta(diff, kpi.kind)}")
        if not math.isnan(low):
            moved += f", {confidence:.0%} CI {format_delta(low, kpi.kind)} to {format_delta(high, kpi.kind)}"
        moved += ")"
    if not attributable:
        return f"{moved}. The effect cannot be attributed to {entry.title!r}: {'; '.join(reasons)}."
    if test == NOT_TESTED:
        return f"{moved}. Not tested ({label} has no significance test here)."
    better = (diff > 0) == (kpi.direction == "higher")
    if significant and kpi.vanity:
        return (f"{moved}; p = {p:.3g}: a significant {'increase' if diff > 0 else 'decrease'} "
                "(volume alone says nothing about quality).")
    if significant:
        return f"{moved}; p = {p:.3g}: a significant {'improvement' if better else 'deterioration'}."
    return f"{moved}; p = {p:.3g}: not significant, no measurable effect yet."


def before_after_table(messages: pd.DataFrame, rollup: pd.DataFrame, entries: Sequence[ChangeEntry], *,
                       window_days: int = MIN_WINDOW_DAYS, min_days: int = MIN_WINDOW_DAYS,
                       options: KpiOptions | None = None, confidence: float = 0.95,
                       alpha: float = 0.05) -> pd.DataFrame:
    """:func:`before_after` for every entry: one row each (the fields of :class:`BeforeAfter`,
    ``reasons`` joined by "; ", plus ``date``). An entry whose metric the data cannot give gets
    NaN values and the reason as ``verdict``. No entries: an empty frame.

    Examples
    --------
    >>> before_after_table(pd.DataFrame(), pd.DataFrame(), []).empty
    True
    """
    from metrics.errors import ChatlensError

    entries = list(entries)
    rows = []
    for e in entries:
        try:
            row = before_after(messages, rollup, e, entries=entries, window_days=window_days, min_days=min_days,
                               options=options, confidence=confidence, alpha=alpha).as_dict()
        except ChatlensError as exc:
            row = {"change_id": e.id, "title": e.title, "metric": e.metric, "attributable": False,
                   "significant": False, "reasons": str(exc), "verdict": f"Not measurable: {exc}"}
        row["date"] = e.date.isoformat()
        rows.append(row)
    if not rows:
        return pd.DataFrame({c: [] for c in ("change_id", "date", "title", "metric", "verdict")})
    return pd.DataFrame(rows)
