"""The one set-up every page calls: ``ctx = shell.setup_page("Intents")``.

It sets the page config, draws the sidebar navigation with readable labels
(``client.showSidebarNavigation = false`` hides Streamlit's own), opens this
session's SQLite connection, makes sure the built-in sample is loaded when the
store is empty, lets the user pick the active dataset and the shared filters,
and returns a :class:`PageContext`. Because every page calls it, a deep link to
any page works on a freshly started server.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import re
import secrets
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from metrics import store
from metrics.errors import ChatlensError, ValidationError
from metrics.io.export import to_csv_bytes
from metrics.io.loaders import configure_arrow_memory
from metrics.core.rollup import conversation_rollup
from ui.fmt import literal
from ui import auth

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_PATH = ROOT / "data" / "sample_transcripts.csv.gz"
SAMPLE_NAME = "Sample: support & lead-gen bot"

#: (script path relative to the repo root, label, icon). Pages whose file does not exist are not shown.
#: The app's one stylesheet (constant CSS, never data-derived).
STYLESHEET = Path(__file__).with_name("chatlens.css")

PAGES = (
    ("app.py", "Overview", ":material/dashboard:"),
    ("pages/1_Data.py", "Data", ":material/upload_file:"),
    ("pages/2_Engagement.py", "Engagement", ":material/forum:"),
    ("pages/3_Outcomes.py", "Outcomes & escalations", ":material/support_agent:"),
    ("pages/4_Intents.py", "Intents", ":material/psychology:"),
    ("pages/5_Sentiment.py", "Sentiment", ":material/mood:"),
    ("pages/6_Funnel.py", "Funnel", ":material/filter_alt:"),
    ("pages/7_ROI.py", "ROI", ":material/payments:"),
    ("pages/8_Audit.py", "Audit", ":material/rate_review:"),
    ("pages/9_Improvement.py", "Improvement loop", ":material/autorenew:"),
    ("pages/10_Topics.py", "Topics", ":material/topic:"),
    ("pages/11_Conversations.py", "Conversations", ":material/search:"),
)


@dataclass
class PageContext:
    db: object
    dataset_id: int | None
    dataset_name: str | None
    all_messages: pd.DataFrame
    messages: pd.DataFrame
    rollup: pd.DataFrame
    filters: dict = field(default_factory=dict)
    version: int = 0
    #: Frames derived once per data slice (``scored`` …), reachable by name from :func:`cached`.
    derived: dict = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return len(self.messages) == 0

    @property
    def key(self) -> tuple:
        """What identifies this data slice: store file, dataset, its version and the shared filters."""
        return (str(store.default_db_path()), self.dataset_id, self.version, repr(sorted(self.filters.items())))

    def frame_token(self, frame) -> str | None:
        """The name of ``frame`` when it is one of this slice's frames (the frames are never mutated)."""
        for name, known in (("messages", self.messages), ("rollup", self.rollup),
                            ("all_messages", self.all_messages), *self.derived.items()):
            if frame is known:
                return name
        return None


# --------------------------------------------------------------------------- resources

@st.cache_resource(scope="session", show_spinner=False)
def _session_db(path: str):
    """One connection per browser session (WAL, busy timeout, check_same_thread=False)."""
    return store.connect(path)


def get_db():
    return _session_db(str(store.default_db_path()))


# The dataset frames are shared by every session without copying (``cache_resource``): the metric
# functions never mutate their input (each metric's tests check it), and the version in the
# key changes whenever the dataset does. A 1M-message frame is ~300 MB, so only a few are kept.

# A save into an empty dataset keeps the frame ``load_messages`` would read back (``keep_frame=True``, equal by
# test): the first load of that version takes it instead of reading a million rows back. At most one is kept.
_KEPT: dict[tuple[str, int, int], pd.DataFrame] = {}
_KEPT_LOCK = threading.Lock()


# A save also starts scoring the sentiment of a large dataset's texts in the background
# (metrics.sentiment.prefetch_scores): the first page that needs the scores takes them from here. At most one.
_PENDING: dict[tuple[str, int, int], object] = {}


def save_dataset(db, frame: pd.DataFrame, **kwargs) -> store.SaveResult:
    """``store.save_messages`` for the pages: the next load of the saved version uses the frame kept in memory
    when the dataset held nothing before, and the sentiment of a large upload is scored in the background
    meanwhile (typed store errors propagate unchanged)."""
    from metrics.sentiment import prefetch_scores

    path = str(store.default_db_path())
    try:
        pending = prefetch_scores(frame, open_cache=partial(_score_cache, path))  # large uploads only
    except ChatlensError:  # the score cache could not be opened: the first page scores instead
        pending = None
    saved = store.save_messages(db, frame, keep_frame=True, **kwargs)
    if saved.frame is not None:
        with _KEPT_LOCK:
            _KEPT.clear()
            _KEPT[(path, saved.dataset_id, saved.version)] = saved.frame
    if pending is not None and saved.new_rows:
        with _KEPT_LOCK:
            _PENDING.clear()
            _PENDING[(path, saved.dataset_id, saved.version)] = pending
    return saved


