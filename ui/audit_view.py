"""Rendering of the Audit page (pages/8_Audit.py): reviewer, rounds, the rubric form, results.

Definitions and persistence live in :mod:`metrics.audit` and :mod:`metrics.audit.store`; this
module reads widgets, calls them and renders. Widget keys start with ``audit_``. Values the
page must remember across page switches live in plain session-state keys
(``audit_reviewer_name``, ``audit_round_id``, ``audit_current_id``) and are copied into the
widgets' keys before each widget is drawn (widget state is dropped when the page is left). The current
reviewer is also kept in the URL (``?reviewer=``) so a reload keeps it, unless sign-in is on: then it is
the signed-in user. Adding a reviewer never changes the current one. Results and exports read the store
on every run (nothing is cached across reruns), so another reviewer's saves show on the next rerun.
"""

from __future__ import annotations

import secrets
from functools import partial
from datetime import date

import pandas as pd
import streamlit as st

from metrics import audit, store
from metrics.audit import store as audit_store
from metrics.errors import ChatlensError
from metrics.core.rollup import conversation_rollup
from metrics.io.schema import has_timestamps
from ui import auth, drill, shell, urlstate
from ui.fmt import literal

__all__ = ["render"]

STRATEGY_LABELS = {"random": "Random", "stratified": "Stratified (by intent or topic)",
                   "prioritised": "Prioritised (negative, escalated, low confidence first)"}
FLASH = "audit_flash"
#: The URL parameter holding the current reviewer (when sign-in is off).
REVIEWER_PARAM = "reviewer"

#: Criterion name -> its label (constants from metrics.audit.RUBRIC).
RUBRIC_LABELS = {c.name: c.label for c in audit.RUBRIC}


# --------------------------------------------------------------------------- small helpers

def _flash(kind: str, text: str) -> None:
    """Keep a message (plain text: it is escaped when shown) for the next run."""
    st.session_state[FLASH] = (kind, text)


def _show_flash() -> None:
    item = st.session_state.pop(FLASH, None)
    if item:
        kind, text = item
        {"error": st.error, "info": st.info, "warning": st.warning}.get(kind, st.success)(literal(text))


@shell.guarded
def _copy(src: str, dst: str) -> None:
    st.session_state[dst] = st.session_state.get(src)


def _compound(db, messages: pd.DataFrame) -> pd.Series:
    """VADER compound of the user messages (aligned with their index), cached in the store."""
    from metrics.sentiment import score_messages

    users = messages[messages["speaker"].eq("user").fillna(False).astype(bool)]
    cache = None
    try:
        from metrics.sentiment.cache import StoreCache

        cache = StoreCache(db)
    except (ImportError, ChatlensError):
        cache = None
    return score_messages(users, cache=cache)


def _queued_ids(db, dataset_id: int) -> list[str]:
    """Conversations the Sentiment page queued for review (empty when that feature is absent)."""
    try:
        from metrics.audit.queue import queued_conversations
    except ImportError:
        return []
    try:
        return queued_conversations(db, dataset_id)["conversation_id"].astype(str).tolist()
    except ChatlensError:
        return []


def _known_intents(messages: pd.DataFrame) -> list[str]:
    values = set()
    for column in ("intent", "true_intent"):
        if column in messages.columns:
            values |= {str(v) for v in messages[column].dropna().unique()}
    return sorted(values)


# --------------------------------------------------------------------------- entry point

#: The page's tabs (``?tab=`` in the URL, bound by Streamlit) and choices kept in the URL: ``?round=`` (its id),
#: ``?by=``, ``?kappa=``.
AUDIT_TABS = ("Review", "New round", "Results")


def _round_choice(ids) -> urlstate.Choice:
    return urlstate.Choice("round", "audit_round_id", tuple(ids), label="audit round")


RESULT_CHOICES = (urlstate.Choice("kappa", "audit_kappa_weights", tuple(audit.KAPPA_WEIGHTS), label="kappa weights"),)


