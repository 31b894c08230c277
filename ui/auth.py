"""Optional sign-in: nobody (default), Streamlit's OIDC login, or a shared team password.

Configured in ``.streamlit/secrets.toml`` (never in the repository)::

    # Mode "oidc": Streamlit's st.login (needs `pip install "Authlib>=1.3.2"`).
    [auth]
    redirect_uri = "http://localhost:8501/oauth2callback"
    cookie_secret = "a long random string"
    client_id = "..."
    client_secret = "..."
    server_metadata_url = "https://accounts.google.com/.well-known/openid-configuration"
    # (or named providers: [auth.google], [auth.microsoft] ... one login button each)

    # Mode "password": one shared password for a small team (used when there is no [auth]).
    [chatlens]
    password = "the team password"
    admin_password = "optional: admins sign in with this one instead"
    admins = ["alice@example.com"]            # may delete datasets, edit goals and alerts
    reviewers = ["bob@example.com"]           # optional allow-list: when set, only admins + these

With no ``[auth]`` and no ``[chatlens] password`` sign-in is off: everyone is an admin and
the Audit page keeps its reviewer dropdown. Names are compared case-insensitively.

API: :func:`auth_mode`, :func:`current_user`, :func:`gate` (called by ``shell.setup_page``
right after ``set_page_config``), :func:`is_admin`, :func:`require_admin`, :func:`sidebar_user`.
"""

from __future__ import annotations

import hmac
import importlib.util
import re

import streamlit as st

__all__ = ["MODES", "auth_mode", "current_user", "gate", "is_admin", "require_admin", "sidebar_user",
           "admins", "reviewers", "authlib_installed", "same_user", "escape_markdown"]

MODES = ("none", "oidc", "password")
USER_KEY = "auth_user"  # session-state key holding the password-mode identity
_FAILED_KEY = "auth_failed_count"
#: keys of [auth] that are shared settings, not a provider section
_SHARED_AUTH_KEYS = {"redirect_uri", "cookie_secret", "expose_tokens"}


# --------------------------------------------------------------------------- configuration

def _section(name: str) -> dict:
    """A top-level table of the secrets as a plain dict ({} when absent or no secrets file)."""
    try:
        value = st.secrets.get(name)
    except (FileNotFoundError, KeyError):  # StreamlitSecretNotFoundError is a FileNotFoundError
        return {}
    if value is None:
        return {}
    try:
        return dict(value)
    except (TypeError, ValueError):
        return {}


