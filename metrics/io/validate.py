"""Raw table -> validated transcript frame, checking everything at once.

:func:`detect_mapping` proposes which source column feeds each canonical
column; :func:`normalize` converts and validates every column and collects
*every* problem (like pandera's lazy mode) as a DataFrame of
``file, row, column, value, message, fix``. Nothing is dropped here: the caller
(:mod:`metrics.io.loaders`) decides whether to refuse the file or skip the bad rows.

Timestamps
----------
A value made only of a number (``1704103200``, ``1704103200.5``, ``-86400``, ``1.7041032E+09``) is an epoch
time wherever it occurs in the column: seconds since 1970-01-01 UTC, milliseconds when above 10^11. Every
other value is a date text (ISO 8601 first, then other formats, see :class:`_DateOrder`). A message time must
lie in the plausible range of a chat transcript, from :data:`EARLIEST_TIMESTAMP` (1990-01-01 UTC) to
:data:`MAX_YEARS_AHEAD` (1) year after ``now``; anything else is a problem naming its row and value, never a
silent 1970 or 1969:

* a number from 20,000 to 80,000 (:data:`EXCEL_SERIAL_DAYS`) "looks like an Excel serial date" (days since
  1899-12-30: 45292 is 2024-01-01, 45292.5417 is 2024-01-01 13:00, i.e. 1954 to 2119). It is not converted:
  Excel counts from 1899-12-30 or, in old Mac workbooks, from 1904-01-01, in the workbook's local time, and
  nothing in the number says which; the fix shows the date of the first serial and how to export ISO 8601 text;
* a negative number is a "negative epoch time";
* an 8-digit number that is a date (``20240101``) "looks like a date written YYYYMMDD";
* 1970-01-01 00:00 UTC (``0``, or the same instant written as a date) is "epoch 0, usually a missing value";
* a number too large for seconds or milliseconds (beyond the year 2255) is "too large";
* any other time before 1990-01-01 (``0001-01-01``, ``12345``), or more than a year after ``now``
  (``2099-12-31``, ``9999-12-31``, ``2261-...``), is "before 1990-01-01" / "more than 1 year after now".

Times up to a year ahead load, with a notice when they are more than a day ahead (a wrong time zone, most
often). Timestamp parsing raises nothing but :class:`~metrics.errors.ConfigError` for an unknown time zone:
a value that cannot be read is a problem.

Ids
---
``conversation_id``, ``message_id`` and ``user_id`` are compared as text after clean-up: surrounding
whitespace removed, Unicode format characters (category Cf: zero-width space U+200B, non-joiner U+200C,
joiner U+200D, word joiner U+2060, BOM U+FEFF, direction marks and embeddings, soft hyphen ...) removed
anywhere, and Unicode normalised to NFC (``e`` + U+0301 is ``é``). So ``c\\u200b1`` and ``c1``, or two
spellings of ``René``, are one conversation. Ids changed by more than the whitespace give a notice with
their count and one example, its invisible characters written as ``\\uXXXX``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metrics.errors import ConfigError, Problem
from metrics.io.schema import BY_NAME, COLUMNS, SPEAKERS, SPEAKER_SYNONYMS, _key, canonical_name

__all__ = ["detect_mapping", "normalize", "Normalized", "PROBLEM_COLUMNS", "EARLIEST_TIMESTAMP", "MAX_YEARS_AHEAD",
           "EXCEL_SERIAL_DAYS"]

PROBLEM_COLUMNS = ["file", "row", "column", "value", "message", "fix"]
_TRUE = {"true", "t", "yes", "y", "1", "1.0", "on"}
_FALSE = {"false", "f", "no", "n", "0", "0.0", "off"}
_THUMBS = {"up": "up", "thumbs_up": "up", "👍": "up", "positive": "up", "1": "up", "true": "up", "like": "up",
           "down": "down", "thumbs_down": "down", "👎": "down", "negative": "down", "0": "down",
           "false": "down", "dislike": "down", "-1": "down"}
_EXTRA_TS = ("start_time", "starttime", "start")

#: The earliest plausible time of a chat message; an earlier timestamp is a problem.
EARLIEST_TIMESTAMP = pd.Timestamp("1990-01-01", tz="UTC")
#: A timestamp more than this many years after ``now`` is a problem (a day ahead already gets a notice).
MAX_YEARS_AHEAD = 1
#: Numbers in this range (inclusive) are read as Excel serial dates (days since 1899-12-30: 1954-10-03 to
#: 2119-01-11) and refused; as epoch seconds they would all be on 1970-01-01.
EXCEL_SERIAL_DAYS = (20_000, 80_000)


def detect_mapping(columns, *, sample: pd.DataFrame | None = None,
                   overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Map canonical column -> source column, from header synonyms and user overrides.

    Several source columns may look like the same canonical column; the exact
    canonical name wins, then the first synonym in :data:`metrics.io.schema.COLUMNS`
    order. For ``speaker`` the column whose values are most often known speaker
    names wins (``sender_class`` = Human/Bot beats ``sender`` = participant1).

    Examples
    --------
    >>> detect_mapping(["session_id", "role", "message", "created_at"])
    {'conversation_id': 'session_id', 'timestamp': 'created_at', 'speaker': 'role', 'text': 'message'}
    >>> detect_mapping(["a", "b"], overrides={"text": "b"})
    {'text': 'b'}
    """
    columns = [str(c) for c in columns]
    candidates: dict[str, list[tuple[int, str]]] = {}
    for col in columns:
        if col.startswith("__") or col.startswith("conversation.__"):
            continue
        level = 0
        name = col
        if col.startswith("conversation."):
            level, name = 1, col[len("conversation."):]
        canon = "conversation_id" if level == 1 and _key(name) == "id" else canonical_name(name)
        if canon is None and _key(name) in _EXTRA_TS:
            canon, level = "timestamp", level + 2
        if canon is None and _key(name) in ("sender_class", "speaker_class", "author_role"):
            canon = "speaker"
        if canon is None and _key(name) == "eval_score":
            canon = "rating"
        if canon is None:
            continue
        rank = _rank(canon, name) + 100 * level
        candidates.setdefault(canon, []).append((rank, col))
    mapping: dict[str, str] = {}
    for canon, options in candidates.items():
        options.sort()
        if canon == "speaker" and sample is not None and len(options) > 1:
            options.sort(key=lambda o: (-_speaker_share(sample[o[1]]), o[0]))
        mapping[canon] = options[0][1]
    if "conversation_id" not in mapping and "conversation.__conversation_index" in columns:
        mapping["conversation_id"] = "conversation.__conversation_index"
    if overrides:
        for canon, source in overrides.items():
            if canon not in BY_NAME:
                raise ConfigError(f"unknown Chatlens column {canon!r} in mapping; known: "
                                  + ", ".join(c.name for c in COLUMNS))
            if source in (None, ""):
                mapping.pop(canon, None)
            else:
                mapping[canon] = source
                for other in [k for k, v in mapping.items() if v == source and k != canon]:
                    del mapping[other]
    order = [c.name for c in COLUMNS]
    return {k: mapping[k] for k in order if k in mapping}