def render(ctx) -> None:
    if ctx.dataset_id is None:
        st.info("No dataset yet. Load one on the **Data** page, then come back to audit its conversations.")
        return
    db = ctx.db
    try:
        reviewer = _pick_reviewer(db)
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    if reviewer is None:
        st.info("Pick your name above (or add it) to start reviewing.")
        return
    rounds = audit_store.list_rounds(db, ctx.dataset_id)
    round_info = _pick_round(rounds)
    _show_flash_top()
    urlstate.check_tab("tab", AUDIT_TABS, label="tab")
    review, create, results = st.tabs(AUDIT_TABS, key="tab", bind="query-params")
    with create:
        _new_round(ctx, reviewer, rounds)
    with review:
        if round_info is None:
            st.info("No audit round for this dataset yet: create one in the **New round** tab.")
        else:
            _review(ctx, reviewer, round_info)
    with results:
        if round_info is None:
            st.info("Results appear once a round has saved reviews.")
        else:
            _results(ctx, round_info)


def _show_flash_top() -> None:
    item = st.session_state.get(FLASH)
    if item and item[0] == "round":
        st.session_state.pop(FLASH)
        st.success(literal(item[1]))


# --------------------------------------------------------------------------- reviewer and round

@shell.guarded
def _add_reviewer(db) -> None:
    name = st.session_state.get("audit_new_reviewer", "")
    try:
        stored = audit_store.add_reviewer(db, name)
    except ChatlensError as exc:
        _flash("error", f"Reviewer not added: {exc}")
        return
    _flash("reviewer_added", f"Reviewer '{stored}' added. Pick the name under “Your name” to review as them.")
    # Adding a reviewer never changes who is reviewing (a round once got the wrong creator that way).
    st.session_state["audit_new_reviewer"] = ""
    chosen = st.session_state.get("audit_round_reviewers")
    if isinstance(chosen, list) and stored not in chosen:  # a new reviewer joins the next round by default
        st.session_state["audit_round_reviewers"] = chosen + [stored]


def _signed_in_reviewer(db, user: str | None) -> str | None:
    """With sign-in on, the reviewer is the signed-in user (added to the reviewers once); no dropdown."""
    if user is None:
        return None
    names = audit_store.list_reviewers(db)
    stored = next((n for n in names if auth.same_user(n, user)), None) or audit_store.add_reviewer(db, user)
    st.session_state["audit_reviewer_name"] = stored
    st.caption(f"Reviewing as **{literal(stored)}** (from your sign-in). "
               "You can edit only your own reviews.")
    return stored


def _link_reviewer(names: list[str]) -> str | None:
    """The reviewer named in the URL (``?reviewer=``) when it is a stored reviewer; an unknown name falls
    back (to the one remembered in this session, or none) with a one-line notice."""
    raw = st.query_params.get(REVIEWER_PARAM)
    if raw is None:
        return None
    if raw in names:
        return raw
    st.warning(f"Link parameter 'reviewer' = {literal(repr(raw))} is not a stored reviewer; pick your name below.",
               icon=":material/link_off:")
    return None


def _pick_reviewer(db) -> str | None:
    """The current reviewer: the signed-in user when sign-in is on; otherwise, on the session's first load, the
    URL's ``?reviewer=`` (so a reload keeps it), then the one picked in this session, mirrored into the URL.
    Only picking a name changes it."""
    if auth.auth_mode() != "none":
        return _signed_in_reviewer(db, auth.current_user())
    names = audit_store.list_reviewers(db)
    left, right = st.columns([2, 3], vertical_alignment="bottom")
    remembered = st.session_state.get("audit_reviewer_name")
    remembered = remembered if remembered in names else None
    if not st.session_state.get("audit_reviewer_link_read"):  # first load in this session: the link wins
        st.session_state["audit_reviewer_link_read"] = True
        remembered = _link_reviewer(names) or remembered
    extra = {}
    if remembered is None:
        st.session_state.pop("audit_reviewer", None)
        extra["index"] = None
    else:
        st.session_state["audit_reviewer"] = remembered
    choice = left.selectbox("Your name", names, **extra, placeholder="Pick your name", key="audit_reviewer",
                            on_change=_copy, args=("audit_reviewer", "audit_reviewer_name"),
                            help="Kept in the page's link, so a reload keeps it. Reviews are saved under this "
                                 "name.")
    st.session_state["audit_reviewer_name"] = choice
    if choice is None:
        if REVIEWER_PARAM in st.query_params:
            del st.query_params[REVIEWER_PARAM]
    elif st.query_params.get(REVIEWER_PARAM) != choice:
        st.query_params[REVIEWER_PARAM] = choice
    with right.form("audit_add_reviewer_form", clear_on_submit=False, border=False):
        a, b = st.columns([3, 1], vertical_alignment="bottom")
        a.text_input("New reviewer", key="audit_new_reviewer", placeholder="Add a reviewer's name")
        b.form_submit_button("Add reviewer", on_click=_add_reviewer, args=(db,))
    item = st.session_state.get(FLASH)
    if item and item[0] == "error" and item[1].startswith("Reviewer not added"):
        st.session_state.pop(FLASH)
        st.error(literal(item[1]))
    elif item and item[0] == "reviewer_added":
        st.session_state.pop(FLASH)
        st.success(literal(item[1]))
    return choice


