"""Revocation is never undone (SECURITY.md R16), by any interleaving, on every session engine.

Each test puts a request's work on either side of a revocation at the point where the earlier design failed:
a request that loaded the session before the revocation and saved it afterwards (the stale write), a
verification that loaded the session before another key was revoked and carried the revoked one over
(issue 17.1), a replaced recovery-code set (issue 13.2), a sliding session, an admin reset. The
multi-process versions, with a real request in flight in another server process, are in
tests/test_multiprocess.py.
"""

import time
from importlib import import_module

import pyotp
import pytest
from django.conf import settings as django_settings
from django.db import connection

from multifactor.models import Key
from tests.conftest import CsrfClient, make_totp, verify_totp
from tests.mfa_helpers import ADD, API, AUTHENTICATE, action_url, age_verifications, data, mfa_state
from tests.test_revocation import ENGINES, engine  # noqa: F401  (the engine fixture, every session engine)

pytestmark = pytest.mark.django_db

COOKIE = django_settings.SESSION_COOKIE_NAME
RECOVERY_AUTH = "/multifactor/recovery/auth/"


def verified(user, totp, key):
    client = CsrfClient()
    client.force_login(user)
    assert verify_totp(client, totp, key).status_code == 302
    assert client.get("/f1/").content == b"ok"
    return client


class InFlight:
    """A request of ``client``'s session that loaded the session now and saves its copy when ``land()`` is
    called, as a request that writes the session (or any request under SESSION_SAVE_EVERY_REQUEST) does at its
    end. For signed_cookies the saved copy is the cookie its response sets."""

    def __init__(self, client):
        self.client = client
        store_class = import_module(django_settings.SESSION_ENGINE).SessionStore
        self.store = store_class(session_key=client.cookies[COOKIE].value)
        self.loaded = dict(self.store.items())  # loads the session, as the request's first access would
        assert self.loaded, "the session did not load"

    def land(self):
        self.store["written_by_the_request_in_flight"] = True
        self.store.save()
        self.client.cookies[COOKIE] = self.store.session_key


def test_a_stale_write_after_a_disable_does_not_bring_the_verification_back(engine, user):  # noqa: F811
    k1, totp1 = make_totp(user, "one")
    make_totp(user, "two")
    victim = verified(user, totp1, k1)
    admin_side = verified(user, totp1, k1)
    in_flight = InFlight(victim)

    assert admin_side.post(action_url("toggle_factor", k1.pk)).status_code == 302
    in_flight.land()  # the request that started before the revocation saves its copy

    for _ in range(3):  # and not later either: the saved copy is checked, not trusted
        assert victim.get("/f1/")["Location"] == AUTHENTICATE
    assert mfa_state(victim).verifications == []


def test_a_stale_write_after_a_delete_does_not_bring_the_verification_back(engine, user):  # noqa: F811
    k1, totp1 = make_totp(user, "one")
    make_totp(user, "two")
    victim = verified(user, totp1, k1)
    in_flight = InFlight(victim)
    Key.objects.filter(pk=k1.pk).delete()
    in_flight.land()
    assert victim.get("/f1/")["Location"] == AUTHENTICATE
    assert victim.get("/f1/")["Location"] == AUTHENTICATE


def test_two_stale_writes_in_a_row(engine, user):  # noqa: F811
    """A second request in flight lands after the first stale copy was already corrected."""
    k1, totp1 = make_totp(user, "one")
    make_totp(user, "two")
    victim = verified(user, totp1, k1)
    first, second = InFlight(victim), InFlight(victim)
    Key.objects.filter(pk=k1.pk).update(enabled=False)
    first.land()
    assert victim.get("/f1/")["Location"] == AUTHENTICATE
    second.land()
    assert victim.get("/f1/")["Location"] == AUTHENTICATE


@pytest.mark.urls("tests.admin_urls")
def test_a_stale_write_after_an_admin_reset(engine, user, admin_user):  # noqa: F811
    k1, totp1 = make_totp(user, "one")
    victim = verified(user, totp1, k1)
    in_flight = InFlight(victim)
    admin = CsrfClient()
    admin.force_login(admin_user)
    response = admin.post(  # "post": the answer of the action's confirmation page
        "/staff-admin/auth/user/",
        {"action": "reset_multifactor", "_selected_action": [user.pk], "index": "0", "post": "yes"},
    )
    assert response.status_code == 302
    assert not Key.objects.filter(user=user).exists()
    in_flight.land()
    assert victim.get("/f1/")["Location"] == ADD  # no keys left: enrol, and nothing verified
    assert mfa_state(victim).verifications == []


