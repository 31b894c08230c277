"""The ``audit-export`` subcommand: the saved audit scores of a store.

``python -m metrics audit-export --db PATH [--round NAME] --format csv|json`` prints every
saved review (or one round's) with the columns ``round, conversation_id, reviewer,
understood_intent, accurate_helpful, tone, edge_cases, overall, flags, note, saved_at``
(plus ``revision`` and ``dataset_id``). CSV cells that start with = + - @ are escaped
(:func:`metrics.io.export.to_csv_bytes`); JSON is a list of objects whose ``flags`` is a list.
A missing store file or an unknown round exits with status 2 and one line on stderr.

Register ``"metrics.audit.cli"`` in :data:`metrics.cli.SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from metrics.errors import ChatlensError, ConfigError

__all__ = ["add_parser", "run", "export_payload"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``audit-export`` to the ``python -m metrics`` subcommands."""
    parser = subparsers.add_parser("audit-export", help="export the saved audit scores (CSV or JSON)")
    parser.add_argument("--db", required=True, help="the Chatlens store (SQLite file), e.g. ~/.chatlens/chatlens.db")
    parser.add_argument("--round", default=None, metavar="NAME", help="only this audit round (default: all rounds)")
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    parser.set_defaults(handler=run, module=__name__)
    return parser


def export_payload(db, *, round_name: str | None = None, fmt: str = "csv") -> bytes:
    """The bytes ``audit-export`` prints (CSV escaped, or a JSON list). ``ConfigError`` for a bad format.

    Examples
    --------
    >>> from metrics import store
    >>> export_payload(store.connect(":memory:"), fmt="json")
    b'[]'
    """
    from metrics.audit import store as audit_store

    if fmt == "csv":
        return audit_store.export_scores_csv(db, round_name=round_name)
    if fmt != "json":
        raise ConfigError(f"--format must be csv or json, got {fmt!r}")
    frame = audit_store.export_scores(db, round_name=round_name)
    records = []
    for rec in frame.to_dict("records"):
        rec = {k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()}
        rec["flags"] = [f for f in str(rec["flags"]).split(";") if f]
        records.append(rec)
    return json.dumps(records, ensure_ascii=False).encode("utf-8")


def run(args) -> int:
    """Print the export to stdout; 0 on success, 2 with one ``error: ...`` line on stderr."""
    from metrics import store

    try:
        path = Path(args.db).expanduser()
        if not path.is_file():
            raise ConfigError(f"no store at {str(path)!r}. Fix: pass the path of the Chatlens SQLite file "
                              "(CHATLENS_DB, default ~/.chatlens/chatlens.db)")
        db = store.connect(path)
        try:
            payload = export_payload(db, round_name=args.round, fmt=args.format)
        finally:
            db.close()
    except ChatlensError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    out = getattr(sys.stdout, "buffer", None)
    if out is not None:
        sys.stdout.flush()
        out.write(payload + (b"\n" if payload and not payload.endswith(b"\n") else b""))
        out.flush()
    else:  # a text-only stdout (captured in tests)
        sys.stdout.write(payload.decode("utf-8"))
    return 0