def _pick_round(rounds: pd.DataFrame) -> dict | None:
    if len(rounds) == 0:
        return None
    ids = rounds["id"].astype(int).tolist()
    names = dict(zip(ids, rounds["name"]))
    urlstate.bind("audit", (_round_choice(ids),))
    remembered = st.session_state.get("audit_round_id")
    remembered = remembered if remembered in ids else ids[0]
    st.session_state["audit_round"] = remembered
    choice = st.selectbox("Audit round", ids, format_func=lambda i: names[i], key="audit_round",
                          on_change=_copy, args=("audit_round", "audit_round_id"))
    st.session_state["audit_round_id"] = choice
    urlstate.sync("audit", (_round_choice(ids),))
    return rounds[rounds["id"] == choice].iloc[0].to_dict()


# --------------------------------------------------------------------------- new round

def _new_round(ctx, reviewer: str, rounds: pd.DataFrame) -> None:
    st.markdown("Sample conversations from the active dataset (after the sidebar filters). "
                "The sample is seeded and stored, so every reviewer sees the same round.")
    queued = _queued_ids(ctx.db, ctx.dataset_id)
    if queued:
        st.caption(f"{len(queued):,} conversation(s) queued for review from the Sentiment page are offered "
                   "first by the prioritised strategy.")
    reviewers = audit_store.list_reviewers(ctx.db)
    st.session_state.setdefault("audit_default_seed", secrets.randbelow(1_000_000))
    available = shell.cached(ctx, _stratify_columns, ctx.messages)
    starts = ctx.rollup["started_at"].dropna() if "started_at" in ctx.rollup.columns else pd.Series([], dtype=object)
    with st.form("audit_round_form"):
        name = st.text_input("Round name", value=f"Round {len(rounds) + 1} · {date.today().isoformat()}",
                             key="audit_round_name", max_chars=audit_store.MAX_NAME_LENGTH)
        c1, c2, c3 = st.columns(3)
        n = c1.number_input("Conversations", min_value=1, max_value=2000, value=50, step=10, key="audit_n",
                            help="The guide suggests 50-100 conversations a week.")
        strategy = c2.selectbox("Sampling", audit.STRATEGIES, format_func=STRATEGY_LABELS.get, key="audit_strategy")
        seed = c3.number_input("Seed", min_value=0, max_value=2**31 - 1, value=st.session_state["audit_default_seed"],
                               step=1, key="audit_seed", help="The same seed and data give the same sample.")
        c4, c5, c6 = st.columns(3)
        stratify_by = c4.selectbox("Stratify by", available or ["intent"], key="audit_stratify_by",
                                   help="Used by the stratified strategy.")
        random_share = c5.slider("Random share", 0.0, 1.0, 0.2, 0.05, key="audit_random_share",
                                 help="Prioritised: this share stays random, so the round is not only bad cases.")
        low_conf = c6.slider("Low confidence below", 0.0, 1.0, 0.5, 0.05, key="audit_low_confidence",
                             help="Prioritised: a user message under this confidence flags the conversation.")
        dates = None
        if len(starts):
            lo, hi = starts.min().date(), starts.max().date()
            dates = st.date_input("Conversations started between", value=(lo, hi), min_value=lo, max_value=hi,
                                  key="audit_dates")
        c7, c8 = st.columns([2, 1])
        chosen = c7.multiselect("Reviewers", reviewers, default=reviewers, key="audit_round_reviewers",
                                help="Conversations are shared out in turn; rotate reviewers between rounds.")
        overlap = c8.slider("Overlap (two reviewers)", 0.0, 1.0, 0.2, 0.05, key="audit_overlap",
                            help="Share of conversations given to a second reviewer, to measure agreement.")
        submitted = st.form_submit_button("Create round", type="primary")
    if not submitted:
        return
    start = end = None
    if isinstance(dates, (tuple, list)) and len(dates) >= 1:
        start, end = dates[0], dates[-1]
    try:
        rid = _create_round(ctx, name=name, n=int(n), strategy=strategy, seed=int(seed), stratify_by=stratify_by,
                            random_share=float(random_share), low_confidence=float(low_conf), start=start, end=end,
                            reviewers=chosen or [reviewer], overlap=float(overlap), created_by=reviewer,
                            queued=queued)
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    st.session_state["audit_round_id"] = rid
    st.session_state[FLASH] = ("round", f"Round '{name.strip()}' created. Open the Review tab to start.")
    st.rerun()


