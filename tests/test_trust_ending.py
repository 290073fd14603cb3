"""When a trust ends (CONTRACT: its key disabled, deleted or locked, an admin reset, a password change, after
TRUST_DAYS, or revoked by the user), the very next request sees it: both a new session of the browser and a
session already holding a verification made from the trust. On db and signed_cookies sessions."""

import datetime

import pytest
from django.utils import timezone

from multifactor.models import Key, TrustedBrowser
from tests import trust_helpers
from tests.conftest import make_totp
from tests.mfa_helpers import API, HOME, TOTP_AUTH, data, mfa_state
from tests.trust_helpers import (
    TRUST_COOKIE,
    TRUSTED_API,
    UA_SAFARI,
    browser,
    fresh_step,
    sign_out_and_in,
    trust_with_totp,
)

pytestmark = pytest.mark.django_db
engine = trust_helpers.engine  # the fixture: db and signed_cookies sessions, TRUST_DAYS on


@pytest.fixture
def setup(engine, user):
    """(holder, laptop, key, totp): ``holder`` is a later session of a trusted browser, verified by the trust;
    ``laptop`` another browser of the user, verified with the same app within the re-authentication window."""
    key, totp = make_totp(user)
    make_totp(user, "spare")  # so that disabling the first key is allowed and leaves the user with keys
    holder = browser()
    trust_with_totp(holder, user, key, totp)
    sign_out_and_in(holder, user)
    assert holder.get("/f1/").content == b"ok"
    assert mfa_state(holder).verifications[0].trusted
    laptop = browser(UA_SAFARI)
    laptop.force_login(user)
    fresh_step(key)
    assert laptop.post(TOTP_AUTH, {"answer": totp.now()}).status_code == 302
    return holder, laptop, key, totp


def assert_trust_over(holder, user):
    assert holder.get("/f1/").status_code == 302  # this session: on its very next request
    sign_out_and_in(holder, user)
    assert holder.get("/f1/").status_code == 302  # and every later session of the browser


def test_disabling_the_key_ends_the_trust(setup, user):
    holder, laptop, key, _totp = setup
    assert laptop.api("patch", f"{API}keys/{key.pk}", {"enabled": False}).status_code == 200
    assert_trust_over(holder, user)


def test_a_key_disabled_then_enabled_again_does_not_revive_the_trust(setup, user):
    holder, laptop, key, _totp = setup
    laptop.api("patch", f"{API}keys/{key.pk}", {"enabled": False})
    assert holder.get("/f1/").status_code == 302
    key.refresh_from_db()
    key.enabled = True  # enabled again (say by an administrator)
    key.save()
    sign_out_and_in(holder, user)
    assert holder.get("/f1/").status_code == 302


def test_deleting_the_key_ends_the_trust(setup, user):
    holder, laptop, key, _totp = setup
    assert laptop.api("delete", f"{API}keys/{key.pk}").status_code == 204
    assert not TrustedBrowser.objects.exists()
    assert_trust_over(holder, user)


def test_locking_the_key_ends_the_trust(setup, user, settings):
    from tests.mfa_helpers import wrong_code

    holder, _laptop, key, totp = setup
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "THROTTLE_MAX_FAILURES": 1, "THROTTLE_FREE_FAILURES": 5}
    attacker = browser()
    attacker.force_login(user)
    attacker.post(TOTP_AUTH, {"answer": wrong_code(totp)})
    assert Key.objects.filter(locked_at__isnull=False).exists()
    assert_trust_over(holder, user)


@pytest.mark.urls("tests.admin_urls")
def test_an_admin_reset_ends_the_trust(setup, user, django_user_model):
    holder, _laptop, _key, _totp = setup
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    staff = browser()
    staff.force_login(admin)
    form = {"action": "reset_multifactor", "_selected_action": [user.pk], "index": "0", "post": "yes"}
    assert staff.post("/staff-admin/auth/user/", form).status_code == 302
    assert not TrustedBrowser.objects.exists() and not Key.objects.filter(user=user).exists()
    assert_trust_over(holder, user)


def test_a_password_change_ends_the_trust(setup, user):
    holder, _laptop, _key, _totp = setup
    user.set_password("a-new-password-456")
    user.save()
    assert holder.get("/f1/").status_code == 302  # Django ends the session; the trust is over as well
    holder.force_login(user)
    assert holder.get("/f1/").status_code == 302
    assert not TrustedBrowser.objects.exists()  # found stale, and removed