def _score_cache(path: str):
    """The score cache on a connection of its own, for the background scoring (it closes it); it waits for
    the save's write lock up to a minute when it writes."""
    from metrics.sentiment.cache import StoreCache

    return StoreCache(store.connect(path, timeout_seconds=60.0))


def take_pending_scores(path: str, dataset_id: int | None, version: int | None):
    """The background scoring started when this dataset version was saved (once; None when there is none)."""
    with _KEPT_LOCK:
        return _PENDING.pop((path, dataset_id, version), None)


@st.cache_resource(show_spinner="Loading dataset…", max_entries=3)
def _cached_messages(path: str, dataset_id: int, version: int) -> pd.DataFrame:
    with _KEPT_LOCK:
        kept = _KEPT.pop((path, dataset_id, version), None)
    if kept is not None:
        return kept
    db = store.connect(path)
    try:
        return store.load_messages(db, dataset_id)
    finally:
        db.close()


@st.cache_resource(show_spinner=False, max_entries=3)
def _cached_rollup(path: str, dataset_id: int, version: int) -> pd.DataFrame:
    return conversation_rollup(_cached_messages(path, dataset_id, version))


@st.cache_resource(show_spinner="Filtering…", max_entries=3)
def _cached_slice(path: str, dataset_id: int, version: int, filters_key: str, _chosen: dict,
                  _topics: pd.DataFrame | None = None):
    """The filtered slice; ``filters_key`` holds the topic run's token when a topic is picked."""
    return apply_filters(_cached_messages(path, dataset_id, version), _cached_rollup(path, dataset_id, version),
                         _chosen, _topics)


@st.cache_data(show_spinner=False, max_entries=1024)
def _memo(slice_key: tuple, name: str, params: str, *, _fn, _args: tuple, _kwargs: dict):
    return _fn(*_args, **_kwargs)


@st.cache_resource(show_spinner=False, max_entries=16)
def _derived(slice_key: tuple, name: str, params: str, *, _fn, _args: tuple, _kwargs: dict):
    return _fn(*_args, **_kwargs)


def derive(ctx: "PageContext", name: str, fn, *args, **kwargs):
    """A frame (or a tuple holding frames) made from the slice's frames, computed once per slice and arguments
    and shared read-only; each frame is registered in ``ctx.derived`` (under ``name`` plus a digest of the
    arguments, ``[i]`` inside a tuple) so that :func:`cached` recognises it."""
    params = _param_key(ctx, list(args)) + _param_key(ctx, kwargs)
    if ctx.dataset_id is None:
        value = fn(*args, **kwargs)
    else:
        value = _derived(ctx.key, f"{name} {fn.__module__}.{fn.__qualname__}", params, _fn=fn, _args=args,
                         _kwargs=kwargs)
    # The token names the arguments too: the same name derived from other arguments (another window,
    # other labels) is another frame, and results cached from it must not be confused.
    tag = f"{name}#{hashlib.sha1(params.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"
    parts = value if isinstance(value, tuple) else (value,)
    for i, part in enumerate(parts):
        if isinstance(part, (pd.DataFrame, pd.Series)):
            ctx.derived[tag if part is value else f"{tag}[{i}]"] = part
    return value


def _param_key(ctx: "PageContext", value) -> str:
    """A stable text standing for one argument of :func:`cached`."""
    if isinstance(value, (pd.DataFrame, pd.Series)):
        token = ctx.frame_token(value)
        if token is not None:
            return f"<{token}>"
        try:
            digest = int(pd.util.hash_pandas_object(value, index=True).sum()) if len(value) else 0
        except TypeError:  # unhashable cells (lists, dicts): their text
            digest = repr(value.to_dict("list") if isinstance(value, pd.DataFrame) else value.tolist())
        columns = list(value.columns) if isinstance(value, pd.DataFrame) else [value.name]
        return f"<frame {len(value)} {columns} {digest}>"
    if isinstance(value, np.ndarray) and value.ndim <= 2:
        return "<array " + _param_key(ctx, pd.DataFrame(value.reshape(len(value), -1) if value.ndim else [value])) + ">"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # results holding frames: by content
        parts = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return f"<{type(value).__qualname__} {_param_key(ctx, parts)}>"
    if callable(value) and hasattr(value, "__qualname__"):
        return f"<{value.__module__}.{value.__qualname__}>"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_param_key(ctx, v) for v in value) + "]"
    if isinstance(value, dict):
        # sorted by key only: sorting the items by repr would print every frame among the values
        return "{" + ", ".join(f"{k!r}: {_param_key(ctx, v)}" for k, v in sorted(value.items(),
                                                                              key=lambda kv: repr(kv[0]))) + "}"
    return repr(value)


