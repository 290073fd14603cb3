"""The JSON API: every failure is ``{"errors": [...]}`` JSON with the right status, never HTML or a 500;
the shapes of ``status`` and ``keys``; PATCH and DELETE on keys."""

import datetime
import json

import pytest

from multifactor.models import Key
from tests.conftest import CsrfClient, make_totp, verify_totp
from tests.mfa_helpers import API, data, error_codes

pytestmark = pytest.mark.django_db

WRITES = [
    ("post", "totp/begin", None),
    ("post", "totp/activate", {"code": "123456"}),
    ("post", "totp/authenticate", {"code": "123456"}),
    ("patch", "keys/{pk}", {"name": "x"}),
    ("delete", "keys/{pk}", None),
]
READS = [("get", "status"), ("get", "keys"), ("get", "keys/{pk}")]


@pytest.fixture
def key_pk(totp_key):
    return totp_key[0].pk


@pytest.fixture
def verified_api(signed_in, user):
    """A verified user with two keys: (client, key A, key B)."""
    (a, totp_a), (b, _) = make_totp(user, "A"), make_totp(user, "B")
    assert verify_totp(signed_in, totp_a).status_code == 302
    return signed_in, a, b


def iso(value):
    return datetime.datetime.fromisoformat(value)


# -- CSRF, authentication, methods -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_csrf_missing_is_403_json(signed_in, key_pk, method, path, body):
    r = signed_in.api(method, API + path.format(pk=key_pk), body, csrf=False)
    assert r.status_code == 403
    assert error_codes(r) == ["csrf_failed"]
    assert Key.objects.filter(pk=key_pk, name="phone").exists()


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_csrf_wrong_token_is_403_json(signed_in, key_pk, method, path, body):
    r = signed_in.api(method, API + path.format(pk=key_pk), body, csrf=False, headers={"X-CSRFToken": "x" * 32})
    assert r.status_code == 403 and error_codes(r) == ["csrf_failed"]


def test_csrf_missing_for_anonymous_is_403_json(client):
    r = client.api("post", API + "totp/authenticate", {"code": "123456"}, csrf=False)
    assert r.status_code == 403 and error_codes(r) == ["csrf_failed"]


@pytest.mark.parametrize(("method", "path", "body"), WRITES + [(m, p, None) for m, p in READS])
def test_anonymous_is_401_json(client, key_pk, method, path, body):
    r = client.api(method, API + path.format(pk=key_pk), body)
    assert r.status_code == 401
    assert error_codes(r) == ["not_authenticated"]
    assert Key.objects.filter(pk=key_pk, name="phone", enabled=True).exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "totp/begin"),
        ("get", "totp/activate"),
        ("get", "totp/authenticate"),
        ("post", "status"),
        ("delete", "status"),
        ("post", "keys"),
        ("delete", "keys"),
        ("put", "keys/{pk}"),
        ("post", "keys/{pk}"),
        ("patch", "totp/begin"),
    ],
)
def test_method_not_allowed_is_405_json(signed_in, key_pk, method, path):
    r = signed_in.api(method, API + path.format(pk=key_pk), None if method == "get" else {})
    assert r.status_code == 405
    assert error_codes(r) == ["method_not_allowed"]


def test_method_not_allowed_for_anonymous_is_json(client):
    r = client.api("get", API + "totp/begin")
    assert r.status_code in (401, 405)
    error_codes(r)


# -- bad bodies --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["{", "not json", '{"code": }', "\xff\xfe", "{'code': '1'}", "[1,", "NaN garbage"])
def test_bad_json_is_400(signed_in, totp_key, raw):
    r = signed_in.post(
        API + "totp/authenticate", raw, content_type="application/json", headers={"Accept": "application/json"}
    )
    assert r.status_code == 400
    assert error_codes(r) == ["invalid_json"]


def test_invalid_utf8_is_400(signed_in, totp_key):
    r = signed_in.post(API + "totp/authenticate", b"\xff\xfe\xfa", content_type="application/json")
    assert r.status_code == 400 and error_codes(r) == ["invalid_json"]


@pytest.mark.parametrize("body", [[1, 2], "123456", 123456, None, True, []])
def test_non_object_body_is_400(signed_in, totp_key, body):
    raw = json.dumps(body)
    r = signed_in.post(API + "totp/authenticate", raw, content_type="application/json")
    assert r.status_code == 400
    assert error_codes(r) == ["invalid_json"]


