"""Calendar periods: the day, ISO week or calendar month holding a timestamp, its end and its label.

One definition for every time series of Chatlens (the KPI series, volume, sentiment and rating
trends, intent drift, funnel segments by week, period comparisons).

Frequencies
-----------
``"D"`` / ``"day"``
    The calendar day: midnight to midnight. Label ``YYYY-MM-DD`` (``2026-08-03``).
``"W"`` / ``"week"``
    The ISO 8601 week: Monday 00:00 to the next Monday 00:00. Label ``YYYY-Www`` with the ISO
    year, which differs from the calendar year around 1 January (2027-01-02 is in ``2026-W53``,
    2025-12-29 in ``2026-W01``).
``"M"`` / ``"month"``
    The calendar month: the 1st 00:00 to the next 1st 00:00. Label ``YYYY-MM``.

:func:`normalise_freq` turns either spelling into the one-letter code; every function here
accepts both.

Time zones
----------
Nothing here converts a time zone: a period is taken on the calendar of the timestamps given,
tz-aware (the start keeps that zone) or naive (the start stays naive). The caller says which
calendar it means, e.g. ``period_start(ts.dt.tz_convert("UTC"), "W")`` for UTC weeks or
``period_start(ts.dt.tz_convert(zone).dt.tz_localize(None), "day")`` for local days. Use UTC or
naive local times: a period of a zone with daylight saving is then never 23 or 25 hours long.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd

from metrics.errors import ConfigError

__all__ = [
    "FREQUENCIES",
    "FREQUENCY_NAMES",
    "normalise_freq",
    "period_start",
    "period_end",
    "previous_period_start",
    "period_range",
    "period_label",
]

#: The one-letter codes, shortest period first.
FREQUENCIES = ("D", "W", "M")
#: Code -> long name (both are accepted wherever a frequency is).
FREQUENCY_NAMES = {"D": "day", "W": "week", "M": "month"}
_ALIASES = {**{code: code for code in FREQUENCIES}, **{name: code for code, name in FREQUENCY_NAMES.items()}}
_STEPS = {"D": pd.Timedelta(days=1), "W": pd.Timedelta(days=7), "M": pd.offsets.MonthBegin(1)}
_RANGE_FREQ = {"D": "D", "W": "7D", "M": "MS"}
#: Above this many timestamps a label is formatted once per distinct calendar day and spread back.
_PER_DAY_FROM = 1000


def normalise_freq(freq, *, allowed=FREQUENCIES, what: str = "freq") -> str:
    """The one-letter code (``"D"``, ``"W"``, ``"M"``) of ``freq``, given as a code or a long name.

    ``allowed`` limits the frequencies a caller supports (codes or names); anything else raises
    :class:`ConfigError` naming ``what`` (the caller's parameter) and the accepted spellings.

    Examples
    --------
    >>> normalise_freq("week"), normalise_freq("M"), normalise_freq("day")
    ('W', 'M', 'D')
    >>> normalise_freq("D", allowed=("W", "M"))  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.ConfigError: freq must be 'W' or 'week' (ISO week), 'M' or 'month' (calendar month); got 'D'
    """
    codes = [_ALIASES[a] for a in allowed]
    code = _ALIASES.get(freq) if isinstance(freq, str) else None
    if code is None or code not in codes:
        meaning = {"D": "day", "W": "ISO week", "M": "calendar month"}
        accepted = ", ".join(f"'{c}' or '{FREQUENCY_NAMES[c]}' ({meaning[c]})" for c in codes)
        raise ConfigError(f"{what} must be {accepted}; got {freq!r}")
    return code


def period_start(stamps: pd.Series, freq: str) -> pd.Series:
    """The start of the period holding each timestamp: midnight of its day, of the Monday of its
    ISO week, or of the 1st of its month, on the timestamps' own calendar (see the module
    docstring). NaT stays NaT; the index is kept.

    Examples
    --------
    >>> ts = pd.Series(pd.to_datetime(["2026-08-06 15:00", "2027-01-02 10:00", None], utc=True))
    >>> [str(t.date()) if t is not pd.NaT else None for t in period_start(ts, "W")]
    ['2026-08-03', '2026-12-28', None]
    >>> period_start(ts, "month").dt.strftime("%Y-%m-%d").tolist()[:2]
    ['2026-08-01', '2027-01-01']
    >>> str(period_start(pd.Series(pd.to_datetime(["2026-08-06 23:30"])), "D").iloc[0])
    '2026-08-06 00:00:00'
    """
    code = normalise_freq(freq)
    day = stamps.dt.normalize()
    if code == "D":
        return day
    if code == "W":
        return day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    return day - pd.to_timedelta(day.dt.day - 1, unit="D")


def period_end(start, freq: str):
    """The end (exclusive) of the period beginning at ``start``: the next period's start.

    ``start`` is a period start (:func:`period_start`): a Timestamp, a Series or a DatetimeIndex.

    Examples
    --------
    >>> str(period_end(pd.Timestamp("2026-08-03", tz="UTC"), "W"))
    '2026-08-10 00:00:00+00:00'
    >>> str(period_end(pd.Timestamp("2026-12-01"), "M")), str(period_end(pd.Timestamp("2026-12-31"), "D"))
    ('2027-01-01 00:00:00', '2027-01-01 00:00:00')
    """
    return start + _STEPS[normalise_freq(freq)]


def previous_period_start(start, freq: str):
    """The start of the period just before the one beginning at ``start`` (a period start).

    Examples
    --------
    >>> str(previous_period_start(pd.Timestamp("2027-01-04", tz="UTC"), "week").date())
    '2026-12-28'
    >>> str(previous_period_start(pd.Timestamp("2026-03-01"), "M").date())
    '2026-02-01'
    """
    return start - _STEPS[normalise_freq(freq)]


def period_range(first_start, last_start, freq: str) -> pd.DatetimeIndex:
    """Every period start from ``first_start`` to ``last_start`` (both period starts, included),
    so that periods without data are present too.

    Examples
    --------
    >>> [str(t.date()) for t in period_range(pd.Timestamp("2026-11-01"), pd.Timestamp("2027-01-01"), "M")]
    ['2026-11-01', '2026-12-01', '2027-01-01']
    >>> len(period_range(pd.Timestamp("2026-12-28", tz="UTC"), pd.Timestamp("2027-01-11", tz="UTC"), "W"))
    3
    """
    return pd.date_range(first_start, last_start, freq=_RANGE_FREQ[normalise_freq(freq)])


def period_label(stamps, freq: str):
    """The label of the period holding each timestamp: ``2026-08-03`` (day), ``2026-W32`` (ISO
    week, with the ISO year), ``2026-08`` (month), on the timestamps' own calendar.

    ``stamps`` is a Series (the result is a ``str`` Series with its index; NaT gives a missing
    label), a DatetimeIndex or another sequence (a ``str`` Series with a fresh index), or one
    Timestamp (a ``str``). A label depends only on the calendar day, so a long series is
    formatted once per distinct day.

    Examples
    --------
    >>> ts = pd.Series(pd.to_datetime(["2026-01-01", "2027-01-02", "2027-01-04", "2026-08-03"]))
    >>> period_label(ts, "W").tolist()
    ['2026-W01', '2026-W53', '2027-W01', '2026-W32']
    >>> period_label(ts, "month").tolist()[:2], period_label(ts, "day").tolist()[:2]
    (['2026-01', '2027-01'], ['2026-01-01', '2027-01-02'])
    >>> period_label(pd.Timestamp("2025-12-29", tz="UTC"), "W")
    '2026-W01'
    """
    code = normalise_freq(freq)
    if isinstance(stamps, (pd.Timestamp, _dt.datetime, _dt.date)):
        return str(_labels(pd.Series([pd.Timestamp(stamps)]), code).iloc[0])
    series = stamps if isinstance(stamps, pd.Series) else pd.Series(stamps)
    if len(series) > _PER_DAY_FROM and series.notna().all():
        naive = series.dt.tz_localize(None) if series.dt.tz is not None else series
        codes, days = pd.factorize(naive.dt.normalize())
        labels = _labels(pd.Series(days), code).to_numpy(dtype=object)
        return pd.Series(labels[codes], index=series.index, dtype="str")
    return _labels(series, code)


def _labels(stamps: pd.Series, code: str) -> pd.Series:
    """:func:`period_label` of every timestamp of a Series (NaT: missing)."""
    if code == "D":
        return stamps.dt.strftime("%Y-%m-%d").astype("str")
    if code == "M":
        return stamps.dt.strftime("%Y-%m").astype("str")
    out = pd.Series(pd.NA, index=stamps.index, dtype="str")
    timed = stamps.notna().to_numpy(dtype=bool)
    if timed.any():
        iso = stamps[timed].dt.isocalendar()
        out[timed] = [f"{year}-W{week:02d}" for year, week in zip(iso["year"].to_numpy(dtype=np.int64),
                                                                     iso["week"].to_numpy(dtype=np.int64))]
    return out
