"""WebAuthn security keys and passkeys (SECURITY.md R4, R7, R8, R13) without a browser.

Real ``fido2`` server code behind the real endpoints, reached through the test client over HTTP, answered
by the software authenticator of :mod:`tests.softauthn` (what a browser's ``PublicKeyCredential.toJSON()``
gives). Each negative case bends exactly one field of an otherwise valid answer, so that it fails for the
reason it names; most come with the valid twin that passes.
"""

from __future__ import annotations

import copy
import json
import os
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from multifactor import crypto
from multifactor.factors.fido2 import user_handle
from multifactor.models import Key, WebAuthnChallenge, WebAuthnUser
from tests.conftest import CsrfClient, make_totp
from tests.mfa_helpers import (
    API,
    BASE,
    age_verifications,
    data,
    edit_mfa_state,
    error_codes,
    mf_settings,
    mfa_state,
    session_of,
)
from tests.softauthn import SoftAuthenticator, b64u, b64u_decode

pytestmark = pytest.mark.django_db

HOST = "localhost"
ORIGIN = "http://localhost"

PAGE_REGISTER = BASE + "fido2/register/"
PAGE_AUTHENTICATE = BASE + "fido2/authenticate/"
PASSKEY_PAGE = BASE + "passkey/"
ROUTES = {
    "api": {
        "register_begin": API + "webauthn/register/begin",
        "register_complete": API + "webauthn/register/complete",
        "auth_begin": API + "webauthn/authenticate/begin",
        "auth_complete": API + "webauthn/authenticate/complete",
    },
    "pages": {
        "register_begin": PAGE_REGISTER,
        "register_complete": PAGE_REGISTER,
        "auth_begin": PAGE_AUTHENTICATE,
        "auth_complete": PAGE_AUTHENTICATE,
    },
}
PASSKEY_BEGIN = API + "passkey/begin"
PASSKEY_COMPLETE = API + "passkey/complete"
VIA = ["api", "pages"]


@pytest.fixture(autouse=True)
def webauthn_settings(settings):
    """RP ID "localhost" and the origin http://localhost, the way a development site is set up."""
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "FIDO_SERVER_ID": "localhost", "FIDO_ORIGINS": [ORIGIN]}


def new_client(user=None, host=HOST) -> CsrfClient:
    client = CsrfClient(HTTP_HOST=host)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def client():
    """The conftest's CSRF-enforcing client, on the host the RP ID names."""
    return new_client()


@pytest.fixture
def bob(db):
    return get_user_model().objects.create_user("bob", "bob@example.com", "pw-bob-123")


# -- ceremonies through the endpoints --------------------------------------------------------------------


def post(client, url, body=None, **kwargs):
    return client.api("post", url, {} if body is None else body, **kwargs)


def begin_registration(client, via="api", **body):
    response = post(client, ROUTES[via]["register_begin"], body)
    assert response.status_code == 200, response.content
    return data(response)


def complete_registration(client, credential, name="my key", via="api"):
    return post(client, ROUTES[via]["register_complete"], {"name": name, "credential": credential})


def register(client, auth, name="my key", via="api", passkey=None, **knobs):
    """begin + the authenticator's answer (bent by ``knobs``) + complete; returns the complete response."""
    body = {} if passkey is None else {"passkey": passkey}
    options = begin_registration(client, via, **body)
    return complete_registration(client, auth.create(options, **knobs), name, via)


def enrol(user, auth, name="my key", passkey=None) -> Key:
    """Register ``auth`` for ``user`` from a session of its own (as the user did yesterday)."""
    client = new_client(user)
    if Key.objects.filter(user=user, enabled=True).exists():
        verify_any(client, user)  # a user with keys needs a recent verification to add one
    response = register(client, auth, name, passkey=passkey)
    assert response.status_code == 201, response.content
    return Key.objects.get(pk=data(response)["id"])


def verify_any(client, user):
    """Verify ``client``'s session with a fresh TOTP key (a factor that is not under test here)."""
    key, totp = make_totp(user, name="helper")
    response = post(client, API + "totp/authenticate", {"code": totp.now()})
    assert response.status_code == 200, response.content
    return key


def begin_auth(client, via="api"):
    response = post(client, ROUTES[via]["auth_begin"])
    assert response.status_code == 200, response.content
    return data(response)


def complete_auth(client, credential, via="api"):
    return post(client, ROUTES[via]["auth_complete"], {"credential": credential})


def authenticate(client, auth, via="api", **knobs):
    return complete_auth(client, auth.get(begin_auth(client, via), **knobs), via)


def passkey_sign_in(client, auth, **knobs):
    response = post(client, PASSKEY_BEGIN)
    assert response.status_code == 200, response.content
    return post(client, PASSKEY_COMPLETE, {"credential": auth.get(data(response), **knobs)})


def age_challenge(client, seconds):
    """Make the pending ceremony look ``seconds`` older (time passing, without a sleep)."""

    def change(state):
        pending = dict(state.pending)
        pending["fido2"] = {**pending["fido2"], "at": pending["fido2"]["at"] - seconds}
        state.pending = pending

    edit_mfa_state(client, change)


def is_verified(client) -> bool:
    response = client.get("/f1/")
    assert response.status_code in (200, 302)
    return response.status_code == 200 and response.content == b"ok"


def refused(response, status=400, code=None):
    assert response.status_code == status, response.content
    codes = error_codes(response)
    if code is not None:
        assert codes == [code], codes
    return codes


@pytest.fixture
def enrolled(user):
    """alice with one security key (no counter step surprises: it counts 1, 2, 3, ...)."""
    auth = SoftAuthenticator()
    return auth, enrol(user, auth)


# -- registration and authentication ---------------------------------------------------------------------


@pytest.mark.parametrize("via", VIA)
def test_registration_creates_a_key(signed_in, user, via):
    auth = SoftAuthenticator(transports=("usb", "nfc"))
    response = register(signed_in, auth, name="  Blue key  ", via=via)
    assert response.status_code == 201, response.content
    body = data(response)
    assert set(body) == {"id", "type", "name", "enabled", "created_at", "last_used_at"}
    assert body["type"] == "FIDO2" and body["name"] == "Blue key" and body["enabled"] is True
    key = Key.objects.get(pk=body["id"], user=user)
    assert bytes(key.credential_id) == auth.credential_id
    assert key.credential_hash == crypto.sha256_hex(auth.credential_id)
    assert key.rp_id == "localhost" and key.sign_count == 0 and key.transports == ["usb", "nfc"]
    assert key.aaguid == "00000000-0000-0000-0000-000000000000"
    assert key.backup_eligible is False and key.backup_state is False and key.uv_seen is True
    assert key.confirmed and key.enabled
    listed = data(signed_in.api("get", API + "keys"))
    assert [(k["id"], k["type"], k["name"]) for k in listed] == [(key.pk, "FIDO2", "Blue key")]
    # Enrolling counts as a verification of the new key (and the session key was cycled).
    assert [v.key_id for v in mfa_state(signed_in).verifications] == [key.pk]


@pytest.mark.parametrize("via", VIA)
def test_authentication_verifies_the_session(client, user, enrolled, via):
    auth, key = enrolled
    client.force_login(user)
    assert not is_verified(client)
    session_before = client.cookies["sessionid"].value
    response = authenticate(client, auth, via=via)
    assert response.status_code == 200, response.content
    assert data(response) == {"verified": True, "next": "/f1/"}  # where the challenge came from
    assert client.cookies["sessionid"].value != session_before  # cycle_key()
    assert is_verified(client)
    key.refresh_from_db()
    assert key.sign_count == auth.sign_count == 1 and key.last_used_at is not None
    (verification,) = mfa_state(client).verifications
    assert (verification.key_id, verification.type) == (key.pk, "FIDO2")


