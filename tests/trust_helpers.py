"""Helpers for the trusted-browser and signed-in-session tests: engines, trusting through the real pages."""

import pytest
from django.conf import settings as django_settings

from multifactor.trust.browsers import COOKIE as TRUST_COOKIE  # noqa: F401  (for the tests)
from tests.conftest import CsrfClient
from tests.mfa_helpers import BASE, TOTP_AUTH

SESSION_COOKIE = django_settings.SESSION_COOKIE_NAME
ENGINES = {
    "db": "django.contrib.sessions.backends.db",
    "signed_cookies": "django.contrib.sessions.backends.signed_cookies",
}
DAYS = 30
UA_FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
UA_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
LOGOUT = BASE + "logout/"
TRUSTED_API = BASE + "api/v1/trusted-browsers"
SESSIONS_API = BASE + "api/v1/sessions"


@pytest.fixture(params=list(ENGINES))
def engine(request, settings):
    settings.SESSION_ENGINE = ENGINES[request.param]
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "TRUST_DAYS": DAYS}
    return request.param


def browser(user_agent=UA_FIREFOX):
    return CsrfClient(HTTP_USER_AGENT=user_agent)


def fresh_step(key):
    from multifactor.models import Key

    Key.objects.filter(pk=key.pk).update(last_step=None)  # the same app may verify again (a new step)


def trust_with_totp(client, user, key, totp):
    """Sign in, verify with TOTP ticking "trust this browser"; returns the response."""
    client.force_login(user)
    fresh_step(key)
    response = client.post(TOTP_AUTH, {"answer": totp.now(), "trust_browser": "1"})
    assert response.status_code == 302, response.content
    return response


def sign_out_and_in(client, user):
    """Log out through the MFA pages' logout (the trust cookie stays, as a browser keeps it), sign in again."""
    assert client.post(LOGOUT).status_code == 302
    client.force_login(user)
    return client
