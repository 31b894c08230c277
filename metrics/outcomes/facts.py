"""The outcomes family's facts: each conversation's outcome, its vendor-style flags, its escalation
and its hand-off wait.

Tables (:mod:`metrics.core.facts` explains how they combine across shards), each one row per
conversation (keys ``conversation_id``), sorted by ``conversation_id``:

``outcomes``
    :func:`metrics.outcomes.outcome_table` with the default rules and the dataset's export end
    (``ctx.export_end``, not the shard's last timestamp): ``outcome``, ``rule``, ``escalated``
    (the escalation signal).
``vendor_flags``
    The flags of :func:`metrics.outcomes.vendor_outcome_table` (default options) that a
    conversation decides alone, as bool columns ``<style id>_<flag>``. Intercom Fin's
    ``resolved`` needs "no new conversation by the same user within the window", which spans
    conversations: the table holds its parts instead (``intercom_fin_confirmed``,
    ``intercom_fin_assumed``, ``intercom_fin_last_answer_at``) and :func:`sections` completes it
    over the whole dataset's rollup (:func:`metrics.engagement.facts.rollup`).
``escalations``
    :func:`metrics.outcomes.escalation.escalation_table`: one row per escalated conversation
    (``reason``, ``reason_source``, ``turn``, ``hour``, ``weekday_name``, ``topic``, ``intent``,
    ``channel``).
``handoff_waits``
    :func:`metrics.outcomes.escalation.handoff_wait_times`: one row per conversation with a
    ``handoff`` event (``handoff_at``, ``first_agent_at``, ``wait_seconds``).

Sections: ``outcomes`` and ``escalation`` (the keys of ``metrics.outcomes.cli.summary_section``;
``volume`` and ``engagement`` are the engagement family's). The medians are taken over the
per-conversation rows, never over per-shard results.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from metrics.core.facts import Context, Table

__all__ = ["TABLES", "shard_facts", "sections", "VENDOR_OPTIONS"]

#: The vendor-style options of the summary (the defaults of ``vendor_definitions``).
VENDOR_OPTIONS = {"fin_window_hours": 24.0, "rasa_session_minutes": 60.0, "zendesk_session_hours": 2.0}

_KEY = ("conversation_id",)
TABLES = {
    "outcomes": Table(keys=_KEY),
    "vendor_flags": Table(keys=_KEY),
    "escalations": Table(keys=_KEY),
    "handoff_waits": Table(keys=_KEY),
}

_OUTCOME_COLUMNS = ("conversation_id", "outcome", "rule", "escalated")
_UTC = "datetime64[ns, UTC]"


def _rules(ctx: Context):
    """The default outcome rules, with the dataset's export end (so a shard's "still open" is the
    whole dataset's)."""
    from metrics.outcomes import OutcomeRules

    return OutcomeRules() if pd.isna(ctx.export_end) else OutcomeRules(export_end=ctx.export_end)


def _empty_outcomes() -> pd.DataFrame:
    return pd.DataFrame({"conversation_id": pd.Series([], dtype="str"), "outcome": pd.Series([], dtype="str"),
                         "rule": pd.Series([], dtype="str"), "escalated": pd.Series([], dtype=bool)})


def _empty_vendor_flags() -> pd.DataFrame:
    from metrics.outcomes import _FIN_PARTS, _VENDOR_LOCAL_FLAGS

    data = {"conversation_id": pd.Series([], dtype="str")}
    data.update({c: pd.Series([], dtype=bool) for c in _VENDOR_LOCAL_FLAGS + _FIN_PARTS})
    data["intercom_fin_last_answer_at"] = pd.Series([], dtype=_UTC)
    return pd.DataFrame(data)


