"""Comparisons: every KPI in two periods or two datasets side by side, and two NLU models' intents.

Two periods (:func:`compare_periods`)
    The same data in two windows ``a`` (the current period) and ``b`` (the one it is compared
    with). A unit (:func:`metrics.kpis.kpi_units`) belongs to the window of its conversation's
    start, exactly as in :func:`metrics.kpis.kpi_window`, so the values equal the dashboard's for
    the same week or month. :func:`parse_period` turns ``last-week``, ``last-month`` or
    ``FROM..TO`` into the pair of windows.
Two datasets (:func:`compare_datasets`)
    Two bots, or two NLU vendors' predictions on the same test set: the same KPI table, ``a`` the
    first dataset and ``b`` the second, each over all its data (or over its own window).
Columns of both (:data:`COMPARISON_COLUMNS`)
    ``name, label, kind, direction, available, reason``; ``value_a, n_a, value_b, n_b`` (``n``
    counts the units: conversations, labelled messages, rated conversations; for ROI metrics the
    conversations); ``delta = value_a - value_b`` (rates in proportion units: 0.021 is +2.1
    percentage points), ``relative_delta = delta / |value_b|`` (NaN when ``value_b`` is 0 or
    missing); ``p_value``, ``test`` (the method, named per row), ``significant`` (``p < alpha``,
    default 0.05) and ``better`` (True when the move is in the KPI's better direction, None for
    no move or no value).
The test per kind of KPI
    * ``rate``: pooled two-proportion z-test, two-sided (:func:`metrics.core.stats.two_proportion_ztest`,
      statsmodels ``proportions_ztest``);
    * ``score`` (CSAT): Mann-Whitney U, two-sided (``scipy.stats.mannwhitneyu``): ratings are
      ordinal, so their distributions are compared rather than assuming normal means;
    * ``count``: the exact conditional test of two Poisson rates with the windows' lengths in
      days as exposure (``scipy.stats.binomtest`` of ``x_a`` out of ``x_a + x_b`` at
      ``days_a / (days_a + days_b)``); for datasets the exposure is the days each one spans;
    * ``money``: not tested (sums of skewed values and the ROI model's outputs: no sampling model).
    A test needs units on both sides; otherwise the row says "not tested" and ``reason`` why.
Intents (:func:`compare_intents`)
    Per true intent, the recall of model ``a`` and of model ``b`` (the share of that intent's
    labelled user messages each predicts correctly; :func:`metrics.intents.labelled_messages`
    defines "labelled" and "correct"), plus an ``(all intents)`` row (accuracy). When the same
    utterances are labelled in both datasets (paired on ``message_id``, else on
    conversation + text + occurrence, else on text + occurrence; utterances whose true labels
    disagree are left out and counted), the test is McNemar's on the discordant pairs
    (statsmodels ``mcnemar``): exact binomial when fewer than 25 utterances are discordant,
    otherwise the chi-square with continuity correction. Without shared utterances, the
    recalls are compared with the two-proportion z-test. ``p_holm`` is the Holm-adjusted
    p-value over the per-intent rows (statsmodels ``multipletests``), since many intents are
    tested at once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from metrics.errors import ChatlensError, ConfigError, InsufficientDataError
from metrics.kpis import CATALOGUE, KPI_NAMES, NOT_TESTED, Z_TEST, KpiOptions, get_kpi, kpi_series, kpi_units
from metrics.core.periods import normalise_freq, period_label, previous_period_start
from metrics.core.stats import two_proportion_ztest

__all__ = [
    "MANN_WHITNEY",
    "POISSON_TEST",
    "MCNEMAR_EXACT",
    "MCNEMAR_CHI2",
    "MCNEMAR_EXACT_BELOW",
    "COMPARISON_COLUMNS",
    "INTENT_COLUMNS",
    "ALL_INTENTS",
    "Window",
    "PeriodPair",
    "IntentComparison",
    "parse_period",
    "latest_period",
    "window_slice",
    "compare_periods",
    "compare_datasets",
    "compare_intents",
]

MANN_WHITNEY = "Mann-Whitney U"
POISSON_TEST = "exact Poisson rate test"
MCNEMAR_EXACT = "McNemar exact (binomial)"
MCNEMAR_CHI2 = "McNemar chi-square (continuity-corrected)"
#: Discordant pairs below which McNemar's test is exact (binomial) rather than chi-square.
MCNEMAR_EXACT_BELOW = 25
ALL_INTENTS = "(all intents)"
COMPARISON_COLUMNS = ["name", "label", "kind", "direction", "available", "reason", "value_a", "n_a", "value_b",
                      "n_b", "delta", "relative_delta", "p_value", "test", "significant", "better"]
INTENT_COLUMNS = ["intent", "n_a", "n_b", "correct_a", "correct_b", "recall_a", "recall_b", "delta", "both_correct",
                  "only_a_correct", "only_b_correct", "neither_correct", "statistic", "p_value", "p_holm", "test",
                  "significant"]
_NAN = float("nan")
_DAY = pd.Timedelta(days=1)
_RANGE_RX = re.compile(r"^\s*(?P<lo>[^.\s][^.]*?)\s*\.\.\s*(?P<hi>[^.\s][^.]*?)\s*$")


# --------------------------------------------------------------------------- windows

@dataclass(frozen=True)
class Window:
    """A half-open UTC time range ``[start, end)`` with a label (``2026-W44``, ``2026-10``: the labels of
    :mod:`metrics.core.periods`; ``2026-10-01..2026-10-31`` for a range).

    ``freq`` is ``"W"`` or ``"M"`` when the window is exactly one ISO week or calendar month
    (then the ROI metrics come from the same per-period computation as the dashboard's)."""

    start: pd.Timestamp
    end: pd.Timestamp
    label: str
    freq: str | None = None

    @property
    def days(self) -> float:
        return (self.end - self.start) / _DAY


@dataclass(frozen=True)
class PeriodPair:
    """The report period ``current`` and the period it is compared with, ``previous``.

    ``kind`` is ``week`` (ISO weeks: week over week), ``month`` (calendar months: month over
    month) or ``range`` (a custom range against the range of equal length just before it).
    """

    current: Window
    previous: Window
    kind: str

    @property
    def name(self) -> str:
        return {"week": "week over week", "month": "month over month"}.get(
            self.kind, f"vs the previous {self.current.days:g} days")


def _utc(value, what: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a date (YYYY-MM-DD) or a time, got {value!r}") from None
    if stamp is pd.NaT or pd.isna(stamp):
        raise ConfigError(f"{what} must be a date (YYYY-MM-DD) or a time, got {value!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _require_times(rollup: pd.DataFrame) -> None:
    if len(rollup) == 0 or not rollup["started_at"].notna().any():
        raise InsufficientDataError("comparing periods needs timestamps, and this data has none")


def latest_period(rollup: pd.DataFrame, *, freq: str = "W") -> PeriodPair:
    """The latest complete ISO week (``freq="W"``) or calendar month (``"M"``) of the data, and
    the one before it (completeness as in :mod:`metrics.kpis`). InsufficientDataError when the
    data has no timestamps or no complete period.

    Examples
    --------
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["user"] * 2, "text": ["x"] * 2,
    ...     "timestamp": pd.to_datetime(["2026-08-03 00:00", "2026-08-16 20:00"], utc=True), "row": [1, 2]})
    >>> p = latest_period(conversation_rollup(m))
    >>> p.current.label, p.previous.label, str(p.previous.start.date())
    ('2026-W33', '2026-W32', '2026-08-03')
    """
    freq = normalise_freq(freq, allowed=("W", "M"))
    _require_times(rollup)
    weeks = kpi_series(pd.DataFrame({"conversation_id": pd.Series([], dtype="str")}), rollup,
                       metric="total_conversations", freq=freq)
    complete = np.flatnonzero(weeks["complete"].to_numpy(bool))
    what = "ISO week (Monday to Sunday)" if freq == "W" else "calendar month"
    if len(complete) == 0:
        raise InsufficientDataError(f"the data does not cover a complete {what} yet; choose a date range "
                                    "instead (FROM..TO)")
    i = int(complete[-1])
    cur = Window(weeks["period_start"].iloc[i], weeks["period_end"].iloc[i], str(weeks["period"].iloc[i]), freq)
    lo = previous_period_start(cur.start, freq)  # UTC, as the KPI series' periods
    prev = Window(lo, cur.start, period_label(lo, freq), freq)
    return PeriodPair(cur, prev, "week" if freq == "W" else "month")


def parse_period(text: str, rollup: pd.DataFrame) -> PeriodPair:
    """``last-week``, ``last-month`` or ``FROM..TO`` as a :class:`PeriodPair`.

    ``last-week`` / ``last-month`` are the latest complete ISO week / calendar month *of the
    data* (an export is often read days after it was taken) and the one before it. ``FROM..TO``
    are dates (``TO`` included: ``2026-10-01..2026-10-31`` is the whole of October) or ISO times
    (``TO`` excluded), compared with the range of equal length just before ``FROM``.

    Examples
    --------
    >>> p = parse_period("2026-10-01..2026-10-31", pd.DataFrame({"started_at": []}))
    >>> p.current.label, p.current.days, p.previous.label
    ('2026-10-01..2026-10-31', 31.0, '2026-08-31..2026-09-30')
    >>> parse_period("yesterday", pd.DataFrame())  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.ConfigError: period must be last-week, last-month or FROM..TO ...
    """
    if not isinstance(text, str):
        raise ConfigError(f"period must be text, got {text!r}")
    key = text.strip().lower().replace("_", "-")
    if key in ("last-week", "week"):
        return latest_period(rollup, freq="W")
    if key in ("last-month", "month"):
        return latest_period(rollup, freq="M")
    match = _RANGE_RX.match(text)
    if not match:
        raise ConfigError(f"period must be last-week, last-month or FROM..TO (e.g. 2026-10-01..2026-10-31), "
                          f"got {text!r}")
    lo, hi = _utc(match["lo"], "FROM"), _utc(match["hi"], "TO")
    date_only = re.fullmatch(r"\d{4}-\d{2}-\d{2}", match["hi"].strip()) is not None
    end = hi + _DAY if date_only else hi
    if not end > lo:
        raise ConfigError(f"the period must end after it starts, got {text!r}")
    length = end - lo
    prev_lo = lo - length

    def label(a: pd.Timestamp, b: pd.Timestamp) -> str:
        if date_only and a == a.normalize() and b == b.normalize():
            return f"{a.date().isoformat()}..{(b - _DAY).date().isoformat()}"
        return f"{a.isoformat()}..{b.isoformat()}"

    return PeriodPair(Window(lo, end, label(lo, end)), Window(prev_lo, lo, label(prev_lo, lo)), "range")


def window_slice(messages: pd.DataFrame, rollup: pd.DataFrame, window: Window | None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The conversations started in ``window`` (all of them when None) and their messages.

    Examples
    --------
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b"], "speaker": ["user"] * 2, "text": ["x"] * 2,
    ...     "timestamp": pd.to_datetime(["2026-08-03", "2026-08-16"], utc=True), "row": [1, 2]})
    >>> w = Window(pd.Timestamp("2026-08-10", tz="UTC"), pd.Timestamp("2026-08-17", tz="UTC"), "2026-W33")
    >>> window_slice(m, conversation_rollup(m), w)[1]["conversation_id"].tolist()
    ['b']
    """
    if window is None:
        return messages, rollup
    keep = (rollup["started_at"].ge(window.start) & rollup["started_at"].lt(window.end)).fillna(False)
    r = rollup[keep.to_numpy(bool)].reset_index(drop=True)
    ids = set(r["conversation_id"].astype("str"))
    m = messages[messages["conversation_id"].astype("str").isin(ids).to_numpy(bool)].reset_index(drop=True)
    return m, r


# --------------------------------------------------------------------------- one side of a comparison

@dataclass
class _Side:
    """One side: its data, the conversations it counts (None: all) and its exposure in days.

    ``units`` caches :func:`metrics.kpis.kpi_units` per metric; two sides over the same frames
    share one cache, so each metric's units are computed once."""

    messages: pd.DataFrame
    rollup: pd.DataFrame
    window: Window | None
    days: float
    options: KpiOptions | None
    units: dict = field(default_factory=dict)
    _kept: dict = field(default_factory=dict)

    def _starts(self, metric: str) -> np.ndarray:
        """Start (UTC epoch ns; NaT's minimum for none) of each unit's conversation, shared by the sides."""
        key = f"_starts:{metric}"
        if key not in self.units:
            r = self.rollup
            ns = r["started_at"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]").view("int64")
            index = self.units.setdefault("_index", pd.Index(r["conversation_id"].astype("str").array))
            pos = index.get_indexer(self.units[metric]["conversation_id"].astype("str"))
            self.units[key] = np.where(pos >= 0, ns[np.maximum(pos, 0)], np.iinfo("int64").min)
        return self.units[key]

    def values(self, metric: str) -> np.ndarray:
        """The metric's unit values on this side (ConfigError for ROI metrics, which have none)."""
        if metric not in self._kept:
            if metric not in self.units:
                self.units[metric] = kpi_units(self.messages, self.rollup, metric=metric, options=self.options)
            values = self.units[metric]["value"].to_numpy(float)
            if self.window is not None:
                starts = self._starts(metric)
                values = values[(starts >= self.window.start.value) & (starts < self.window.end.value)]
            self._kept[metric] = values
        return self._kept[metric]

    def roi(self, metric: str) -> tuple[float, int]:
        from metrics.kpis import KpiData, kpi_value, kpi_window

        if self.window is not None and self.window.freq:
            # one ISO week / calendar month: the dashboard's per-period ROI run, shared by the three ROI KPIs
            data = self.units.setdefault("_kpi_data", KpiData(self.messages, self.rollup, self.options))
            s = data.series(metric, freq=self.window.freq, periods={self.window.start})
            row = s[s["period_start"].eq(self.window.start).to_numpy(bool)]
            if len(row) == 0:
                return _NAN, 0
            return float(row["value"].iloc[0]), int(row["n"].iloc[0])
        if self.window is None:
            v = kpi_value(self.messages, self.rollup, metric=metric, options=self.options)
        else:
            v = kpi_window(self.messages, self.rollup, metric=metric, start=self.window.start,
                           end=self.window.end, options=self.options)
        return v.value, v.n


def _span_days(rollup: pd.DataFrame) -> float:
    starts = rollup["started_at"].dropna() if len(rollup) else pd.Series([], dtype="datetime64[ns, UTC]")
    if len(starts) == 0:
        return _NAN
    return max(1.0, math.ceil((starts.max().floor("D") + _DAY - starts.min().floor("D")) / _DAY))


# --------------------------------------------------------------------------- tests

def _rate_test(a: np.ndarray, b: np.ndarray) -> tuple[float, str]:
    _, p = two_proportion_ztest(int(round(a.sum())), len(a), int(round(b.sum())), len(b))
    return p, Z_TEST


def _score_test(a: np.ndarray, b: np.ndarray) -> tuple[float, str]:
    from scipy.stats import mannwhitneyu

    if np.all(a == a[0]) and np.all(b == a[0]):  # every rating equal: no difference (scipy would give NaN)
        return 1.0, MANN_WHITNEY
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue), MANN_WHITNEY


def _count_test(x_a: int, x_b: int, days_a: float, days_b: float) -> tuple[float, str]:
    from scipy.stats import binomtest

    if any(math.isnan(d) or d <= 0 for d in (days_a, days_b)):
        return _NAN, NOT_TESTED
    if x_a + x_b == 0:
        return 1.0, POISSON_TEST
    return float(binomtest(int(x_a), int(x_a + x_b), days_a / (days_a + days_b)).pvalue), POISSON_TEST


def _row(name: str, a: _Side, b: _Side, alpha: float) -> dict:
    kpi = CATALOGUE[name]
    row = {"name": name, "label": kpi.label, "kind": kpi.kind, "direction": kpi.direction, "available": True,
           "reason": "", "value_a": _NAN, "n_a": 0, "value_b": _NAN, "n_b": 0, "delta": _NAN,
           "relative_delta": _NAN, "p_value": _NAN, "test": NOT_TESTED, "significant": False, "better": None}
    try:
        if kpi.family == "roi":
            (va, na), (vb, nb) = a.roi(name), b.roi(name)
            p, test = _NAN, NOT_TESTED
        else:
            ua, ub = a.values(name), b.values(name)
            na, nb = len(ua), len(ub)
            if kpi.kind == "count":
                va, vb = float(na), float(nb)
            elif kpi.kind == "money":
                va, vb = float(ua.sum()), float(ub.sum())
            else:
                va = float(ua.mean()) if na else _NAN
                vb = float(ub.mean()) if nb else _NAN
            p, test = _NAN, NOT_TESTED
            if kpi.kind == "count":
                p, test = _count_test(na, nb, a.days, b.days)
                if test == NOT_TESTED:
                    row["reason"] = "no time span to compare the counts over"
            elif kpi.kind in ("rate", "score"):
                if na and nb:
                    p, test = (_rate_test if kpi.kind == "rate" else _score_test)(ua, ub)
                else:
                    row["reason"] = "no units on one side: not tested"
    except ChatlensError as exc:
        row.update(available=False, reason=str(exc))
        return row
    delta = va - vb if not (math.isnan(va) or math.isnan(vb)) else _NAN
    row.update(value_a=float(va), n_a=int(na), value_b=float(vb), n_b=int(nb), delta=delta,
               relative_delta=delta / abs(vb) if not math.isnan(delta) and vb else _NAN, p_value=p, test=test,
               significant=bool(not math.isnan(p) and p < alpha),
               better=None if math.isnan(delta) or delta == 0 else bool((delta > 0) == kpi.higher_is_better))
    return row


def _check(metrics, alpha) -> list[str]:
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    return list(KPI_NAMES) if metrics is None else [get_kpi(m).name for m in metrics]


def _table(names: Sequence[str], a: _Side, b: _Side, alpha: float) -> pd.DataFrame:
    rows = [_row(n, a, b, alpha) for n in names]
    if not rows:
        return pd.DataFrame({c: [] for c in COMPARISON_COLUMNS})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


# --------------------------------------------------------------------------- public comparisons

def compare_periods(messages: pd.DataFrame, rollup: pd.DataFrame, current: Window | PeriodPair,
                    previous: Window | None = None, *, metrics: Sequence[str] | None = None,
                    options: KpiOptions | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Every KPI (or ``metrics``) in window ``current`` (side ``a``) against ``previous`` (side ``b``).

    ``current`` may be a :class:`PeriodPair` (then ``previous`` is its own). Columns and tests:
    module docstring. A KPI the data cannot give has ``available`` False and the reason.
    InsufficientDataError without timestamps. Inputs are not modified.

    Examples
    --------
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "b", "c"], "speaker": ["agent", "user", "user"],
    ...     "text": ["x"] * 3, "row": [1, 2, 3],
    ...     "timestamp": pd.to_datetime(["2026-08-03", "2026-08-04", "2026-08-11"], utc=True)})
    >>> t = compare_periods(m, conversation_rollup(m), parse_period("2026-08-10..2026-08-16", pd.DataFrame()),
    ...                     metrics=["escalation_rate", "total_conversations"])
    >>> t[["name", "value_a", "value_b", "delta", "test"]].values.tolist()
    [['escalation_rate', 0.0, 0.5, -0.5, 'two-proportion z-test'], ['total_conversations', 1.0, 2.0, -1.0, 'exact Poisson rate test']]
    """
    if isinstance(current, PeriodPair):
        if previous is not None:
            raise ConfigError("give a PeriodPair, or two windows, not both")
        current, previous = current.current, current.previous
    if not isinstance(current, Window) or not isinstance(previous, Window):
        raise ConfigError("compare_periods needs two Window objects (see parse_period)")
    names = _check(metrics, alpha)
    _require_times(rollup)
    shared: dict = {}
    a = _Side(messages, rollup, current, current.days, options, shared)
    b = _Side(messages, rollup, previous, previous.days, options, shared)
    return _table(names, a, b, alpha)


def compare_datasets(a: tuple[pd.DataFrame, pd.DataFrame], b: tuple[pd.DataFrame, pd.DataFrame], *,
                     metrics: Sequence[str] | None = None, windows: tuple[Window | None, Window | None] = (None, None),
                     options: KpiOptions | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Every KPI of dataset ``a = (messages, rollup)`` against dataset ``b``, each over all its data
    or over its own window of ``windows``. Counts are tested as rates per day over the days each
    side spans (module docstring). Inputs are not modified.

    Examples
    --------
    >>> from metrics.core.rollup import conversation_rollup
    >>> def ds(speakers):
    ...     m = pd.DataFrame({"conversation_id": [f"c{i}" for i in range(len(speakers))], "speaker": speakers,
    ...                       "text": ["x"] * len(speakers), "row": range(1, len(speakers) + 1),
    ...                       "timestamp": pd.Series([pd.NaT] * len(speakers), dtype="datetime64[ns, UTC]")})
    ...     return m, conversation_rollup(m)
    >>> t = compare_datasets(ds(["user", "agent"]), ds(["user"] * 4), metrics=["escalation_rate"])
    >>> t[["value_a", "value_b", "delta"]].values.tolist(), t[["n_a", "n_b"]].values.tolist()
    ([[0.5, 0.0, 0.5]], [[2, 4]])
    """
    names = _check(metrics, alpha)
    sides = []
    for (m, r), w in zip((a, b), windows):
        days = w.days if w is not None else _span_days(r)
        sides.append(_Side(m, r, w, days, options))
    return _table(names, sides[0], sides[1], alpha)


