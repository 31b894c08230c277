"""Stored names applied to a topic table (pure: the names come from :mod:`metrics.topics.persist`)."""

from __future__ import annotations

import pandas as pd

__all__ = ["NAME_SOURCES", "with_names"]

#: Where a shown name comes from: the user's own name, a pinned automatic label, or this run's label.
NAME_SOURCES = ("renamed", "pinned", "automatic")


def with_names(topics: pd.DataFrame, names: pd.DataFrame | None) -> pd.DataFrame:
    """A copy of ``topics`` (a frame with ``topic`` and ``label``) with ``name`` (the stored name of the topic,
    else its label) and ``name_source`` (one of :data:`NAME_SOURCES`) after ``label``.

    Examples
    --------
    >>> t = pd.DataFrame({"topic": [1, 2], "label": ["refund, money", "order, track"]})
    >>> n = pd.DataFrame({"topic": [2], "name": ["Where is my order"], "source": ["renamed"]})
    >>> with_names(t, n)[["name", "name_source"]].values.tolist()
    [['refund, money', 'automatic'], ['Where is my order', 'renamed']]
    """
    out = topics.copy()
    if names is not None and len(names):
        by_topic = names.drop_duplicates("topic", keep="last").set_index("topic")
        stored = out["topic"].map(by_topic["name"])
        source = out["topic"].map(by_topic["source"])
    else:
        stored = pd.Series(None, index=out.index, dtype="str")
        source = pd.Series(None, index=out.index, dtype="str")
    name = stored.where(stored.notna(), out["label"]).astype("str")
    source = source.where(stored.notna(), "automatic").astype("str")
    at = list(out.columns).index("label") + 1 if "label" in out.columns else len(out.columns)
    out.insert(at, "name", name)
    out.insert(at + 1, "name_source", source)
    return out
