"""Bytes -> raw table: decoding, file formats and archives.

A *raw table* is a DataFrame of strings (missing = NA) with the source's own
column names, plus notices. Mapping and validation happen in
:mod:`metrics.io.validate`. Every failure raises :class:`~metrics.errors.ValidationError`
naming the file and saying how to fix it.

Formats: CSV, TSV, JSON (an array of messages, an array of conversations with
nested messages, or an object holding such an array under ``conversations``,
``messages``, ``data``, ...), JSONL, and ``.gz`` / ``.zip`` holding any of them.

Limits
------
Each limit is checked before the work it protects, and exceeding one raises a
:class:`LimitError` (a :class:`~metrics.errors.ValidationError`) naming the file or archive member,
the row and column where that means something, the limit, and how to get under or raise it.
``option`` on the error names the :func:`read_table` keyword that raises the limit.

=============================  =====================  ======================================================
limit                          default                keyword of :func:`read_table` / where it is checked
=============================  =====================  ======================================================
expanded size                  1,000,000,000 bytes    ``max_expanded_bytes``: one budget for the whole
                                                      upload, shared by every member and every level of an
                                                      archive and spent while decompressing (in 1 MiB
                                                      chunks), so a bomb stops when the budget runs out
archives inside archives       3 levels               :data:`MAX_ARCHIVE_DEPTH` (a .gz in a .zip is 2)
table files in one zip         1,000                  ``max_members``
entries in one zip             10,000                 :data:`MAX_ZIP_ENTRIES`, read from the zip's end
                                                      record before its directory is parsed
columns                        2,000                  ``max_columns``: fields of the header line, counted
                                                      before the file is parsed (JSON: distinct keys,
                                                      counted before the frame is built)
bytes in one cell              1 MiB (1,048,576)      ``max_field_bytes``
JSON nesting                   100 levels             :data:`MAX_JSON_DEPTH`, scanned before parsing
=============================  =====================  ======================================================

A cell of more than 1 MiB is not a chat message: the longest messages platforms accept are
64 KiB of text (256 KiB of UTF-8 at most), and a 1,000,000-character message still loads. Such a
cell is nearly always a quote that is never closed, swallowing the rest of the file into one
field; refusing it names the row where that quote opened, where loading it would hand every later
step (PII masking, sentiment, the store, the UI) one giant string.

Text encodings
--------------
UTF-8 (with or without a byte-order mark), UTF-16 (with a byte-order mark, or without one when
the file is mostly NUL bytes) and Windows-1252 (cp1252) are read. A file that is UTF-8 except
for a few bad bytes is read as UTF-8, and each record holding a bad byte is a problem naming its
row (the 1-based data row after the header, as the loader numbers rows) and the byte offset in the
file: refused by default, dropped alone when bad rows are skipped. The whole file is read as cp1252
only when it is not UTF-8 as a whole, that is when its invalid UTF-8 sequences are at least as many
as its valid multi-byte UTF-8 characters: a cp1252 file has (almost) no valid multi-byte sequences,
while a UTF-8 file with one damaged byte has many, and reading it as cp1252 would garble them all.
(A file that is ASCII apart from its bad bytes is read as cp1252: ASCII reads the same in both, so
nothing else can be garbled.) A clean file pays nothing for this: pyarrow validates UTF-8 while
parsing, and bad bytes are located only after that fails.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import os
import re
import struct
import threading
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from metrics.errors import Problem, ValidationError
from metrics.core.frames import filter_rows

__all__ = ["RawTable", "read_table", "decode_bytes", "LimitError", "DEFAULT_MAX_EXPANDED_BYTES",
           "MAX_EXPANDED_BYTES_ENV", "configured_max_expanded_bytes",
           "DEFAULT_MAX_COLUMNS", "DEFAULT_MAX_MEMBERS", "DEFAULT_MAX_FIELD_BYTES", "MAX_ARCHIVE_DEPTH",
           "MAX_ZIP_ENTRIES", "MAX_JSON_DEPTH", "zip_entry_count"]

#: Refuse uploads whose archives (.gz, .zip, at every level together) expand beyond this; per call.
DEFAULT_MAX_EXPANDED_BYTES = 1_000_000_000
#: The environment variable that sets the limit for the CLI's default and the Data page alike.
MAX_EXPANDED_BYTES_ENV = "CHATLENS_MAX_EXPANDED_BYTES"


def configured_max_expanded_bytes() -> int:
    """The expanded-size limit in force: ``CHATLENS_MAX_EXPANDED_BYTES`` when set, else
    :data:`DEFAULT_MAX_EXPANDED_BYTES`. The CLI's ``--max-expanded-bytes`` default and the Data page both read it.

    Raises :class:`~metrics.errors.ConfigError` for a value that is not a positive whole number.

    Examples
    --------
    >>> import os
    >>> os.environ.pop(MAX_EXPANDED_BYTES_ENV, None) and None
    >>> configured_max_expanded_bytes()
    1000000000
    """
    raw = os.environ.get(MAX_EXPANDED_BYTES_ENV, "").strip().replace("_", "").replace(",", "")
    if not raw:
        return DEFAULT_MAX_EXPANDED_BYTES
    if not raw.isdigit() or int(raw) <= 0:
        from metrics.errors import ConfigError

        raise ConfigError(f"{MAX_EXPANDED_BYTES_ENV} must be a whole number of bytes > 0, got {raw!r}")
    return int(raw)
#: Refuse files with more columns than this (counted on the header line before parsing); per call.
DEFAULT_MAX_COLUMNS = 2_000
#: Refuse zips holding more table files (CSV, TSV, JSON, JSONL, also gzipped) than this; per call.
DEFAULT_MAX_MEMBERS = 1_000
#: Refuse files with a cell of more bytes than this (1 MiB); per call.
DEFAULT_MAX_FIELD_BYTES = 1 << 20
#: Archives nested in archives: at most this many layers (a .csv.gz in a .zip is 2).
MAX_ARCHIVE_DEPTH = 3
#: A zip whose directory lists more entries than this (files, folders, junk) is not examined at all.
MAX_ZIP_ENTRIES = 10_000
#: JSON nested deeper than this (arrays and objects) is refused before it is parsed.
MAX_JSON_DEPTH = 100

_TABLE_EXT = (".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson")
#: Keys under which an object holds the list of records.
_CONTAINER_KEYS = ("conversations", "messages", "data", "items", "records", "dialogs", "results", "transcripts")
#: Keys under which a conversation object holds its messages.
_NESTED_KEYS = ("messages", "dialog", "dialogue", "turns", "utterances", "conversation_parts", "events",
                "transcript", "thread")
_NON_SPACE = re.compile(rb"\S")
_SKIP_LINE = re.compile(r"Skipping line (\d+): expected (\d+) fields, saw (\d+)")
#: Decompress and unzip in chunks of this many bytes, spending the budget as each chunk comes out.
_CHUNK = 1 << 20
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_ASCII = bytes(range(128))
_EXPANDED_FIX = "split the export into smaller files, or raise the expanded-size limit (now {limit:,} bytes)"


class LimitError(ValidationError):
    """A file exceeds one of the reader's limits (see the module docstring).

    ``option`` is the :func:`read_table` keyword that raises the limit (None for a fixed limit)
    and ``limit`` its value, so that the edge (the CLI, the Data page) can say how to raise it there.
    """

    def __init__(self, problem: Problem, *, option: str | None, limit: int):
        super().__init__([problem])
        self.option = option
        self.limit = limit

    def with_hint(self, hint: str) -> LimitError:
        """The same error with ``hint`` added to its fix (e.g. the command-line option that raises the limit).

        Examples
        --------
        >>> err = LimitError(Problem("a.zip", None, None, None, "too big", "split it"), option="x", limit=1)
        >>> err.with_hint("--x N").problems[0].fix
        'split it; --x N'
        """
        problem = self.problems[0]
        return LimitError(replace(problem, fix=f"{problem.fix}; {hint}"), option=self.option, limit=self.limit)


@dataclass
class RawTable:
    frame: pd.DataFrame
    file: str
    format: str
    notices: list[str] = field(default_factory=list)
    #: Problems with whole records found while parsing (e.g. a CSV line with too many fields, or a row
    #: holding bytes that are not UTF-8). Such records are not in ``frame``; ``rows`` skips their numbers.
    problems: list[Problem] = field(default_factory=list)
    #: 1-based record number in the file of each frame row.
    rows: pd.Series | None = None
    #: Original header, before pandas renamed duplicates (CSV only).
    header: list[str] | None = None


@dataclass(frozen=True)
class _Limits:
    columns: int
    members: int
    field_bytes: int


class _Budget:
    """The expanded-size budget of one upload, shared by every archive member and level."""

    def __init__(self, limit: int):
        self.limit = int(limit)
        self.used = 0

    @property
    def left(self) -> int:
        return self.limit - self.used

    def spend(self, n: int, file: str, what: str, before: int) -> None:
        """Count ``n`` more unpacked bytes; raise once the total is over the limit.

        ``before`` is what was spent when the current file started, named in the message when not 0.
        """
        self.used += n
        if self.used > self.limit:
            message = f"{what} expands to more than {self.limit:,} bytes" if not before else (
                f"{what} takes the upload past {self.limit:,} unpacked bytes ({before:,} were unpacked before it: "
                "the limit counts every file and level of an archive together)")
            raise LimitError(Problem(file, None, None, None, message, _EXPANDED_FIX.format(limit=self.limit)),
                             option="max_expanded_bytes", limit=self.limit)


def _fail(file: str, message: str, fix: str, *, row=None, column=None, value=None) -> ValidationError:
    return ValidationError([Problem(file, row, column, value, message, fix)])


def read_table(data: bytes, file_name: str, *, max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES,
               max_columns: int = DEFAULT_MAX_COLUMNS, max_members: int = DEFAULT_MAX_MEMBERS,
               max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES) -> RawTable:
    """Parse one uploaded file (bytes) into a :class:`RawTable`.

    The keyword options raise or lower the limits described in the module docstring; exceeding one
    raises :class:`LimitError`.

    Examples
    --------
    >>> t = read_table(b"session_id,role,message\\n1,user,hi\\n", "chat.csv")
    >>> t.format, list(t.frame.columns), t.frame.iloc[0].tolist()
    ('csv', ['session_id', 'role', 'message'], ['1', 'user', 'hi'])
    >>> read_table(b"a,b,c,d\\n1,2,3,4\\n", "wide.csv", max_columns=3)
    Traceback (most recent call last):
    ...
    metrics.io.readers.LimitError: 1 problem(s): wide.csv: the header has 4 columns, more than the 3 allowed. ...
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"read_table expects bytes, got {type(data).__name__}")
    limits = _Limits(int(max_columns), int(max_members), int(max_field_bytes))
    return _read(bytes(data), file_name or "upload", limits, _Budget(max_expanded_bytes), 0)