# --------------------------------------------------------------------------- intents

@dataclass(frozen=True)
class IntentComparison:
    """Per-intent comparison of two models (module docstring).

    ``table`` has :data:`INTENT_COLUMNS`, the ``(all intents)`` row first, then the intents by
    labelled messages (most first). ``paired_on`` names the key the utterances were matched on
    (``None``: not paired, recalls compared with the z-test); ``paired_count`` the utterances
    in both; ``label_conflicts`` the shared utterances whose true labels disagree (left out).
    """

    table: pd.DataFrame
    paired_on: str | None
    paired_count: int
    label_conflicts: int
    notes: tuple[str, ...] = ()


def _labelled(messages: pd.DataFrame, fallback_intent: str) -> pd.DataFrame:
    from metrics.intents import labelled_messages

    lab = labelled_messages(messages, fallback_intent=fallback_intent)
    out = pd.DataFrame({"conversation_id": lab["conversation_id"].astype("str").to_numpy(object),
                        "text": lab["text"].astype("str").fillna("").to_numpy(object),
                        "true_intent": lab["true_intent"].astype("str").to_numpy(object),
                        "correct": lab["intent"].astype("str").eq(lab["true_intent"].astype("str"))
                        .fillna(False).to_numpy(bool)})
    if "message_id" in messages.columns and len(lab):
        ids = messages[["conversation_id", "row", "message_id"]].drop_duplicates(["conversation_id", "row"])
        ids = ids.assign(conversation_id=ids["conversation_id"].astype("str"))
        key = pd.MultiIndex.from_frame(ids[["conversation_id", "row"]])
        pos = key.get_indexer(pd.MultiIndex.from_arrays([lab["conversation_id"].astype("str"), lab["row"]]))
        mid = ids["message_id"].astype("str").to_numpy(object)
        out["message_id"] = [mid[p] if p >= 0 and isinstance(mid[p], str) else None for p in pos]
    else:
        out["message_id"] = None
    out["occurrence"] = out.groupby(["conversation_id", "text"], sort=False).cumcount()
    out["text_occurrence"] = out.groupby("text", sort=False).cumcount()
    return out


