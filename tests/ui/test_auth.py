"""Optional sign-in (ui/auth.py) under AppTest: no secrets (sign-in off, as before), the shared
password mode, the OIDC mode (``at.user`` stands in for ``st.user``), who is admin (never by a typed name
alone), admin-only dataset deletion, writing into datasets and the reviewer identity on the Audit page.
Names on the page are compared through ``ui.fmt.literal``, the project's Markdown escape.
The wrong-password rate limit is in tests/ui/test_auth_ratelimit.py."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, messages_frame
from metrics import store
from metrics.audit import store as audit_store
from metrics.audit import CRITERIA, assign_reviewers
from ui import auth
from ui.fmt import literal

DATA = "pages/1_Data.py"
AUDIT = "pages/8_Audit.py"
PASSWORD = {"password": "correct horse", "admins": ["alice@example.com"]}
#: the same with a separate admin password: only then can a name in admins be admin in password mode
WITH_ADMIN = {**PASSWORD, "admin_password": "battery staple"}
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


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """The wrong-password counts are process-wide: no test inherits another's."""
    auth._reset_rate_limits()
    yield
    auth._reset_rate_limits()


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
    assert auth._password_role("ALICE@example.com ", "boss") == "admin"
    assert auth._password_role("bob", "team") == "user"


def test_without_admin_password_an_admin_name_signs_in_as_a_plain_user(monkeypatch):
    conf = {"password": "team", "admins": ["alice@example.com"]}
    monkeypatch.setattr(auth, "_section", lambda name: conf if name == "chatlens" else {})
    assert auth._password_role("alice@example.com", "team") == "user"
    assert auth._password_role("alice@example.com", "wrong") is None


@pytest.mark.parametrize("admin_password", ["", 1234, "team"])
def test_an_unusable_admin_password_gives_no_admin_rights(monkeypatch, admin_password):
    """Empty, not a string, or the team password itself (then everyone knows it): no admin sign-in."""
    conf = {"password": "team", "admin_password": admin_password, "admins": ["alice"]}
    monkeypatch.setattr(auth, "_section", lambda name: conf if name == "chatlens" else {})
    assert auth._admin_password() is None
    assert auth._password_role("alice", "team") == "user"


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
    assert f"Signed in as **{literal('bob@example.com')}**" in _texts(at.sidebar.caption)
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


def test_an_admin_email_with_the_team_password_is_not_admin_without_admin_password(db_path):
    """The issue: with one shared password, typing an admin's e-mail gave delete rights."""
    _seed(db_path)
    at = _run(_page(DATA, secrets={"chatlens": PASSWORD}))
    _sign_in(at, "alice@example.com", "correct horse")
    assert any(t.value == "Data" for t in at.title)                 # signed in, as a plain user
    assert "admin" not in _texts(at.sidebar.caption)
    assert "data_delete" not in _button_keys(at)
    assert "data_delete_id" not in {s.key for s in at.selectbox}
    warning = _texts(at.warning)
    assert "Only admins can delete datasets" in warning
    assert "set `admin_password` under `[chatlens]` in .streamlit/secrets.toml" in warning  # how to enable
    assert "OIDC" in warning
    assert _datasets(db_path) == ["first", "second"]


def test_a_planted_identity_without_the_admin_sign_in_is_not_admin(db_path):
    """Admin needs this session's admin-password sign-in, not just an admin's name in the session."""
    _seed(db_path)
    at = _run(_page(DATA, secrets={"chatlens": WITH_ADMIN}))
    _sign_in(at, "bob@example.com", "correct horse")
    at.session_state[auth.USER_KEY] = "alice@example.com"
    _run(at)
    assert "data_delete" not in _button_keys(at)
    assert "Only admins can delete datasets" in _texts(at.warning)
    assert "admin_password" not in _texts(at.warning)  # it is set: the note names the admin password instead


def test_an_admin_can_delete_a_dataset(db_path):
    ids = _seed(db_path)
    at = _run(_page(DATA, secrets={"chatlens": WITH_ADMIN}))
    _sign_in(at, "alice@example.com", "correct horse")   # the team password is refused for an admin name
    assert "Wrong name or password." in _texts(at.error)
    _sign_in(at, "alice@example.com", "battery staple")
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
    assert f"Signed in as **{literal('bob@example.com')}**" in _texts(at.sidebar.caption)
    assert "auth_logout" in _button_keys(at)
    assert "data_delete" not in _button_keys(at)
    assert _datasets(db_path) == ["first", "second"]


def test_oidc_logged_in_admin_sees_the_delete_button(db_path):
    _seed(db_path)
    at = _run(_page(DATA, secrets={"auth": OIDC, "chatlens": {"admins": ["Alice@example.com"]}},
                    user={"is_logged_in": True, "email": "alice@example.com"}))
    assert "data_delete" in _button_keys(at)
    assert "· admin" in _texts(at.sidebar.caption)