def _read(data: bytes, name: str, limits: _Limits, budget: _Budget, depth: int) -> RawTable:
    """Read one file or archive member; ``depth`` is the number of archives already opened around it."""
    lower = name.lower()
    gz = lower.endswith(".gz") or data[:2] == b"\x1f\x8b"
    if gz or lower.endswith(".zip") or data[:4] == b"PK\x03\x04":
        if depth >= MAX_ARCHIVE_DEPTH:
            raise LimitError(Problem(name, None, None, None, f"archives are nested more than {MAX_ARCHIVE_DEPTH} "
                                     "levels deep (an archive inside an archive inside an archive ...)",
                                     "unpack the archive and upload the export inside it"),
                             option=None, limit=MAX_ARCHIVE_DEPTH)
        if not gz:
            return _read_zip(data, name, limits, budget, depth)
        inner = _gunzip(data, name, budget)
        table = _read(inner, name[:-3] if lower.endswith(".gz") else name + ".unzipped", limits, budget, depth + 1)
        table.file = name
        table.format += "+gz"
        return table
    if _NON_SPACE.search(data) is None:
        raise _fail(name, "the file is empty", "export the transcripts again; the file has no content")
    text_kind = _sniff_kind(data, lower)
    if text_kind in ("json", "jsonl"):
        return _read_json_bytes(data, name, text_kind, limits)
    return _read_delimited(data, name, tsv=lower.endswith(".tsv"), limits=limits)


