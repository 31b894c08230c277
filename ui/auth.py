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
    admin_password = "admins sign in with this one (without it nobody is admin in this mode)"
    admins = ["alice@example.com"]            # may delete datasets, add to them, edit goals and alerts
    reviewers = ["bob@example.com"]           # optional allow-list: when set, only admins + these

Who is admin (may delete datasets, add to an existing one, edit goals and alert rules):

* sign-in off (no ``[auth]`` and no ``[chatlens] password``): everyone. Chatlens is then a
  single-user local tool; the Audit page keeps its reviewer dropdown.
* OIDC: a user whose ``email`` claim from the identity provider is listed in ``admins`` (not when
  the provider marks the address unverified; the display name never makes anyone admin).
* Shared password: a name listed in ``admins`` that signed in with ``admin_password`` in this
  session. Without ``admin_password`` (or when it equals the team password) nobody is admin: a name
  alone proves nothing when everyone knows the same password. Admin-only actions then say how
  to enable them.

Names are compared case-insensitively, whitespace collapsed.

Wrong passwords are rate-limited per browser session, per typed name (process-wide, so a new
session does not reset it) and for the whole process (the team password is one secret whatever
name is typed): after :data:`LOCK_AFTER` failures (:data:`GLOBAL_LOCK_AFTER` for the process) a
lock of :data:`LOCK_BASE_SECONDS` doubles with every further failure up to
:data:`LOCK_MAX_SECONDS`. While locked every sign-in is refused, even with the right password, and
the message says when to try again. A correct sign-in clears its session's and name's counts and
the process's count.