def test_the_trust_ends_after_trust_days(setup, user):
    holder, _laptop, _key, _totp = setup
    TrustedBrowser.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    sign_out_and_in(holder, user)
    assert holder.get("/f1/").status_code == 302


def test_lowering_trust_days_shortens_existing_trusts(setup, user, settings):
    holder, _laptop, _key, _totp = setup
    TrustedBrowser.objects.update(created_at=timezone.now() - datetime.timedelta(days=10))
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "TRUST_DAYS": 7}
    sign_out_and_in(holder, user)
    assert holder.get("/f1/").status_code == 302


def test_revoking_one_trust_through_the_api_ends_it_on_the_next_request(setup, user):
    holder, laptop, _key, _totp = setup
    (listed,) = data(laptop.api("get", TRUSTED_API))
    assert listed["current"] is False and set(listed) >= {"id", "created_at", "expires_at", "last_used_at"}
    assert listed["user_agent"].startswith("Mozilla/5.0 (Windows")
    assert laptop.api("delete", f"{TRUSTED_API}/{listed['id']}").status_code == 204
    assert_trust_over(holder, user)


def test_revoking_all_trusts_through_the_api(setup, user):
    holder, laptop, _key, _totp = setup
    assert laptop.api("delete", TRUSTED_API).status_code == 204
    assert data(laptop.api("get", TRUSTED_API)) == []
    assert_trust_over(holder, user)


def test_revoking_this_browser_on_the_keys_page_forgets_its_cookie(setup, user):
    holder, _laptop, key, totp = setup
    fresh_step(key)
    holder.post(TOTP_AUTH, {"answer": totp.now()})  # a real factor now: may manage
    page = holder.get(HOME).content.decode()
    assert "This browser" in page and "Firefox on Windows" in page
    row = TrustedBrowser.objects.get()
    response = holder.post(f"/multifactor/trusted-browsers/{row.pk}/revoke/")
    assert response.status_code == 302 and response.cookies[TRUST_COOKIE].value == ""
    assert not TrustedBrowser.objects.exists()


def test_revoking_needs_the_reauthentication_window(setup):
    holder, _laptop, _key, _totp = setup
    row = TrustedBrowser.objects.get()
    assert holder.api("delete", f"{TRUSTED_API}/{row.pk}").status_code == 403
    holder.post(f"/multifactor/trusted-browsers/{row.pk}/revoke/")
    assert TrustedBrowser.objects.exists()


@pytest.mark.parametrize("bad", ["999999", "abc", "1.0", "-1", "١"])
def test_revoking_an_unknown_trust_is_a_404(setup, bad):
    _holder, laptop, _key, _totp = setup
    response = laptop.api("delete", f"{TRUSTED_API}/{bad}")
    assert response.status_code == 404
    assert TrustedBrowser.objects.exists()


def test_another_users_trust_cannot_be_revoked(setup, django_user_model):
    _holder, _laptop, _key, _totp = setup
    bob = django_user_model.objects.create_user("bob", "bob@example.com", "pw-bob-123")
    client = browser()
    client.force_login(bob)  # no keys: may manage his own (nothing)
    row = TrustedBrowser.objects.get()
    assert client.api("delete", f"{TRUSTED_API}/{row.pk}").status_code == 404
    assert data(client.api("get", TRUSTED_API)) == []
    assert TrustedBrowser.objects.exists()


def test_a_request_in_flight_does_not_bring_a_revoked_trust_back(setup, user):
    from tests.test_revocation_interleaving import InFlight

    holder, laptop, _key, _totp = setup
    in_flight = InFlight(holder)  # loaded the session, with its trust-derived verification, before the revoke
    assert laptop.api("delete", TRUSTED_API).status_code == 204
    in_flight.land()  # and writes that copy back afterwards
    assert holder.get("/f1/").status_code == 302


@pytest.mark.parametrize(
    "agent, words",
    [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Windows"),
        (UA_SAFARI, "Safari on iOS"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0 Safari/537.36 Edg/126.0",
            "Edge on macOS",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
            "Chrome on Linux",
        ),
        ("curl/8.5", "Unknown browser"),
        ("", "Unknown browser"),
    ],
)
def test_user_agents_in_words(agent, words):
    from multifactor.trust.agents import describe

    assert describe(agent) == words
