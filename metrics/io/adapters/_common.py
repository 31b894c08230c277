"""Helpers shared by the platform adapters: unwrapping archives, peeking, parsing, building the table.

Nothing here knows a platform. Every failure raises :class:`~metrics.errors.ValidationError`
whose message starts with the platform's label, so the user always learns *which* reader
refused the file and why.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
import zlib
from datetime import datetime, timezone

import pandas as pd

from metrics.errors import Problem, ValidationError
from metrics.io.readers import DEFAULT_MAX_EXPANDED_BYTES, MAX_ZIP_ENTRIES, RawTable, decode_bytes, zip_entry_count
from metrics.io.schema import COLUMNS

__all__ = [
    "FALLBACK_INTENT", "PEEK_BYTES", "peek", "peek_text", "unwrap", "fail", "problem", "parse_json_records",
    "read_csv_records", "as_dict", "as_list", "text_of", "iso_from_epoch", "iso_from_text", "build_table",
    "json_keys_in", "csv_header", "names_option", "bool_option", "loads_or_none", "clean_text", "looks_like_json",
    "upload_tag",
]

def upload_tag(data: bytes) -> str:
    """A short tag of a file's content (8 hex digits of BLAKE2b): the prefix of ids made up for it.

    Ids a reader has to invent (``row-N`` for a table without conversation ids, ``conversation-N`` for nested
    JSON without ids, ``<file>:<N>`` for ConvAI dialogs without ``dialog_id``) are numbered by position in the
    file, so two different uploads would reuse them and merge unrelated conversations. Prefixed with this tag
    they are unique per file content, yet the same file uploaded twice gets the same ids (and is a duplicate).

    Examples
    --------
    >>> upload_tag(b"a,b\\n1,2\\n")
    'd18e5fe5'
    >>> upload_tag(b"x") != upload_tag(b"y")
    True
    """
    return hashlib.blake2b(data, digest_size=4).hexdigest()


#: The intent written for "the bot did not understand" turns (= metrics.intents.DEFAULT_FALLBACK_INTENT).
FALLBACK_INTENT = "nlu_fallback"
#: How much (decompressed) text detection looks at.
PEEK_BYTES = 65536
_TABLE_EXT = (".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson")
_CANONICAL = [c.name for c in COLUMNS]


# --------------------------------------------------------------------------- archives

def peek(data: bytes, file_name: str, size: int = PEEK_BYTES) -> list[tuple[str, bytes]]:
    """The first ``size`` decompressed bytes of the file, or of each table member of a zip.

    Never raises: a corrupt archive gives ``[]`` (the generic reader then reports it).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return []
    data = bytes(data)
    lower = (file_name or "").lower()
    if data[:4] == b"PK\x03\x04" and (zip_entry_count(data) or 0) > MAX_ZIP_ENTRIES:
        return []  # not parsed once per adapter: the generic reader refuses it, naming the limit
    try:
        if lower.endswith(".gz") or data[:2] == b"\x1f\x8b":
            head = zlib.decompressobj(wbits=31).decompress(data, size)
            inner = file_name[:-3] if lower.endswith(".gz") else file_name
            return [(inner, head)]
        if lower.endswith(".zip") or data[:4] == b"PK\x03\x04":
            out = []
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in _table_members(archive)[:8]:
                    with archive.open(info) as fh:
                        head = fh.read(size)
                    if info.filename.lower().endswith(".gz"):
                        head = zlib.decompressobj(wbits=31).decompress(head, size)
                        out.append((info.filename[:-3], head))
                    else:
                        out.append((info.filename, head))
            return out
    except (zlib.error, zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError):
        return []
    return [(file_name or "upload", data[:size])]


def peek_text(data: bytes, file_name: str, size: int = PEEK_BYTES) -> list[tuple[str, str]]:
    """Like :func:`peek` but decoded leniently (for key/header sniffing only)."""
    out = []
    for name, head in peek(data, file_name, size):
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = head.decode("utf-16", errors="replace")
        else:
            text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
        out.append((name, text))
    return out


