"""The ``report`` and ``compare`` subcommands, and the "export file or stored dataset" source options.

``python -m metrics report [PATH | --db DB --dataset NAME] [--period last-week|last-month|FROM..TO]
[--view executive|operational] --format html|pdf|md --out FILE``
    Writes the period's report (:mod:`metrics.report`). ``--format`` defaults to the extension of
    ``--out``; without ``--out`` HTML and Markdown go to standard output. A stored dataset brings
    its store's goals, enabled alert rules, change log and backlog edits; an export file uses the
    guide's suggested goals and the default alert rules (``--db`` with a file: that store's goals,
    rules and change log entries for every dataset). Exit status 0, or 2 on bad input, no complete
    period, or no Chromium for ``--format pdf`` ("install chromium or use --format html").

``python -m metrics compare [A [B]] [--db DB] [--dataset NAME ...] [--period P] [--against FROM..TO]
[--intents] [--key auto|message_id|conversation|text] [--metrics m1,m2] [--format text|json]``
    One source (a file or a stored dataset): every KPI in ``--period`` (default ``last-week``)
    against the period before it, or against ``--against``. Two sources (files first, then
    ``--dataset`` names, in order): every KPI of A against B over all their data, or each over
    ``--period`` when given; ``--intents`` adds the per-intent comparison (McNemar's test when the
    same utterances are labelled in both). Definitions and tests: :mod:`metrics.improve.compare`.

Source options (:func:`add_source_options`, shared with ``alerts``)
    The export options of every file-reading command, with PATH optional, plus ``--db`` and
    ``--dataset``. ``--db`` defaults to ``CHATLENS_DB``, else ``~/.chatlens/chatlens.db``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from metrics.errors import ConfigError

__all__ = ["add_parser", "run_report", "run_compare", "add_source_options", "load_source", "Source",
           "stored_settings", "FORMAT_SUFFIXES"]

FORMAT_SUFFIXES = {".html": "html", ".htm": "html", ".pdf": "pdf", ".md": "md", ".markdown": "md"}


# --------------------------------------------------------------------------- sources

def _optional_path(parser) -> None:
    # add_load_options declares PATH as required; a stored dataset needs none. argparse has no
    # public way to relax a positional once added, so its action is adjusted here, in one place.
    for action in parser._actions:  # noqa: SLF001
        if action.dest == "path" and not action.option_strings:
            action.nargs, action.default, action.required = "?", None, False
            action.help = "transcript export (CSV, TSV, JSON, JSONL, .gz or .zip); or give --dataset"


def add_source_options(parser) -> None:
    """The export options (PATH optional) plus ``--db`` and ``--dataset`` (module docstring)."""
    from metrics.cli import add_load_options

    add_load_options(parser)
    _optional_path(parser)
    parser.add_argument("--db", default=None, metavar="DB",
                        help="the store's SQLite file (default: CHATLENS_DB, else ~/.chatlens/chatlens.db)")
    parser.add_argument("--dataset", default=None, metavar="NAME", help="a stored dataset instead of PATH")


@dataclass
class Source:
    """Loaded data: the validated ``frame``, a display ``name``, the open store ``db`` (or None)
    and the stored ``dataset_id`` (None for an export file)."""

    frame: object
    name: str
    db: object | None
    dataset_id: int | None

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


def _open_db(path):
    from metrics import store

    return store.connect(path)


def load_source(args, *, path: str | None = None, dataset: str | None = None) -> Source:
    """The export at ``path`` (default ``args.path``) or the stored ``dataset`` (default
    ``args.dataset``) in ``args.db``. Exactly one must be given (ConfigError otherwise)."""
    from metrics.cli import load_from_args

    if path is None and dataset is None:
        path, dataset = args.path, getattr(args, "dataset", None)
    if path and dataset:
        raise ConfigError("give an export PATH or --dataset NAME, not both")
    if not path and not dataset:
        raise ConfigError("give an export PATH, or --dataset NAME (a dataset in the store, see --db)")
    if dataset:
        from metrics import store

        db = _open_db(getattr(args, "db", None))
        try:
            info = store.find_dataset(db, dataset)
            frame = store.load_messages(db, info.id)
        except Exception:
            db.close()
            raise
        return Source(frame, info.name, db, int(info.id))
    saved = args.path
    try:
        args.path = path
        result = load_from_args(args)
    finally:
        args.path = saved
    db = _open_db(args.db) if getattr(args, "db", None) else None
    return Source(result.frame, Path(path).name, db, None)


def stored_settings(source: Source) -> dict:
    """Goals, enabled alert rules (None: the defaults), change log and backlog state of the source's store."""
    from metrics.improve import store as goals_store

    if source.db is None:
        return {"goals": (), "rules": None, "changes": (), "backlog_state": None, "backlog_added": None}
    rules = goals_store.list_alert_rules(source.db, enabled_only=True)
    changes = goals_store.list_changes(source.db, dataset_id=source.dataset_id)
    if source.dataset_id is None:  # an export file: only the entries for every dataset apply to it
        changes = [e for e in changes if e.dataset_id is None]
    return {"goals": tuple(goals_store.list_goals(source.db)),
            "rules": list(rules["parsed"]) if len(rules) else None,
            "changes": tuple(changes),
            "backlog_state": goals_store.backlog_state(source.db, source.dataset_id)
            if source.dataset_id is not None else None,
            "backlog_added": goals_store.added_backlog_items(source.db, source.dataset_id)
            if source.dataset_id is not None else None}