def _stratify_columns(messages: pd.DataFrame) -> list[str]:
    """The stratification columns this data has values in."""
    return [c for c in audit.STRATIFY_COLUMNS if c in messages.columns and messages[c].notna().any()]


def _create_round(ctx, *, name, n, strategy, seed, stratify_by, random_share, low_confidence, start, end,
                  reviewers, overlap, created_by, queued) -> int:
    messages, rollup = ctx.messages, ctx.rollup
    need_sentiment = strategy == "prioritised"
    with st.spinner("Sampling conversations…"):
        compound = _compound(ctx.db, messages) if need_sentiment and len(messages) else None
        candidates = audit.audit_candidates(messages, rollup, compound=compound, queued=queued,
                                            low_confidence=low_confidence, score_sentiment=need_sentiment)
        sample = audit.sample_conversations(candidates, n=n, strategy=strategy, seed=seed, stratify_by=stratify_by,
                                            random_share=random_share, start=start, end=end)
        assignments = audit.assign_reviewers(sample["conversation_id"].tolist(), reviewers, overlap_rate=overlap,
                                             seed=seed)
        params = {"n": n, "stratify_by": stratify_by, "random_share": random_share, "low_confidence": low_confidence,
                  "start": None if start is None else str(start), "end": None if end is None else str(end),
                  "overlap_rate": overlap, "reviewers": list(reviewers), "filters": {
                      k: (list(map(str, v)) if isinstance(v, (list, tuple)) else str(v))
                      for k, v in (ctx.filters or {}).items()}}
        rid = audit_store.create_round(ctx.db, name=name, dataset_id=int(ctx.dataset_id), strategy=strategy,
                                       seed=seed, sample=sample, assignments=assignments, params=params,
                                       created_by=created_by)
    picked_up = sorted(set(queued) & set(sample["conversation_id"]))
    if picked_up:  # queued conversations now in a round leave the Sentiment page's queue
        from metrics.audit.queue import dequeue_conversations

        dequeue_conversations(ctx.db, int(ctx.dataset_id), picked_up)
    return rid


# --------------------------------------------------------------------------- review

@shell.guarded
def _go_next(db, round_id: int, reviewer: str) -> None:
    nxt = audit_store.next_unreviewed(db, round_id, reviewer, after=st.session_state.get("audit_current_id"))
    if nxt is None:
        _flash("info", "Everything in your queue is reviewed.")
        return
    st.session_state["audit_current_id"] = nxt
    st.session_state["audit_current"] = nxt


