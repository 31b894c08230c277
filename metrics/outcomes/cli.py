"""The ``volume``, ``engagement``, ``outcomes`` and ``escalation`` sections of ``python -m metrics summary``.

Registered in :data:`metrics.summary.SECTION_PROVIDERS` as
``"metrics.outcomes.cli:summary_section"``. Keys (NaN and missing values are written as
``null``):

``volume``
    ``conversations_per_week`` (ISO week such as ``"2026-W32"`` -> conversations started,
    every week from the first to the last, ``{}`` without timestamps) and ``spike_days``
    (``"YYYY-MM-DD"`` days flagged by :func:`metrics.engagement.volume.spike_days` with the defaults,
    ``[]`` without timestamps).
``engagement``
    ``mean_user_turns``, ``median_user_turns``, ``repeat_user_rate``, ``after_hours_rate``
    (:func:`metrics.engagement.engagement_summary`).
``outcomes``
    ``resolution_rate``, ``escalation_rate``, ``abandonment_rate``, ``containment_rate``
    (:func:`metrics.outcomes.outcome_rates`, default rules) and ``definitions``: one object per
    style of :func:`metrics.outcomes.vendor_definitions`, keyed ``chatlens_default``,
    ``copilot_studio``, ``intercom_fin``, ``rasa``, ``zendesk``, each with the same four keys.
``escalation``
    ``reasons`` (reason -> escalated conversations), ``within_first_3_turns_rate``,
    ``median_wait_seconds`` (:func:`metrics.outcomes.escalation.escalation_summary`).
"""

from __future__ import annotations


import pandas as pd

from metrics import engagement, outcomes
from metrics.outcomes import escalation
from metrics.engagement import volume
from metrics.io.schema import has_timestamps

from metrics.outcomes.facts import RATE_KEYS, _num  # noqa: F401 (shared with the facts)

__all__ = ["summary_section", "RATE_KEYS"]


def summary_section(messages: pd.DataFrame, rollup: pd.DataFrame) -> dict:
    """The four sections as a JSON-ready dict (keys in the module docstring).

    Empty input gives ``{}``/``[]`` and ``null`` rates; data without timestamps gives an
    empty week table, no spike days and ``null`` for ``after_hours_rate`` and
    ``median_wait_seconds``. Neither input is modified.

    Examples
    --------
    >>> import pandas as pd
    >>> from metrics.core.rollup import conversation_rollup
    >>> m = pd.DataFrame({"conversation_id": ["a", "a"], "speaker": ["user", "agent"], "text": ["help", "Hi"],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 10:02"], utc=True), "row": [1, 2]})
    >>> s = summary_section(m, conversation_rollup(m))
    >>> s["volume"], s["outcomes"]["escalation_rate"], s["escalation"]["within_first_3_turns_rate"]
    ({'conversations_per_week': {'2026-W32': 1}, 'spike_days': []}, 1.0, 1.0)
    """
    timed = has_timestamps(messages) and len(rollup) > 0
    if timed:
        weeks = volume.conversations_per_period(rollup, period="week")
        per_week = {str(p): int(c) for p, c in zip(weeks["period"], weeks["conversation_count"])}
        spikes = volume.spike_days(rollup)
    else:
        per_week, spikes = {}, []
    eng = engagement.engagement_summary(rollup)
    rates = outcomes.outcome_rates(messages, rollup)
    vendor = outcomes.vendor_definitions(messages, rollup)
    definitions = {row["style_id"]: {k: _num(row[k]) for k in RATE_KEYS} for _, row in vendor.iterrows()}
    esc = escalation.escalation_summary(messages, rollup)
    return {
        "volume": {"conversations_per_week": per_week, "spike_days": list(spikes)},
        "engagement": {
            "mean_user_turns": _num(eng.mean_user_turns),
            "median_user_turns": _num(eng.median_user_turns),
            "repeat_user_rate": _num(eng.repeat_user_rate),
            "after_hours_rate": _num(eng.after_hours_rate),
        },
        "outcomes": {**{k: _num(getattr(rates, k)) for k in RATE_KEYS}, "definitions": definitions},
        "escalation": {
            "reasons": dict(esc.reasons),
            "within_first_3_turns_rate": _num(esc.early_escalation_rate),
            "median_wait_seconds": _num(esc.median_wait_seconds),
        },
    }