def scored_messages(source: Source):
    """The source's messages with VADER scores (cached in the store when there is one)."""
    from metrics.sentiment import add_sentiment

    cache = None
    if source.db is not None:
        from metrics.sentiment.cache import StoreCache

        cache = StoreCache(source.db)
    return add_sentiment(source.frame, cache=cache)


def _progress(text: str) -> None:
    print(f"… {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- report

def add_parser(subparsers) -> None:
    """Register ``report`` and ``compare`` on the ``python -m metrics`` parser."""
    from metrics.report import FORMATS, VIEWS

    parser = subparsers.add_parser("report", conflict_handler="resolve",
                                   help="write the weekly report (HTML, PDF or Markdown) of an export or a stored "
                                        "dataset")
    add_source_options(parser)
    parser.add_argument("--period", default="last-week",
                        help="last-week (default: the latest complete ISO week), last-month, or FROM..TO "
                             "(dates, TO included)")
    parser.add_argument("--view", choices=VIEWS, default="executive")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="html, pdf or md (default: from the --out extension, else html)")
    parser.add_argument("--out", default=None, metavar="FILE",
                        help="write here (required for pdf; html and md go to standard output without it)")
    parser.set_defaults(handler=run_report)

    parser = subparsers.add_parser("compare", help="compare every KPI between two periods or two datasets")
    from metrics.cli import add_load_options

    add_load_options(parser)
    _optional_path(parser)
    parser.add_argument("other", nargs="?", default=None, help="a second export to compare with")
    parser.add_argument("--db", default=None, metavar="DB",
                        help="the store's SQLite file (default: CHATLENS_DB, else ~/.chatlens/chatlens.db)")
    parser.add_argument("--dataset", action="append", default=[], metavar="NAME",
                        help="a stored dataset (give it twice to compare two datasets)")
    parser.add_argument("--period", default=None,
                        help="one source: the period to compare (default last-week); two sources: restrict each "
                             "to this period (default: all data)")
    parser.add_argument("--against", default=None, metavar="FROM..TO",
                        help="one source: compare with this range instead of the period before")
    parser.add_argument("--intents", action="store_true",
                        help="two sources: also compare intent recognition per intent (McNemar when paired)")
    parser.add_argument("--key", choices=("auto", "message_id", "conversation", "text"), default="auto",
                        help="how --intents pairs the same utterances in the two datasets")
    parser.add_argument("--metrics", default=None, help="comma-separated KPI names (default: every KPI)")
    parser.set_defaults(handler=run_compare, format="text")