def test_authentication_returns_to_the_remembered_url(client, user, enrolled):
    auth, _key = enrolled
    client.force_login(user)
    assert client.get("/f1/").status_code == 302  # remembers /f1/
    response = authenticate(client, auth)
    assert data(response)["next"] == "/f1/"


def test_begin_options_are_webauthn_json(client, user, enrolled):
    auth, key = enrolled
    client.force_login(user)
    public_key = begin_auth(client)["publicKey"]
    assert len(b64u_decode(public_key["challenge"])) >= 16
    assert public_key["rpId"] == "localhost"
    assert public_key["allowCredentials"] == [
        {"type": "public-key", "id": b64u(auth.credential_id), "transports": ["usb"]}
    ]


def test_authentication_without_a_key_is_refused(signed_in):
    refused(post(signed_in, ROUTES["api"]["auth_begin"]), 400, "no_key")


def test_anonymous_is_refused(client, enrolled):
    for url in (*ROUTES["api"].values(), PAGE_REGISTER, PAGE_AUTHENTICATE):
        assert post(client, url).status_code in (401, 302), url
        assert not is_verified(client)
    refused(post(client, ROUTES["api"]["auth_begin"]), 401, "not_authenticated")


# -- single use, staleness -------------------------------------------------------------------------------


@pytest.mark.parametrize("via", VIA)
def test_replayed_assertion_is_refused(client, user, enrolled, via):
    auth, _key = enrolled
    client.force_login(user)
    assertion = auth.get(begin_auth(client, via))
    assert complete_auth(client, assertion, via).status_code == 200
    refused(complete_auth(client, assertion, via), 409, "ceremony_expired")


def test_replayed_assertion_with_zero_counter_is_refused(client, user):
    """Synced passkeys have no counter (always 0): only the single-use state stops a replay."""
    auth = SoftAuthenticator(counter_step=0)
    enrol(user, auth)
    client.force_login(user)
    assertion = auth.get(begin_auth(client))
    assert complete_auth(client, assertion).status_code == 200
    refused(complete_auth(client, assertion), 409, "ceremony_expired")
    # Even against a new challenge the old answer is refused (it signed the old challenge).
    begin_auth(client)
    refused(complete_auth(client, assertion), 400, "webauthn_failed")


SIGNED_COOKIES = "django.contrib.sessions.backends.signed_cookies"


@pytest.mark.parametrize("engine", ["django.contrib.sessions.backends.db", SIGNED_COOKIES])
def test_replay_with_a_copy_of_the_old_session_is_refused(settings, user, engine):
    """The state is single-use on the server, not only in the session: a copy of the session taken before
    the answer (a signed cookie is the whole session; parallel requests all read the same one) cannot use
    the challenge again, even with an authenticator that has no counter."""
    settings.SESSION_ENGINE = engine
    auth = SoftAuthenticator(counter_step=0)
    enrol(user, auth)
    client = new_client(user)
    assertion = auth.get(begin_auth(client))
    copy_of_session = client.cookies["sessionid"].value
    assert complete_auth(client, assertion).status_code == 200
    replayer = new_client()
    replayer.cookies["sessionid"] = copy_of_session
    response = complete_auth(replayer, assertion)
    assert response.status_code in (401, 409), response.content
    assert not is_verified(replayer)


@pytest.mark.parametrize("engine", ["django.contrib.sessions.backends.db", SIGNED_COOKIES])
def test_passkey_replay_with_a_copy_of_the_old_session_is_refused(settings, passkey, engine):
    settings.SESSION_ENGINE = engine
    auth, _key = passkey
    client = new_client()
    assertion = auth.get(data(post(client, PASSKEY_BEGIN)))
    copy_of_session = client.cookies["sessionid"].value
    assert post(client, PASSKEY_COMPLETE, {"credential": assertion}).status_code == 200
    replayer = new_client()
    replayer.cookies["sessionid"] = copy_of_session
    refused(post(replayer, PASSKEY_COMPLETE, {"credential": assertion}), 409, "ceremony_expired")
    assert "_auth_user_id" not in session_of(replayer)


def test_registration_replay_with_a_copy_of_the_old_session_is_refused(settings, user):
    settings.SESSION_ENGINE = SIGNED_COOKIES
    client = new_client(user)
    credential = SoftAuthenticator().create(begin_registration(client))
    copy_of_session = client.cookies["sessionid"].value
    assert complete_registration(client, credential).status_code == 201
    Key.objects.filter(user=user).delete()  # even were the key gone, the answer is spent
    replayer = new_client()
    replayer.cookies["sessionid"] = copy_of_session
    refused(complete_registration(replayer, credential), 409, "ceremony_expired")
    assert not Key.objects.filter(user=user).exists()


def test_used_challenges_are_pruned(signed_in, user, enrolled):
    auth, _key = enrolled
    client = new_client(user)
    assert authenticate(client, auth).status_code == 200
    assert WebAuthnChallenge.objects.count() == 2  # the enrolment's and this one
    WebAuthnChallenge.objects.update(used_at=timezone.now() - timezone.timedelta(seconds=301))
    assert authenticate(client, auth).status_code == 200
    assert WebAuthnChallenge.objects.count() == 1


def test_assertion_answering_a_previous_challenge_is_refused(client, user, enrolled):
    auth, _key = enrolled
    client.force_login(user)
    first = begin_auth(client)
    second = begin_auth(client)  # replaces the first challenge
    refused(complete_auth(client, auth.get(first)), 400, "webauthn_failed")
    assert not is_verified(client)
    assert complete_auth(client, auth.get(second)).status_code == 409  # the failure used the state up
    assert authenticate(client, auth).status_code == 200


def test_assertion_with_another_challenge_is_refused(client, user, enrolled):
    auth, _key = enrolled
    client.force_login(user)
    options = begin_auth(client)
    refused(complete_auth(client, auth.get(options, challenge=b64u(os.urandom(32)))), 400, "webauthn_failed")


@pytest.mark.parametrize("via", VIA)
def test_replayed_registration_is_refused(signed_in, user, via):
    auth = SoftAuthenticator()
    credential = auth.create(begin_registration(signed_in, via))
    assert complete_registration(signed_in, credential, via=via).status_code == 201
    refused(complete_registration(signed_in, credential, via=via), 409, "ceremony_expired")
    # Against a fresh challenge the old answer does not fit either.
    begin_registration(signed_in, via)
    refused(complete_registration(signed_in, credential, via=via), 400, "webauthn_failed")
    assert Key.objects.filter(user=user, type="FIDO2").count() == 1


def test_registration_with_another_challenge_is_refused(signed_in, user):
    options = begin_registration(signed_in)
    credential = SoftAuthenticator().create(options, challenge=b64u(os.urandom(32)))
    refused(complete_registration(signed_in, credential), 400, "webauthn_failed")
    assert not Key.objects.filter(user=user).exists()


def test_complete_without_begin_is_refused(signed_in, user, enrolled):
    auth, _key = enrolled
    verify_any(signed_in, user)
    refused(complete_registration(signed_in, SoftAuthenticator().create(_fake_creation_options())), 409)
    refused(complete_auth(signed_in, auth.get({"publicKey": {"challenge": b64u(os.urandom(32))}})), 409)


def _fake_creation_options():
    return {"publicKey": {"challenge": b64u(os.urandom(32)), "user": {"id": b64u(os.urandom(64))}}}


