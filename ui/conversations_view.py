"""The Conversations page: full-text search (:mod:`metrics.store.search`, SQLite FTS5), filters kept in the URL,
a paged result list, one conversation's transcript with its outcomes and audit scores, and the CSV export.

URL query string (every value validated; an invalid one falls back to "any" with a one-line notice):
``q`` (search words), ``definition`` + ``outcome`` (outcome under a vendor definition), ``intent``,
``reason`` (escalation reason), ``rating``, ``sentiment``, ``channel``, ``topic``, ``from`` / ``to``
(ISO dates), ``page`` (of the list, 1-based) and ``cid`` (the open conversation).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from metrics import outcomes
from metrics.store import search
from metrics.errors import ChatlensError
from ui import shell
from ui.fmt import literal

PAGE = "pages/11_Conversations.py"
PAGE_SIZE = 50
#: The page's URL parameters, in the order they are written.
PARAMS = ("q", "definition", "outcome", "intent", "reason", "rating", "sentiment", "channel", "topic", "found", "from",
          "to", "page", "cid")
SENTIMENTS = ("negative", "neutral", "positive")
DEFINITIONS = tuple(outcomes.VENDOR_STYLES)
ANY = "(any)"
MAX_QUERY_CHARS = 500


# --------------------------------------------------------------------------- frames (computed once per slice)

def _style_label(frame: pd.DataFrame) -> pd.Series:
    label = pd.Series("other", index=frame.index, dtype="str")
    label = label.mask(frame["abandoned"], "abandoned").mask(frame["escalated"], "escalated")
    label = label.mask(frame["resolved"], "resolved")
    return label.mask(~frame["counted"], "not counted")


def conversation_table(messages: pd.DataFrame, rollup: pd.DataFrame) -> pd.DataFrame:
    """One row per conversation: id, start, message count, channel, topic, escalation reason, rating, the first
    user message (preview) and the outcome under every definition (one column per definition)."""
    cols = ["conversation_id", "started_at", "message_count", "channel", "topic", "escalation_reason", "rating"]
    table = rollup[[c for c in cols if c in rollup.columns]].copy()
    for c in cols:
        if c not in table.columns:
            table[c] = pd.NA
    users = messages[messages["speaker"] == "user"]
    first = users.drop_duplicates("conversation_id")[["conversation_id", "text"]].rename(columns={"text": "preview"})
    table = table.merge(first, on="conversation_id", how="left")
    table["preview"] = table["preview"].fillna("").astype("str").str.slice(0, 160)
    default = outcomes.outcome_table(messages, rollup)[["conversation_id", "outcome"]]
    table = table.merge(default.rename(columns={"outcome": DEFINITIONS[0]}), on="conversation_id", how="left")
    vendor = outcomes.vendor_outcome_table(messages, rollup)
    if len(vendor):
        vendor = vendor.assign(label=_style_label(vendor))
        wide = vendor.pivot(index="conversation_id", columns="style", values="label").reset_index()
        wide = wide[["conversation_id", *[d for d in DEFINITIONS[1:] if d in wide.columns]]]
        table = table.merge(wide, on="conversation_id", how="left")
    for d in DEFINITIONS:
        if d not in table.columns:
            table[d] = pd.Series(dtype="str")
    return table


def intent_conversations(messages: pd.DataFrame, intent: str) -> list[str]:
    if "intent" not in messages.columns:
        return []
    return messages.loc[messages["intent"] == intent, "conversation_id"].unique().tolist()


def sentiment_conversations(scored: pd.DataFrame, label: str) -> list[str]:
    """Conversations with at least one user message of sentiment ``label``."""
    users = scored[(scored["speaker"] == "user") & (scored["sentiment"] == label)]
    return users["conversation_id"].unique().tolist()


def _options(frame: pd.DataFrame, column: str) -> list[str]:
    if column not in frame.columns:
        return []
    return sorted(str(v) for v in frame[column].dropna().unique())


def filter_options(table: pd.DataFrame, messages: pd.DataFrame) -> dict:
    ratings = sorted({float(r) for r in table["rating"].dropna()}) if "rating" in table.columns else []
    return {
        "intent": _options(messages, "intent"),
        "reason": _options(table, "escalation_reason"),
        "rating": [f"{r:g}" for r in ratings],
        "channel": _options(table, "channel"),
        "topic": _options(table, "topic"),
        "outcome": {d: _options(table, d) for d in DEFINITIONS},
    }


# --------------------------------------------------------------------------- URL state

def _date(value) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def read_url(options: dict, *, bounds: tuple[dt.date, dt.date] | None, sentiment: bool) -> tuple[dict, list[str]]:
    """The page's state from ``st.query_params``, validated: ``(state, names of the rejected parameters)``."""
    raw = {name: st.query_params.get(name) for name in PARAMS}
    state: dict = {}
    bad: list[str] = []
    q = raw["q"] or ""
    state["q"] = q[:MAX_QUERY_CHARS]
    definition = raw["definition"]
    if definition not in (None, "") and definition not in DEFINITIONS:
        bad.append("definition")
        definition = None
    state["definition"] = definition or DEFINITIONS[0]
    outcome = raw["outcome"]
    if outcome not in (None, "") and outcome not in options["outcome"].get(state["definition"], []):
        bad.append("outcome")
        outcome = None
    state["outcome"] = outcome or None
    for name in ("intent", "reason", "rating", "channel", "topic", "found"):
        value = raw[name]
        if value not in (None, "") and value not in options.get(name, ()):
            bad.append(name)
            value = None
        state[name] = value or None
    value = raw["sentiment"]
    if value not in (None, "") and (value not in SENTIMENTS or not sentiment):
        bad.append("sentiment")
        value = None
    state["sentiment"] = value or None
    for name in ("from", "to"):
        value = raw[name]
        day = _date(value) if value not in (None, "") else None
        if value not in (None, "") and (day is None or bounds is None or not bounds[0] <= day <= bounds[1]):
            bad.append(name)
            day = None
        state[name] = day
    if state["from"] and state["to"] and state["from"] > state["to"]:
        bad.append("to")
        state["to"] = None
    page = raw["page"]
    try:
        state["page"] = max(1, int(page)) if page not in (None, "") else 1
    except ValueError:
        bad.append("page")
        state["page"] = 1
    state["cid"] = raw["cid"] or None
    return state, bad


