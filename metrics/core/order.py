"""Conversation order: the messages of each conversation in time order, one kernel for every metric.

Definition
----------
Messages are in *conversation order* when they are sorted by

1. ``conversation_id``, compared as text (``"b10"`` before ``"b9"``); a missing id last;
2. ``timestamp``; a missing time (NaT) last;
3. ``row`` (the 1-based source row; the frame position when there is no ``row`` column); a missing
   row last;
4. the position in the frame: the sort is stable, so rows equal on every key keep their order.

This is ``frame.sort_values(["conversation_id", "timestamp", "row"], kind="stable",
na_position="last")`` with the ids compared as text. The first message, the last message, "the
next message" and turn numbers of every metric mean this order.

Speed
-----
At a million messages a sort of the whole frame, or grouping it by string ids, dominates a page.
The kernel works on integer keys (:func:`conversation_codes`, :func:`time_key`, :func:`row_key`),
checks whether the rows are already in order before sorting (validated frames are, see
:mod:`metrics.io.loaders`), and :func:`conversation_order` keeps its result per frame content
(:mod:`metrics.core.memo`), so every metric of a page shares one computation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from metrics.core import memo

__all__ = [
    "ORDER_COLUMNS",
    "ConversationOrder",
    "conversation_codes",
    "time_key",
    "row_key",
    "sort_positions",
    "group_starts",
    "conversation_order",
    "sort_messages",
    "message_order",
]

#: The columns that decide the conversation order.
ORDER_COLUMNS = ("conversation_id", "timestamp", "row")
_LAST = np.iinfo(np.int64).max


def conversation_codes(ids: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Per row, the rank of its conversation id (as text) among the distinct ids, -1 when missing;
    and those distinct ids in ascending order (a ``str`` Index, code -> id).

    Ids already grouped in ascending order without a missing one (validated frames) are numbered
    by comparing neighbours, without hashing every string.

    Examples
    --------
    >>> codes, ids = conversation_codes(pd.Series(["b9", "a", None, "b10", "a"]))
    >>> codes.tolist(), ids.tolist()
    ([2, 0, -1, 1, 0], ['a', 'b10', 'b9'])
    """
    cid = ids.astype("str")
    if len(cid) > 1 and not cid.isna().any():
        values = cid.array
        new = np.asarray(values[1:] != values[:-1], dtype=bool)
        heads = values[np.flatnonzero(np.r_[True, new])]
        if np.asarray(heads[1:] > heads[:-1], dtype=bool).all():  # grouped and ascending
            return np.concatenate([[0], np.cumsum(new)]).astype(np.int64), pd.Index(heads, dtype="str")
    codes, uniques = pd.factorize(cid, sort=True)
    return np.asarray(codes, dtype=np.int64), pd.Index(uniques, dtype="str")


def time_key(stamps: pd.Series) -> np.ndarray:
    """An int64 key that sorts like ``stamps``, a missing value last.

    Datetimes (any unit, tz-aware or naive) give their integer value; any other sortable column
    gives its rank among its distinct values.

    Examples
    --------
    >>> ts = pd.Series(pd.to_datetime(["2026-08-03 10:00", None, "2026-08-03 09:00"], utc=True))
    >>> np.argsort(time_key(ts), kind="stable").tolist()
    [2, 0, 1]
    """
    asi8 = getattr(stamps.array, "asi8", None) if pd.api.types.is_datetime64_any_dtype(stamps.dtype) else None
    if asi8 is not None:  # numpy-backed datetimes
        key = np.asarray(asi8, dtype=np.int64)  # NaT is the smallest int64
        return np.where(key == np.iinfo(np.int64).min, _LAST, key)
    codes, _ = pd.factorize(stamps, sort=True)
    return np.where(codes < 0, _LAST, codes).astype(np.int64)


def row_key(frame: pd.DataFrame) -> np.ndarray:
    """An int64 key that sorts like the ``row`` column (a missing row last), or the frame
    positions when there is no ``row`` column.

    Examples
    --------
    >>> row_key(pd.DataFrame({"row": [3.0, None, 1.0]})).tolist(), row_key(pd.DataFrame({"x": [7, 8]})).tolist()
    ([1, 2, 0], [0, 1])
    """
    if "row" not in frame.columns:
        return np.arange(len(frame), dtype=np.int64)
    rows = frame["row"]
    if pd.api.types.is_integer_dtype(rows.dtype) and not rows.hasnans:
        return rows.to_numpy(dtype=np.int64)
    codes, uniques = pd.factorize(rows, sort=True)
    codes = np.asarray(codes, dtype=np.int64)
    return np.where(codes < 0, len(uniques), codes)


