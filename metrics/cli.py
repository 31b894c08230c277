"""Command line: ``python -m metrics summary PATH [--map canonical=source ...] [--format json|text]``
(``--engine {auto,local,spark}``: computed bucket by bucket through the facts, :mod:`metrics.engines`).

Bad input exits with status 2 and a one-line message naming the problem; a
traceback is never printed for a Chatlens error. Families register extra
subcommands in :data:`SUBCOMMANDS` (``module`` names with ``add_parser`` and ``run``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from metrics.errors import ChatlensError, ConfigError, ValidationError, printable
from metrics.io.loaders import load_path, parse_map_args

__all__ = ["main", "SUBCOMMANDS", "add_load_options", "load_from_args"]

#: Extra subcommand modules; each has ``add_parser(subparsers)`` and ``run(args) -> int``.
SUBCOMMANDS: list[str] = ["metrics.cli_ingest", "metrics.intents.cli", "metrics.funnel.cli", "metrics.roi.cli", "metrics.audit.cli", "metrics.improve.cli_alerts", "metrics.cli_report",
                         "metrics.topics.cli"]


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """The options every file-reading subcommand shares."""
    parser.add_argument("path", help="transcript export (CSV, TSV, JSON, JSONL, .gz or .zip)")
    parser.add_argument("--map", action="append", default=[], metavar="CANONICAL=SOURCE",
                        help="map a source column to a Chatlens column, e.g. --map text=utterance")
    parser.add_argument("--timezone", default="UTC", help="time zone of naive timestamps (default UTC)")
    parser.add_argument("--skip-bad-rows", action="store_true",
                        help="load the good rows and report the bad ones instead of refusing the file")
    parser.add_argument("--test-users", default="", help="comma-separated glob patterns of test user ids")
    parser.add_argument("--conversations", default=None, help="a conversations file joined on conversation_id")
    parser.add_argument("--format", choices=("json", "text"), default="text")
    parser.add_argument("--keep-pii", action="store_true",
                        help="do not mask e-mails, phones, card numbers and IBANs in message text")
    parser.add_argument("--platform", default="auto",
                        help="native export: auto (detect), generic, or rasa, copilot_studio, dialogflow_cx, "
                             "intercom, langfuse, twcs, convai")
    parser.add_argument("--platform-option", action="append", default=[], metavar="KEY=JSON",
                        help="adapter option, e.g. 'participant_roles={\"participant1\": \"user\"}'")
    from metrics.io.readers import DEFAULT_MAX_EXPANDED_BYTES, MAX_EXPANDED_BYTES_ENV

    parser.add_argument("--max-expanded-bytes", type=int, default=None, metavar="N",
                        help="refuse .gz/.zip files that unpack to more than N bytes, counting every file and "
                             f"level of the archive together (default: {MAX_EXPANDED_BYTES_ENV}, else "
                             f"{DEFAULT_MAX_EXPANDED_BYTES:,})")


def _platform_options(items) -> dict:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--platform-option expects key=value, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def load_from_args(args, **extra):
    """Load ``args.path`` with the shared options (``extra``: more :func:`metrics.io.loaders.load_bytes` options)."""
    from metrics.io.readers import LimitError, configured_max_expanded_bytes

    try:
        return load_path(args.path, mapping=parse_map_args(args.map), timezone=args.timezone,
                         on_error="skip" if args.skip_bad_rows else "refuse",
                         test_users=[p for p in args.test_users.split(",") if p.strip()],
                         conversations_path=args.conversations, platform=getattr(args, "platform", "auto"),
                         platform_options=_platform_options(getattr(args, "platform_option", [])),
                         redact_pii=not getattr(args, "keep_pii", False),
                         max_expanded_bytes=getattr(args, "max_expanded_bytes", None) or configured_max_expanded_bytes(),
                         **extra)
    except LimitError as exc:  # the reader's fix says what to raise; here is how, on the command line
        if exc.option != "max_expanded_bytes":
            raise
        raise exc.with_hint("on the command line: --max-expanded-bytes N") from None


def _engine_summary(args) -> dict:
    """``summary ... --engine E``: the report computed through the facts by an engine (:mod:`metrics.engines`).

    A PATH is loaded as without ``--engine`` and computed shard by shard (``local``), or read by Spark itself
    (``spark``: Parquet or CSV with canonical column names); ``--db --dataset`` is read bucket by bucket from
    the store. A progress line goes to standard error."""
    from metrics import engines

    if getattr(args, "dataset", None):
        if args.path:
            raise ConfigError("give an export PATH or --dataset NAME, not both")
        from metrics import store

        source = engines.StoredInput(str(args.db or store.default_db_path()), args.dataset)
        db = store.connect(source.db_path)  # the dataset must exist (a clear error before any work)
        try:
            store.find_dataset(db, args.dataset)
        finally:
            db.close()
    elif not args.path:
        raise ConfigError("give an export PATH, or --dataset NAME (a dataset in the store, see --db)")
    else:
        source = engines.PathInput(args.path, timezone=args.timezone, redact_pii=not args.keep_pii)
    engine = engines.choose_engine(args.engine, source)
    if isinstance(source, engines.PathInput):
        if engine == "local":
            result = load_from_args(args)
            source = engines.FrameInput(result.frame, engines.file_meta(result))
        else:
            unsupported = [flag for flag, used in (("--map", args.map), ("--skip-bad-rows", args.skip_bad_rows),
                                                  ("--test-users", args.test_users),
                                                  ("--conversations", args.conversations),
                                                  ("--platform", args.platform not in ("auto", "generic")),
                                                  ("--platform-option", args.platform_option)) if used]
            if unsupported:
                raise ConfigError(f"the spark engine reads exports with canonical column names only; "
                                  f"{', '.join(unsupported)} need(s) the loader. Fix: use --engine local")

    def progress(done: int, total: int) -> None:
        print(f"\r{engine}: {done}/{total} shards", end="\n" if done >= total else "", file=sys.stderr,
              flush=True)

    return engines.run_summary(source, engine=engine, workers=args.workers, spark_master=args.spark_master,
                               progress=progress, use_cache=not args.recompute)


def _summary(args) -> int:
    from metrics.summary import build_summary

    if getattr(args, "engine", None):
        report = _engine_summary(args)
        if args.format == "json":
            print(json.dumps(report, ensure_ascii=False))
        else:
            print(_as_text(report))
        return 0
    if getattr(args, "dataset", None):  # a stored dataset (python -m metrics summary --db DB --dataset NAME)
        from metrics import store
        from metrics.cli_ingest import stored_result

        if args.path:
            raise ConfigError("give an export PATH or --dataset NAME, not both")
        db = store.connect(args.db)
        try:
            result = stored_result(db, args.dataset)
        finally:
            db.close()
    elif not args.path:
        raise ConfigError("give an export PATH, or --dataset NAME (a dataset in the store, see --db)")
    else:
        result = load_from_args(args)
    report = build_summary(result)
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(_as_text(report))
    return 0


def _as_text(report: dict, indent: int = 0) -> str:
    lines = []
    for key, value in report.items():
        pad = "  " * indent
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines.append(_as_text(value, indent + 1))
        elif isinstance(value, list) and value and isinstance(value[0], (dict, list)):
            lines.append(f"{pad}{key}: {len(value)} item(s)")
        else:
            lines.append(f"{pad}{key}: {value}")
    return "\n".join(line for line in lines if line)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m metrics", description="Chatlens chatbot analytics")
    sub = parser.add_subparsers(dest="command", required=True)
    summary = sub.add_parser("summary", help="load a transcript export (or a stored dataset) and print its metrics")
    from metrics.cli_report import add_source_options

    add_source_options(summary)
    summary.add_argument("--engine", choices=("auto", "local", "spark"), default=None,
                         help="compute through the facts, bucket by bucket: local (a process pool), spark, or "
                              "auto (spark for big inputs when PySpark and Java are installed). Default: the "
                              "classic in-memory summary")
    summary.add_argument("--spark-master", default=None, metavar="M",
                         help="Spark master for --engine spark (default local[2])")
    summary.add_argument("--workers", type=int, default=None, metavar="N",
                         help="processes of --engine local (default min(2, CPUs))")
    summary.add_argument("--recompute", action="store_true",
                         help="with --engine and --dataset: compute the facts from the messages even when the store "
                              "keeps them for this dataset version")
    summary.set_defaults(handler=_summary)
    for name in SUBCOMMANDS:
        module = importlib.import_module(name)
        module.add_parser(sub)
    return parser


#: Exit status of an unexpected error (a bug): a one-line message, the traceback only with CHATLENS_DEBUG=1.
EXIT_BUG = 70


def main(argv=None) -> int:
    """Run one subcommand. Exit status 2 and one line naming the problem for bad input; never a traceback
    (an unexpected error is one line too, exit 70, with the traceback only when ``CHATLENS_DEBUG=1``)."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        from metrics.io.loaders import configure_arrow_memory

        configure_arrow_memory()  # as the app does: faster first loads
        handler = getattr(args, "handler", None)
        if handler is None:
            module = importlib.import_module(args.module)
            return int(module.run(args))
        return int(handler(args))
    except ValidationError as exc:
        first = exc.problems[0] if exc.problems else exc
        more = f" (and {exc.total - 1} more problem(s); use --skip-bad-rows to load the good rows)" \
            if exc.total > 1 else ""
        print(f"error: {first}{more}", file=sys.stderr)
        return 2
    except ChatlensError as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (``... | head``): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - the edge: a bug is one line, not a traceback
        if os.environ.get("CHATLENS_DEBUG") == "1":
            raise
        print(f"error: unexpected {type(exc).__name__}: {printable(exc)[:500]}. This is a Chatlens bug: please "
              "report it with the command you ran (CHATLENS_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