def unwrap(data: bytes, file_name: str, label: str, *,
           max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES) -> list[tuple[str, bytes]]:
    """The file's content, gunzipped, or each table member of a zip, with the same size guards as the
    generic reader. Returns ``[(name, bytes), ...]``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"adapters expect bytes, got {type(data).__name__}")
    data = bytes(data)
    name = file_name or "upload"
    lower = name.lower()
    if lower.endswith(".gz") or data[:2] == b"\x1f\x8b":
        inner = name[:-3] if lower.endswith(".gz") else name
        return [(inner, _gunzip(data, name, label, max_expanded_bytes))]
    if lower.endswith(".zip") or data[:4] == b"PK\x03\x04":
        return _unzip(data, name, label, max_expanded_bytes)
    if not data.strip():
        raise fail(label, name, "the file is empty", "export the data again; the file has no content")
    return [(name, data)]


def _table_members(archive: zipfile.ZipFile):
    return [i for i in archive.infolist()
            if not i.is_dir() and not i.filename.startswith("__MACOSX")
            and i.filename.lower().endswith(_TABLE_EXT + tuple(e + ".gz" for e in _TABLE_EXT))]


def _gunzip(data: bytes, name: str, label: str, limit: int) -> bytes:
    out, rest = b"", data
    while True:  # every gzip member (cat a.gz b.gz), not only the first
        try:
            d = zlib.decompressobj(wbits=31)
            out += d.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise fail(label, name, f"the file is not valid gzip ({exc})",
                       "upload the uncompressed file, or compress it again with gzip") from None
        if len(out) > limit or d.unconsumed_tail:
            raise fail(label, name, f"the gzip file expands to more than {limit:,} bytes",
                       "split the export into smaller files, or raise the expanded-size limit")
        if not d.eof:
            raise fail(label, name, "the gzip file is truncated", "download or compress the export again")
        rest = d.unused_data.lstrip(b"\x00")
        if not rest:
            return out


def _unzip(data: bytes, name: str, label: str, limit: int) -> list[tuple[str, bytes]]:
    entries = zip_entry_count(data) or 0
    if entries > MAX_ZIP_ENTRIES:
        raise fail(label, name, f"the zip has {entries:,} entries; at most {MAX_ZIP_ENTRIES:,} are examined",
                   "zip only the export's files")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = _table_members(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError) as exc:
        raise fail(label, name, f"the file is not a valid zip archive ({exc})", "zip the export again") from None
    if not members:
        raise fail(label, name, "the zip holds no CSV, JSON or JSONL file", "put the export itself in the archive")
    if sum(m.file_size for m in members) > limit:
        raise fail(label, name, f"the zip expands to more than the {limit:,} bytes allowed",
                   "split the export into smaller files, or raise the expanded-size limit")
    out, budget = [], limit
    for info in members:
        try:
            with archive.open(info) as fh:
                content = fh.read(budget + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError,
                zlib.error) as exc:
            raise fail(label, f"{name}:{info.filename}", f"the archive member cannot be read ({exc})",
                       "zip the export again") from None
        if len(content) > budget:
            raise fail(label, name, f"the zip expands to more than {limit:,} bytes",
                       "split the export into smaller files, or raise the expanded-size limit")
        budget -= len(content)
        member = f"{name}:{info.filename}"
        if info.filename.lower().endswith(".gz"):
            content = _gunzip(content, member, label, budget)
            budget -= len(content)
            member = member[:-3]
        out.append((member, content))
    return out


# --------------------------------------------------------------------------- errors

def problem(label: str, file: str, message: str, fix: str, *, row=None, column=None, value=None) -> Problem:
    """A :class:`Problem` whose message names the platform."""
    shown = None if value is None else clean_text(str(value)[:200])
    return Problem(file, row, column, shown, clean_text(f"{label}: {message}"), fix)


def clean_text(text: str) -> str:
    """``text`` with lone UTF-16 surrogates (from JSON escapes such as ``\\ud800``) replaced by U+FFFD, so that
    it can be stored and shown."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def fail(label: str, file: str, message: str, fix: str, **where) -> ValidationError:
    return ValidationError([problem(label, file, message, fix, **where)])


# --------------------------------------------------------------------------- parsing

