"""HTML pages for WebAuthn (they only hold a form: static/multifactor/webauthn.js runs the ceremony on a
click) and the pages' own JSON endpoints, ``fido2_register`` and ``fido2_authenticate``: POST without a
``credential`` begins a ceremony, POST with one completes it."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import View

from ... import conf, flows, responses
from ...api import ApiView, key_json
from ...trust import browsers
from ...views import MultifactorView, enrolment_next, recovery_summary, render
from . import ceremonies


class Start(MultifactorView):
    def get(self, request):
        summary = recovery_summary(request.user)
        first_key = summary is not None and not summary["total"]
        done = reverse("multifactor:recovery_start") if first_key else flows.success_url(request, consume=False)
        context = {"done_url": done, "passkeys": conf.get().PASSKEY_LOGIN, "can_edit": flows.can_manage(request)}
        return render(request, "multifactor/FIDO2/add.html", context)


class Auth(MultifactorView):
    def get(self, request):
        return render(request, "multifactor/FIDO2/check.html")


class PasskeyLogin(View):
    """Passwordless sign-in (``PASSKEY_LOGIN``): autofill on the username field, and a button."""

    def get(self, request):
        if not conf.get().PASSKEY_LOGIN:
            return render(request, "multifactor/passkey_login.html", {"disabled": True}, status=404)
        login_url = resolve_url(settings.LOGIN_URL)
        context = {"next": request.GET.get("next", ""), "login_url": login_url}
        return render(request, "multifactor/passkey_login.html", context)


class Register(ApiView):
    def post(self, request):
        if "credential" not in self.body:
            return responses.data(ceremonies.register_begin(request, passkey=self.body.get("passkey") is True))
        name = self.field("name", str, required=False) or ""
        key = ceremonies.register_complete(request, self.body["credential"], name)
        kind = _("Your passkey has been added.") if key.discoverable else _("Your security key has been added.")
        messages.success(request, kind)
        enrolment_next(request)  # its message; the page goes to its data-done URL, the same place
        return responses.data(key_json(key), status=201)


class Authenticate(ApiView):
    def post(self, request):
        if "credential" not in self.body:
            return responses.data(ceremonies.authenticate_begin(request))
        ceremonies.authenticate_complete(request, self.body["credential"])
        flows.login_message(request)  # the same message as after a code, on the page it goes to
        return browsers.apply(request, responses.data({"verified": True, "next": flows.success_url(request)}))


def passkey_answer(request, body) -> dict:
    """Complete a passkey sign-in (the API's ``passkey/complete`` and the passkey page's own endpoint)."""
    user = ceremonies.passkey_complete(request, body.get("credential"))
    verified_now = any(v.key_id for v in flows.active_verifications(request))
    return {"user": user.get_username(), "verified": verified_now, "next": passkey_next(request, body.get("next"))}


class PasskeyComplete(ApiView):
    """The passkey page's endpoint: the API's answer, plus the message every sign-in ends with."""

    anonymous = True

    def post(self, request):
        answer = passkey_answer(request, self.body)
        if answer["verified"]:
            flows.login_message(request)
        else:
            messages.success(request, _("You are signed in with your passkey."))
        return responses.data(answer)


def passkey_next(request, wanted) -> str:
    """Where a passkey sign-in goes: a safe ``next`` from the page, else the usual success URL."""
    if isinstance(wanted, str) and wanted:
        if url_has_allowed_host_and_scheme(
            wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return wanted
    return flows.success_url(request)
