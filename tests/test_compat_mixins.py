"""0.9.x's mixins from ``multifactor.mixins`` (``MultiFactorMixin``, ``RequireMultiAuthMixin``,
``PreferMultiAuthMixin``): their attributes and redirects through real requests, sync and async, decided by the
library's policy (so BYPASS, revocation, JSON answers and the return to the page behave as with the decorator)."""

import json

import pytest
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpResponse, JsonResponse
from django.urls import include, path
from django.views import View

from multifactor.mixins import MultiFactorMixin, PreferMultiAuthMixin, RequireMultiAuthMixin
from tests.conftest import CsrfClient, make_totp, verify_totp
from tests.mfa_helpers import mf_settings

pytestmark = [pytest.mark.urls(__name__), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

AUTHENTICATE = "/admin/multifactor/authenticate/"
ADD = "/admin/multifactor/add/"


def attributes(view):
    return JsonResponse(
        {
            "has_multifactor": view.has_multifactor,
            "active": [list(f[:2]) for f in view.active_factors],
            "factors": sorted(k.key_type for k in view.factors),
            "bypass": view.bypass,
        }
    )


class Require(LoginRequiredMixin, RequireMultiAuthMixin, View):
    def get(self, request):
        return attributes(self)


class Prefer(LoginRequiredMixin, PreferMultiAuthMixin, View):
    def get(self, request):
        return attributes(self)


class Attributes(MultiFactorMixin, View):
    def get(self, request):
        return attributes(self)


class AsyncRequire(RequireMultiAuthMixin, View):
    async def get(self, request):
        return HttpResponse("async ok")


def bypass(request):
    return request.headers.get("X-Bypass") == "1"


urlpatterns = [
    path("admin/multifactor/", include("multifactor.urls")),
    path("require/", Require.as_view()),
    path("prefer/", Prefer.as_view()),
    path("attributes/", Attributes.as_view()),
    path("async-require/", AsyncRequire.as_view()),
]


def body(response):
    assert response.status_code == 200, (response.status_code, response.get("Location"))
    return json.loads(response.content)


def test_require_sends_a_user_without_keys_to_add_one(signed_in):
    response = signed_in.get("/require/")
    assert response.status_code == 302 and response["Location"] == ADD


def test_require_challenges_a_user_with_keys_and_returns_to_the_page(signed_in, user, totp_key):
    key, totp = totp_key
    assert signed_in.get("/require/")["Location"] == AUTHENTICATE
    response = verify_totp(signed_in, totp)
    assert response["Location"] == "/require/"
    assert body(signed_in.get("/require/")) == {
        "has_multifactor": True,
        "active": [["TOTP", key.pk]],
        "factors": ["TOTP"],
        "bypass": False,
    }


def test_prefer_lets_users_without_keys_through_and_challenges_the_others(signed_in, user):
    assert body(signed_in.get("/prefer/"))["has_multifactor"] is False
    make_totp(user)
    assert signed_in.get("/prefer/")["Location"] == AUTHENTICATE


def test_a_disabled_key_is_in_factors_but_obliges_nothing(signed_in, user):
    key, _ = make_totp(user)
    key.enabled = False
    key.save()
    signed_in.get("/admin/multifactor/totp/new/")  # a pending enrolment is not one of the user's keys
    assert body(signed_in.get("/prefer/")) == {
        "has_multifactor": False,
        "active": [],
        "factors": ["TOTP"],
        "bypass": False,
    }
    assert signed_in.get("/require/")["Location"] == ADD


def test_multifactor_mixin_only_describes(signed_in, user):
    make_totp(user)
    assert body(signed_in.get("/attributes/"))["has_multifactor"] is True  # no challenge
    assert body(CsrfClient().get("/attributes/")) == {
        "has_multifactor": False,
        "active": [],
        "factors": [],
        "bypass": False,
    }


def test_bypass(signed_in, user):
    make_totp(user)
    with mf_settings(BYPASS=f"{__name__}.bypass"):
        assert body(signed_in.get("/require/", headers={"X-Bypass": "1"}))["bypass"] is True
        assert signed_in.get("/require/")["Location"] == AUTHENTICATE


def test_disabling_the_verified_key_challenges_again(signed_in, user, totp_key):
    key, totp = totp_key
    make_totp(user, name="spare")
    verify_totp(signed_in, totp)
    assert signed_in.get("/require/").status_code == 200
    key.enabled = False
    key.save()
    assert signed_in.get("/require/")["Location"] == AUTHENTICATE


def test_a_json_request_gets_the_401_the_decorator_gives(signed_in, user):
    make_totp(user)
    response = signed_in.get("/require/", headers={"Accept": "application/json"})
    assert response.status_code == 401 and json.loads(response.content)["errors"][0]["code"] == "mfa_required"


def test_async_views(signed_in, user, totp_key):
    _, totp = totp_key
    response = CsrfClient().get("/async-require/")
    assert response.content == b"async ok", response  # anonymous: pair it with login_required
    assert signed_in.get("/async-require/")["Location"] == AUTHENTICATE
    verify_totp(signed_in, totp)
    assert signed_in.get("/async-require/").content == b"async ok"