API: :func:`auth_mode`, :func:`current_user`, :func:`gate` (called by ``shell.setup_page``
right after ``set_page_config``), :func:`is_admin`, :func:`require_admin`,
:func:`can_write_dataset`, :func:`require_dataset_write`, :func:`admin_rights_note`,
:func:`sidebar_user`.
"""

from __future__ import annotations

import hmac
import importlib.util
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import streamlit as st

from ui.fmt import literal

__all__ = ["MODES", "auth_mode", "current_user", "gate", "is_admin", "require_admin", "admin_rights_note",
           "can_write_dataset", "require_dataset_write", "sidebar_user", "admins", "reviewers",
           "authlib_installed", "same_user", "escape_markdown"]

MODES = ("none", "oidc", "password")
USER_KEY = "auth_user"  # session-state key holding the password-mode identity
ADMIN_KEY = "auth_admin"  # True when this session signed in with admin_password
_FAILED_KEY = "auth_failed_count"
_LIMIT_KEY = "auth_rate_limit"  # this session's wrong-password bucket
#: keys of [auth] that are shared settings, not a provider section
_SHARED_AUTH_KEYS = {"redirect_uri", "cookie_secret", "expose_tokens"}

#: wrong passwords allowed per session and per name before a lock
LOCK_AFTER = 5
#: wrong passwords allowed in the whole process (any name, any session) before a lock
GLOBAL_LOCK_AFTER = 20
#: the first lock; each further wrong password doubles it ...
LOCK_BASE_SECONDS = 30.0
#: ... up to this
LOCK_MAX_SECONDS = 15 * 60.0
#: a count is forgotten this long after its last wrong password (when not locked)
FORGET_AFTER_SECONDS = 60 * 60.0
#: the process-wide store keeps at most this many names
MAX_TRACKED_NAMES = 10_000

#: monotonic seconds; tests replace it (``monkeypatch.setattr(auth, "_clock", ...)``)
_clock = time.monotonic


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


def _same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def admins() -> list[str]:
    """``[chatlens] admins``: who may delete datasets and edit goals and alerts."""
    return _names(_section("chatlens").get("admins"))


def reviewers() -> list[str]:
    """``[chatlens] reviewers``: the optional allow-list (admins are always allowed)."""
    return _names(_section("chatlens").get("reviewers"))


def _team_password() -> str | None:
    password = _section("chatlens").get("password")
    return password if isinstance(password, str) and password else None


def _admin_password() -> str | None:
    """``[chatlens] admin_password`` when it is a usable second secret: a non-empty string that is not
    the team password (an admin password everyone knows would make admin a matter of typing a name)."""
    admin_password = _section("chatlens").get("admin_password")
    if not isinstance(admin_password, str) or not admin_password:
        return None
    team = _team_password()
    if team is not None and _same_secret(admin_password, team):
        return None
    return admin_password


def auth_mode() -> str:
    """``"oidc"`` when secrets have an ``[auth]`` table, else ``"password"`` when
    ``[chatlens] password`` is a non-empty string, else ``"none"``."""
    if _section("auth"):
        return "oidc"
    if _team_password() is not None:
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


def _oidc_admin_email() -> str | None:
    """The ``email`` claim the identity provider vouches for (None when absent or marked unverified).
    Admin rights in OIDC mode are matched on this only: a display name or a username can be chosen
    by the user at many providers."""
    try:
        if not st.user.get("is_logged_in"):
            return None
        email = st.user.get("email")
        verified = st.user.get("email_verified")
    except (AttributeError, KeyError, TypeError):
        return None
    if not email:
        return None
    if verified is False or (isinstance(verified, str) and verified.strip().casefold() == "false"):
        return None
    return str(email)


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


def _is_listed_admin(name: str | None) -> bool:
    return name is not None and _fold(name) in {_fold(n) for n in admins()}


def is_admin() -> bool:
    """May this session delete datasets, add to existing ones, edit goals and alert rules?

    Sign-in off: True (single-user local tool). OIDC: the provider's verified ``email`` is in
    ``admins``. Shared password: the name is in ``admins`` *and* this session signed in with
    ``admin_password`` (which must be set and differ from the team password); without it nobody is.
    """
    mode = auth_mode()
    if mode == "none":
        return True
    if mode == "oidc":
        return _is_listed_admin(_oidc_admin_email())
    return (_admin_password() is not None and st.session_state.get(ADMIN_KEY) is True
            and _is_listed_admin(current_user()))


def admin_rights_note() -> str:
    """One line on how admin rights work in the current configuration (shown when an action is refused)."""
    mode = auth_mode()
    if mode == "password" and _admin_password() is None:
        return ("Admin rights are off: with only the shared team password a typed name proves nothing. "
                "To enable them, set `admin_password` under `[chatlens]` in .streamlit/secrets.toml "
                "(names in `admins` then sign in with it), or use OIDC sign-in (`[auth]`).")
    if mode == "password":
        return ("Admins are the names in `[chatlens] admins` of .streamlit/secrets.toml, signed in with "
                "the admin password.")
    return ("Admins are the e-mail addresses in `[chatlens] admins` of .streamlit/secrets.toml, as "
            "confirmed by your identity provider.")


def require_admin(action: str) -> bool:
    """True for admins; otherwise show "Only admins can {action}." with how to get the right, and return False."""
    if is_admin():
        return True
    user = current_user()
    who = f"Signed in as {literal(user)}. " if user else ""
    st.warning(f"Only admins can {literal(action)}. {who}{admin_rights_note()}", icon=":material/lock:")
    return False


# --------------------------------------------------------------------------- writing datasets

def _dataset_exists(name: str | None, existing: Iterable[str]) -> bool:
    """Does a save under ``name`` land in one of ``existing``? The store matches the stripped name
    exactly, so typing an existing name under "A new dataset" adds to that dataset too."""
    target = str(name or "").strip()
    return any(target == str(n).strip() for n in existing)


def can_write_dataset(name: str | None, existing: Iterable[str]) -> bool:
    """May this session save an upload under dataset ``name``, given the names already stored?

    The rule: *uploading into an existing dataset follows the same rule as deleting it* (admins
    only when sign-in is on; see :func:`is_admin`), because adding messages changes every figure
    already drawn from it. Creating a new dataset is allowed for anyone signed in. Sign-in off:
    always True.
    """
    if auth_mode() == "none":
        return True
    if current_user() is None:
        return False
    return is_admin() or not _dataset_exists(name, existing)


def require_dataset_write(name: str | None, existing: Iterable[str]) -> bool:
    """:func:`can_write_dataset`; when refused, a warning saying why and what to do instead."""
    existing = list(existing)
    if can_write_dataset(name, existing):
        return True
    if current_user() is None:
        st.warning("Sign in to save datasets.", icon=":material/lock:")
        return False
    return require_admin(f"add to an existing dataset ('{str(name or '').strip()}'): "
                         "save the upload as a new dataset under another name instead")


# --------------------------------------------------------------------------- rate limit

@dataclass
class _Bucket:
    """Wrong passwords of one session, one name or the whole process."""

    failures: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0

    def retry_after(self, now: float) -> float:
        return max(0.0, self.locked_until - now)

    def clear(self) -> None:
        self.failures, self.locked_until, self.last_failure = 0, 0.0, 0.0

    def stale(self, now: float) -> bool:
        return self.retry_after(now) == 0.0 and now - self.last_failure >= FORGET_AFTER_SECONDS

    def fail(self, now: float, threshold: int) -> float:
        """Count a wrong password; lock from the threshold on, doubling each time. Returns the lock (s)."""
        if self.stale(now):
            self.failures = 0
        self.failures += 1
        self.last_failure = now
        if self.failures >= threshold:
            lock = min(LOCK_BASE_SECONDS * 2.0 ** min(self.failures - threshold, 64), LOCK_MAX_SECONDS)
            self.locked_until = max(self.locked_until, now + lock)
        return self.retry_after(now)


_LIMIT_LOCK = threading.Lock()
_NAME_BUCKETS: dict[str, _Bucket] = {}  # process-wide, keyed by the folded name
_GLOBAL_BUCKET = _Bucket()


def _reset_rate_limits() -> None:
    """Forget every process-wide count (tests; a restart does the same)."""
    with _LIMIT_LOCK:
        _NAME_BUCKETS.clear()
        _GLOBAL_BUCKET.clear()


def _session_bucket() -> _Bucket:
    bucket = st.session_state.get(_LIMIT_KEY)
    if not isinstance(bucket, _Bucket):
        bucket = _Bucket()
        st.session_state[_LIMIT_KEY] = bucket
    return bucket


def _prune(now: float) -> None:
    """Keep the name store bounded (called under the lock)."""
    if len(_NAME_BUCKETS) <= MAX_TRACKED_NAMES:
        return
    for key in [k for k, b in _NAME_BUCKETS.items() if b.stale(now)]:
        del _NAME_BUCKETS[key]
    if len(_NAME_BUCKETS) > MAX_TRACKED_NAMES:
        oldest = sorted(_NAME_BUCKETS, key=lambda k: _NAME_BUCKETS[k].last_failure)
        for key in oldest[:len(_NAME_BUCKETS) - MAX_TRACKED_NAMES]:
            del _NAME_BUCKETS[key]


def _retry_after(name: str, now: float) -> float:
    """Seconds until this session may try ``name`` again (0 when it may now)."""
    with _LIMIT_LOCK:
        by_name = _NAME_BUCKETS.get(_fold(name))
        return max(_session_bucket().retry_after(now), _GLOBAL_BUCKET.retry_after(now),
                   by_name.retry_after(now) if by_name is not None else 0.0)


def _record_failure(name: str, now: float) -> float:
    """Count a wrong password for this session, the name and the process; the resulting lock (s)."""
    with _LIMIT_LOCK:
        by_name = _NAME_BUCKETS.setdefault(_fold(name), _Bucket())
        waits = (_session_bucket().fail(now, LOCK_AFTER), by_name.fail(now, LOCK_AFTER),
                 _GLOBAL_BUCKET.fail(now, GLOBAL_LOCK_AFTER))
        _prune(now)
        return max(waits)


def _record_success(name: str) -> None:
    """A correct sign-in (only possible while nothing is locked) clears this session's, this name's and
    the process's counts, so the occasional typo of a busy team never adds up to a lock."""
    with _LIMIT_LOCK:
        st.session_state[_LIMIT_KEY] = _Bucket()
        _NAME_BUCKETS.pop(_fold(name), None)
        _GLOBAL_BUCKET.clear()