@pytest.mark.parametrize(("age", "ok"), [(290, True), (301, False)])
def test_stale_authentication_challenge(client, user, enrolled, age, ok):
    auth, _key = enrolled
    client.force_login(user)
    options = begin_auth(client)
    age_challenge(client, age)
    response = complete_auth(client, auth.get(options))
    if ok:
        assert response.status_code == 200, response.content
    else:
        refused(response, 409, "ceremony_expired")
        assert not is_verified(client)


@pytest.mark.parametrize(("age", "ok"), [(290, True), (301, False)])
def test_stale_registration_challenge(signed_in, user, age, ok):
    options = begin_registration(signed_in)
    age_challenge(signed_in, age)
    response = complete_registration(signed_in, SoftAuthenticator().create(options))
    if ok:
        assert response.status_code == 201, response.content
    else:
        refused(response, 409, "ceremony_expired")
        assert not Key.objects.filter(user=user).exists()


def test_registration_state_does_not_complete_an_authentication(client, user, enrolled):
    auth, _key = enrolled
    client.force_login(user)
    verify_any(client, user)
    options = begin_registration(client)
    refused(complete_auth(client, auth.get(options)), 409, "ceremony_expired")


# -- origin, RP ID, flags, signature ---------------------------------------------------------------------


WRONG_ORIGINS = [
    "https://evil.example",
    "http://evil.example",
    "http://sub.localhost",  # a subdomain not on the allow-list (fido2's default would take it)
    "https://localhost",  # the right host on another scheme
    "http://localhost.evil.example",
    "null",
    "",
]


@pytest.mark.parametrize("origin", WRONG_ORIGINS)
def test_wrong_origin_is_refused_at_registration(signed_in, user, origin):
    response = register(signed_in, SoftAuthenticator(), origin=origin)
    refused(response, 400, "webauthn_failed")
    assert not Key.objects.filter(user=user).exists()


@pytest.mark.parametrize("origin", WRONG_ORIGINS)
def test_wrong_origin_is_refused_at_authentication(client, user, enrolled, origin):
    auth, _key = enrolled
    client.force_login(user)
    refused(authenticate(client, auth, origin=origin), 400, "webauthn_failed")
    assert not is_verified(client)


def test_localhost_on_any_port_is_allowed(client, user, enrolled):
    """http://localhost in FIDO_ORIGINS matches any port (development servers)."""
    auth, _key = enrolled
    client.force_login(user)
    assert authenticate(client, auth, origin="http://localhost:8000").status_code == 200


def test_https_origin_must_match_exactly(client, user, settings):
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "FIDO_ORIGINS": ["https://localhost"]}
    auth = SoftAuthenticator(origin="https://localhost")
    enrol(user, auth)
    client.force_login(user)
    refused(authenticate(client, auth, origin="https://localhost:8443"), 400, "webauthn_failed")
    refused(authenticate(client, auth, origin="http://localhost"), 400, "webauthn_failed")
    assert authenticate(client, auth).status_code == 200


@pytest.mark.parametrize(("debug", "origin", "ok"), [(False, ORIGIN, False), (True, "http://localhost:8000", True)])
def test_default_origins(settings, signed_in, user, debug, origin, ok):
    """Without FIDO_ORIGINS: https://<RP ID>, plus http://localhost (any port) only when DEBUG."""
    settings.MULTIFACTOR = {k: v for k, v in settings.MULTIFACTOR.items() if k != "FIDO_ORIGINS"}
    settings.DEBUG = debug
    assert register(signed_in, SoftAuthenticator(origin="https://localhost")).status_code == 201
    Key.objects.all().delete()
    response = register(signed_in, SoftAuthenticator(origin=origin))
    assert response.status_code == (201 if ok else 400), response.content


def test_wrong_rp_id_hash_is_refused(signed_in, user):
    refused(register(signed_in, SoftAuthenticator(), rp_id="evil.example"), 400, "webauthn_failed")
    refused(register(signed_in, SoftAuthenticator(), rp_id="sub.localhost"), 400, "webauthn_failed")
    assert not Key.objects.filter(user=user).exists()


def test_wrong_rp_id_hash_is_refused_at_authentication(client, user, enrolled):
    auth, _key = enrolled
    client.force_login(user)
    refused(authenticate(client, auth, rp_id="evil.example"), 400, "webauthn_failed")
    assert not is_verified(client)


def test_user_presence_is_required(signed_in, user):
    refused(register(signed_in, SoftAuthenticator(), up=False), 400, "webauthn_failed")
    assert not Key.objects.filter(user=user).exists()


def test_user_presence_is_required_at_authentication(client, user, enrolled):
    auth, _key = enrolled
    client.force_login(user)
    refused(authenticate(client, auth, up=False), 400, "webauthn_failed")
    assert not is_verified(client)


