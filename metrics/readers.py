"""Bytes -> raw table: decoding, file formats and archives.

A *raw table* is a DataFrame of strings (missing = NA) with the source's own
column names, plus notices. Mapping and validation happen in
:mod:`metrics.validate`. Every failure raises :class:`~metrics.errors.ValidationError`
naming the file and saying how to fix it.

Formats: CSV, TSV, JSON (an array of messages, an array of conversations with
nested messages, or an object holding such an array under ``conversations``,
``messages``, ``data``, ...), JSONL, and ``.gz`` / ``.zip`` holding any of them.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field

import pandas as pd

from metrics.errors import Problem, ValidationError

__all__ = ["RawTable", "read_table", "decode_bytes", "DEFAULT_MAX_EXPANDED_BYTES"]

#: Refuse archives that expand beyond this (zip-bomb guard); configurable per call.
DEFAULT_MAX_EXPANDED_BYTES = 1_000_000_000

_TABLE_EXT = (".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson")
#: Keys under which an object holds the list of records.
_CONTAINER_KEYS = ("conversations", "messages", "data", "items", "records", "dialogs", "results", "transcripts")
#: Keys under which a conversation object holds its messages.
_NESTED_KEYS = ("messages", "dialog", "dialogue", "turns", "utterances", "conversation_parts", "events",
                "transcript", "thread")
_NON_SPACE = re.compile(rb"\S")
_SKIP_LINE = re.compile(r"Skipping line (\d+): expected (\d+) fields, saw (\d+)")


@dataclass
class RawTable:
    frame: pd.DataFrame
    file: str
    format: str
    notices: list[str] = field(default_factory=list)
    #: Problems with whole records found while parsing (e.g. a CSV line with too many fields).
    problems: list[Problem] = field(default_factory=list)
    #: 1-based record number in the file of each frame row.
    rows: pd.Series | None = None
    #: Original header, before pandas renamed duplicates (CSV only).
    header: list[str] | None = None


def _fail(file: str, message: str, fix: str, *, row=None, column=None, value=None) -> ValidationError:
    return ValidationError([Problem(file, row, column, value, message, fix)])


def read_table(data: bytes, file_name: str, *, max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES) -> RawTable:
    """Parse one uploaded file (bytes) into a :class:`RawTable`.

    Examples
    --------
    >>> t = read_table(b"session_id,role,message\\n1,user,hi\\n", "chat.csv")
    >>> t.format, list(t.frame.columns), t.frame.iloc[0].tolist()
    ('csv', ['session_id', 'role', 'message'], ['1', 'user', 'hi'])
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"read_table expects bytes, got {type(data).__name__}")
    data = bytes(data)
    name = file_name or "upload"
    lower = name.lower()
    if lower.endswith(".gz") or data[:2] == b"\x1f\x8b":
        inner = _gunzip(data, name, max_expanded_bytes)
        table = read_table(inner, name[:-3] if lower.endswith(".gz") else name + ".unzipped",
                           max_expanded_bytes=max_expanded_bytes)
        table.file = name
        table.format += "+gz"
        return table
    if lower.endswith(".zip") or data[:4] == b"PK\x03\x04":
        return _read_zip(data, name, max_expanded_bytes)
    if _NON_SPACE.search(data) is None:
        raise _fail(name, "the file is empty", "export the transcripts again; the file has no content")
    text_kind = _sniff_kind(data, lower)
    if text_kind in ("json", "jsonl"):
        text = decode_bytes(data, name)[0]
        return _read_json(text, name, text_kind)
    return _read_delimited(data, name, tsv=lower.endswith(".tsv"))