def _wait_text(seconds: float) -> str:
    total = max(1, math.ceil(seconds))
    if total < 120:
        return f"{total} second" + ("s" if total > 1 else "")
    minutes, rest = divmod(total, 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} minutes"


def _lock_message(seconds: float) -> str:
    return f"Too many wrong passwords: sign-in is paused. Try again in {_wait_text(seconds)}."


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
        st.error(f"{literal(user)} is not allowed to use this Chatlens. "
                 "Ask an admin to add you to `[chatlens] reviewers`.")
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
        label = "Log in" if provider is None else f"Log in with {literal(provider.capitalize())}"
        st.button(label, key=f"auth_login_{provider or 'default'}", type="primary", disabled=not ready,
                  on_click=st.login, args=() if provider is None else (provider,))


def _password_role(name: str, password: str) -> str | None:
    """``"admin"``, ``"user"`` or None (refused), constant-time per comparison.

    Names in ``admins`` sign in with ``admin_password`` when it is set (the team password is then
    refused for them) and become admins; everyone else, and everyone when no admin password is set,
    signs in with the team password as a plain user.
    """
    team = _team_password()
    admin_password = _admin_password()
    if admin_password is not None and _is_listed_admin(name):
        return "admin" if _same_secret(password, admin_password) else None
    if team is None:
        return None
    return "user" if _same_secret(password, team) else None


