"""The Funnel page (pages/6_Funnel.py) under AppTest: define and save a funnel in the form,
see it after a fresh session, validation errors on the form, copy/rename/delete, the
drill-down from a stage bar, the privacy note and masking."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, apptest_rerun, messages_frame

PAGE = "pages/6_Funnel.py"


def _rows():
    def conv(cid, steps):
        return [{"conversation_id": cid, "timestamp": f"2024-03-04T10:{t}Z", "speaker": sp, "text": tx,
                 "event": ev, "channel": "web" if cid in ("c1", "c2") else "sms",
                 "segment": "smb", "converted": cid == "c1", "conversion_value": 250.0 if cid == "c1" else None}
                for t, sp, tx, ev in steps]
    return (conv("c1", [("00:00", "user", "quote", "inquiry"), ("01:00", "user", "5 of us", "qualification"),
                        ("02:00", "user", "ann@example.com", None), ("03:00", "user", "+1 555 0100 1234", None)])
            # c2 stops at qualification; the bot's last message contains an address -> masked
            + conv("c2", [("00:00", "user", "quote", "inquiry"), ("01:00", "user", "3 of us", "qualification"),
                          ("01:30", "bot", "Your email? Or write to sales@example.com", None)])
            # c3 gives the e-mail before answering: strict stops at qualification too
            + conv("c3", [("00:00", "user", "quote", "inquiry"), ("00:30", "user", "cy@example.net", None),
                          ("01:00", "user", "4 of us", "qualification")])
            + conv("c4", [("00:00", "user", "hi", None), ("00:10", "bot", "hello", None)]))


@pytest.fixture
def seeded(db_path):
    """An on-disk store (CHATLENS_DB) holding one small dataset, so the sample is not loaded."""
    from metrics import store

    db = store.connect(str(db_path))
    store.save_messages(db, messages_frame(_rows()), dataset_name="funnel test", source_format="csv",
                        file_name="funnel.csv")
    db.close()
    return db_path


def _app():
    # Entry point app.py, then the page (as a deep link does): page links resolve from the root.
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _submit(at, label):
    [button] = [b for b in at.form_submit_button if b.label == label]
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _frame(at, column):
    """The first table on the page that has ``column`` (AppTest does not expose dataframe keys)."""
    for element in at.dataframe:
        if column in element.value.columns:
            return element.value
    raise AssertionError(f"no table with a {column!r} column")


def _funnel(at):
    return _frame(at, "median_seconds_from_previous")


def _texts(elements):
    """Element texts joined, with the page's Markdown escapes (backslashes) removed."""
    return " ".join(str(e.value) for e in elements).replace("\\", "")


def test_define_save_and_see_it_after_a_fresh_session(seeded):
    at = _app()
    assert at.selectbox(key="funnel_pick").value == ""  # the built-in funnel
    at.text_input(key="funnel_name").set_value("Web leads")
    at.text_area(key="funnel_stages_text").set_value("asked=event:inquiry\nqualified=event:qualification\n"
                                                     "won=field:converted=true")
    _submit(at, "Save")
    assert "Saved funnel 'Web leads' (3 stages)." in _texts(at.success)
    assert at.selectbox(key="funnel_pick").value == "Web leads"
    # the page now analyses the saved funnel: 3 entered (c1 c2 c3), 3 qualified, 1 won
    table = _funnel(at)
    assert table["stage"].tolist() == ["asked", "qualified", "won"]
    assert table["conversations"].tolist() == [3, 3, 1]

    fresh = _app()  # a new session on the same store
    assert "Web leads" in fresh.selectbox(key="funnel_pick").options
    fresh.selectbox(key="funnel_pick").set_value("Web leads").run()
    assert fresh.text_area(key="funnel_stages_text").value.splitlines()[2] == "won=field:converted=true"


def test_invalid_definition_is_shown_on_the_form_and_not_saved(seeded):
    at = _app()
    at.text_input(key="funnel_name").set_value("Broken")
    at.text_area(key="funnel_stages_text").set_value("in=event:inquiry\nmail=user~(\nx=mood:happy")
    _submit(at, "Save")
    errors = _texts(at.error)
    assert "line 2: stage 'mail': rule 'user~(': invalid regex" in errors
    assert "line 3: stage 'x': rule 'mood:happy': unknown kind 'mood'" in errors
    assert "Broken" not in at.selectbox(key="funnel_pick").options
    # an unknown event name is a warning on the form, and "apply" still works
    at.text_area(key="funnel_stages_text").set_value("in=event:inquiry\nwhat=event:inquery")
    _submit(at, "Apply without saving")
    assert "event 'inquery' never occurs in the data" in _texts(at.warning)
    assert _funnel(at)["conversations"].tolist() == [3, 0]
    # an empty name is refused with a message, not an exception
    at.text_input(key="funnel_name").set_value("  ")
    _submit(at, "Save")
    assert "funnel name '  ' is empty" in _texts(at.error)


def test_copy_rename_delete(seeded):
    at = _app()
    at.text_input(key="funnel_name").set_value("A")
    _submit(at, "Save")                      # the built-in stages saved as "A"
    at.text_input(key="funnel_name").set_value("B")
    _submit(at, "Save as a copy")
    assert at.selectbox(key="funnel_pick").options == ["Lead generation (built-in)", "A", "B"]
    at.text_input(key="funnel_name").set_value("A")
    _submit(at, "Save as a copy")            # "A" exists: refused on the form
    assert "a funnel named 'A' already exists" in _texts(at.error)
    at.text_input(key="funnel_name").set_value("C")
    _submit(at, "Rename selected")           # B -> C
    assert at.selectbox(key="funnel_pick").options == ["Lead generation (built-in)", "A", "C"]
    assert at.selectbox(key="funnel_pick").value == "C"
    _submit(at, "Delete selected")           # not confirmed yet
    assert "Tick 'Yes, delete the selected funnel'" in _texts(at.error)
    at.checkbox(key="funnel_confirm_delete").check()
    _submit(at, "Delete selected")
    assert at.selectbox(key="funnel_pick").options == ["Lead generation (built-in)", "A"]
    assert at.selectbox(key="funnel_pick").value == ""