def decode_bytes(data: bytes, file_name: str) -> tuple[str, str]:
    """Decode text trying UTF-8 (with or without BOM), UTF-16, then cp1252.

    Returns ``(text, encoding)``. Raises ValidationError when none fits.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise _fail(file_name, f"the file starts with a UTF-8 byte-order mark but byte {exc.start + 3} is not "
                        "valid UTF-8", "re-save the file as UTF-8") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise _fail(file_name, f"invalid UTF-16 at byte {exc.start}", "re-save the file as UTF-8") from None
    head = data[:4096]
    if head.count(b"\x00") > len(head) // 4:
        enc = "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise _fail(file_name,
                    f"unknown text encoding: byte 0x{data[exc.start]:02x} at offset {exc.start} is neither UTF-8 "
                    f"(first invalid byte at offset {first_bad}) nor Windows-1252",
                    "re-export or re-save the file as UTF-8") from None


def _sniff_kind(data: bytes, lower: str) -> str:
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith(".json"):
        return "json"
    if lower.endswith((".csv", ".tsv")):
        return "csv"
    head = data[:2048].lstrip(b"\xef\xbb\xbf\xff\xfe\x00 \t\r\n").replace(b"\x00", b"")
    if head[:1] == b"[":
        return "json"
    if head[:1] == b"{":
        first_line = data.split(b"\n", 1)[0].strip()
        return "jsonl" if first_line.endswith(b"}") and data.strip().count(b"\n") > 0 else "json"
    return "csv"


def _gunzip(data: bytes, name: str, limit: int) -> bytes:
    try:
        out = b""
        rest = data
        while True:  # a gzip file may hold several members (cat a.gz b.gz): read them all
            d = zlib.decompressobj(wbits=31)
            out += d.decompress(rest, limit + 1 - len(out))
            if len(out) > limit or d.unconsumed_tail:
                raise _fail(name, f"the gzip file expands to more than {limit:,} bytes",
                            "split the export into smaller files, or raise the expanded-size limit")
            if not d.eof:
                raise _fail(name, "the gzip file is truncated", "download or compress the export again")
            rest = d.unused_data.lstrip(b"\x00")
            if not rest:
                return out
    except zlib.error as exc:
        raise _fail(name, f"the file is not valid gzip ({exc})",
                    "upload the uncompressed file, or compress it again with gzip") from None


def _read_zip(data: bytes, name: str, limit: int) -> RawTable:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [i for i in archive.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX")]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _fail(name, f"the file is not a valid zip archive ({exc})", "zip the export again") from None
    tables = [m for m in members if m.filename.lower().endswith(_TABLE_EXT + tuple(e + ".gz" for e in _TABLE_EXT))]
    if not tables:
        found = ", ".join(m.filename for m in members[:10]) or "nothing"
        raise _fail(name, f"the zip holds no CSV, TSV, JSON or JSONL file (found: {found})",
                    "put the transcript export itself in the archive")
    declared = sum(m.file_size for m in tables)
    if declared > limit:
        raise _fail(name, f"the zip expands to {declared:,} bytes, more than the {limit:,} allowed",
                    "split the export into smaller files, or raise the expanded-size limit")
    parts, notices, problems = [], [], []
    budget = limit
    for member in tables:
        try:
            with archive.open(member) as fh:
                content = fh.read(budget + 1)
        except (zipfile.BadZipFile, zlib.error, RuntimeError, ValueError, OSError, EOFError,
                NotImplementedError) as exc:
            raise _fail(name, f"the archive member {member.filename!r} cannot be read ({exc})",
                        "zip the export again, without a password") from None
        if len(content) > budget:
            raise _fail(name, f"the zip expands to more than {limit:,} bytes",
                        "split the export into smaller files, or raise the expanded-size limit")
        budget -= len(content)
        part = read_table(content, f"{name}:{member.filename}", max_expanded_bytes=limit)
        part.frame = part.frame.assign(**{"__source_file": member.filename})
        parts.append(part)
        notices.extend(part.notices)
        problems.extend(part.problems)
    columns = [sorted(c for c in p.frame.columns if c != "__source_file") for p in parts]
    if any(c != columns[0] for c in columns[1:]):
        which = "; ".join(f"{m.filename}: {', '.join(c[:8])}" for m, c in zip(tables, columns))
        raise _fail(name, f"the archive's files have different columns ({which})",
                    "put one export per archive, or files with the same columns")
    if len(parts) > 1:
        notices.append(f"{name}: combined {len(parts)} files from the archive: "
                       + ", ".join(m.filename for m in tables))
    offset = 0
    rows = []
    for part in parts:
        r = part.rows if part.rows is not None else pd.Series(range(1, len(part.frame) + 1))
        rows.append(r.reset_index(drop=True) + offset)
        offset += int(r.max()) if len(r) else 0
    frame = pd.concat([p.frame for p in parts], ignore_index=True, sort=False)
    if len(parts) == 1:
        frame = frame.drop(columns="__source_file")
    if len(parts) > 1:
        notices.append(f"{name}: rows are numbered across the archive's files in the order listed.")
    label = parts[0].file if len(parts) == 1 else name
    return RawTable(frame.astype("str").where(frame.notna(), None).astype("str") if len(frame.columns) else frame,
                    label, "+".join(sorted({p.format for p in parts})) + "+zip", notices, problems,
                    pd.concat(rows, ignore_index=True), parts[0].header if len(parts) == 1 else None)


# --------------------------------------------------------------------------- delimited text

def _read_delimited(data: bytes, name: str, *, tsv: bool) -> RawTable:
    if not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) and b"\x00" not in data[:4096]:
        # Fast path: pyarrow validates UTF-8 itself, so the whole file need not be decoded here.
        head = data[:65536]
        first = re.split(r"\r\n|\r|\n", head.decode("utf-8", errors="replace"), maxsplit=1)[0]
        sep = "\t" if tsv or first.count("\t") > max(first.count(","), first.count(";")) else (
            ";" if first.count(";") > first.count(",") else ",")
        if data.count(b'"') % 2 == 0:
            fast = _read_fast(data, sep)
            if fast is not None:
                if len(fast) == 0:
                    raise _fail(name, "the file has a header but no rows",
                                "export a period that contains conversations")
                header = next(csv.reader([first], delimiter=sep))
                return RawTable(fast, name, "tsv" if sep == "\t" else "csv", [], [],
                                pd.Series(range(1, len(fast) + 1), dtype="int64"), header)
    text, encoding = decode_bytes(data, name)
    notices = []
    if encoding == "cp1252":
        notices.append(f"{name}: not valid UTF-8; read as Windows-1252 (cp1252). Check accented characters.")
    elif encoding.startswith("utf-16"):
        notices.append(f"{name}: read as {encoding.upper()}.")
    first_line = re.split(r"\r\n|\r|\n", text[:65536], maxsplit=1)[0]
    if tsv or first_line.count("\t") > max(first_line.count(","), first_line.count(";")):
        sep, fmt = "\t", "tsv"
    elif first_line.count(";") > first_line.count(","):
        sep, fmt = ";", "csv"
    else:
        sep, fmt = ",", "csv"
    try:
        header = next(csv.reader([first_line.rstrip("\r")], delimiter=sep))
    except csv.Error:
        header = first_line.split(sep)
    source = io.BytesIO(data) if encoding == "utf-8" else io.StringIO(text)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = pd.read_csv(source, sep=sep, dtype="str", keep_default_na=False, na_values=[""],
                                on_bad_lines="warn", encoding="utf-8" if encoding == "utf-8" else None,
                                skip_blank_lines=True, low_memory=False)
        except pd.errors.EmptyDataError:
            raise _fail(name, "the file is empty", "export the transcripts again; the file has no content") from None
        except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
            raise _fail(name, f"the file cannot be parsed as {fmt.upper()}: {str(exc).strip()}",
                        "check for an unterminated quote or a broken line near the place named") from None
    problems = []
    skipped_lines = []
    for w in caught:
        for m in _SKIP_LINE.finditer(str(w.message)):
            line, expected, saw = (int(g) for g in m.groups())
            skipped_lines.append(line)
            problems.append(Problem(name, line - 1, None, None,
                                    f"line {line} has {saw} fields but the header has {expected}",
                                    "quote the text field (it probably contains the delimiter or a line break)"))
    if len(frame) == 0:
        raise _fail(name, "the file has a header but no rows", "export a period that contains conversations")
    rows = _record_numbers(len(frame), sorted(ln - 1 for ln in skipped_lines))
    return RawTable(frame, name, fmt, notices, problems, rows, header)


def _read_fast(data: bytes, sep: str) -> pd.DataFrame | None:
    """Multithreaded pyarrow parse of a well-formed UTF-8 file; None when anything is irregular.

    Irregular files (ragged rows, odd quoting, parse errors) go through the C engine, whose
    warnings give the line numbers reported to the user.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = pd.read_csv(io.BytesIO(data), sep=sep, dtype="str", keep_default_na=False, na_values=[""],
                                engine="pyarrow", on_bad_lines="error")
    except Exception:  # noqa: BLE001 - any failure means: use the careful parser
        return None
    if frame.columns.duplicated().any() or any(str(c).startswith("Unnamed") and str(c) != "Unnamed: 0"
                                               for c in frame.columns):
        return None
    return frame


