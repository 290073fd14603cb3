"""The fallback page: POST ``send`` sends a code (a GET never sends), POST ``otp`` verifies it."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ... import conf, session
from ...views import CodeVerifyView, render
from . import NONCE, authenticate, destinations, send, switched_off


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
        form = form or CodeForm()
        if sent:  # the code is on its way: the field it goes into has the focus
            form.fields["otp"].widget.attrs["autofocus"] = True
        context = {
            "form": form,
            "destinations": shown,
            "sent": sent,
            "sent_to": ", ".join(str(where) for where in shown.values()),
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
        if switched_off(request):  # nothing to send it through: no send, no cooldown, and say why
            messages.error(
                request,
                _(
                    "No fallback is switched on for your account, so no code was sent. Switch one on in your "
                    "security settings, or verify with a key or a recovery code."
                ),
            )
            return redirect("multifactor:fallback_auth")
        sent = send(request)
        if sent:
            shown = destinations(request.user)
            where = ", ".join(dict.fromkeys(str(shown[name]) for name in sent if name in shown))
            messages.success(
                request,
                _("A code was sent via %(names)s to %(where)s. Enter it below.")
                % {"names": ", ".join(sent), "where": where},
            )
        else:
            messages.error(request, _("The code could not be sent. Try again later, or contact an administrator."))
        return redirect("multifactor:fallback_auth")