def test_user_verification_is_preferred_not_required_for_security_keys(signed_in, user):
    options = begin_registration(signed_in)
    assert options["publicKey"]["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["publicKey"]["authenticatorSelection"]["residentKey"] == "discouraged"
    response = complete_registration(signed_in, SoftAuthenticator(uv=False).create(options))
    assert response.status_code == 201
    assert Key.objects.get(user=user).uv_seen is False


def test_bad_signature_is_refused(client, user, enrolled):
    auth, key = enrolled
    client.force_login(user)
    refused(authenticate(client, auth, bad_signature=True), 400, "webauthn_failed")
    assert not is_verified(client)
    key.refresh_from_db()
    assert key.failures == 1


def test_signature_by_another_private_key_is_refused(client, user, enrolled):
    """An authenticator claiming alice's credential id but holding another key."""
    auth, _key = enrolled
    client.force_login(user)
    impostor = SoftAuthenticator(credential_id=auth.credential_id)
    refused(complete_auth(client, impostor.get(begin_auth(client))), 400, "webauthn_failed")
    assert not is_verified(client)


def test_wrong_client_data_type_is_refused(client, user, enrolled):
    auth, _key = enrolled
    client.force_login(user)
    refused(authenticate(client, auth, type_="webauthn.create"), 400, "webauthn_failed")


def test_cross_origin_is_refused(client, user, enrolled):
    auth, _key = enrolled
    client.force_login(user)
    refused(authenticate(client, auth, cross_origin=True), 400, "cross_origin")
    assert not is_verified(client)
    assert authenticate(client, auth, cross_origin=False).status_code == 200


def test_cross_origin_is_refused_at_registration(signed_in, user):
    refused(register(signed_in, SoftAuthenticator(), cross_origin=True), 400, "cross_origin")
    assert not Key.objects.filter(user=user).exists()


# -- sign count ------------------------------------------------------------------------------------------


def test_sign_count_must_grow(client, user):
    auth = SoftAuthenticator(sign_count=5)
    key = enrol(user, auth)
    assert key.sign_count == 5
    client.force_login(user)
    assert authenticate(client, auth, sign_count=7).status_code == 200
    key.refresh_from_db()
    assert key.sign_count == 7 and key.clone_suspected_at is None
    for count in (7, 6, 0):  # equal, lower, and zero after non-zero: a cloned authenticator
        Key.objects.filter(pk=key.pk).update(clone_suspected_at=None)
        client = new_client(user)
        refused(authenticate(client, auth, sign_count=count), 400, "webauthn_failed")
        assert not is_verified(client)
        key.refresh_from_db()
        assert key.sign_count == 7
        assert key.clone_suspected_at is not None


def test_sign_count_regression_flags_the_key(client, user, enrolled):
    auth, key = enrolled
    client.force_login(user)
    assert authenticate(client, auth).status_code == 200  # count 1
    assert authenticate(client, auth).status_code == 200  # count 2
    auth.sign_count = 1  # the clone is behind
    refused(authenticate(client, auth), 400, "webauthn_failed")  # reports 2 again
    key.refresh_from_db()
    assert key.clone_suspected_at is not None and key.sign_count == 2


def test_zero_counters_are_allowed(client, user):
    auth = SoftAuthenticator(counter_step=0)
    key = enrol(user, auth)
    client.force_login(user)
    for _ in range(3):
        assert authenticate(client, auth).status_code == 200
    key.refresh_from_db()
    assert key.sign_count == 0 and key.clone_suspected_at is None


def test_counter_starting_after_zero_is_allowed(client, user):
    auth = SoftAuthenticator(counter_step=0)
    key = enrol(user, auth)
    client.force_login(user)
    assert authenticate(client, auth, sign_count=1).status_code == 200
    key.refresh_from_db()
    assert key.sign_count == 1


# -- backup flags ----------------------------------------------------------------------------------------


def test_backup_eligibility_must_not_change(client, user, enrolled):
    auth, key = enrolled  # registered with BE=0
    client.force_login(user)
    refused(authenticate(client, auth, be=True), 400, "webauthn_failed")
    assert not is_verified(client)
    assert authenticate(client, auth).status_code == 200


def test_backup_eligibility_must_not_disappear(client, user):
    auth = SoftAuthenticator(be=True, bs=True)
    key = enrol(user, auth)
    assert key.backup_eligible is True and key.backup_state is True
    client.force_login(user)
    refused(authenticate(client, auth, be=False, bs=False), 400, "webauthn_failed")
    assert not is_verified(client)


def test_backup_state_may_change_and_is_stored(client, user):
    auth = SoftAuthenticator(be=True, bs=False)
    key = enrol(user, auth)
    assert key.backup_state is False
    client.force_login(user)
    assert authenticate(client, auth, bs=True).status_code == 200
    key.refresh_from_db()
    assert key.backup_state is True
    assert authenticate(client, auth, bs=False).status_code == 200
    key.refresh_from_db()
    assert key.backup_state is False


def test_backed_up_but_not_eligible_is_refused_at_registration(signed_in, user):
    refused(register(signed_in, SoftAuthenticator(), be=False, bs=True), 400, "webauthn_failed")
    assert not Key.objects.filter(user=user).exists()


def test_backed_up_but_not_eligible_is_refused_at_authentication(client, user, enrolled):
    auth, _key = enrolled
    client.force_login(user)
    refused(authenticate(client, auth, be=False, bs=True), 400, "webauthn_failed")
    assert not is_verified(client)


# -- credential ids --------------------------------------------------------------------------------------


def test_duplicate_credential_id_is_refused(signed_in, user, bob):
    auth = SoftAuthenticator()
    assert register(signed_in, auth).status_code == 201
    # The same credential id again, for another user (whose excludeCredentials does not list it).
    other = new_client(bob)
    same_id = SoftAuthenticator(credential_id=auth.credential_id)
    refused(register(other, same_id), 409, "duplicate_credential")
    assert Key.objects.filter(credential_hash=crypto.sha256_hex(auth.credential_id)).count() == 1
    # And for the same user.
    refused(register(signed_in, SoftAuthenticator(credential_id=auth.credential_id)), 409, "duplicate_credential")


def test_credential_id_is_unique_in_the_database(user, bob):
    auth = SoftAuthenticator()
    enrol(user, auth)
    with pytest.raises(IntegrityError), transaction.atomic():
        Key.objects.create(
            user=bob,
            type="FIDO2",
            credential_id=auth.credential_id,
            credential_hash=crypto.sha256_hex(auth.credential_id),
        )


@pytest.mark.parametrize(("length", "ok"), [(1023, True), (1024, False), (4000, False)])
def test_credential_id_length_limit(signed_in, user, length, ok):
    response = register(signed_in, SoftAuthenticator(credential_id_length=length))
    if ok:
        assert response.status_code == 201, response.content
        assert len(bytes(Key.objects.get(user=user).credential_id)) == 1023
    else:
        refused(response, 400)
        assert not Key.objects.filter(user=user).exists()


def test_exclude_credentials_lists_existing_keys(signed_in, user):
    first, second = SoftAuthenticator(transports=("usb",)), SoftAuthenticator(transports=("internal",))
    assert begin_registration(signed_in)["publicKey"].get("excludeCredentials", []) == []
    assert register(signed_in, first).status_code == 201
    assert register(signed_in, second).status_code == 201  # within the re-authentication window
    excluded = begin_registration(signed_in)["publicKey"]["excludeCredentials"]
    assert {(d["id"], tuple(d.get("transports", ()))) for d in excluded} == {
        (b64u(first.credential_id), ("usb",)),
        (b64u(second.credential_id), ("internal",)),
    }
    assert all(d["type"] == "public-key" for d in excluded)


def test_credential_of_another_user_is_refused(client, user, bob, enrolled):
    _auth, _key = enrolled
    bobs = SoftAuthenticator()
    bobs_key = enrol(bob, bobs)
    client.force_login(user)
    response = complete_auth(client, bobs.get(begin_auth(client)))
    refused(response, 400, "unknown_credential")
    assert "not registered with your account" in response.json()["errors"][0]["message"]
    assert not is_verified(client)
    bobs_key.refresh_from_db()
    assert bobs_key.failures == 0 and bobs_key.sign_count == 0


def test_user_handle_of_another_user_is_refused(client, user, bob, enrolled):
    auth, _key = enrolled
    client.force_login(user)
    refused(authenticate(client, auth, user_handle=user_handle(bob)), 400, "unknown_credential")
    assert not is_verified(client)
    assert authenticate(client, auth, user_handle=user_handle(user)).status_code == 200


def test_user_handle_is_random_and_stable(signed_in, user, bob):
    handle = b64u_decode(begin_registration(signed_in)["publicKey"]["user"]["id"])
    assert len(handle) == 64
    assert user.username.encode() not in handle and handle != str(user.pk).encode()
    assert b64u_decode(begin_registration(signed_in)["publicKey"]["user"]["id"]) == handle
    assert WebAuthnUser.objects.get(user=user).handle == handle.hex()
    assert user_handle(user) == handle
    bobs = b64u_decode(begin_registration(new_client(bob))["publicKey"]["user"]["id"])
    assert len(bobs) == 64 and bobs != handle
    user_entity = begin_registration(signed_in)["publicKey"]["user"]
    assert user_entity["name"] == "alice"


# -- RP ID per host --------------------------------------------------------------------------------------


@pytest.fixture
def two_domains(settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "example.com", "login.example.com", "other.test"]
    settings.MULTIFACTOR = {
        **settings.MULTIFACTOR,
        "FIDO_SERVER_ID": ["localhost", "example.com"],
        "FIDO_ORIGINS": [ORIGIN, "https://example.com", "https://login.example.com"],
    }


@pytest.mark.parametrize(
    ("host", "origin"), [("example.com", "https://example.com"), ("login.example.com", "https://login.example.com")]
)
def test_rp_id_is_chosen_by_host(two_domains, user, host, origin):
    client = new_client(user, host=host)
    options = begin_registration(client)
    assert options["publicKey"]["rp"]["id"] == "example.com"
    auth = SoftAuthenticator(rp_id="example.com", origin=origin)
    response = complete_registration(client, auth.create(options))
    assert response.status_code == 201, response.content
    key = Key.objects.get(user=user)
    assert key.rp_id == "example.com"
    fresh = new_client(user, host=host)
    assert begin_auth(fresh)["publicKey"]["rpId"] == "example.com"
    assert authenticate(fresh, auth).status_code == 200
    # The key belongs to example.com: on localhost it is not offered, and its answers do not fit.
    local = new_client(user)
    refused(post(local, ROUTES["api"]["auth_begin"]), 400, "no_key")


def test_localhost_still_works_with_several_rp_ids(two_domains, signed_in, user):
    options = begin_registration(signed_in)
    assert options["publicKey"]["rp"]["id"] == "localhost"
    assert complete_registration(signed_in, SoftAuthenticator().create(options)).status_code == 201


def test_answer_for_another_rp_id_is_refused(two_domains, user):
    client = new_client(user, host="example.com")
    # An authenticator answering with the localhost RP ID hash on example.com.
    refused(register(client, SoftAuthenticator(rp_id="localhost", origin="https://example.com")), 400)
    # And an example.com origin that is not on the allow-list.
    refused(register(client, SoftAuthenticator(rp_id="example.com", origin="https://evil.example.com")), 400)
    assert not Key.objects.filter(user=user).exists()


def test_host_matching_no_rp_id_is_refused(two_domains, user):
    client = new_client(user, host="other.test")
    refused(post(client, ROUTES["api"]["register_begin"]), 400, "rp_id_mismatch")
    refused(post(client, ROUTES["api"]["auth_begin"]), 400, "rp_id_mismatch")


# -- CSRF, malformed input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", [*ROUTES["api"].values(), PAGE_REGISTER, PAGE_AUTHENTICATE, PASSKEY_BEGIN, PASSKEY_COMPLETE]
)
def test_csrf_is_required(signed_in, settings, url):
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "PASSKEY_LOGIN": True}
    refused(post(signed_in, url, csrf=False), 403, "csrf_failed")


