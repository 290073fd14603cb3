"""Trusted browsers (CONTRACT "Trusted browsers and signed-in sessions"), through real requests, on db and
signed_cookies sessions: what a trust is worth, what it is never worth, and what is stored."""

import hashlib
import json

import pytest

from multifactor import session as mf_session
from multifactor.models import Event, Key, TrustedBrowser
from tests import trust_helpers
from tests.conftest import make_totp
from tests.mfa_helpers import API, TOTP_AUTH, action_url, data, error_codes, mf_settings, mfa_state
from tests.trust_helpers import (
    DAYS,
    SESSION_COOKIE,
    TRUST_COOKIE,
    browser,
    fresh_step,
    sign_out_and_in,
    trust_with_totp,
)

pytestmark = pytest.mark.django_db
engine = trust_helpers.engine  # the fixture: db and signed_cookies sessions, TRUST_DAYS on


@pytest.fixture
def trusted(engine, user):
    """A browser trusted with TOTP, then signed out and in again: a later session of the same browser."""
    key, totp = make_totp(user)
    client = browser()
    trust_with_totp(client, user, key, totp)
    sign_out_and_in(client, user)
    return client, key, totp


def test_the_trust_cookie_is_random_httponly_lax_and_lasts_trust_days(engine, user, settings):
    settings.SESSION_COOKIE_DOMAIN = "testserver.local"
    settings.SESSION_COOKIE_PATH = "/"
    key, totp = make_totp(user)
    client = browser()
    response = trust_with_totp(client, user, key, totp)
    cookie = response.cookies[TRUST_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    assert cookie["max-age"] == DAYS * 86400
    assert cookie["domain"] == "testserver.local" and cookie["path"] == "/"
    assert len(cookie.value) >= 43  # token_urlsafe(32): 256 bits


def test_the_trust_cookie_is_secure_when_the_site_is(engine, user, settings):
    settings.SESSION_COOKIE_SECURE = True
    key, totp = make_totp(user)
    response = trust_with_totp(browser(), user, key, totp)
    assert response.cookies[TRUST_COOKIE]["secure"]


def test_the_server_keeps_only_a_hash_bound_to_user_key_and_password(engine, user):
    key, totp = make_totp(user)
    client = browser()
    token = trust_with_totp(client, user, key, totp).cookies[TRUST_COOKIE].value
    row = TrustedBrowser.objects.get()
    assert row.user == user and row.key == key
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = json.dumps(list(TrustedBrowser.objects.values()), default=str)
    assert token not in stored and user.get_session_auth_hash() not in stored
    assert (row.expires_at - row.created_at).days == DAYS and "Firefox" in row.user_agent


def test_nothing_in_the_session_is_a_trust_secret(engine, user):
    key, totp = make_totp(user)
    client = browser()
    token = trust_with_totp(client, user, key, totp).cookies[TRUST_COOKIE].value
    sign_out_and_in(client, user)
    assert client.get("/f1/").content == b"ok"
    raw = json.dumps(dict(client.session.items()))
    assert token not in raw and client.cookies[SESSION_COOKIE].value.find(token) == -1


def test_a_later_session_of_the_trusted_browser_meets_factors_1_without_a_code(trusted):
    client, key, _totp = trusted
    assert client.get("/f1/").content == b"ok"
    (verification,) = mfa_state(client).verifications
    assert verification.key_id == key.pk and verification.trusted
    assert TrustedBrowser.objects.get().last_used_at is not None


@pytest.mark.parametrize("url", ["/callable/", "/lambda/", "/method/?n=1", "/f0/", "/cbv/"])
def test_trust_meets_callables_returning_1_and_factors_0(trusted, url):
    client, _key, _totp = trusted
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("url", ["/f2/", "/lambda2/", "/callable2/", "/fn/"])
def test_trust_is_never_a_second_factor(trusted, user, url):
    client, _key, _totp = trusted
    second, totp2 = make_totp(user, "second")
    assert client.get(url).status_code == 302
    assert client.get("/f1/").status_code == 200  # counted as one: the first page is fine
    assert client.post(TOTP_AUTH, {"answer": totp2.now()}).status_code == 302  # one more real factor
    assert client.get(url).status_code == 302  # the trust plus one factor is still one factor


def test_trust_is_never_a_max_age_step_up(trusted):
    client, _key, _totp = trusted
    assert client.get("/max-age/").status_code == 302
    assert client.get("/f1/").status_code == 200
    assert client.get("/max-age/").status_code == 302


def test_trust_never_opens_the_reauthentication_window(trusted, user):
    client, key, _totp = trusted
    assert client.get("/f1/").status_code == 200
    response = client.api("delete", f"{API}keys/{key.pk}")
    assert response.status_code == 403 and error_codes(response) == ["reauthentication_required"]
    response = client.api("delete", f"{API}sessions")
    assert error_codes(response) == ["reauthentication_required"]
    client.post(action_url("delete_factor", key.pk))
    assert Key.objects.filter(pk=key.pk).exists()


def test_the_trust_counts_only_for_its_user(engine, user, django_user_model):
    key, totp = make_totp(user)
    client = browser()
    trust_with_totp(client, user, key, totp)
    bob = django_user_model.objects.create_user("bob", "bob@example.com", "pw-bob-123")
    make_totp(bob)
    client.post("/multifactor/logout/")
    client.force_login(bob)
    assert client.get("/f1/").status_code == 302


def test_a_forged_or_copied_token_is_worth_nothing(engine, user):
    key, totp = make_totp(user)
    client = browser()
    token = trust_with_totp(client, user, key, totp).cookies[TRUST_COOKIE].value
    other = browser()
    other.cookies[TRUST_COOKIE] = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    other.force_login(user)
    assert other.get("/f1/").status_code == 302


def test_trust_browser_is_ignored_when_trust_days_is_0(user, settings):
    key, totp = make_totp(user)
    client = browser()
    client.force_login(user)
    page = client.get(TOTP_AUTH).content.decode()
    assert 'name="trust_browser"' not in page
    response = client.post(TOTP_AUTH, {"answer": totp.now(), "trust_browser": "1"})
    assert response.status_code == 302 and TRUST_COOKIE not in response.cookies
    assert not TrustedBrowser.objects.exists()


def test_an_existing_trust_stops_counting_when_the_site_turns_trust_off(trusted):
    client, _key, _totp = trusted
    with mf_settings(TRUST_DAYS=0):
        assert client.get("/f1/").status_code == 302


def test_every_verification_page_offers_the_checkbox(engine, user):
    make_totp(user)
    client = browser()
    client.force_login(user)
    for url in (TOTP_AUTH, "/multifactor/recovery/auth/", "/multifactor/fido2/auth/"):
        page = client.get(url).content.decode()
        assert 'name="trust_browser"' in page, url
        assert f"Trust this browser for {DAYS} days" in page, url


def test_json_verification_trusts_with_trust_browser_true(engine, user):
    key, totp = make_totp(user)
    client = browser()
    client.force_login(user)
    response = client.api("post", f"{API}totp/authenticate", {"code": totp.now(), "trust_browser": True})
    assert response.status_code == 200 and data(response)["verified"] is True
    assert response.cookies[TRUST_COOKIE]["httponly"]
    sign_out_and_in(client, user)
    assert client.api("get", "/api/thing").status_code == 200


def test_json_verification_without_the_flag_trusts_nothing(engine, user):
    _key, totp = make_totp(user)
    client = browser()
    client.force_login(user)
    response = client.api("post", f"{API}totp/authenticate", {"code": totp.now(), "trust_browser": "yes"})
    assert response.status_code == 200 and TRUST_COOKIE not in response.cookies


def test_a_fallback_code_is_never_trusted(engine, user, mailoutbox):
    import re

    make_totp(user)
    client = browser()
    client.force_login(user)
    client.post("/multifactor/fallback/auth/", {"send": "1"})
    code = re.search(r"\b(\d{8})\b", mailoutbox[-1].body).group(1)
    response = client.post("/multifactor/fallback/auth/", {"otp": code, "trust_browser": "1"})
    assert response.status_code == 302 and not TrustedBrowser.objects.exists()


def test_trusting_and_revoking_are_audited(trusted, user):
    client, key, totp = trusted
    assert Event.objects.filter(kind="browser_trusted", user=user, key_id=key.pk).count() == 1
    fresh_step(key)
    client.post(TOTP_AUTH, {"answer": totp.now()})
    row = TrustedBrowser.objects.get()
    assert client.post(f"/multifactor/trusted-browsers/{row.pk}/revoke/").status_code == 302
    event = Event.objects.get(kind="trust_revoked")
    assert event.detail["trust_ids"] == [row.pk]


def test_a_trust_derived_verification_lasts_no_longer_than_the_trust(trusted):
    client, _key, _totp = trusted
    client.get("/f1/")
    (verification,) = mfa_state(client).verifications
    assert verification.expires_at <= TrustedBrowser.objects.get().expires_at.timestamp()


def test_sessions_stored_before_the_trust_field_read_back_unchanged():
    old = {"k": 3, "t": "TOTP", "at": 1.0, "exp": None, "uv": False}
    parsed = mf_session.Verification.from_json(old)
    assert parsed.trust_id is None and not parsed.trusted and parsed.to_json() == old


def test_the_hot_path_costs_nothing_more_with_trust_on(engine, user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    key, totp = make_totp(user)
    client = browser()
    trust_with_totp(client, user, key, totp)  # verified now, and holding a trust cookie
    sign_out_and_in(client, user)
    client.get("/f1/")  # the trust verifies this session once

    def count(url):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    for _ in range(3):
        assert count("/f1/") == count("/plain/")
    fresh_step(key)
    client.post(TOTP_AUTH, {"answer": totp.now()})
    for _ in range(3):
        assert count("/f1/") == count("/plain/")
