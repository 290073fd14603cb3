"""``MultifactorEnforcementMiddleware`` and ``MULTIFACTOR["REQUIRE"]``: who must use MFA site-wide, the enrolment
grace period, exemptions (never a redirect loop), JSON 401s, and no query for a verified user.

This module is also the URLconf of its tests (``pytest.mark.urls(__name__)``)."""

from __future__ import annotations

import datetime
import json
import re

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from django.utils import timezone
from django.utils.formats import date_format

from multifactor.middleware import multifactor_exempt
from multifactor.models import Key
from tests import admin_site
from tests.conftest import CsrfClient, make_totp, verify_totp
from tests.mfa_helpers import action_url, mfa_state

pytestmark = pytest.mark.urls(__name__)

MIDDLEWARE = "multifactor.middleware.MultifactorEnforcementMiddleware"
ADD = "/multifactor/add/"
AUTHENTICATE = "/multifactor/authenticate/"
User = get_user_model()


def page(request, rest=""):
    return HttpResponse("page")


@login_required
def mine(request):
    return HttpResponse(f"hello {request.user.get_username()}")


def api_data(request):
    return JsonResponse({"ok": True})


def on_the_bank_list(user):
    """MULTIFACTOR["REQUIRE"]["predicate"] in these tests."""
    return user.email.endswith("@bank.example")


urlpatterns = [
    path("multifactor/", include("multifactor.urls")),
    path("admin/", admin.site.urls),
    path("staff-admin/", admin_site.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="tests/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("page/", page, name="page"),
    path("mine/", mine, name="mine"),
    path("api/data", api_data, name="api-data"),
    path("health/", page, name="health"),
    path("public/<path:rest>", page),
    path("exempt/", multifactor_exempt(page), name="exempt"),
    path("static/<path:rest>", page),
    path("media/<path:rest>", page),
    path("", include("tests.views")),  # /f0/, /f1/, /plain/, /done/, /messages/
]


@pytest.fixture
def require(settings):
    """Switch the middleware on; ``require(**rules)`` sets MULTIFACTOR["REQUIRE"]."""
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]
    settings.MEDIA_URL = "/media/"

    def configure(**rules):
        settings.MULTIFACTOR = {**settings.MULTIFACTOR, "REQUIRE": rules}

    return configure


def signed_in(user):
    client = CsrfClient()
    client.force_login(user)
    return client


def messages_of(client):
    return json.loads(client.get("/messages/").content)["messages"]


@pytest.fixture
def staff(db):
    return User.objects.create_user("staffer", "staff@example.com", "pw", is_staff=True)


@pytest.fixture
def plain(db):
    return User.objects.create_user("plain", "plain@example.com", "pw")


# -- users who must enrol are sent to enrol -----------------------------------------------------------------

NOT_EXEMPT = ["/page/", "/mine/", "/admin/", "/admin/auth/user/", "/staff-admin/", "/api/data", "/plain/", "/done/"]


@pytest.mark.parametrize("url", NOT_EXEMPT)
def test_staff_without_keys_is_sent_to_enrol_on_every_non_exempt_url(require, staff, url):
    require(staff=True)
    client = signed_in(staff)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == ADD
    assert mfa_state(client).next_url == url
    assert client.post(url, {"x": "1"})["Location"] == ADD


def test_a_decorated_view_does_not_lower_the_floor(require, staff):
    """``multifactor_protected(factors=0)`` asks for nothing; the site-wide rule still applies."""
    require(staff=True)
    assert signed_in(staff).get("/f0/")["Location"] == ADD


def test_enrolling_lets_the_user_through_and_back(require, staff):
    import pyotp

    require(staff=True)
    client = signed_in(staff)
    assert client.get("/mine/")["Location"] == ADD
    assert client.get(ADD).status_code == 200
    page = client.get("/multifactor/totp/new/")
    assert page.status_code == 200
    response = client.post("/multifactor/totp/new/", {"answer": pyotp.TOTP(page.context["secret"]).now()})
    assert response.status_code == 302
    assert client.get("/mine/").status_code == 200


