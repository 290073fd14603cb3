"""Trusted browsers and signed-in sessions across worker processes, for real (two ``python -m tests.serve``
processes sharing one database): a session signed out through process A is refused by process B on its very
next request, and a trust revoked through A no longer counts in B."""

import json
import secrets
import time

import pyotp
import pytest

from tests.test_multiprocess import AUTHENTICATE, Browser, Server, database_env, process_env, run_setup  # noqa: F401

pytestmark = pytest.mark.slow
ENGINES = ["db", "signed_cookies"]
LOGIN = "/accounts/login/"


@pytest.fixture(params=ENGINES)
def servers(request, database_env, tmp_path):  # noqa: F811
    env = process_env(database_env, request.param, f"mftest-{secrets.token_hex(8)}")
    env["MF_MULTIFACTOR"] = json.dumps({"TRUST_DAYS": 30})
    started = []
    try:
        for name in ("a", "b"):
            started.append(Server(env, tmp_path / f"server-{name}.log"))
        yield request.param, env, started[0], started[1]
    finally:
        for server in started:
            server.stop()


def user_with_app(engine, env, prefix):
    seed = pyotp.random_base32()
    username, password = f"{prefix}_{engine}_{secrets.token_hex(3)}", "pw-" + secrets.token_hex(8)
    run_setup(env, username, password, seed)
    return username, password, pyotp.TOTP(seed)


def test_a_session_signed_out_through_a_is_refused_by_b(servers):
    engine, env, a, b = servers
    username, password, totp = user_with_app(engine, env, "so")
    laptop, phone = Browser(), Browser()
    laptop.log_in(a, username, password)
    laptop.verify(a, totp.now())
    phone.log_in(b, username, password)
    assert phone.request(b, "/plain/")[::2] == (200, b"plain")

    status, location, _ = laptop.request(a, "/multifactor/sessions/sign-out/", {})
    assert (status, location) == (302, "/multifactor/")

    status, location, _ = phone.request(b, "/plain/")  # an unprotected page: the middleware logs it out
    assert status == 302 and location.startswith(LOGIN)
    assert phone.request(a, "/plain/")[0] == 302
    assert laptop.request(b, "/f1/")[::2] == (200, b"ok")


def test_a_trust_revoked_through_a_no_longer_counts_in_b(servers):
    engine, env, a, b = servers
    username, password, totp = user_with_app(engine, env, "tr")
    home = Browser()
    home.log_in(a, username, password)
    status, _, body = home.request(a, "/multifactor/totp/auth/", {"answer": totp.now(), "trust_browser": "1"})
    assert status == 302, body[:500]
    assert home.cookie("multifactor_trust")
    assert home.request(a, "/multifactor/logout/", {})[0] == 302
    home.log_in(b, username, password)
    assert home.request(b, "/f1/")[::2] == (200, b"ok")  # trusted: no code

    other = Browser()
    other.log_in(a, username, password)
    other.verify(a, totp.at(time.time() + 30))
    assert other.request(a, "/multifactor/trusted-browsers/revoke/", {})[0] == 302

    assert home.request(b, "/f1/")[:2] == (302, AUTHENTICATE)  # the very next request, in the other process
