"""The fallback page: POST ``send`` sends a code (a GET never sends), POST ``otp`` verifies it."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ... import conf, session
from ...views import CodeVerifyView
from . import NONCE, authenticate, destinations, send


class CodeForm(forms.Form):
    otp = forms.CharField(
        label=gettext_lazy("Code we sent you"),
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9]*"}),
    )


class Auth(CodeVerifyView):
    template_name = "multifactor/fallback/auth.html"
    form_class = CodeForm
    field = "otp"
    raise_statuses = (403,)  # locked or switched off: a message on the page it redirects to

    def verify(self, request, code):
        authenticate(request, code)

    def error_redirect(self):
        return "multifactor:fallback_auth"

    def page(self, request, form=None, status=200):
        shown = destinations(request.user)
        sent = NONCE in session.load(request.session).pending  # a code was sent to this session
        context = {
            "form": form or CodeForm(),
            "destinations": shown,
            "succeeded": " + ".join(shown) if sent else "",  # 0.9.x's name: where the code went
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request):
        if not conf.get().FALLBACKS:
            return redirect("multifactor:authenticate")
        return self.page(request)

    def post(self, request):
        if "send" not in request.POST:
            return super().post(request)
        sent = send(request)
        if sent:
            messages.info(request, _("A code was sent via %(names)s.") % {"names": ", ".join(sent)})
        else:
            messages.error(request, _("The code could not be sent. Try again later, or contact an administrator."))
        return redirect("multifactor:fallback_auth")
