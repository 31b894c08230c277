"""Intermediate results derived from frames, kept while the frames' data is unchanged.

A page calls many metric functions on one dataset frame, and several of them derive the same
intermediate table (the per-conversation outcome facts, the escalation table, the sorted order of
the messages). :func:`cached` computes such a table once per frame content instead of once per
call. It is an internal helper of the metric modules: the public functions keep their signatures
and still never mutate their input.

How a frame is recognised
-------------------------
* An Arrow-backed column (every string column of a validated frame) is immutable. It is identified
  by its Arrow array object, held by weak reference: the entry is dropped when the array dies, so
  a later array reusing its ``id`` can never be mistaken for it.
* Any other column (numpy: timestamps, numbers, nullable booleans) can be changed in place. It is
  identified by its dtype, length and a CRC-32 of its bytes (about 1 ms per million values), so a
  frame modified in place is a different key.
* A column of Python objects cannot be fingerprinted cheaply: a frame holding one is not cached
  (the result is computed every time).

The key also holds the column names, the row index and the derivation's name and options. At most
:data:`MAX_ENTRIES` results are kept (least recently used first out).

Callers must not modify a returned result in place: frames are returned as shallow copies (pandas'
copy-on-write then protects the stored one), numpy arrays read-only.
"""

from __future__ import annotations

import threading
import weakref
import zlib
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

import numpy as np
import pandas as pd

__all__ = ["MAX_ENTRIES", "cached", "clear", "frame_token", "only", "stats"]

#: Results kept at most (least recently used first out).
MAX_ENTRIES = 64

T = TypeVar("T")

_LOCK = threading.RLock()  # re-entrant: a weak-reference callback may run while it is held
_ENTRIES: "OrderedDict[tuple, object]" = OrderedDict()
_STATS = {"hits": 0, "misses": 0, "uncached": 0}


class _Unhashable(Exception):
    """A column that cannot be fingerprinted cheaply (Python objects)."""


def _drop_entries_of(arrow_id: int) -> None:
    with _LOCK:
        dropped = [_ENTRIES.pop(k) for k in [k for k in _ENTRIES if arrow_id in k[-1]]]
    del dropped


def _column_token(values: pd.Series, arrows: dict[int, weakref.ref]) -> tuple:
    array = values.array
    chunked = getattr(array, "_pa_array", None)
    if chunked is not None:  # immutable: its identity is its content
        arrows.setdefault(id(chunked), weakref.ref(chunked, lambda _, i=id(chunked): _drop_entries_of(i)))
        return ("arrow", id(chunked))
    parts = [getattr(array, name, None) for name in ("_ndarray", "_data", "_mask")]
    parts = [p for p in parts if isinstance(p, np.ndarray)] or [np.asarray(array)]
    crc = 0
    for part in parts:
        if part.dtype == object:
            raise _Unhashable
        crc = zlib.crc32(np.ascontiguousarray(part).view(np.uint8), crc)
    return (str(values.dtype), len(values), crc)


def frame_token(frame: pd.DataFrame, arrows: dict[int, weakref.ref] | None = None) -> tuple:
    """A hashable token of ``frame``'s content: equal tokens mean equal data (see the module docstring).

    Raises ``TypeError`` for a frame holding a column of Python objects.

    Examples
    --------
    >>> f = pd.DataFrame({"n": [1, 2]})
    >>> frame_token(f) == frame_token(f.copy())
    True
    >>> g = f.copy()
    >>> g.loc[0, "n"] = 5
    >>> frame_token(f) == frame_token(g)
    False
    """
    arrows = {} if arrows is None else arrows
    try:
        columns = tuple((str(name), _column_token(frame.iloc[:, i], arrows)) for i, name in enumerate(frame.columns))
        index = frame.index
        index_token = (("range", index.start, index.stop, index.step) if isinstance(index, pd.RangeIndex)
                       else _column_token(index.to_series(), arrows))
    except _Unhashable:
        raise TypeError("a column of Python objects cannot be fingerprinted") from None
    return (columns, index_token)


def cached(name: str, frames: tuple[pd.DataFrame, ...], options: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, or the result kept from an earlier call with equal ``frames`` data and ``options``.

    ``name`` names the derivation (one per function); ``options`` is anything hashable that the result
    depends on besides the frames. A DataFrame result is returned as a shallow copy and a numpy array
    as a read-only view, so the kept result cannot be changed through what the caller gets.

    Examples
    --------
    >>> f = pd.DataFrame({"n": [1, 2, 3]})
    >>> calls = []
    >>> def total():
    ...     calls.append(1)
    ...     return int(f["n"].sum())
    >>> cached("doc-total", (f,), None, total), cached("doc-total", (f.copy(),), None, total), len(calls)
    (6, 6, 1)
    """
    arrows: dict[int, weakref.ref] = {}
    try:
        key = (name, tuple(frame_token(f, arrows) for f in frames), options)
        hash(key)
    except TypeError:
        with _LOCK:
            _STATS["uncached"] += 1
        return compute()
    key = key + (frozenset(arrows),)
    with _LOCK:
        if key in _ENTRIES:
            _ENTRIES.move_to_end(key)
            _STATS["hits"] += 1
            return _shielded(_ENTRIES[key][0])
        _STATS["misses"] += 1
    result = compute()
    evicted = []  # freed after the lock is released (freeing may run weak-reference callbacks)
    with _LOCK:
        _ENTRIES[key] = (result, list(arrows.values()))  # the weak references keep their callbacks alive
        while len(_ENTRIES) > MAX_ENTRIES:
            evicted.append(_ENTRIES.popitem(last=False))
    del evicted
    return _shielded(result)


def only(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """The columns of ``frame`` among ``columns`` (those present), sharing its arrays: the key of a
    derivation that reads only them, so frames that differ elsewhere (a scored copy) share its result.

    Examples
    --------
    >>> list(only(pd.DataFrame({"a": [1], "b": [2], "c": [3]}), ("c", "a", "z")).columns)
    ['a', 'c']
    """
    wanted = set(columns)
    return frame[[c for c in frame.columns if c in wanted]]


def _shielded(result):
    if isinstance(result, pd.DataFrame):
        return result.copy(deep=False)
    if isinstance(result, np.ndarray):
        view = result.view()
        view.flags.writeable = False
        return view
    if isinstance(result, tuple):
        return tuple(_shielded(r) for r in result)
    return result


def clear() -> None:
    """Forget every kept result (tests)."""
    with _LOCK:
        dropped = list(_ENTRIES.values())
        _ENTRIES.clear()
    del dropped


def stats() -> dict[str, int]:
    """Counts of hits, misses and uncached calls, plus the entries kept."""
    with _LOCK:
        return dict(_STATS, entries=len(_ENTRIES))