def test_a_user_with_keys_is_challenged_then_passes(require, staff):
    require(staff=True)
    key, totp = make_totp(staff)
    client = signed_in(staff)
    assert client.get("/mine/")["Location"] == AUTHENTICATE
    response = verify_totp(client, totp)
    assert response.status_code == 302 and response["Location"] == "/mine/"
    assert client.get("/mine/").status_code == 200


def test_two_factors_required(require, staff):
    require(staff=True, factors=2)
    key, totp = make_totp(staff)
    other_key, other_totp = make_totp(staff, name="tablet")
    client = signed_in(staff)
    verify_totp(client, totp)
    assert client.get("/mine/")["Location"] == AUTHENTICATE
    response = client.post("/multifactor/totp/auth/", {"answer": other_totp.now()})
    assert response.status_code == 302
    assert {v.key_id for v in mfa_state(client).verifications} == {key.pk, other_key.pk}
    assert client.get("/mine/").status_code == 200


# -- the grace period --------------------------------------------------------------------------------------


def test_grace_until_lets_users_pass_with_one_warning_showing_the_deadline(require, staff):
    require(staff=True, grace_until="2099-01-31")
    client = signed_in(staff)
    for url in ("/page/", "/mine/", "/api/data", "/page/"):  # pages that do not show (and so consume) messages
        assert client.get(url).status_code == 200, url
    (message,) = messages_of(client)
    deadline = timezone.make_aware(datetime.datetime(2099, 1, 31, 23, 59, 59, 999999))
    assert message["level"] == "warning"
    assert message["message"] == (
        "You must set up multi-factor authentication before "
        f"{date_format(timezone.localtime(deadline), 'DATETIME_FORMAT')}."
    )
    assert "Jan. 31, 2099" in message["message"]
    assert client.get("/page/").status_code == 200
    assert messages_of(client) == []  # told once per session


def test_grace_until_accepts_a_datetime(require, staff):
    require(staff=True, grace_until="2099-01-31T12:00:00+00:00")
    client = signed_in(staff)
    assert client.get("/page/").status_code == 200
    (message,) = messages_of(client)
    deadline = datetime.datetime(2099, 1, 31, 12, tzinfo=datetime.timezone.utc)
    assert date_format(timezone.localtime(deadline), "DATETIME_FORMAT") in message["message"]


@pytest.mark.parametrize("until", ["2001-01-01", "2001-01-01T00:00:00Z", "2099-02-30", "soon"])
def test_after_grace_until_or_with_a_bad_date_users_are_sent_to_enrol(require, staff, until):
    require(staff=True, grace_until=until)
    assert signed_in(staff).get("/page/")["Location"] == ADD


@pytest.mark.parametrize("until", ["2099-01-31", "2099-01-31T12:00:00+00:00"])
def test_grace_works_without_time_zone_support(require, staff, settings, until):
    settings.USE_TZ = False
    require(staff=True, grace_until=until, grace_period=86400)
    client = signed_in(staff)
    assert client.get("/page/").status_code == 200
    (message,) = messages_of(client)
    assert "2099" in message["message"]
    require(staff=True, grace_until="2001-01-01", grace_period=86400)
    User.objects.filter(pk=staff.pk).update(date_joined=datetime.datetime.now() - datetime.timedelta(days=2))
    assert signed_in(staff).get("/page/")["Location"] == ADD


def test_grace_period_from_date_joined(require, staff):
    require(staff=True, grace_period=7 * 86400)
    joined = timezone.now() - datetime.timedelta(days=2)
    User.objects.filter(pk=staff.pk).update(date_joined=joined)
    client = signed_in(staff)
    assert client.get("/page/").status_code == 200
    (message,) = messages_of(client)
    expected = date_format(timezone.localtime(joined + datetime.timedelta(days=7)), "DATETIME_FORMAT")
    assert expected in message["message"]


