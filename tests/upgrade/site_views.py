"""A django-multifactor 0.9.x site's own code, written against the names 0.9.5 documents and nothing else: its
mixins, ``multifactor.common`` helpers, ``mf_settings``, ``UserKey``/``KeyTypes`` queries, the admin mixin with
its flags, a custom fallback transport and a BYPASS function.

It runs unchanged with 0.9.5 (tests/upgrade/legacy_seed.py) and, after the package swap, with this library
(tests/upgrade/verify.py, and in process tests/test_compat_site.py): site_driver.py drives it the same way in
both, and tests/test_upgrade_from_09.py compares what each saw.
"""

import time

from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Count
from django.http import JsonResponse
from django.urls import path
from django.views import View

from multifactor.admin import MultifactorUserAdmin
from multifactor.app_settings import mf_settings
from multifactor.common import active_factors, disabled_fallbacks, has_multifactor, is_bypassed, method_url, next_check
from multifactor.mixins import MultiFactorMixin, PreferMultiAuthMixin, RequireMultiAuthMixin
from multifactor.models import KeyTypes, UserKey

OUTBOX = []  # what the pigeon carried: {"user", "message"}


def send_pigeon(user, message):
    """A custom fallback transport, as 0.9's README shows one (``FALLBACKS["pigeon"]``)."""
    OUTBOX.append({"user": user.get_username(), "message": str(message)})
    return True


def bypass_when_impersonating(request):
    """``BYPASS``, as 0.9's README shows one."""
    return request.headers.get("X-Impersonating") == "yes"


def attributes(view):
    return JsonResponse(
        {
            "has_multifactor": bool(view.has_multifactor),
            "active": [[f[0], f[1]] for f in view.active_factors],
            "factors": view.factors.count(),
            "bypass": bool(view.bypass),
        }
    )


class RequireView(LoginRequiredMixin, RequireMultiAuthMixin, View):
    def get(self, request):
        return attributes(self)


class PreferView(LoginRequiredMixin, PreferMultiAuthMixin, View):
    def get(self, request):
        return attributes(self)


class AttributesView(LoginRequiredMixin, MultiFactorMixin, View):
    def get(self, request):
        return attributes(self)


def helpers(request):
    keys = UserKey.objects.filter(user=request.user, enabled=True)
    soon = next_check() - time.time()
    return JsonResponse(
        {
            "has_multifactor": bool(has_multifactor(request)),
            "active": [[f[0], f[1]] for f in active_factors(request)],
            "disabled_fallbacks": sorted(disabled_fallbacks(request)),
            "is_bypassed": bool(is_bypassed(request)),
            "method_url": method_url("TOTP"),
            "next_check_in_range": mf_settings["RECHECK_MIN"] - 1 <= soon <= mf_settings["RECHECK_MAX"] + 1,
            "keys_per_type": {row["key_type"]: row["n"] for row in keys.values("key_type").annotate(n=Count("id"))},
            "totp_keys": keys.filter(key_type=KeyTypes.TOTP).count(),
            "related_keys": request.user.multifactor_keys.filter(enabled=True).count(),
            "settings": {name: mf_settings[name] for name in ("RECHECK", "RECHECK_MIN", "RECHECK_MAX", "FACTORS")},
            "fallbacks": sorted(mf_settings["FALLBACKS"]),
        }
    )


class StaffAdmin(UserAdmin, MultifactorUserAdmin):
    """0.9's README: ``class StaffAdmin(UserAdmin, MultifactorUserAdmin)``; this site keeps the keys off the
    change page (``multifactor_inline = False``)."""

    multifactor_inline = False


urlpatterns = [
    path("require/", RequireView.as_view()),
    path("prefer/", PreferView.as_view()),
    path("attributes/", AttributesView.as_view()),
    path("helpers/", helpers),
]
