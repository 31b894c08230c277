"""Wrong-password rate limit of the shared-password sign-in (ui/auth.py): per browser session, per typed
name across sessions and for the whole process; a lock refuses even the right password, says when to try
again and lifts when the (injected, monotonic) clock has moved on."""

from __future__ import annotations

import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from ui import auth

TEAM = "correct horse"
CONF = {"password": TEAM, "admins": ["alice@example.com"], "admin_password": "battery staple"}
#: a page that is only the gate: fast, and what every Chatlens page runs first
SCRIPT = ("import streamlit as st\n"
          "from ui import auth\n"
          "auth.gate()\n"
          "st.title('Inside')\n")


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    auth._reset_rate_limits()
    fake = Clock()
    monkeypatch.setattr(auth, "_clock", fake)
    yield fake
    auth._reset_rate_limits()


def _session() -> AppTest:
    at = AppTest.from_string(SCRIPT, default_timeout=30)
    at.secrets["chatlens"] = CONF
    at.run()
    assert not at.exception
    return at


def _try(at: AppTest, name: str, password: str) -> str:
    """Submit the form; the error shown ("" when none)."""
    at.text_input(key="auth_name").set_value(name)
    at.text_input(key="auth_password").set_value(password)
    at.button[0].click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return "\n".join(e.value for e in at.error)


def _inside(at: AppTest) -> bool:
    return any(t.value == "Inside" for t in at.title)


# --------------------------------------------------------------------------- the policy (no script run)

def test_the_lock_starts_at_the_threshold_and_doubles_to_the_cap():
    bucket, now, locks = auth._Bucket(), 0.0, []
    for _ in range(12):
        locks.append(bucket.fail(now, auth.LOCK_AFTER))
    assert locks[:auth.LOCK_AFTER - 1] == [0.0] * (auth.LOCK_AFTER - 1)
    assert locks[auth.LOCK_AFTER - 1:auth.LOCK_AFTER + 4] == [30.0, 60.0, 120.0, 240.0, 480.0]
    assert locks[-1] == auth.LOCK_MAX_SECONDS == 900.0


def test_an_old_count_is_forgotten():
    bucket = auth._Bucket()
    for _ in range(auth.LOCK_AFTER - 1):
        bucket.fail(0.0, auth.LOCK_AFTER)
    assert bucket.fail(auth.FORGET_AFTER_SECONDS + 1, auth.LOCK_AFTER) == 0.0  # counts from 1 again
    assert bucket.failures == 1


@pytest.mark.parametrize("seconds, text", [(30, "30 seconds"), (0.2, "1 second"), (29.1, "30 seconds"),
                                           (240, "4 minutes"), (125, "2 min 5 s")])
def test_the_wait_is_said_in_words(seconds, text):
    assert auth._wait_text(seconds) == text


