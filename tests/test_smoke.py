import pytest

from tests.conftest import verify_totp

pytestmark = pytest.mark.django_db


def test_challenge_then_pass(signed_in, totp_key):
    key, totp = totp_key
    r = signed_in.get("/f1/")
    assert r.status_code == 302 and r["Location"] == "/multifactor/authenticate/"
    r = signed_in.get("/multifactor/authenticate/")
    assert r["Location"] == "/multifactor/totp/auth/"
    r = signed_in.get("/multifactor/totp/auth/")
    assert r.status_code == 200
    r = verify_totp(signed_in, totp)
    assert r.status_code == 302 and r["Location"] == "/f1/"
    assert signed_in.get("/f1/").content == b"ok"