def _pair(la: pd.DataFrame, lb: pd.DataFrame, key: str) -> tuple[pd.DataFrame, str | None]:
    candidates = {"message_id": ["message_id"], "conversation": ["conversation_id", "text", "occurrence"],
                  "text": ["text", "text_occurrence"]}
    order = list(candidates) if key == "auto" else [key]
    for name in order:
        cols = candidates[name]
        a, b = la, lb
        if name == "message_id":
            a, b = la[la["message_id"].notna()], lb[lb["message_id"].notna()]
            if a["message_id"].duplicated().any() or b["message_id"].duplicated().any():
                continue  # ids that repeat cannot pair utterances
        joined = a.merge(b, on=cols, how="inner", suffixes=("_a", "_b"))
        if len(joined) or key != "auto":
            return joined, (name if len(joined) else None)
    return la.iloc[0:0], None


def _mcnemar(only_a: int, only_b: int, both: int, neither: int) -> tuple[float, float, str]:
    from statsmodels.stats.contingency_tables import mcnemar

    exact = only_a + only_b < MCNEMAR_EXACT_BELOW
    res = mcnemar([[both, only_a], [only_b, neither]], exact=exact, correction=True)
    return float(res.statistic), float(min(1.0, res.pvalue)), MCNEMAR_EXACT if exact else MCNEMAR_CHI2


