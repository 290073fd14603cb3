"""HTML pages for TOTP: enrolment (secret, QR code, first code) and verification."""

from django import forms
from django.contrib import messages
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from ...errors import FlowError
from ...views import CodeVerifyView, MultifactorView, after_enrolment, render
from . import activate, authenticate, begin, provisioning_uri, qr_svg


class CodeForm(forms.Form):
    answer = forms.CharField(
        label=_("Code from your app"),
        max_length=16,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "pattern": r"[0-9 ]*",
            }
        ),
    )


class EnrolForm(CodeForm):
    name = forms.CharField(label=_("Name (optional)"), max_length=64, required=False)


class Start(MultifactorView):
    template_name = "multifactor/TOTP/add.html"

    def get(self, request):
        return self.page(request, EnrolForm())

    def post(self, request):
        form = EnrolForm(request.POST)
        if form.is_valid():
            try:
                activate(request, form.cleaned_data["answer"], form.cleaned_data["name"])
            except FlowError as error:
                if error.status == 403 or error.code == "no_pending_enrolment":
                    raise
                form.add_error("answer", str(error.message))
            else:
                messages.success(request, _("Your authenticator app has been added."))
                return after_enrolment(request)
        return self.page(request, form, status=400)

    def page(self, request, form, status=200):
        key, seed = begin(request)
        uri = provisioning_uri(request.user, seed)
        # segno draws the QR code: the URI becomes modules, never markup, so nothing user-controlled is marked safe.
        svg = mark_safe(qr_svg(uri))  # noqa: S308
        context = {"form": form, "secret": seed, "qr_svg": svg, "totp_url": uri}
        return render(request, self.template_name, context, status=status)


class Auth(CodeVerifyView):
    template_name = "multifactor/TOTP/check.html"
    form_class = CodeForm
    field = "answer"

    def verify(self, request, code):
        authenticate(request, code)