def _review(ctx, reviewer: str, round_info: dict) -> None:
    db, round_id = ctx.db, int(round_info["id"])
    queue = audit_store.reviewer_queue(db, round_id, reviewer)
    progress = audit_store.round_progress(db, round_id)
    if len(queue) == 0:
        st.info(f"{literal(reviewer)} has no conversation in round '{literal(round_info['name'])}'. "
                "Pick another round or create one that includes you.")
        return
    done, total = int(queue["reviewed"].sum()), len(queue)
    st.progress(done / total if total else 0.0)
    st.markdown(f"**{literal(reviewer)}: {done:,} of {total:,} reviewed** · round: "
                f"{progress.reviewed_conversation_count:,} of {progress.conversation_count:,} conversations reviewed "
                f"({progress.reviewed_assignment_count:,} of {progress.assignment_count:,} assignments)")
    with st.expander("Your queue"):
        st.dataframe(queue[["position", "conversation_id", "reason", "reviewed", "revision", "saved_at"]],
                     hide_index=True, width="stretch", key="audit_queue_table")
    ids = queue["conversation_id"].tolist()
    status = dict(zip(queue["conversation_id"], queue["reviewed"]))
    positions = dict(zip(queue["conversation_id"], queue["position"]))
    current = st.session_state.get("audit_current_id")
    if current not in ids:
        current = audit_store.next_unreviewed(db, round_id, reviewer) or ids[0]
    st.session_state["audit_current"] = current
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    cid = left.selectbox("Conversation", ids, key="audit_current", on_change=_copy,
                         args=("audit_current", "audit_current_id"),
                         format_func=lambda c: f"#{positions[c]} · {c} · {'reviewed' if status[c] else 'to do'}")
    st.session_state["audit_current_id"] = cid
    right.button("Next unreviewed", key="audit_next", on_click=_go_next, args=(db, round_id, reviewer),
                 width="stretch")
    pending = _other_drafts(round_id, reviewer, cid)
    if pending:
        listed = ", ".join(f"#{positions.get(c, '?')} {c}" for c in pending[:10])
        st.warning(literal(f"Unsaved draft(s) for {len(pending):,} other conversation(s): {listed}. Open one to "
                           "finish and save it."), icon=":material/edit_note:")
    _review_form(ctx, reviewer, round_info, cid)


def _review_form(ctx, reviewer: str, round_info: dict, cid: str) -> None:
    db, round_id = ctx.db, int(round_info["id"])
    conv = ctx.all_messages[ctx.all_messages["conversation_id"] == cid].reset_index(drop=True)
    if len(conv) == 0:
        st.warning(f"Conversation '{literal(cid)}' is no longer in this dataset; it cannot be reviewed.")
        return
    saved = audit_store.get_score(db, round_id, cid, reviewer)
    keys = store.message_keys(conv)
    saved_labels = audit_store.reviewer_labels(db, int(ctx.dataset_id), reviewer, keys.tolist())
    if saved:
        st.caption(f"Your review was saved at {literal(saved['saved_at'])} (revision {int(saved['revision']):,}). "
                   "Change anything and save again to update it; earlier versions are kept.")
    intents = _known_intents(ctx.all_messages)
    suffix = f"{round_id}_{cid}"
    spec = {"scores": {}, "flags": {}, "note": f"audit_note_{suffix}", "labels": []}
    draft_key = (round_id, cid, reviewer)
    draft = _drafts().get(draft_key, {})
    if draft:
        st.warning("Draft: your answers below are not saved yet (they are kept while you look at other "
                   "conversations or pages in this session). Save the review to keep them.",
                   icon=":material/edit_note:")

    def seeded(key: str, saved_value):
        """The widget's start: this session's draft, else the saved review (set once, before the widget)."""
        if key not in st.session_state:
            st.session_state[key] = draft.get(key, saved_value)
        return key

    with st.container(border=True):
        st.markdown("**Transcript** (the bot's intent and confidence are shown on each user message)")
        has_intent = "intent" in conv.columns
        for i in range(len(conv)):
            row = conv.iloc[[i]]
            shell.render_transcript(row)
            predicted = conv["intent"].iloc[i] if has_intent else None
            if conv["speaker"].iloc[i] == "user" and predicted is not None and not pd.isna(predicted):
                key = str(keys.iloc[i])
                prior = saved_labels.get(key, {})
                vkey, ikey = f"audit_verdict_{suffix}_{i}", f"audit_true_intent_{suffix}_{i}"
                a, b = st.columns([2, 3])
                verdicts = list(audit.VERDICTS)
                seeded(vkey, prior.get("verdict") if prior.get("verdict") in verdicts else None)
                a.radio(f"Intent “{literal(predicted)}” correct?", verdicts, horizontal=True, key=vkey,
                        format_func=literal, index=None, on_change=_keep_draft, args=(draft_key, vkey))
                options = list(intents)
                for known in (prior.get("true_intent"), draft.get(ikey)):
                    if known and known not in options:
                        options.append(known)
                seeded(ikey, prior.get("true_intent") or None)
                b.selectbox("If no: the correct intent", options, key=ikey, accept_new_options=True, index=None,
                            placeholder="Pick a known intent or type a new one", on_change=_keep_draft,
                            args=(draft_key, ikey))
                spec["labels"].append((key, vkey, ikey, str(predicted)))
        st.divider()
        st.markdown("**Rubric**: score each criterion from 1 to 5; each level says what it means.")
        cells = st.columns(3) + st.columns(3)
        for cell, crit in zip(cells, audit.RUBRIC):
            key = f"audit_score_{crit.name}_{suffix}"
            spec["scores"][crit.name] = key
            # the rubric's own labels (constants): not escaped, so "Accurate & helpful" is also the accessible name
            seeded(key, saved[crit.name] if saved else None)
            cell.radio(RUBRIC_LABELS[crit.name], list(audit.SCORE_LEVELS), key=key, help=literal(crit.question),
                       format_func=lambda k, c=crit: f"{k:d} · {literal(c.anchor(k))}", index=None,
                       on_change=_keep_draft, args=(draft_key, key))
        flag_cols = st.columns(len(audit.FLAGS))
        for col, flag in zip(flag_cols, audit.FLAGS):
            key = f"audit_flag_{flag}_{suffix}"
            spec["flags"][flag] = key
            seeded(key, bool(saved and flag in saved["flags"]))
            col.checkbox(audit.FLAG_LABELS[flag], key=key, on_change=_keep_draft, args=(draft_key, key))
        seeded(spec["note"], saved["note"] if saved else "")
        st.text_area("Note", key=spec["note"], on_change=_keep_draft, args=(draft_key, spec["note"]),
                     placeholder="What went well or wrong? (free text, kept with your scores)")
        st.button("Save review", type="primary", on_click=_save_review, key="audit_save_review",
                  args=(db, round_id, cid, reviewer, spec))
    _show_flash()
    if saved:
        with st.expander("History of your review"):
            history = audit_store.score_history(db, round_id, cid, reviewer)
            st.dataframe(history.drop(columns="labels"), hide_index=True, width="stretch")