def _record_numbers(n: int, skipped: list[int]) -> pd.Series:
    """1-based record numbers of the n kept rows, given the skipped record numbers."""
    if not skipped:
        return pd.Series(range(1, n + 1), dtype="int64")
    import numpy as np

    total = n + len(skipped)
    keep = np.ones(total, dtype=bool)
    for s in skipped:
        if 1 <= s <= total:
            keep[s - 1] = False
    numbers = np.arange(1, total + 1)[keep][:n]
    return pd.Series(numbers, dtype="int64")


# --------------------------------------------------------------------------- JSON

def _read_json(text: str, name: str, kind: str) -> RawTable:
    if kind == "jsonl":
        records = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise _fail(name, f"line {lineno} is not valid JSON ({exc.msg}; column {exc.colno})",
                            "each line must hold one complete JSON object; the file may be truncated",
                            row=lineno) from None
            except RecursionError:
                raise _fail(name, f"line {lineno} is nested too deeply to read", "flatten the export",
                            row=lineno) from None
            except ValueError as exc:  # e.g. an integer with more than 4,300 digits
                raise _fail(name, f"line {lineno} cannot be read as JSON ({exc})", "export the file again",
                            row=lineno) from None
        payload = records
    else:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            truncated = exc.pos >= len(text.rstrip()) - 1
            raise _fail(name, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
                        + (" (the file ends early: it looks truncated)" if truncated else ""),
                        "export the file again; it must be one complete JSON document") from None
        except RecursionError:
            raise _fail(name, "the JSON is nested too deeply to read",
                        "export flat messages (one object per message)") from None
        except ValueError as exc:  # e.g. an integer with more than 4,300 digits
            raise _fail(name, f"the JSON cannot be read ({exc})", "export the file again") from None
    try:
        frame, notices = _flatten_records(payload, name)
    except RecursionError:
        raise _fail(name, "the JSON is nested too deeply to read",
                    "export flat messages (one object per message)") from None
    if len(frame) == 0:
        raise _fail(name, "the JSON holds no messages", "export a period that contains conversations")
    return RawTable(frame, name, kind, notices, [], pd.Series(range(1, len(frame) + 1), dtype="int64"))