def test_an_old_signed_cookie_replayed_after_a_revocation(settings, user):
    """signed_cookies: the browser (or a thief) may send back any cookie it was given before."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    k1, totp1 = make_totp(user, "one")
    make_totp(user, "two")
    victim = verified(user, totp1, k1)
    old_cookie = victim.cookies[COOKIE].value
    Key.objects.filter(pk=k1.pk).update(enabled=False)
    assert victim.get("/f1/")["Location"] == AUTHENTICATE
    victim.cookies[COOKIE] = old_cookie
    assert victim.get("/f1/")["Location"] == AUTHENTICATE


def test_a_sliding_session_outlives_any_bookkeeping(engine, user, settings):  # noqa: F811
    """A session kept alive past SESSION_COOKIE_AGE by SESSION_SAVE_EVERY_REQUEST is still revocable (the earlier
    design pruned its index rows after SESSION_COOKIE_AGE)."""
    settings.SESSION_COOKIE_AGE = 2
    settings.SESSION_SAVE_EVERY_REQUEST = True
    k1, totp1 = make_totp(user, "one")
    make_totp(user, "two")
    victim = verified(user, totp1, k1)
    deadline = time.monotonic() + 2.6
    while time.monotonic() < deadline:
        assert victim.get("/f1/").content == b"ok"
        time.sleep(0.4)
    Key.objects.filter(pk=k1.pk).update(enabled=False)
    assert victim.get("/f1/")["Location"] == AUTHENTICATE


# -- a verification never carries over a verification it has not checked (issue 17.1) ---------------------


class RevokeDuringVerification:
    """Revoke ``key`` the moment the verification request under way first writes a key row: after it loaded
    its session (with ``key``'s verification in it), before it records the new verification. A real
    interleaving point, reached through the database connection's own hook."""

    def __init__(self, key):
        self.key, self.done = key, False

    def __call__(self, execute, sql, params, many, context):
        if not self.done and sql.lstrip().upper().startswith("UPDATE") and Key._meta.db_table in sql:
            self.done = True
            Key.objects.filter(pk=self.key.pk).update(enabled=False)
        return execute(sql, params, many, context)


def test_a_verification_racing_a_revocation_does_not_carry_the_revoked_one_over(engine, user):  # noqa: F811
    k1, totp1 = make_totp(user, "one")
    k2, totp2 = make_totp(user, "two")
    client = verified(user, totp1, k1)
    Key.objects.filter(pk=k2.pk).update(last_step=None)
    hook = RevokeDuringVerification(k1)
    with connection.execute_wrapper(hook):
        assert client.post("/multifactor/totp/auth/", {"answer": totp2.now()}).status_code == 302
    assert hook.done and not Key.objects.get(pk=k1.pk).enabled
    assert client.get("/f2/")["Location"] == AUTHENTICATE  # only key 2 is verified
    assert client.get("/f1/").content == b"ok"
    assert [v.key_id for v in mfa_state(client).verifications] == [k2.pk]


# -- replacing the recovery-code set ends the old set's verifications (issue 13.2, SECURITY.md R6/R16) ------


@pytest.mark.parametrize("engine_name", ["db", "signed_cookies"])
def test_replacing_the_recovery_set_ends_sessions_verified_with_the_old_one(settings, user, engine_name):
    if engine_name == "signed_cookies":
        settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    k1, totp1 = make_totp(user, "phone")
    owner = verified(user, totp1, k1)
    codes = data(owner.api("POST", API + "recovery-codes"))["codes"]

    thief = CsrfClient()  # signs in with the password and a leaked code of the first set
    thief.force_login(user)
    assert thief.post(RECOVERY_AUTH, {"code": codes[0]}).status_code == 302
    assert thief.get("/f1/").content == b"ok"

    owner = verified(user, totp1, k1)  # the owner replaces the set from their own session
    assert owner.api("POST", API + "recovery-codes").status_code == 201
    assert thief.get("/f1/")["Location"] == AUTHENTICATE  # on the thief's very next request
    assert owner.get("/f1/").content == b"ok"  # the owner's own (TOTP) verification stays
    # an old code no longer works either
    assert thief.post(RECOVERY_AUTH, {"code": codes[1]}).status_code == 400


# -- a step-up is not met by enrolling a new key (issue 17.3) --------------------------------------------


def enrol_totp(client, name="new app"):
    began = data(client.api("POST", API + "totp/begin"))
    code = pyotp.TOTP(began["secret"]).now()
    return client.api("POST", API + "totp/activate", {"code": code, "name": name})


def test_a_max_age_step_up_is_not_met_by_enrolling_a_new_key(user):
    """The step-up page wants a verification younger than 60 s; the session is 120 s old, still inside the
    300 s re-authentication window, so it may enrol a key, with a seed the server hands it. That enrolment
    proves nothing about the user and must not pass the step-up (nor count as a second factor)."""
    k1, totp1 = make_totp(user, "phone")
    client = verified(user, totp1, k1)
    age_verifications(client, 120)
    assert client.get("/max-age/")["Location"] == AUTHENTICATE
    assert enrol_totp(client).status_code == 201
    assert Key.objects.filter(user=user, confirmed=True).count() == 2
    assert client.get("/max-age/")["Location"] == AUTHENTICATE
    assert client.get("/f2/")["Location"] == AUTHENTICATE
    assert client.get("/f1/").content == b"ok"  # the old verification still counts where it did


def test_a_first_enrolment_still_counts_as_a_verification(user):
    client = CsrfClient()
    client.force_login(user)
    assert client.get("/f1/")["Location"] == ADD
    assert enrol_totp(client, "first").status_code == 201
    assert client.get("/f1/").content == b"ok"
    assert client.get("/max-age/").content == b"ok"
