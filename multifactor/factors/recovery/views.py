"""HTML pages for recovery codes: how many remain / make a new set (shown once, downloadable), and verify."""

from django import forms
from django.contrib import messages
from django.utils.translation import gettext_lazy as _

from ... import flows
from ...views import CodeVerifyView, MultifactorView, render
from . import authenticate, regenerate, remaining


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Recovery code"),
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "characters", "autofocus": True}
        ),
    )


class Start(MultifactorView):
    template_name = "multifactor/RECOVERY/start.html"

    def get(self, request):
        left, total = remaining(request.user)
        return render(
            request, self.template_name, {"remaining": left, "total": total, "can_edit": flows.can_manage(request)}
        )

    def post(self, request):
        codes = regenerate(request)
        messages.success(request, _("Your new recovery codes have been made: the old ones no longer work."))
        context = {"codes": codes, "text": "\r\n".join(codes) + "\r\n", "continue_url": flows.success_url(request)}
        response = render(request, "multifactor/RECOVERY/codes.html", context)
        response["Cache-Control"] = "no-store"
        return response


class Auth(CodeVerifyView):
    template_name = "multifactor/RECOVERY/check.html"
    form_class = CodeForm
    field = "code"

    def verify(self, request, code):
        authenticate(request, code)