def _format(args) -> str:
    if args.format:
        return args.format
    if args.out:
        suffix = Path(args.out).suffix.lower()
        if suffix in FORMAT_SUFFIXES:
            return FORMAT_SUFFIXES[suffix]
        raise ConfigError(f"cannot tell the format from {args.out!r}: give --format html, pdf or md")
    return "html"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_report(args) -> int:
    """Build and write the report (module docstring). Chatlens errors become exit status 2 in
    ``metrics.cli.main``."""
    from metrics.report import build_report, find_chromium, html_to_pdf, render_html, render_markdown
    from metrics.report._pdf import PdfRendererMissing
    from metrics.core.rollup import conversation_rollup

    fmt = _format(args)
    if fmt == "pdf":
        if not args.out:
            raise ConfigError("--format pdf needs --out FILE")
        if find_chromium() is None:  # fail before the work, with the way out
            raise PdfRendererMissing("--format pdf prints the HTML report with Chromium, which is not installed: "
                                     "install chromium (apt-get install chromium) or use --format html")
    _progress("loading the data")
    source = load_source(args)
    try:
        _progress("scoring sentiment")
        messages = scored_messages(source)
        settings = stored_settings(source)
    finally:
        source.close()
    _progress("computing the report")
    report = build_report(messages, conversation_rollup(source.frame), period=args.period, view=args.view,
                          dataset_name=source.name, **settings)
    if fmt == "md":
        data = render_markdown(report).encode("utf-8")
    else:
        _progress("drawing the charts")
        html = render_html(report)
        data = html.encode("utf-8")
    if fmt == "pdf":
        _progress("printing the PDF with chromium")
        out = Path(args.out)
        tmp = out.with_name(f".{out.name}.part.pdf")
        try:
            html_to_pdf(html, tmp)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        size = out.stat().st_size
    elif args.out:
        _write_atomically(Path(args.out), data)
        size = len(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    breached = sum(1 for a in report.alerts if a.breached)
    print(f"wrote {args.out} ({fmt}, {size / 1024:,.0f} KB): {report.title}"
          + (f" · {breached} alert rule(s) breached" if breached else ""))
    return 0


# --------------------------------------------------------------------------- compare

def _cell(value, kind: str) -> str:
    from metrics.kpis import format_value

    return format_value(value, kind)


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    fmt = "  ".join("{:<%d}" % w if i == 0 or i == len(header) - 1 else "{:>%d}" % w for i, w in enumerate(widths))
    return "\n".join(fmt.format(*[str(c) for c in r]) for r in [header] + rows)


def run_compare(args) -> int:
    """Compare two periods of one source or two sources (module docstring); print text or JSON."""
    from metrics.improve import compare
    from metrics.kpis import format_delta
    from metrics.core.rollup import conversation_rollup
    from metrics.summary import jsonable

    paths = [p for p in (args.path, args.other) if p]
    names = list(args.dataset or [])
    if len(paths) + len(names) not in (1, 2):
        raise ConfigError("compare takes one source (two periods) or two sources (two datasets): export paths "
                          "and/or --dataset names")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    sources = []
    try:
        for p in paths:
            sources.append(load_source(args, path=p))
        for n in names:
            sources.append(load_source(args, dataset=n))
        frames = [(scored_messages(s), conversation_rollup(s.frame)) for s in sources]
    finally:
        for s in sources:
            s.close()
    labels = [s.name for s in sources]
    out: dict = {"a": labels[0], "b": labels[-1]}
    if len(sources) == 1:
        if args.intents:
            raise ConfigError("--intents compares two datasets: give two sources")
        m, r = frames[0]
        pair = compare.parse_period(args.period or "last-week", r)
        if args.against:
            against = compare.parse_period(args.against, r).current
            pair = compare.PeriodPair(pair.current, against, "range")
        table = compare.compare_periods(m, r, pair, metrics=metrics)
        a_label, b_label = pair.current.label, pair.previous.label
        out.update(mode="periods", a=a_label, b=b_label, dataset=labels[0])
    else:
        windows: tuple = (None, None)
        if args.period:
            windows = tuple(compare.parse_period(args.period, r).current for _, r in frames)
        table = compare.compare_datasets(frames[0], frames[1], metrics=metrics, windows=windows)
        a_label, b_label = labels
        out.update(mode="datasets", period=args.period)
    out["kpis"] = table.to_dict("records")
    intents = None
    if args.intents:
        sides = [compare.window_slice(m, r, w)[0] for (m, r), w in zip(frames, windows)]
        intents = compare.compare_intents(sides[0], sides[1], key=args.key)
        out["intents"] = {"paired_on": intents.paired_on, "paired_count": intents.paired_count,
                          "label_conflicts": intents.label_conflicts, "notes": list(intents.notes),
                          "rows": intents.table.to_dict("records")}
    if args.format == "json":
        print(json.dumps(jsonable(out), ensure_ascii=False))
        return 0
    rows = []
    for t in table.to_dict("records"):
        k = t["kind"]
        if not t["available"]:
            rows.append([t["label"], "—", "", "—", "", "", "", f"not available: {t['reason']}"])
            continue
        p = "" if t["p_value"] != t["p_value"] else f"{t['p_value']:.3g}" + (" *" if t["significant"] else "")
        rows.append([t["label"], _cell(t["value_a"], k), f"{t['n_a']:,}", _cell(t["value_b"], k), f"{t['n_b']:,}",
                     format_delta(t["delta"], k), p, t["test"]])
    print(f"A = {a_label}   B = {b_label}   (* significant at p < 0.05)")
    print(_text_table(["metric", "A", "n", "B", "n", "A - B", "p", "test"], rows))
    if intents is not None:
        print()
        print(f"intents: paired on {intents.paired_on or 'nothing (independent samples)'}, "
              f"{intents.paired_count} shared utterance(s)")
        irows = [[r["intent"], f"{r['recall_a']:.1%}", f"{r['n_a']:,}", f"{r['recall_b']:.1%}", f"{r['n_b']:,}",
                  f"{r['delta'] * 100:+.1f} pp", f"{r['p_value']:.3g}" if r["p_value"] == r["p_value"] else "",
                  f"{r['p_holm']:.3g}" if r["p_holm"] == r["p_holm"] else "", r["test"]]
                 for r in intents.table.to_dict("records")]
        print(_text_table(["intent", "recall A", "n", "recall B", "n", "A - B", "p", "p (Holm)", "test"], irows))
        for note in intents.notes:
            print(f"note: {note}")
    return 0
