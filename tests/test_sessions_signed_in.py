"""Signed-in sessions (CONTRACT "Trusted browsers and signed-in sessions"): listed for their user, signed out
one by one or all others, refused on their very next request on every page, on db and signed_cookies
sessions, and never brought back by a request in flight."""

import pytest
from django.core.checks import run_checks

from multifactor.models import Event, Key, SignedInSession
from tests import trust_helpers
from tests.conftest import make_totp
from tests.mfa_helpers import HOME, LOGIN, TOTP_AUTH, action_url, data, edit_mfa_state, error_codes, mfa_state
from tests.test_revocation_interleaving import InFlight
from tests.trust_helpers import (
    SESSIONS_API,
    UA_FIREFOX,
    UA_SAFARI,
    browser,
    fresh_step,
)

pytestmark = pytest.mark.django_db
engine = trust_helpers.engine  # the fixture: db and signed_cookies sessions, TRUST_DAYS on
PASSWORD = "pw-alice-123"


def sign_in(user_agent=UA_FIREFOX, username="alice", password=PASSWORD):
    """Sign in through the site's real login view."""
    client = browser(user_agent)
    response = client.post(LOGIN, {"username": username, "password": password})
    assert response.status_code == 302, response.content
    client.cookies["csrftoken"] = client.csrf_token  # login rotates the token; the client keeps sending its own
    return client


def verify(client, key, totp):
    fresh_step(key)
    assert client.post(TOTP_AUTH, {"answer": totp.now()}).status_code == 302


@pytest.fixture
def two(engine, user):
    """(phone, laptop, key, totp): two signed-in sessions of a user with a key; the laptop verified."""
    key, totp = make_totp(user)
    phone = sign_in(UA_SAFARI)
    laptop = sign_in()
    verify(laptop, key, totp)
    return phone, laptop, key, totp


def signed_out(client) -> bool:
    """Whether the session is no longer signed in, seen on an unprotected page that needs a user."""
    response = client.get("/plain/")
    return response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_a_sign_in_is_recorded_with_ip_and_browser(engine, user):
    client = sign_in()
    row = SignedInSession.objects.get()
    assert row.user == user and row.ip == "127.0.0.1" and "Firefox" in row.user_agent and row.ended_at is None
    assert mfa_state(client).sid == row.pk
    (listed,) = data(client.api("get", SESSIONS_API))
    assert listed["id"] == row.pk and listed["current"] is True and listed["ip"] == "127.0.0.1"
    assert set(listed) >= {"id", "created_at", "last_seen_at", "ip", "user_agent", "current"}


def test_the_list_marks_this_session_and_shows_the_others(two):
    phone, laptop, _key, _totp = two
    rows = data(laptop.api("get", SESSIONS_API))
    assert len(rows) == 2 and [r["current"] for r in rows].count(True) == 1
    page = laptop.get(HOME).content.decode()
    assert "This session" in page and "Safari on iOS" in page and "Firefox on Windows" in page


def test_signing_out_another_session_refuses_it_on_every_page(two):
    phone, laptop, _key, _totp = two
    other = next(r for r in data(laptop.api("get", SESSIONS_API)) if not r["current"])
    assert laptop.api("delete", f"{SESSIONS_API}/{other['id']}").status_code == 204
    assert signed_out(phone)
    assert not signed_out(laptop) and laptop.get("/f1/").status_code == 200
    assert SignedInSession.objects.get(pk=other["id"]).ended_at is not None
    assert Event.objects.filter(kind="session_signed_out").exists()
    assert len(data(laptop.api("get", SESSIONS_API))) == 1


