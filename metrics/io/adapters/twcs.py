"""Threaded social customer support: the "Customer Support on Twitter" (twcs) CSV layout.

Columns ``tweet_id, author_id, inbound, created_at, text, response_tweet_id,
in_response_to_tweet_id`` (extra columns such as a leading unnamed index are ignored). Tweets are
linked by ``in_response_to_tweet_id``; each tweet is followed up that link to its topmost ancestor
*inside the file*, and that root tweet's id is the conversation id. Roots that themselves reply to
a tweet outside the file are counted in a notice.

``inbound`` True = the customer (``user``, ``user_id`` = author_id); False = the brand's support
agent (``agent``). The brand (author_id of the thread's first non-inbound tweet) becomes both
``channel`` and ``segment``. ``created_at`` looks like ``Tue Oct 31 22:10:47 +0000 2017``.

A record broken by an unquoted line break (fewer fields than the header, continued on the next
line(s)) is joined back when the pieces add up to a full record, with a notice naming the row and
the joined text (a repair is not a refusal). A record that cannot be joined back is a problem on
that record: the load is refused by default, and ``skip`` mode drops just that tweet.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metrics.io.adapters import Adapter
from metrics.io.adapters._common import build_table, csv_header, peek_text, problem, read_csv_records, unwrap
from metrics.io.readers import DEFAULT_MAX_EXPANDED_BYTES

__all__ = ["ADAPTER", "detect", "convert", "TWITTER_TIME_FORMAT"]

NAME = "twcs"
LABEL = "Customer support on Twitter (twcs CSV)"
TWITTER_TIME_FORMAT = "%a %b %d %H:%M:%S %z %Y"
_REQUIRED = ("tweet_id", "author_id", "inbound", "created_at", "text", "in_response_to_tweet_id")
_TRUE, _FALSE = {"true", "1", "yes", "t"}, {"false", "0", "no", "f"}


def detect(data: bytes, file_name: str) -> bool:
    """A CSV header with tweet_id, author_id, inbound, created_at, text and in_response_to_tweet_id."""
    return any(set(_REQUIRED) <= set(csv_header(text)) for _, text in peek_text(data, file_name))


def convert(data: bytes, file_name: str, *, options: dict,
            max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES):
    parts = unwrap(data, file_name, LABEL, max_expanded_bytes=max_expanded_bytes)
    tweets, problems, repaired = [], [], []
    for name, content in parts:
        tweets.extend(_tweets(content, name, problems, repaired))
    rows, records, notices = _threads(tweets)
    notices.extend(repaired)
    label_file = parts[0][0] if len(parts) == 1 else file_name
    return build_table(rows, records, file=label_file, platform=NAME, label=LABEL, notices=notices,
                       problems=problems)


def _tweets(content: bytes, name: str, problems: list, repaired: list) -> list[dict]:
    header, records, lines = read_csv_records(content, name, LABEL, required=_REQUIRED)
    width = len(header)
    col = {h: header.index(h) for h in _REQUIRED if h in header}
    if "response_tweet_id" in header:
        col["response_tweet_id"] = header.index("response_tweet_id")
    out, seen = [], set()
    i = 0
    while i < len(records):
        number, fields = records[i]
        consumed = 1
        if len(fields) < width:
            joined, consumed = _join(records, lines, i, width)
            tweet_id = fields[col["tweet_id"]].strip() if len(fields) > col["tweet_id"] else ""
            if joined is None:
                problems.append(problem(LABEL, name, f"record {number} (tweet {tweet_id or '?'}) has {len(fields)} "
                                        f"fields but the header has {width}", "quote the text field when "
                                        "exporting (it probably holds a line break or a comma)", row=number))
                i += 1
                continue
            text = joined[col["text"]]
            repaired.append(f"{LABEL}: {name}, row {number} (tweet {tweet_id}) was broken by an unquoted line "
                            f"break and has been joined back: its text continued on the next {consumed - 1} "
                            f"line(s) and now reads {text[:120]!r}. Check it, and quote the text field when "
                            "exporting.")
            fields = joined
        elif len(fields) > width:
            problems.append(problem(LABEL, name, f"record {number} has {len(fields)} fields but the header has "
                                    f"{width}", "quote the text field when exporting (it probably holds a comma)",
                                    row=number))
            i += 1
            continue
        i += consumed
        tweet = {k: fields[j] for k, j in col.items()}
        tweet_id = _id(tweet["tweet_id"])
        if tweet_id is None:
            problems.append(problem(LABEL, name, f"record {number} has no tweet_id", "export the tweets with their "
                                    "ids", row=number, column="tweet_id"))
            continue
        if tweet_id in seen:
            problems.append(problem(LABEL, name, f"record {number} repeats tweet {tweet_id}", "remove the "
                                    "duplicate line", row=number, column="tweet_id", value=tweet_id))
            continue
        inbound = tweet["inbound"].strip().lower()
        if inbound not in _TRUE | _FALSE:
            problems.append(problem(LABEL, name, f"record {number}: inbound is not True/False", "export inbound as "
                                    "True (customer) or False (brand)", row=number, column="inbound",
                                    value=tweet["inbound"]))
            continue
        seen.add(tweet_id)
        out.append({"number": number, "id": tweet_id, "author": tweet["author_id"].strip(),
                    "inbound": inbound in _TRUE, "created_at": tweet["created_at"].strip(), "text": tweet["text"],
                    "parent": _id(tweet["in_response_to_tweet_id"])})
    return out


def _join(records: list, lines: list, i: int, width: int) -> tuple[list | None, int]:
    """Join record i with the following record(s) when together they make exactly ``width`` fields."""
    fields = list(records[i][1])
    j = i + 1
    while len(fields) < width and j < len(records):
        nxt = records[j][1]
        if len(fields) + len(nxt) - 1 > width:
            return None, 1
        breaks = "\n" * max(1, lines[j][0] - lines[j - 1][1])
        fields[-1] += breaks + nxt[0]
        fields.extend(nxt[1:])
        j += 1
    return (fields, j - i) if len(fields) == width else (None, 1)


def _id(value: str) -> str | None:
    """Tweet ids as plain integers ('3.0' -> '3'); other text is kept as is."""
    value = (value or "").strip()
    if not value:
        return None
    if value.endswith(".0") and value[:-2].isdigit():
        return value[:-2]
    return value


def _threads(tweets: list[dict]) -> tuple[list, list, list]:
    by_id = {t["id"]: t for t in tweets}
    root_of: dict[str, str] = {}
    for tweet in tweets:
        path, current = [], tweet["id"]
        while current not in root_of:
            path.append(current)
            parent = by_id[current]["parent"]
            if parent is None or parent not in by_id or parent in path:
                root_of[current] = current
                break
            current = parent
        root = root_of[current]
        for tweet_id in path:
            root_of[tweet_id] = root
    raw = pd.Series([t["created_at"] for t in tweets], dtype="str")
    stamps = pd.to_datetime(raw, format=TWITTER_TIME_FORMAT, errors="coerce", utc=True)
    valid = stamps.notna().to_numpy()
    # unparseable times stay as written, for validation to report
    iso = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ").where(valid, raw).tolist()
    nanos = stamps.dt.tz_localize(None).to_numpy().astype("datetime64[ns]").view("int64")
    order = np.lexsort((np.arange(len(tweets)), np.where(valid, nanos, np.iinfo("int64").max)))
    brand = {}
    for k in order:
        tweet = tweets[k]
        if not tweet["inbound"]:
            brand.setdefault(root_of[tweet["id"]], tweet["author"] or None)
    rows, records = [], []
    for k, tweet in enumerate(tweets):
        root = root_of[tweet["id"]]
        rows.append({"conversation_id": root, "timestamp": iso[k], "speaker": "user" if tweet["inbound"] else "agent",
                     "text": tweet["text"], "message_id": tweet["id"],
                     "user_id": tweet["author"] if tweet["inbound"] else None,
                     "channel": brand.get(root), "segment": brand.get(root)})
        records.append(tweet["number"])
    roots = set(root_of.values())
    outside = sum(1 for r in roots if by_id[r]["parent"] is not None)
    notices = [f"{LABEL}: {len(tweets):,} tweet(s) rebuilt into {len(roots):,} thread(s) (each tweet followed "
               "in_response_to_tweet_id up to its topmost ancestor in the file); "
               f"{outside} thread(s) start with a reply to a tweet outside the file.",
               f"{LABEL}: channel and segment = the brand that answered; "
               f"{len(roots) - len(brand)} thread(s) have no brand reply."]
    return rows, records, notices


ADAPTER = Adapter(
    name=NAME,
    label=LABEL,
    detect=detect,
    convert=convert,
    description="Tweets linked by in_response_to_tweet_id (the Kaggle 'Customer Support on Twitter' layout), "
                "rebuilt into threads.",
    source_fields={
        "conversation_id": "tweet_id of the thread's root (in_response_to_tweet_id followed to the topmost "
                           "ancestor in the file)",
        "timestamp": "created_at ('Tue Oct 31 22:10:47 +0000 2017')",
        "speaker": "inbound: True -> user (customer), False -> agent (brand)",
        "text": "text",
        "message_id": "tweet_id",
        "user_id": "author_id of inbound tweets",
        "channel, segment": "author_id of the thread's first non-inbound tweet (the brand)",
    },
)
