"""The store commands: ``ingest`` (add an export to a stored dataset) and ``export`` (write a stored dataset out).

``python -m metrics ingest PATH [--db DB] --dataset NAME [--skip-bad-rows] [--map ...] [--platform ...]
[--format json|text]`` reads, validates and redacts ``PATH`` exactly as the Data page does, then adds its
messages to the dataset ``NAME`` (created if new) in one transaction. It prints ``dataset_id``, ``new``,
``duplicates``, ``skipped``, ``messages``, ``conversations`` (the dataset's totals after the load), ``file``
and ``notices``. Exit status 0 on success, 2 on bad input or a store error (one line naming the file, row,
column and fix; nothing is saved).

``python -m metrics export [--db DB] --dataset NAME --what messages|conversations --format csv|jsonl
[--out FILE]`` writes one row per message (the store's masked text) or per conversation (the rollup,
:func:`metrics.core.rollup.conversation_rollup`). CSV cells a spreadsheet would run as formulas are escaped
(:func:`metrics.io.export.to_csv_bytes`). Without ``--out`` it writes to standard output.

``--db`` defaults to ``CHATLENS_DB``, else ``~/.chatlens/chatlens.db`` (:func:`metrics.store.default_db_path`).
"""

from __future__ import annotations

import json
import sys

__all__ = ["add_parser", "run_ingest", "run_export", "ingest", "ingest_streaming", "IngestResult", "stored_result"]

from dataclasses import asdict, dataclass, field

from metrics.errors import Problem, ValidationError


@dataclass(frozen=True)
class IngestResult:
    """What one ``ingest`` did: the load's counts and the dataset's totals after it."""

    dataset_id: int
    dataset: str
    file: str
    new: int
    duplicates: int
    skipped: int
    messages: int
    conversations: int
    version: int
    notices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def ingest(db, load, *, dataset: str) -> IngestResult:
    """Save a :class:`~metrics.io.loaders.LoadResult` into ``dataset`` and report the counts.

    Examples
    --------
    >>> from metrics import store
    >>> from metrics.io.loaders import load_bytes
    >>> db = store.connect(":memory:")
    >>> data = b"conversation_id,speaker,text\\nc1,user,yes\\nc1,user,yes\\n"
    >>> r = ingest(db, load_bytes(data, "a.csv"), dataset="demo")
    >>> (r.new, r.duplicates, r.messages, r.conversations)
    (2, 0, 2, 1)
    >>> ingest(db, load_bytes(data, "a.csv"), dataset="demo").duplicates
    2
    >>> db.close()
    """
    from metrics import store

    saved = store.save_messages(db, load.frame, dataset_name=dataset, source_format=load.format,
                                file_name=load.file, skipped_rows=load.skipped_rows)
    info = store.get_dataset(db, saved.dataset_id)
    return IngestResult(dataset_id=info.id, dataset=info.name, file=load.file, new=saved.new_rows,
                        duplicates=saved.duplicate_rows, skipped=int(load.skipped_rows),
                        messages=info.message_count, conversations=info.conversation_count, version=info.version,
                        notices=list(load.notices))


def ingest_streaming(db, path, *, dataset: str, progress=None, **load_options) -> IngestResult:
    """Ingest a large CSV/TSV without reading it whole (:mod:`metrics.io.stream`): spill it by
    conversation, then load and save each spill file. Every part is saved in one ``BEGIN IMMEDIATE``
    transaction, so a bad row or a crash leaves the store as it was. ``progress(done, total)`` is
    called after each part. Memory: one spill file (about 48 MB of CSV) at a time.
    """
    from metrics import store
    from metrics.io import stream

    spilled = stream.spill(path, mapping=load_options.pop("mapping", None),
                           timezone=load_options.get("timezone", "UTC"))
    new = duplicates = skipped = 0
    notices: list[list[str]] = []
    if len(spilled.bad_records) and load_options.get("on_error") == "skip":  # records split into too many fields
        skipped = len(spilled.bad_records)
        notices.append([f"Skipped {skipped} row(s) with problems; download the list to see why."])
    saved = None
    try:
        with store.immediate(db):
            for i, part in enumerate(spilled.parts):
                try:
                    load = stream.load_spilled(spilled, part, **load_options)
                except ValidationError as exc:
                    if _only_test_traffic(exc):  # this part's conversations are all test traffic: nothing to add
                        notices.append(["Excluded test/bot-to-bot conversations from one part of the file."])
                        continue
                    raise
                saved = store.save_messages(db, load.frame, dataset_name=dataset, source_format=load.format,
                                            file_name=load.file, skipped_rows=load.skipped_rows)
                new += saved.new_rows
                duplicates += saved.duplicate_rows
                skipped += int(load.skipped_rows)
                notices.append(list(load.notices))
                del load
                if progress is not None:
                    progress(i + 1, len(spilled.parts))
            if saved is None:
                raise ValidationError([Problem(spilled.file, None, None, None,
                                               "every conversation is test or bot-to-bot traffic",
                                               "export a period that contains real conversations")])
    finally:
        spilled.close()
    info = store.get_dataset(db, saved.dataset_id)
    return IngestResult(dataset_id=info.id, dataset=info.name, file=spilled.file, new=new, duplicates=duplicates,
                        skipped=skipped, messages=info.message_count, conversations=info.conversation_count,
                        version=info.version, notices=stream.merge_notices(notices))