def _names(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    return [str(v).strip() for v in value if str(v).strip()]


def _fold(name: str | None) -> str:
    return " ".join(str(name or "").split()).casefold()


def admins() -> list[str]:
    """``[chatlens] admins``: who may delete datasets and edit goals and alerts."""
    return _names(_section("chatlens").get("admins"))


def reviewers() -> list[str]:
    """``[chatlens] reviewers``: the optional allow-list (admins are always allowed)."""
    return _names(_section("chatlens").get("reviewers"))


def auth_mode() -> str:
    """``"oidc"`` when secrets have an ``[auth]`` table, else ``"password"`` when
    ``[chatlens] password`` is a non-empty string, else ``"none"``."""
    if _section("auth"):
        return "oidc"
    password = _section("chatlens").get("password")
    if isinstance(password, str) and password:
        return "password"
    return "none"


def authlib_installed() -> bool:
    """``st.login`` needs the Authlib package (an optional dependency of Streamlit)."""
    return importlib.util.find_spec("authlib") is not None


def _providers() -> list[str | None]:
    """OIDC providers to offer: named ``[auth.NAME]`` tables, or the unnamed default (None)."""
    section = _section("auth")
    named = [k for k, v in section.items() if k not in _SHARED_AUTH_KEYS and hasattr(v, "keys")]
    return named or [None]


# --------------------------------------------------------------------------- identity

def _oidc_identity() -> str | None:
    try:
        if not st.user.get("is_logged_in"):
            return None
        for claim in ("email", "preferred_username", "name", "sub"):
            value = st.user.get(claim)
            if value:
                return " ".join(str(value).split())
    except (AttributeError, KeyError, TypeError):
        return None
    return None


def current_user() -> str | None:
    """The signed-in user's identity (e-mail for OIDC, the typed name for the shared
    password), or None when sign-in is off or nobody is signed in."""
    mode = auth_mode()
    if mode == "oidc":
        return _oidc_identity()
    if mode == "password":
        user = st.session_state.get(USER_KEY)
        return user if isinstance(user, str) and user else None
    return None


def same_user(a: str | None, b: str | None) -> bool:
    """Identities compare case-insensitively, whitespace collapsed (None never matches)."""
    return a is not None and b is not None and _fold(a) == _fold(b)


def _allowed(user: str) -> bool:
    allow = reviewers()
    if not allow:
        return True
    folded = _fold(user)
    return folded in {_fold(n) for n in allow + admins()}


def is_admin() -> bool:
    """True when sign-in is off (everyone is admin), else when the signed-in user is in ``admins``."""
    if auth_mode() == "none":
        return True
    user = current_user()
    return user is not None and _fold(user) in {_fold(n) for n in admins()}


def require_admin(action: str) -> bool:
    """True for admins; otherwise show "Only admins can {action}" and return False."""
    if is_admin():
        return True
    st.warning(f"Only admins can {action}. Signed in as {current_user() or 'nobody'}; admins are listed in "
               "`[chatlens] admins` in .streamlit/secrets.toml.", icon=":material/lock:")
    return False


# --------------------------------------------------------------------------- the gate

def gate() -> bool:
    """Let the page run (True) or draw the sign-in and stop the script.

    Sign-in off: True, nothing drawn. Signed in (and allowed): True. Otherwise the login
    (OIDC buttons or the password form) is drawn and ``st.stop()`` ends the run.
    """
    mode = auth_mode()
    if mode == "none":
        return True
    user = current_user()
    if user is not None and _allowed(user):
        return True
    st.title("Chatlens")
    if user is not None:  # signed in but not on the allow-list
        st.error(f"{user} is not allowed to use this Chatlens. Ask an admin to add you to `[chatlens] reviewers`.")
        _logout_button(mode, key="auth_refused_logout")
    elif mode == "oidc":
        _oidc_login()
    else:
        _password_login()
    st.stop()
    return False  # reached only outside a Streamlit script run


def _oidc_login() -> None:
    st.markdown("Sign in to use Chatlens.")
    ready = authlib_installed()
    if not ready:
        st.error('Sign-in is configured (`[auth]` in .streamlit/secrets.toml) but the Authlib package is missing: '
                 'run `pip install "Authlib>=1.3.2"` and restart Chatlens.')
    for provider in _providers():
        label = "Log in" if provider is None else f"Log in with {provider.capitalize()}"
        st.button(label, key=f"auth_login_{provider or 'default'}", type="primary", disabled=not ready,
                  on_click=st.login, args=() if provider is None else (provider,))


def _check_password(name: str, password: str) -> bool:
    """Shared password (or ``admin_password`` for names in ``admins`` when it is set), constant-time."""
    conf = _section("chatlens")
    expected = conf.get("password")
    admin_password = conf.get("admin_password")
    if isinstance(admin_password, str) and admin_password and _fold(name) in {_fold(n) for n in admins()}:
        expected = admin_password
    if not isinstance(expected, str) or not expected:
        return False
    return hmac.compare_digest(password.encode("utf-8"), expected.encode("utf-8"))


def _sign_in() -> None:
    """The password form's on_submit: check, then remember the identity for this browser session."""
    state = st.session_state
    name = " ".join(str(state.get("auth_name") or "").split())
    password = str(state.get("auth_password") or "")
    state["auth_password"] = ""
    if not name:
        state["auth_error"] = "Type your name or e-mail."
        return
    ok = _check_password(name, password)
    if not ok:
        state[_FAILED_KEY] = state.get(_FAILED_KEY, 0) + 1
        state["auth_error"] = "Wrong name or password."
        return
    if not _allowed(name):
        state["auth_error"] = f"{name} is not on the list of reviewers. Ask an admin."
        return
    state.pop("auth_error", None)
    state[_FAILED_KEY] = 0
    state[USER_KEY] = name


def _password_login() -> None:
    st.markdown("Sign in with your name and the team password.")
    with st.form("auth_login_form", border=True):
        st.text_input("Your name or e-mail", key="auth_name", max_chars=80)
        st.text_input("Team password", type="password", key="auth_password")
        st.form_submit_button("Sign in", type="primary", on_click=_sign_in)
    error = st.session_state.pop("auth_error", None)
    if error:
        st.error(error)


def escape_markdown(text: str) -> str:
    """Escape Markdown so a name is shown literally."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", str(text))


def _sign_out() -> None:
    st.session_state.pop(USER_KEY, None)


def _logout_button(mode: str, *, key: str) -> None:
    if mode == "oidc":
        st.button("Log out", key=key, on_click=st.logout)
    else:
        st.button("Log out", key=key, on_click=_sign_out)


def sidebar_user() -> None:
    """The signed-in user (and "admin" when they are) with a logout button; nothing when sign-in is off."""
    mode = auth_mode()
    user = current_user()
    if mode == "none" or user is None:
        return
    with st.sidebar:
        st.caption(f"Signed in as **{escape_markdown(user)}**" + (" · admin" if is_admin() else ""))
        _logout_button(mode, key="auth_logout")
