"""Streaming a large CSV/TSV export: memory that does not grow with the file.

A file of at least :func:`stream_min_bytes` (``CHATLENS_STREAM_MIN_BYTES``, default 256 MiB) is not read
whole. Instead:

1. **Mapping.** The first MiB is loaded as usual (:func:`metrics.io.loaders.load_bytes`) to detect the
   column mapping, which every later step then uses as an explicit mapping (so no part can map
   differently).
2. **Spill** (:func:`spill`). pyarrow's streaming CSV reader reads the file block by block, every
   column as text. Each record goes to one of ``buckets`` spill files by a hash of its cleaned
   conversation id (the same clean-up the loader applies), so a conversation's messages are always in
   one spill file, in file order. Beside each spill file, the records' numbers in the original file.
3. **Load** (:func:`load_spilled`). Each spill file is loaded with the full loader (validation, test
   traffic, redaction: everything works per conversation, and conversations are whole), and its
   ``row`` numbers and problems are mapped back to the original file's records.

Memory: one block while spilling, one spill file while loading (about ``size / buckets``). A file
whose conversation ids would be made up (no id column) cannot be split by conversation: it is
refused with the fix (map the id column, or split the file).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from metrics.errors import Problem, ValidationError

__all__ = ["stream_min_bytes", "can_stream", "spill", "Spill", "load_spilled", "merge_notices",
           "DEFAULT_BLOCK_BYTES"]

#: Bytes pyarrow reads per block while spilling.
DEFAULT_BLOCK_BYTES = 2 << 20
_DEFAULT_MIN = 256 << 20
_SPILL_BYTES = 24 << 20  # aim for spill files of about this size
_HEAD_BYTES = 1 << 20
_MAX_INVALID = 10_000  # records with the wrong number of fields reported before the file is refused


def stream_min_bytes() -> int:
    """Files at least this large are streamed (``CHATLENS_STREAM_MIN_BYTES``; default 256 MiB)."""
    raw = os.environ.get("CHATLENS_STREAM_MIN_BYTES", "").strip()
    try:
        return max(1, int(raw)) if raw else _DEFAULT_MIN
    except ValueError:
        return _DEFAULT_MIN


def can_stream(path, *, platform: str | None = "auto", min_bytes: int | None = None) -> bool:
    """True for a plain ``.csv``/``.tsv`` file of at least ``min_bytes`` read as a generic table (with
    ``platform="auto"``, its first MiB must not be a native platform export: those are rebuilt whole)."""
    p = Path(path)
    if platform not in (None, "auto", "generic") or p.suffix.lower() not in (".csv", ".tsv"):
        return False
    try:
        if p.stat().st_size < (stream_min_bytes() if min_bytes is None else min_bytes):
            return False
    except OSError:
        return False
    if platform == "auto":
        from metrics.io.loaders import _read_with_platform
        from metrics.io.readers import DEFAULT_MAX_EXPANDED_BYTES

        try:
            _, detected = _read_with_platform(_head(p), p.name, platform="auto",
                                              max_expanded_bytes=DEFAULT_MAX_EXPANDED_BYTES, platform_options={})
        except ValidationError:
            return True  # the streamed load reports the problem with the file's own row numbers
        return detected is None
    return True


@dataclasses.dataclass
class Spill:
    """The spill files of one export: ``parts`` (csv path, record-numbers path) per non-empty bucket."""

    file: str
    mapping: dict[str, str]
    parts: list[tuple[Path, Path]]
    records: int
    folder: tempfile.TemporaryDirectory
    #: Record numbers whose ``message_id`` an earlier record of the file already has (the whole-file load
    #: reports them as "duplicate message id"; parts are loaded one by one, so the spill finds them).
    repeated_ids: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype="int64"))
    #: Record numbers with the wrong number of fields (not spilled; the whole-file load reports them too).
    bad_records: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype="int64"))
    width: int = 0

    def close(self) -> None:
        self.folder.cleanup()


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read(_HEAD_BYTES)
    cut = data.rfind(b"\n")
    return data[:cut + 1] if cut > 0 else data


def _refuse(file: str, message: str, fix: str, *, column: str | None = None) -> ValidationError:
    return ValidationError([Problem(file, None, column, None, message, fix)])


def spill(path, *, mapping: dict[str, str] | None = None, timezone: str = "UTC", buckets: int | None = None,
          block_bytes: int = DEFAULT_BLOCK_BYTES) -> Spill:
    """Split a CSV/TSV export into spill files by conversation (module docstring).

    Raises :class:`~metrics.errors.ValidationError` naming the file when it cannot be streamed (no
    conversation id column, a record pyarrow cannot parse).
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    from metrics.core.facts import shard_of
    from metrics.io.loaders import load_bytes
    from metrics.io.validate import _clean_ids

    p = Path(path)
    probe = load_bytes(_head(p), p.name, mapping=mapping, timezone=timezone, on_error="skip",
                       platform="generic", redact_pii=False)
    chosen = dict(probe.mapping)
    source = chosen.get("conversation_id")
    if source is None or source.endswith("__conversation_index"):
        raise _refuse(p.name, "this file is too large to load at once, and it has no conversation id column to "
                      "split it by", "map the column that holds the conversation id (conversation_id), or split "
                      "the file into parts smaller than the streaming size (CHATLENS_STREAM_MIN_BYTES)")
    size = p.stat().st_size
    n = buckets or max(4, math.ceil(size / _SPILL_BYTES))
    delimiter = "\t" if p.suffix.lower() == ".tsv" else ","
    folder = tempfile.TemporaryDirectory(prefix="chatlens-spill-")
    root = Path(folder.name)
    writers: dict[int, tuple] = {}
    records = 0
    id_source = chosen.get("message_id")
    id_hashes: list[np.ndarray] = []
    id_records: list[np.ndarray] = []
    try:
        invalid: list[int] = []  # record numbers (header = 0) of records with the wrong number of fields

        def bad_record(row) -> str:
            if len(invalid) < _MAX_INVALID:
                invalid.append(int(row.number) - 1 if row.number is not None else -1)
                return "skip"
            return "error"

        reader = pcsv.open_csv(
            p, read_options=pcsv.ReadOptions(block_size=block_bytes, use_threads=False),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                            invalid_row_handler=bad_record),
            convert_options=pcsv.ConvertOptions(strings_can_be_null=False, quoted_strings_can_be_null=False,
                                                column_types=None, auto_dict_encode=False))
        names = reader.schema.names
        if len(set(names)) != len(names):
            raise _refuse(p.name, "the header repeats a column name", "give every column its own name")
        if source not in names:
            raise _refuse(p.name, f"the conversation id column {source!r} is not in the header",
                          "check the file's header and the --map options", column=source)
        schema = pa.schema([pa.field(c, pa.string()) for c in names])
        for batch in reader:
            table = pa.Table.from_batches([batch]).cast(schema)
            ids = pd.Series(table.column(source).to_pandas(), dtype="str")
            cleaned = _clean_ids(ids, "conversation_id", source, [])
            bucket = shard_of(cleaned.fillna(""), n)
            numbers, records = _record_numbers(records, table.num_rows, invalid)
            if id_source in names:
                mids = _clean_ids(pd.Series(table.column(id_source).to_pandas(), dtype="str"), "message_id",
                                  id_source, [])
                present = (mids.notna() & mids.ne("")).to_numpy(dtype=bool)
                id_hashes.append(pd.util.hash_array(mids[present].to_numpy(dtype=object), categorize=False))
                id_records.append(numbers[present])
            order = np.argsort(bucket, kind="stable")
            sorted_b = bucket[order]
            cuts = np.flatnonzero(np.r_[True, sorted_b[1:] != sorted_b[:-1]]) if len(order) else []
            for i, start in enumerate(cuts):
                end = cuts[i + 1] if i + 1 < len(cuts) else len(order)
                b = int(sorted_b[start])
                rows = order[start:end]
                if b not in writers:
                    csv_path, rec_path = root / f"part-{b:04d}.csv", root / f"part-{b:04d}.rows"
                    sink = pa.OSFile(str(csv_path), "wb")
                    writer = pcsv.CSVWriter(sink, schema, write_options=pcsv.WriteOptions(delimiter=","))
                    writers[b] = (csv_path, rec_path, sink, writer, open(rec_path, "ab"))
                _, _, _, writer, rec = writers[b]
                writer.write_table(table.take(pa.array(rows)))
                numbers[rows].tofile(rec)
    except pa.ArrowInvalid as exc:
        for _, _, sink, writer, rec in writers.values():
            rec.close()
        folder.cleanup()
        raise _refuse(p.name, f"the file could not be read as a table ({str(exc).splitlines()[0][:200]})",
                      "check that it is UTF-8 CSV with one header line, or split it into parts smaller than "
                      "the streaming size (CHATLENS_STREAM_MIN_BYTES) to get row-by-row problems") from None
    except BaseException:
        for _, _, sink, writer, rec in writers.values():
            rec.close()
        folder.cleanup()
        raise
    parts = []
    for b in sorted(writers):
        csv_path, rec_path, sink, writer, rec = writers[b]
        writer.close()
        sink.close()
        rec.close()
        parts.append((csv_path, rec_path))
    # the spill files hold every column under its own name: map by name from now on
    explicit = {canon: src for canon, src in chosen.items() if src in names}
    return Spill(file=p.name, mapping=explicit, parts=parts, records=records, folder=folder,
                 repeated_ids=_repeats(id_hashes, id_records),
                 bad_records=np.array(sorted(r for r in invalid if r > 0), dtype="int64"), width=len(names))


