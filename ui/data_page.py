"""Rendering of the Data page: upload, mapping, validation report, stored datasets, conversation browser."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from metrics import store
from metrics.io import adapters
from metrics.errors import ChatlensError
from metrics.io.loaders import LoadResult, load_bytes
from metrics.io.readers import MAX_EXPANDED_BYTES_ENV, LimitError, configured_max_expanded_bytes
from metrics.io.schema import COLUMNS
from ui import auth, shell
from ui.fmt import literal

UPLOAD_TYPES = ["csv", "tsv", "txt", "json", "jsonl", "ndjson", "gz", "zip"]
NONE = "(none)"


@st.cache_data(show_spinner=False, max_entries=4)
def cached_load(digest: str, name: str, mapping: tuple, timezone: str, on_error: str, test_users: tuple,
                conv_digest: str | None, platform: str = "auto", store_path: str = "", max_expanded_bytes: int = 0,
                platform_options: tuple = (), *, _data: bytes, _conv: tuple | None,
                _key: bytes | None = None) -> LoadResult:
    """Parse, validate and mask uploaded bytes, cached on their content digest (:func:`content_digest`), the
    options and the store (whose pseudonym key ``_key`` masks ids): never on an UploadedFile, and a rerun does
    not re-hash a 200 MB upload. The expanded-size limit is the CLI's (``CHATLENS_MAX_EXPANDED_BYTES``)."""
    try:
        return load_bytes(_data, name, mapping=dict(mapping) or None, timezone=timezone, on_error=on_error,
                          test_users=test_users, conversations=_conv, platform=platform, pseudonym_key=_key,
                          platform_options=dict(platform_options) or None,
                          max_expanded_bytes=max_expanded_bytes or configured_max_expanded_bytes())
    except LimitError as exc:
        if exc.option != "max_expanded_bytes":
            raise
        raise exc.with_hint(f"on the server: set {MAX_EXPANDED_BYTES_ENV} and restart Chatlens") from None


@st.cache_data(show_spinner=False, max_entries=4)
def source_columns(digest: str, name: str, *, _data: bytes) -> list[str] | None:
    """The columns of the uploaded table (for the mapping editor), None when it cannot be read."""
    from metrics.io.readers import read_table

    try:
        return [str(c) for c in read_table(_data, name).frame.columns]
    except ChatlensError:
        return None


def content_digest(upload) -> str:
    """BLAKE2 digest of an upload's bytes, computed once per uploaded file (remembered by its file id)."""
    seen = st.session_state.setdefault("data_upload_digests", {})
    if upload.file_id not in seen:
        if len(seen) > 8:
            seen.clear()
        seen[upload.file_id] = hashlib.blake2b(upload.getvalue(), digest_size=20).hexdigest()
    return seen[upload.file_id]


def platform_label(name: str) -> str:
    if name == "auto":
        return "Detect automatically"
    if name == "generic":
        return "Generic table (CSV/JSON columns)"
    return adapters.ADAPTERS[name].label