def compare_intents(a_messages: pd.DataFrame, b_messages: pd.DataFrame, *, key: str = "auto",
                    fallback_intent: str = "nlu_fallback", alpha: float = 0.05) -> IntentComparison:
    """Per-intent recall of two models' predictions, with McNemar's test when the utterances are
    the same (module docstring). ``key``: ``auto``, ``message_id``, ``conversation`` or ``text``.

    Examples
    --------
    >>> def preds(intents):
    ...     return pd.DataFrame({"conversation_id": [f"c{i}" for i in range(4)], "row": range(1, 5),
    ...         "speaker": ["user"] * 4, "text": ["hi", "bye", "hello", "ciao"],
    ...         "true_intent": ["greet", "bye", "greet", "bye"], "intent": intents})
    >>> c = compare_intents(preds(["greet", "bye", "greet", "greet"]), preds(["greet", "greet", "bye", "greet"]))
    >>> all_row = c.table.iloc[0]
    >>> c.paired_on, all_row["intent"], float(all_row["recall_a"]), float(all_row["recall_b"]), all_row["test"]
    ('conversation', '(all intents)', 0.75, 0.25, 'McNemar exact (binomial)')
    """
    if key not in ("auto", "message_id", "conversation", "text"):
        raise ConfigError(f"key must be auto, message_id, conversation or text, got {key!r}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    la, lb = _labelled(a_messages, fallback_intent), _labelled(b_messages, fallback_intent)
    if len(la) == 0 or len(lb) == 0:
        raise InsufficientDataError("comparing intents needs labelled user messages (true_intent) in both datasets")
    joined, paired_on = _pair(la, lb, key)
    notes, conflicts = [], 0
    rows = []
    if paired_on is not None:
        agree = joined["true_intent_a"].eq(joined["true_intent_b"]).to_numpy(bool)
        conflicts = int((~agree).sum())
        if conflicts:
            notes.append(f"{conflicts} shared utterance(s) have different true labels in the two datasets "
                         "and are left out")
        j = joined[agree]
        groups = [(ALL_INTENTS, j)] + [(intent, g) for intent, g in
                                       sorted(j.groupby("true_intent_a", sort=False),
                                              key=lambda kv: (-len(kv[1]), kv[0]))]
        for intent, g in groups:
            ca, cb = g["correct_a"].to_numpy(bool), g["correct_b"].to_numpy(bool)
            both, only_a, only_b = int((ca & cb).sum()), int((ca & ~cb).sum()), int((~ca & cb).sum())
            neither = int(len(g) - both - only_a - only_b)
            stat, p, test = _mcnemar(only_a, only_b, both, neither)
            rows.append({"intent": intent, "n_a": len(g), "n_b": len(g), "correct_a": int(ca.sum()),
                         "correct_b": int(cb.sum()), "recall_a": float(ca.mean()), "recall_b": float(cb.mean()),
                         "both_correct": both, "only_a_correct": only_a, "only_b_correct": only_b,
                         "neither_correct": neither, "statistic": stat, "p_value": p, "test": test})
        only = len(la) + len(lb) - 2 * len(joined)
        if only:
            notes.append(f"{only} labelled utterance(s) are in only one dataset and are left out of the paired test")
    else:
        notes.append("no utterance is in both datasets: the recalls are compared as independent samples "
                     "(two-proportion z-test), not paired")
        intents = sorted(set(la["true_intent"]) | set(lb["true_intent"]),
                         key=lambda i: (-int((la["true_intent"] == i).sum() + (lb["true_intent"] == i).sum()), i))
        for intent in [ALL_INTENTS] + intents:
            ga = la if intent == ALL_INTENTS else la[la["true_intent"].eq(intent).to_numpy(bool)]
            gb = lb if intent == ALL_INTENTS else lb[lb["true_intent"].eq(intent).to_numpy(bool)]
            xa, xb = int(ga["correct"].sum()), int(gb["correct"].sum())
            z, p = two_proportion_ztest(xa, len(ga), xb, len(gb))
            rows.append({"intent": intent, "n_a": len(ga), "n_b": len(gb), "correct_a": xa, "correct_b": xb,
                         "recall_a": xa / len(ga) if len(ga) else _NAN, "recall_b": xb / len(gb) if len(gb) else _NAN,
                         "both_correct": None, "only_a_correct": None, "only_b_correct": None,
                         "neither_correct": None, "statistic": z, "p_value": p,
                         "test": Z_TEST if not math.isnan(p) else NOT_TESTED})
    table = pd.DataFrame(rows, columns=[c for c in INTENT_COLUMNS if c not in ("delta", "p_holm", "significant")])
    table.insert(7, "delta", table["recall_a"] - table["recall_b"])
    per_intent = table["intent"].ne(ALL_INTENTS).to_numpy(bool) & table["p_value"].notna().to_numpy(bool)
    holm = np.full(len(table), np.nan)
    if per_intent.any():
        from statsmodels.stats.multitest import multipletests

        holm[per_intent] = multipletests(table["p_value"].to_numpy(float)[per_intent], method="holm")[1]
    holm[~table["intent"].ne(ALL_INTENTS).to_numpy(bool)] = table["p_value"].to_numpy(float)[
        ~table["intent"].ne(ALL_INTENTS).to_numpy(bool)]
    table.insert(table.columns.get_loc("p_value") + 1, "p_holm", holm)
    table["significant"] = (table["p_holm"] < alpha).fillna(False).astype(bool)
    for c in ("both_correct", "only_a_correct", "only_b_correct", "neither_correct"):
        table[c] = table[c].astype("Int64")
    return IntentComparison(table[INTENT_COLUMNS].reset_index(drop=True), paired_on,
                            int(len(joined)) if paired_on else 0, conflicts, tuple(notes))