def _record_numbers(last: int, count: int, invalid: list[int]) -> tuple[np.ndarray, int]:
    """The record numbers of the next ``count`` parsed records after record ``last``, skipping the records
    the reader refused (they have numbers in the file but no row in the batch)."""
    skip = {r for r in invalid if r > last}
    numbers = np.empty(count, dtype="int64")
    n, r = 0, last
    while n < count:
        r += 1
        if r not in skip:
            numbers[n] = r
            n += 1
    return numbers, r


def _repeats(hashes: list[np.ndarray], records: list[np.ndarray]) -> np.ndarray:
    """Records whose id hash an earlier record has (64-bit SipHash of the cleaned id: 8 bytes per message)."""
    if not hashes:
        return np.zeros(0, dtype="int64")
    h, r = np.concatenate(hashes), np.concatenate(records)
    order = np.lexsort((r, h))
    h, r = h[order], r[order]
    later = np.r_[False, h[1:] == h[:-1]]
    return np.sort(r[later])


def load_spilled(spilled: Spill, part: tuple[Path, Path], **load_options):
    """One spill file through the full loader, with rows and problems renumbered as in the original file."""
    from metrics.io.loaders import load_bytes

    csv_path, rec_path = part
    numbers = np.fromfile(rec_path, dtype="int64")

    def original(row):
        if row is None or (isinstance(row, float) and math.isnan(row)):
            return None
        row = int(row)
        return int(numbers[row - 1]) if 1 <= row <= len(numbers) else row

    options = dict(load_options)
    options.update(mapping=spilled.mapping, platform="generic")
    repeated = spilled.repeated_ids
    if (len(repeated) or len(spilled.bad_records)) and options.get("on_error", "refuse") == "refuse":
        raise _record_errors(spilled)
    try:
        result = load_bytes(csv_path.read_bytes(), spilled.file, **options)
    except ValidationError as exc:
        problems = [dataclasses.replace(p, row=original(p.row)) for p in exc.problems]
        raise ValidationError(sorted(problems, key=lambda p: (p.row is None, p.row or 0)), total=exc.total) from None
    frame = result.frame
    skipped = result.skipped
    if len(skipped):
        skipped = skipped.assign(row=[original(r) for r in skipped["row"]])
    skipped_rows = result.skipped_rows
    notices = list(result.notices)
    if len(frame):
        frame["row"] = numbers[frame["row"].to_numpy(dtype="int64") - 1]
        if len(repeated):  # --skip-bad-rows: a repeat of an id seen in another part is skipped like any repeat
            dup = np.isin(frame["row"].to_numpy(dtype="int64"), repeated)
            if dup.any():
                rows = frame["row"].to_numpy(dtype="int64")[dup]
                frame = frame[~dup].reset_index(drop=True)
                extra = pd.DataFrame({"file": spilled.file, "row": rows, "column": spilled.mapping.get("message_id"),
                                      "value": None, "message": "duplicate message id",
                                      "fix": "give every message a unique id, or remove the repeated row"})
                skipped = pd.concat([skipped, extra], ignore_index=True) if len(skipped) else extra
                skipped_rows += int(dup.sum())
                notices = [n for n in notices if not (n.startswith("Skipped ") and "with problems" in n)]
                notices.append(f"Skipped {skipped_rows} row(s) with problems; download the list to see why.")
    return dataclasses.replace(result, frame=frame, skipped=skipped, skipped_rows=skipped_rows, notices=notices,
                               file=spilled.file)