@pytest.mark.parametrize("code", [123456, 12.5, ["123456"], {"a": 1}, True, None])
@pytest.mark.parametrize("path", ["totp/authenticate", "totp/activate"])
def test_wrong_code_type_is_400_with_param(signed_in, totp_key, path, code):
    if path == "totp/activate":
        signed_in.api("post", API + "totp/begin")
    r = signed_in.api("post", API + path, {"code": code})
    assert r.status_code == 400
    body = r.json()
    assert body["errors"][0]["code"] in ("invalid", "invalid_code")
    assert body["errors"][0]["param"] == "code"


def test_missing_body_is_400_with_param(signed_in, totp_key):
    r = signed_in.post(API + "totp/authenticate", "", content_type="application/json")
    assert r.status_code == 400 and r.json()["errors"][0]["param"] == "code"


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12345a", "1" * 10000, "１２３"])
def test_malformed_code_string_is_400_with_param(signed_in, totp_key, code):
    r = signed_in.api("post", API + "totp/authenticate", {"code": code})
    assert r.status_code == 400
    assert r.json()["errors"][0]["param"] == "code"


@pytest.mark.parametrize(
    "body",
    [
        {"name": 5},
        {"name": ["x"]},
        {"enabled": "false"},
        {"enabled": 0},
        {"enabled": 1},
        {"name": "x", "enabled": "no"},
    ],
)
def test_patch_wrong_types_is_400_with_param(verified_api, body):
    client, a, _b = verified_api
    r = client.api("patch", API + f"keys/{a.pk}", body)
    assert r.status_code == 400
    item = r.json()["errors"][0]
    assert item["code"] == "invalid" and item["param"] in body
    a.refresh_from_db()
    assert a.name == "A" and a.enabled


def test_patch_name_too_long_is_400(verified_api):
    client, a, _b = verified_api
    r = client.api("patch", API + f"keys/{a.pk}", {"name": "x" * 65})
    assert r.status_code == 400 and r.json()["errors"][0]["param"] == "name"
    a.refresh_from_db()
    assert a.name == "A"


def test_activate_wrong_name_type_is_400(signed_in, user):
    signed_in.api("post", API + "totp/begin")
    r = signed_in.api("post", API + "totp/activate", {"code": "123456", "name": 7})
    assert r.status_code == 400 and r.json()["errors"][0]["param"] == "name"


# -- unknown ids -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ident", ["99999", "abc", "-1", "0", "9" * 19, "9" * 40, "1.0", "１", "%20"])
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_unknown_key_is_404_json(verified_api, method, ident):
    client, _a, _b = verified_api
    r = client.api(method, API + f"keys/{ident}", {"name": "x"} if method == "patch" else None)
    assert r.status_code == 404
    assert error_codes(r) == ["not_found"]


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_another_users_key_is_404_json(verified_api, django_user_model, method):
    client, _a, _b = verified_api
    other = django_user_model.objects.create_user("mallory", "m@example.com", "pw")
    theirs, _ = make_totp(other, "theirs")
    r = client.api(method, API + f"keys/{theirs.pk}", {"enabled": False} if method == "patch" else None)
    assert r.status_code == 404 and error_codes(r) == ["not_found"]
    theirs.refresh_from_db()
    assert theirs.enabled


def test_pending_key_is_404(signed_in, user):
    signed_in.api("post", API + "totp/begin")
    pending = Key.objects.get(user=user, confirmed=False)
    assert signed_in.api("get", API + f"keys/{pending.pk}").status_code == 404
    assert signed_in.api("delete", API + f"keys/{pending.pk}").status_code == 404


# -- status and keys ---------------------------------------------------------------------------------------


def test_status_shape_unverified_without_keys(signed_in):
    r = signed_in.api("get", API + "status")
    assert r.status_code == 200
    body = data(r)
    assert set(body) == {"verified", "has_keys", "types", "fallbacks"}
    assert body["verified"] == [] and body["has_keys"] is False
    assert "TOTP" in body["types"] and all(isinstance(t, str) for t in body["types"])
    assert body["fallbacks"] == ["email"]


def test_status_shape_verified(verified_api):
    client, a, _b = verified_api
    body = data(client.api("get", API + "status"))
    assert body["has_keys"] is True
    [v] = body["verified"]
    assert set(v) == {"type", "key_id", "verified_at", "expires_at"}
    assert (v["type"], v["key_id"]) == ("TOTP", a.pk)
    verified_at, expires_at = iso(v["verified_at"]), iso(v["expires_at"])
    assert verified_at.tzinfo is not None
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - verified_at).total_seconds()) < 60
    assert 3 * 3600 - 60 <= (expires_at - verified_at).total_seconds() <= 6 * 3600