def shard_facts(shard: pd.DataFrame, ctx: Context) -> dict[str, pd.DataFrame]:
    """The four tables of one shard (module docstring); an empty shard gives them with no rows.

    >>> m = pd.DataFrame({"conversation_id": ["a", "a", "b"], "speaker": ["user", "agent", "user"],
    ...     "text": ["I want a human", "Hi, Ana here", "thanks"], "row": [1, 2, 3],
    ...     "timestamp": pd.to_datetime(["2026-08-03 10:00", "2026-08-03 10:02", "2026-08-03 11:00"], utc=True)})
    >>> from metrics.core.facts import context_of
    >>> f = shard_facts(m, context_of(m))
    >>> f["outcomes"][["conversation_id", "outcome"]].values.tolist()
    [['a', 'escalated'], ['b', 'in_progress']]
    >>> f["escalations"][["conversation_id", "reason", "turn"]].values.tolist()
    [['a', 'customer requested agent', 1.0]]
    """
    from metrics.core.facts import shard_rollup
    from metrics.outcomes import _vendor_local, outcome_table
    from metrics.outcomes.escalation import _handoff_wait_times, escalation_table

    rollup = shard_rollup(shard)
    rules = _rules(ctx)
    if len(rollup) == 0:
        outcomes, vendor = _empty_outcomes(), _empty_vendor_flags()
    else:
        outcomes = outcome_table(shard, rollup, rules=rules)[list(_OUTCOME_COLUMNS)].reset_index(drop=True)
        vendor = _vendor_local(shard, rollup, rules, **VENDOR_OPTIONS)
        vendor.index = vendor.index.astype("str")
        vendor = vendor.rename_axis("conversation_id").reset_index()
        vendor["conversation_id"] = vendor["conversation_id"].astype("str")
        vendor["intercom_fin_last_answer_at"] = vendor["intercom_fin_last_answer_at"].astype(_UTC)
    escalations = escalation_table(shard, rollup).reset_index(drop=True)
    if "timestamp" in shard.columns:
        waits = _handoff_wait_times(shard).reset_index(drop=True)
    else:
        waits = _handoff_wait_times(shard.iloc[0:0])  # no times: no wait is measurable
    return {"outcomes": outcomes.sort_values("conversation_id", kind="stable").reset_index(drop=True),
            "vendor_flags": vendor.sort_values("conversation_id", kind="stable").reset_index(drop=True),
            "escalations": escalations.sort_values("conversation_id", kind="stable").reset_index(drop=True),
            "handoff_waits": waits.sort_values("conversation_id", kind="stable").reset_index(drop=True)}


def _vendor_rows(facts: dict) -> pd.DataFrame:
    """``vendor_definitions`` (default options) from the combined facts."""
    from metrics.engagement.facts import rollup as whole_rollup
    from metrics.outcomes import OutcomeRules, _definitions_of, _vendor_styles

    local = facts["outcomes"]["vendor_flags"]
    styles = {}
    if len(local):
        local = local.set_index(pd.Index(local["conversation_id"].astype("str"), name="conversation_id"))
        local = local.drop(columns="conversation_id")
        roll = whole_rollup(facts)
        roll = roll.set_index(pd.Index(roll["conversation_id"].astype("str")), drop=False).reindex(local.index)
        styles = _vendor_styles(local, roll.reset_index(drop=True), VENDOR_OPTIONS["fin_window_hours"])
    # The rules only fill the definitions' texts (timeout and mode): the export end plays no part.
    return _definitions_of(styles, OutcomeRules(), **VENDOR_OPTIONS)


def sections(facts: dict, ctx: Context, meta: dict) -> dict:
    """``outcomes`` and ``escalation`` from the combined facts (keys of
    ``metrics.outcomes.cli.summary_section``)."""
    from metrics.engagement.facts import rollup as whole_rollup
    from metrics.outcomes import _rates_of
    from metrics.outcomes.escalation import _reasons_of, _timing_of

    own = facts["outcomes"]
    rates = _rates_of(own["outcomes"])
    vendor = _vendor_rows(facts)
    definitions = {row["style_id"]: {k: _num(row[k]) for k in RATE_KEYS} for _, row in vendor.iterrows()}

    escalations = own["escalations"]
    timing = _timing_of(len(escalations), escalations["turn"], 3, 0.40)
    reasons = _reasons_of(escalations)
    roll = whole_rollup(facts)
    timed = len(roll) > 0 and bool(roll["started_at"].notna().any())
    waits = own["handoff_waits"]["wait_seconds"].dropna()
    wait = float(waits.median()) if timed and len(waits) else np.nan
    return {
        "outcomes": {**{k: _num(getattr(rates, k)) for k in RATE_KEYS}, "definitions": definitions},
        "escalation": {
            "reasons": {str(k): int(v) for k, v in zip(reasons["reason"], reasons["conversation_count"])},
            "within_first_3_turns_rate": _num(timing.early_escalation_rate),
            "median_wait_seconds": _num(wait),
        },
    }


RATE_KEYS = ("resolution_rate", "escalation_rate", "abandonment_rate", "containment_rate")


def _num(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value