def bad_record_problems(spilled: Spill) -> list[Problem]:
    """The records the spill could not split into fields, as the loader words them."""
    return [Problem(spilled.file, int(r), None, None, f"the record does not have {spilled.width} fields",
                    "quote fields that contain the separator, or remove the record") for r in spilled.bad_records]


def _record_errors(spilled: Spill) -> ValidationError:
    column = spilled.mapping.get("message_id")
    problems = bad_record_problems(spilled) + [
        Problem(spilled.file, int(r), column, None, "duplicate message id",
                "give every message a unique id, or remove the repeated row") for r in spilled.repeated_ids]
    problems.sort(key=lambda p: p.row)
    return ValidationError(problems[:1000], total=len(problems))


_NUMBER = re.compile(r"(?<![\w.:'-])\d{1,3}(?:,\d{3})*(?![\w.:'%-])|(?<![\w.:'-])\d+(?![\w.:'%-])")


def merge_notices(per_part: list[list[str]]) -> list[str]:
    """The notices of several parts as one list (first occurrence order).

    A sentence that every part says word for word is about the file (the columns it ignored, the mapping):
    it is kept once. Otherwise the same sentence with different counts becomes one sentence with the
    counts added up (rows skipped, conversations excluded, e-mails masked, ...).

    >>> merge_notices([["Ignored 1 column(s): x", "Skipped 2 row(s)."], ["Ignored 1 column(s): x", "Skipped 1,000 row(s)."],
    ...                ["Ignored 1 column(s): x", "Masked 1 e-mail."]])
    ['Ignored 1 column(s): x', 'Skipped 1,002 row(s).', 'Masked 1 e-mail.']
    """
    every = set(per_part[0]) if per_part else set()
    for notices in per_part[1:]:
        every &= set(notices)
    merged: dict[str, list[int] | None] = {}
    for notices in per_part:
        for notice in dict.fromkeys(notices):
            if notice in every and len(per_part) > 1:
                merged.setdefault("\x01" + notice, None)
                continue
            values = [int(n.replace(",", "")) for n in _NUMBER.findall(notice)]
            template = _NUMBER.sub("\x00", notice)
            if template not in merged:
                merged[template] = values
            elif merged[template] is not None and len(merged[template]) == len(values):
                merged[template] = [a + b for a, b in zip(merged[template], values)]
    out = []
    for template, values in merged.items():
        if template.startswith("\x01"):
            out.append(template[1:])
            continue
        pieces = template.split("\x00")
        text = pieces[0]
        for value, rest in zip(values or [], pieces[1:]):
            text += f"{value:,}" + rest
        out.append(text)
    return out
