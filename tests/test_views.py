"""The HTML pages: home, action, rename, add, authenticate; bad input never gives a 500; the
re-authentication window (R8); FACTORS refusing a type at its endpoints."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from multifactor.models import DisabledFallback, Key
from tests.conftest import CsrfClient, make_totp
from tests.mfa_helpers import (
    ADD,
    API,
    AUTHENTICATE,
    HELP,
    HOME,
    LOGIN,
    TOTP_AUTH,
    TOTP_NEW,
    action_url,
    age_verifications,
    error_codes,
    mf_settings,
    rename_url,
)

pytestmark = pytest.mark.django_db

REAUTH_REFUSED = "Verify with one of your existing factors first"


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def stranger_key(django_user_model):
    other = django_user_model.objects.create_user("mallory", "m@example.com", "pw")
    key, _totp = make_totp(other, "Mallory's")
    return key


# -- home --------------------------------------------------------------------------------------------------


def test_home_lists_keys_and_marks_verified(verified_two, two_keys):
    (a, _), (b, _) = two_keys
    r = verified_two.get(HOME)
    assert r.status_code == 200
    html = r.content.decode()
    assert "Phone" in html and "Tablet" in html
    assert list(r.context["keys"]) == [a, b]
    assert r.context["verified_ids"] == {a.pk}
    assert r.context["can_edit"] is True
    assert action_url("toggle_factor", b.pk) in html
    assert reverse("multifactor:delete", args=[b.pk]) in html  # deleting asks first (tests/test_pages.py)


def test_home_lists_no_pending_or_foreign_keys(signed_in, user, stranger_key):
    signed_in.get(TOTP_NEW)  # a pending enrolment
    r = signed_in.get(HOME)
    assert list(r.context["keys"]) == []
    assert "Mallory" not in r.content.decode()


def test_post_to_home_is_405(verified_two):
    assert verified_two.post(HOME).status_code == 405


# -- actions -----------------------------------------------------------------------------------------------


def test_toggle_factor_disables_and_enables(verified_two, two_keys):
    _a, (b, _) = two_keys
    r = verified_two.post(action_url("toggle_factor", b.pk))
    assert r.status_code == 302 and r["Location"] == HOME
    b.refresh_from_db()
    assert b.enabled is False
    assert any("disabled" in m for m in messages_of(r))
    r = verified_two.post(action_url("toggle_factor", b.pk))
    b.refresh_from_db()
    assert b.enabled is True
    assert any("enabled" in m for m in messages_of(r))


def test_delete_factor(verified_two, two_keys):
    _a, (b, _) = two_keys
    r = verified_two.post(action_url("delete_factor", b.pk))
    assert r.status_code == 302 and r["Location"] == HOME
    assert not Key.objects.filter(pk=b.pk).exists()
    assert any("deleted" in m for m in messages_of(r))


def test_rename(verified_two, two_keys):
    (a, _), _b = two_keys
    r = verified_two.post(rename_url(a.pk), {"name": "  Old phone  "})
    assert r.status_code == 302
    a.refresh_from_db()
    assert a.name == "Old phone"
    r = verified_two.post(rename_url(a.pk), {"name": "x" * 65})
    assert r.status_code == 302
    a.refresh_from_db()
    assert a.name == "Old phone"
    assert messages_of(r)


def test_rename_escapes_the_name(verified_two, two_keys):
    (a, _), _b = two_keys
    verified_two.post(rename_url(a.pk), {"name": "<script>alert(1)</script>"})
    html = verified_two.get(HOME).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_toggle_fallback(verified_two, user):
    r = verified_two.post(action_url("toggle_fallback", "email"))
    assert r.status_code == 302
    assert DisabledFallback.objects.filter(user=user, fallback="email").exists()
    home = verified_two.get(HOME)
    assert ("email", False, "alice@example.com") in home.context["fallbacks"]
    verified_two.post(action_url("toggle_fallback", "email"))
    assert not DisabledFallback.objects.filter(user=user, fallback="email").exists()


def test_toggle_fallback_needs_reauthentication(signed_in, user, two_keys):
    """Switching a fallback on or off changes how the account can be verified: like a key (R8)."""
    r = signed_in.post(action_url("toggle_fallback", "email"))
    assert r.status_code == 302
    assert not DisabledFallback.objects.filter(user=user).exists()
    assert any(REAUTH_REFUSED in m for m in messages_of(r))


def test_unknown_fallback_404(verified_two):
    assert verified_two.post(action_url("toggle_fallback", "carrier-pigeon")).status_code == 404


@pytest.mark.parametrize("action", ["explode", "do_toggle_factor", "post", "dispatch", "__init__", "toggle-factor"])
def test_unknown_action_404(verified_two, two_keys, action):
    (a, _), _b = two_keys
    assert verified_two.post(action_url(action, a.pk)).status_code == 404
    a.refresh_from_db()
    assert a.enabled


BAD_IDENTS = ["abc", "99999", "-1", "0", "1.5", "1e3", "9" * 19, "9" * 40, "０", "１", "٣", " 1", "1_0", "%00", "None"]


@pytest.mark.parametrize("action", ["toggle_factor", "delete_factor"])
@pytest.mark.parametrize("ident", BAD_IDENTS)
def test_bad_ident_404(verified_two, action, ident):
    assert verified_two.post(action_url(action, ident)).status_code == 404


@pytest.mark.parametrize("pk", ["99999", "9" * 19, "9" * 40])
def test_rename_missing_key_404(verified_two, pk):
    assert verified_two.post(rename_url(pk), {"name": "x"}).status_code == 404


@pytest.mark.parametrize("action", ["toggle_factor", "delete_factor"])
def test_another_users_key_404(verified_two, stranger_key, action):
    assert verified_two.post(action_url(action, stranger_key.pk)).status_code == 404
    assert verified_two.post(rename_url(stranger_key.pk), {"name": "mine"}).status_code == 404
    stranger_key.refresh_from_db()
    assert stranger_key.enabled and stranger_key.name == "Mallory's"


@pytest.mark.parametrize(
    "path",
    [
        action_url("toggle_factor", 1),
        action_url("delete_factor", 1),
        action_url("toggle_fallback", "email"),
        # rename_url: a GET shows 0.9.x's rename form (tests/test_compat_templates.py), it changes nothing
    ],
)
def test_get_on_action_urls_405(verified_two, path):
    assert verified_two.get(path).status_code == 405


PAGES = [HOME, ADD, AUTHENTICATE, TOTP_NEW, TOTP_AUTH]
POSTS = [
    HOME,
    TOTP_NEW,
    TOTP_AUTH,
    action_url("toggle_factor", 1),
    action_url("delete_factor", 1),
    action_url("toggle_fallback", "email"),
    action_url("nonsense", "x"),
    rename_url(1),
]


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_get_redirects_to_login(client, path):
    r = client.get(path)
    assert r.status_code == 302
    assert r["Location"].startswith(LOGIN + "?next=")


@pytest.mark.parametrize("path", POSTS)
def test_anonymous_post_redirects_to_login(client, path, totp_key):
    r = client.post(path, {"answer": "123456", "name": "x"})
    assert r.status_code == 302
    assert r["Location"].startswith(LOGIN + "?next=")
    key, _ = totp_key
    key.refresh_from_db()
    assert key.enabled and key.name == "phone"


def test_help_page_is_public(client):
    assert client.get(HELP).status_code == 200


def test_authenticate_page_goes_to_the_only_method(signed_in, totp_key):
    r = signed_in.get(AUTHENTICATE)
    assert r.status_code == 302 and r["Location"] == TOTP_AUTH
    r = signed_in.get(AUTHENTICATE + "?choose=1")
    assert r.status_code == 200


def test_authenticate_page_for_user_without_keys(signed_in):
    r = signed_in.get(AUTHENTICATE)
    assert r.status_code == 200 and r.context["has_keys"] is False


def test_totp_auth_without_keys_is_a_form_error(signed_in):
    r = signed_in.post(TOTP_AUTH, {"answer": "123456"})
    assert r.status_code == 400 and r.context["form"].errors["answer"]


# -- the re-authentication window (R8) ---------------------------------------------------------------------


def test_no_verification_cannot_manage(signed_in, two_keys):
    (a, _), (b, _) = two_keys
    for path in (action_url("toggle_factor", b.pk), action_url("delete_factor", b.pk)):
        r = signed_in.post(path)
        assert r.status_code == 302 and r["Location"] == HOME
        assert any(REAUTH_REFUSED in m for m in messages_of(r))
    b.refresh_from_db()
    assert b.enabled
    r = signed_in.get(ADD)
    assert r.context["can_edit"] is False
    r = signed_in.get(TOTP_NEW)
    assert r.status_code == 302 and r["Location"] == HOME
    assert not Key.objects.filter(confirmed=False).exists()


@pytest.mark.parametrize(("age", "allowed"), [(290, True), (310, False)])
def test_default_reauth_window_is_300_seconds(verified_two, two_keys, age, allowed):
    (a, _), (b, _) = two_keys
    age_verifications(verified_two, age)
    assert verified_two.get("/f1/").content == b"ok"  # still verified for protected pages
    r = verified_two.post(action_url("toggle_factor", b.pk))
    assert r.status_code == 302 and r["Location"] == HOME
    b.refresh_from_db()
    assert b.enabled is (not allowed)
    assert any(REAUTH_REFUSED in m for m in messages_of(r)) is (not allowed)
    r = verified_two.post(action_url("delete_factor", a.pk))
    assert Key.objects.filter(pk=a.pk).exists() is (not allowed)
    r = verified_two.get(TOTP_NEW)
    assert r.status_code == (200 if allowed else 302)
    assert verified_two.get(ADD).context["can_edit"] is allowed


def test_stale_verification_api_refuses(verified_two, two_keys):
    (a, _), (b, _) = two_keys
    age_verifications(verified_two, 301)
    for method, path, body in [
        ("patch", f"keys/{b.pk}", {"enabled": False}),
        ("delete", f"keys/{b.pk}", None),
        ("post", "totp/begin", None),
    ]:
        r = verified_two.api(method, API + path, body)
        assert r.status_code == 403, (method, path)
        assert error_codes(r) == ["reauthentication_required"]
    assert Key.objects.filter(pk=b.pk, enabled=True).exists()


def test_reauth_window_setting(verified_two, two_keys):
    _a, (b, _) = two_keys
    age_verifications(verified_two, 100)
    with mf_settings(REAUTH_WINDOW=60):
        r = verified_two.api("patch", API + f"keys/{b.pk}", {"enabled": False})
        assert r.status_code == 403
    with mf_settings(REAUTH_WINDOW=120):
        r = verified_two.api("patch", API + f"keys/{b.pk}", {"enabled": False})
        assert r.status_code == 200


def test_fresh_verification_allows_managing_again(verified_two, two_keys):
    (_a, _), (b, totp_b) = two_keys
    age_verifications(verified_two, 1000)
    assert verified_two.post(action_url("toggle_factor", b.pk)).status_code == 302
    b.refresh_from_db()
    assert b.enabled
    assert verified_two.post(TOTP_AUTH, {"answer": totp_b.now()}).status_code == 302
    verified_two.post(action_url("toggle_factor", b.pk))
    b.refresh_from_db()
    assert not b.enabled


def test_user_without_keys_may_enrol_first_key(signed_in):
    r = signed_in.get(TOTP_NEW)
    assert r.status_code == 200
    assert signed_in.get(ADD).context["can_edit"] is True
    assert signed_in.api("post", API + "totp/begin").status_code == 200


def test_new_key_while_verified_needs_no_second_verification(verified_two, user):
    import pyotp

    seed = verified_two.get(TOTP_NEW).context["secret"]
    r = verified_two.post(TOTP_NEW, {"answer": pyotp.TOTP(seed).now(), "name": "Third"})
    assert r.status_code == 302
    assert Key.objects.filter(user=user, name="Third", confirmed=True).exists()


# -- FACTORS refuses, not just hides -----------------------------------------------------------------------


def test_factors_without_totp_refuses_enrolment(signed_in, user):
    with mf_settings(FACTORS=["FIDO2"]):
        r = signed_in.get(TOTP_NEW)
        assert r.status_code == 302 and r["Location"] == HOME
        assert any("not available" in m for m in messages_of(r))
        r = signed_in.post(TOTP_NEW, {"answer": "123456"})
        assert r.status_code == 302
        r = signed_in.api("post", API + "totp/begin")
        assert r.status_code == 403 and error_codes(r) == ["factor_not_allowed"]
        r = signed_in.api("post", API + "totp/activate", {"code": "123456"})
        assert r.status_code == 403 and error_codes(r) == ["factor_not_allowed"]
        assert not Key.objects.filter(user=user).exists()
        assert all(f.type != "TOTP" for f in signed_in.get(ADD).context["methods"])
        assert "TOTP" not in signed_in.api("get", API + "status").json()["data"]["types"]


def test_factors_without_totp_refuses_a_pending_enrolment(signed_in, user):
    import pyotp

    seed = signed_in.get(TOTP_NEW).context["secret"]
    with mf_settings(FACTORS=["FIDO2"]):
        r = signed_in.post(TOTP_NEW, {"answer": pyotp.TOTP(seed).now()})
        assert r.status_code == 302
    assert not Key.objects.filter(user=user, confirmed=True).exists()


def test_no_500_anywhere_for_a_plain_user(signed_in, totp_key):
    second = CsrfClient()
    for path in PAGES + [HELP]:
        assert signed_in.get(path).status_code < 500
        assert second.get(path).status_code < 500


def test_a_user_asked_to_verify_can_sign_out_from_the_mfa_pages(signed_in, totp_key):
    page = signed_in.get("/multifactor/authenticate/?choose=1")
    assert 'action="/multifactor/logout/"' in page.content.decode()
    assert signed_in.get("/multifactor/logout/").status_code == 405  # never by a GET
    response = signed_in.post("/multifactor/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in signed_in.session