def decode_bytes(data: bytes, file_name: str) -> tuple[str, str]:
    """Decode text trying UTF-8 (with or without BOM), UTF-16, then cp1252.

    Returns ``(text, encoding)``. Raises ValidationError when none fits. (The table reader itself
    decides per file and reports bad bytes per row; this whole-file helper serves the adapters.)
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
        raise _unknown_encoding(data, file_name, exc.start, first_bad) from None


def _unknown_encoding(data: bytes, file_name: str, bad: int, first_bad: int) -> ValidationError:
    return _fail(file_name, f"unknown text encoding: byte 0x{data[bad]:02x} at offset {bad} is neither UTF-8 "
                 f"(first invalid byte at offset {first_bad}) nor Windows-1252",
                 "re-export or re-save the file as UTF-8")


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


# --------------------------------------------------------------------------- archives

def _gunzip(data: bytes, name: str, budget: _Budget) -> bytes:
    """Every member of a gzip file (``cat a.gz b.gz``), decompressed a chunk at a time against the budget."""
    before = budget.used
    out: list[bytes] = []
    rest = data
    try:
        while True:
            d = zlib.decompressobj(wbits=31)
            pending = rest
            while not d.eof:
                piece = d.decompress(pending, max(1, min(_CHUNK, budget.left + 1)))
                if piece:
                    budget.spend(len(piece), name, "the gzip file", before)
                    out.append(piece)
                elif not d.unconsumed_tail or len(d.unconsumed_tail) == len(pending):
                    break  # the input ended before the stream did
                pending = d.unconsumed_tail
            if not d.eof:
                raise _fail(name, "the gzip file is truncated", "download or compress the export again")
            rest = d.unused_data.lstrip(b"\x00")
            if not rest:
                return b"".join(out)
    except zlib.error as exc:
        raise _fail(name, f"the file is not valid gzip ({exc})",
                    "upload the uncompressed file, or compress it again with gzip") from None


def zip_entry_count(data: bytes) -> int | None:
    """How many entries a zip's end-of-central-directory record declares (None when it cannot be read).

    Read before :class:`zipfile.ZipFile` builds an object per entry, so that a zip of a million
    tiny entries is refused in microseconds (compare it with :data:`MAX_ZIP_ENTRIES`).

    Examples
    --------
    >>> buf = io.BytesIO()
    >>> with zipfile.ZipFile(buf, "w") as z:
    ...     for i in range(3):
    ...         z.writestr(f"{i}.csv", "a\\n1\\n")
    >>> zip_entry_count(buf.getvalue())
    3
    """
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535))
    if end < 0 or len(data) < end + 22:
        return None
    entries = struct.unpack_from("<H", data, end + 10)[0]
    if entries != 0xFFFF:
        return entries
    locator = data.rfind(b"PK\x06\x07", max(0, end - 20), end)  # zip64: the count is in the zip64 end record
    if locator < 0 or len(data) < locator + 16:
        return None
    record = struct.unpack_from("<Q", data, locator + 8)[0]
    if data[record:record + 4] != b"PK\x06\x06" or len(data) < record + 40:
        return None
    return struct.unpack_from("<Q", data, record + 32)[0]


def _too_many_entries(name: str, entries: int, cap: int) -> LimitError:
    return LimitError(Problem(name, None, None, None, f"the zip has {entries:,} entries; at most {cap:,} are examined",
                              "zip only the export's files"), option=None, limit=cap)


def _unzip_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, name: str, budget: _Budget) -> bytes:
    before = budget.used
    out: list[bytes] = []
    try:
        with archive.open(member) as fh:
            while True:
                piece = fh.read(max(1, min(_CHUNK, budget.left + 1)))
                if not piece:
                    return b"".join(out)
                budget.spend(len(piece), f"{name}:{member.filename}", "the zip", before)
                out.append(piece)
    except (zipfile.BadZipFile, zlib.error, RuntimeError, ValueError, OSError, EOFError,
            NotImplementedError) as exc:
        raise _fail(name, f"the archive member {member.filename!r} cannot be read ({exc})",
                    "zip the export again, without a password") from None


def _read_zip(data: bytes, name: str, limits: _Limits, budget: _Budget, depth: int) -> RawTable:
    cap = max(MAX_ZIP_ENTRIES, limits.members)
    entries = zip_entry_count(data)
    if entries is not None and entries > cap:
        raise _too_many_entries(name, entries, cap)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError,
            struct.error) as exc:
        raise _fail(name, f"the file is not a valid zip archive ({exc})", "zip the export again") from None
    if len(infos) > cap:  # the end record did not say (or lied)
        raise _too_many_entries(name, len(infos), cap)
    members = [i for i in infos if not i.is_dir() and not i.filename.startswith("__MACOSX")]
    tables = [m for m in members if m.filename.lower().endswith(_TABLE_EXT + tuple(e + ".gz" for e in _TABLE_EXT))]
    if not tables:
        found = ", ".join(m.filename for m in members[:10]) or "nothing"
        raise _fail(name, f"the zip holds no CSV, TSV, JSON or JSONL file (found: {found})",
                    "put the transcript export itself in the archive")
    if len(tables) > limits.members:
        raise LimitError(Problem(name, None, None, None, f"the zip holds {len(tables):,} table files, more than the "
                                 f"{limits.members:,} allowed", "combine the files into fewer, larger ones before "
                                 "zipping"), option="max_members", limit=limits.members)
    declared = sum(m.file_size for m in tables)
    if declared > budget.left:
        left = "" if budget.used == 0 else f" {budget.left:,} left of the"
        raise LimitError(Problem(name, None, None, None, f"the zip expands to {declared:,} bytes, more than the{left} "
                                 f"{budget.limit:,} allowed", _EXPANDED_FIX.format(limit=budget.limit)),
                         option="max_expanded_bytes", limit=budget.limit)
    parts, notices, problems = [], [], []
    for member in tables:
        content = _unzip_member(archive, member, name, budget)
        part = _read(content, f"{name}:{member.filename}", limits, budget, depth + 1)
        del content
        part.frame = part.frame.assign(**{"__source_file": member.filename})
        parts.append(part)
        notices.extend(part.notices)
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
    for part in parts:  # rows (and the problems' rows) are numbered across the archive's files
        r = part.rows if part.rows is not None else pd.Series(range(1, len(part.frame) + 1))
        rows.append(r.reset_index(drop=True) + offset)
        problems.extend(p if p.row is None or not offset else replace(p, row=p.row + offset) for p in part.problems)
        offset += max([int(r.max()) if len(r) else 0] + [p.row for p in part.problems if p.row is not None])
    frame = pd.concat([p.frame for p in parts], ignore_index=True, sort=False)
    if len(parts) == 1:
        frame = frame.drop(columns="__source_file")
    if len(parts) > 1:
        notices.append(f"{name}: rows are numbered across the archive's files in the order listed.")
    label = parts[0].file if len(parts) == 1 else name
    return RawTable(frame.astype("str").where(frame.notna(), None).astype("str") if len(frame.columns) else frame,
                    label, "+".join(sorted({p.format for p in parts})) + "+zip", notices, problems,
                    pd.concat(rows, ignore_index=True), parts[0].header if len(parts) == 1 else None)


# --------------------------------------------------------------------------- text encodings

@dataclass
class _Decoded:
    """A file's text, as UTF-8 bytes ready for the parsers."""

    utf8: bytes
    encoding: str
    #: The original bytes (byte offsets in problems refer to them).
    source: bytes
    #: Set when the file is UTF-8 with some invalid sequences: each was replaced by ``marker + offset + _CLOSE``.
    marker: str | None = None
    #: Invalid UTF-8 sequences in the file, and the offset of the first.
    invalid: int = 0
    first_invalid: int | None = None