def render_upload(ctx: shell.PageContext) -> None:
    st.subheader("Upload an export")
    upload = st.file_uploader("Transcript export (CSV, TSV, JSON, JSONL, .gz or .zip)", type=UPLOAD_TYPES,
                              key="data_upload")
    conv_upload = st.file_uploader("Optional conversations file (outcome, rating, topic ... per conversation)",
                                   type=UPLOAD_TYPES, key="data_conv_upload")
    c1, c2, c3 = st.columns(3)
    timezone = c1.text_input("Time zone of naive timestamps", value="UTC", key="data_timezone")
    on_error = c2.radio("Rows with problems", ["refuse", "skip"], key="data_on_error", horizontal=True,
                        format_func=lambda v: {"refuse": "Refuse the file", "skip": "Skip bad rows"}[v])
    tests = c3.text_input("Test user ids (glob patterns, comma-separated)", value="test*,qa-*",
                          key="data_test_users")
    platform = st.selectbox("Platform export", ["auto", "generic", *adapters.list_platforms()],
                            format_func=platform_label, key="data_platform",
                            help="Chatlens recognises native exports (Rasa, Copilot Studio, Dialogflow CX, Intercom, "
                                 "Langfuse, threaded social CSV, ConvAI); override the detection here.")
    if upload is None:
        st.caption("Nothing uploaded: the pages show the active dataset from the store.")
        return
    data = upload.getvalue()
    digest = content_digest(upload)
    conv = (conv_upload.getvalue(), conv_upload.name) if conv_upload is not None else None
    conv_digest = f"{content_digest(conv_upload)} {conv_upload.name}" if conv_upload is not None else None
    overrides = st.session_state.setdefault("data_mapping_overrides", {})
    test_users = tuple(p.strip() for p in tests.split(",") if p.strip())
    progress = st.progress(0.0, text=f"Reading {literal(upload.name)} ({len(data) / 1e6:.1f} MB)…")
    try:
        result = cached_load(digest, upload.name, tuple(sorted(overrides.items())), timezone, on_error, test_users,
                             conv_digest, platform, str(store.default_db_path()), configured_max_expanded_bytes(),
                             _data=data, _conv=conv, _key=store.pseudonym_key(ctx.db))
    except ChatlensError as exc:
        progress.empty()
        shell.show_error(exc)
        if on_error == "refuse":
            st.info("Choose **Skip bad rows** to load the good rows and download the list of skipped ones, "
                    "or fix the mapping below.")
        _mapping_editor(digest, data, upload.name, overrides)
        return
    if result.format == "copilot_studio" and st.checkbox(
            "Exclude test-canvas transcripts (the makers' tests in Copilot Studio's design mode)",
            key="data_copilot_design_is_test",
            help="Copilot Studio marks conversations held in its test canvas; tick this to leave them out as "
                 "test traffic."):
        try:
            result = cached_load(digest, upload.name, tuple(sorted(overrides.items())), timezone, on_error,
                                 test_users, conv_digest, "copilot_studio", str(store.default_db_path()),
                                 configured_max_expanded_bytes(), (("design_mode_is_test", True),),
                                 _data=data, _conv=conv, _key=store.pseudonym_key(ctx.db))
        except ChatlensError as exc:
            progress.empty()
            shell.show_error(exc)
            return
    progress.progress(1.0, text=f"Validated {len(result.frame):,} messages.")
    _report(result)
    _mapping_editor(digest, data, upload.name, overrides, current=result.mapping)
    st.markdown("**Preview** (first 20 messages, as Chatlens reads them)")
    st.dataframe(result.frame.head(20), width="stretch", hide_index=True)
    _save_form(ctx, result, upload.name)


def _report(result: LoadResult) -> None:
    detected = adapters.ADAPTERS[result.format].label if result.format in adapters.ADAPTERS else \
        f"generic {result.format.upper()}"
    st.markdown(f"**Validation report** · read as: **{literal(detected)}** · {len(result.frame):,} messages in "
                f"{result.conversations:,} conversations")
    cols = st.columns(3)
    cols[0].metric("Rows read", f"{result.source_rows:,}")
    cols[1].metric("Rows skipped", f"{result.skipped_rows:,}")
    cols[2].metric("Test conversations excluded", f"{result.excluded_conversations:,}")
    for notice in result.notices:
        st.info(literal(notice))
    if result.skipped_rows:
        st.warning(f"{result.skipped_rows:,} row(s) were skipped. Every one is listed here.")
        st.dataframe(result.skipped.head(500), width="stretch", hide_index=True)
        shell.download_csv(result.skipped, label="Download skipped rows (CSV)", file_name="skipped_rows.csv",
                           key="data_skipped_download")


def _mapping_editor(digest: str, data: bytes, name: str, overrides: dict, current: dict | None = None) -> None:
    columns = source_columns(digest, name, _data=data)
    if columns is None:
        return
    current = current or {}
    with st.expander("Column mapping (detected; change it if a column was missed)", expanded=False):
        table = pd.DataFrame({"chatlens_column": [c.name for c in COLUMNS],
                              "source_column": [current.get(c.name, NONE) for c in COLUMNS],
                              "meaning": [c.description for c in COLUMNS]})
        edited = st.data_editor(table, key="data_mapping_editor", hide_index=True, width="stretch",
                                disabled=["chatlens_column", "meaning"],
                                column_config={"source_column": st.column_config.SelectboxColumn(
                                    "source column", options=[NONE] + columns)})
        if st.button("Apply mapping", key="data_apply_mapping"):
            new = {}
            for row in edited.itertuples(index=False):
                if row.source_column != current.get(row.chatlens_column, NONE):
                    new[row.chatlens_column] = "" if row.source_column in (NONE, None) else row.source_column
            overrides.update(new)
            st.rerun()


