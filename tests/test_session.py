"""The contract's session rules (SECURITY.md R9), on the db and signed_cookies engines: the key is cycled after
every verification, no secret is ever stored, logout clears MFA state, and a protected request whose state did
not change neither writes the session nor costs a query more than ``login_required`` alone."""

import json
import zlib

import pyotp
import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext

from multifactor import crypto
from multifactor.models import Key
from tests.conftest import (
    SIGNED_COOKIES,
    CsrfClient,
    make_totp,
    mfa_state,
    verify_totp,
)

pytestmark = pytest.mark.django_db

AUTHENTICATE = "/multifactor/authenticate/"
TOTP_START = "/multifactor/totp/new/"
COOKIE = django_settings.SESSION_COOKIE_NAME


@pytest.fixture(params=["db", "signed_cookies"])
def engine(request, settings):
    """Run a test on the db engine and on signed_cookies (with the default local-memory cache: revocation needs
    no shared cache)."""
    if request.param == "signed_cookies":
        settings.SESSION_ENGINE = SIGNED_COOKIES
    return request.param


def session_key(client):
    return client.cookies[COOKIE].value


def login_page(client, username, password):
    response = client.post("/accounts/login/", {"username": username, "password": password})
    assert response.status_code == 302, response.content[:300]
    client.csrf_token = client.cookies["csrftoken"].value  # login() rotates the CSRF secret
    return response


def client_view_of_session(client) -> dict:
    """What the holder of the session can read. signed_cookies: the cookie itself, decoded without the
    signing key (as a client would: base64, maybe zlib), then checked through django.core.signing too.
    Other engines: the stored session data, decoded through the session store."""
    value = session_key(client)
    if django_settings.SESSION_ENGINE != SIGNED_COOKIES:
        return Session.objects.get(session_key=value).get_decoded()
    payload = value.rsplit(":", 2)[0]
    compressed = payload.startswith(".")
    raw = signing.b64_decode(payload.lstrip(".").encode())
    data = json.loads(zlib.decompress(raw) if compressed else raw)
    assert data == signing.loads(
        value, salt="django.contrib.sessions.backends.signed_cookies", serializer=signing.JSONSerializer
    )
    return data


def leaves(data):
    if isinstance(data, dict):
        for k, v in data.items():
            yield k
            yield from leaves(v)
    elif isinstance(data, (list, tuple)):
        for v in data:
            yield from leaves(v)
    else:
        yield data


def assert_holds_none_of(data, *secrets):
    text = json.dumps(data)
    for secret in secrets:
        secret = str(secret)
        assert all(str(leaf) != secret for leaf in leaves(data)), f"{secret!r} is in the session: {text}"
        if len(secret) > 6:  # a 6-digit code could occur inside a timestamp by chance; a seed cannot
            assert secret not in text and secret.lower() not in text, f"{secret!r} is in the session: {text}"


# -- cycle_key -------------------------------------------------------------------------------------------


def test_verification_cycles_the_session_key(signed_in, totp_key):
    key, totp = totp_key
    signed_in.get("/f1/")
    before = session_key(signed_in)
    assert verify_totp(signed_in, totp).status_code == 302
    after = session_key(signed_in)
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()
    assert signed_in.get("/f1/").content == b"ok"  # still signed in, and verified, under the new key


def test_every_verification_cycles_the_session_key(signed_in, totp_key):
    key, totp = totp_key
    verify_totp(signed_in, totp)
    first = session_key(signed_in)
    verify_totp(signed_in, totp, key)
    assert session_key(signed_in) != first


def test_enrolment_cycles_the_session_key(signed_in):
    page = signed_in.get(TOTP_START)
    before = session_key(signed_in)
    response = signed_in.post(TOTP_START, {"answer": pyotp.TOTP(page.context["secret"]).now()})
    assert response.status_code == 302
    assert session_key(signed_in) != before
    assert signed_in.get("/f1/").content == b"ok"


def test_failed_verification_does_not_cycle_or_verify(signed_in, totp_key):
    key, totp = totp_key
    signed_in.get("/f1/")
    before = session_key(signed_in)
    wrong = str((int(totp.now()) + 1) % 1_000_000).zfill(6)
    assert signed_in.post("/multifactor/totp/auth/", {"answer": wrong}).status_code == 400
    assert session_key(signed_in) == before
    assert mfa_state(signed_in).verifications == []


# -- no secret in the session ----------------------------------------------------------------------------