def _flatten_records(payload, name: str) -> tuple[pd.DataFrame, list[str]]:
    notices: list[str] = []
    if isinstance(payload, dict):
        key = next((k for k in _CONTAINER_KEYS if isinstance(payload.get(k), list)), None)
        if key is None:
            lists = [k for k, v in payload.items() if isinstance(v, list) and v and isinstance(v[0], dict)]
            if len(lists) == 1:
                key = lists[0]
        if key is None:
            raise _fail(name, "the JSON object holds no list of messages or conversations "
                        f"(keys: {', '.join(list(payload)[:12])})",
                        "export an array of messages, or {\"conversations\": [...]} with nested messages")
        payload = payload[key]
    if not isinstance(payload, list):
        raise _fail(name, f"expected a JSON array of records, got {type(payload).__name__}",
                    "export an array of messages or conversations")
    bad = next((i for i, r in enumerate(payload) if not isinstance(r, dict)), None)
    if bad is not None:
        raise _fail(name, f"record {bad + 1} is a {type(payload[bad]).__name__}, not an object",
                    "each record must be a JSON object", row=bad + 1)
    nested_key = _nested_key(payload)
    rows: list[dict] = []
    if nested_key is None:
        rows = [_flat(r) for r in payload]
    else:
        for index, conv in enumerate(payload, start=1):
            conv_fields = _flat({k: v for k, v in conv.items() if k != nested_key})
            conv_fields.setdefault("__conversation_index", f"conversation-{index}")
            messages = conv.get(nested_key) or []
            if not isinstance(messages, list):
                raise _fail(name, f"conversation {index}: '{nested_key}' is not a list", "export nested messages "
                            "as a list", row=index, column=nested_key)
            for msg in messages:
                if not isinstance(msg, dict):
                    msg = {"text": msg}
                flat = {f"conversation.{k}": v for k, v in conv_fields.items()}
                flat.update(_flat(msg))
                rows.append(flat)
        notices.append(f"{name}: read {len(payload)} conversations with nested '{nested_key}'.")
    frame = pd.DataFrame.from_records(rows)
    for col in frame.columns:
        frame[col] = _to_str(frame[col])
    return frame, notices


def _nested_key(payload: list[dict]) -> str | None:
    for record in payload[:50]:
        for key in _NESTED_KEYS:
            value = record.get(key)
            if isinstance(value, list) and (not value or isinstance(value[0], dict)):
                return key
    return None


def _flat(record: dict, prefix: str = "", depth: int = 0) -> dict:
    out = {}
    for key, value in record.items():
        name = _clean_text(f"{prefix}{key}")
        if isinstance(value, str):
            value = _clean_text(value)
        if isinstance(value, dict) and depth < 3:
            out.update(_flat(value, f"{name}.", depth + 1))
        elif isinstance(value, (dict, list)):
            out[name] = json.dumps(value, ensure_ascii=False, default=str)
        else:
            out[name] = value
    return out


def _clean_text(text: str) -> str:
    """Replace lone surrogates (from JSON escapes such as \\ud800) that UTF-8 cannot hold."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _to_str(series: pd.Series) -> pd.Series:
    def conv(v):
        if v is None or (isinstance(v, float) and v != v):
            return None
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return _clean_text(str(v))

    return pd.Series([conv(v) for v in series.tolist()], index=series.index, dtype="str")