def test_after_the_grace_period_users_are_sent_to_enrol(require, staff):
    require(staff=True, grace_period=7 * 86400, grace_until="2001-01-01")
    User.objects.filter(pk=staff.pk).update(date_joined=timezone.now() - datetime.timedelta(days=8))
    client = signed_in(staff)
    assert client.get("/page/")["Location"] == ADD
    User.objects.filter(pk=staff.pk).update(date_joined=timezone.now() - datetime.timedelta(days=6))
    assert client.get("/page/").status_code == 200  # the later of the two deadlines counts


def test_grace_is_for_enrolling_not_for_skipping_keys_one_has(require, staff):
    require(staff=True, grace_until="2099-01-31")
    make_totp(staff)
    assert signed_in(staff).get("/page/")["Location"] == AUTHENTICATE


def test_grace_does_not_lower_a_decorated_view(require, staff):
    require(staff=True, grace_until="2099-01-31")
    client = signed_in(staff)
    assert client.get("/page/").status_code == 200
    assert client.get("/f1/")["Location"] == ADD  # the view asks for a factor itself


# -- a verified user passes at no cost ----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/mine/", "/admin/", "/admin/auth/user/"])
def test_verified_staff_passes_without_an_extra_query(settings, staff, url):
    staff.is_superuser = True
    staff.save()
    key, totp = make_totp(staff)
    client = signed_in(staff)
    assert verify_totp(client, totp).status_code == 302
    client.get(url)  # warm up (first-use caches: content types, permissions)
    with CaptureQueriesContext(connection) as without:
        assert client.get(url).status_code == 200
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "REQUIRE": {"staff": True, "groups": ["Finance"]}}
    enforced = CsrfClient()  # a new handler, so that it loads the new middleware
    enforced.cookies = client.cookies
    with CaptureQueriesContext(connection) as with_middleware:
        assert enforced.get(url).status_code == 200
    assert sql_of(with_middleware) == sql_of(without)


def sql_of(captured):
    return [re.sub(r"'[^']*'", "?", q["sql"]) for q in captured.captured_queries]  # timestamps differ


def test_a_disabled_key_stops_the_user_on_the_next_request(require, staff):
    require(staff=True)
    key, totp = make_totp(staff)
    client = signed_in(staff)
    verify_totp(client, totp)
    assert client.get("/page/").status_code == 200
    Key.objects.filter(pk=key.pk).update(enabled=False)
    assert client.get("/page/")["Location"] == ADD