def write_url(state: dict, *, seen_key: str | None = None) -> None:
    """``state`` into ``st.query_params`` (only the parameters that are set); ``seen_key`` remembers it as the
    URL the widgets already show."""
    wanted = {}
    for name in PARAMS:
        value = state.get(name)
        if name == "definition" and value == DEFINITIONS[0] and not state.get("outcome"):
            continue
        if name == "page" and value == 1:
            continue
        if value in (None, "", ANY):
            continue
        wanted[name] = value.isoformat() if isinstance(value, dt.date) else str(value)
    current = {k: st.query_params.get(k) for k in PARAMS if k in st.query_params}
    if current != wanted:  # this page's parameters only: the shell's dataset and filters stay in the URL
        for name in set(current) - set(wanted):
            del st.query_params[name]
        st.query_params.update({k: v for k, v in wanted.items() if current.get(k) != v})
    if seen_key is not None:
        st.session_state[seen_key] = _url_token(wanted)


def _url_token(params: dict) -> str:
    return repr(sorted((k, str(v)) for k, v in params.items() if k != "cid"))


def link_params(**filters) -> dict[str, str]:
    """Query parameters opening this page on ``filters`` (names of :data:`PARAMS`; ``None`` values dropped)."""
    unknown = set(filters) - set(PARAMS)
    if unknown:
        raise ValueError(f"unknown Conversations parameter(s): {sorted(unknown)}")
    return {k: str(v) for k, v in filters.items() if v not in (None, "")}


# --------------------------------------------------------------------------- rendering

