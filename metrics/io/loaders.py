"""Load transcript exports into the validated Chatlens format.

The single entry point the UI, the CLI and the benchmark share is
:func:`load_bytes` (``load_path`` reads a file first). It

1. parses the bytes (:mod:`metrics.io.readers`: CSV/TSV/JSON/JSONL, .gz, .zip);
2. maps source columns to the Chatlens columns (auto-detected synonyms, user overrides);
3. validates every value at once (:mod:`metrics.io.validate`);
4. refuses the file listing every problem (``on_error="refuse"``, the default), or keeps the
   good rows and reports exactly which rows were skipped and why (``on_error="skip"``);
5. joins an optional conversations file on ``conversation_id``;
6. excludes test and bot-to-bot traffic (``is_test`` and user-id patterns) and counts it.

No row is ever dropped without being counted in :attr:`LoadResult.skipped` or
:attr:`LoadResult.excluded_conversations`.
"""

from __future__ import annotations

import fnmatch
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from metrics.io.adapters._common import upload_tag
from metrics.errors import ConfigError, Problem, ValidationError
from metrics.core.frames import filter_rows
from metrics.io.readers import DEFAULT_MAX_EXPANDED_BYTES, read_table
from metrics.io.schema import BY_NAME, CONVERSATION_FIELDS
from metrics.io.validate import PROBLEM_COLUMNS, detect_mapping, normalize

__all__ = ["LoadResult", "load_bytes", "load_path", "parse_map_args", "ON_ERROR", "configure_arrow_memory",
           "release_arrow_memory"]

ON_ERROR = ("refuse", "skip")
MAX_PROBLEMS_IN_ERROR = 1000


@dataclass
class LoadResult:
    """What a load produced. ``frame`` is the validated transcript frame."""

    frame: pd.DataFrame
    file: str
    format: str
    mapping: dict[str, str]
    notices: list[str] = field(default_factory=list)
    #: One row per problem of a skipped row (file, row, column, value, message, fix).
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PROBLEM_COLUMNS))
    skipped_rows: int = 0
    excluded_conversations: int = 0
    excluded_messages: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    source_rows: int = 0

    @property
    def conversations(self) -> int:
        return int(self.frame["conversation_id"].nunique())


def parse_map_args(items) -> dict[str, str]:
    """Parse ``canonical=source`` strings (CLI ``--map``) into a dict.

    Examples
    --------
    >>> parse_map_args(["text=utterance", "conversation_id=chat"])
    {'text': 'utterance', 'conversation_id': 'chat'}
    """
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--map expects canonical=source, got {item!r}")
        canon, source = item.split("=", 1)
        out[canon.strip()] = source.strip()
    return out