def test_csrf_missing_on_complete_leaves_the_session_unverified(client, user, enrolled):
    auth, _key = enrolled
    client.force_login(user)
    assertion = auth.get(begin_auth(client))
    refused(post(client, ROUTES["api"]["auth_complete"], {"credential": assertion}, csrf=False), 403, "csrf_failed")
    refused(post(client, PAGE_AUTHENTICATE, {"credential": assertion}, csrf=False), 403, "csrf_failed")
    assert not is_verified(client)
    assert complete_auth(client, assertion).status_code == 200  # the state was not touched by the refusals


def _set(document, path, value):
    document = copy.deepcopy(document)
    target = document
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


_DELETE = object()
_JUNK_CBOR = b64u(b"\xff\x00\x01")


def _client_data(**fields):
    return b64u(json.dumps(fields).encode())


def _b64json(value):
    return b64u(json.dumps(value).encode())


COMMON_SHAPES = {
    "null": lambda c: None,
    "string": lambda c: "credential",
    "number": lambda c: 42,
    "list": lambda c: [c],
    "empty object": lambda c: {},
    "only id": lambda c: {"id": c["id"]},
    "no rawId": lambda c: _set(c, ["rawId"], _DELETE),
    "rawId number": lambda c: _set(c, ["rawId"], 7),
    "rawId list": lambda c: _set(c, ["rawId"], [1, 2]),
    "rawId not base64": lambda c: _set(_set(c, ["rawId"], "%%%"), ["id"], "%%%"),
    "id differs from rawId": lambda c: _set(c, ["id"], b64u(b"other")),
    "type other": lambda c: _set(c, ["type"], "password"),
    "no type": lambda c: _set(c, ["type"], _DELETE),
    "type null": lambda c: _set(c, ["type"], None),
    "no response": lambda c: _set(c, ["response"], _DELETE),
    "response string": lambda c: _set(c, ["response"], "x"),
    "response list": lambda c: _set(c, ["response"], []),
    "response empty": lambda c: _set(c, ["response"], {}),
    "no clientDataJSON": lambda c: _set(c, ["response", "clientDataJSON"], _DELETE),
    "clientDataJSON number": lambda c: _set(c, ["response", "clientDataJSON"], 5),
    "clientDataJSON not base64": lambda c: _set(c, ["response", "clientDataJSON"], "%%%%"),
    "clientDataJSON not JSON": lambda c: _set(c, ["response", "clientDataJSON"], b64u(b"\xff\xfe not json")),
    "clientDataJSON a list": lambda c: _set(c, ["response", "clientDataJSON"], _b64json([1, 2])),
    "clientDataJSON a string": lambda c: _set(c, ["response", "clientDataJSON"], _b64json("webauthn.get")),
    "clientDataJSON empty object": lambda c: _set(c, ["response", "clientDataJSON"], _b64json({})),
    "clientDataJSON no challenge": lambda c: _set(
        c, ["response", "clientDataJSON"], _client_data(type="webauthn.get", origin=ORIGIN)
    ),
    "clientDataJSON challenge number": lambda c: _set(
        c, ["response", "clientDataJSON"], _client_data(type="webauthn.get", challenge=1, origin=ORIGIN)
    ),
    "clientDataJSON origin number": lambda c: _set(
        c, ["response", "clientDataJSON"], _client_data(type="webauthn.get", challenge="AAAA", origin=5)
    ),
    "clientDataJSON origin list": lambda c: _set(
        c, ["response", "clientDataJSON"], _client_data(type="webauthn.get", challenge="AAAA", origin=[ORIGIN])
    ),
    "clientDataJSON type list": lambda c: _set(
        c, ["response", "clientDataJSON"], _client_data(type=[], challenge="AAAA", origin=ORIGIN)
    ),
    "clientDataJSON huge": lambda c: _set(c, ["response", "clientDataJSON"], b64u(b"{" * 100000)),
    "clientExtensionResults list": lambda c: _set(c, ["clientExtensionResults"], [1]),
    "clientExtensionResults string": lambda c: _set(c, ["clientExtensionResults"], "x"),
}

REGISTRATION_SHAPES = {
    **COMMON_SHAPES,
    "no attestationObject": lambda c: _set(c, ["response", "attestationObject"], _DELETE),
    "attestationObject junk": lambda c: _set(c, ["response", "attestationObject"], _JUNK_CBOR),
    "attestationObject empty": lambda c: _set(c, ["response", "attestationObject"], ""),
    "attestationObject a CBOR list": lambda c: _set(c, ["response", "attestationObject"], b64u(b"\x82\x01\x02")),
    "attestationObject without authData": lambda c: _set(
        c, ["response", "attestationObject"], b64u(b"\xa2cfmtdnonegattStmt\xa0")
    ),
    "attestationObject number": lambda c: _set(c, ["response", "attestationObject"], 3),
    "rawId of another credential": lambda c: _set(_set(c, ["rawId"], b64u(b"x" * 32)), ["id"], b64u(b"x" * 32)),
    "clientDataJSON of a get": lambda c: _set(
        c, ["response", "clientDataJSON"], _client_data(type="webauthn.get", challenge="AAAA", origin=ORIGIN)
    ),
}