def test_stage_click_lists_the_conversations_that_stopped_there(seeded):
    at = _app()
    # the built-in lead funnel captures contact details: privacy note
    assert "stages that capture contact details" in _texts(at.info)
    assert _funnel(at)["conversations"].tolist() == [3, 3, 1, 1]
    at.session_state["funnel_chart"] = {"selection": {"stage": [{"stage": "qualification question answered"}]}}
    at.run()
    assert not at.exception
    assert "Stopped at 'qualification question answered': 2 conversation(s)" in _texts(at.markdown)
    drill = _frame(at, "last_bot_message")
    assert sorted(drill["conversation_id"]) == ["c2", "c3"]
    shown = " ".join(str(v) for v in drill["last_bot_message"].tolist())
    assert "<EMAIL>" in shown and "sales@example.com" not in shown
    # nothing on the page shows a captured address
    for frame in at.dataframe:
        assert "@example." not in frame.value.to_csv()


def test_no_exception_on_segments_and_conversion(seeded):
    at = _app()
    # channel (web: c1 c2, sms: c3 c4) side by side; c4 never enters, so sms entry is 1 of 2
    assert at.selectbox(key="funnel_by").options == ["Channel", "Segment", "ISO week"]
    side = _frame(at, "web")
    assert side["stage"].tolist()[0] == "inquiry" and side["web"].tolist()[:2] == [1.0, 1.0]
    assert side["sms"].tolist()[2] == 0.0  # c3 gave its e-mail before qualifying
    at.selectbox(key="funnel_by").set_value("week").run()
    assert not at.exception
    assert "2024-W10" in _frame(at, "2024-W10").columns
    # lead = first contact stage ("email provided"): c1 only, converted with 250
    labels = {m.label: m.value for m in at.metric}
    assert labels["Leads · period"] == "1" and labels["Converted leads · period"] == "1"
    assert labels["Value of converted leads · period"] == "250"
    assert labels["Lead-to-customer conversion · period"] == "100.0%"      # 1 converted of 1 lead (the registry)


def test_dataset_without_events_or_conversions(db_path):
    from metrics import store

    db = store.connect(str(db_path))
    store.save_messages(db, messages_frame([
        {"conversation_id": "x", "speaker": "user", "text": "my mail is a@b.io"},
        {"conversation_id": "x", "speaker": "bot", "text": "thanks"}]),
        dataset_name="bare", source_format="csv", file_name="bare.csv")
    db.close()
    at = _app()
    # the lead funnel's event stages cannot match: the page explains how to define stages instead of running it,
    # with a suggestion built from the data (no CLI syntax, no funnel of zeros)
    infos = _texts(at.info)
    assert "This dataset records no events" in infos and "intent:NAME" in infos and "--" not in infos
    assert not [d for d in at.dataframe if "conversations" in d.value.columns]
    suggestion = at.code[0].value.splitlines()
    assert [line.split("=", 1)[0] for line in suggestion] == ["user wrote", "bot answered", "gave an e-mail address"]
    at.button(key="funnel_use_suggestion").click()
    apptest_rerun(at)
    # strict order: the address came in the first message, before the bot answered
    assert _funnel(at)["conversations"].tolist() == [1, 1, 0]
    assert "no timestamps" in _texts(at.warning)
    assert "no `converted` column" in _texts(at.info)
    # a funnel on user text works without events: the address is found, never shown
    at.text_area(key="funnel_stages_text").set_value("mail=user~@")
    _submit(at, "Apply without saving")
    assert _funnel(at)["conversations"].tolist() == [1]
    assert all("a@b.io" not in f.value.to_csv() for f in at.dataframe)


# --------------------------------------------------------------------------- real browser
@pytest.mark.e2e
def test_browser_save_reload_and_click_a_bar(streamlit_server, page):
    from conftest import screenshot, wait_idle

    page.goto(f"{streamlit_server.url}/Funnel")
    wait_idle(page)
    page.get_by_role("heading", name="Funnel").first.wait_for(timeout=60000)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.get_by_label("Funnel name").fill("Browser funnel")
    page.get_by_label("Stages (in order)").fill("asked=event:inquiry\nqualified=event:qualification")
    page.get_by_role("button", name="Save", exact=True).click()
    wait_idle(page)
    page.get_by_text("Saved funnel 'Browser funnel' (2 stages).").wait_for(timeout=30000)

    # a reload is a new session: the saved funnel is still listed
    page.reload()
    wait_idle(page)
    page.get_by_test_id("stSelectbox").filter(has_text="Funnel").first.click()
    page.get_by_role("option", name="Browser funnel").wait_for(timeout=30000)
    page.keyboard.press("Escape")
    wait_idle(page)

    # the reloaded URL (?funnel=Browser+funnel) keeps the saved funnel chosen; click its first (widest, "asked")
    # bar: the drill-down lists the conversations that stopped there
    assert "funnel=Browser+funnel" in page.url
    bars = page.get_by_test_id("stVegaLiteChart").first.locator("svg.marks g.mark-rect path")
    bars.first.wait_for(timeout=30000)
    assert bars.count() == 2  # the saved funnel's two stages
    bars.first.click()
    wait_idle(page)
    page.get_by_text("Stopped at 'asked'").first.wait_for(timeout=30000)
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "funnel_drill_down")
