"""The ``topics`` subcommand: topics, their outcomes and (with ``--gaps``) the knowledge gaps.

``python -m metrics topics PATH|--db DB --dataset NAME [--topics N] [--unit messages|first] [--gaps]
[--seed S] [--no-save] [--rasa-out FILE] [--format json|text]`` plus the loading options of ``summary``
(``--map``, ``--timezone``, ...) for a PATH.

With ``--dataset`` the messages come from the store (``--db``, default ``CHATLENS_DB`` or
``~/.chatlens/chatlens.db``): the stored names, merges and last run are used, so topic ids and names are the
page's, and this run is stored for the next one (unless ``--no-save``). With a PATH nothing is stored.

The JSON object holds ``dataset`` (``name``, ``messages``, ``unit``), ``method`` (how k was chosen),
``k_scores`` (``[{k, silhouette}]``), ``topics`` (``[{id, label, name, size, texts, conversations, share,
terms, examples, resolution_rate, escalation_rate, abandonment_rate, mean_sentiment, negative_rate,
mean_rating, csat_rate, wow_change, growing, new, matched}]``; ``size`` counts messages), ``assignments``
(one ``{conversation_id, row, text, topic}`` per clustered message) and, with ``--gaps``, ``gaps``
(``fallback_intent``, ``messages``, ``topics`` ranked with ``rank, id, label, name, size, score, impact,
escalation_rate, negative_rate, nearest_intent, nearest_similarity, signals, examples``, ``templates`` and
``overlapping_intents``). NaN is written as ``null``. ``--rasa-out FILE`` writes every gap topic as a new
intent in Rasa NLU YAML. Bad input exits with status 2 and one line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import pandas as pd

from metrics.errors import ConfigError
from metrics.topics import _gaps, _names, _outcomes, _training
from metrics.topics._discover import TopicOptions, discover_topics

__all__ = ["add_parser", "build_parser", "run", "topics_report"]

_RATES = ("resolution_rate", "escalation_rate", "abandonment_rate", "mean_sentiment", "negative_rate",
          "mean_rating", "csat_rate", "wow_change")


def _num(value):
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _progress(message: str) -> None:
    print(f"topics: {message}", file=sys.stderr, flush=True)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``topics`` subcommand to ``python -m metrics``."""
    from metrics.cli import add_load_options

    parser = subparsers.add_parser(
        "topics", help="topics users ask about, their outcomes, and knowledge gaps",
        description="Cluster user messages into topics (word and character n-gram TF-IDF, LSA, spectral "
                    "clustering; the number of topics is the knee of the silhouette curve unless --topics). "
                    "Read PATH, or a stored dataset with --dataset (and --db).")
    add_load_options(parser)
    for action in parser._actions:  # PATH is optional when --dataset is given
        if action.dest == "path":
            action.nargs = "?"
            action.default = None
    parser.add_argument("--db", default=None, metavar="DB",
                        help="the store's SQLite file (default: CHATLENS_DB, else ~/.chatlens/chatlens.db)")
    parser.add_argument("--dataset", default=None, metavar="NAME", help="a stored dataset's name (instead of PATH)")
    parser.add_argument("--topics", type=_positive, default=None, metavar="N",
                        help="a fixed number of topics (default: chosen automatically)")
    parser.add_argument("--unit", choices=("messages", "first"), default="messages",
                        help="cluster every user message (default) or the first one of each conversation")
    parser.add_argument("--gaps", action="store_true", help="also find and rank the knowledge gaps")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--no-save", action="store_true", help="with --dataset: do not store this run")
    parser.add_argument("--rasa-out", default=None, metavar="FILE",
                        help="with --gaps: write every gap topic as a new intent in Rasa NLU YAML")
    parser.set_defaults(handler=run, module=__name__)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone ``python -m metrics`` parser holding only ``topics`` (for tests and scripts)."""
    parser = argparse.ArgumentParser(prog="python -m metrics")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def _examples(examples: pd.DataFrame, topic: int) -> list[str]:
    return examples.loc[examples["topic"] == topic].sort_values("rank")["text"].tolist()


def topics_report(messages: pd.DataFrame, *, options: TopicOptions = TopicOptions(), gaps: bool = False,
                  state=None, gap_state=None, name: str = "", progress=None):
    """``(report, model, gap_report)``: the JSON-ready object of the module docstring and the results behind
    it. ``state``/``gap_state`` are :class:`metrics.topics.persist.TopicState` (or None)."""
    say = progress or (lambda _m: None)
    say(f"clustering the {options.unit} of {len(messages):,} messages")
    model = discover_topics(messages, options=options, previous=state.snapshot if state else None,
                            merges=state.merges if state else None)
    say(f"{model.n_topics} topics; outcomes per topic")
    outcomes = _outcomes.topic_outcomes(model, messages)
    named = _names.with_names(model.topics, state.names if state else None)
    table = named.merge(outcomes.drop(columns=["label", "message_count", "conversation_count"]), on="topic",
                        how="left")
    report = {
        "dataset": {"name": name, "messages": int(len(messages)), "unit": options.unit},
        "method": model.method,
        "notes": list(model.notes),
        "k_scores": [{"k": int(k), "silhouette": _num(s)} for k, s in model.k_scores.itertuples(index=False)],
        "topics": [{
            "id": int(r.topic), "label": r.label, "name": r.name, "size": int(r.message_count),
            "texts": int(r.text_count), "conversations": int(r.conversation_count), "share": _num(r.share),
            "terms": [t for t in str(r.terms).split(", ") if t], "examples": _examples(model.examples, r.topic),
            **{rate: _num(getattr(r, rate)) for rate in _RATES},
            "growing": bool(r.growing), "new": bool(r.new), "matched": bool(r.matched)}
            for r in table.itertuples(index=False)],
        "assignments": [{"conversation_id": c, "row": int(w), "text": t, "topic": int(p)}
                        for c, w, t, p in model.assignments[["conversation_id", "row", "text", "topic"]]
                        .itertuples(index=False)],
    }
    gap = None
    if gaps:
        say("knowledge gaps")
        gap = _gaps.gap_report(messages, previous=gap_state.snapshot if gap_state else None,
                               merges=gap_state.merges if gap_state else None,
                               topic_options=TopicOptions(max_topics=20, seed=options.seed))
        gap_named = _names.with_names(gap.topics, gap_state.names if gap_state else None)
        examples = _training.intent_examples(messages, fallback_intent=gap.fallback_intent)
        nearest = _training.nearest_intents(gap.messages[gap.messages["topic"] >= 0][["topic", "text"]], examples)
        gap_named = gap_named.merge(nearest, on="topic", how="left")
        overlap = _training.overlapping_intents(messages, fallback_intent=gap.fallback_intent)
        report["gaps"] = {
            "fallback_intent": gap.fallback_intent,
            "messages": int(len(gap.messages)),
            "user_messages": gap.user_message_count,
            "topics": [{
                "rank": int(r.rank), "id": int(r.topic), "label": r.label, "name": r.name,
                "size": int(r.message_count), "conversations": int(r.conversation_count), "score": _num(r.score),
                "impact": _num(r.impact), "escalation_rate": _num(r.escalation_rate),
                "negative_rate": _num(r.negative_rate), "nearest_intent": None if pd.isna(r.nearest_intent)
                else str(r.nearest_intent), "nearest_similarity": _num(r.similarity),
                "signals": {s: int(getattr(r, f"{s}_count")) for s in _gaps.SIGNALS},
                "examples": _examples(gap.examples, r.topic)} for r in gap_named.itertuples(index=False)],
            "templates": [{"bot_text": r.bot_text, "count": int(r.count), "reason": r.reason}
                          for r in gap.templates[gap.templates["is_template"]].itertuples(index=False)],
            "overlapping_intents": [{"intent_a": r.intent_a, "intent_b": r.intent_b,
                                     "similarity": _num(r.similarity), "confusion_count": int(r.confusion_count),
                                     "confusion_rate": _num(r.confusion_rate), "reason": r.reason}
                                    for r in overlap.itertuples(index=False)],
        }
    return report, model, gap


def _as_text(report: dict) -> str:
    d = report["dataset"]
    lines = [f"{len(report['topics'])} topic(s) over the {d['unit']} of {d['messages']:,} messages "
             f"({report['method']})"]
    for note in report["notes"]:
        lines.append(f"note: {note}")

    def pct(v):
        return "–" if v is None else f"{v:.0%}"
    lines.append(f"{'id':>4}  {'size':>7}  {'resolved':>8}  {'escal.':>6}  {'wow':>6}  name")
    for t in report["topics"]:
        flags = " ".join(f for f, on in (("[growing]", t["growing"]), ("[new]", t["new"])) if on)
        lines.append(f"{t['id']:>4}  {t['size']:>7,}  {pct(t['resolution_rate']):>8}  "
                     f"{pct(t['escalation_rate']):>6}  {pct(t['wow_change']):>6}  {t['name']} {flags}".rstrip())
    if "gaps" in report:
        g = report["gaps"]
        lines.append("")
        lines.append(f"knowledge gaps: {g['messages']:,} of {g['user_messages']:,} user messages "
                     f"(fallback intent {g['fallback_intent']})")
        lines.append(f"{'rank':>4}  {'size':>6}  {'score':>8}  {'nearest intent':<20}  name")
        for t in g["topics"]:
            near = t["nearest_intent"] or "–"
            lines.append(f"{t['rank']:>4}  {t['size']:>6,}  {t['score']:>8.1f}  {near:<20}  {t['name']}")
        for t in g["templates"]:
            lines.append(f"template ({t['count']}x, {t['reason']}): {t['bot_text']}")
    return "\n".join(lines)


def run(args) -> int:
    """Run ``topics`` for parsed ``args``; prints the report and returns the exit status (2 with one line on
    standard error for bad input, as ``python -m metrics`` does)."""
    from metrics.errors import ChatlensError

    try:
        return _run(args)
    except ChatlensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from metrics import store
    from metrics.topics import persist

    if (args.path is None) == (args.dataset is None):
        print("error: give a transcript file (PATH) or a stored dataset (--dataset NAME), not both",
              file=sys.stderr)
        return 2
    if args.rasa_out and not args.gaps:
        print("error: --rasa-out needs --gaps", file=sys.stderr)
        return 2
    try:
        options = TopicOptions(unit=args.unit, n_topics=args.topics, seed=args.seed)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    db = None
    state = gap_state = None
    if args.dataset is not None:
        db = store.connect(args.db)
        try:
            info = store.find_dataset(db, args.dataset)
            messages, name = store.load_messages(db, info.id), info.name
            state = persist.load_state(db, info.id, args.unit)
            gap_state = persist.load_state(db, info.id, "gaps") if args.gaps else None
        except BaseException:
            db.close()
            raise
    else:
        from metrics.cli import load_from_args

        result = load_from_args(args)
        messages, name = result.frame, result.file
    try:
        report, model, gap = topics_report(messages, options=options, gaps=args.gaps, state=state,
                                           gap_state=gap_state, name=name, progress=_progress)
        if db is not None and not args.no_save:
            persist.save_snapshot(db, info.id, args.unit, model.snapshot, version=info.version,
                                  assignments=model.assignments)
            if gap is not None:
                persist.save_snapshot(db, info.id, "gaps", gap.model.snapshot, version=info.version)
    finally:
        if db is not None:
            db.close()
    if args.rasa_out:
        blocks, seen = [], set()
        for t in report["gaps"]["topics"]:
            texts = gap.messages.loc[gap.messages["topic"] == t["id"], "text"]
            intent = _training.intent_name(t["name"])
            intent = intent if intent not in seen else f"{intent}_{t['id']}"
            seen.add(intent)
            blocks.append(_training.training_examples(texts, intent=intent))
        frame = pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame({"intent": [], "text": []})
        with open(args.rasa_out, "w", encoding="utf-8") as out:
            out.write(_training.rasa_nlu_yaml(frame))
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(_as_text(report))
    return 0