ASSERTION_SHAPES = {
    **COMMON_SHAPES,
    "no authenticatorData": lambda c: _set(c, ["response", "authenticatorData"], _DELETE),
    "authenticatorData short": lambda c: _set(c, ["response", "authenticatorData"], b64u(b"\x00" * 10)),
    "authenticatorData empty": lambda c: _set(c, ["response", "authenticatorData"], ""),
    "authenticatorData number": lambda c: _set(c, ["response", "authenticatorData"], 1),
    "authenticatorData junk extensions": lambda c: _set(
        c, ["response", "authenticatorData"], b64u(b"\x00" * 32 + b"\x81" + b"\x00\x00\x00\x01" + b"\xff\xff")
    ),
    "no signature": lambda c: _set(c, ["response", "signature"], _DELETE),
    "signature empty": lambda c: _set(c, ["response", "signature"], ""),
    "signature junk": lambda c: _set(c, ["response", "signature"], b64u(b"\x30\x02\x01")),
    "signature huge": lambda c: _set(c, ["response", "signature"], b64u(os.urandom(5000))),
    "signature number": lambda c: _set(c, ["response", "signature"], 12),
    "userHandle number": lambda c: _set(c, ["response", "userHandle"], 9),
    "userHandle object": lambda c: _set(c, ["response", "userHandle"], {"a": 1}),
    "userHandle list": lambda c: _set(c, ["response", "userHandle"], ["a"]),
    "clientDataJSON of a create": lambda c: _set(
        c, ["response", "clientDataJSON"], _client_data(type="webauthn.create", challenge="AAAA", origin=ORIGIN)
    ),
}


# Not malformed: values a browser may send that carry nothing the server relies on.
TOLERATED_REGISTRATION = {
    "transports string": (lambda c: _set(c, ["response", "transports"], "usb"), []),
    "transports object": (lambda c: _set(c, ["response", "transports"], {"usb": 1}), []),
    "transports junk": (lambda c: _set(c, ["response", "transports"], [1, None, {}, "x" * 5000, "nfc"]), ["nfc"]),
    "transports unknown": (lambda c: _set(c, ["response", "transports"], ["smoke-signal", "hybrid"]), ["hybrid"]),
    "no transports": (lambda c: _set(c, ["response", "transports"], _DELETE), []),
    "attachment unknown": (lambda c: _set(c, ["authenticatorAttachment"], "toaster"), ["usb"]),
    "credProps string": (lambda c: _set(c, ["clientExtensionResults"], {"credProps": "yes"}), ["usb"]),
    "credProps list": (lambda c: _set(c, ["clientExtensionResults"], {"credProps": [True]}), ["usb"]),
    "clientExtensionResults null": (lambda c: _set(c, ["clientExtensionResults"], None), ["usb"]),
}
TOLERATED_ASSERTION = {
    "attachment unknown": lambda c: _set(c, ["authenticatorAttachment"], "toaster"),
    "userHandle empty": lambda c: _set(c, ["response", "userHandle"], ""),  # as if left out
    "userHandle null": lambda c: _set(c, ["response", "userHandle"], None),
    "clientExtensionResults null": lambda c: _set(c, ["clientExtensionResults"], None),
}


@pytest.mark.parametrize("shape", sorted(REGISTRATION_SHAPES))
def test_malformed_registration_is_a_json_400(signed_in, user, shape):
    options = begin_registration(signed_in)
    credential = REGISTRATION_SHAPES[shape](SoftAuthenticator().create(options))
    refused(complete_registration(signed_in, credential), 400)
    assert not Key.objects.filter(user=user).exists()


@pytest.mark.parametrize("shape", sorted(TOLERATED_REGISTRATION))
def test_odd_but_harmless_registration_fields(signed_in, user, shape):
    bend, transports = TOLERATED_REGISTRATION[shape]
    options = begin_registration(signed_in)
    response = complete_registration(signed_in, bend(SoftAuthenticator().create(options)))
    assert response.status_code == 201, response.content
    key = Key.objects.get(user=user)
    assert key.transports == transports
    # What is stored is served back as valid WebAuthn JSON.
    excluded = begin_registration(signed_in)["publicKey"]["excludeCredentials"]
    assert excluded[0].get("transports", []) == transports


@pytest.mark.parametrize("shape", sorted(TOLERATED_ASSERTION))
def test_odd_but_harmless_assertion_fields(client, user, enrolled, shape):
    auth, _key = enrolled
    client.force_login(user)
    credential = TOLERATED_ASSERTION[shape](auth.get(begin_auth(client)))
    assert complete_auth(client, credential).status_code == 200


@pytest.mark.parametrize("shape", sorted(ASSERTION_SHAPES))
def test_malformed_assertion_is_a_json_400(client, user, enrolled, shape):
    auth, _key = enrolled
    client.force_login(user)
    credential = ASSERTION_SHAPES[shape](auth.get(begin_auth(client)))
    refused(complete_auth(client, credential), 400)
    assert not is_verified(client)


@pytest.mark.parametrize("shape", sorted(ASSERTION_SHAPES))
def test_malformed_passkey_assertion_is_a_json_400(passkeys, passkey, shape):
    auth, _key = passkey
    client = new_client()
    response = post(client, PASSKEY_BEGIN)
    credential = ASSERTION_SHAPES[shape](auth.get(data(response)))
    refused(post(client, PASSKEY_COMPLETE, {"credential": credential}), 400)
    assert "_auth_user_id" not in session_of(client)


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize(
    "body", ["not json", "[1, 2]", '"string"', "null", "{", '{"credential": ', "\xff\xfe"], ids=repr
)
def test_malformed_body_is_a_json_400(signed_in, user, enrolled, via, body):
    verify_any(signed_in, user)
    for url in (ROUTES[via]["register_complete"], ROUTES[via]["auth_complete"]):
        response = signed_in.post(url, body, content_type="application/json", headers={"Accept": "application/json"})
        refused(response, 400)


def test_credential_field_missing_on_api_complete(signed_in):
    begin_registration(signed_in)
    refused(post(signed_in, ROUTES["api"]["register_complete"], {"name": "x"}), 400, "invalid_credential")


def test_name_of_the_wrong_type_is_a_400(signed_in, user):
    options = begin_registration(signed_in)
    response = post(
        signed_in, ROUTES["api"]["register_complete"], {"name": 5, "credential": SoftAuthenticator().create(options)}
    )
    refused(response, 400, "invalid")


# -- throttling, disabled keys, UV -----------------------------------------------------------------------


def test_failures_are_counted_then_throttled_with_retry_after(client, user, enrolled):
    auth, key = enrolled
    client.force_login(user)
    with mf_settings(
        THROTTLE_FREE_FAILURES=2, THROTTLE_BASE_DELAY=60, THROTTLE_MAX_DELAY=600, THROTTLE_MAX_FAILURES=10
    ):
        for expected in (1, 2, 3):
            refused(authenticate(client, auth, bad_signature=True), 400, "webauthn_failed")
            key.refresh_from_db()
            assert key.failures == expected
        # The third failure earned a delay: even a correct answer is not checked now.
        response = authenticate(client, auth)
        refused(response, 429, "throttled")
        assert 0 < int(response["Retry-After"]) <= 60
        key.refresh_from_db()
        assert key.failures == 3 and key.enabled
        assert not is_verified(client)
        # Once the delay has passed, a correct answer works and resets the count.
        Key.objects.filter(pk=key.pk).update(throttled_until=timezone.now() - timezone.timedelta(seconds=1))
        assert authenticate(client, auth).status_code == 200
        key.refresh_from_db()
        assert key.failures == 0 and key.throttled_until is None


def test_the_pages_endpoint_is_throttled_too(client, user, enrolled):
    auth, key = enrolled
    client.force_login(user)
    with mf_settings(THROTTLE_FREE_FAILURES=0, THROTTLE_BASE_DELAY=30):
        refused(authenticate(client, auth, via="pages", bad_signature=True), 400)
        response = authenticate(client, auth, via="pages")
        refused(response, 429, "throttled")
        assert response["Retry-After"]