def test_no_secret_in_session(engine, client, user):
    client.force_login(user)
    page = client.get(TOTP_START)
    seed = page.context["secret"]
    pending = Key.objects.get(user=user, confirmed=False)
    assert crypto.decrypt(pending.secret) == seed
    assert_holds_none_of(client_view_of_session(client), seed, pending.secret)

    totp = pyotp.TOTP(seed)
    code = totp.now()
    assert client.post(TOTP_START, {"answer": code}).status_code == 302
    assert_holds_none_of(client_view_of_session(client), seed, pending.secret, code)

    code = totp.now()
    assert verify_totp(client, totp, pending).status_code == 302
    data = client_view_of_session(client)
    assert_holds_none_of(data, seed, pending.secret, code)
    assert [v["k"] for v in data["multifactor"]["v"]] == [pending.pk]  # only ids, types and times


def test_wrong_code_is_not_kept_in_session(engine, client, user):
    key, totp = make_totp(user)
    client.force_login(user)
    wrong = "123456" if totp.now() != "123456" else "654321"
    assert client.post("/multifactor/totp/auth/", {"answer": wrong}).status_code == 400
    assert_holds_none_of(client_view_of_session(client), wrong, totp.secret)


# -- logout and the next user ----------------------------------------------------------------------------


def test_logout_clears_mfa_state(engine, client, user):
    key, totp = make_totp(user)
    client.force_login(user)
    verify_totp(client, totp)
    assert client.get("/f1/").content == b"ok"
    client.post("/accounts/logout/")
    assert client.get("/f1/")["Location"].startswith("/accounts/login/")
    login_page(client, "alice", "pw-alice-123")
    response = client.get("/f1/")
    assert response.status_code == 302 and response["Location"] == AUTHENTICATE
    assert mfa_state(client).verifications == []


def test_next_user_of_the_browser_inherits_nothing(engine, client, user):
    from django.contrib.auth import get_user_model

    bob = get_user_model().objects.create_user("bob", "bob@example.com", "pw-bob-456")
    alice_key, alice_totp = make_totp(user)
    make_totp(bob)
    login_page(client, "alice", "pw-alice-123")
    verify_totp(client, alice_totp)
    client.get("/f2/?alice-was-here")  # a remembered URL
    assert client.get(TOTP_START).status_code == 200  # and a pending enrolment
    login_page(client, "bob", "pw-bob-456")  # no logout in between
    state = mfa_state(client)
    assert state.verifications == [] and state.next_url is None and state.pending == {}
    response = client.get("/f1/")
    assert response.status_code == 302 and response["Location"] == AUTHENTICATE


# -- protected requests do not write the session ---------------------------------------------------------


def assert_session_not_written(response):
    assert COOKIE not in response.cookies, "the response re-set the session cookie"


def test_verified_request_does_not_write_signed_cookie_session(settings, client, user):
    settings.SESSION_ENGINE = SIGNED_COOKIES
    key, totp = make_totp(user)
    client.force_login(user)
    verify_totp(client, totp)
    for url in ("/f1/", "/f0/", "/max-age/", "/advertise/", "/async/", "/cbv/", "/f1/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_session_not_written(response)


def test_verified_request_does_not_write_db_session(verified):
    key = session_key(verified)
    row = Session.objects.get(session_key=key)
    for url in ("/f1/", "/f0/", "/max-age/", "/advertise/", "/async/", "/cbv/", "/f1/"):
        response = verified.get(url)
        assert response.status_code == 200, url
        assert_session_not_written(response)
    again = Session.objects.get(session_key=key)
    assert (again.session_data, again.expire_date) == (row.session_data, row.expire_date)


def test_repeated_challenge_to_the_same_url_does_not_write_the_session(engine, client, user):
    make_totp(user)
    client.force_login(user)
    first = client.get("/f1/?page=1")
    assert first["Location"] == AUTHENTICATE
    assert COOKIE in first.cookies  # the URL to return to was remembered
    second = client.get("/f1/?page=1")
    assert second["Location"] == AUTHENTICATE
    assert_session_not_written(second)


def test_advertising_writes_the_session_once(engine, signed_in):
    assert COOKIE in signed_in.get("/advertise/").cookies  # the notice was given: remember that
    assert_session_not_written(signed_in.get("/advertise/"))


# -- protected requests cost no query more than login_required ------------------------------------------


def count_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.get("Location"))
    return len(queries)