def test_keys_shape(verified_api, user):
    client, a, b = verified_api
    body = data(client.api("get", API + "keys"))
    assert [k["id"] for k in body] == [a.pk, b.pk]
    for item in body:
        assert set(item) == {"id", "type", "name", "enabled", "created_at", "last_used_at"}
        assert item["type"] == "TOTP" and item["enabled"] is True
        iso(item["created_at"])
    assert body[0]["name"] == "A" and iso(body[0]["last_used_at"])
    assert body[1]["last_used_at"] is None
    assert data(client.api("get", API + f"keys/{a.pk}")) == body[0]


def test_keys_only_own_and_confirmed(signed_in, user, django_user_model):
    other = django_user_model.objects.create_user("mallory", "m@example.com", "pw")
    make_totp(other)
    signed_in.api("post", API + "totp/begin")  # pending
    assert data(signed_in.api("get", API + "keys")) == []


# -- PATCH and DELETE --------------------------------------------------------------------------------------


def test_patch_name_and_enabled(verified_api):
    client, _a, b = verified_api
    r = client.api("patch", API + f"keys/{b.pk}", {"name": "  Backup  "})
    assert r.status_code == 200 and data(r)["name"] == "Backup"
    r = client.api("patch", API + f"keys/{b.pk}", {"enabled": False})
    assert r.status_code == 200 and data(r)["enabled"] is False
    b.refresh_from_db()
    assert b.enabled is False and b.name == "Backup"
    r = client.api("patch", API + f"keys/{b.pk}", {"enabled": True, "name": "B2"})
    assert r.status_code == 200 and (data(r)["enabled"], data(r)["name"]) == (True, "B2")
    r = client.api("patch", API + f"keys/{b.pk}", {})
    assert r.status_code == 400 and error_codes(r) == ["invalid"]  # nothing to change is bad input


def test_patch_without_reauthentication_changes_nothing(signed_in, user):
    a, _ = make_totp(user, "A")
    r = signed_in.api("patch", API + f"keys/{a.pk}", {"name": "renamed", "enabled": False})
    assert r.status_code == 403 and error_codes(r) == ["reauthentication_required"]
    a.refresh_from_db()
    assert (a.name, a.enabled) == ("A", True)


def test_rename_alone_needs_no_reauthentication(signed_in, user):
    a, _ = make_totp(user, "A")
    r = signed_in.api("patch", API + f"keys/{a.pk}", {"name": "renamed"})
    assert r.status_code == 200 and data(r)["name"] == "renamed"


def test_delete_is_204(verified_api):
    client, _a, b = verified_api
    r = client.api("delete", API + f"keys/{b.pk}")
    assert r.status_code == 204 and r.content == b""
    assert not Key.objects.filter(pk=b.pk).exists()
    r = client.api("delete", API + f"keys/{b.pk}")
    assert r.status_code == 404 and error_codes(r) == ["not_found"]


def test_delete_verified_key_ends_its_verification(verified_api):
    client, a, _b = verified_api
    assert client.api("delete", API + f"keys/{a.pk}").status_code == 204
    assert data(client.api("get", API + "status"))["verified"] == []
    assert client.get("/f1/", headers={"Accept": "application/json"}).status_code == 401


def test_mfa_required_json_for_protected_api_view(signed_in, totp_key):
    r = signed_in.get("/api/thing", headers={"Accept": "application/json"})
    assert r.status_code == 401
    assert error_codes(r) == ["mfa_required"]
    assert r.json()["meta"]["authenticate_url"] == "/multifactor/authenticate/"


def test_no_html_and_no_500_for_a_battery_of_requests(signed_in, user, totp_key):
    """A sweep over every endpoint, method and some odd bodies: JSON (or an empty 204) every time."""
    other = CsrfClient()
    bodies = [None, {}, {"code": "12"}, {"code": "123456", "name": "n"}, {"enabled": None}, {"name": None}]
    paths = ["status", "keys", f"keys/{totp_key[0].pk}", "keys/x", "totp/begin", "totp/activate", "totp/authenticate"]
    for c in (signed_in, other):
        for path in paths:
            for method in ("get", "post", "patch", "delete", "put"):
                for body in [None] if method == "get" else bodies:
                    r = c.api(method, API + path, body)
                    assert r.status_code < 500, (method, path, body, r.status_code)
                    if r.status_code != 204:
                        assert r["Content-Type"].startswith("application/json"), (method, path, body)
                    assert b"<html" not in r.content.lower()