def test_the_name_store_is_thread_safe(monkeypatch):
    """Concurrent sessions failing for one name: every failure counts, none is lost to a race. The bucket
    update is slowed down between its read and its write so that a missing lock shows."""
    real_fail = auth._Bucket.fail

    def slow_fail(self, now, threshold):
        before = self.failures
        time.sleep(0.0005)
        result = real_fail(self, now, threshold)
        self.failures = before + 1
        return result

    monkeypatch.setattr(auth._Bucket, "fail", slow_fail)
    monkeypatch.setattr(auth, "_session_bucket", auth._Bucket)  # a throwaway session bucket per call
    threads = [threading.Thread(target=lambda: [auth._record_failure("Bob", 0.0) for _ in range(25)])
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert auth._NAME_BUCKETS["bob"].failures == 200
    assert auth._GLOBAL_BUCKET.failures == 200


# --------------------------------------------------------------------------- one session

def test_after_five_wrong_passwords_even_the_right_one_is_refused_until_the_clock_moves(clock):
    at = _session()
    for _ in range(auth.LOCK_AFTER - 1):
        assert _try(at, "bob@example.com", "wrong") == "Wrong name or password."
    assert _try(at, "bob@example.com", "wrong") == \
        "Wrong name or password. Too many wrong passwords: sign-in is paused. Try again in 30 seconds."
    assert _try(at, "bob@example.com", TEAM) == \
        "Too many wrong passwords: sign-in is paused. Try again in 30 seconds."
    assert not _inside(at)
    clock.advance(12)
    assert _try(at, "bob@example.com", TEAM).endswith("Try again in 18 seconds.")  # the wait counts down
    assert not _inside(at)
    at.run()  # a plain rerun keeps saying so
    assert "Try again in 18 seconds." in "\n".join(e.value for e in at.error)
    clock.advance(18)
    assert _try(at, "bob@example.com", TEAM) == ""
    assert _inside(at)


def test_the_session_lock_covers_every_name(clock):
    at = _session()
    for k in range(auth.LOCK_AFTER):   # a different name each time: the session still counts them all
        _try(at, f"guest{k}", "wrong")
    assert _try(at, "carol@example.com", TEAM).startswith("Too many wrong passwords")
    assert not _inside(at)
    # another session is not locked (carol has no wrong passwords of her own)
    other = _session()
    assert _try(other, "carol@example.com", TEAM) == ""
    assert _inside(other)


def test_tries_during_a_lock_do_not_count_and_the_next_failure_doubles_it(clock):
    at = _session()
    for _ in range(auth.LOCK_AFTER):
        _try(at, "bob", "wrong")
    for _ in range(3):   # refused unchecked: no longer lock for them
        assert _try(at, "bob", "wrong").endswith("Try again in 30 seconds.")
    clock.advance(30)
    assert _try(at, "bob", "wrong").endswith("Try again in 60 seconds.")
    clock.advance(60)
    assert _try(at, "bob", TEAM) == "" and _inside(at)


# --------------------------------------------------------------------------- per name, across sessions

def test_a_name_is_locked_in_every_session(clock):
    first, second = _session(), _session()
    for _ in range(3):
        _try(first, "alice@example.com", "wrong")
    for _ in range(2):   # neither session alone reaches five: the name does
        _try(second, "Alice@Example.com ", "wrong")
    third = _session()   # a fresh session (a reload, another browser) does not reset the name
    assert _try(third, "ALICE@example.com", "battery staple") == \
        "Too many wrong passwords: sign-in is paused. Try again in 30 seconds."
    assert not _inside(third)
    # another name in that fresh session is fine
    assert _try(third, "bob@example.com", TEAM) == "" and _inside(third)
    clock.advance(31)
    fourth = _session()
    assert _try(fourth, "alice@example.com", "battery staple") == "" and _inside(fourth)


def test_a_correct_sign_in_clears_the_names_count(clock):
    first = _session()
    for _ in range(auth.LOCK_AFTER - 1):
        _try(first, "bob", "wrong")
    assert _try(first, "bob", TEAM) == ""
    second = _session()
    assert _try(second, "bob", "wrong") == "Wrong name or password."  # counts from one again, no lock


# --------------------------------------------------------------------------- the whole process

def test_rotating_names_and_sessions_still_meets_a_limit(clock):
    """The team password is one secret whatever name is typed: fresh names in fresh sessions are counted too."""
    tries = 0
    while tries < auth.GLOBAL_LOCK_AFTER:
        at = _session()
        for _ in range(auth.LOCK_AFTER - 1):  # stay under the session's and the names' limits
            error = _try(at, f"guess{tries}", "wrong")
            tries += 1
            if tries == auth.GLOBAL_LOCK_AFTER:
                break
    assert error.endswith("Try again in 30 seconds.")
    fresh = _session()
    assert _try(fresh, "bob@example.com", TEAM).startswith("Too many wrong passwords")
    assert not _inside(fresh)
    clock.advance(30)
    assert _try(fresh, "bob@example.com", TEAM) == "" and _inside(fresh)