def parse_json_records(content: bytes, name: str, label: str, *, list_keys=()) -> tuple[list, str]:
    """Parse JSON (a document) or JSONL (one document per line) into a list of records.

    A JSON object holding a list under one of ``list_keys`` yields that list; any other object
    is one record. Returns ``(records, kind)`` with kind ``"json"`` or ``"jsonl"``; each record is
    ``(record_number, value)``.
    """
    text = decode_bytes(content, name)[0].lstrip("\ufeff")
    stripped = text.strip()
    if not stripped:
        raise fail(label, name, "the file is empty", "export the data again; the file has no content")
    lower = name.lower()
    first_line = stripped.split("\n", 1)[0].strip()
    jsonl = lower.endswith((".jsonl", ".ndjson")) or (
        not lower.endswith(".json") and first_line.startswith("{") and first_line.endswith("}")
        and "\n" in stripped and _loads_or_none(first_line) is not None)
    if jsonl:
        records = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((lineno, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise fail(label, name, f"line {lineno} is not valid JSON ({exc.msg}, column {exc.colno})",
                           "each line must hold one complete JSON object; the file may be truncated",
                           row=lineno) from None
            except ValueError as exc:  # e.g. an integer too long to convert
                raise fail(label, name, f"line {lineno} cannot be read as JSON ({exc})", "export the data again",
                           row=lineno) from None
            except RecursionError:
                raise fail(label, name, f"line {lineno} is nested too deeply to read", "export the data again",
                           row=lineno) from None
        return records, "jsonl"
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        truncated = exc.pos >= len(text.rstrip()) - 1 or exc.msg.startswith("Unterminated string")
        raise fail(label, name, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
                   + (" (the file ends early: it looks truncated)" if truncated else ""),
                   "export the file again; it must be one complete JSON document") from None
    except ValueError as exc:  # e.g. an integer too long to convert
        raise fail(label, name, f"the JSON cannot be read ({exc})", "export the data again") from None
    except RecursionError:
        raise fail(label, name, "the JSON is nested too deeply to read", "export the data again") from None
    if isinstance(payload, dict):
        key = next((k for k in list_keys if isinstance(payload.get(k), list)), None)
        payload = payload[key] if key is not None else [payload]
    if not isinstance(payload, list):
        raise fail(label, name, f"expected a JSON array or object, got {type(payload).__name__}",
                   "export the records as a JSON array, one object per record")
    return list(enumerate(payload, start=1)), "json"


def _loads_or_none(text: str):
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def loads_or_none(text: str):
    """``json.loads`` that returns None instead of raising."""
    return _loads_or_none(text)


def read_csv_records(content: bytes, name: str, label: str, *, required=()) -> tuple[list[str], list, list]:
    """Read delimited text with the csv module, keeping exact record structure.

    Returns ``(header, records, lines)``: ``records`` is a list of ``(record_number, fields)``
    (record 1 = the first line after the header; blank lines are skipped and not counted) and
    ``lines`` gives each record's first and last physical line in the file.
    Raises when a ``required`` column is missing from the header.
    """
    text = decode_bytes(content, name)[0].lstrip("\ufeff")
    # Transcript cells (JSON content, long answers) exceed the csv module's 128 KB default; the limit only
    # ever grows here, so concurrent readers never see it shrink.
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise fail(label, name, f"the header line cannot be read ({exc})", "export the file again") from None
    if not header or not any(h.strip() for h in header):
        raise fail(label, name, "the file has no header line", "export the file again with its header")
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise fail(label, name, "the header lacks column(s) " + ", ".join(missing)
                   + " (it has: " + ", ".join(header[:20]) + ")",
                   "export the table with all its columns", column=missing[0])
    records, lines = [], []
    number = 0
    try:
        start = reader.line_num + 1
        for fields in reader:
            end = reader.line_num
            if fields:
                number += 1
                records.append((number, fields))
                lines.append((start, end))
            start = end + 1
    except csv.Error as exc:
        raise fail(label, name, f"the file cannot be parsed near line {reader.line_num} ({exc})",
                   "check for an unterminated quote; the file may be truncated", row=number + 1) from None
    if not records:
        raise fail(label, name, "the file has a header but no rows", "export a period that contains conversations")
    return header, records, lines


def csv_header(text: str) -> list[str]:
    """The first line of ``text`` split as CSV (for detection); [] when it does not look like a header."""
    first = text.split("\n", 1)[0].strip("\r\ufeff")
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    try:
        return [h.strip().lower() for h in next(csv.reader([first], delimiter=delimiter))]
    except (csv.Error, StopIteration):
        return []


def looks_like_json(content: bytes) -> bool:
    """True when the content starts (after BOMs, NULs of UTF-16 and blanks) with ``{`` or ``[``."""
    head = content[:4096].lstrip(b"\xef\xbb\xbf\xff\xfe\x00 \t\r\n").replace(b"\x00", b"")
    return head[:1] in (b"{", b"[")


def json_keys_in(text: str, *keys: str) -> bool:
    """True when every ``"key":`` occurs in ``text`` (a cheap structural test for detection)."""
    return all(re.search(r'"' + re.escape(k) + r'"\s*:', text) for k in keys)


# --------------------------------------------------------------------------- values

def as_dict(value) -> dict:
    """``value`` if it is a dict, else a JSON object parsed from a string, else {}."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.lstrip().startswith("{"):
        parsed = _loads_or_none(value)
        return parsed if isinstance(parsed, dict) else {}
    return {}


def as_list(value) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, str) and value.lstrip().startswith("["):
        parsed = _loads_or_none(value)
        return parsed if isinstance(parsed, list) else []
    return []


def text_of(value) -> str | None:
    """A scalar as text (None stays None; bools as true/false; dict/list as compact JSON)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, (dict, list)):
        try:
            return json.dumps(value, ensure_ascii=False, default=str)
        except (RecursionError, ValueError):
            return "[nested value]"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # more digits than Python converts
            return "[very long number]"
    return str(value)


def iso_from_epoch(value) -> str | None:
    """Epoch seconds (or milliseconds above 1e11) -> ISO 8601 UTC; unconvertible values come back as
    text so that validation reports them as unparseable timestamps."""
    if value is None or isinstance(value, bool):
        return None if value is None else text_of(value)
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return text_of(value)
    if seconds != seconds:
        return None
    if abs(seconds) > 1e11:
        seconds /= 1000.0
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return text_of(value)


_UTC_SUFFIX = re.compile(r"(?<!\s)\s+(?:UTC|GMT)$")  # (?<!\s): one start per run of spaces (linear)
_NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$")


def iso_from_text(value, *, naive_is_utc: bool = False) -> str | None:
    """Normalise a textual time: a trailing `` UTC`` becomes ``+00:00``; with ``naive_is_utc`` a naive
    ISO time gets ``Z`` (the platform documents UTC). Numbers are read as epochs. Anything else is
    returned unchanged for validation to judge."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return iso_from_epoch(value)
    text = text_of(value).strip()
    if not text:
        return None
    text = _UTC_SUFFIX.sub("+00:00", text)
    if naive_is_utc and _NAIVE.match(text):
        text += "Z"
    return text


# --------------------------------------------------------------------------- output

def build_table(rows: list[dict], records: list[int], *, file: str, platform: str, label: str,
                notices: list[str], problems: list[Problem], extra: tuple[str, ...] = ()) -> RawTable:
    """Turn message dicts into the adapter's :class:`RawTable` (canonical columns, str values).

    ``records`` gives each row's 1-based record number in the source. Columns starting with
    ``__`` listed in ``extra`` are kept for callers but ignored by validation.
    """
    if not rows:
        if problems:
            raise ValidationError(problems)
        raise fail(label, file, "the export holds no messages", "export a period that contains conversations")
    present = {k for r in rows for k, v in r.items() if v is not None}
    columns = [c for c in _CANONICAL if c in present or c in ("conversation_id", "speaker", "text")]
    columns += [c for c in extra if c in present]
    frame = pd.DataFrame({c: _str_series([text_of(r.get(c)) for r in rows]) for c in columns})
    return RawTable(frame, file, platform, [clean_text(n) for n in notices], problems,
                    pd.Series(records, dtype="int64"))


def _str_series(values: list) -> pd.Series:
    try:
        return pd.Series(values, dtype="str")
    except UnicodeEncodeError:  # lone surrogates cannot be stored: show U+FFFD instead
        return pd.Series([v if v is None else clean_text(v) for v in values], dtype="str")


# --------------------------------------------------------------------------- options

def names_option(options: dict, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A list-of-names option (a single string is one name); :class:`ConfigError` repeats a bad value."""
    from metrics.errors import ConfigError

    value = options.get(key, default)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple, set, frozenset)) or not all(
            isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"option {key!r} must be a list of non-empty names, got {value!r}")
    return tuple(v.strip() for v in value)


def bool_option(options: dict, key: str, default: bool) -> bool:
    from metrics.errors import ConfigError

    value = options.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"option {key!r} must be true or false, got {value!r}")
    return value
