"""A very long conversation is drawn a page at a time (a 60,000-message conversation froze the Data page)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

SCRIPT = """
import pandas as pd
from ui import shell
n = 450
shell.render_transcript(pd.DataFrame({"speaker": ["user", "bot"] * (n // 2),
                                      "text": [f"message {i}" for i in range(n)],
                                      "timestamp": pd.NaT}))
"""


def test_a_long_transcript_shows_one_page_of_bubbles_and_pages_through_all():
    at = AppTest.from_string(SCRIPT, default_timeout=60).run()
    assert not at.exception
    assert len(at.chat_message) == 200
    assert at.chat_message[0].text[1].value == "message 0"
    assert "Messages 1–200 of 450." in [c.value for c in at.caption]
    at.number_input(key="transcript_page").set_value(3).run()
    assert len(at.chat_message) == 50
    assert at.chat_message[-1].text[1].value == "message 449"


def test_a_short_transcript_has_no_page_control():
    at = AppTest.from_string(SCRIPT.replace("n = 450", "n = 10"), default_timeout=60).run()
    assert not at.exception and len(at.chat_message) == 10 and not at.number_input