#: Invalid sequences become ``opener + <byte offset> + _CLOSE``: Unicode noncharacters, which no export
#: should hold; the first opening character absent from the file is used.
_OPENERS = ("\ufdd0", "\ufdd2", "\ufdd4", "\ufdd6")
_CLOSE = "\ufdd1"
#: Locating invalid sequences stops after this many when the file may well not be UTF-8 at all (then a
#: C-speed count decides first, so a cp1252 file never costs a Python call per accented letter).
_LOCATE_FIRST = 10_000
_STEP = 8 << 20
_LOCATING = threading.local()


class _TooMany(Exception):
    pass


def _record_invalid(exc: UnicodeDecodeError):
    found = _LOCATING.found
    found.append((_LOCATING.base + exc.start, _LOCATING.base + exc.end))
    if len(found) > _LOCATING.cap:
        raise _TooMany
    return "", exc.end


codecs.register_error("chatlens-locate-invalid-utf8", _record_invalid)


def _locate_invalid(data: bytes, start: int, cap: float) -> tuple[list[tuple[int, int]], int, bool]:
    """``(byte ranges of invalid UTF-8 sequences, valid non-ASCII characters, complete)`` of ``data[start:]``.

    One decoding pass in 8 MiB steps (the text itself is dropped at once); stops early, incomplete,
    after ``cap`` invalid sequences.

    Examples
    --------
    >>> _locate_invalid("café ☕ ".encode() + b"\\xff!", 0, 10)
    ([(10, 11)], 2, True)
    """
    _LOCATING.found, _LOCATING.cap = [], cap
    view = memoryview(data)
    chars, pos = 0, start
    try:
        while pos < len(data):
            _LOCATING.base = pos
            text, used = codecs.utf_8_decode(view[pos:pos + _STEP], "chatlens-locate-invalid-utf8",
                                             pos + _STEP >= len(data))
            chars += len(text)
            pos += used  # a character cut by the step's end is decoded with the next step
    except _TooMany:
        return _LOCATING.found, 0, False
    finally:
        found, _LOCATING.found = _LOCATING.found, None
    ascii_bytes = len(data) - start - len(data[start:].translate(None, _ASCII))
    return found, chars - ascii_bytes, True


