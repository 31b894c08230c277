"""Every page edge turns an exception into one line, never a traceback (``ui.shell.page_guard``).

Each page (app.py and every file of pages/) is run under AppTest with the view it calls monkeypatched to raise: a typed
``ChatlensError`` shows its message (``ui.shell.show_error``); any other exception shows "Something went
wrong on this page: <type>: <message>" plus a hint to report it, and its traceback goes to the server log.
Neither leaves an ``exception`` element, a server path or Markdown from the message on the page. Widget
callbacks and fragments (``ui.shell.guarded``) and Streamlit's own control flow are checked too.
"""

from __future__ import annotations

import logging

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from metrics.errors import ConfigError
from ui import shell

#: Page -> (module, function) of the view the page calls first.
VIEWS = {
    "app.py": ("ui.overview", "render"),
    "pages/1_Data.py": ("ui.data_page", "render_upload"),
    "pages/2_Engagement.py": ("ui.engagement_view", "render"),
    "pages/3_Outcomes.py": ("ui.outcomes_view", "render"),
    "pages/4_Intents.py": ("ui.intents_view", "render"),
    "pages/5_Sentiment.py": ("ui.sentiment_view", "render"),
    "pages/6_Funnel.py": ("ui.funnel_view", "render"),
    "pages/7_ROI.py": ("ui.roi_view", "render"),
    "pages/8_Audit.py": ("ui.audit_view", "render"),
    "pages/9_Improvement.py": ("ui.improvement_view", "render"),
    "pages/10_Topics.py": ("ui.topics_view", "render"),
    "pages/11_Conversations.py": ("ui.conversations_view", "render"),
}
PAGE_FILES = ["app.py", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))]
#: A message with a server path and a Markdown link: neither may reach the page as such.
SECRET_PATH = f"{ROOT}/metrics/secret_module.py"  # this checkout's own path, wherever it is (CI clones elsewhere)
MESSAGE = f'cannot read File "{SECRET_PATH}", line 12 [sign in again](http://127.0.0.2:9/login)'
TEXT_ELEMENTS = ("markdown", "caption", "error", "warning", "info", "success", "exception", "text", "code",
                 "title", "header", "subheader", "json", "toast")


def test_every_page_has_a_view_to_break():
    assert set(PAGE_FILES) <= set(VIEWS), f"a new page: add the view it calls to VIEWS: {set(PAGE_FILES) - set(VIEWS)}"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store for the module (the built-in sample is loaded into it once)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHATLENS_DB", str(tmp_path_factory.mktemp("errors") / "chatlens.db"))
        yield


def _texts(at) -> list[str]:
    return [str(getattr(e, "value", "")) for kind in TEXT_ELEMENTS for e in at.get(kind)]


def _open(path: str) -> AppTest:
    """``path`` as in a real session: app.py first, then a switch to the page (no exception either way)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    if path != "app.py":
        at.switch_page(path)
        at.run()
    return at


def _break(monkeypatch, path: str, exc: Exception) -> None:
    module, name = VIEWS[path]

    def broken(*args, **kwargs):
        raise exc

    monkeypatch.setattr(f"{module}.{name}", broken)


def _assert_no_traceback(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    shown = "\n".join(_texts(at))
    assert str(ROOT) not in shown and '.py"' not in shown and "Traceback" not in shown, shown


@pytest.mark.parametrize("path", PAGE_FILES)
def test_unexpected_error_is_one_line_and_logged(store, monkeypatch, caplog, path):
    _break(monkeypatch, path, ValueError(MESSAGE))
    with caplog.at_level(logging.ERROR, logger="ui.shell"):
        at = _open(path)
    _assert_no_traceback(at)
    errors = [e.value for e in at.error]
    wrong = [e for e in errors if e.startswith("Something went wrong on this page: ValueError: ")]
    assert len(wrong) == 1, errors
    assert "cannot read File" in wrong[0] and "<path>" in wrong[0]
    assert "\\[sign in again\\](http\\:\u2060//127.0.0.2" in wrong[0]  # escaped: shown as typed, no link
    assert any("Please report it" in c.value for c in at.caption)
    logged = [r for r in caplog.records if r.name == "ui.shell" and r.exc_info]
    assert logged and logged[-1].exc_info[0] is ValueError  # the traceback is in the server log


@pytest.mark.parametrize("path", PAGE_FILES)
def test_typed_error_is_its_message(store, monkeypatch, path):
    _break(monkeypatch, path, ConfigError(MESSAGE))
    at = _open(path)
    _assert_no_traceback(at)
    errors = [e.value for e in at.error]
    assert any(e.startswith("cannot read File") and "\\[sign in again\\]" in e for e in errors), errors
    assert not any(e.startswith("Something went wrong") for e in errors)


def test_a_failing_callback_is_one_line():
    def script():
        import streamlit as st

        from ui import shell

        @shell.guarded
        def boom():
            raise KeyError("/srv/chatlens/ui/x.py")

        st.button("Go", key="go", on_click=boom)
        st.write("page body")

    at = AppTest.from_function(script, default_timeout=30)
    at.run()
    at.button(key="go").click().run()
    _assert_no_traceback(at)
    assert any(e.value.startswith("Something went wrong on this page: KeyError: ") for e in at.error)
    assert any("page body" in m.value for m in at.markdown)


def test_streamlit_control_flow_passes_through_the_guard():
    def script():
        import streamlit as st

        from ui import shell

        with shell.page_guard():
            st.write("before")
            st.stop()
        st.write("after")

    at = AppTest.from_function(script, default_timeout=30)
    at.run()
    assert not at.exception and not at.error
    assert [m.value for m in at.markdown] == ["before"]


def test_error_summary_has_no_paths_and_one_line():
    exc = OSError(2, "No such file or directory", "/work/main/data/x.csv")
    text = shell.error_summary(exc)
    assert "/work/" not in text and "<path>" in text and "\n" not in text
    assert shell.error_summary(ValueError("ratio 1/2/3 at http://host/a/b")) == "ratio 1/2/3 at http://host/a/b"
    assert len(shell.error_summary(ValueError("x" * 1000))) == shell.MAX_ERROR_CHARS