def cached(ctx: "PageContext", fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, computed once per data slice (dataset version + filters) and options.

    Page reruns (every click) then only render: the result comes from Streamlit's data cache, shared by
    every session, so ten people opening the same page compute it once. The slice's frames are recognised by
    identity (``ctx.messages``, ``ctx.rollup``, ``ctx.all_messages``, ``ctx.derived[...]``); other frames,
    numpy arrays and dataclass results by their content; anything else by its ``repr`` (options are frozen
    dataclasses or plain values). ``fn`` must be a named function (a lambda has no stable name).
    """
    if getattr(fn, "__name__", "<lambda>") == "<lambda>":  # every lambda has the same name: no stable key
        raise TypeError("cached() needs a named function, not a lambda")
    if ctx.dataset_id is None:
        return fn(*args, **kwargs)
    name = f"{fn.__module__}.{fn.__qualname__}"
    params = _param_key(ctx, list(args)) + _param_key(ctx, kwargs)
    return _memo(ctx.key, name, params, _fn=fn, _args=args, _kwargs=kwargs)


@st.cache_resource(show_spinner="Scoring sentiment…", max_entries=2)
def _scored_frame(slice_key: tuple, cutoffs_key: str, _messages: pd.DataFrame, _db, _cutoffs, _compound):
    from metrics.sentiment import add_sentiment
    from metrics.sentiment.cache import StoreCache

    if _compound is None:
        try:
            cache = StoreCache(_db)
        except ChatlensError:
            cache = None
        pending = take_pending_scores(*slice_key[:3]) if len(slice_key) >= 3 else None
        return add_sentiment(_messages, cache=cache, cutoffs=_cutoffs, pending=pending)
    return add_sentiment(_messages, _compound, cutoffs=_cutoffs)


def scored(ctx: "PageContext", *, cutoffs=None, compound: pd.Series | None = None) -> pd.DataFrame:
    """``ctx.messages`` with VADER ``compound`` and ``sentiment`` columns, computed once per data slice and
    cut-offs and shared by every page and session (scores come from the store's score cache when known).

    Registered as ``ctx.derived["scored"]`` so :func:`cached` recognises it. ``compound`` (the scores of
    ``ctx.messages``, when the page has just computed them) saves scoring again.
    """
    from metrics.sentiment import ANALYZER_VERSION, Cutoffs

    cutoffs = cutoffs if cutoffs is not None else Cutoffs()
    frame = _scored_frame(ctx.key, f"{cutoffs!r} {ANALYZER_VERSION}", ctx.messages, ctx.db, cutoffs, compound)
    ctx.derived["scored" if cutoffs == Cutoffs() else f"scored {cutoffs!r}"] = frame
    return frame


def ensure_sample(db) -> None:
    """Load the generated sample when the store has no dataset at all."""
    if len(store.list_datasets(db)):
        return
    if not SAMPLE_PATH.exists():
        return
    from metrics.io.loaders import load_bytes

    result = load_bytes(SAMPLE_PATH.read_bytes(), SAMPLE_PATH.name, pseudonym_key=store.pseudonym_key(db))
    save_dataset(db, result.frame, dataset_name=SAMPLE_NAME, source_format=result.format, file_name=SAMPLE_PATH.name)


# --------------------------------------------------------------------------- page set-up

def _init_state() -> None:
    st.session_state.setdefault("active_dataset_id", None)
    st.session_state.setdefault("filters", {})
    st.session_state.setdefault("browse_conversation", None)


def page_link(path: str, *, label: str, icon: str | None = None) -> None:
    """``st.page_link`` that also works when a page file is itself the entrypoint.

    Under ``streamlit run app.py`` every path resolves; only when a page runs on its own (for
    example ``AppTest.from_file("pages/4_Intents.py")``) does Streamlit not know the other pages,
    and a plain link to the page's URL is drawn instead.
    """
    try:
        st.page_link(path, label=literal(label), icon=icon)
    except StreamlitPageNotFoundError:
        st.markdown(f"[{literal(label)}](/{literal(_url_path(path))})")


def draw_nav() -> None:
    with st.sidebar:
        st.markdown("### Chatlens")
        for path, label, icon in PAGES:
            if (ROOT / path).exists():
                page_link(path, label=label, icon=icon)
        st.divider()
    auth.sidebar_user()


def _url_path(path: str) -> str:
    """The URL path Streamlit gives a page file: ``pages/1_Data.py`` -> ``Data``; app.py -> ``''``."""
    if path == "app.py":
        return ""
    stem = Path(path).stem
    return stem.split("_", 1)[1] if "_" in stem and stem.split("_", 1)[0].isdigit() else stem


#: The shared state a link carries (every page): the dataset's id, the date range ``FROM..TO``, and the
#: channels, segments and topic ids picked in the sidebar (repeated parameters).
URL_DATASET, URL_PERIOD, URL_MULTI = "dataset", "period", {"channel": "channels", "segment": "segments",
                                                          "topic": "topics"}
#: The active-filters badge (``st.badge`` escapes its label itself, so constants only).
ACTIVE_BADGES = {1: "1 filter active", 2: "2 filters active", 3: "3 filters active", 4: "4 filters active"}
_FILTER_WIDGETS = ("shell_dates_", "shell_channel_", "shell_segment_", "shell_topic_")


def _url_state() -> tuple:
    """The shared parameters as they are in the URL now (comparable with what :func:`_write_url` wrote)."""
    q = st.query_params
    return (q.get(URL_DATASET), q.get(URL_PERIOD), *(tuple(q.get_all(p)) for p in URL_MULTI.values()))


def _read_url(ids: list[int], names: dict) -> None:
    """A link's dataset and filters become the session's: on a session's first page, or whenever the URL holds
    shared parameters this session did not write (a link followed inside the app). Bad values fall back,
    with a notice. A URL without them (navigation between pages) keeps the session's choices."""
    now = _url_state()
    if not any(now) or now == st.session_state.get("shell_url_written"):
        return
    q, notices, saved = st.query_params, [], {}
    raw = q.get(URL_DATASET)
    if raw is not None:
        wanted = int(raw) if str(raw).isdigit() else None
        if wanted in ids:
            st.session_state["active_dataset_id"] = wanted
        else:
            current = st.session_state.get("active_dataset_id")
            notices.append(f"The link names dataset {raw!r}, which is not stored here: showing "
                           f"{names[current if current in ids else ids[0]]}.")
    raw = q.get(URL_PERIOD)
    if raw is not None:
        try:
            lo, hi = (pd.Timestamp(part).date() for part in str(raw).split("..", 1))
            if lo > hi:
                raise ValueError
            saved["dates"] = (lo, hi)
        except (ValueError, TypeError):
            notices.append(f"The link's period {raw!r} is not FROM..TO (dates, e.g. 2026-11-02..2026-11-08): "
                           "showing every date.")
    for column, param in URL_MULTI.items():
        values = q.get_all(param)
        if column == "topic" and values:
            good = [int(v) for v in values if str(v).isdigit()]
            if len(good) < len(values):
                notices.append(f"The link's topics {values!r} are not all topic ids: kept {good}.")
            values = good
        if values:
            saved[column] = list(dict.fromkeys(values))
    reset_filters()
    st.session_state["filters"] = saved
    st.session_state["shell_url_notices"] = notices


def _write_url(dataset_id: int, chosen: dict) -> None:
    """The session's dataset and filters into the URL (only the parameters that changed)."""
    q = st.query_params
    if q.get(URL_DATASET) != str(dataset_id):
        q[URL_DATASET] = str(dataset_id)
    period = f"{chosen['dates'][0].isoformat()}..{chosen['dates'][1].isoformat()}" if "dates" in chosen else None
    if period is None and URL_PERIOD in q:
        del q[URL_PERIOD]
    elif period is not None and q.get(URL_PERIOD) != period:
        q[URL_PERIOD] = period
    for column, param in URL_MULTI.items():
        values = [str(v) for v in chosen.get(column, [])]
        if q.get_all(param) != values:
            if values:
                q[param] = values
            elif param in q:
                del q[param]
    st.session_state["shell_url_written"] = _url_state()


def reset_filters() -> None:
    """Forget every shared filter (all pages' widgets too)."""
    st.session_state["filters"] = {}
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(_FILTER_WIDGETS)]:
        del st.session_state[key]


def filter_by_topic(topic: int) -> None:
    """Make the stored topic ``topic`` the only shared filter (the sidebar's Topic; other filters cleared)."""
    reset_filters()
    st.session_state["filters"] = {"topic": [int(topic)]}


def setup_page(title: str, *, filters: bool = True) -> PageContext:
    """Configure the page, draw navigation and return the active data (filtered)."""
    st.set_page_config(page_title=f"{title} · Chatlens", page_icon="🔎", layout="wide")
    st.html(STYLESHEET)  # constant CSS (metric labels wrap); style-only HTML takes no space on the page
    configure_arrow_memory()  # once per process in effect (idempotent): faster first loads
    auth.gate()  # optional sign-in (.streamlit/secrets.toml): draws the login and stops when signed out
    _init_state()
    draw_nav()
    db = get_db()
    try:
        ensure_sample(db)
    except ChatlensError as exc:
        show_error(exc)
    datasets = store.list_datasets(db)
    path = str(store.default_db_path())
    if len(datasets) == 0:
        st.sidebar.info("No dataset yet: upload one on the Data page.")
        empty = _empty_messages()
        return PageContext(db, None, None, empty, empty, conversation_rollup(empty))
    ids = datasets["id"].astype(int).tolist()
    names = dict(zip(ids, datasets["name"]))
    _read_url(ids, names)
    for notice in st.session_state.pop("shell_url_notices", []):
        st.warning(literal(notice), icon=":material/link_off:")
    active = st.session_state.get("active_dataset_id")
    if active not in ids:
        active = ids[0]
    key = f"shell_dataset_{title}"
    st.session_state[key] = active  # the shared choice drives every page's selector

    def _picked():
        st.session_state["active_dataset_id"] = st.session_state[key]
        reset_filters()  # another dataset's dates, channels and topics mean nothing here

    choice = st.sidebar.selectbox("Dataset", ids, format_func=lambda i: names[i], key=key, on_change=_picked)
    st.session_state["active_dataset_id"] = choice
    version = int(datasets.set_index("id").loc[choice, "version"])
    messages = _cached_messages(path, choice, version)
    rollup = _cached_rollup(path, choice, version)
    topics = _topic_pairs(db, path, choice) if filters else None
    chosen = _draw_filters(rollup, title, topics) if filters else {}
    _write_url(choice, chosen)
    f_messages, f_rollup = (_cached_slice(path, choice, version, repr(sorted(chosen.items())), chosen,
                                          topics.pairs if topics is not None and "topic" in chosen else None)
                            if chosen else (messages, rollup))
    return PageContext(db, choice, names[choice], messages, f_messages, f_rollup, chosen, version)


def _empty_messages() -> pd.DataFrame:
    from metrics.io.schema import empty_frame

    return empty_frame()


@dataclass(frozen=True)
class TopicFilter:
    """The stored topics that filter every page: ``unit`` of the run, ``token`` (changes with the stored
    assignment or a name), ``names`` ``{topic: name}``; :attr:`pairs` (conversation_id, topic, name) is read
    only when a topic is picked."""

    path: str
    dataset_id: int
    unit: str
    token: str
    names: dict

    @property
    def pairs(self) -> pd.DataFrame:
        return _cached_topic_pairs(self.path, self.dataset_id, self.unit, self.token)


@st.cache_resource(show_spinner=False, max_entries=3)
def _cached_topic_pairs(path: str, dataset_id: int, unit: str, token: str) -> pd.DataFrame:
    from metrics.topics import persist

    db = store.connect(path)
    try:
        return persist.conversation_topics(db, dataset_id, unit)
    finally:
        db.close()


@st.cache_data(show_spinner=False, max_entries=16)
def _cached_topic_names(path: str, dataset_id: int, unit: str, token: str) -> dict:
    from metrics.topics import persist

    db = store.connect(path)
    try:
        return persist.run_topic_names(db, dataset_id, unit)
    finally:
        db.close()


def _topic_pairs(db, path: str, dataset_id: int) -> TopicFilter | None:
    """The dataset's stored topics as a filter, or None before its first topic run (or when unreadable)."""
    from metrics.topics import persist

    try:
        unit, token = persist.filter_run(db, dataset_id)
        if unit is None:
            return None
        return TopicFilter(path, dataset_id, unit, token, _cached_topic_names(path, dataset_id, unit, token))
    except ChatlensError:
        return None


def topic_filter(ctx: PageContext) -> TopicFilter | None:
    """The active dataset's stored topics (what the Topic filters offer), or None before its first topic run."""
    if ctx.dataset_id is None:
        return None
    return _topic_pairs(ctx.db, str(store.default_db_path()), ctx.dataset_id)


def _draw_filters(rollup: pd.DataFrame, title: str, topics: TopicFilter | None = None) -> dict:
    """Shared filters (date range, channel, segment, topic), remembered across pages and kept in the URL."""
    saved = st.session_state["filters"]
    chosen = {}
    with st.sidebar.expander("Filters", expanded=bool(saved), icon=":material/filter_alt:"):
        starts = rollup["started_at"].dropna()
        if len(starts):
            lo, hi = starts.min().date(), starts.max().date()
            default = saved.get("dates", (lo, hi))
            default = (max(lo, min(default[0], hi)), min(hi, max(default[1], lo)))
            dates = st.date_input("Date range", value=default, min_value=lo, max_value=hi,
                                  key=f"shell_dates_{title}")
            if isinstance(dates, (tuple, list)) and len(dates) == 2:
                chosen["dates"] = (dates[0], dates[1])
                if chosen["dates"] == (lo, hi):
                    chosen.pop("dates")
        for column, label in (("channel", "Channel"), ("segment", "Segment")):
            if column in rollup.columns and rollup[column].notna().any():
                options = sorted(rollup[column].dropna().astype(str).unique().tolist())
                default = [v for v in saved.get(column, []) if v in options]
                picked = st.multiselect(literal(label), options, default=default, key=f"shell_{column}_{title}",
                                        format_func=literal)
                if picked:
                    chosen[column] = picked
        if topics is not None and topics.names:
            options = list(topics.names)
            default = [t for t in saved.get("topic", []) if t in topics.names]
            picked = st.multiselect("Topic", options, default=default, key=f"shell_topic_{title}",
                                    format_func=lambda t: literal(f"{t} · {topics.names.get(t, '')}"),
                                    help="Topics found and named on the Topics page: conversations with at least "
                                         "one message in a picked topic.")
            if picked:
                chosen["topic"] = picked
                chosen["topic_run"] = topics.token  # a rename or re-run changes the slice's key
    if chosen:
        active = len([k for k in chosen if k != "topic_run"])
        c1, c2 = st.sidebar.columns([3, 2], vertical_alignment="center")
        c1.badge(ACTIVE_BADGES[min(active, 4)], icon=":material/filter_alt:", color="orange")
        c2.button("Reset", key=f"shell_reset_{title}", on_click=reset_filters, help="Clear every filter",
                  icon=":material/filter_alt_off:")
    st.session_state["filters"] = chosen
    return chosen


def apply_filters(messages: pd.DataFrame, rollup: pd.DataFrame, chosen: dict,
                  topics: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Filter the rollup by conversation, then keep the messages of the kept conversations. ``topics`` holds
    the ``(conversation_id, topic)`` pairs a ``topic`` filter reads."""
    if not chosen:
        return messages, rollup
    keep = pd.Series(True, index=rollup.index)
    if "dates" in chosen:
        start = pd.Timestamp(chosen["dates"][0], tz="UTC")
        end = pd.Timestamp(chosen["dates"][1], tz="UTC") + pd.Timedelta(days=1)
        keep &= rollup["started_at"].ge(start) & rollup["started_at"].lt(end)
    for column in ("channel", "segment"):
        if column in chosen and column in rollup.columns:
            keep &= rollup[column].astype("str").isin([str(v) for v in chosen[column]])
    if "topic" in chosen and topics is not None:
        members = topics.loc[topics["topic"].isin(chosen["topic"]), "conversation_id"]
        keep &= rollup["conversation_id"].astype("str").isin(members)
    kept = rollup[keep.to_numpy(bool)].reset_index(drop=True)
    return messages[messages["conversation_id"].isin(kept["conversation_id"])].reset_index(drop=True), kept


# --------------------------------------------------------------------------- rendering helpers

def change_annotations(ctx: "PageContext") -> pd.DataFrame | None:
    """The change log of the active dataset as chart annotations (None when there is none or it cannot be read)."""
    if ctx.dataset_id is None:
        return None
    try:
        from metrics.improve import changelog

        notes = changelog.annotations(ctx.db, ctx.dataset_id)
    except ChatlensError:
        return None
    return notes if len(notes) else None


def _build_chart(builder, args: tuple, kwargs: dict, notes, annotate: tuple | None):
    """``builder(*args, **kwargs)`` with the change log layered on, as a validated Vega-Lite spec (the chart
    itself when its data is too large for an inline spec)."""
    import altair as alt

    from metrics.improve.changelog_charts import period_annotation_layer, with_annotations

    chart = builder(*args, **kwargs)
    if annotate and annotate[0] == "period":
        layers = period_annotation_layer(notes, period=annotate[1], field=annotate[2])
        chart = alt.layer(chart, *layers) if layers else chart
    elif annotate and annotate[0] == "dates":
        chart = with_annotations(chart, notes, x=annotate[1])
    try:
        return chart.to_dict()
    except alt.MaxRowsError:
        return chart


def chart(ctx: "PageContext", builder, *args, annotate: tuple | None = None, **kwargs):
    """The chart ``builder(*args, **kwargs)`` (a function of a ``metrics/*_charts.py`` module), built once per
    data slice and arguments (:func:`cached`): a rerun reuses its Vega-Lite spec instead of building and
    validating the altair chart again. ``annotate`` layers the change log: ``("period", period, field)`` for a
    period-label axis, ``("dates", x)`` for a time axis. Render it with :func:`show_chart` or
    :func:`ui.drill.chart_with_drill`."""
    notes = change_annotations(ctx) if annotate else None
    return cached(ctx, _build_chart, builder, args, kwargs, notes, annotate)


def render_chart(spec_or_chart, *, key: str | None = None, on_select="ignore", width="stretch"):
    """Draw what :func:`chart` returned (a spec, or an altair chart); returns the selection event."""
    if isinstance(spec_or_chart, dict):
        return st.vega_lite_chart(spec_or_chart, on_select=on_select, key=key, width=width)
    return st.altair_chart(spec_or_chart, on_select=on_select, key=key, width=width)


def show_chart(ctx: "PageContext", builder, *args, key: str | None = None, on_select="ignore",
               annotate: tuple | None = None, **kwargs):
    """:func:`chart` drawn full width; returns the selection event (``on_select="rerun"`` to use it)."""
    return render_chart(chart(ctx, builder, *args, annotate=annotate, **kwargs), key=key, on_select=on_select)


def show_error(exc: Exception) -> None:
    """Turn a typed Chatlens error into an on-page message (never a traceback)."""
    if isinstance(exc, ValidationError):
        st.error(f"**The file was not loaded.** {exc.total:,} problem(s) found. First: {literal(exc.problems[0])}"
                 if exc.problems else literal(exc))
        frame = getattr(exc, "frame", None)
        if frame is None:
            frame = exc.to_frame()
        with st.expander(f"All {exc.total:,} problem(s)", expanded=exc.total <= 5):
            st.dataframe(frame.head(500), width="stretch", hide_index=True)
            st.download_button("Download the problem list (CSV)", partial(to_csv_bytes, frame), file_name="problems.csv",
                               mime="text/csv", key=f"problems_{id(exc)}")
    else:
        st.error(literal(without_server_paths(str(exc))))


#: Absolute file paths in an unexpected exception's message (``/srv/app/ui/x.py``, ``C:\\app\\x.py``).
_PATHS = re.compile(r"(?<![\w.:/\\])(?:[A-Za-z]:)?(?:[/\\][\w.~@+-]+){2,}[/\\]?")
#: The longest exception message shown (the server log has all of it).
MAX_ERROR_CHARS = 300


@functools.lru_cache(maxsize=1)
def _server_roots() -> re.Pattern:
    """This server's own directories (the app, the store, Python, home, temp), longest first."""
    import sys
    import tempfile

    roots = {str(ROOT), str(store.default_db_path().resolve().parent), sys.prefix, sys.base_prefix,
             sys.exec_prefix, tempfile.gettempdir(), str(Path.home())}
    roots = sorted((r for r in roots if r and r not in ("/", ".")), key=len, reverse=True)
    return re.compile("|".join(re.escape(r) + r"(?:[^\s'\",;)\]]*[^\s'\",;)\].:])?" for r in roots))


def without_server_paths(text: str) -> str:
    """``text`` with every path under this server's own directories replaced by ``<path>`` (typed messages
    name files the user gave; the server's paths are never theirs to see)."""
    return _server_roots().sub("<path>", text)


def error_summary(exc: BaseException) -> str:
    """``exc``'s message on one line, absolute file paths replaced by ``<path>``, at most
    :data:`MAX_ERROR_CHARS` characters."""
    text = " ".join(_PATHS.sub("<path>", without_server_paths(str(exc))).split())
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 1] + "…"


def show_unexpected(exc: BaseException) -> None:
    """An error Chatlens did not expect: one line on the page (its type and message, escaped, without file
    paths) and a hint to report it; the traceback goes to the server log under a short reference."""
    reference = secrets.token_hex(4)
    log.error("Unexpected error on a page (reference %s)", reference, exc_info=exc)
    st.error(f"Something went wrong on this page: {literal(type(exc).__name__)}: {literal(error_summary(exc))}",
             icon=":material/error:")
    st.caption(f"This is a bug in Chatlens. Please report it with the reference {literal(reference)}: the "
               "details are in the server log.")


class page_guard:
    """The edge of a page (and of a fragment or a callback, see :func:`guarded`)::

        with shell.page_guard():
            ctx = shell.setup_page("Data")
            ...

    A :class:`~metrics.errors.ChatlensError` becomes its message (:func:`show_error`); any other exception
    becomes one line (:func:`show_unexpected`) with the traceback logged, never a traceback on the page.
    Streamlit's own control flow (``st.rerun``, ``st.stop``, ``st.switch_page``) is not an ``Exception``
    and passes through.
    """

    def __enter__(self) -> "page_guard":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        try:
            if isinstance(exc, ChatlensError):
                show_error(exc)
            else:
                show_unexpected(exc)
        except Exception as shown:  # noqa: BLE001 - the message itself failed: still no traceback
            show_unexpected(shown)
        return True


def guarded(fn):
    """``fn`` (a widget callback or an ``st.fragment`` body) run inside :class:`page_guard`."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with page_guard():
            return fn(*args, **kwargs)
    return run


def download_csv(frame: pd.DataFrame, *, label: str = "Download CSV", file_name: str = "chatlens.csv",
                 key: str) -> None:
    """A download button for the numbers behind a view; formula cells are escaped.

    The CSV is written only when the button is clicked (deferred data): a rerun does not serialise every
    table of the page, and no media file of an earlier run is left for the browser to miss.
    """
    st.download_button(literal(label), partial(to_csv_bytes, frame), file_name=file_name, mime="text/csv", key=key)


CONVERSATIONS_PAGE = "pages/11_Conversations.py"


def open_conversation(conversation_id: str, **filters) -> None:
    """Jump to the Conversations page showing ``conversation_id`` (``?cid=`` in the URL; ``filters`` are more
    of that page's URL parameters, kept for its "Back to list"). The Data page's browser is pointed at it too."""
    st.session_state["browse_conversation"] = str(conversation_id)
    params = {k: str(v) for k, v in filters.items() if v not in (None, "")}
    st.switch_page(CONVERSATIONS_PAGE, query_params={**params, "cid": str(conversation_id)})


def open_conversations(**filters) -> None:
    """Jump to the Conversations page's list filtered by ``filters`` (its URL parameters: ``intent``,
    ``reason``, ``topic``, ``channel``, ``definition`` + ``outcome``, ``q``, ...)."""
    st.switch_page(CONVERSATIONS_PAGE, query_params={k: str(v) for k, v in filters.items() if v not in (None, "")})


def conversation_list(frame: pd.DataFrame, *, key: str, columns: list[str] | None = None) -> None:
    """List conversations (needs a ``conversation_id`` column); picking one opens it in the browser."""
    if frame is None or len(frame) == 0:
        st.info("No conversations match.")
        return
    shown = frame[columns] if columns else frame
    st.caption(f"{len(frame):,} conversation(s). Select a row to open it on the Conversations page.")
    # headers in words (``first_message`` -> "first message"); the frame keeps its column names
    labels = {c: st.column_config.Column(str(c).replace("_", " ")) for c in shown.columns if "_" in str(c)}
    event = st.dataframe(shown.head(1000), width="stretch", hide_index=True, on_select="rerun",
                         selection_mode="single-row", key=key, column_config=labels)
    rows = event["selection"]["rows"] if event and "selection" in event else []
    if rows:
        cid = shown.head(1000).iloc[rows[0]]["conversation_id"]
        if st.button(f"Open conversation {literal(cid)}", key=f"{key}_open"):
            open_conversation(cid)


#: Chat bubbles drawn per page of a transcript: a conversation of 60,000 messages (a broken export that put
#: everything in one conversation) must not freeze the page.
TRANSCRIPT_PAGE = 200


def render_transcript(messages: pd.DataFrame, *, key: str = "transcript_page") -> None:
    """Chat bubbles for one conversation, :data:`TRANSCRIPT_PAGE` at a time. Text is always shown literally
    (never Markdown/HTML)."""
    avatars = {"user": "user", "bot": "assistant", "agent": ":material/support_agent:",
               "system": ":material/settings:"}
    total = len(messages)
    if total > TRANSCRIPT_PAGE:
        pages = (total + TRANSCRIPT_PAGE - 1) // TRANSCRIPT_PAGE
        page = st.number_input(f"Page of the transcript (1–{pages:,}; {TRANSCRIPT_PAGE} messages each)",
                               min_value=1, max_value=pages, value=1, step=1, key=key)
        start = (int(page) - 1) * TRANSCRIPT_PAGE
        st.caption(f"Messages {start + 1:,}–{min(start + TRANSCRIPT_PAGE, total):,} of {total:,}.")
        messages = messages.iloc[start:start + TRANSCRIPT_PAGE]
    for msg in messages.itertuples(index=False):
        speaker = getattr(msg, "speaker", "user")
        name = "user" if speaker == "user" else "assistant"
        with st.chat_message(name, avatar=avatars.get(speaker)):
            meta = [speaker]
            ts = getattr(msg, "timestamp", None)
            if ts is not None and not pd.isna(ts):
                meta.append(pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M:%S UTC"))
            intent = getattr(msg, "intent", None)
            if speaker == "user" and intent is not None and not pd.isna(intent):
                conf = getattr(msg, "confidence", None)
                meta.append(f"intent {intent}" + ("" if conf is None or pd.isna(conf) else f" ({conf:.2f})"))
            sentiment = getattr(msg, "sentiment", None)
            if speaker == "user" and sentiment is not None and not pd.isna(sentiment):
                compound = getattr(msg, "compound", None)
                meta.append(f"sentiment {sentiment}" + ("" if compound is None or pd.isna(compound)
                                                        else f" ({compound:+.2f})"))
            event = getattr(msg, "event", None)
            if event is not None and not pd.isna(event):
                meta.append(f"event {event}")
            st.text(" · ".join(str(m) for m in meta))
            st.text(getattr(msg, "text", "") or "")

