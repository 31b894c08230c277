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

__all__ = ["add_parser", "run_ingest", "run_export", "ingest", "IngestResult", "stored_result"]

from dataclasses import asdict, dataclass, field


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

    db = _connect(args)
    try:
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
