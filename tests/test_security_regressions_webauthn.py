"""The WebAuthn lines of SECURITY.md's "predecessor's bugs" and the WebAuthn advisories it cites, one named test
each, so a reviewer can tick them off (the other lines: tests/test_security_regressions.py). Real endpoints,
answered by the software authenticator of tests/softauthn.py; each test fails if the old behaviour comes back.

Predecessor (django-multifactor 0.9.x): "FIDO2 endpoints were CSRF-exempt, ignored the sign count, used the
username as user handle, and only worked when the host equalled the RP ID exactly; errors came back as HTML
500s to JavaScript." Advisories: otp-webauthn GHSA-8r76-c459-ww98 (a password alone registered a new
passkey) and allauth 65.20.1 (anonymous passkey attempts locked users out).
"""

import json

import pytest

from multifactor.factors.fido2 import user_handle
from multifactor.models import Key
from tests.mfa_helpers import BASE, LOGIN, age_verifications, data, error_codes, mf_settings
from tests.softauthn import SoftAuthenticator, b64u_decode
from tests.test_webauthn import (
    PASSKEY_BEGIN,
    PASSKEY_COMPLETE,
    ROUTES,
    authenticate,
    begin_auth,
    begin_registration,
    complete_auth,
    complete_registration,
    enrol,
    is_verified,
    new_client,
    passkey_sign_in,
    post,
    refused,
    register,
)

pytestmark = pytest.mark.django_db

ORIGIN = "http://localhost"
ENDPOINTS = [*ROUTES["api"].values(), BASE + "fido2/register/", BASE + "fido2/authenticate/"]
ALL_ENDPOINTS = [*ENDPOINTS, PASSKEY_BEGIN, PASSKEY_COMPLETE]


@pytest.fixture(autouse=True)
def webauthn_settings(settings):
    """RP ID "localhost", origin http://localhost, passkey sign-in on (so its endpoints exist)."""
    settings.MULTIFACTOR = {
        **settings.MULTIFACTOR,
        "FIDO_SERVER_ID": "localhost",
        "FIDO_ORIGINS": [ORIGIN],
        "PASSKEY_LOGIN": True,
    }


@pytest.fixture
def enrolled(user):
    auth = SoftAuthenticator()
    return auth, enrol(user, auth)


@pytest.fixture
def passkey(user):
    auth = SoftAuthenticator(uv=True, transports=("internal",), attachment="platform")
    return auth, enrol(user, auth, name="laptop", passkey=True)


# -- django-multifactor 0.9.x ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ALL_ENDPOINTS)
def test_fido2_endpoints_are_not_csrf_exempt(user, enrolled, url):
    client = new_client(user)
    refused(post(client, url, csrf=False), 403, "csrf_failed")


def test_fido2_assertion_without_csrf_token_does_not_verify(user, enrolled):
    auth, _key = enrolled
    client = new_client(user)
    assertion = auth.get(begin_auth(client))
    for url in (ROUTES["api"]["auth_complete"], ROUTES["pages"]["auth_complete"]):
        refused(post(client, url, {"credential": assertion}, csrf=False), 403, "csrf_failed")
    assert not is_verified(client)


def test_fido2_sign_count_is_not_ignored(user):
    auth = SoftAuthenticator(sign_count=5)
    key = enrol(user, auth)
    assert authenticate(new_client(user), auth, sign_count=6).status_code == 200
    key.refresh_from_db()
    assert key.sign_count == 6
    # The same count again (a cloned authenticator replaying its counter), and a lower one: refused, flagged.
    for count in (6, 3):
        client = new_client(user)
        refused(authenticate(client, auth, sign_count=count), 400, "webauthn_failed")
        assert not is_verified(client)
    key.refresh_from_db()
    assert key.sign_count == 6 and key.clone_suspected_at is not None


def test_fido2_user_handle_is_not_the_username(user):
    client = new_client(user)
    handle = b64u_decode(begin_registration(client)["publicKey"]["user"]["id"])
    assert len(handle) == 64  # random, WebAuthn's recommended 64 bytes
    assert user.username.encode() not in handle and user.email.encode() not in handle
    assert handle not in (str(user.pk).encode(), user.pk.to_bytes(8, "big"))
    # Random per user, not derived from the name: another user's handle shares nothing recognisable.
    bob = type(user).objects.create_user("bob", "bob@example.com", "pw")
    assert user_handle(bob) != handle and len(user_handle(bob)) == 64
    assert handle == user_handle(user)


def test_fido2_username_as_user_handle_does_not_sign_in(user, passkey):
    auth, key = passkey
    for forged in (user.username.encode(), str(user.pk).encode()):
        client = new_client()
        refused(passkey_sign_in(client, auth, user_handle=forged), 400, "passkey_failed")
        assert "_auth_user_id" not in client.session
    assert passkey_sign_in(new_client(), auth).status_code == 200  # with the real, random handle


@pytest.fixture
def subdomain_site(settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "example.com", "login.example.com"]
    settings.MULTIFACTOR = {
        **settings.MULTIFACTOR,
        "FIDO_SERVER_ID": "example.com",
        "FIDO_ORIGINS": ["https://example.com", "https://login.example.com"],
    }