def test_success_resets_the_failure_count(client, user, enrolled):
    auth, key = enrolled
    client.force_login(user)
    with mf_settings(THROTTLE_FREE_FAILURES=5, THROTTLE_MAX_FAILURES=3):
        for _ in range(2):
            refused(authenticate(client, auth, bad_signature=True), 400)
        assert authenticate(client, auth).status_code == 200
        for _ in range(2):
            refused(authenticate(client, auth, bad_signature=True), 400)
        key.refresh_from_db()
        assert key.failures == 2 and key.enabled


def test_key_locks_at_max_failures(client, user, enrolled):
    auth, key = enrolled
    client.force_login(user)
    with mf_settings(THROTTLE_FREE_FAILURES=10, THROTTLE_MAX_FAILURES=3):
        refused(authenticate(client, auth, bad_signature=True), 400, "webauthn_failed")
        refused(authenticate(client, auth, bad_signature=True), 400, "webauthn_failed")
        refused(authenticate(client, auth, bad_signature=True), 403, "key_locked")
    key.refresh_from_db()
    assert key.failures == 3 and key.enabled is False and key.locked_at is not None
    # Locked: not offered, not accepted; the user is still signed in (a lockout does not log out).
    refused(post(client, ROUTES["api"]["auth_begin"]), 400, "no_key")
    assert client.api("get", API + "status").status_code == 200
    assert not is_verified(client)


def test_a_disabled_key_cannot_authenticate(client, user, enrolled):
    auth, key = enrolled
    other = SoftAuthenticator()
    enrol(user, other, name="spare")
    client.force_login(user)
    options = begin_auth(client)
    assert len(options["publicKey"]["allowCredentials"]) == 2
    key.enabled = False
    key.save()
    refused(complete_auth(client, auth.get(options)), 400, "unknown_credential")
    assert not is_verified(client)
    ids = [d["id"] for d in begin_auth(client)["publicKey"]["allowCredentials"]]
    assert ids == [b64u(other.credential_id)]
    refused(authenticate(client, auth), 400, "unknown_credential")
    assert authenticate(client, other).status_code == 200


def test_disabling_the_only_key_ends_authentication(client, user, enrolled):
    auth, key = enrolled
    Key.objects.filter(pk=key.pk).update(enabled=False)
    client.force_login(user)
    refused(post(client, ROUTES["api"]["auth_begin"]), 400, "no_key")


def test_user_verification_is_recorded_per_use(client, user):
    auth = SoftAuthenticator(uv=False)
    key = enrol(user, auth)
    assert key.uv_seen is False
    client.force_login(user)
    assert authenticate(client, auth, uv=False).status_code == 200
    (verification,) = mfa_state(client).verifications
    assert verification.uv is False
    key.refresh_from_db()
    assert key.uv_seen is False
    assert authenticate(client, auth, uv=True).status_code == 200
    (verification,) = mfa_state(client).verifications
    assert verification.uv is True
    key.refresh_from_db()
    assert key.uv_seen is True
    assert authenticate(client, auth, uv=False).status_code == 200
    (verification,) = mfa_state(client).verifications
    assert verification.uv is False  # this use had no UV, whatever happened before


# -- who may add keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize("via", VIA)
def test_a_user_without_keys_may_register(signed_in, user, via):
    assert register(signed_in, SoftAuthenticator(), via=via).status_code == 201


@pytest.mark.parametrize("via", VIA)
def test_a_user_with_keys_needs_a_recent_verification(client, user, enrolled, via):
    auth, _key = enrolled
    client.force_login(user)
    refused(post(client, ROUTES[via]["register_begin"]), 403, "reauthentication_required")
    assert authenticate(client, auth).status_code == 200
    options = begin_registration(client, via)
    age_verifications(client, 301)
    refused(
        complete_registration(client, SoftAuthenticator().create(options), via=via), 403, "reauthentication_required"
    )
    refused(post(client, ROUTES[via]["register_begin"]), 403, "reauthentication_required")
    assert Key.objects.filter(user=user).count() == 1
    assert authenticate(client, auth).status_code == 200
    assert register(client, SoftAuthenticator(), via=via).status_code == 201


def test_a_password_alone_cannot_add_a_passkey(client, user, enrolled, settings):
    """otp-webauthn GHSA-8r76-c459-ww98."""
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "PASSKEY_LOGIN": True}
    client.force_login(user)
    refused(post(client, ROUTES["api"]["register_begin"], {"passkey": True}), 403, "reauthentication_required")


@pytest.mark.parametrize("via", VIA)
def test_factor_not_allowed(signed_in, user, via):
    options = begin_registration(signed_in, via)
    with mf_settings(FACTORS=["TOTP", "RECOVERY"]):
        refused(post(signed_in, ROUTES[via]["register_begin"]), 403, "factor_not_allowed")
        response = complete_registration(signed_in, SoftAuthenticator().create(options), via=via)
        refused(response, 403, "factor_not_allowed")
    assert not Key.objects.filter(user=user).exists()


# -- passkeys --------------------------------------------------------------------------------------------


@pytest.fixture
def passkeys(settings):
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "PASSKEY_LOGIN": True}


@pytest.fixture
def passkey(user, passkeys):
    auth = SoftAuthenticator(uv=True, transports=("internal",), attachment="platform")
    key = enrol(user, auth, name="laptop", passkey=True)
    return auth, key


def test_passkey_registration_requires_resident_key_and_uv(signed_in, user, passkeys):
    options = begin_registration(signed_in, passkey=True)
    selection = options["publicKey"]["authenticatorSelection"]
    assert selection["residentKey"] == "required" and selection["requireResidentKey"] is True
    assert selection["userVerification"] == "required"
    refused(complete_registration(signed_in, SoftAuthenticator(uv=False).create(options)), 400, "webauthn_failed")
    assert not Key.objects.filter(user=user).exists()
    response = register(signed_in, SoftAuthenticator(uv=True), passkey=True)
    assert response.status_code == 201, response.content
    key = Key.objects.get(user=user)
    assert key.discoverable is True and key.uv_seen is True


def test_passkey_sign_in(passkey, user):
    auth, key = passkey
    client = new_client()
    begin = post(client, PASSKEY_BEGIN)
    assert begin.status_code == 200, begin.content
    public_key = data(begin)["publicKey"]
    assert not public_key.get("allowCredentials") and public_key["userVerification"] == "required"
    assert public_key["rpId"] == "localhost"
    cookie = client.cookies["sessionid"].value
    response = post(client, PASSKEY_COMPLETE, {"credential": auth.get(data(begin))})
    assert response.status_code == 200, response.content
    assert data(response) == {"user": "alice", "verified": True, "next": "/done/"}
    assert client.cookies["sessionid"].value != cookie
    assert session_of(client)["_auth_user_id"] == str(user.pk)
    assert is_verified(client)  # UV was set: the passkey is a verified factor
    (verification,) = mfa_state(client).verifications
    assert verification.key_id == key.pk and verification.uv is True
    key.refresh_from_db()
    assert key.sign_count == 1 and key.last_used_at is not None


def test_passkey_page_endpoint_answers_as_the_api_and_leaves_the_sign_in_message(passkey, user):
    """The passkey page completes through its own endpoint (multifactor:passkey_complete): the API's
    answer, plus the message every verification ends with, shown on the page it goes to; the API itself
    leaves no message (an API client renders no pages)."""
    from django.contrib.messages import get_messages
    from django.urls import reverse

    auth, _key = passkey
    for url, expect_message in ((reverse("multifactor:passkey_complete"), True), (PASSKEY_COMPLETE, False)):
        client = new_client()
        begin = data(post(client, PASSKEY_BEGIN))
        response = post(client, url, {"credential": auth.get(begin)})
        assert response.status_code == 200, response.content
        assert data(response) == {"user": "alice", "verified": True, "next": "/done/"}
        page = client.get("/multifactor/")
        texts = [str(m) for m in get_messages(page.wsgi_request)]
        assert bool(texts) is expect_message, texts