def _drafts() -> dict:
    """This session's unsaved review answers: ``{(round_id, conversation_id, reviewer): {widget key: value}}``.
    Widget values vanish when their widgets are not drawn (another conversation, another page); the draft
    keeps them until the review is saved."""
    return st.session_state.setdefault("audit_drafts", {})


def _keep_draft(draft_key: tuple, widget_key: str) -> None:
    _drafts().setdefault(draft_key, {})[widget_key] = st.session_state.get(widget_key)


def _other_drafts(round_id: int, reviewer: str, current: str) -> list[str]:
    return [cid for (rid, cid, who), values in _drafts().items()
            if rid == round_id and who == reviewer and cid != current and values]


@shell.guarded
def _save_review(db, round_id: int, cid: str, reviewer: str, spec: dict) -> None:
    """The rubric form's on_click: read the widgets, save atomically, leave a message. Widgets keep their values."""
    state = st.session_state
    if auth.auth_mode() != "none" and not auth.same_user(reviewer, auth.current_user()):
        _flash("error", f"Not saved: you are signed in as {auth.current_user()!r} and can edit only your own reviews.")
        return
    scores = {c: state.get(k) for c, k in spec["scores"].items()}
    missing = [audit.RUBRIC_BY_NAME[c].label for c, v in scores.items() if v is None]
    if missing:
        _flash("error", f"Not saved: score every criterion (missing: {', '.join(missing)}). "
                        "Your answers are still in the form.")
        return
    flags = [f for f, k in spec["flags"].items() if state.get(k)]
    labels, untyped = [], 0
    for message_key, vkey, ikey, predicted in spec["labels"]:
        verdict = state.get(vkey)
        if verdict is None:
            continue
        true_intent = state.get(ikey)
        if verdict == "no" and not (true_intent or "").strip():
            untyped += 1
        labels.append({"message_key": message_key, "verdict": verdict, "true_intent": true_intent,
                       "predicted_intent": predicted, "conversation_id": cid})
    try:
        result = audit_store.save_score(db, round_id=round_id, conversation_id=cid, reviewer=reviewer,
                                        scores=scores, flags=flags, note=state.get(spec["note"]) or "",
                                        labels=labels)
    except ChatlensError as exc:
        _flash("error", f"Not saved: {exc} Your answers are still in the form; retry.")
        return
    _drafts().pop((round_id, cid, reviewer), None)  # saved: no longer a draft
    extra = f" {untyped} 'no' answer(s) have no correct intent and do not label their message." if untyped else ""
    if result.changed:
        _flash("success", f"Saved {cid} (revision {result.revision}).{extra}")
    else:
        _flash("info", f"Already saved: nothing changed (revision {result.revision}).{extra}")