def _save_form(ctx: shell.PageContext, result: LoadResult, file_name: str) -> None:
    st.markdown("**Save to the store**")
    datasets = store.list_datasets(ctx.db)
    existing = datasets["name"].tolist()
    # only datasets this user may change are offered
    writable = [n for n in existing if auth.can_write_dataset(n, existing)]
    target = st.selectbox("Add to", ["A new dataset"] + writable, key="data_target")
    new = target == "A new dataset"
    name = st.text_input("Dataset name", value=Path(file_name).name.split(".")[0], key="data_name") \
        if new else target
    if st.button("Save dataset", type="primary", key="data_save"):
        # checked again at the click against the stored names: adding to an existing dataset follows the rule of
        # deleting it; a "new" dataset created meanwhile by someone else is refused by the store (create_only)
        if not auth.require_dataset_write(name, store.list_datasets(ctx.db)["name"].tolist()):
            return
        try:
            with st.spinner(f"Saving {len(result.frame):,} messages…"):
                saved = shell.save_dataset(ctx.db, result.frame, dataset_name=name, source_format=result.format,
                                           file_name=file_name, skipped_rows=result.skipped_rows,
                                           create_only=new and not auth.can_write_dataset(name, [name]))
        except ChatlensError as exc:
            shell.show_error(exc)
            return
        st.session_state["active_dataset_id"] = saved.dataset_id
        for key in ("data_target", "data_name"):  # the next upload starts at "A new dataset", named after its file
            st.session_state.pop(key, None)
        st.session_state["data_last_save"] = (
            f"Saved to '{name}': {saved.new_rows:,} new message(s), {saved.duplicate_rows:,} already present.")
        st.rerun()


def render_datasets(ctx: shell.PageContext) -> None:
    st.subheader("Stored datasets")
    if msg := st.session_state.pop("data_last_save", None):  # plain text, escaped when shown
        st.success(literal(msg))
    datasets = store.list_datasets(ctx.db)
    if len(datasets) == 0:
        st.info("The store is empty.")
        return
    st.dataframe(datasets, width="stretch", hide_index=True)
    names = dict(zip(datasets["id"].astype(int), datasets["name"]))
    with st.expander("Delete a dataset"):
        if not auth.require_admin("delete datasets"):
            return
        victim = st.selectbox("Dataset to delete", list(names), format_func=lambda i: names[i], key="data_delete_id")
        sure = st.checkbox("I understand its messages and everything derived from them are removed",
                           key="data_delete_confirm")
        if st.button("Delete", disabled=not sure, key="data_delete"):
            if not auth.require_admin("delete datasets"):  # checked again at the click
                return
            try:
                store.delete_dataset(ctx.db, int(victim))
            except ChatlensError as exc:
                shell.show_error(exc)
                return
            if st.session_state.get("active_dataset_id") == victim:
                st.session_state["active_dataset_id"] = None
            st.session_state["data_last_save"] = f"Deleted '{names[victim]}'."
            st.rerun()


def render_browser(ctx: shell.PageContext) -> None:
    st.subheader("Conversation browser")
    if ctx.dataset_id is None or len(ctx.all_messages) == 0:
        st.info("No conversations to browse.")
        return
    ids = ctx.rollup["conversation_id"].tolist()
    wanted = st.session_state.get("browse_conversation")
    if wanted is not None and wanted not in ids and wanted in set(ctx.all_messages["conversation_id"]):
        ids = [wanted] + ids
    if not ids:
        st.info("No conversation matches the filters.")
        return
    index = ids.index(wanted) if wanted in ids else 0
    cid = st.selectbox("Conversation", ids, index=index, key="data_browse_select")
    st.session_state["browse_conversation"] = cid
    convo = ctx.all_messages[ctx.all_messages["conversation_id"] == cid]
    row = ctx.rollup[ctx.rollup["conversation_id"] == cid]
    if len(row):
        r = row.iloc[0]
        st.caption(f"{int(r['message_count']):,} messages · {int(r['user_turns']):,} user turns · channel "
                   f"{literal(r['channel'])}")
    shell.render_transcript(convo)
