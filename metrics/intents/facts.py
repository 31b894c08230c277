"""The intents family's facts (placeholder: filled in by this family's facts work)."""

from __future__ import annotations

import pandas as pd

from metrics.core.facts import Context, Table

__all__ = ["TABLES", "shard_facts", "sections"]

TABLES: dict[str, Table] = {}


def shard_facts(shard: pd.DataFrame, ctx: Context) -> dict[str, pd.DataFrame]:
    return {}


def sections(facts: dict, ctx: Context, meta: dict) -> dict:
    return {}
