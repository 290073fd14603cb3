"""HTML for trusted browsers and signed-in sessions: the POST-only buttons of the keys page's section
(``multifactor/trust/home.html``, filled by :func:`multifactor.trust.pages.home_context`), each answered with
a redirect to the keys page."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import flows
from ..views import MultifactorView
from . import browsers, sessions


class _Post(MultifactorView):
    http_method_names = ["post"]

    def error_redirect(self):
        return "multifactor:home"


class RevokeTrust(_Post):
    """POST: end one trusted browser (``pk``), or all of them."""

    def post(self, request, pk=None):
        flows.require_manage(request)
        count = browsers.revoke(request, pk)
        if pk is not None and not count:
            raise Http404(_("No such trusted browser."))
        messages.success(
            request,
            ngettext("%(count)d browser is no longer trusted.", "%(count)d browsers are no longer trusted.", count)
            % {"count": count},
        )
        return browsers.apply(request, redirect("multifactor:home"))


class SignOut(_Post):
    """POST: sign out one session (``pk``), or every other session of the user."""

    def post(self, request, pk=None):
        flows.require_manage(request)
        count = sessions.sign_out(request, pk, others=pk is None)
        if pk is not None and not count:
            raise Http404(_("No such session."))
        if not request.user.is_authenticated:  # this session was the one signed out
            return redirect("multifactor:home")
        messages.success(
            request,
            ngettext("%(count)d other session was signed out.", "%(count)d other sessions were signed out.", count)
            % {"count": count},
        )
        return redirect("multifactor:home")