def _decode(data: bytes, name: str) -> _Decoded:
    """Decode as described in the module docstring; UTF-8 input that decodes is returned as is (no copy)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or data[:4096].count(b"\x00") > len(data[:4096]) // 4:
        text, encoding = decode_bytes(data, name)
        if encoding.startswith("utf-16"):
            return _Decoded(text.encode("utf-8"), encoding, data)
    bom = data.startswith(b"\xef\xbb\xbf")  # the mark says UTF-8: bad bytes can only be damage
    start = 3 if bom else 0
    utf8 = data[start:] if bom else data
    try:
        utf8.decode("utf-8")
        return _Decoded(utf8, "utf-8-sig" if bom else "utf-8", data)
    except UnicodeDecodeError:
        pass
    found, valid, complete = _locate_invalid(data, start, math.inf if bom else _LOCATE_FIRST)
    first_bad = found[0][0]
    if not complete:
        invalid, valid = _utf8_evidence(data)
        if valid > invalid:
            found, valid, complete = _locate_invalid(data, start, math.inf)
    if bom or valid > len(found):
        return _marked(data, name, start, found, "utf-8-sig" if bom else "utf-8")
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise _unknown_encoding(data, name, exc.start, first_bad) from None
    invalid = len(found) if complete else invalid
    return _Decoded(text.encode("utf-8"), "cp1252", data, invalid=invalid, first_invalid=first_bad)


def _utf8_evidence(data: bytes) -> tuple[int, int]:
    """``(invalid sequences, valid non-ASCII characters)`` of ``data`` read as UTF-8, at C speed in 8 MiB steps.

    Examples
    --------
    >>> _utf8_evidence("café ☕ ".encode() + b"\\xff")
    (1, 2)
    >>> _utf8_evidence("caf\\u00e9 na\\u00efve".encode("cp1252"))
    (2, 0)
    """
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    view = memoryview(data)
    chars = replaced = 0
    for start in range(0, len(data), _STEP):
        text = decoder.decode(view[start:start + _STEP], final=start + _STEP >= len(data))
        chars += len(text)
        replaced += text.count("\ufffd")
    invalid = replaced - data.count("\ufffd".encode())
    ascii_bytes = len(data) - len(data.translate(None, _ASCII))
    return invalid, chars - ascii_bytes - invalid


def _marked(data: bytes, name: str, start: int, found: list[tuple[int, int]], encoding: str) -> _Decoded:
    """``data[start:]`` with each invalid sequence (``found``) replaced by a marker holding its byte offset."""
    opener = next((o for o in _OPENERS if o.encode() not in data), None)
    if opener is None:  # a file holding every marker character: none is free, so refuse it whole
        raise _fail(name, f"byte 0x{data[found[0][0]]:02x} at offset {found[0][0]} is not valid UTF-8",
                    "re-save the file as UTF-8")
    view = memoryview(data)
    parts, pos = [], start
    for begin, end in found:
        parts += [view[pos:begin], f"{opener}{begin}{_CLOSE}".encode()]
        pos = end
    parts.append(view[pos:])
    return _Decoded(b"".join(parts), encoding, data, opener, len(found), found[0][0])


def _encoding_notices(decoded: _Decoded, name: str) -> list[str]:
    if decoded.encoding == "cp1252":
        return [f"{name}: not valid UTF-8; read as Windows-1252 (cp1252). Check accented characters "
                f"({decoded.invalid:,} byte sequence(s) are not UTF-8, the first at byte offset "
                f"{decoded.first_invalid:,}, and fewer characters than that are valid UTF-8)."]
    if decoded.encoding.startswith("utf-16"):
        return [f"{name}: read as {decoded.encoding.upper()}."]
    return []


def _marker_pattern(decoded: _Decoded) -> re.Pattern:
    return re.compile(re.escape(decoded.marker) + r"(\d+)" + _CLOSE)


def _drop_undecodable_rows(table: RawTable, decoded: _Decoded) -> None:
    """Move the records holding invalid UTF-8 (markers) out of ``table.frame`` into ``table.problems``."""
    pattern = _marker_pattern(decoded)
    frame = table.frame

    def shown(text: str) -> str:
        return pattern.sub("\ufffd", text)

    renamed = {c: shown(c) for c in frame.columns if decoded.marker in str(c)}
    if renamed:
        offsets = [int(m.group(1)) for c in renamed for m in pattern.finditer(c)]
        table.notices.append(f"{table.file}: the header holds {len(offsets)} byte(s) that are not UTF-8 (the first "
                             f"at byte offset {offsets[0]:,}); shown as \ufffd in column names.")
        frame = frame.rename(columns=renamed)
        if table.header is not None:
            table.header = [shown(h) for h in table.header]
    rows = table.rows if table.rows is not None else pd.Series(range(1, len(frame) + 1), dtype="int64")
    hit = np.zeros(len(frame), dtype=bool)
    first_column: dict[int, str] = {}
    left = decoded.invalid - sum(c.count(decoded.marker) for c in renamed)
    for col in frame.columns:  # column by column, until every marker is found
        if left <= 0:
            break
        found = frame[col].str.contains(decoded.marker, regex=False, na=False).to_numpy(dtype=bool)
        for i in np.flatnonzero(found):
            first_column.setdefault(int(i), col)
            left -= str(frame[col].iloc[i]).count(decoded.marker)
        hit |= found
    problems = []
    for i in np.flatnonzero(hit):
        col = first_column[int(i)]
        cell = str(frame[col].iloc[i])
        offset = int(pattern.search(cell).group(1))
        problems.append(Problem(table.file, int(rows.iloc[i]), str(col), shown(cell)[:200],
                                f"byte 0x{decoded.source[offset]:02x} at offset {offset:,} is not valid UTF-8, unlike "
                                "the rest of the file", "correct this row's text and save the file as UTF-8; "
                                "skipping bad rows loads the others"))
    if problems:
        keep = ~hit
        frame = filter_rows(frame, keep).reset_index(drop=True)
        rows = rows[keep].reset_index(drop=True)
        table.problems = sorted(table.problems + problems, key=lambda p: (p.row is None, p.row or 0))
    table.frame, table.rows = frame, rows


def _finish(table: RawTable, decoded: _Decoded | None, limits: _Limits) -> RawTable:
    """Checks every format shares once the frame exists: columns, bad bytes per row, cell sizes."""
    if len(table.frame.columns) > limits.columns:  # the header line check missed it (a header spanning lines)
        raise _too_many_columns(table.file, len(table.frame.columns), limits.columns, "the file has")
    if decoded is not None and decoded.marker is not None:
        _drop_undecodable_rows(table, decoded)
    _check_cell_sizes(table, limits.field_bytes)
    return table


def _too_many_columns(name: str, n: int, limit: int, what: str) -> LimitError:
    return LimitError(Problem(name, None, None, None, f"{what} {n:,} columns, more than the {limit:,} allowed",
                              "export only the columns you need (conversation, speaker, text, time ...)"),
                      option="max_columns", limit=limit)


def _check_cell_sizes(table: RawTable, limit: int) -> None:
    """Refuse a cell of more than ``limit`` bytes (UTF-8), naming its row and column.

    Per Arrow chunk, the bytes of all its cells together are read off the offsets first: only a
    chunk holding more than ``limit`` bytes in all is looked at cell by cell.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    frame = table.frame
    for col in frame.columns:
        try:
            values = pa.array(frame[col])
        except (pa.ArrowException, TypeError, ValueError):  # not a text column: nothing to measure
            continue
        if values.nbytes <= limit:  # offsets, validity and text together: no cell can be larger
            continue
        chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
        seen = 0
        for chunk in chunks:
            n = len(chunk)
            if chunk.nbytes > limit and (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
                width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
                offsets = np.frombuffer(chunk.buffers()[1], dtype=width)[chunk.offset:chunk.offset + n + 1]
                if int(offsets[-1]) - int(offsets[0]) > limit:
                    sizes = pc.fill_null(pc.binary_length(chunk), 0).to_numpy()
                    over = np.flatnonzero(sizes > limit)
                    if len(over):
                        i = seen + int(over[0])
                        row = int(table.rows.iloc[i]) if table.rows is not None else i + 1
                        cell = str(frame[col].iloc[i])
                        raise LimitError(Problem(table.file, row, str(col), cell[:60] + "...",
                                                 f"a cell holds {int(sizes[over[0]]):,} bytes, more than the "
                                                 f"{limit:,} allowed", "check for a quote that is opened in this cell "
                                                 "and never closed; a message may hold at most "
                                                 f"{limit:,} bytes"), option="max_field_bytes", limit=limit)
            seen += n


# --------------------------------------------------------------------------- delimited text

def _first_line_end(data: bytes) -> int:
    newline = data.find(b"\n")
    end = len(data) if newline < 0 else newline
    cr = data.find(b"\r", 0, end)  # a file with bare CR line ends (never scanned past the first line)
    return end if cr < 0 else cr


def _separator(utf8: bytes, tsv: bool) -> tuple[str, str]:
    """``(separator, format)`` from the header line: tabs, semicolons or commas, whichever it has most of."""
    first = re.split(r"\r\n|\r|\n", utf8[:65536].decode("utf-8", errors="replace"), maxsplit=1)[0]
    if tsv or first.count("\t") > max(first.count(","), first.count(";")):
        return "\t", "tsv"
    if first.count(";") > first.count(","):
        return ";", "csv"
    return ",", "csv"


def _check_header_width(utf8: bytes, name: str, sep: str, limit: int) -> None:
    """Count the header line's fields before anything parses the file (quotes respected when present)."""
    end = _first_line_end(utf8)
    n = utf8.count(sep.encode(), 0, end) + 1
    if n <= limit:
        return
    if b'"' in utf8[:end]:  # separators inside quotes do not count
        try:
            n = len(next(csv.reader([utf8[:end].decode("utf-8", "replace")], delimiter=sep)))
        except csv.Error:
            pass
    if n > limit:
        raise _too_many_columns(name, n, limit, "the header has")


def _read_delimited(data: bytes, name: str, *, tsv: bool, limits: _Limits) -> RawTable:
    decoded = None  # set once the bytes had to be decoded here (BOM, UTF-16, NUL bytes, invalid UTF-8)
    if data.startswith(_BOMS) or b"\x00" in data[:4096]:
        decoded = _decode(data, name)
    utf8 = data if decoded is None else decoded.utf8
    sep, fmt = _separator(utf8, tsv)
    _check_header_width(utf8, name, sep, limits.columns)
    frame = None
    fast = b"\x00" not in utf8[:4096] and utf8.count(b'"') % 2 == 0
    if fast:  # pyarrow validates UTF-8 itself, so a clean file is never decoded here
        frame, bad_utf8 = _read_fast(utf8, sep)
    if frame is None and decoded is None:
        if not (fast and bad_utf8):  # the careful parser needs valid UTF-8 too
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                bad_utf8 = True
            else:
                bad_utf8 = False
        if bad_utf8:  # locate the bad bytes, or read the whole file as cp1252 when it is not UTF-8 at all
            decoded = _decode(data, name)
            utf8 = decoded.utf8
            if fast:
                frame, _ = _read_fast(utf8, sep)
    first = re.split(r"\r\n|\r|\n", utf8[:65536].decode("utf-8", errors="replace"), maxsplit=1)[0]
    try:
        header = next(csv.reader([first.lstrip("\ufeff")], delimiter=sep))
    except csv.Error:
        header = first.split(sep)
    notices = [] if decoded is None else _encoding_notices(decoded, name)
    if frame is not None:
        if len(frame) == 0:
            raise _fail(name, "the file has a header but no rows", "export a period that contains conversations")
        table = RawTable(frame, name, fmt, notices, [], pd.Series(range(1, len(frame) + 1), dtype="int64"), header)
        return _finish(table, decoded, limits)
    if _first_record_wider(utf8, sep):  # pandas would take its extra fields for an index: read it exactly
        return _finish(_read_records(utf8, name, sep, fmt, notices, header), decoded, limits)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = pd.read_csv(io.BytesIO(utf8), sep=sep, dtype="str", keep_default_na=False, na_values=[""],
                                on_bad_lines="warn", encoding="utf-8", skip_blank_lines=True, low_memory=False,
                                index_col=False)
        except pd.errors.EmptyDataError:
            raise _fail(name, "the file is empty", "export the transcripts again; the file has no content") from None
        except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
            raise _fail(name, f"the file cannot be parsed as {fmt.upper()}: {str(exc).strip()}",
                        "check for an unterminated quote or a broken line near the place named") from None
    if any(str(w.message).startswith("Length of header or names does not match") for w in caught):
        # the first record is wider after all (it did not fit in the look-ahead): pandas cut rows to fit
        return _finish(_read_records(utf8, name, sep, fmt, notices, header), decoded, limits)
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
    return _finish(RawTable(frame, name, fmt, notices, problems, rows, header), decoded, limits)


def _first_record_wider(utf8: bytes, sep: str) -> bool:
    """Whether the first record after the header has more fields than the header (read from the first MiB).

    Examples
    --------
    >>> _first_record_wider(b"a,b,c\\n1,2,3,4\\n5,6,7\\n", ","), _first_record_wider(b'a,b\\n"1,2",3\\n', ",")
    (True, False)
    """
    records = csv.reader(io.StringIO(utf8[:1 << 20].decode("utf-8", "replace"), newline=""), delimiter=sep)
    try:
        header = next(records, None)
        first = next((r for r in records if r), None)
    except csv.Error:
        return False
    return header is not None and first is not None and len(first) > len(header)


def _read_records(utf8: bytes, name: str, sep: str, fmt: str, notices: list[str], header: list[str]) -> RawTable:
    """Read delimited text record by record with the csv module, as the C engine would but for one thing.

    When the first record has more fields than the header, pandas takes the extra leading fields for
    an index (shifting every value of every row by one column, silently) or, told not to, cuts every
    later row of that width to fit. Here such records are problems, as the C engine reports them
    anywhere else; shorter records are padded with missing values, as it does.
    """
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))  # only ever grows: concurrent readers never shrink it
    records = csv.reader(io.StringIO(utf8.decode("utf-8"), newline=""), delimiter=sep)
    try:
        names = next(records)
        width = len(names)
        kept, numbers, problems, number = [], [], [], 0
        for fields in records:
            if not fields:
                continue
            number += 1
            if len(fields) > width:
                problems.append(Problem(name, number, None, None, f"line {number + 1} has {len(fields)} fields but the "
                                        f"header has {width}", "quote the text field (it probably contains the "
                                        "delimiter or a line break)"))
                continue
            kept.append([v if v != "" else None for v in fields] + [None] * (width - len(fields)))
            numbers.append(number)
    except csv.Error as exc:
        raise _fail(name, f"the file cannot be parsed as {fmt.upper()}: {exc} (near line {records.line_num})",
                    "check for an unterminated quote or a broken line near the place named") from None
    if not kept:  # every record was refused: say why, rather than "no rows"
        raise ValidationError(problems) if problems else _fail(name, "the file has a header but no rows",
                                                               "export a period that contains conversations")
    seen: dict[str, int] = {}
    columns = []
    for column in names:  # duplicates renamed as pandas does: a, a.1, a.2
        count = seen.get(column, 0)
        seen[column] = count + 1
        columns.append(column if count == 0 else f"{column}.{count}")
    frame = pd.DataFrame(kept, columns=columns, dtype="str")
    return RawTable(frame, name, fmt, notices, problems, pd.Series(numbers, dtype="int64"), header)