def test_a_disabled_key_stops_the_user_with_signed_cookie_sessions(require, settings, staff):
    """The session lives in the browser: the middleware must re-validate it as the decorator does."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    require(staff=True)
    key, totp = make_totp(staff)
    client = signed_in(staff)
    assert verify_totp(client, totp).status_code == 302
    assert client.get("/page/").status_code == 200
    Key.objects.filter(pk=key.pk).update(enabled=False)
    assert client.get("/page/")["Location"] == ADD


# -- exemptions never loop ---------------------------------------------------------------------------------

EXEMPT = [
    "/accounts/login/",
    "/admin/login/",
    "/staff-admin/login/",
    "/multifactor/",
    "/multifactor/add/",
    "/multifactor/help/",
    "/multifactor/authenticate/",
    "/multifactor/totp/new/",
    "/multifactor/api/v1/status",
    "/static/site.css",
    "/media/a.png",
    "/health/",
    "/public/docs/x",
    "/exempt/",
]


@pytest.mark.parametrize("url", EXEMPT)
def test_exempt_urls_are_not_enforced_and_never_loop(require, staff, url):
    require(staff=True, exempt=["health", "/public/"])
    client = signed_in(staff)
    response = client.get(url)
    assert response.get("Location") not in (ADD, AUTHENTICATE), url
    assert client.get(url, follow=True).status_code == 200  # the test client raises on a redirect loop


@pytest.mark.parametrize("url", ["/accounts/logout/", "/admin/logout/", "/staff-admin/logout/"])
def test_logout_is_exempt(require, staff, url):
    require(staff=True)
    client = signed_in(staff)
    response = client.post(url)
    assert response.status_code in (200, 302) and response.get("Location") not in (ADD, AUTHENTICATE)
    assert "_auth_user_id" not in client.session


def test_mfa_pages_for_a_user_with_keys_never_loop(require, staff):
    require(staff=True)
    make_totp(staff)
    response = signed_in(staff).get("/page/", follow=True)
    assert response.status_code == 200
    assert [u for u, _ in response.redirect_chain] == [AUTHENTICATE, "/multifactor/totp/auth/"]


def test_login_url_exempts_only_itself(require, settings, staff):
    settings.LOGIN_URL = "/"  # a site whose home page is its login page
    require(staff=True)
    assert signed_in(staff).get("/page/")["Location"] == ADD


def test_login_url_may_be_a_url_name(require, settings, staff):
    settings.LOGIN_URL = "login"
    require(staff=True)
    assert signed_in(staff).get("/accounts/login/").status_code == 200


# -- JSON clients ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/data", "/page/"])
def test_json_requests_get_a_401(require, staff, url):
    require(staff=True)
    client = signed_in(staff)
    response = client.get(url, headers={"Accept": "application/json"})
    assert response.status_code == 401 and response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["errors"][0]["code"] == "mfa_required" and body["errors"][0]["message"]
    assert body["meta"]["authenticate_url"] == AUTHENTICATE and body["meta"]["enrol_url"] == ADD
    make_totp(staff)
    assert client.get(url, headers={"Accept": "application/json"}).status_code == 401


# -- who is selected ---------------------------------------------------------------------------------------


def test_nobody_is_selected_without_rules(settings, staff):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]
    assert signed_in(staff).get("/page/").status_code == 200


def test_anonymous_users_pass(require, db):
    require(staff=True, superusers=True, groups=["Finance"], predicate=f"{__name__}.on_the_bank_list")
    client = CsrfClient()
    assert client.get("/page/").status_code == 200
    assert client.get("/mine/")["Location"].startswith("/accounts/login/")


def test_superusers(require, staff, plain):
    require(superusers=True)
    root = User.objects.create_superuser("root", "root@example.com", "pw")
    assert signed_in(root).get("/page/")["Location"] == ADD
    assert signed_in(staff).get("/page/").status_code == 200
    assert signed_in(plain).get("/page/").status_code == 200


def test_staff(require, staff, plain):
    require(staff=True)
    assert signed_in(staff).get("/page/")["Location"] == ADD
    assert signed_in(plain).get("/page/").status_code == 200


def test_groups(require, staff, plain):
    require(groups=["Finance", "Payroll"])
    plain.groups.add(Group.objects.create(name="Payroll"))
    Group.objects.create(name="Finance")
    staff.groups.add(Group.objects.create(name="Marketing"))
    assert signed_in(plain).get("/page/")["Location"] == ADD
    assert signed_in(staff).get("/page/").status_code == 200


def test_predicate(require, staff, plain):
    require(predicate=f"{__name__}.on_the_bank_list")
    banker = User.objects.create_user("banker", "teller@bank.example", "pw")
    assert signed_in(banker).get("/page/")["Location"] == ADD
    assert signed_in(staff).get("/page/").status_code == 200
    assert signed_in(plain).get("/page/").status_code == 200


def test_non_selected_users_pass_with_keys_unverified(require, plain):
    require(staff=True)
    make_totp(plain)
    assert signed_in(plain).get("/page/").status_code == 200


def test_a_user_who_must_use_mfa_cannot_remove_their_last_key(require, staff):
    require(staff=True)
    key, totp = make_totp(staff)
    client = signed_in(staff)
    verify_totp(client, totp)
    client.post(action_url("delete_factor", key.pk))
    assert Key.objects.filter(pk=key.pk).exists()
    client.post(action_url("toggle_factor", key.pk))
    assert Key.objects.get(pk=key.pk).enabled
    response = client.api("patch", f"/multifactor/api/v1/keys/{key.pk}", {"enabled": False})
    assert response.status_code == 409 and response.json()["errors"][0]["code"] == "mfa_required_by_policy"
    second, _ = make_totp(staff, name="second")
    client.post(action_url("delete_factor", key.pk))  # with another key left, it may go
    assert not Key.objects.filter(pk=key.pk).exists() and Key.objects.filter(pk=second.pk).exists()
