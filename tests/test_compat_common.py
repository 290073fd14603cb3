"""0.9.x's ``multifactor.common`` helpers and ``multifactor.app_settings.mf_settings``, from their 0.9.x paths,
through real requests: a custom factor written the 0.9.x way (``write_session`` then ``login``) verifies users
whose verification the decorator counts, the session key cycles, and disabling the key ends it."""

import dataclasses
import importlib
import json
import time

import pytest
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.test import override_settings
from django.urls import include, path
from django.utils import translation
from django.utils.translation import gettext_lazy

from multifactor.decorators import multifactor_protected
from multifactor.models import DisabledFallback, Event, Key
from tests.conftest import make_totp, verify_totp
from tests.mfa_helpers import edit_mfa_state
from tests.mfa_helpers import mf_settings as with_multifactor

pytestmark = [pytest.mark.urls(__name__), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

common = importlib.import_module("multifactor.common")
mf_settings = importlib.import_module("multifactor.app_settings").mf_settings


def custom_factor(request):
    """A site's own factor, as 0.9.x custom factors were written: check the answer, ``write_session``, ``login``."""
    if request.method != "POST":
        return common.render(request, "multifactor/help.html", {"custom": True})
    if request.POST.get("answer") != "sesame":
        return HttpResponse("wrong", status=400)
    key = Key.objects.filter(pk=request.POST.get("key")).first() if request.POST.get("key") else None
    try:
        common.write_session(request, key)
    except ValueError as error:
        return HttpResponse(str(error), status=400)
    return common.login(request)


def helpers(request):
    return JsonResponse(
        {
            "has_multifactor": common.has_multifactor(request),
            "active": [list(f) for f in common.active_factors(request)],
            "disabled_fallbacks": list(common.disabled_fallbacks(request)),
            "is_bypassed": common.is_bypassed(request),
        }
    )


def login_callback(request, username):
    return HttpResponse(f"welcome back {username}")


def bypass(request):
    return request.headers.get("X-Bypass") == "1"


def protected(request):
    return HttpResponse("protected ok")


urlpatterns = [
    path("admin/multifactor/", include("multifactor.urls")),
    path("custom/", login_required(custom_factor)),
    path("helpers/", helpers),
    path("protected/", login_required(multifactor_protected(factors=1)(protected))),
    path("protected-2/", login_required(multifactor_protected(factors=2)(protected))),
]


def custom_verify(client, key=None, answer="sesame"):
    return client.post("/custom/", {"answer": answer, "key": key.pk if key else ""})


def expire(state):
    state.verifications = [dataclasses.replace(v, expires_at=time.time() - 1) for v in state.verifications]


def helper_state(client, **headers):
    return json.loads(client.get("/helpers/", headers=headers).content)


# -- write_session, through a custom factor --------------------------------------------------------------


def test_write_session_verifies_as_the_decorator_counts_and_login_returns_to_the_page(signed_in, user):
    key, _ = make_totp(user)
    assert signed_in.get("/protected/")["Location"] == "/admin/multifactor/authenticate/"
    session_before = signed_in.cookies[settings.SESSION_COOKIE_NAME].value
    response = custom_verify(signed_in, key)
    assert response.status_code == 302 and response["Location"] == "/protected/"
    assert signed_in.cookies[settings.SESSION_COOKIE_NAME].value != session_before  # the session key cycled
    assert signed_in.get("/protected/").content == b"protected ok"
    key.refresh_from_db()
    assert key.last_used_at is not None  # as 0.9.x's write_session did
    assert Event.objects.filter(kind="key_used", key_id=key.pk).exists()  # audited like any verification
    (factor,) = helper_state(signed_in)["active"]
    assert factor[:2] == ["TOTP", key.pk] and factor[2] <= time.time() < factor[3]


def test_a_key_verified_by_write_session_is_revoked_like_any_other(signed_in, user):
    key, _ = make_totp(user)
    make_totp(user, name="spare")
    custom_verify(signed_in, key)
    assert signed_in.get("/protected/").status_code == 200
    key.enabled = False
    key.save()  # an admin, a command or another session
    assert signed_in.get("/protected/")["Location"] == "/admin/multifactor/authenticate/"
    assert helper_state(signed_in)["active"] == []


def test_each_key_written_counts_once(signed_in, user):
    first, _ = make_totp(user)
    second, _ = make_totp(user, name="second")
    custom_verify(signed_in, first)
    custom_verify(signed_in, first)
    assert signed_in.get("/protected-2/").status_code == 302
    custom_verify(signed_in, second)
    assert signed_in.get("/protected-2/").status_code == 200


def test_write_session_without_a_key_is_a_fallback_code(signed_in, user):
    make_totp(user)
    custom_verify(signed_in, None)
    assert helper_state(signed_in)["active"][0][:2] == ["FALLBACK", None]
    assert signed_in.get("/protected/").status_code == 200  # it stands in for the user's key
    assert signed_in.get("/protected-2/").status_code == 302  # but once at most


def test_write_session_refuses_another_users_key_or_a_disabled_one(signed_in, user, django_user_model):
    stranger = django_user_model.objects.create_user("mallory", "m@example.com", "pw")
    theirs, _ = make_totp(stranger)
    mine, _ = make_totp(user)
    mine.enabled = False
    mine.save()
    for key in (theirs, mine):
        response = custom_verify(signed_in, key)
        assert response.status_code == 400 and b"enabled key of the signed-in user" in response.content
    assert helper_state(signed_in)["active"] == []


def test_login_without_a_remembered_page_goes_to_login_redirect_url(signed_in, user):
    key, _ = make_totp(user)
    response = custom_verify(signed_in, key)
    assert response["Location"] == settings.LOGIN_REDIRECT_URL  # 0.9.x went to LOGIN_URL


def test_login_calls_login_callback(signed_in, user):
    key, _ = make_totp(user)
    with with_multifactor(LOGIN_CALLBACK=f"{__name__}.login_callback"):
        response = custom_verify(signed_in, key)
    assert response.status_code == 200 and response.content == b"welcome back alice"


def test_login_shows_a_lazy_login_message_in_the_users_language(signed_in, user):
    """0.9's README: wrap a LOGIN_MESSAGE of your own in gettext_lazy. It is accepted and translated."""
    key, _ = make_totp(user)
    message = gettext_lazy('You are now multifactor-authenticated. <a href="{}">Multifactor settings</a>.')
    with with_multifactor(LOGIN_MESSAGE=message), translation.override("de"):
        custom_verify(signed_in, key)
        shown = [str(m) for m in signed_in.get("/admin/multifactor/help/").context["messages"]]
        german = str(message).format("/admin/multifactor/")
    with translation.override("en"):
        english = str(message).format("/admin/multifactor/")
    assert shown == [german] and german != english and 'href="/admin/multifactor/"' in german


def test_render_passes_the_context(signed_in):
    response = signed_in.get("/custom/")
    assert response.status_code == 200 and response.context["custom"] is True


# -- the other helpers -----------------------------------------------------------------------------------


def test_has_multifactor_and_disabled_fallbacks(signed_in, user):
    assert helper_state(signed_in) == {
        "has_multifactor": False,
        "active": [],
        "disabled_fallbacks": [],
        "is_bypassed": False,
    }
    make_totp(user)
    DisabledFallback.objects.create(user=user, fallback="email")
    state = helper_state(signed_in)
    assert state["has_multifactor"] is True and state["disabled_fallbacks"] == ["email"]


def test_anonymous_users_have_no_factors(client):
    assert helper_state(client)["has_multifactor"] is False and helper_state(client)["active"] == []


def test_is_bypassed_asks_bypass(signed_in):
    with with_multifactor(BYPASS=f"{__name__}.bypass"):
        assert helper_state(signed_in, **{"X-Bypass": "1"})["is_bypassed"] is True
        assert helper_state(signed_in)["is_bypassed"] is False


def test_active_factors_drop_expired_verifications_and_say_false_without_recheck(signed_in, user, totp_key):
    key, totp = totp_key
    verify_totp(signed_in, totp)
    (factor,) = helper_state(signed_in)["active"]
    assert factor[:2] == ["TOTP", key.pk]
    edit_mfa_state(signed_in, expire)  # RECHECK's expiry passed
    assert helper_state(signed_in)["active"] == []
    with with_multifactor(RECHECK=False):
        verify_totp(signed_in, totp, key)
    assert helper_state(signed_in)["active"][0][3] is False  # 0.9.x: no expiry without RECHECK


def test_active_factor_tuples_are_indexed_as_in_09():
    factor = common.ActiveFactor("TOTP", 7, 1.0, False)
    assert factor == ("TOTP", 7, 1.0, False) and (factor[0], factor[1], factor[3]) == ("TOTP", 7, False)


def test_next_check_and_method_url():
    soon = common.next_check() - time.time()
    assert 3 * 3600 - 1 <= soon <= 6 * 3600 + 1
    assert [common.method_url(t) for t in ("TOTP", "FIDO2", "RECOVERY")] == [
        "multifactor:totp_auth",
        "multifactor:fido2_auth",
        "multifactor:recovery_auth",
    ]


def test_the_old_paths_warn_and_name_what_replaces_them():
    with pytest.warns(DeprecationWarning, match="multifactor.flows"):
        importlib.reload(common)
    with pytest.warns(DeprecationWarning, match=r"multifactor\.conf\.get\(\)"):
        importlib.reload(importlib.import_module("multifactor.app_settings"))
    with pytest.warns(DeprecationWarning, match="MultifactorRequiredMixin"):
        from multifactor.mixins import RequireMultiAuthMixin  # noqa: F401
    import multifactor.mixins

    with pytest.raises(AttributeError):
        multifactor.mixins.NoSuchMixin  # noqa: B018


# -- mf_settings ------------------------------------------------------------------------------------------


def test_mf_settings_reads_every_09_key_live():
    assert mf_settings["RECHECK_MIN"] == 3 * 3600 and mf_settings["TOKEN_ISSUER_NAME"] == "Tests"
    assert "email" in mf_settings["FALLBACKS"] and mf_settings["LOGIN_CALLBACK"] is False
    with with_multifactor(RECHECK_MIN=60, RECHECK_MAX=120, SITE_OWN_KEY="kept"):
        assert mf_settings["RECHECK_MIN"] == 60 and mf_settings.get("RECHECK_MAX") == 120
        assert mf_settings["SITE_OWN_KEY"] == "kept"  # a key the site put there reads as it is
    # keys 0.9.x knew and this version ignores: the site's value, else 0.9.x's default
    assert (mf_settings["MAX_ATTEMPTS"], mf_settings["LOCKOUT_PERIOD"], mf_settings["FIDO_SERVER_ICON"]) == (
        5,
        1800,
        None,
    )
    with with_multifactor(MAX_ATTEMPTS=9):
        assert mf_settings["MAX_ATTEMPTS"] == 9
    with pytest.raises(KeyError):
        mf_settings["NO_SUCH_KEY"]
    assert {"RECHECK", "FACTORS", "BYPASS", "HTML_EMAIL", "ATTEMPT_PERIOD"} <= set(mf_settings)


def test_mf_settings_is_read_only_and_keeps_secrets_out_of_its_repr():
    with pytest.raises(TypeError):
        mf_settings["RECHECK"] = False
    assert settings.MULTIFACTOR["ENCRYPTION_KEYS"][0] not in repr(mf_settings)


def test_a_bad_value_reads_as_its_default():
    with override_settings(MULTIFACTOR={**settings.MULTIFACTOR, "RECHECK_MIN": "soon"}):
        assert mf_settings["RECHECK_MIN"] == 3 * 3600  # and manage.py check reports it (E001)