def load_path(path, **options) -> LoadResult:
    """Read ``path`` and :func:`load_bytes` it; the file name is used in every message."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ValidationError([Problem(str(p), None, None, None, f"cannot read the file ({exc.strerror})",
                                       "check the path and permissions")]) from None
    conv = options.pop("conversations_path", None)
    if conv is not None:
        options["conversations"] = (Path(conv).read_bytes(), Path(conv).name)
    return load_bytes(data, p.name, **options)


def load_bytes(data: bytes, file_name: str, *, mapping: dict[str, str] | None = None, timezone: str = "UTC",
               on_error: str = "refuse", test_users=(), conversations: tuple[bytes, str] | None = None,
               max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES, now: pd.Timestamp | None = None,
               platform: str | None = "auto", platform_options: dict | None = None,
               redact_pii: bool = True, pseudonym_key: bytes | None = None) -> LoadResult:
    """Parse, map, validate and clean one export.

    Parameters
    ----------
    mapping : {canonical: source column}, overriding the auto-detected mapping.
    timezone : IANA zone for naive timestamps (aware ones keep their offset). Default UTC.
    on_error : "refuse" raises :class:`ValidationError` listing every problem; "skip" keeps the
        good rows and reports the skipped ones in ``result.skipped``.
    test_users : glob patterns (case-insensitive) of user ids whose conversations are test traffic.
    conversations : optional ``(bytes, file_name)`` of a conversations file joined on conversation_id.
    platform : "auto" detects a native platform export (see :mod:`metrics.io.adapters`), None or "generic"
        reads the file as a generic table, or an adapter name forces that adapter.
    platform_options : options passed to the adapter (e.g. ``handoff_names``).
    redact_pii : mask e-mail addresses, phone numbers, Luhn-valid card numbers and IBANs in the text and the
        free-text conversation fields (``topic``, ``escalation_reason``) as ``<EMAIL>``, ``<PHONE>``,
        ``<CARD>``, ``<IBAN>``, and pseudonymise the personal data inside ids (``conversation_id``,
        ``user_id``: ``whatsapp:+14155550132`` -> ``whatsapp:<PHONE:e5bd…>``, a keyed hash,
        so the same person keeps one id) before anything is stored. On by default.
    pseudonym_key : the key of those hashes; pass the store's (:func:`metrics.store.pseudonym_key`) so every
        upload into one store agrees. Default: a random key made once per process.

    Examples
    --------
    >>> r = load_bytes(b"chat_id,author,body\\n7,customer,hello\\n7,assistant,hi there\\n", "x.csv")
    >>> r.frame[["conversation_id", "speaker", "text"]].values.tolist()
    [['7', 'user', 'hello'], ['7', 'bot', 'hi there']]
    """
    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    table, platform = _read_with_platform(data, file_name, platform=platform, max_expanded_bytes=max_expanded_bytes,
                                          platform_options=platform_options or {})
    sample = table.frame.head(500)
    if platform is not None:
        chosen = {c: c for c in table.frame.columns if c in BY_NAME}
        chosen.update(mapping or {})
    else:
        chosen = detect_mapping(table.frame.columns, sample=sample, overrides=mapping)
    notices = list(table.notices)
    source_id = chosen.get("conversation_id")
    made_up_ids = platform is None and (source_id is None or source_id not in table.frame.columns
                                        or source_id.endswith("__conversation_index"))
    header_problems = _duplicate_headers(table, chosen)
    norm = normalize(table.frame, file=table.file, mapping=chosen, rows=table.rows, timezone=timezone, now=now)
    source_rows = len(table.frame) + len(table.problems)
    table.frame = sample = None  # the raw strings are no longer needed: free them before the copies below
    notices.extend(norm.notices)
    problems = norm.problems
    extra = [p.as_dict() for p in table.problems + header_problems]
    if extra:
        problems = pd.concat([problems, pd.DataFrame(extra, columns=PROBLEM_COLUMNS)], ignore_index=True)
    file_level = problems[problems["row"].isna()]
    if len(file_level):
        raise _error(file_level)
    frame, norm.frame = norm.frame, None
    if made_up_ids and len(frame):  # numbered in the file: the content tag keeps two uploads' numbers apart
        tag = upload_tag(data)
        frame["conversation_id"] = (tag + ":") + frame["conversation_id"]
        notices.append(f"Conversation ids made up for this file start with its content tag '{tag}', so they never "
                       "merge with another upload's.")
    skipped = problems.iloc[0:0]
    skipped_rows = 0
    keep = np.ones(len(frame), dtype=bool)
    if len(problems):
        if on_error == "refuse":
            raise _error(problems)
        bad_rows = set(problems["row"].astype("int64"))
        keep &= ~frame["row"].isin(bad_rows).to_numpy()
        skipped_rows = len(bad_rows)
        skipped = problems.sort_values("row", kind="stable").reset_index(drop=True)
        notices.append(f"Skipped {skipped_rows} row(s) with problems; download the list to see why.")
    if conversations is not None:
        frame = _join_conversations(frame, conversations, timezone=timezone, max_expanded_bytes=max_expanded_bytes,
                                    notices=notices)
    test_rows, excluded = _test_rows(frame, keep, test_users)
    excluded_msgs = int(test_rows.sum())
    keep &= ~test_rows
    if excluded:
        notices.append(f"Excluded {excluded} test/bot-to-bot conversation(s) ({excluded_msgs} messages).")
    if not keep.any():
        if skipped_rows and not excluded:  # every row had a problem: skipping them leaves nothing to save
            raise _error(skipped)
        what = ("every conversation is test or bot-to-bot traffic" if excluded else "no messages to load")
        raise ValidationError([Problem(table.file, None, None, None, what,
                                       "export a period that contains real conversations"
                                       + (" (or change the test-user patterns)" if excluded else ""))])
    frame = _keep_sorted(frame, keep)
    table_file, table_format = table.file, table.format
    if redact_pii and len(frame):
        frame = _redact(frame, notices, key=pseudonym_key or _PROCESS_KEY)
    if len(norm.ignored_columns):
        shown = ", ".join(norm.ignored_columns[:15]) + (" ..." if len(norm.ignored_columns) > 15 else "")
        notices.append(f"Ignored {len(norm.ignored_columns)} column(s) not in the Chatlens format: {shown}")
    del table
    release_arrow_memory()
    return LoadResult(frame=frame, file=table_file, format=platform or table_format, mapping=chosen, notices=notices,
                      skipped=skipped, skipped_rows=skipped_rows, excluded_conversations=excluded,
                      excluded_messages=excluded_msgs, ignored_columns=norm.ignored_columns,
                      source_rows=source_rows)


#: The pseudonym key of loads that are given none (the CLI's ``summary PATH``): stable within one process.
_PROCESS_KEY = secrets.token_bytes(32)
#: Free-text fields masked like ``text``; ids whose personal data is pseudonymised.
_FREE_TEXT = ("topic", "escalation_reason")
#: (Not ``message_id``: platforms generate it, and it is distinct per message, so checking it would cost seconds
#: per million messages for nothing.)
_IDS = ("conversation_id", "user_id")


def _redact(frame: pd.DataFrame, notices: list[str], *, key: bytes) -> pd.DataFrame:
    """Mask personal data in the text and free-text fields, and pseudonymise it inside ids (one notice each)."""
    from metrics.io.pii import redact_ids, redact_series

    text, redaction = redact_series(frame["text"])
    changes = {"text": text}
    if redaction.total_count:
        notices.append(redaction.summary())
    for column in _FREE_TEXT:
        if column in frame.columns and frame[column].notna().any():
            masked, counts = redact_series(frame[column])
            if counts.total_count:
                changes[column] = masked
                notices.append(f"{column}: {counts.summary()}")
    for column in _IDS:
        if column in frame.columns and frame[column].notna().any():
            original = frame[column]
            masked = redact_ids(original, key=key)
            changed = int(((masked != original) & original.notna()).fillna(False).sum())
            if changed:
                changes[column] = masked
                notices.append(f"Pseudonymised personal data (e-mail addresses, phone numbers) inside {changed:,} "
                               f"{column} value(s) with a keyed hash; the same person keeps one id.")
    return frame.assign(**changes)


def configure_arrow_memory() -> str:
    """Make pyarrow allocate with the system allocator from now on; returns the allocator's name.

    pyarrow's default allocator here (mimalloc) costs about 0.8 s more on the first load of a
    1M-message export than the system allocator (``load_bytes`` 2.45 s -> 1.67 s, 2 cores), for about
    10% more peak memory; :func:`release_arrow_memory` returns freed memory with either. Buffers
    made earlier stay valid (each one is freed by the allocator that made it). Idempotent: the app
    and the CLI call it once per process, before loading.

    Examples
    --------
    >>> configure_arrow_memory()
    'system'
    """
    import pyarrow as pa

    system = pa.system_memory_pool()
    if pa.default_memory_pool().backend_name != system.backend_name:
        pa.set_memory_pool(system)
    return pa.default_memory_pool().backend_name


def release_arrow_memory() -> None:
    """Hand the memory pyarrow's pool kept from parsing back to the system.

    Parsing a large CSV leaves a few hundred MB of freed-but-pooled buffers (mimalloc/jemalloc);
    without this, storing the frame next raises the process's peak by as much again.
    """
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow comes with streamlit
        return
    pa.default_memory_pool().release_unused()


def _read_with_platform(data, file_name, *, platform, max_expanded_bytes, platform_options):
    """Read the file generically, or through a native-platform adapter when one is detected or forced.

    Returns ``(table, platform_name_or_None)``; an adapter's table already uses Chatlens column names.
    """
    if platform in (None, "generic"):
        return read_table(data, file_name, max_expanded_bytes=max_expanded_bytes), None
    from metrics.io import adapters

    return adapters.read(data, file_name, platform=platform, max_expanded_bytes=max_expanded_bytes,
                         options=platform_options)


def _error(problems: pd.DataFrame) -> ValidationError:
    shown = problems.head(MAX_PROBLEMS_IN_ERROR)
    items = [Problem(r.file, None if pd.isna(r.row) else int(r.row), r.column, r.value, r.message, r.fix)
             for r in shown.itertuples(index=False)]
    err = ValidationError(items, total=len(problems))
    err.frame = problems.reset_index(drop=True)
    return err


def _duplicate_headers(table, mapping: dict[str, str]) -> list[Problem]:
    if not table.header:
        return []
    seen, problems = {}, []
    for pos, name in enumerate(table.header, start=1):
        if name in seen:
            used = any(src == name or src.startswith(f"{name}.") for src in mapping.values())
            if used:
                problems.append(Problem(table.file, None, name, None,
                                        f"the header names column '{name}' twice (columns {seen[name]} and {pos})",
                                        "rename or remove one of the two columns"))
        else:
            seen[name] = pos
    return problems


def _test_rows(frame: pd.DataFrame, keep: np.ndarray, patterns) -> tuple[np.ndarray, int]:
    """Rows (among the kept ones) of conversations that are test or bot-to-bot traffic, and their count."""
    flagged = np.zeros(len(frame), dtype=bool)
    if "is_test" in frame.columns:
        flagged |= frame["is_test"].fillna(False).to_numpy(dtype=bool)
    pats = [p.strip().lower() for p in (patterns or ()) if p and p.strip()]
    if pats and "user_id" in frame.columns:
        uniq = frame["user_id"].dropna().unique()
        hits = [u for u in uniq if any(fnmatch.fnmatchcase(str(u).lower(), p) for p in pats)]
        if hits:
            flagged |= frame["user_id"].isin(hits).to_numpy()
    flagged &= keep
    if not flagged.any():
        return flagged, 0
    conv = pd.unique(frame["conversation_id"].to_numpy()[flagged])
    rows = frame["conversation_id"].isin(conv).to_numpy() & keep
    return rows, len(conv)


def _keep_sorted(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """Kept rows ordered by (conversation_id, timestamp, row): a filter when already in that order, else one
    take. ``frame`` is the loader's own and is emptied column by column as the kept rows are copied, so the
    peak memory is one frame plus one column, not two frames."""
    idx = np.flatnonzero(keep)
    codes, _ = pd.factorize(frame["conversation_id"], sort=True)  # ranks of the ids, as integers
    codes = codes[idx]
    ts = frame["timestamp"].array.asi8[idx]  # NaT is int64 min: sorts first within a conversation
    rows = frame["row"].to_numpy()[idx]
    order = np.lexsort((rows, ts, codes))
    in_order = np.array_equal(order, np.arange(len(order)))  # then a filter keeps the rows without reordering
    if in_order and len(idx) == len(frame):
        return frame.reset_index(drop=True)
    taken = None if in_order else idx[order]
    out = {}
    for number, name in enumerate(list(frame.columns), start=1):
        part = filter_rows(frame[[name]], keep) if in_order else frame[[name]].take(taken)
        out[name] = part.iloc[:, 0].reset_index(drop=True)
        del frame[name]  # its memory goes back before the next column is copied
        if number % 8 == 0:
            release_arrow_memory()  # small parse blocks stay with the allocator until trimmed
    return pd.DataFrame(out)


def _join_conversations(frame, conversations, *, timezone, max_expanded_bytes, notices) -> pd.DataFrame:
    data, name = conversations
    table = read_table(data, name, max_expanded_bytes=max_expanded_bytes)
    chosen = detect_mapping(table.frame.columns)
    keep = {k: v for k, v in chosen.items() if k == "conversation_id" or k in CONVERSATION_FIELDS}
    if "conversation_id" not in keep:
        raise ValidationError([Problem(table.file, None, None, None,
                                       "the conversations file has no conversation id column",
                                       "add a conversation_id column matching the transcript file")])
    raw = table.frame[list(keep.values())].copy()
    if "text" not in keep:
        raw["__text"] = ""
        keep["text"] = "__text"
    norm = normalize(raw, file=table.file, mapping=keep, rows=table.rows, timezone=timezone)
    if len(norm.problems):
        raise _error(norm.problems)
    conv = norm.frame.drop(columns=["text", "speaker", "timestamp", "row"], errors="ignore")
    conv = conv.drop_duplicates("conversation_id", keep="last").set_index("conversation_id")
    unknown = int((~conv.index.isin(frame["conversation_id"].unique())).sum())
    if unknown:
        notices.append(f"{table.file}: {unknown} conversation(s) are not in the transcript file and were ignored.")
    out = frame.copy()
    for col in conv.columns:
        values = out["conversation_id"].map(conv[col])
        if col in out.columns:
            out[col] = values.where(values.notna(), out[col]).astype(conv[col].dtype)
        else:
            out[col] = values.astype(conv[col].dtype)
    notices.append(f"Joined {len(conv) - unknown} conversation(s) from {table.file}.")
    return out
