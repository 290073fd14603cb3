"""Helpers for the factor, API, revocation and crypto tests: URLs, settings overrides, an independent
RFC 4226/6238 implementation, and session editing that works with every session engine."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
import threading
import time
from importlib import import_module

import pytest
from django.conf import settings
from django.db import connections
from django.test import override_settings

from multifactor import session as mf_session

BASE = "/multifactor/"
HOME = BASE
ADD = BASE + "add/"
HELP = BASE + "help/"
AUTHENTICATE = BASE + "authenticate/"
TOTP_NEW = BASE + "totp/new/"
TOTP_AUTH = BASE + "totp/auth/"
API = BASE + "api/v1/"
LOGIN = "/accounts/login/"

# Race tests need a database with real row locks and separate connections per thread: PostgreSQL or MariaDB/MySQL
# (DATABASE_URL=postgres://... or mysql://...). SQLite serialises writers, so they are skipped there.
CONCURRENT_DB_SCHEMES = ("postgres", "mysql", "mariadb")
needs_concurrent_db = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(CONCURRENT_DB_SCHEMES),
    reason="needs PostgreSQL or MariaDB (DATABASE_URL=postgres://... or mysql://...)",
)


def action_url(action, ident):
    return f"{BASE}{action}:{ident}/"


def rename_url(pk):
    return f"{BASE}rename/{pk}/"


def mf_settings(**overrides):
    """override_settings(MULTIFACTOR=...) keeping the suite's own keys (encryption keys, issuer, ...)."""
    return override_settings(MULTIFACTOR={**settings.MULTIFACTOR, **overrides})


# -- an RFC 4226 / RFC 6238 implementation written from the RFCs, not from pyotp --------------------------


def hotp(seed: bytes, counter: int, digits: int = 6, digest=hashlib.sha1) -> str:
    """RFC 4226 section 5.3: HMAC-SHA1, dynamic truncation, modulo 10^digits."""
    mac = hmac.new(seed, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    binary = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def totp_code(seed: bytes, for_time: float, digits: int = 6, step: int = 30, digest=hashlib.sha1) -> str:
    """RFC 6238 section 4: T = floor(unix time / 30), then HOTP."""
    return hotp(seed, int(for_time) // step, digits, digest)


def wait_for_fresh_step(margin: float = 3.0) -> None:
    """Sleep into the next 30 s step if fewer than ``margin`` seconds remain in this one, so that codes
    computed now for a given offset still have that offset when the server checks them."""
    left = 30 - (time.time() % 30)
    if left < margin:
        time.sleep(left + 0.05)


def wrong_code(totp, now=None) -> str:
    """A 6-digit code that no step near now accepts (so a "wrong code" is really wrong)."""
    now = time.time() if now is None else now
    near = {totp.at(now + 30 * k) for k in range(-3, 4)}
    for candidate in ("000000", "111111", "123456", "654321", "999999", "424242"):
        if candidate not in near:
            return candidate
    raise AssertionError("unreachable")


# -- JSON responses ----------------------------------------------------------------------------------------


def error_codes(response) -> list[str]:
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    body = json.loads(response.content)
    assert set(body) <= {"errors", "meta"}, body
    for item in body["errors"]:
        assert isinstance(item["code"], str) and isinstance(item["message"], str) and item["message"]
    return [item["code"] for item in body["errors"]]


def data(response):
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    return json.loads(response.content)["data"]


# -- sessions ----------------------------------------------------------------------------------------------


def session_of(client):
    engine = import_module(settings.SESSION_ENGINE)
    cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
    return engine.SessionStore(cookie.value if cookie else None)


def edit_mfa_state(client, change) -> None:
    """Load the client's session, apply ``change(state)`` to its MFA state and save it back (the cookie too,
    for signed_cookies sessions whose key is their content)."""
    store = session_of(client)
    state = mf_session.load(store)
    change(state)
    mf_session.save(store, state)
    store.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = store.session_key


def mfa_state(client):
    return mf_session.load(session_of(client))


def age_verifications(client, seconds: float) -> None:
    """Make the client's verifications look ``seconds`` old (the passing of time, without a sleep)."""

    def change(state):
        now = time.time()
        state.verifications = [
            mf_session.Verification(v.key_id, v.type, now - seconds, v.expires_at, v.uv) for v in state.verifications
        ]

    edit_mfa_state(client, change)


# -- races (PostgreSQL / MariaDB tests) ---------------------------------------------------------------------


def race(clients, work):
    """Run ``work(client) -> [results]`` in one thread per client, released together; all results."""
    barrier = threading.Barrier(len(clients), timeout=30)
    results, errors = [], []
    lock = threading.Lock()

    def target(client):
        try:
            barrier.wait()
            got = work(client)
            with lock:
                results.extend(got)
        except BaseException as error:  # reported below; a thread must not die silently
            with lock:
                errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(c,)) for c in clients]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    elapsed = time.monotonic() - started
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors
    connections.close_all()
    return results, elapsed


# -- the test Redis ----------------------------------------------------------------------------------------

REDIS_URL = os.environ.get("MULTIFACTOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_connection():
    """A client for the test Redis database; skips on a laptop without Redis, fails in CI."""
    redis = pytest.importorskip("redis")
    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        connection.ping()
    except redis.exceptions.ConnectionError:
        connection.close()
        if os.environ.get("MULTIFACTOR_TEST_REDIS_URL") or os.environ.get("CI"):
            raise
        pytest.skip(f"no Redis at {REDIS_URL}")
    return connection


def flush_prefix(connection, prefix):
    """Delete this test's keys (a prefix of its own, so that suites running at once do not meet)."""
    for key in connection.scan_iter(f"{prefix}:*"):
        connection.delete(key)
