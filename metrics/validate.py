"""Raw table -> validated transcript frame, checking everything at once.

:func:`detect_mapping` proposes which source column feeds each canonical
column; :func:`normalize` converts and validates every column and collects
*every* problem (like pandera's lazy mode) as a DataFrame of
``file, row, column, value, message, fix``. Nothing is dropped here: the caller
(:mod:`metrics.loaders`) decides whether to refuse the file or skip the bad rows.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metrics.errors import ConfigError, Problem
from metrics.schema import BY_NAME, COLUMNS, SPEAKERS, SPEAKER_SYNONYMS, _key, canonical_name

__all__ = ["detect_mapping", "normalize", "Normalized", "PROBLEM_COLUMNS"]

PROBLEM_COLUMNS = ["file", "row", "column", "value", "message", "fix"]
_TRUE = {"true", "t", "yes", "y", "1", "1.0", "on"}
_FALSE = {"false", "f", "no", "n", "0", "0.0", "off"}
_THUMBS = {"up": "up", "thumbs_up": "up", "👍": "up", "positive": "up", "1": "up", "true": "up", "like": "up",
           "down": "down", "thumbs_down": "down", "👎": "down", "negative": "down", "0": "down",
           "false": "down", "dislike": "down", "-1": "down"}
_EXTRA_TS = ("start_time", "starttime", "start")


def detect_mapping(columns, *, sample: pd.DataFrame | None = None,
                   overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Map canonical column -> source column, from header synonyms and user overrides.

    Several source columns may look like the same canonical column; the exact
    canonical name wins, then the first synonym in :data:`metrics.schema.COLUMNS`
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
                                   "rename the text column to 'text', or map it: --map text=<column>"))
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
                       "(fine for NLU test sets; map a column with --map conversation_id=<column> otherwise).")
    else:
        cid = cid.astype("str").str.strip().reset_index(drop=True)
        missing = cid.isna() | (cid == "")
        issues.add(missing, mapping["conversation_id"], cid, "missing conversation id",
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
                           "(map one with --map speaker=<column>).")
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
        parsed, ambiguous, conflicting = _parse_timestamps(ts_raw, timezone, notices)
        missing = ts_raw.isna().to_numpy()
        failed = parsed.isna().to_numpy() & ~missing
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
        out["timestamp"] = parsed
        now = now or pd.Timestamp.now(tz="UTC")
        future = int((parsed > now + pd.Timedelta(days=1)).sum())
        if future:
            notices.append(f"{future} message(s) are dated in the future; check the export's time zone.")
        epoch0 = int((parsed == pd.Timestamp(0, tz="UTC")).sum())
        if epoch0:
            notices.append(f"{epoch0} message(s) are dated 1970-01-01 00:00 (epoch 0), often a missing value.")

    # optional fields
    for column in COLUMNS:
        name = column.name
        if name in ("text", "conversation_id", "speaker", "timestamp") or name not in mapping:
            continue
        values = col(name).reset_index(drop=True)
        source = mapping[name]
        if column.kind in ("id", "str"):
            cleaned = values.astype("str")
            if column.kind == "id" or len(values) < 50_000:
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


def _parse_timestamps(values: pd.Series, timezone: str, notices: list[str] | None = None
                      ) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Parse ISO 8601 (offset or naive), epoch seconds/ms and common text formats to UTC.

    Returns the UTC timestamps (NaT where parsing failed), the rows whose local time is ambiguous or
    skipped in ``timezone`` and the rows whose day/month order contradicts the column's (:class:`_DateOrder`,
    whose notice goes to ``notices``).
    """
    n = len(values)
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    ambiguous = np.zeros(n, dtype=bool)
    conflicting = np.zeros(n, dtype=bool)
    present = values.notna()
    if not present.any():
        return result, ambiguous, conflicting
    stripped = values.str.strip()
    sample = stripped.dropna().head(200)
    if len(sample) and sample.str.fullmatch(r"-?\d+(\.\d+)?").any():
        numeric = pd.to_numeric(stripped, errors="coerce")
    else:  # no epoch values in the sample: only values that fail as dates are tried as numbers below
        numeric = pd.Series(np.nan, index=values.index)
    is_num = numeric.notna() & present
    if is_num.any():
        nums = numeric[is_num]
        unit_ms = nums.abs() > 1e11
        secs = nums.where(~unit_ms, nums / 1000.0)
        in_range = secs.abs() < 9e9
        result[is_num] = _to_ns(pd.to_datetime(secs.where(in_range), unit="s", utc=True, errors="coerce"))
    rest = present & ~is_num
    if not rest.any():
        return result, ambiguous, conflicting
    text = stripped[rest]
    # ISO 8601 first, vectorised; what fails goes to the slow parser, in one day/month order for the column
    if timezone == "UTC":
        aware = pd.Series(True, index=text.index)
        parsed_aware = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce").pipe(_to_ns)
        retry = parsed_aware.isna()
        if retry.any():
            late = pd.to_numeric(text[retry], errors="coerce")
            late = late[late.notna() & (late.abs() < 9e12)]
            if len(late):
                secs = late.where(late.abs() <= 1e11, late / 1000.0)
                parsed_aware[late.index] = pd.to_datetime(secs, unit="s", utc=True)
        naive_text = text.iloc[0:0]
    else:
        aware = text.str.contains(_AWARE, na=False)
        parsed_aware = pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce").pipe(_to_ns)
        naive_text = text[~aware]
    local = pd.to_datetime(naive_text, format="ISO8601", errors="coerce").pipe(_naive_ns)
    slow_aware, slow_naive = text[aware][parsed_aware.isna()], naive_text[local.isna()]
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
    return result, ambiguous, conflicting


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
    from metrics.schema import CONVERSATION_FIELDS

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