def queries_for_f1_and_plain(client, user):
    key, totp = make_totp(user)
    client.force_login(user)
    verify_totp(client, totp)
    counts = []
    for _ in range(3):
        counts.append((count_queries(client, "/f1/"), count_queries(client, "/plain/")))
    return counts


def test_verified_request_queries_db_sessions(client, user):
    counts = queries_for_f1_and_plain(client, user)
    print(f"\n[db sessions] /f1/ vs /plain/ queries: {counts}")
    assert all(f1 == plain for f1, plain in counts), counts


def test_verified_request_queries_signed_cookies_with_the_default_cache(settings, client, user):
    """The configuration a newcomer gets: signed cookies, Django's default local-memory cache. The revocation
    counter comes with the user row, so there is no cache to share and no query of its own."""
    settings.SESSION_ENGINE = SIGNED_COOKIES
    counts = queries_for_f1_and_plain(client, user)
    print(f"\n[signed_cookies + locmem] /f1/ vs /plain/ queries: {counts}")
    assert all(f1 == plain for f1, plain in counts), counts


@pytest.mark.parametrize("engine_name", ["db", "signed_cookies"])
def test_without_the_backend_mixin_a_protected_request_costs_one_query(settings, client, user, engine_name):
    """A site that keeps Django's own backend (check multifactor.W007): the counter is read on its own, once
    per request: by SignedInSessionsMiddleware on every signed-in page, and the protection shares that read."""
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    if engine_name == "signed_cookies":
        settings.SESSION_ENGINE = SIGNED_COOKIES
    counts = queries_for_f1_and_plain(client, user)
    assert all(f1 == plain for f1, plain in counts), counts
    middleware = "multifactor.trust.middleware.SignedInSessionsMiddleware"
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != middleware]
    bare = type(client)()  # a client loads the middleware once: a new one, with the same session
    bare.cookies = client.cookies
    counts = [(count_queries(bare, "/f1/"), count_queries(bare, "/plain/")) for _ in range(3)]
    assert all(f1 == plain + 1 for f1, plain in counts), counts  # without the middleware: the protection's read


def test_unverified_request_without_keys_costs_one_query_more(signed_in):
    assert count_queries(signed_in, "/f0/") == count_queries(signed_in, "/plain/") + 1  # "has the user keys?"


# -- revocation reaches every session, on every engine ---------------------------------------------------


@pytest.mark.parametrize("backend", ["multifactor.backends.ModelBackend", "django.contrib.auth.backends.ModelBackend"])
def test_disabled_key_ends_verification_in_other_signed_cookie_session(settings, user, backend):
    settings.AUTHENTICATION_BACKENDS = [backend]
    settings.SESSION_ENGINE = SIGNED_COOKIES
    first, totp1 = make_totp(user, "first")
    make_totp(user, "second")
    laptop, phone = CsrfClient(), CsrfClient()
    for c in (laptop, phone):
        c.force_login(user)
        verify_totp(c, totp1, first)
        assert c.get("/f1/").content == b"ok"
    assert laptop.post(f"/multifactor/toggle_factor:{first.pk}/").status_code == 302
    assert phone.get("/f1/")["Location"] == AUTHENTICATE
    assert laptop.get("/f1/")["Location"] == AUTHENTICATE


def test_deleted_key_ends_verification_in_other_signed_cookie_session(settings, user):
    settings.SESSION_ENGINE = SIGNED_COOKIES
    first, totp1 = make_totp(user, "first")
    make_totp(user, "second")
    phone = CsrfClient()
    phone.force_login(user)
    verify_totp(phone, totp1)
    assert phone.get("/f1/").content == b"ok"
    Key.objects.get(pk=first.pk).delete()
    response = phone.get("/f1/")
    assert response["Location"] == AUTHENTICATE
    assert COOKIE in response.cookies  # the corrected state is saved once...
    assert_session_not_written(phone.get("/f1/"))  # ...and not on every request after


def test_session_rekeyed_behind_the_library_keeps_its_verifications_for_free(client, user):
    """Another app calling cycle_key() changes nothing for revocation (no index of session keys any more): the
    verification stays, with no query and no write beyond login_required's."""
    key, totp = make_totp(user)
    client.force_login(user)
    verify_totp(client, totp)
    session = client.session
    session.cycle_key()
    session.save()
    client.cookies[COOKIE] = session.session_key
    assert client.get("/f1/").content == b"ok"
    assert count_queries(client, "/f1/") == count_queries(client, "/plain/")
    assert_session_not_written(client.get("/f1/"))