def sort_positions(keys: Sequence[np.ndarray]) -> np.ndarray | None:
    """The positions that sort rows by ``keys`` (the first key first; ties keep their order), or
    None when the rows are already in that order (two vectorised comparisons per key, no sort).

    Examples
    --------
    >>> sort_positions([np.array([1, 0, 1]), np.array([5, 9, 4])]).tolist()
    [1, 2, 0]
    >>> sort_positions([np.array([0, 0, 1]), np.array([5, 5, 4])]) is None
    True
    """
    n = len(keys[0])
    if n < 2:
        return None
    tied = np.ones(n - 1, dtype=bool)  # rows equal on every key so far
    for key in keys:
        before, after = key[:-1], key[1:]
        if (tied & (before > after)).any():
            return np.lexsort(tuple(keys)[::-1])  # stable, like sort_values(kind="stable")
        tied &= before == after
    return None


def group_starts(codes: np.ndarray) -> np.ndarray:
    """The first position of each run of equal values in ``codes`` (conversation codes in
    conversation order): where each conversation begins.

    Examples
    --------
    >>> group_starts(np.array([0, 0, 1, 2, 2, 2])).tolist(), group_starts(np.array([], dtype=np.int64)).tolist()
    ([0, 2, 3], [])
    """
    codes = np.asarray(codes)
    if len(codes) == 0:
        return np.array([], dtype=np.int64)
    return np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]).astype(np.int64)


@dataclass(frozen=True)
class ConversationOrder:
    """A frame's messages in conversation order, as arrays.

    ``take`` holds the frame positions in that order (None when the frame is already in order);
    ``codes`` each ordered message's conversation code (-1, missing id, at the end); ``ids`` the
    distinct ids, code -> id (sorted).
    """

    take: np.ndarray | None
    codes: np.ndarray
    ids: pd.Index

    @property
    def positions(self) -> np.ndarray:
        """The frame positions in conversation order (``take``, or every position when None)."""
        return np.arange(len(self.codes)) if self.take is None else self.take

    @property
    def known_count(self) -> int:
        """How many messages have a conversation id (they come first)."""
        return int(np.searchsorted(self.codes < 0, True))


def conversation_order(frame: pd.DataFrame) -> ConversationOrder:
    """The :class:`ConversationOrder` of ``frame`` (see the module docstring), computed once per
    content of its ``conversation_id``, ``timestamp`` and ``row`` columns.

    Examples
    --------
    >>> f = pd.DataFrame({"conversation_id": ["b", "a", "a", None], "row": [1, 2, 3, 4],
    ...     "timestamp": pd.to_datetime(["2026-08-03", "2026-08-04", "2026-08-03", "2026-08-01"], utc=True)})
    >>> o = conversation_order(f)
    >>> o.take.tolist(), o.codes.tolist(), o.ids.tolist(), o.known_count
    ([2, 1, 0, 3], [0, 0, 1, -1], ['a', 'b'], 3)
    """
    return memo.cached("core.order", (memo.only(frame, ORDER_COLUMNS),), None, lambda: _order(frame))


def _order(frame: pd.DataFrame) -> ConversationOrder:
    n = len(frame)
    codes, ids = conversation_codes(frame["conversation_id"])
    ts = time_key(frame["timestamp"]) if "timestamp" in frame.columns else np.zeros(n, dtype=np.int64)
    take = sort_positions((np.where(codes < 0, _LAST, codes), ts, row_key(frame)))
    if take is not None:
        codes = codes[take]
        take.flags.writeable = False
    codes.flags.writeable = False
    return ConversationOrder(take, codes, ids)


def sort_messages(frame: pd.DataFrame) -> np.ndarray | None:
    """The positions of ``frame``'s rows in conversation order, or None when the rows are in that
    order already. Not kept in the memo (use it for filtered or short-lived frames; a page's
    dataset frame goes through :func:`conversation_order`).

    Examples
    --------
    >>> f = pd.DataFrame({"conversation_id": ["b", "a", "a"], "row": [1, 3, 2]})
    >>> sort_messages(f).tolist(), sort_messages(f.iloc[[2, 1, 0]])
    ([2, 1, 0], None)
    """
    return _order(frame).take


def message_order(frame: pd.DataFrame) -> np.ndarray:
    """The positions of ``frame``'s rows in conversation order: ``frame.iloc[message_order(frame)]``
    is the frame sorted (the module docstring's definition). Like :func:`sort_messages`, not kept.

    Examples
    --------
    >>> f = pd.DataFrame({"conversation_id": ["b", "a", "a"], "row": [1, 3, 2],
    ...     "timestamp": pd.to_datetime(["2026-08-03"] * 3, utc=True)})
    >>> message_order(f).tolist()
    [2, 1, 0]
    """
    return _order(frame).positions