def _check_password(name: str, password: str) -> bool:
    """Shared password (or ``admin_password`` for names in ``admins`` when it is set), constant-time."""
    return _password_role(name, password) is not None


def _sign_in() -> None:
    """The password form's on_submit: rate limit, check, then remember the identity for this browser session."""
    state = st.session_state
    name = " ".join(str(state.get("auth_name") or "").split())
    password = str(state.get("auth_password") or "")
    state["auth_password"] = ""
    if not name:
        state["auth_error"] = "Type your name or e-mail."
        return
    now = _clock()
    wait = _retry_after(name, now)
    if wait > 0:  # refused unchecked, right password or not: a lock that a guess could lift is no lock
        state["auth_error"] = _lock_message(wait)
        return
    role = _password_role(name, password)
    if role is None:
        state[_FAILED_KEY] = state.get(_FAILED_KEY, 0) + 1
        wait = _record_failure(name, now)
        state["auth_error"] = "Wrong name or password." + (f" {_lock_message(wait)}" if wait > 0 else "")
        return
    if not _allowed(name):
        state["auth_error"] = f"{name} is not on the list of reviewers. Ask an admin."
        return
    _record_success(name)
    state.pop("auth_error", None)
    state[_FAILED_KEY] = 0
    state[USER_KEY] = name
    state[ADMIN_KEY] = role == "admin"


def _password_login() -> None:
    st.markdown("Sign in with your name and the team password.")
    with st.form("auth_login_form", border=True):
        st.text_input("Your name or e-mail", key="auth_name", max_chars=80)
        st.text_input("Team password", type="password", key="auth_password")
        st.form_submit_button("Sign in", type="primary", on_click=_sign_in)
    error = st.session_state.pop("auth_error", None)
    if not error:
        with _LIMIT_LOCK:
            wait = _session_bucket().retry_after(_clock())
        error = _lock_message(wait) if wait > 0 else None
    if error:
        st.error(literal(error))  # plain text (it may hold the typed name)


def escape_markdown(text: str) -> str:
    """Kept for old callers: :func:`ui.fmt.literal`, the project's one Markdown escape."""
    return literal(text)


def _sign_out() -> None:
    st.session_state.pop(USER_KEY, None)
    st.session_state.pop(ADMIN_KEY, None)


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
        st.caption(f"Signed in as **{literal(user)}**" + (" · admin" if is_admin() else ""))
        _logout_button(mode, key="auth_logout")