def _key(ctx, name: str) -> str:
    return f"conv_{ctx.dataset_id}_{ctx.version}_{name}"


def render(ctx: shell.PageContext) -> None:
    st.title("Conversations")
    if ctx.dataset_id is None or len(ctx.all_messages) == 0:
        st.info("No conversations yet: upload a dataset on the Data page.")
        return
    table = shell.derive(ctx, "conversations", conversation_table, ctx.all_messages, ctx.rollup)  # shared, no copy
    options = shell.cached(ctx, filter_options, table, ctx.all_messages)
    found_topics = shell.topic_filter(ctx)  # topics found (and named) on the Topics page
    options = {**options, "found": {str(t): n for t, n in found_topics.names.items()} if found_topics else {},
               "found_topics": found_topics}
    starts = table["started_at"].dropna()
    bounds = (starts.min().date(), starts.max().date()) if len(starts) else None
    can_score = "text" in ctx.all_messages.columns
    state, bad = read_url(options, bounds=bounds, sentiment=can_score)
    if bad:
        st.caption("Ignored an invalid link value for " + ", ".join(literal(b) for b in bad) + ": showing all instead.")
    if state["cid"]:
        _render_conversation(ctx, table, state)
    else:
        _render_list(ctx, table, options, state, bounds)


def _sync_widgets(ctx, state: dict) -> None:
    """Put the URL's values into the widgets when the URL changed from outside (a link, the back button)."""
    seen_key = _key(ctx, "url_seen")
    url_now = _url_token({k: st.query_params.get(k) for k in PARAMS if k in st.query_params})
    if st.session_state.get(seen_key) == url_now:
        return
    st.session_state[seen_key] = url_now
    st.session_state[_key(ctx, "q")] = state["q"]
    st.session_state[_key(ctx, "definition")] = state["definition"]
    st.session_state[_key(ctx, "outcome")] = state["outcome"] or ANY
    for name in ("intent", "reason", "rating", "channel", "topic", "found", "sentiment"):
        st.session_state[_key(ctx, name)] = state[name] or ANY
    st.session_state[_key(ctx, "from")] = state["from"]
    st.session_state[_key(ctx, "to")] = state["to"]
    st.session_state[_key(ctx, "page")] = state["page"]


def _select(ctx, name: str, label: str, choices, *, container, names: dict | None = None) -> str | None:
    key = _key(ctx, name)
    values = [ANY, *choices]
    if st.session_state.get(key) not in values:
        st.session_state[key] = ANY
    shown = (lambda v: v if v == ANY else literal(f"{v} · {names[v]}")) if names else None
    picked = container.selectbox(literal(label), values, key=key, **({"format_func": shown} if shown else {}))
    return None if picked == ANY else picked