def test_a_signed_out_session_is_refused_by_async_pages_too(two):
    """Through an ASGI stack (AsyncClient) the middleware runs in the event loop; a signed-out session is
    logged out there on its next request, as in the sync stack."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    phone, laptop, _key, _totp = two

    def async_get(client, url):
        async def go():
            async_client = AsyncClient()
            async_client.cookies = client.cookies
            return await async_client.get(url)

        return async_to_sync(go)()

    assert async_get(phone, "/async-login/").status_code == 200
    other = next(r for r in data(laptop.api("get", SESSIONS_API)) if not r["current"])
    assert laptop.api("delete", f"{SESSIONS_API}/{other['id']}").status_code == 204
    response = async_get(phone, "/async-login/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert async_get(laptop, "/async-login/").status_code == 200


def test_signing_out_every_other_session(two, user):
    phone, laptop, _key, _totp = two
    tablet = sign_in()
    assert laptop.api("delete", SESSIONS_API).status_code == 204
    assert signed_out(phone) and signed_out(tablet) and not signed_out(laptop)


def test_signing_out_this_session_logs_it_out_now(two):
    _phone, laptop, _key, _totp = two
    mine = next(r for r in data(laptop.api("get", SESSIONS_API)) if r["current"])
    assert laptop.api("delete", f"{SESSIONS_API}/{mine['id']}").status_code == 204
    assert signed_out(laptop)


def test_managing_sessions_needs_the_reauthentication_window(two):
    phone, laptop, _key, _totp = two
    response = phone.api("delete", SESSIONS_API)
    assert response.status_code == 403 and error_codes(response) == ["reauthentication_required"]
    assert not signed_out(laptop)


def test_a_user_without_keys_may_sign_out_their_other_sessions(engine, user):
    first, second = sign_in(), sign_in()
    assert second.api("delete", SESSIONS_API).status_code == 204
    assert signed_out(first) and not signed_out(second)


def test_another_users_session_cannot_be_signed_out(two, django_user_model):
    phone, _laptop, _key, _totp = two
    django_user_model.objects.create_user("bob", "bob@example.com", "pw-bob-123")
    bob = sign_in(username="bob", password="pw-bob-123")
    for row in SignedInSession.objects.filter(user__username="alice"):
        assert bob.api("delete", f"{SESSIONS_API}/{row.pk}").status_code == 404
    assert not signed_out(phone)


def test_logging_out_ends_the_row(engine, user):
    client = sign_in()
    client.post("/multifactor/logout/")
    assert SignedInSession.objects.get().ended_at is not None


def test_the_keys_page_buttons_sign_out(two):
    phone, laptop, _key, _totp = two
    other = SignedInSession.objects.exclude(pk=mfa_state(laptop).sid).get()
    assert laptop.post(f"/multifactor/sessions/{other.pk}/sign-out/").status_code == 302
    assert signed_out(phone)
    tablet = sign_in()
    assert laptop.post("/multifactor/sessions/sign-out/").status_code == 302
    assert signed_out(tablet) and not signed_out(laptop)


def test_a_request_in_flight_does_not_bring_a_signed_out_session_back(two):
    phone, laptop, _key, _totp = two
    assert phone.get("/plain/").status_code == 200
    in_flight = InFlight(phone)  # loaded the session before the sign-out
    laptop.api("delete", SESSIONS_API)
    in_flight.land()  # and saves its copy afterwards
    assert signed_out(phone)


def test_a_signed_out_session_cannot_verify_itself_back(two, settings):
    """Even where the middleware is missing, a verification does not record the new revision for a session
    whose row was signed out: it is logged out instead."""
    phone, laptop, key, totp = two
    laptop.api("delete", SESSIONS_API)
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "SignedInSessions" not in m]
    fresh_step(key)
    response = phone.post(TOTP_AUTH, {"answer": totp.now()})
    assert response.status_code != 302 or not response["Location"].startswith("/done")
    assert mfa_state(phone).verifications == []
    response = phone.get("/f1/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_without_the_middleware_protected_views_still_refuse_and_a_check_warns(two, settings):
    phone, laptop, key, totp = two
    verify(phone, key, totp)
    laptop.api("delete", SESSIONS_API)
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "SignedInSessions" not in m]
    assert "multifactor.W020" in [m.id for m in run_checks()]
    response = phone.get("/f1/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    json_response = phone.get("/api/thing", headers={"Accept": "application/json"})
    assert json_response.status_code in (302, 401)


def test_the_check_is_quiet_with_the_middleware_in_place():
    assert "multifactor.W020" not in [m.id for m in run_checks()]


def test_a_session_from_before_tracking_gets_a_row_on_its_next_request(engine, user):
    client = sign_in()
    SignedInSession.objects.all().delete()

    def forget(state):
        state.sid = None

    edit_mfa_state(client, forget)
    assert client.get("/plain/").status_code == 200
    row = SignedInSession.objects.get()
    assert mfa_state(client).sid == row.pk


def test_removing_a_key_offers_to_sign_out_everywhere_else(two, user):
    _phone, laptop, _key, _totp = two
    spare, _ = make_totp(user, "spare")
    laptop.post(action_url("delete_factor", spare.pk))
    assert not Key.objects.filter(pk=spare.pk).exists()
    shown = [m["message"] for m in laptop.get("/messages/").json()["messages"]]
    assert any("Sign out everywhere else?" in m and "offer=sign-out" in m for m in shown), shown


def test_the_offer_after_a_key_removal_has_a_button(two):
    _phone, laptop, _key, _totp = two
    page = laptop.get(HOME + "?offer=sign-out").content.decode()
    assert "Sign out everywhere else" in page and "/multifactor/sessions/sign-out/" in page


@pytest.mark.urls("tests.admin_urls")
def test_after_an_admin_reset_the_user_is_offered_to_sign_out_the_others(two, user, django_user_model):
    phone, laptop, _key, _totp = two
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    staff = browser()
    staff.force_login(admin)
    form = {"action": "reset_multifactor", "_selected_action": [user.pk], "index": "0", "post": "yes"}
    staff.post("/staff-admin/auth/user/", form)
    fresh = sign_in()  # the user, signed in again after the reset (no key now: may manage)
    page = fresh.get(HOME).content.decode()
    assert "Sign out everywhere else?" in page
    assert fresh.post("/multifactor/sessions/sign-out/").status_code == 302
    assert signed_out(phone) and signed_out(laptop) and not signed_out(fresh)
    assert not Key.objects.filter(user=user).exists()