def _rank(canon: str, name: str) -> int:
    key = _key(name)
    if key == canon:
        return 0
    synonyms = [_key(s) for s in BY_NAME[canon].synonyms]
    return 1 + synonyms.index(key) if key in synonyms else 50


def _speaker_share(values: pd.Series) -> float:
    uniq = values.dropna().astype(str).map(_key).value_counts()
    if uniq.sum() == 0:
        return 0.0
    known = sum(n for v, n in uniq.items() if v in SPEAKER_SYNONYMS)
    return known / uniq.sum()


@dataclass
class Normalized:
    frame: pd.DataFrame
    problems: pd.DataFrame
    notices: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def _missing(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


class _Collector:
    def __init__(self, file: str, rows: np.ndarray):
        self.file = file
        self.rows = rows
        self.parts: list[pd.DataFrame] = []

    def add(self, mask, column: str | None, values, message: str, fix: str):
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        vals = (pd.Series(values).iloc[np.flatnonzero(mask)].to_numpy(dtype=object)  # only the problem rows
                if values is not None else None)
        self.parts.append(pd.DataFrame({
            "file": self.file, "row": self.rows[mask], "column": column,
            "value": [None if _missing(v) else str(v)[:200] for v in vals] if vals is not None
            else None,
            "message": message, "fix": fix}))

    def add_problem(self, p: Problem):
        self.parts.append(pd.DataFrame([p.as_dict()]))

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame({c: pd.Series([], dtype="object") for c in PROBLEM_COLUMNS})
        out = pd.concat(self.parts, ignore_index=True)
        return out[PROBLEM_COLUMNS]


class _Distinct:
    """A column factorized, so a check or conversion runs once per distinct value instead of per row.

    ``values`` are rows of the column itself (its dtype), one per distinct value, followed by one
    missing value when the column has any: a vectorised conversion of ``values`` therefore sees the
    same set of values as on the whole column and gives the same result for each. ``codes`` is each
    row's position in ``values``; :meth:`rows` spreads a per-value result back to the rows.
    """

    def __init__(self, column: pd.Series):
        codes, uniques = pd.factorize(column)  # -1 for missing; codes numbered in order of first appearance
        before = np.concatenate(([-1], np.maximum.accumulate(codes)[:-1])) if len(codes) else codes
        first = np.flatnonzero(codes > before)  # where a code appears for the first time
        if not np.array_equal(codes[first], np.arange(len(uniques))):  # numbered otherwise: search each
            first = np.array([np.flatnonzero(codes == k)[0] for k in range(len(uniques))], dtype=np.intp)
        missing = np.flatnonzero(codes < 0)
        if len(missing):
            first = np.append(first, missing[0])
            codes = np.where(codes < 0, len(uniques), codes)
        self.values = column.iloc[first].reset_index(drop=True)
        self.codes = codes

    def rows(self, per_value):
        """A per-value result (numpy array or pandas array) for every row."""
        if isinstance(per_value, pd.Series):
            per_value = per_value.array
        if isinstance(per_value, np.ndarray):
            return per_value[self.codes]
        return per_value.take(self.codes)


def normalize(raw: pd.DataFrame, *, file: str, mapping: dict[str, str], rows: pd.Series | None = None,
              timezone: str = "UTC", now: pd.Timestamp | None = None) -> Normalized:
    """Convert a raw string table into the validated format, collecting every problem.

    ``rows`` gives each raw row's 1-based record number in the file (default 1..n).
    Problems are *file-level* (row is None: a missing column) or *row-level*.
    The returned frame keeps every row, in source order (bad values become missing);
    the caller removes or refuses rows listed in ``problems``.
    """
    n = len(raw)
    row_numbers = (rows.to_numpy() if rows is not None else np.arange(1, n + 1)).astype("int64")
    out = pd.DataFrame(index=pd.RangeIndex(n))
    issues = _Collector(file, row_numbers)
    notices: list[str] = []
    try:
        pd.Timestamp("2024-01-01").tz_localize(timezone)
    except Exception:  # noqa: BLE001
        raise ConfigError(f"unknown time zone {timezone!r}; use an IANA name such as 'Europe/Berlin'") from None

    missing_sources = [s for s in mapping.values() if s not in raw.columns]
    for source in missing_sources:
        canon = next(k for k, v in mapping.items() if v == source)
        issues.add_problem(Problem(file, None, source, None,
                                   f"the mapping sends column {source!r} to '{canon}' but the file has no such column",
                                   "pick one of: " + ", ".join(map(str, list(raw.columns)[:30]))))
    mapping = {k: v for k, v in mapping.items() if v in raw.columns}

    def col(name):
        return raw[mapping[name]] if name in mapping else None

    # text (required)
    text = col("text")
    if text is None:
        issues.add_problem(Problem(file, None, "text", None,
                                   "no message text column found (looked for text, message, content, body, "
                                   "utterance, ...); columns are: " + ", ".join(map(str, list(raw.columns)[:20])),
                                   "rename the text column to 'text', or map your text column to 'text' when loading the file"))
        out["text"] = pd.Series([""] * n, dtype="str")
    else:
        out["text"] = text.fillna("").astype("str").reset_index(drop=True)
        empty = int((out["text"] == "").sum())
        if empty:
            notices.append(f"{empty} message(s) have no text (kept, as empty text).")

    # conversation id
    cid = col("conversation_id")
    if cid is None:
        out["conversation_id"] = pd.Series([f"row-{r}" for r in row_numbers], dtype="str")
        notices.append("No conversation id column: each row is treated as its own conversation "
                       "(fine for NLU test sets; otherwise map the column that holds it to 'conversation_id' when loading the file).")
    else:
        raw_cid = cid.reset_index(drop=True)
        cid = _clean_ids(raw_cid, "conversation_id", mapping["conversation_id"], notices)
        missing = cid.isna() | (cid == "")
        issues.add(missing, mapping["conversation_id"], raw_cid, "missing conversation id",
                   "fill in the conversation/session id for every message")
        out["conversation_id"] = cid.where(~missing, None).astype("str") if missing.any() else cid

    # speaker
    spk = col("speaker")
    if spk is None:
        if "inbound" in raw.columns:
            inbound = raw["inbound"].astype("str").str.strip().str.lower().reset_index(drop=True)
            out["speaker"] = np.where(inbound.isin(list(_TRUE)), "user", "agent")
            notices.append("No speaker column: used 'inbound' (true = user, false = agent).")
        else:
            out["speaker"] = "user"
            notices.append("No speaker column: every message is treated as a user message "
                           "(map the column that holds it to 'speaker' when loading the file).")
        out["speaker"] = out["speaker"].astype("str")
    else:
        raw_spk = spk.reset_index(drop=True)
        distinct = _Distinct(raw_spk)
        mapped = distinct.rows(pd.array([None if _missing(v) else SPEAKER_SYNONYMS.get(_key(v))
                                         for v in distinct.values], dtype="str"))
        bad = pd.isna(mapped)
        issues.add(bad, mapping["speaker"], raw_spk,
                   "unknown speaker" if raw_spk.notna().any() else "missing speaker",
                   "use one of user, bot, agent, system (customer/assistant/operator ... are understood), "
                   "or fix the mapping")
        out["speaker"] = pd.Series(mapped)

    # timestamp
    ts_raw = col("timestamp")
    if ts_raw is None:
        out["timestamp"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
        notices.append("No timestamp column: time-based views (trends, durations, abandonment timeouts) "
                       "need timestamps and will say so.")
    else:
        ts_raw = ts_raw.reset_index(drop=True)
        parsed, ambiguous, conflicting, numbers = _parse_timestamps(ts_raw, timezone, notices)
        missing = ts_raw.isna().to_numpy()
        now = _utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
        parsed, refused = _check_plausible(ts_raw, parsed, numbers, ~missing & ~ambiguous & ~conflicting, now=now)
        implausible = np.logical_or.reduce([mask for mask, _, _ in refused]) if refused else np.zeros(n, bool)
        failed = parsed.isna().to_numpy() & ~missing & ~implausible
        issues.add(missing, mapping["timestamp"], ts_raw, "missing timestamp",
                   "fill in the time of every message, or remove the timestamp mapping")
        issues.add(conflicting, mapping["timestamp"], ts_raw,
                   "this date's day/month order contradicts the rest of the column (both 13/04 and 04/13 occur)",
                   "export every timestamp in one order, best ISO 8601 such as 2024-04-13T10:00:00Z")
        issues.add(failed & ~ambiguous & ~conflicting, mapping["timestamp"], ts_raw, "unparseable timestamp",
                   "use ISO 8601 such as 2024-05-01T14:03:00Z, or epoch seconds/milliseconds")
        issues.add(failed & ambiguous, mapping["timestamp"], ts_raw,
                   f"local time is ambiguous or skipped in {timezone} (daylight-saving change)",
                   "export timestamps with a UTC offset")
        for mask, message, fix in refused:
            issues.add(mask, mapping["timestamp"], ts_raw, message, fix)
        out["timestamp"] = parsed
        future = int((parsed > now + pd.Timedelta(days=1)).sum())
        if future:
            notices.append(f"{future} message(s) are dated in the future; check the export's time zone.")

    # optional fields
    for column in COLUMNS:
        name = column.name
        if name in ("text", "conversation_id", "speaker", "timestamp") or name not in mapping:
            continue
        values = col(name).reset_index(drop=True)
        source = mapping[name]
        if column.kind == "id":
            cleaned = _clean_ids(values, name, source, notices)
            empty = (cleaned == "").to_numpy(dtype=bool, na_value=False)
            out[name] = cleaned.where(~empty, None).astype("str") if empty.any() else cleaned
        elif column.kind == "str":
            cleaned = values.astype("str")
            if len(values) < 50_000:
                cleaned = cleaned.str.strip()
            empty = (cleaned == "").to_numpy(dtype=bool, na_value=False)
            out[name] = cleaned.where(~empty, None).astype("str") if empty.any() else cleaned
        elif column.kind == "float" and name == "confidence":
            out[name] = _confidence(values, source, issues, notices)
        elif column.kind in ("float", "rating"):
            distinct = _Distinct(values)  # a handful of distinct values: convert each once
            each = distinct.values
            nums = pd.to_numeric(each.str.strip().str.replace(r"^\$", "", regex=True), errors="coerce")
            bad = each.notna().to_numpy() & nums.isna().to_numpy() & ~each.str.lower().isin(["nan"]).to_numpy()
            issues.add(distinct.rows(bad), source, values, f"{name} is not a number",
                       "use plain numbers such as 4 or 12.5")
            if column.kind == "rating":
                out_of = (nums < 1) | (nums > 5)
                issues.add(distinct.rows(out_of.to_numpy()), source, values, "rating outside 1-5",
                           "give star ratings from 1 to 5")
                nums = nums.where(~out_of)
            out[name] = distinct.rows(nums.astype("float64").to_numpy())
        elif column.kind == "bool":
            distinct = _Distinct(values)  # map each distinct value once
            lookup = []
            for v in distinct.values:
                low = None if _missing(v) else str(v).strip().lower()
                lookup.append(True if low in _TRUE else False if low in _FALSE else None)
            mapped = pd.array(lookup, dtype="boolean")
            bad = distinct.values.notna().to_numpy() & mapped.isna()
            issues.add(distinct.rows(bad), source, values, f"{name} is not true/false",
                       "use true/false, yes/no or 1/0")
            out[name] = distinct.rows(mapped)
        if name == "thumbs":
            distinct = _Distinct(out[name])
            mapped = distinct.values.str.lower().map(_THUMBS)
            bad = distinct.values.notna().to_numpy() & mapped.isna().to_numpy()
            issues.add(distinct.rows(bad), source, values, "thumbs is not up/down", "use up or down")
            out[name] = distinct.rows(mapped.astype("str"))

    # duplicate message ids
    if "message_id" in out.columns:
        dup = out["message_id"].notna() & out["message_id"].duplicated(keep="first")
        issues.add(dup.to_numpy(), mapping["message_id"], out["message_id"], "duplicate message id",
                   "give every message a unique id, or remove the repeated row")

    out["row"] = row_numbers
    mapped_sources = set(mapping.values())
    ignored = [str(c) for c in raw.columns if c not in mapped_sources and "__" not in str(c)[:16]]
    _check_conversation_constants(out, notices)
    ordered = ["conversation_id", "timestamp", "speaker", "text"] + [
        c.name for c in COLUMNS if c.name in out.columns and c.name not in
        ("conversation_id", "timestamp", "speaker", "text")] + ["row"]
    return Normalized(out[ordered], issues.frame(), notices, ignored)


_AWARE = re.compile(r"(?:[zZ]|[+-]\d{2}:?\d{2}|\b(?:UTC|GMT)\b.*|[+-]\d{4}\s+\d{4})\s*$")


_NS_MIN = pd.Timestamp("1678-01-01", tz="UTC")
_NS_MAX = pd.Timestamp("2261-12-31", tz="UTC")


def _to_ns(parsed: pd.Series) -> pd.Series:
    """Cast to datetime64[ns, UTC]; values outside the nanosecond range become NaT (reported as unparseable)."""
    if parsed.dt.tz is None:
        parsed = parsed.dt.tz_localize("UTC")
    in_range = parsed.isna() | ((parsed >= _NS_MIN) & (parsed <= _NS_MAX))
    return parsed.where(in_range).astype("datetime64[ns, UTC]")


def _naive_ns(parsed: pd.Series) -> pd.Series:
    """Cast naive datetimes to datetime64[ns]; values outside the nanosecond range become NaT."""
    lo, hi = _NS_MIN.tz_localize(None), _NS_MAX.tz_localize(None)
    in_range = parsed.isna() | ((parsed >= lo) & (parsed <= hi))
    return parsed.where(in_range).astype("datetime64[ns]")


#: A numeric date with the year last (03/04/2024, 13.04.2024, 3-4-24): day and month may be either way round.
_YEAR_LAST = r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](?:\d{4}|\d{2})(?:\D|$)"
_IS_YEAR_LAST = _YEAR_LAST.replace("(\\d{1,2})", "\\d{1,2}")  # the same without groups, for str.contains


@dataclass
class _DateOrder:
    """How a column writes numeric dates with the year last, decided from all of them together.

    A value whose first number is above 12 can only be day first (13/04/2024), one whose second number is
    above 12 only month first (04/13/2024). The column is day first when more values can only be day
    first than can only be month first, else month first (pandas' and dateutil's default). Values that
    contradict the column's order are ``conflicts`` (refused, with their row); a column whose values all
    fit either order gets a notice saying which order was used.
    """

    dayfirst: bool = False
    conflicts: pd.Series | None = None  # bool, over the values given
    notice: str | None = None

    @classmethod
    def of(cls, text: pd.Series) -> "_DateOrder":
        candidates = text[text.str.contains(_IS_YEAR_LAST, regex=True, na=False).to_numpy(dtype=bool)]
        if not len(candidates):
            return cls()
        parts = candidates.str.extract(_YEAR_LAST)
        first = pd.to_numeric(parts[0], errors="coerce").to_numpy()
        second = pd.to_numeric(parts[1], errors="coerce").to_numpy()
        day, month = (first > 12) & (second <= 12), (second > 12) & (first <= 12)
        dayfirst = int(day.sum()) > int(month.sum())
        conflicts = pd.Series(False, index=text.index)
        if day.any() and month.any():
            conflicts[candidates.index[month if dayfirst else day]] = True
        either = (first <= 12) & (second <= 12) & (first != second)
        notice = None
        if either.any():
            example = candidates.iloc[int(np.flatnonzero(either)[0])]
            notice = (f"Dates such as {example!r} were read day first (DD/MM/YYYY): other values of the column can "
                      "only be day first." if dayfirst else
                      f"Dates such as {example!r} were read month first (MM/DD/YYYY)"
                      + (": other values of the column can only be month first." if month.any() else
                         ", as nothing in the column says otherwise. If the export writes the day first, export "
                         "ISO 8601 dates (2024-04-03T10:00:00Z) instead."))
        return cls(dayfirst, conflicts, notice)

    def parse(self, values: pd.Series, *, utc: bool) -> pd.Series:
        """``values`` with the slow parser: year-last dates in this order, conflicting ones NaT."""
        if not self.dayfirst and self.conflicts is None:
            return _parse_mixed(values, utc=utc)
        conflict = self.conflicts.reindex(values.index, fill_value=False).to_numpy(dtype=bool)
        year_last = values.str.contains(_IS_YEAR_LAST, regex=True, na=False).to_numpy(dtype=bool) & ~conflict
        out = _parse_mixed(values, utc=utc, dayfirst=year_last & self.dayfirst)
        out[conflict] = pd.NaT
        return out


#: A timestamp written as a plain number: an epoch time (ASCII digits only: int("١٢") is 12, but not here).
_NUMBER = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_MS_ABOVE = 1e11  # a larger epoch number is milliseconds (1e11 s is the year 5138; 1e11 ms is 1973)
_EPOCH_LIMIT_S = 9e9  # |seconds| from here on are outside the nanosecond range (2255-03-14): not converted


def _parse_timestamps(values: pd.Series, timezone: str, notices: list[str] | None = None
                      ) -> tuple[pd.Series, np.ndarray, np.ndarray, pd.Series]:
    """Parse ISO 8601 (offset or naive), epoch seconds/ms and common text formats to UTC.

    Returns the UTC timestamps (NaT where parsing failed), the rows whose local time is ambiguous or
    skipped in ``timezone``, the rows whose day/month order contradicts the column's (:class:`_DateOrder`,
    whose notice goes to ``notices``) and each value read as a number (float, NaN where the value is not a
    plain number). A plain number is always an epoch time, wherever it is in the column; whether its time
    is plausible is for :func:`_check_plausible` to say.
    """
    n = len(values)
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    numbers = pd.Series(np.nan, index=values.index, dtype="float64")
    ambiguous = np.zeros(n, dtype=bool)
    conflicting = np.zeros(n, dtype=bool)
    present = values.notna()
    if not present.any():
        return result, ambiguous, conflicting, numbers
    stripped = values.str.strip()

    def epochs(candidates: pd.Series) -> pd.Series:
        """Of ``candidates`` (stripped texts), the plain numbers, read as epoch times into ``result``."""
        hit = candidates[candidates.str.fullmatch(_NUMBER).to_numpy(dtype=bool, na_value=False)]
        if len(hit):
            nums = pd.to_numeric(hit, errors="coerce").astype("float64")
            numbers[hit.index] = nums
            result[hit.index] = _from_epoch(nums)
        return hit

    sample = stripped.dropna().head(200)
    if sample.str.fullmatch(_NUMBER).any():  # a column of numbers: look at every value
        maybe = present
    else:  # a column of date texts: a plain number that ISO 8601 would read as a date is short (2024, 20240101,
        # 2024.5); a longer one fails as a date and is looked for among the failures below
        maybe = present & (stripped.str.len() <= 12).to_numpy(dtype=bool, na_value=False)
    is_num = values.index.isin(epochs(stripped[maybe]).index)
    rest = present & ~is_num
    if not rest.any():
        return result, ambiguous, conflicting, numbers
    text = stripped[rest]
    # ISO 8601 first, vectorised; what fails goes to the slow parser, in one day/month order for the column
    if timezone == "UTC":
        aware = pd.Series(True, index=text.index)
        parsed_aware = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce").pipe(_to_ns)
        naive_text = text.iloc[0:0]
    else:
        aware = text.str.contains(_AWARE, na=False)
        parsed_aware = pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce").pipe(_to_ns)
        naive_text = text[~aware]
    local = pd.to_datetime(naive_text, format="ISO8601", errors="coerce").pipe(_naive_ns)
    slow_aware, slow_naive = text[aware][parsed_aware.isna()], naive_text[local.isna()]
    late = epochs(pd.concat([slow_aware, slow_naive])).index  # long plain numbers among date texts
    if len(late):
        slow_aware, slow_naive = slow_aware.drop(late, errors="ignore"), slow_naive.drop(late, errors="ignore")
        parsed_aware, naive_text = parsed_aware.drop(late, errors="ignore"), naive_text.drop(late, errors="ignore")
        local, aware = local.drop(late, errors="ignore"), aware.drop(late, errors="ignore")
    order = _DateOrder.of(pd.concat([slow_aware, slow_naive])) if len(slow_aware) + len(slow_naive) else _DateOrder()
    if order.notice and notices is not None:
        notices.append(order.notice)
    if order.conflicts is not None:
        conflicting[np.flatnonzero(values.index.isin(order.conflicts[order.conflicts].index))] = True
    if len(slow_aware):
        parsed_aware[slow_aware.index] = order.parse(slow_aware, utc=True)
    result[parsed_aware.index] = _to_ns(parsed_aware)
    if len(naive_text):
        if len(slow_naive):
            local[slow_naive.index] = order.parse(slow_naive, utc=False)
        local = local.where(local.isna() | ((local >= _NS_MIN.tz_localize(None)) & (local <= _NS_MAX.tz_localize(None))))
        ok = local.notna()
        localized = pd.Series(pd.NaT, index=naive_text.index, dtype="datetime64[ns, UTC]")
        if ok.any():
            loc = pd.DatetimeIndex(local[ok]).tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
            localized[ok] = pd.Series(loc, index=local[ok].index).dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
            amb = ok & localized.isna()
            ambiguous[np.flatnonzero(values.index.isin(amb[amb].index))] = True
        result[naive_text.index] = localized
    return result, ambiguous, conflicting, numbers


def _from_epoch(nums: pd.Series) -> pd.Series:
    """Epoch numbers (seconds, or milliseconds above 10^11) as UTC times; NaT when not finite or beyond 2255."""
    secs = nums.where(nums.abs() <= _MS_ABOVE, nums / 1000.0)
    secs = secs.where(np.isfinite(secs) & (secs.abs() < _EPOCH_LIMIT_S))
    return _to_ns(pd.to_datetime(secs, unit="s", utc=True, errors="coerce"))


def _utc(ts) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


_ISO_EXAMPLE = "ISO 8601 such as 2024-05-01T14:03:00Z"


def _check_plausible(values: pd.Series, parsed: pd.Series, numbers: pd.Series, candidates: np.ndarray, *,
                     now: pd.Timestamp) -> tuple[pd.Series, list[tuple[np.ndarray, str, str]]]:
    """Refuse the times no chat message can have (see the module docstring for the rules).

    ``values`` are the raw timestamps, ``parsed`` and ``numbers`` what :func:`_parse_timestamps` made of
    them; only ``candidates`` rows (present, neither ambiguous nor conflicting) are judged. Returns
    ``parsed`` with the refused times made NaT, and ``(rows, message, fix)`` for each kind of refusal, in
    a fixed order, each row in at most one of them.
    """
    lo, hi = EARLIEST_TIMESTAMP, now + pd.DateOffset(years=MAX_YEARS_AHEAD)
    num = numbers.to_numpy()
    is_num = ~np.isnan(num)
    ns = parsed.array.asi8  # nanoseconds since 1970 (UTC); NaT is the smallest int64
    got = ns != np.iinfo(np.int64).min
    early = got & (ns < lo.value) & candidates
    late = got & (ns > hi.value) & candidates
    if not (early.any() or late.any() or (candidates & (is_num | ~got)).any()):
        return parsed, []  # every present value is a date text read as a plausible time: nothing to refuse
    taken = np.zeros(len(values), dtype=bool)
    refused: list[tuple[np.ndarray, str, str]] = []

    def refuse(mask, message, fix):
        mask = mask & candidates & ~taken
        taken[:] |= mask
        if mask.any():
            refused.append((mask, message, fix))

    # numbers that are something else than an epoch time
    with np.errstate(invalid="ignore"):
        excel = is_num & (num >= EXCEL_SERIAL_DAYS[0]) & (num <= EXCEL_SERIAL_DAYS[1])
    excel &= candidates
    if excel.any():
        first = int(np.flatnonzero(excel)[0])
        when = (pd.Timestamp("1899-12-30") + pd.Timedelta(days=float(num[first]))).round("min")
        refuse(excel, "looks like an Excel serial date (days since 1899-12-30), not epoch seconds",
               "export the column as ISO 8601 text (in Excel: Format Cells > Custom > yyyy-mm-dd hh:mm:ss); "
               f"as an Excel date, {str(values.iloc[first]).strip()} is {when:%Y-%m-%d %H:%M}")
    with np.errstate(invalid="ignore"):
        refuse(is_num & (num < 0), "negative epoch time (before 1970)",
               f"give epoch seconds or milliseconds since 1970-01-01 UTC, or {_ISO_EXAMPLE}")
        eight = is_num & early & (num >= 19_000_101) & (num <= 29_991_231) & (num == np.floor(num))
    if eight.any():
        as_date = pd.to_datetime(pd.Series(num[eight]).map("{:.0f}".format), format="%Y%m%d", errors="coerce")
        ymd = np.zeros(len(values), dtype=bool)
        ymd[np.flatnonzero(eight)] = as_date.notna().to_numpy()
        refuse(ymd, "looks like a date written YYYYMMDD, not epoch seconds", f"write dates as {_ISO_EXAMPLE}")
    refuse(got & (ns == 0),
           "the time is 1970-01-01 00:00 UTC (epoch 0), usually a missing value",
           "fill in the message's real time, or skip the row")
    refuse(is_num & ~got, "epoch number too large for seconds or milliseconds",
           f"give epoch seconds (10 digits) or milliseconds (13 digits), or {_ISO_EXAMPLE}")
    # dates outside the nanosecond range (years 1 to 1677, 2262 to 9999) did not parse: read their year
    before, after = _out_of_range_dates(values, ~got & ~is_num & candidates, lo, hi)
    refuse(is_num & early,
           f"epoch time before {lo:%Y-%m-%d} (the number read as seconds since 1970, or milliseconds above 10^11)",
           f"give epoch seconds (10 digits) or milliseconds (13 digits), or {_ISO_EXAMPLE}")
    refuse(early | before, f"timestamp before {lo:%Y-%m-%d}, earlier than any chat transcript",
           f"check the year; use {_ISO_EXAMPLE}")
    years = f"{MAX_YEARS_AHEAD} year" + ("" if MAX_YEARS_AHEAD == 1 else "s")
    refuse(late | after, f"timestamp more than {years} after now (after {hi:%Y-%m-%d})",
           "check the year and the export's clock (2099-12-31 and 9999-12-31 often stand for 'no date')")
    if taken.any():
        parsed = parsed.where(~taken)
    return parsed, refused


def _out_of_range_dates(values: pd.Series, rows: np.ndarray, lo: pd.Timestamp, hi: pd.Timestamp
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Among ``rows`` (values that did not parse), the dates before ``lo`` and after ``hi``: read one distinct
    value at a time, at any resolution (0001-01-01 and 9999-12-31 are dates, only not in nanoseconds)."""
    before = np.zeros(len(values), dtype=bool)
    after = np.zeros(len(values), dtype=bool)
    idx = np.flatnonzero(rows)
    if not len(idx):
        return before, after
    part = values.iloc[idx].astype("str")
    idx = idx[part.str.contains(r"[0-9]{4}", regex=True).to_numpy(dtype=bool, na_value=False)]  # a year
    if not len(idx):
        return before, after
    distinct = _Distinct(values.iloc[idx].astype("str").reset_index(drop=True))
    side = np.zeros(len(distinct.values), dtype=np.int8)  # -1 before, 1 after
    for k, v in enumerate(distinct.values):
        when = _read_any_date(v)
        if when is not None:
            side[k] = -1 if when < lo else 1 if when > hi else 0
    side = distinct.rows(side)
    before[idx] = side < 0
    after[idx] = side > 0
    return before, after


def _read_any_date(value) -> pd.Timestamp | None:
    """``value`` as a UTC time at whatever resolution it needs, or None (never raises)."""
    for fmt in ("ISO8601", "mixed"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ts = pd.to_datetime(str(value).strip(), format=fmt)
            if isinstance(ts, pd.Timestamp):
                return _utc(ts)
        except Exception:  # noqa: BLE001 - whatever the parser raises, the value is just not a date
            continue
    return None


def _parse_mixed(values: pd.Series, *, utc: bool, dayfirst: np.ndarray | None = None) -> pd.Series:
    """Dates that are not ISO 8601: in the format pandas guesses from the first value, vectorised, then the rest
    one by one with dateutil (``format="mixed"``). ``dayfirst``: per value, read day first. Out of the
    nanosecond range: NaT. UTC (``utc``) or naive local times (aware values converted to UTC)."""
    dtype = "datetime64[ns, UTC]" if utc else "datetime64[ns]"
    out = pd.Series(pd.NaT, index=values.index, dtype=dtype)
    flags = np.zeros(len(values), dtype=bool) if dayfirst is None else np.asarray(dayfirst, dtype=bool)
    for flag in (False, True):
        part = values[flags == flag]
        if not len(part):
            continue
        fast = _parse_guessed(part, utc=utc, dayfirst=flag)
        out[part.index] = fast
        rest = part[fast.isna().to_numpy()]
        if len(rest):
            out[rest.index] = _parse_each(rest, utc=utc, dayfirst=flag)
    return out


def _in_ns_range(parsed: pd.Series, *, utc: bool) -> pd.Series:
    lo, hi = (_NS_MIN, _NS_MAX) if utc else (_NS_MIN.tz_localize(None), _NS_MAX.tz_localize(None))
    return parsed.where(parsed.isna() | ((parsed >= lo) & (parsed <= hi)))


def _parse_guessed(values: pd.Series, *, utc: bool, dayfirst: bool) -> pd.Series:
    """The values in the format of the first one (NaT where another format is used), at C speed."""
    from pandas.tseries.api import guess_datetime_format

    dtype = "datetime64[ns, UTC]" if utc else "datetime64[ns]"
    none = pd.Series(pd.NaT, index=values.index, dtype=dtype)
    with warnings.catch_warnings():  # "13/04/2024" with dayfirst=False: day first all the same, like dateutil
        warnings.simplefilter("ignore", UserWarning)
        fmt = guess_datetime_format(str(values.iloc[0]), dayfirst=dayfirst)
    if fmt is None or ("%d" in fmt and "%m" in fmt and (fmt.index("%d") < fmt.index("%m")) != dayfirst):
        return none  # a format against the asked order would read 01/02 otherwise than dateutil does
    try:
        parsed = pd.to_datetime(values, format=fmt, errors="coerce", utc=utc)
        if isinstance(parsed.dtype, pd.DatetimeTZDtype) and not utc:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        if not pd.api.types.is_datetime64_any_dtype(parsed.dtype):
            return none
        return _in_ns_range(parsed.astype(dtype), utc=utc)
    except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return none


def _parse_each(values: pd.Series, *, utc: bool, dayfirst: bool) -> pd.Series:
    out = []
    for v in values.tolist():
        try:
            ts = pd.to_datetime(v, utc=utc, format="mixed", dayfirst=dayfirst)
            if not utc and ts.tzinfo is not None:
                ts = ts.tz_convert("UTC").tz_localize(None)
            out.append(ts)
        except (ValueError, TypeError, OverflowError):
            out.append(pd.NaT)
    lo, hi = _NS_MIN.tz_localize(None), _NS_MAX.tz_localize(None)
    out = [t if t is pd.NaT or lo <= (t.tz_convert(None) if t.tzinfo else t) <= hi else pd.NaT for t in out]
    dtype = "datetime64[ns, UTC]" if utc else "datetime64[ns]"
    return pd.Series(pd.to_datetime(out, utc=utc) if out else [], index=values.index, dtype=dtype)


def _clean_ids(values: pd.Series, name: str, source: str, notices: list[str]) -> pd.Series:
    """Ids as ``str``, stripped, without Unicode format characters (Cf) and in NFC; a notice when that changed
    more than the surrounding whitespace (see the module docstring).

    ASCII ids (the usual export) are only stripped: they hold no format character and are NFC already. The
    others are cleaned once per distinct value.

    Examples
    --------
    >>> notes = []
    >>> _clean_ids(pd.Series(["c1", "c\\u200b1", " cafe\\u0301 ", "caf\\u00e9"]), "user_id", "uid", notes).tolist()
    ['c1', 'c1', 'café', 'café']
    >>> print(notes[0])  # doctest: +NORMALIZE_WHITESPACE
    2 user_id value(s) (column 'uid') in 2 row(s) were cleaned up: Unicode normalised to NFC and invisible
    format characters (zero-width spaces and joiners, BOMs, direction marks) removed; 2 of them now equal
    another value and count as one; e.g. 'c\\u200b1' became 'c1'.
    """
    stripped = values.astype("str").str.strip()
    if _ascii_only(stripped):
        return stripped
    odd = ~stripped.str.isascii().to_numpy(dtype=bool, na_value=True) & stripped.notna().to_numpy()
    if not odd.any():
        return stripped
    at = np.flatnonzero(odd)
    distinct = _Distinct(stripped.iloc[at])
    before = distinct.values.tolist()
    after = [_clean_id(v) for v in before]
    if after == before:
        return stripped
    cleaned = _replace_rows(stripped, odd, distinct.rows(pd.array(after, dtype="str")))
    # the notice counts the ids that changed (one left empty is a missing id, reported as a problem)
    changed = np.array([a != b and a != "" for a, b in zip(after, before)], dtype=bool)
    if not changed.any():
        return cleaned
    # a cleaned id is merged when another spelling gives the same id: an id left as it was (ASCII or not),
    # or another changed spelling
    new_ids = [a for a, c in zip(after, changed) if c]
    spellings = Counter(new_ids)
    unchanged = {b for b, c in zip(before, changed) if not c}
    unchanged |= set(stripped[_isin(stripped, list(spellings)) & ~odd])
    merged = sum(1 for a in new_ids if a in unchanged or spellings[a] > 1)
    first = int(np.flatnonzero(changed)[0])
    notices.append(
        f"{len(new_ids)} {name} value(s){'' if source == name else f' (column {source!r})'} in "
        f"{int(changed[distinct.codes].sum())} row(s) were cleaned up: Unicode normalised to NFC and invisible "
        "format characters (zero-width spaces and joiners, BOMs, direction marks) removed"
        + (f"; {merged} of them now equal another value and count as one" if merged else "")
        + f"; e.g. {_literal(before[first])} became {_literal(after[first])}.")
    return cleaned


def _arrow(values: pd.Series):
    """The pyarrow string data under an Arrow-backed ``str`` column, or None."""
    try:
        import pyarrow as pa

        data = values.array.__arrow_array__()
        chunks = data.chunks if isinstance(data, pa.ChunkedArray) else [data]
        if all(pa.types.is_string(c.type) or pa.types.is_large_string(c.type) for c in chunks):
            return data
    except Exception:  # noqa: BLE001 - not Arrow-backed: the callers fall back on pandas
        pass
    return None


def _ascii_only(values: pd.Series) -> bool:
    """True when every text of an Arrow-backed string column is ASCII, told from its bytes at once (a
    millisecond for a million ids); False when not, or when that cannot be told so cheaply."""
    import pyarrow as pa

    data = _arrow(values)
    if data is None:
        return False
    for chunk in data.chunks if isinstance(data, pa.ChunkedArray) else [data]:
        buffer = chunk.buffers()[2]
        if buffer is not None and np.frombuffer(buffer, dtype=np.uint8).max(initial=0) >= 0x80:
            return False
    return True


def _isin(values: pd.Series, wanted: list[str]) -> np.ndarray:
    """``values.isin(wanted)`` as a numpy mask; in Arrow when the column is (5x faster on a million rows)."""
    data = _arrow(values)
    if data is None:
        return values.isin(wanted).to_numpy(dtype=bool, na_value=False)
    import pyarrow as pa
    import pyarrow.compute as pc

    hit = pc.is_in(data, value_set=pa.array(wanted, type=data.type))
    return hit.to_numpy(zero_copy_only=False).astype(bool, copy=False)


def _replace_rows(values: pd.Series, rows: np.ndarray, new) -> pd.Series:
    """``values`` with the ``rows`` (a mask) replaced by ``new`` (one value per replaced row), same dtype;
    in Arrow when the column is (a pandas setitem rebuilds the column at twice the cost)."""
    data = _arrow(values)
    if data is not None:
        try:
            import pyarrow as pa
            import pyarrow.compute as pc

            replacement = pa.array(np.asarray(new, dtype=object), type=data.type)
            return pd.Series(pc.replace_with_mask(data, pa.array(rows), replacement), index=values.index,
                             dtype=values.dtype)
        except Exception:  # noqa: BLE001 - an Arrow without replace_with_mask for this type: do it in pandas
            pass
    out = values.copy()
    out.iloc[np.flatnonzero(rows)] = new
    return out


@functools.cache
def _format_characters() -> re.Pattern:
    """Every Unicode format character (category Cf) of this Python's Unicode version, as one regex class.
    They are all below U+20000 or in the tag block (U+E0000-U+E0FFF): only those planes are scanned."""
    points = [c for c in [*range(0x20000), *range(0xE0000, 0xE1000)] if unicodedata.category(chr(c)) == "Cf"]
    return re.compile("[" + "".join(re.escape(chr(c)) for c in points) + "]+")


def _clean_id(value: str) -> str:
    value = _format_characters().sub("", value)
    return unicodedata.normalize("NFC", value).strip()


def _literal(value: str) -> str:
    """``value`` quoted, with what cannot be seen written as an escape: format, control, combining and space
    characters other than the plain space (``'cafe\\u0301'``, ``'c\\u200b1'``)."""
    shown = "".join(ch if ch == " " or unicodedata.category(ch)[0] not in "CMZ" else
                    f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}" for ch in value)
    return f"'{shown}'"


def _confidence(values: pd.Series, source: str, issues: _Collector, notices: list[str]) -> np.ndarray:
    """Confidences as floats in [0, 1] (NaN when missing or refused).

    A value written with ``%`` is a percentage. The other values are on the 0-1 scale, unless one of them is
    above 1 (and none above 100): then the column is read as percentages and divided by 100, with a notice.
    In such a column a value strictly between 0 and 1 is ambiguous (0.5 % or a probability of 0.5?) and is
    a problem naming the row, not a silent 0.005.
    """
    distinct = _Distinct(values)  # each distinct value is converted and checked once
    each = distinct.values
    text = each.astype("str").str.strip()
    percent = text.str.endswith("%").fillna(False).to_numpy(dtype=bool)
    nums = pd.to_numeric(text.str.rstrip("%").str.strip(), errors="coerce")
    nan_word = text.str.lower().isin(["nan", "none", "null"]).to_numpy()
    not_num = each.notna().to_numpy() & nums.isna().to_numpy() & ~nan_word
    issues.add(distinct.rows(not_num), source, values, "confidence is not a number",
               "give confidences between 0 and 1")
    negative = (nums < 0).to_numpy()
    issues.add(distinct.rows(negative), source, values, "confidence is negative", "give confidences between 0 and 1")
    valid = nums.where(nums >= 0)
    plain = valid.where(~percent)
    if percent.any() and valid[percent].notna().any():
        notices.append(f"Confidence in '{source}': values written with % were divided by 100.")
    if plain.max() > 1 and plain.max() <= 100:
        notices.append(f"Confidence in '{source}' looks like a percentage (max {plain.max():g}); divided by 100.")
        ambiguous = ((plain > 0) & (plain < 1)).to_numpy()
        issues.add(distinct.rows(ambiguous), source, values,
                   f"confidence below 1 in a column of percentages (max {plain.max():g}): 0-1 or 0-100?",
                   "give every confidence on one scale: 0-1, or 0-100 (write a percentage below 1 as 0.5%)")
        plain = plain.where(~ambiguous) / 100.0
    valid = plain.where(~percent, valid / 100.0)
    too_big = (valid > 1).to_numpy()
    issues.add(distinct.rows(too_big), source, values, "confidence above 1 (and above 100)",
               "give confidences between 0 and 1 (or 0-100 for percentages)")
    return distinct.rows(valid.where(valid <= 1).astype("float64").to_numpy())


def _check_conversation_constants(frame: pd.DataFrame, notices: list[str]) -> None:
    """Notice each conversation field that takes several values within a conversation.

    Per field, a conversation varies when its rows hold more than one distinct non-missing value:
    with the field's values factorized to integer codes, when the smallest and the largest code of
    the conversation's non-missing rows differ. Rows without a conversation id are left out.
    """
    from metrics.io.schema import CONVERSATION_FIELDS

    present = [c for c in CONVERSATION_FIELDS if c in frame.columns]
    if not present or frame["conversation_id"].isna().all():
        return
    conv = pd.factorize(frame["conversation_id"])[0]
    order = np.argsort(conv, kind="stable")
    order = order[conv[order] >= 0]  # rows grouped by conversation
    in_place = np.array_equal(order, np.arange(len(conv)))  # grouped already (the usual export): no take
    grouped = conv if in_place else conv[order]
    starts = np.flatnonzero(np.concatenate(([True], grouped[1:] != grouped[:-1])))
    for c in present:
        codes = pd.factorize(frame[c])[0].astype(np.int64, copy=False)  # -1 for missing
        if not in_place:
            codes = codes[order]
        highest = np.maximum.reduceat(codes, starts)  # -1: no value in the conversation
        lowest = np.minimum.reduceat(codes.view(np.uint64), starts).view(np.int64)  # missing = 2**64-1 here
        varying = int(np.count_nonzero((highest >= 0) & (lowest < highest)))
        if varying:
            notices.append(f"'{c}' takes several values within {varying} conversation(s); the first is used.")