def _render_list(ctx, table: pd.DataFrame, options: dict, state: dict, bounds) -> None:
    _sync_widgets(ctx, state)
    query = st.text_input("Search the messages (every word must appear in the conversation)", key=_key(ctx, "q"),
                          max_chars=MAX_QUERY_CHARS, placeholder="e.g. refund order")
    cols = st.columns(4)
    definition = cols[0].selectbox("Outcome definition", list(DEFINITIONS), key=_key(ctx, "definition"))
    outcome = _select(ctx, "outcome", "Outcome", options["outcome"].get(definition, []), container=cols[1])
    intent = _select(ctx, "intent", "Intent (any user turn)", options["intent"], container=cols[2])
    reason = _select(ctx, "reason", "Escalation reason", options["reason"], container=cols[3])
    cols = st.columns(4)
    rating = _select(ctx, "rating", "Rating", options["rating"], container=cols[0])
    sentiment = _select(ctx, "sentiment", "Sentiment (any user turn)", list(SENTIMENTS), container=cols[1])
    channel = _select(ctx, "channel", "Channel", options["channel"], container=cols[2])
    topic = _select(ctx, "topic", "Topic", options["topic"], container=cols[3])
    found = None
    if options["found"]:
        found = _select(ctx, "found", "Found topic (Topics page)", list(options["found"]), container=st,
                        names=options["found"])
    day_from = day_to = None
    if bounds is not None:
        cols = st.columns(2)
        day_from = cols[0].date_input("Started on or after", key=_key(ctx, "from"), min_value=bounds[0],
                                      max_value=bounds[1])
        day_to = cols[1].date_input("Started on or before", key=_key(ctx, "to"), min_value=bounds[0],
                                    max_value=bounds[1])
    chosen = {"q": query, "definition": definition, "outcome": outcome, "intent": intent, "reason": reason,
              "rating": rating, "sentiment": sentiment, "channel": channel, "topic": topic, "found": found,
              "from": day_from, "to": day_to}
    # a changed filter goes back to the first page of the list
    filters_key = _key(ctx, "filters_seen")
    if st.session_state.get(filters_key) not in (None, repr(chosen)):
        st.session_state[_key(ctx, "page")] = 1
    st.session_state[filters_key] = repr(chosen)

    found = _matching(ctx, table, chosen, options["found_topics"].pairs if chosen.get("found") else None)
    total = len(found)
    pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
    page_key = _key(ctx, "page")
    if int(st.session_state.get(page_key) or 1) > pages:
        if st.session_state.get(page_key, 1) != 1:
            st.caption(f"The list has only {pages:,} page(s): showing page 1.")
        st.session_state[page_key] = 1
    write_url({**chosen, "page": int(st.session_state.get(page_key) or 1)}, seen_key=_key(ctx, "url_seen"))

    st.caption(f"{total:,} of {len(table):,} conversation(s) match.")
    if total == 0:
        st.info("No conversation matches the search and filters.")
        return
    page = st.number_input(f"Page (1–{pages:,}, {PAGE_SIZE} conversations each)", min_value=1, max_value=pages,
                           step=1, key=page_key)
    write_url({**chosen, "page": int(page)}, seen_key=_key(ctx, "url_seen"))
    start = (int(page) - 1) * PAGE_SIZE
    shown = found.iloc[start:start + PAGE_SIZE]
    columns = ["conversation_id", "started_at", "message_count", definition, "channel", "preview"]
    view = shown[columns].rename(columns={definition: "outcome"})
    # a column the data does not have (no timestamps, no channel) is left out; a missing cell shows as a dash
    view = view[[c for c in view.columns if c == "conversation_id" or view[c].notna().any()]]
    for c in ("outcome", "channel", "preview"):
        if c in view.columns:
            view = view.assign(**{c: view[c].astype("object").where(view[c].notna() & view[c].ne(""), "—")})
    event = st.dataframe(view, width="stretch", hide_index=True, on_select="rerun", selection_mode="single-row",
                         key=_key(ctx, f"table_{start}"))
    rows = event["selection"]["rows"] if event and "selection" in event else []
    pick = st.selectbox("Open a conversation", view["conversation_id"].tolist(), index=None,
                        placeholder="Pick one of this page's conversations", key=_key(ctx, f"pick_{start}"))
    cid = pick if pick is not None else (view.iloc[rows[0]]["conversation_id"] if rows else None)
    export = found[["conversation_id", "started_at", "message_count", "channel", "topic", "escalation_reason",
                    "rating", *DEFINITIONS, "preview"]]
    shell.download_csv(export, label="Download the result list (CSV)", file_name="conversations.csv",
                       key=_key(ctx, "export"))
    if cid is not None:
        st.session_state.pop(_key(ctx, f"pick_{start}"), None)
        write_url({**chosen, "page": int(page), "cid": cid})
        st.rerun()


