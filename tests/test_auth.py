"""Optional sign-in (ui/auth.py) under AppTest: no secrets (sign-in off, as before), the shared
password mode, the OIDC mode (``at.user`` stands in for ``st.user``), admin-only dataset
deletion and the reviewer identity on the Audit page."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, messages_frame
from metrics import audit_store, store
from metrics.audit import CRITERIA, assign_reviewers
from ui import auth

DATA = "pages/1_Data.py"
AUDIT = "pages/8_Audit.py"
PASSWORD = {"password": "correct horse", "admins": ["alice@example.com"]}
OIDC = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "not-a-real-secret",
        "client_id": "chatlens-test", "client_secret": "not-a-real-secret",
        "server_metadata_url": "https://accounts.example.com/.well-known/openid-configuration"}


def _seed(db_path, names=("first", "second")) -> dict[str, int]:
    """Small datasets so no page loads the 3,000-conversation sample."""
    db = store.connect(str(db_path))
    ids = {}
    for k, name in enumerate(names):
        rows = [{"conversation_id": f"{name}-c{i}", "speaker": speaker, "text": f"{speaker} says {i}",
                 "timestamp": f"2026-08-0{i + 1}T10:00:0{s}Z", "intent": "billing" if speaker == "user" else None,
                 "confidence": 0.8 if speaker == "user" else None}
                for i in range(3) for s, speaker in enumerate(("user", "bot"))]
        ids[name] = store.save_messages(db, messages_frame(rows), dataset_name=name).dataset_id
    db.close()
    return ids


def _datasets(db_path) -> list[str]:
    db = store.connect(str(db_path))
    try:
        return store.list_datasets(db)["name"].tolist()
    finally:
        db.close()


def _page(path: str, *, secrets: dict | None = None, user: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=60)
    for key, value in (secrets or {}).items():
        at.secrets[key] = value
    if user is not None:
        at.user = user
    return at


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def _sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="auth_name").set_value(name)
    at.text_input(key="auth_password").set_value(password)
    at.button[0].click()  # the form's only button: "Sign in"
    return _run(at)


def _button_keys(at: AppTest) -> set:
    return {b.key for b in at.button}


# --------------------------------------------------------------------------- configuration (no script run)

@pytest.mark.parametrize("sections, mode", [
    ({}, "none"),
    ({"chatlens": {"admins": ["a"]}}, "none"),          # roles alone do not turn sign-in on
    ({"chatlens": {"password": ""}}, "none"),           # an empty password is not a password
    ({"chatlens": {"password": 1234}}, "none"),         # nor is a number (TOML without quotes)
    ({"chatlens": {"password": "p"}}, "password"),
    ({"auth": OIDC}, "oidc"),
    ({"auth": OIDC, "chatlens": {"password": "p"}}, "oidc"),  # OIDC wins when both are configured
])
def test_auth_mode_follows_the_secrets(monkeypatch, sections, mode):
    monkeypatch.setattr(auth, "_section", lambda name: dict(sections.get(name, {})))
    assert auth.auth_mode() == mode


def test_passwords_are_checked_exactly_and_admins_can_have_their_own(monkeypatch):
    conf = {"password": "team", "admin_password": "boss", "admins": ["Alice@Example.com"]}
    monkeypatch.setattr(auth, "_section", lambda name: conf if name == "chatlens" else {})
    assert auth._check_password("bob", "team")
    assert not auth._check_password("bob", "Team") and not auth._check_password("bob", "team ")
    assert not auth._check_password("bob", "boss")           # the admin password is not a second team password
    assert auth._check_password("alice@example.com", "boss")  # names compare case-insensitively
    assert not auth._check_password("alice@example.com", "team")


def test_same_user_ignores_case_and_spacing_but_never_matches_none():
    assert auth.same_user("Alice@Example.com", " alice@example.com ")
    assert not auth.same_user("alice", "alicia")
    assert not auth.same_user(None, None)


# --------------------------------------------------------------------------- sign-in off (no secrets)

def test_without_secrets_there_is_no_sign_in_and_everyone_can_delete(db_path):
    _seed(db_path)
    at = _run(_page(DATA))
    assert at.title[0].value == "Data"
    assert "auth_name" not in {t.key for t in at.text_input}
    assert not any("Signed in as" in c.value for c in at.sidebar.caption)
    assert "data_delete" in _button_keys(at)
    assert not any("Only admins" in w.value for w in at.warning)
    # the audit page keeps its reviewer dropdown
    audit = _run(_page(AUDIT))
    assert audit.selectbox(key="audit_reviewer") is not None


# --------------------------------------------------------------------------- shared password

def test_password_mode_refuses_a_wrong_password_and_admits_the_right_one(db_path):
    _seed(db_path)
    at = _run(_page(DATA, secrets={"chatlens": PASSWORD}))
    assert at.title[0].value == "Chatlens"          # the login, not the page
    assert not any(t.value == "Data" for t in at.title)
    assert at.text_input(key="auth_password").proto.type == at.text_input(key="auth_password").proto.PASSWORD

    _sign_in(at, "bob@example.com", "wrong horse")
    assert "Wrong name or password." in _texts(at.error)
    assert not any(t.value == "Data" for t in at.title)
    assert at.text_input(key="auth_password").value == ""  # the typed password is not kept

    _sign_in(at, "bob@example.com", "correct horse")
    assert any(t.value == "Data" for t in at.title)
    assert "Signed in as **bob@example\\.com**" in _texts(at.sidebar.caption)
    assert "admin" not in _texts(at.sidebar.caption)
    # logging out shows the login again
    at.button(key="auth_logout").click()
    _run(at)
    assert at.title[0].value == "Chatlens" and not any(t.value == "Data" for t in at.title)


def test_a_signed_out_visitor_touches_no_data(db_path):
    _run(_page(DATA, secrets={"chatlens": PASSWORD}))
    # gate() stops before the shell opens the store or loads the sample
    assert _datasets(db_path) == []


def test_the_reviewer_allow_list_refuses_others(db_path):
    _seed(db_path)
    conf = {**PASSWORD, "reviewers": ["bob@example.com"]}
    at = _run(_page(DATA, secrets={"chatlens": conf}))
    _sign_in(at, "carol@example.com", "correct horse")
    assert "not on the list of reviewers" in _texts(at.error)
    assert not any(t.value == "Data" for t in at.title)
    _sign_in(at, "Bob@Example.com", "correct horse")
    assert any(t.value == "Data" for t in at.title)


def test_a_non_admin_cannot_delete_a_dataset(db_path):
    _seed(db_path)
    at = _run(_page(DATA, secrets={"chatlens": PASSWORD}))
    _sign_in(at, "bob@example.com", "correct horse")
    assert "Only admins can delete datasets" in _texts(at.warning)
    assert "data_delete" not in _button_keys(at)
    assert "data_delete_id" not in {s.key for s in at.selectbox}
    assert _datasets(db_path) == ["first", "second"]


def test_an_admin_can_delete_a_dataset(db_path):
    ids = _seed(db_path)
    at = _run(_page(DATA, secrets={"chatlens": PASSWORD}))
    _sign_in(at, "alice@example.com", "correct horse")
    assert "· admin" in _texts(at.sidebar.caption)
    assert not any("Only admins" in w.value for w in at.warning)
    at.selectbox(key="data_delete_id").set_value(ids["second"])
    at.checkbox(key="data_delete_confirm").check()
    _run(at)
    at.button(key="data_delete").click()
    _run(at)
    assert "Deleted 'second'." in _texts(at.success)
    assert _datasets(db_path) == ["first"]


# --------------------------------------------------------------------------- OIDC (st.login)

def test_oidc_shows_the_login_button_when_not_logged_in(db_path, monkeypatch):
    _seed(db_path)
    monkeypatch.setattr(auth, "authlib_installed", lambda: True)
    at = _run(_page(DATA, secrets={"auth": OIDC}, user={"is_logged_in": False}))
    login = at.button(key="auth_login_default")
    assert login.label == "Log in" and not login.disabled
    assert not any(t.value == "Data" for t in at.title)
    assert "auth_name" not in {t.key for t in at.text_input}  # no password form in OIDC mode


def test_oidc_without_authlib_says_what_to_install(db_path, monkeypatch):
    monkeypatch.setattr(auth, "authlib_installed", lambda: False)
    at = _run(_page(DATA, secrets={"auth": OIDC}, user={"is_logged_in": False}))
    assert at.button(key="auth_login_default").disabled
    assert "Authlib" in _texts(at.error)


def test_oidc_offers_one_button_per_named_provider(db_path, monkeypatch):
    monkeypatch.setattr(auth, "authlib_installed", lambda: True)
    secrets = {"auth": {"redirect_uri": OIDC["redirect_uri"], "cookie_secret": "x",
                        "google": {"client_id": "g"}, "microsoft": {"client_id": "m"}}}
    at = _run(_page(DATA, secrets=secrets, user={"is_logged_in": False}))
    assert {b.label for b in at.button} == {"Log in with Google", "Log in with Microsoft"}


def test_oidc_logged_in_non_admin_uses_the_app_but_cannot_delete(db_path):
    _seed(db_path)
    at = _run(_page(DATA, secrets={"auth": OIDC, "chatlens": {"admins": ["alice@example.com"]}},
                    user={"is_logged_in": True, "email": "bob@example.com", "name": "Bob"}))
    assert any(t.value == "Data" for t in at.title)
    assert "Signed in as **bob@example\\.com**" in _texts(at.sidebar.caption)
    assert "auth_logout" in _button_keys(at)
    assert "data_delete" not in _button_keys(at)
    assert _datasets(db_path) == ["first", "second"]


def test_oidc_logged_in_admin_sees_the_delete_button(db_path):
    _seed(db_path)
    at = _run(_page(DATA, secrets={"auth": OIDC, "chatlens": {"admins": ["Alice@example.com"]}},
                    user={"is_logged_in": True, "email": "alice@example.com"}))
    assert "data_delete" in _button_keys(at)


# --------------------------------------------------------------------------- audit identity

def _audit_round(db_path) -> tuple[int, list[str]]:
    ids = _seed(db_path, names=("audited",))
    convs = [f"audited-c{i}" for i in range(3)]
    db = store.connect(str(db_path))
    rid = audit_store.create_round(db, name="week 1", dataset_id=ids["audited"], strategy="random", seed=1,
                                   sample=pd.DataFrame({"position": [1, 2, 3], "conversation_id": convs}),
                                   assignments=assign_reviewers(convs, ["alice@example.com", "bob@example.com"],
                                                                overlap_rate=1.0, seed=1))
    audit_store.save_score(db, round_id=rid, conversation_id=convs[0], reviewer="alice@example.com",
                           scores={c: 5 for c in CRITERIA}, note="alice's")
    db.close()
    return rid, convs


def test_with_sign_in_the_reviewer_is_the_login_and_edits_only_their_own_scores(db_path):
    rid, convs = _audit_round(db_path)
    at = _page(AUDIT, secrets={"chatlens": PASSWORD})
    _run(at)
    at.session_state["audit_reviewer_name"] = "alice@example.com"  # a stale choice must not win over the login
    _sign_in(at, "bob@example.com", "correct horse")
    assert "audit_reviewer" not in {s.key for s in at.selectbox}   # no dropdown
    assert "audit_new_reviewer" not in {t.key for t in at.text_input}
    assert "Reviewing as **bob@example\\.com**" in _texts(at.caption)
    assert "**bob@example.com: 0 of 3 reviewed**" in _texts(at.markdown)
    assert at.selectbox(key="audit_current").value == convs[0]
    for radio in at.radio:
        if radio.key.startswith("audit_score_"):
            assert radio.value is None                              # alice's saved 5s are not shown to bob
            radio.set_value(2)
    next(b for b in at.button if b.label == "Save review").click()
    _run(at)
    assert f"Saved {convs[0]} (revision 1)" in _texts(at.success)
    db = store.connect(str(db_path))
    bob = audit_store.get_score(db, rid, convs[0], "bob@example.com")
    alice = audit_store.get_score(db, rid, convs[0], "alice@example.com")
    db.close()
    assert {c: bob[c] for c in CRITERIA} == {c: 2 for c in CRITERIA}
    assert {c: alice[c] for c in CRITERIA} == {c: 5 for c in CRITERIA} and alice["revision"] == 1


def test_a_save_for_another_reviewer_is_refused(db_path):
    """Defence in depth: the save callback re-checks the identity at the click."""
    rid, convs = _audit_round(db_path)
    at = _page(AUDIT, secrets={"chatlens": PASSWORD})
    _run(at)
    _sign_in(at, "bob@example.com", "correct horse")
    for radio in at.radio:
        if radio.key.startswith("audit_score_"):
            radio.set_value(1)
    # the form was drawn for bob; before the click the session's identity becomes alice
    at.session_state[auth.USER_KEY] = "alice@example.com"
    next(b for b in at.button if b.label == "Save review").click()
    _run(at)
    assert "Not saved: you are signed in as 'alice@example.com' and can edit only your own reviews." \
        in _texts(at.error)
    db = store.connect(str(db_path))
    assert audit_store.get_score(db, rid, convs[0], "bob@example.com") is None
    alice = audit_store.get_score(db, rid, convs[0], "alice@example.com")
    db.close()
    assert alice["revision"] == 1 and alice["note"] == "alice's"


def test_a_non_admin_cannot_save_goals(db_path):
    """Password mode, signed in as a non-admin: saving goals is refused and nothing is stored."""
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT
    from metrics import goals_store, store

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.secrets["chatlens"] = {"password": "pw", "admins": ["alice"]}
    at.run()
    at.text_input[0].set_value("bob")
    at.text_input[1].set_value("pw")
    at.button[0].click().run()
    assert not at.exception
    at.button(key="overview_goals_save").click().run()
    assert not at.exception
    assert any("Only admins can edit goals" in w.value for w in at.warning)
    db = store.connect(str(db_path))
    goals_store.ensure_schema(db)
    assert goals_store.list_goals(db) == []
    db.close()