# --------------------------------------------------------------------------- results

def _fmt_rate(value) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.0%}"


def _results(ctx, round_info: dict) -> None:
    db, round_id = ctx.db, int(round_info["id"])
    scores = audit_store.load_scores(db, round_id)
    st.caption(f"Round '{literal(round_info['name'])}': strategy {literal(round_info['strategy'])}, seed "
               f"{int(round_info['seed'])}, {int(round_info['conversation_count']):,} conversation(s), created "
               f"{literal(round_info['created_at'])}"
               + (f" by {literal(round_info['created_by'])}" if round_info.get("created_by") not in (None, "None")
                  else ""))
    _exports(ctx, round_info)
    if len(scores) == 0:
        st.info("No review saved in this round yet.")
        return
    conv_ids = set(scores["conversation_id"])
    messages = ctx.all_messages[ctx.all_messages["conversation_id"].isin(conv_ids)].reset_index(drop=True)
    rollup = conversation_rollup(messages)
    compound = _compound(db, messages) if len(messages) else None
    attrs = audit.audit_candidates(messages, rollup, compound=compound)

    wanted = drill.linked("topic")  # a link from the Overview's "lowest audit topics"
    if wanted is not None and "topic" in attrs.columns:
        ids = set(attrs.loc[attrs["topic"] == wanted, "conversation_id"])
        linked_scores = scores[scores["conversation_id"].isin(ids)]
        st.markdown(f"**Audited conversations about {literal(wanted)}: {linked_scores['conversation_id'].nunique():,}**")
        st.dataframe(linked_scores, hide_index=True, width="stretch", key="audit_linked_topic")

    st.subheader("Mean scores")
    means = audit.criterion_means(scores)
    st.dataframe(means, hide_index=True, width="stretch", key="audit_criterion_means",
                 column_config={"mean_score": st.column_config.NumberColumn("mean score", format="%.2f"),
                                "low_rate": st.column_config.NumberColumn("low share", format="percent")})
    patterns = audit.problem_patterns(scores, attrs)
    if len(patterns):
        st.markdown("**Patterns to act on** (groups where at least half the conversations scored 2 or lower)")
        for sentence in patterns["sentence"].head(8):
            st.text(f"• {sentence}")
    else:
        st.caption("No group has half or more of its conversations scored 2 or lower.")
    dims = [d for d in ("intent", "topic", "channel") if attrs[d].notna().any()]
    if dims:
        by_choice = (urlstate.Choice("by", "audit_results_by", tuple(dims), label="grouping"),)
        urlstate.bind("audit", by_choice)
        by = st.radio("Mean scores by", dims, horizontal=True, key="audit_results_by")
        urlstate.sync("audit", by_choice)
        groups = audit.group_means(scores, attrs, by=by)
        st.dataframe(groups, hide_index=True, width="stretch", key="audit_group_means",
                     column_config={c: st.column_config.NumberColumn(format="%.2f") for c in audit.CRITERIA})
        st.caption("Lowest overall score first: the top rows are this week's training focus.")

    st.subheader("Reviewer agreement")
    urlstate.bind("audit", RESULT_CHOICES)
    weights = st.radio("Kappa weights", audit.KAPPA_WEIGHTS, horizontal=True, key="audit_kappa_weights",
                       help="Quadratic weights punish large gaps more (usual for 1-5 scales); linear weights "
                            "treat every step the same.")
    urlstate.sync("audit", RESULT_CHOICES)
    agreement = audit.rater_agreement(scores, weights=weights)
    if len(agreement) == 0:
        st.info("No conversation has been scored by two reviewers yet: agreement needs the overlap.")
    else:
        st.dataframe(agreement, hide_index=True, width="stretch", key="audit_agreement",
                     column_config={"kappa": st.column_config.NumberColumn(format="%.2f"),
                                    "agreement_rate": st.column_config.NumberColumn("exact agreement",
                                                                                    format="percent"),
                                    "adjacent_agreement_rate": st.column_config.NumberColumn("within one point",
                                                                                             format="percent")})
        st.caption("Weighted Cohen's kappa: 1 = perfect agreement, 0 = chance; above 0.6 is usually read as "
                   "substantial. Empty kappa = undefined (fewer than 2 shared conversations or no variation).")
        gaps = audit.largest_disagreements(scores)
        if len(gaps):
            st.markdown("**Largest disagreements** (for a calibration discussion)")
            st.dataframe(gaps, hide_index=True, width="stretch", key="audit_disagreements")

    st.subheader("Reviewer bias")
    st.dataframe(audit.reviewer_bias(scores), hide_index=True, width="stretch", key="audit_bias",
                 column_config={c: st.column_config.NumberColumn(format="%+.2f")
                                for c in ["bias"] + [f"{c}_bias" for c in audit.CRITERIA]})
    st.caption("Each reviewer's mean minus the round's mean: rotate reviewers when one is consistently harsher or "
               "kinder than the rest.")

    st.subheader("Training examples")
    examples = audit.training_examples(scores)
    if len(examples) == 0:
        st.caption("No conversation is flagged as a good or bad training example yet.")
    else:
        st.dataframe(examples, hide_index=True, width="stretch", key="audit_examples")
        a, b = st.columns(2)
        with a:
            shell.download_csv(examples, label="Download examples (CSV)", file_name="audit_training_examples.csv",
                               key="audit_examples_csv")
        b.download_button("Download examples with transcripts (JSONL)",
                          partial(audit.training_examples_jsonl, examples, messages),
                          file_name="audit_training_examples.jsonl", mime="application/jsonl",
                          key="audit_examples_jsonl")

    st.subheader("Automated vs human")
    end = ctx.all_messages["timestamp"].max() if has_timestamps(ctx.all_messages) else None
    try:
        avh = audit.automated_vs_human(scores, messages, rollup, compound=compound, export_end=end)
    except ChatlensError as exc:
        shell.show_error(exc)
        return
    c1, c2 = st.columns(2)
    c1.metric("Outcome disagrees with reviewers", _fmt_rate(avh.outcome_disagreement_rate),
              help="Automated 'resolved' but reviewers scored overall 1-2, or automated escalated/abandoned/"
                   "unresolved but reviewers scored 4-5.")
    c1.caption(f"{avh.outcome_disagreement_count:,} of {avh.outcome_compared_count:,} comparable conversation(s).")
    c2.metric("VADER disagrees with tone score", _fmt_rate(avh.sentiment_disagreement_rate),
              help="User sentiment positive but tone scored 1-2, or negative but tone scored 4-5.")
    c2.caption(f"{avh.sentiment_disagreement_count:,} of {avh.sentiment_compared_count:,} comparable "
               "conversation(s).")
    flagged = avh.table[avh.table["outcome_disagrees"].fillna(False) | avh.table["sentiment_disagrees"].fillna(False)]
    if len(flagged):
        st.dataframe(flagged, hide_index=True, width="stretch", key="audit_avh")


def _exports(ctx, round_info: dict) -> None:
    a, b = st.columns(2)
    with a:
        frame = audit_store.export_scores(ctx.db, round_name=str(round_info["name"]))
        shell.download_csv(frame, label=f"Export this round's scores (CSV, {len(frame)} rows)",
                           file_name="audit_scores_round.csv", key="audit_export_round")
    with b:
        every = audit_store.export_scores(ctx.db)
        shell.download_csv(every, label=f"Export all scores (CSV, {len(every)} rows)", file_name="audit_scores.csv",
                           key="audit_export_all")