def _only_test_traffic(exc) -> bool:
    return all(p.row is None and p.message.startswith("every conversation is test") for p in exc.problems)


def stored_result(db, dataset: str):
    """A stored dataset as a :class:`~metrics.io.loaders.LoadResult` (for ``summary --db --dataset``)."""
    from metrics import store
    from metrics.io.loaders import LoadResult

    info = store.find_dataset(db, dataset)
    frame = store.load_messages(db, info.id)
    return LoadResult(frame=frame, file=info.name, format=f"store ({info.source_format})", mapping={},
                      notices=[], source_rows=len(frame))


def _add_store_options(parser, *, dataset_required: bool = True) -> None:
    parser.add_argument("--db", default=None, metavar="DB",
                        help="the store's SQLite file (default: CHATLENS_DB, else ~/.chatlens/chatlens.db)")
    parser.add_argument("--dataset", required=dataset_required, metavar="NAME", help="the stored dataset's name")


def add_parser(subparsers) -> None:
    """Register ``ingest`` and ``export`` on the ``python -m metrics`` parser."""
    from metrics.cli import add_load_options

    parser = subparsers.add_parser("ingest", help="add an export to a stored dataset (created if new)")
    add_load_options(parser)
    _add_store_options(parser)
    parser.set_defaults(handler=run_ingest)

    parser = subparsers.add_parser("export", help="write a stored dataset's messages or conversations")
    _add_store_options(parser)
    parser.add_argument("--what", choices=("messages", "conversations"), default="messages")
    parser.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    parser.add_argument("--out", default=None, metavar="FILE", help="write here instead of standard output")
    parser.set_defaults(handler=run_export)


def _connect(args):
    from metrics import store

    return store.connect(args.db)


def run_ingest(args) -> int:
    """Load ``args.path`` and add it to ``args.dataset``; print the counts."""
    from metrics import store
    from metrics.cli import load_from_args

    from metrics.io import stream

    db = _connect(args)
    try:
        if stream.can_stream(args.path, platform=getattr(args, "platform", "auto")):
            result = ingest_streaming(db, args.path, dataset=args.dataset, progress=_progress_line,
                                      **_load_options(args, pseudonym_key=store.pseudonym_key(db)))
        else:
            result = ingest(db, load_from_args(args, pseudonym_key=store.pseudonym_key(db)), dataset=args.dataset)
    finally:
        db.close()
    report = result.as_dict()
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False))
    else:
        for key in ("dataset", "dataset_id", "file", "new", "duplicates", "skipped", "messages", "conversations"):
            print(f"{key}: {report[key]}")
        for notice in result.notices:
            print(f"notice: {notice}")
    return 0


def _progress_line(done: int, total: int) -> None:
    print(f"\ringest: part {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)


def _load_options(args, **extra) -> dict:
    """The load options of ``args`` as keywords of :func:`metrics.io.loaders.load_bytes` (streamed ingest)."""
    from metrics.cli import _platform_options
    from metrics.io.loaders import parse_map_args
    from metrics.io.readers import configured_max_expanded_bytes

    options = dict(mapping=parse_map_args(args.map) or None, timezone=args.timezone,
                   on_error="skip" if args.skip_bad_rows else "refuse",
                   test_users=[p for p in args.test_users.split(",") if p.strip()],
                   platform_options=_platform_options(getattr(args, "platform_option", [])),
                   redact_pii=not getattr(args, "keep_pii", False),
                   max_expanded_bytes=getattr(args, "max_expanded_bytes", None) or configured_max_expanded_bytes(),
                   **extra)
    if args.conversations:
        from pathlib import Path

        options["conversations"] = (Path(args.conversations).read_bytes(), Path(args.conversations).name)
    return options


def _frame(db, args):
    from metrics import store
    from metrics.core.rollup import conversation_rollup

    info = store.find_dataset(db, args.dataset)
    messages = store.load_messages(db, info.id)
    return conversation_rollup(messages) if args.what == "conversations" else messages


def run_export(args) -> int:
    """Write the stored dataset's messages or conversations as CSV or JSON lines."""
    from metrics.io.export import to_csv_bytes

    db = _connect(args)
    try:
        frame = _frame(db, args)
    finally:
        db.close()
    if args.format == "csv":
        data = to_csv_bytes(frame)
    else:
        data = frame.to_json(orient="records", lines=True, date_format="iso", force_ascii=False).encode("utf-8")
    if args.out:
        with open(args.out, "wb") as out:
            out.write(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0
