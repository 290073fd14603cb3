"""example/api_client.py, the README's recipe for API clients (no login endpoint: the Django login form, then
the session cookie and the CSRF header), run end to end against a live server: sign in, status, a TOTP
verification, an enrolment, and the errors a client sees. Only the standard library on the client side."""

import importlib.util
import io
import json
from pathlib import Path

import pyotp
import pytest
from django.contrib.auth import get_user_model

from multifactor.models import Event, Key
from tests.conftest import make_totp

PATH = Path(__file__).resolve().parent.parent / "example" / "api_client.py"
spec = importlib.util.spec_from_file_location("api_client", PATH)
api_client = importlib.util.module_from_spec(spec)
spec.loader.exec_module(api_client)

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()
PASSWORD = "pw-client-123"


@pytest.fixture
def alice(transactional_db):
    return User.objects.create_user("alice", "alice@example.com", PASSWORD)


def run(live_server, *args):
    out = io.StringIO()
    code = api_client.main(["--url", live_server.url, "--username", "alice", "--password", PASSWORD, *args], out)
    return code, out.getvalue()


def test_the_clients_totp_matches_an_authenticator_app():
    secret = pyotp.random_base32()
    for at in (0, 59, 1_111_111_109, 2_000_000_000):
        assert api_client.totp(secret, at) == pyotp.TOTP(secret).at(at)


def test_sign_in_then_verify_with_totp(live_server, alice):
    seed = pyotp.random_base32()
    key, _totp = make_totp(alice, seed=seed)
    site = api_client.Session(live_server.url)
    site.sign_in("alice", PASSWORD)
    assert site.cookie("sessionid") and site.cookie("csrftoken")
    status = site.status()
    assert status["has_keys"] is True and status["verified"] == []
    answer = site.totp_authenticate(api_client.totp(seed))
    assert answer["verified"] is True and answer["next"]
    (verified,) = site.status()["verified"]
    assert (verified["type"], verified["key_id"]) == ("TOTP", key.pk)
    assert Event.objects.filter(kind="key_used", user=alice, key_id=key.pk).count() == 1


def test_the_script_end_to_end(live_server, alice):
    seed = pyotp.random_base32()
    make_totp(alice, seed=seed)
    code, out = run(live_server, "--totp-secret", seed)
    assert code == 0, out
    assert f"Signed in to {live_server.url} as alice." in out
    assert "Verified factors: ['TOTP']" in out.splitlines()[-1]


def test_the_script_enrols_a_first_key(live_server, alice):
    code, out = run(live_server)
    assert code == 0 and "run again with --enrol" in out and not Key.objects.filter(user=alice).exists()
    code, out = run(live_server, "--enrol")
    assert code == 0, out
    key = Key.objects.get(user=alice, confirmed=True)
    assert (key.type, key.name) == ("TOTP", "api_client.py")
    assert "Put this secret into your authenticator app: " in out


def test_a_wrong_password_is_told(live_server, alice):
    with pytest.raises(api_client.SignInFailed, match="wrong username or password"):
        api_client.Session(live_server.url).sign_in("alice", "not-the-password")
    out = io.StringIO()
    assert api_client.main(["--url", live_server.url, "--username", "alice", "--password", "nope"], out) == 1
    assert "Could not sign in: the login form answered 200: wrong username or password?" in out.getvalue()


def test_api_errors_reach_the_client(live_server, alice):
    seed = pyotp.random_base32()
    make_totp(alice, seed=seed)
    site = api_client.Session(live_server.url)
    with pytest.raises(api_client.ApiError) as anonymous:
        site.status()
    assert anonymous.value.status == 401
    site.sign_in("alice", PASSWORD)
    wrong = f"{(int(api_client.totp(seed)) + 1) % 1_000_000:06d}"
    with pytest.raises(api_client.ApiError) as refused:
        site.totp_authenticate(wrong)
    assert (refused.value.status, refused.value.code) == (400, "invalid_code")
    assert refused.value.errors[0]["attempts_left"] == 19


def test_without_the_csrf_header_the_api_refuses(live_server, alice):
    """What the recipe's X-CSRFToken is for: the same call without it is a 403."""
    site = api_client.Session(live_server.url)
    site.sign_in("alice", PASSWORD)
    status, _headers, body = site.request(
        "POST",
        site.api_path + "totp/begin",
        b"{}",
        {"Accept": "application/json", "Content-Type": "application/json"},
    )
    assert status == 403 and json.loads(body)["errors"][0]["code"] == "csrf_failed"