def _matching(ctx, table: pd.DataFrame, chosen: dict, pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    keep = pd.Series(True, index=table.index)
    if chosen["outcome"]:
        keep &= table[chosen["definition"]].eq(chosen["outcome"]).fillna(False)
    for name, column in (("reason", "escalation_reason"), ("channel", "channel"), ("topic", "topic")):
        if chosen[name]:
            keep &= table[column].astype("str").eq(chosen[name]).fillna(False)
    if chosen["rating"]:
        keep &= table["rating"].eq(float(chosen["rating"])).fillna(False)
    if chosen.get("found") and pairs is not None:
        keep &= table["conversation_id"].astype("str").isin(
            pairs.loc[pairs["topic"].eq(int(chosen["found"])), "conversation_id"])
    if chosen["from"]:
        keep &= table["started_at"].ge(pd.Timestamp(chosen["from"], tz="UTC")).fillna(False)
    if chosen["to"]:
        keep &= table["started_at"].lt(pd.Timestamp(chosen["to"], tz="UTC") + pd.Timedelta(days=1)).fillna(False)
    if chosen["intent"]:
        keep &= table["conversation_id"].isin(shell.cached(ctx, intent_conversations, ctx.all_messages,
                                                           chosen["intent"]))
    if chosen["sentiment"]:
        scored = shell.scored(ctx)
        keep &= table["conversation_id"].isin(shell.cached(ctx, sentiment_conversations, scored, chosen["sentiment"]))
    if chosen["q"] and search.query_words(chosen["q"]):
        try:
            with st.spinner("Building the search index (once per dataset version)…"):
                ids = search.search(ctx.db, ctx.dataset_id, chosen["q"], messages=ctx.all_messages,
                                    version=ctx.version)
        except ChatlensError as exc:
            shell.show_error(exc)
            ids = []
        keep &= table["conversation_id"].isin(ids or [])
    elif chosen["q"].strip():
        st.caption("The search has no letters or digits to look for: showing every conversation.")
    return table[keep.astype(bool)]


def _render_conversation(ctx, table: pd.DataFrame, state: dict) -> None:
    cid = state["cid"]
    st.session_state.pop(_key(ctx, "url_seen"), None)  # the list's widgets are not drawn: back re-reads the URL
    if st.button("← Back to list", key=_key(ctx, "back")):
        write_url({**state, "cid": None})
        st.rerun()
    convo = ctx.all_messages[ctx.all_messages["conversation_id"] == cid]
    if len(convo) == 0:
        st.info("This conversation is not in the dataset.")
        return
    st.subheader(f"Conversation {literal(cid)}")
    row = table[table["conversation_id"] == cid].iloc[0]
    started = row["started_at"]
    st.caption(f"{int(row['message_count']):,} message(s) · channel {literal(row['channel'])} · started "
               + (f"{started:%Y-%m-%d %H:%M} UTC" if not pd.isna(started) else "—"))
    outcome_rows = pd.DataFrame({"definition": list(DEFINITIONS), "outcome": [row[d] for d in DEFINITIONS]})
    st.markdown("**Outcome under each definition**")
    st.dataframe(outcome_rows, width="stretch", hide_index=True)
    _audit_scores(ctx, cid)
    convo = _with_sentiment(convo)
    shell.render_transcript(convo, key=_key(ctx, "transcript_page"))


def _with_sentiment(convo: pd.DataFrame) -> pd.DataFrame:
    """The conversation's messages with VADER ``sentiment`` and ``compound`` (scored here: one conversation)."""
    try:
        from metrics.sentiment import add_sentiment

        return add_sentiment(convo.reset_index(drop=True))
    except (ChatlensError, ImportError):
        return convo


def _audit_scores(ctx, cid: str) -> None:
    from metrics.audit import store as audit_store

    try:
        rounds = audit_store.list_rounds(ctx.db, ctx.dataset_id)
        frames = []
        for rid, name in zip(rounds.get("id", pd.Series(dtype="int64")), rounds.get("name", pd.Series(dtype="str"))):
            scores = audit_store.load_scores(ctx.db, int(rid))
            scores = scores[scores["conversation_id"] == cid]
            if len(scores):
                frames.append(scores.assign(round=name))
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    if frames:
        st.markdown("**Audit scores**")
        st.dataframe(pd.concat(frames, ignore_index=True), width="stretch", hide_index=True)
    else:
        st.caption("No audit score for this conversation.")