@pytest.mark.parametrize("user", [
    {"is_logged_in": True, "email": "alice@example.com", "email_verified": False},    # unverified address
    {"is_logged_in": True, "email": "alice@example.com", "email_verified": "false"},  # as some providers send it
    {"is_logged_in": True, "name": "alice@example.com", "sub": "123"},                 # display name only
    {"is_logged_in": True, "preferred_username": "alice@example.com"},                 # a chosen username
], ids=["unverified", "unverified-string", "display-name", "username"])
def test_oidc_admin_needs_the_providers_email(db_path, user):
    _seed(db_path)
    at = _run(_page(DATA, secrets={"auth": OIDC, "chatlens": {"admins": ["alice@example.com"]}}, user=user))
    assert any(t.value == "Data" for t in at.title)   # signed in ...
    assert "data_delete" not in _button_keys(at)      # ... but not admin
    assert "Only admins can delete datasets" in _texts(at.warning)


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
    assert f"Reviewing as **{literal('bob@example.com')}**" in _texts(at.caption)
    assert f"**{literal('bob@example.com')}: 0 of 3 reviewed**" in _texts(at.markdown)
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
    assert literal("Not saved: you are signed in as 'alice@example.com' and can edit only your own reviews.") \
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
    from metrics import store
    from metrics.improve import store as goals_store

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
    assert goals_store.list_goals(db) == []
    db.close()


# --------------------------------------------------------------------------- writing into datasets

@pytest.fixture
def signed_in(monkeypatch):
    """Secrets and a session without a script run: ``signed_in(chatlens=..., oidc=..., state=..., user=...)``."""
    import streamlit as st

    def configure(*, chatlens=None, oidc=False, state=None, user=None):
        sections = {"chatlens": chatlens or {}, "auth": OIDC if oidc else {}}
        monkeypatch.setattr(auth, "_section", lambda name: dict(sections.get(name, {})))
        monkeypatch.setattr(st, "session_state", dict(state or {}))
        monkeypatch.setattr(st, "user", dict(user or {"is_logged_in": False}))
    return configure


EXISTING = ["first", "second"]


def test_sign_in_off_everyone_writes_everywhere(signed_in):
    signed_in()
    assert auth.is_admin()
    assert auth.can_write_dataset("first", EXISTING) and auth.can_write_dataset("new", EXISTING)


def test_a_plain_user_creates_datasets_but_does_not_add_to_existing_ones(signed_in):
    signed_in(chatlens=WITH_ADMIN, state={auth.USER_KEY: "bob@example.com"})
    assert auth.can_write_dataset("third", EXISTING)
    assert not auth.can_write_dataset("first", EXISTING)
    assert not auth.can_write_dataset("  second ", EXISTING)  # the store strips the name: same dataset


def test_without_admin_password_nobody_adds_to_an_existing_dataset(signed_in):
    signed_in(chatlens=PASSWORD, state={auth.USER_KEY: "alice@example.com", auth.ADMIN_KEY: True})
    assert not auth.is_admin()  # even a stale admin flag: without admin_password there are no admins
    assert not auth.can_write_dataset("first", EXISTING)
    assert auth.can_write_dataset("third", EXISTING)


def test_an_admin_adds_to_existing_datasets(signed_in):
    signed_in(chatlens=WITH_ADMIN, state={auth.USER_KEY: "alice@example.com", auth.ADMIN_KEY: True})
    assert auth.is_admin()
    assert auth.can_write_dataset("first", EXISTING)


def test_oidc_writing_follows_the_verified_email(signed_in):
    signed_in(chatlens={"admins": ["alice@example.com"]}, oidc=True,
              user={"is_logged_in": True, "email": "alice@example.com"})
    assert auth.can_write_dataset("first", EXISTING)
    signed_in(chatlens={"admins": ["alice@example.com"]}, oidc=True,
              user={"is_logged_in": True, "email": "bob@example.com"})
    assert not auth.can_write_dataset("first", EXISTING) and auth.can_write_dataset("third", EXISTING)


def test_nobody_signed_in_writes_nothing(signed_in):
    signed_in(chatlens=WITH_ADMIN)
    assert not auth.can_write_dataset("third", EXISTING)


def test_require_dataset_write_explains_the_refusal():
    at = AppTest.from_string(
        "import streamlit as st\n"
        "from ui import auth\n"
        "st.session_state[auth.USER_KEY] = 'bob'\n"
        "st.write(auth.require_dataset_write('third', ['first']), auth.require_dataset_write('first', ['first']))\n")
    at.secrets["chatlens"] = PASSWORD
    _run(at)
    assert "True False" in _texts(at.markdown).replace("`", "")
    warning = _texts(at.warning)
    assert "Only admins can add to an existing dataset ('first')" in warning
    assert "set `admin_password`" in warning