def test_fido2_works_on_a_subdomain_host_of_the_rp_id(subdomain_site, user):
    host, origin = "login.example.com", "https://login.example.com"
    client = new_client(user, host=host)
    options = begin_registration(client)
    assert options["publicKey"]["rp"]["id"] == "example.com"  # the RP ID, not the host
    auth = SoftAuthenticator(rp_id="example.com", origin=origin)
    response = complete_registration(client, auth.create(options))
    assert response.status_code == 201, response.content
    assert Key.objects.get(user=user).rp_id == "example.com"
    # Authentication on the subdomain, and on the RP ID's own host, with the same key.
    fresh = new_client(user, host=host)
    assert begin_auth(fresh)["publicKey"]["rpId"] == "example.com"
    assert authenticate(fresh, auth).status_code == 200
    assert is_verified(fresh)
    apex = new_client(user, host="example.com")
    assert complete_auth(apex, auth.get(begin_auth(apex), origin="https://example.com")).status_code == 200


MALFORMED = {
    "not json": b"{this is not json",
    "a list": b"[]",
    "credential a string": json.dumps({"credential": "garbage"}).encode(),
    "credential with wrong types": json.dumps({"credential": {"id": 1, "response": []}}).encode(),
    "empty object": b"{}",
}


@pytest.mark.parametrize("body", sorted(MALFORMED))
@pytest.mark.parametrize("url", ALL_ENDPOINTS)
def test_fido2_errors_are_json_never_an_html_500(user, enrolled, url, body):
    """Whatever JavaScript posts, the answer is JSON: a begin may ignore a body it does not need (200), a
    complete refuses a broken one (4xx with error codes); never a 500, never an HTML page."""
    client = new_client(user)
    if url.endswith("complete"):
        post(client, url.replace("complete", "begin"))  # a ceremony in progress: the body is what is wrong
    response = client.post(
        url, MALFORMED[body], content_type="application/json", headers={"Accept": "application/json"}
    )
    assert response.status_code < 500, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    assert b"<html" not in response.content.lower() and b"Traceback" not in response.content
    if url.endswith("complete") or response.status_code >= 400:
        assert 400 <= response.status_code < 500, response.content[:300]
        assert error_codes(response)


def test_fido2_failed_ceremony_is_a_json_error(user, enrolled):
    """A well-formed answer that fails verification (a bad signature) is a JSON 400 with a code, too."""
    auth, _key = enrolled
    for via in ("api", "pages"):
        client = new_client(user)
        response = complete_auth(client, auth.get(begin_auth(client, via), bad_signature=True), via)
        assert response["Content-Type"].startswith("application/json")
        refused(response, 400, "webauthn_failed")


# -- otp-webauthn GHSA-8r76-c459-ww98: a password alone registered a new passkey --------------------------


@pytest.mark.parametrize("passkey_flag", [True, False])
def test_ghsa_8r76_c459_ww98_password_alone_cannot_register_a_key(user, enrolled, passkey_flag):
    # Signed in with the password form only: no factor verified in this session.
    client = new_client()
    client.get(LOGIN)
    response = client.post(LOGIN, {"username": "alice", "password": "pw-alice-123"})
    assert response.status_code == 302
    client.csrf_token = client.cookies["csrftoken"].value  # Django rotates the token at login
    body = {"passkey": True} if passkey_flag else {}
    for via in ("api", "pages"):
        refused(post(client, ROUTES[via]["register_begin"], body), 403, "reauthentication_required")
    # Nor by completing with options obtained in another session: the state is per session.
    auth, _key = enrolled
    other = new_client(user)
    assert authenticate(other, auth).status_code == 200
    options = begin_registration(other, **body)
    response = complete_registration(client, SoftAuthenticator().create(options))
    assert response.status_code in (400, 403), response.content
    assert Key.objects.filter(user=user).count() == 1


def test_ghsa_8r76_c459_ww98_a_stale_verification_cannot_register_a_key(user, enrolled):
    auth, _key = enrolled
    client = new_client(user)
    assert authenticate(client, auth).status_code == 200
    options = begin_registration(client, passkey=True)
    age_verifications(client, 3600)  # verified an hour ago: past the re-authentication window
    response = complete_registration(client, SoftAuthenticator(uv=True).create(options))
    refused(response, 403, "reauthentication_required")
    assert Key.objects.filter(user=user).count() == 1


def test_ghsa_8r76_c459_ww98_a_user_without_keys_may_register(user):
    """The guard does not lock out first enrolment (a user with no keys has nothing to re-verify)."""
    assert register(new_client(user), SoftAuthenticator()).status_code == 201


# -- allauth 65.20.1: anonymous passkey failures locked the owner out -------------------------------------


def test_allauth_65_20_1_anonymous_passkey_failures_do_not_count(user, passkey):
    auth, key = passkey
    with mf_settings(THROTTLE_FREE_FAILURES=0, THROTTLE_BASE_DELAY=60, THROTTLE_MAX_FAILURES=2):
        for knobs in ({"bad_signature": True}, {"uv": False}, {"origin": "https://evil.example"}) * 2:
            refused(passkey_sign_in(new_client(), auth, **knobs), 400, "passkey_failed")
        key.refresh_from_db()
        assert (key.failures, key.throttled_until, key.locked_at, key.enabled) == (0, None, None, True)
        # The owner is not locked out: passkey sign-in, and the key as a second factor, both work.
        client = new_client()
        response = passkey_sign_in(client, auth)
        assert response.status_code == 200, response.content
        assert data(response)
        assert authenticate(new_client(user), auth).status_code == 200


def test_allauth_65_20_1_signed_in_failures_still_count(user, enrolled):
    """The other side: a signed-in user's failed assertions are counted and throttled (SECURITY.md R4)."""
    auth, key = enrolled
    with mf_settings(THROTTLE_FREE_FAILURES=0, THROTTLE_BASE_DELAY=60, THROTTLE_MAX_FAILURES=10):
        client = new_client(user)
        refused(authenticate(client, auth, bad_signature=True), 400, "webauthn_failed")
        key.refresh_from_db()
        assert key.failures == 1 and key.throttled_until is not None
