"""Links from the Overview's operational view open the target page on the right filter (?reason=, ?intent=, ...)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from conftest import ROOT


def _page(path: str, **params) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page(path)
    at.query_params.update(params)
    at.run()
    assert not at.exception, at.exception
    return at


def _markdown(at) -> str:
    return " ".join(m.value for m in at.markdown)


def test_reason_link_lists_the_escalations_with_that_reason(db_path):
    at = _page("pages/3_Outcomes.py", reason="Customer requested agent")
    assert "Escalations (reason Customer requested agent)" in _markdown(at)


def test_intent_link_lists_the_misread_messages_of_that_intent(db_path):
    at = _page("pages/4_Intents.py", intent="billing")
    assert "Messages labelled `billing` that the bot misread" in _markdown(at)
    table = [d for d in at.dataframe if "true_intent" in d.value.columns and len(d.value)
             and set(d.value["true_intent"]) == {"billing"}]
    assert table and (table[0].value["intent"] != "billing").all()


def test_stage_link_lists_the_conversations_that_stopped_there(db_path):
    at = _page("pages/6_Funnel.py", stage="qualification question answered")
    assert "qualification question answered" in _markdown(at)
    assert any("conversation_id" in d.value.columns and len(d.value) > 0 for d in at.dataframe)


def test_without_a_link_nothing_is_preselected(db_path):
    at = _page("pages/3_Outcomes.py")
    assert "Escalations (reason" not in _markdown(at)