def _read_fast(data: bytes, sep: str) -> tuple[pd.DataFrame | None, bool]:
    """Multithreaded pyarrow parse of a well-formed UTF-8 file: ``(frame or None, failed on invalid UTF-8)``.

    Irregular files (ragged rows, odd quoting, parse errors) go through the C engine, whose
    warnings give the line numbers reported to the user.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = pd.read_csv(io.BytesIO(data), sep=sep, dtype="str", keep_default_na=False, na_values=[""],
                                engine="pyarrow", on_bad_lines="error")
    except UnicodeDecodeError:
        return None, True
    except Exception as exc:  # noqa: BLE001 - any failure means: use the careful parser
        return None, "invalid UTF8" in str(exc)
    if frame.columns.duplicated().any() or any(str(c).startswith("Unnamed") and str(c) != "Unnamed: 0"
                                               for c in frame.columns):
        return None, False
    return frame, False


def _record_numbers(n: int, skipped: list[int]) -> pd.Series:
    """1-based record numbers of the n kept rows, given the skipped record numbers."""
    if not skipped:
        return pd.Series(range(1, n + 1), dtype="int64")
    total = n + len(skipped)
    keep = np.ones(total, dtype=bool)
    for s in skipped:
        if 1 <= s <= total:
            keep[s - 1] = False
    numbers = np.arange(1, total + 1)[keep][:n]
    return pd.Series(numbers, dtype="int64")


# --------------------------------------------------------------------------- JSON

_JSON_DELETE = bytes(b for b in range(256) if b not in b'"[]{}')


def _json_too_deep(utf8: bytes, limit: int) -> bool:
    r"""Whether JSON text nests arrays and objects more than ``limit`` levels deep.

    Strings are skipped (their brackets do not count). Runs over the structural characters alone
    (quotes and brackets, found with bytes methods), with numpy, in steps of 4M of them: linear in
    time, bounded in memory, and never recursive.

    Examples
    --------
    >>> _json_too_deep(b'[{"a": [1, "]]]]]", {"b": "\\\\"}]}]', 3)  # depth 4; the string's brackets do not count
    True
    >>> _json_too_deep(b'[{"a": [1, "[[[[[", {"b": "\\\\\\" ["}]}]', 4)  # escaped backslash, then escaped quote
    False
    >>> _json_too_deep(b"[" * 500 + b"]" * 500, 100)
    True
    """
    if b"\\" in utf8:  # escaped backslashes, then escaped quotes, are not string delimiters
        utf8 = utf8.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = utf8.translate(None, _JSON_DELETE)  # quotes and brackets only
    if len(structure) - structure.count(b'"') <= limit:
        return False
    chars = np.frombuffer(structure, dtype=np.uint8)
    depth, inside, step = 0, 0, 1 << 22
    for start in range(0, len(chars), step):
        part = chars[start:start + step]
        quote = part == ord('"')
        quotes_so_far = np.cumsum(quote, dtype=np.int32)
        at = np.flatnonzero(~quote)  # the brackets ...
        brackets = part[at][((quotes_so_far[at] + inside) & 1) == 0]  # ... outside strings
        if len(brackets):
            levels = np.cumsum(np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1)) + depth
            if int(levels.max()) > limit:
                return True
            depth = int(levels[-1])
        inside = (inside + int(quotes_so_far[-1])) & 1
    return False


def _read_json_bytes(data: bytes, name: str, kind: str, limits: _Limits) -> RawTable:
    text = None
    if not data.startswith(_BOMS) and b"\x00" not in data[:4096]:
        try:  # plain UTF-8, the usual case: decoded once
            text = data.decode("utf-8")
            decoded = _Decoded(data, "utf-8", data)
        except UnicodeDecodeError:
            pass
    if text is None:
        decoded = _decode(data, name)
        text = decoded.utf8.decode("utf-8")
    if _json_too_deep(decoded.utf8, MAX_JSON_DEPTH):
        fix = f"export flat messages (one object per message); at most {MAX_JSON_DEPTH} levels of nesting are read"
        if kind != "jsonl":
            raise LimitError(Problem(name, None, None, None, "the JSON is nested too deeply to read", fix),
                             option=None, limit=MAX_JSON_DEPTH)
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.strip() and _json_too_deep(line.encode("utf-8"), MAX_JSON_DEPTH):
                raise LimitError(Problem(name, lineno, None, None, f"line {lineno} is nested too deeply to read", fix),
                                 option=None, limit=MAX_JSON_DEPTH)
    table = _read_json(text, name, kind, limits.columns)
    table.notices[:0] = _encoding_notices(decoded, name)
    return _finish(table, decoded, limits)


def _read_json(text: str, name: str, kind: str, max_columns: int = DEFAULT_MAX_COLUMNS) -> RawTable:
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
        frame, notices = _flatten_records(payload, name, max_columns)
    except RecursionError:
        raise _fail(name, "the JSON is nested too deeply to read",
                    "export flat messages (one object per message)") from None
    if len(frame) == 0:
        raise _fail(name, "the JSON holds no messages", "export a period that contains conversations")
    return RawTable(frame, name, kind, notices, [], pd.Series(range(1, len(frame) + 1), dtype="int64"))


def _flatten_records(payload, name: str, max_columns: int = DEFAULT_MAX_COLUMNS) -> tuple[pd.DataFrame, list[str]]:
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
    keys: set = set()
    for row in rows:  # the frame gets one column per distinct key: count them before building it
        keys.update(row)
        if len(keys) > max_columns:
            raise _too_many_columns(name, len(keys), max_columns, "the records hold more than") from None
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
