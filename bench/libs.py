"""Per-library set-up, run inside the library's venv after ``django.setup()``: a user with one TOTP key, and
a session that passed verification the real way, through the library's own verification view with a real
TOTP code (a test client POST, then the session cookie is taken from the client).

* ours and 0.9.5: the key is stored as each library stores it (ours encrypts the seed); the session is made
  by POSTing the current code to ``multifactor:totp_auth`` (``/admin/multifactor/totp/auth/``).
* django-otp: a confirmed ``TOTPDevice``; the session is made by POSTing ``otp_device`` (its persistent id)
  and ``otp_token`` to ``django_otp.views.LoginView`` for the signed-in user (its ``OTPTokenForm`` mode).
"""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

LIB = os.environ.get("BENCH_LIB", "ours")
PASSWORD = "bench-password-123"  # noqa: S105


class BenchError(RuntimeError):
    pass


def make_user(username: str):
    User = get_user_model()
    User.objects.filter(username=username).delete()
    return User.objects.create_user(username, f"{username}@example.com", PASSWORD)


# -- keys --------------------------------------------------------------------------------------------------


def add_totp_key(user):
    """One confirmed TOTP key for ``user``; returns a function giving the current code."""
    if LIB == "ours":
        import pyotp

        from multifactor import crypto
        from multifactor.models import Key

        seed = pyotp.random_base32()
        Key.objects.create(user=user, type="TOTP", name="phone", secret=crypto.encrypt(seed))
        return pyotp.TOTP(seed).now
    if LIB == "mf095":
        import pyotp

        from multifactor.models import UserKey

        seed = pyotp.random_base32()
        UserKey.objects.create(user=user, key_type="TOTP", name="phone", properties={"secret_key": seed})
        return pyotp.TOTP(seed).now
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)

    def now():
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        return f"{totp.token():0{device.digits}d}"

    now.device = device
    return now


def allow_reuse(user):
    """Forget the last accepted TOTP step (each library refuses a code twice), so the next code verifies."""
    if LIB == "ours":
        from multifactor.models import Key

        Key.objects.filter(user=user, type="TOTP").update(last_step=None)
    elif LIB == "mf095":
        from multifactor.models import UserKey

        for key in UserKey.objects.filter(user=user, key_type="TOTP"):
            key.properties.pop("last_step", None)
            key.save(update_fields=["properties"])
    else:
        from django_otp.plugins.otp_totp.models import TOTPDevice

        TOTPDevice.objects.filter(user=user).update(last_t=-1)


# -- sessions ----------------------------------------------------------------------------------------------


def _signed_in_client(user, backend=None) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user, backend=backend)
    return client


def _verify(client: Client, code_now, user) -> None:
    if LIB in ("ours", "mf095"):
        response = client.post("/admin/multifactor/totp/auth/", {"answer": code_now()})
    else:
        response = client.post("/otp/login/", {"otp_device": code_now.device.persistent_id, "otp_token": code_now()})
    if response.status_code != 302:
        raise BenchError(f"{LIB}: TOTP verification answered {response.status_code}: {response.content[:300]!r}")


def session_cookie(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def verified_session(user, code_now, backend=None) -> str:
    """The session cookie value of a session that passed TOTP verification through the library's view."""
    client = _signed_in_client(user, backend)
    _verify(client, code_now, user)
    return session_cookie(client)


def cold_session(user) -> str:
    """A signed-in session of a user with a key who has not verified."""
    client = _signed_in_client(user)
    client.get("/plain/")  # nothing yet: force_login already saved the session
    return session_cookie(client)


def prepare(tag: str = "") -> dict:
    """Users and sessions for the current settings (engine): {"verified": cookie, "cold": cookie}."""
    verified_user = make_user(f"verified{tag}")
    code_now = add_totp_key(verified_user)
    cold_user = make_user(f"cold{tag}")
    add_totp_key(cold_user)
    cookies = {
        "cookie_name": settings.SESSION_COOKIE_NAME,
        "verified": verified_session(verified_user, code_now),
        "cold": cold_session(cold_user),
    }
    if LIB == "ours":  # signed in through Django's own backend: the revocation counter is not joined
        unjoined_user = make_user(f"unjoined{tag}")
        unjoined_now = add_totp_key(unjoined_user)
        cookies["verified_unjoined"] = verified_session(
            unjoined_user, unjoined_now, backend="django.contrib.auth.backends.ModelBackend"
        )
    return cookies
