"""Shared fixtures: users, a CSRF-enforcing client that sends its token, and TOTP helpers (real pyotp)."""

import secrets

import pyotp
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from multifactor import crypto
from multifactor.models import Key


class CsrfClient(Client):
    """A test client with CSRF checks on, that sends a valid token on writes (as a browser form would).

    ``csrf=False`` on a call leaves the token out, to test that it is enforced.
    """

    def __init__(self, **kwargs):
        super().__init__(enforce_csrf_checks=True, **kwargs)
        self.csrf_token = secrets.token_hex(16)  # an unmasked 32-character secret, as Django accepts
        self.cookies["csrftoken"] = self.csrf_token

    def _with_token(self, kwargs):
        if kwargs.pop("csrf", True):
            kwargs.setdefault("headers", {})["X-CSRFToken"] = self.csrf_token
        return kwargs

    def post(self, path, data=None, **kwargs):
        return super().post(path, data, **self._with_token(kwargs))

    def patch(self, path, data="", **kwargs):
        return super().patch(path, data, **self._with_token(kwargs))

    def delete(self, path, data="", **kwargs):
        return super().delete(path, data, **self._with_token(kwargs))

    def api(self, method, path, body=None, **kwargs):
        import json

        kwargs.setdefault("content_type", "application/json")
        kwargs.setdefault("headers", {}).setdefault("Accept", "application/json")
        data = json.dumps(body) if body is not None else ""
        return getattr(self, method.lower())(path, data, **kwargs)


@pytest.fixture
def client():
    return CsrfClient()


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", "alice@example.com", "pw-alice-123")


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("staffer", "staff@example.com", "pw", is_staff=True)


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def make_totp(user, name="phone", seed=None):
    """A confirmed TOTP key for ``user``; returns (key, pyotp.TOTP)."""
    seed = seed or pyotp.random_base32()
    key = Key.objects.create(user=user, type="TOTP", name=name, secret=crypto.encrypt(seed))
    return key, pyotp.TOTP(seed)


@pytest.fixture
def totp_key(user):
    return make_totp(user)


def verify_totp(client, totp, key=None):
    """Pass TOTP verification through the real page; allows a key to verify again (a new step)."""
    if key is not None:
        Key.objects.filter(pk=key.pk).update(last_step=None)
    return client.post(reverse("multifactor:totp_auth"), {"answer": totp.now()})  # whatever the URLconf's mount


@pytest.fixture
def verified(signed_in, totp_key):
    key, totp = totp_key
    response = verify_totp(signed_in, totp)
    assert response.status_code == 302, response.content
    return signed_in


@pytest.fixture
def two_keys(user):
    """Two TOTP keys of ``user``: ((key, totp), (key, totp)), named Phone and Tablet."""
    return make_totp(user, "Phone"), make_totp(user, "Tablet")


@pytest.fixture
def verified_two(signed_in, two_keys):
    """The signed-in client, verified with the first of ``two_keys``."""
    (_a, totp_a), _b = two_keys
    assert verify_totp(signed_in, totp_a).status_code == 302
    return signed_in


# -- Session helpers and a shared cache (tests/test_decorator.py, test_session.py, test_checks.py) -----------


def mfa_state(client):
    """The MFA state stored in the client's session, read through the session store (any engine)."""
    from multifactor import session

    return session.load(client.session)


def edit_mfa_state(client, change):
    """Change the MFA state stored in the client's session through the session store, as another process
    (or the passage of time) would; ``change(state)`` edits the state in place. Works for every engine,
    signed_cookies included (the cookie is replaced)."""
    from django.conf import settings

    from multifactor import session

    store = client.session
    state = session.load(store)
    change(state)
    session.save(store, state)
    store.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = store.session_key
    return state


SIGNED_COOKIES = "django.contrib.sessions.backends.signed_cookies"