def test_passkey_sign_in_follows_a_safe_next(passkey):
    auth, _key = passkey
    client = new_client()
    begin = data(post(client, PASSKEY_BEGIN))
    response = post(client, PASSKEY_COMPLETE, {"credential": auth.get(begin), "next": "/f1/"})
    assert data(response)["next"] == "/f1/"
    client = new_client()
    begin = data(post(client, PASSKEY_BEGIN))
    response = post(client, PASSKEY_COMPLETE, {"credential": auth.get(begin), "next": "https://evil.example/"})
    assert data(response)["next"] == "/done/"


def test_passkey_sign_in_requires_uv(passkey):
    auth, _key = passkey
    client = new_client()
    refused(passkey_sign_in(client, auth, uv=False), 400, "passkey_failed")
    assert "_auth_user_id" not in session_of(client)


def test_passkey_replay_is_refused(passkey):
    auth, _key = passkey
    client = new_client()
    begin = data(post(client, PASSKEY_BEGIN))
    assertion = auth.get(begin)
    attacker = new_client()
    attacker.cookies["sessionid"] = client.cookies["sessionid"].value  # a copy of the pre-login session
    assert post(client, PASSKEY_COMPLETE, {"credential": assertion}).status_code == 200
    response = post(attacker, PASSKEY_COMPLETE, {"credential": assertion})
    assert response.status_code in (400, 409)
    assert "_auth_user_id" not in session_of(attacker)


def test_passkey_failures_answer_identically(passkey, user, bob):
    """R13: no answer tells whether the account, the credential or the key exists, or why it failed."""
    auth, key = passkey
    bob.is_active = True
    bob.save()
    bobs_handle = user_handle(bob)  # bob exists, has a handle, but no key
    stranger = SoftAuthenticator()

    def attempt(make, before=None, after=None):
        client = new_client()
        options = data(post(client, PASSKEY_BEGIN))
        if before:
            before()
        try:
            response = post(client, PASSKEY_COMPLETE, {"credential": make(options)})
        finally:
            if after:
                after()
        assert "_auth_user_id" not in session_of(client)
        return response.status_code, response.json()

    def set_user_active(value):
        get_user_model().objects.filter(pk=user.pk).update(is_active=value)

    def set_key_enabled(value):
        k = Key.objects.get(pk=key.pk)
        k.enabled = value
        k.save()

    answers = {
        "unknown user handle": attempt(lambda o: auth.get(o, user_handle=os.urandom(64))),
        "handle of a user without keys": attempt(lambda o: auth.get(o, user_handle=bobs_handle)),
        "no user handle": attempt(lambda o: auth.get(o, user_handle=None)),
        "unknown credential": attempt(lambda o: stranger.get(o, user_handle=user_handle(user))),
        "bad signature": attempt(lambda o: auth.get(o, bad_signature=True)),
        "no user verification": attempt(lambda o: auth.get(o, uv=False)),
        "wrong origin": attempt(lambda o: auth.get(o, origin="https://evil.example")),
        "disabled key": attempt(auth.get, lambda: set_key_enabled(False), lambda: set_key_enabled(True)),
        "inactive user": attempt(auth.get, lambda: set_user_active(False), lambda: set_user_active(True)),
        "throttled key": attempt(
            auth.get,
            lambda: Key.objects.filter(pk=key.pk).update(throttled_until=timezone.now() + timezone.timedelta(hours=1)),
            lambda: Key.objects.filter(pk=key.pk).update(throttled_until=None),
        ),
    }
    distinct = {json.dumps(answer, sort_keys=True) for answer in answers.values()}
    assert len(distinct) == 1, answers
    status, body = answers["bad signature"]
    assert status == 400 and [e["code"] for e in body["errors"]] == ["passkey_failed"]
    # Every case above failed for its own reason only: the untouched passkey still signs in.
    assert passkey_sign_in(new_client(), auth).status_code == 200


def test_anonymous_passkey_failures_do_not_count(passkey, user):
    """allauth 65.20.1: anonymous passkey attempts must not throttle or lock the owner's key."""
    auth, key = passkey
    with mf_settings(THROTTLE_FREE_FAILURES=0, THROTTLE_BASE_DELAY=60, THROTTLE_MAX_FAILURES=2):
        for _ in range(5):
            refused(passkey_sign_in(new_client(), auth, bad_signature=True), 400, "passkey_failed")
        key.refresh_from_db()
        assert (key.failures, key.throttled_until, key.locked_at, key.enabled) == (0, None, None, True)
        # The owner signs in, and as a signed-in user the same key is still usable as a second factor.
        assert passkey_sign_in(new_client(), auth).status_code == 200
        signed = new_client(user)
        assert authenticate(signed, auth).status_code == 200


def test_passkey_sign_in_with_a_sign_count_regression_is_refused(passkey):
    auth, key = passkey
    assert passkey_sign_in(new_client(), auth).status_code == 200
    refused(passkey_sign_in(new_client(), auth, sign_count=1), 400, "passkey_failed")
    key.refresh_from_db()
    assert key.clone_suspected_at is not None


def test_passkey_of_a_signed_in_user_switches_to_the_owner(passkey, bob, user):
    auth, _key = passkey
    client = new_client(bob)
    assert passkey_sign_in(client, auth).status_code == 200
    assert session_of(client)["_auth_user_id"] == str(user.pk)


def test_passkeys_disabled(user, passkey, settings):
    auth, _key = passkey
    client = new_client()
    assert client.get(PASSKEY_PAGE).status_code == 200
    begin = data(post(client, PASSKEY_BEGIN))
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "PASSKEY_LOGIN": False}
    refused(post(client, PASSKEY_BEGIN), 404, "passkeys_disabled")
    refused(post(client, PASSKEY_COMPLETE, {"credential": auth.get(begin)}), 404, "passkeys_disabled")
    assert client.get(PASSKEY_PAGE).status_code == 404
    assert "_auth_user_id" not in session_of(client)


def test_passkeys_are_off_by_default(settings):
    settings.MULTIFACTOR = {k: v for k, v in settings.MULTIFACTOR.items() if k != "PASSKEY_LOGIN"}
    client = new_client()
    refused(post(client, PASSKEY_BEGIN), 404, "passkeys_disabled")
    assert client.get(PASSKEY_PAGE).status_code == 404


def test_passkeys_need_the_fido2_factor(passkeys):
    with mf_settings(PASSKEY_LOGIN=True, FACTORS=["TOTP"]):
        refused(post(new_client(), PASSKEY_BEGIN), 404, "passkeys_disabled")


def test_the_pages_never_start_a_ceremony_on_load(signed_in, user, enrolled):
    """R7: a page load stores no challenge (a user gesture starts the ceremony)."""
    for url in (BASE + "fido2/new/", BASE + "fido2/auth/"):
        assert signed_in.get(url).status_code == 200
        assert "fido2" not in mfa_state(signed_in).pending


def test_timing_of_the_state_is_server_side(signed_in):
    """The stored state carries the server's clock, not anything the client sent."""
    before = time.time()
    begin_registration(signed_in)
    stored = mfa_state(signed_in).pending["fido2"]
    assert before <= stored["at"] <= time.time()
    assert stored["kind"] == "register" and stored["rp"] == "localhost"
