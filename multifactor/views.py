"""The HTML pages shared by every factor: home (list and manage keys), add, help, authenticate.

Thin: each view parses the request, calls :mod:`multifactor.flows`, and turns a
:class:`~multifactor.errors.FlowError` into a message and a redirect (or a 404), never a 500.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.generic import TemplateView, View

from . import conf, factors, flows
from .errors import FlowError
from .models import DisabledFallback, Key, UserKey


class MultifactorView(LoginRequiredMixin, View):
    """Base for every MFA page: signed-in users only, FlowErrors become messages."""

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        except FlowError as error:
            if error.status == 404:
                raise Http404(str(error.message)) from None
            messages.error(request, error.message)
            return redirect(self.error_redirect())

    def error_redirect(self):
        return "multifactor:home"


def fallbacks_for(user):
    """[(name, enabled for this user, destination shown)] for the configured fallbacks that reach the user."""
    disabled = set(DisabledFallback.objects.filter(user=user).values_list("fallback", flat=True))
    found = []
    for name, (destination, _transport) in conf.get().FALLBACKS.items():
        try:
            shown = destination(user)
        except Exception:  # a site's destination callable must not break the page
            shown = None
        if shown:
            found.append((name, name not in disabled, shown))
    return found


LOW_RECOVERY_CODES = 3


def recovery_summary(user):
    """{"remaining", "total", "low"} of the user's recovery codes, or None if recovery codes are not offered."""
    recovery = factors.get("RECOVERY")
    if recovery is None or not recovery.allowed():
        return None
    from .factors.recovery import remaining

    left, total = remaining(user)
    return {"remaining": left, "total": total, "low": bool(total) and left < LOW_RECOVERY_CODES}


def after_enrolment(request):
    """Where a page sends a user who just enrolled a key: to save recovery codes if they have none yet
    (the moment they are most likely to), else where they were going."""
    summary = recovery_summary(request.user)
    if summary is not None and not summary["total"]:
        messages.info(request, _("Now save a set of recovery codes, in case you lose your keys."))
        return redirect("multifactor:recovery_start")
    return redirect(flows.success_url(request))


class CodeVerifyView(MultifactorView):
    """A page that verifies the user with a code typed into ``form_class``'s ``field`` (TOTP, recovery and
    fallback codes): a wrong code is a form error with the flow's status (400, or 429 while throttled)."""

    template_name = ""
    form_class = None
    field = ""
    raise_statuses = ()  # FlowError statuses that become a message and a redirect instead

    def verify(self, request, code):
        raise NotImplementedError

    def error_redirect(self):
        return "multifactor:authenticate"

    def page(self, request, form=None, status=200):
        return render(request, self.template_name, {"form": form or self.form_class()}, status=status)

    def get(self, request):
        return self.page(request)

    def post(self, request):
        form = self.form_class(request.POST)
        if not form.is_valid():
            return self.page(request, form, status=400)
        try:
            self.verify(request, form.cleaned_data[self.field])
        except FlowError as error:
            if error.status in self.raise_statuses:
                raise
            form.add_error(self.field, str(error.message))
            return self.page(request, form, status=error.status if error.status in (400, 429) else 400)
        return flows.finish(request)


class Home(MultifactorView, TemplateView):
    template_name = "multifactor/home.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        verified = {v.key_id for v in flows.active_verifications(self.request)}
        fallbacks = fallbacks_for(user)
        return {
            **super().get_context_data(**kwargs),
            "keys": Key.objects.filter(user=user, confirmed=True),
            "verified_ids": verified,
            "can_edit": flows.can_manage(self.request),
            "fallbacks": fallbacks,
            "addable": [f for f in factors.all_factors() if f.allowed() and f.start_url_name],
            "recovery": recovery_summary(user),
            # 0.9.x's names, for home.html written for 0.9.x
            "factors": UserKey.objects.filter(user=user),
            "authed_kids": sorted(k for k in verified if k is not None),
            "available_fallbacks": fallbacks,
        }

    def post(self, request, *args, **kwargs):
        return HttpResponseNotAllowed(["GET"])


class Action(MultifactorView):
    """POST ``toggle_factor``, ``delete_factor`` or ``toggle_fallback`` on ``<ident>``."""

    http_method_names = ["post"]

    def post(self, request, action, ident):
        handler = getattr(self, f"do_{action}", None)
        if handler is None:
            raise Http404(_("Unknown action."))
        handler(request, ident)
        return redirect("multifactor:home")

    def do_toggle_factor(self, request, ident):
        key = flows.user_key(request, ident)
        flows.set_enabled(request, key, not key.enabled)
        template = _("%(key)s has been enabled.") if key.enabled else _("%(key)s has been disabled.")
        messages.info(request, template % {"key": key})

    def do_delete_factor(self, request, ident):
        key = flows.user_key(request, ident)
        flows.delete(request, key)
        messages.info(request, _("%(key)s has been deleted.") % {"key": key})

    def do_toggle_fallback(self, request, ident):
        if ident not in conf.get().FALLBACKS:
            raise Http404(_("Unknown fallback."))
        flows.require_manage(request)  # switching a way to verify on or off is managing factors (R8)
        deleted, _rows = DisabledFallback.objects.filter(user=request.user, fallback=ident).delete()
        if deleted:
            messages.info(
                request,
                _("The %(name)s fallback has been switched on.") % {"name": ident},
            )
        else:
            DisabledFallback.objects.get_or_create(user=request.user, fallback=ident)
            messages.info(
                request,
                _("The %(name)s fallback has been switched off.") % {"name": ident},
            )


class RenameForm(forms.Form):
    name = forms.CharField(label=capfirst(Key._meta.get_field("name").verbose_name), max_length=64, required=False)


class Rename(MultifactorView):
    """POST ``name``. A GET shows the form alone (``multifactor/userkey_form.html``, 0.9.x's rename page)."""

    http_method_names = ["get", "post"]

    def get(self, request, pk):
        key = flows.user_key(request, pk)
        context = {"object": UserKey.objects.get(pk=key.pk), "form": RenameForm(initial={"name": key.name})}
        return render(request, "multifactor/userkey_form.html", context)

    def post(self, request, pk):
        key = flows.user_key(request, pk)
        flows.rename(request, key, request.POST.get("name", ""))
        messages.info(request, _("Renamed to %(key)s.") % {"key": key})
        return redirect("multifactor:home")


class Add(MultifactorView, TemplateView):
    template_name = "multifactor/add.html"

    def get_context_data(self, **kwargs):
        methods = [f for f in factors.all_factors() if f.allowed() and f.start_url_name]
        return {
            **super().get_context_data(**kwargs),
            "methods": methods,
            "can_edit": flows.can_manage(self.request),
            "available_factors": [f.type for f in methods],  # 0.9.x's name, for add.html written for 0.9.x
        }


class Help(TemplateView):
    template_name = "multifactor/help.html"


class Authenticate(MultifactorView, TemplateView):
    """Choose a method to verify with; a user with a single method goes straight to it."""

    template_name = "multifactor/authenticate.html"

    def get(self, request, *args, **kwargs):
        # A fallback stands in for the user's keys, so only their own kinds of key decide "just one method".
        own = [m for m in self.methods() if m.stored]
        if len(own) == 1 and not request.GET.get("choose"):
            return redirect(own[0].auth_url())
        return super().get(request, *args, **kwargs)

    def methods(self):
        user = self.request.user
        return [f for f in factors.all_factors() if f.usable_by(user)]

    def get_context_data(self, **kwargs):
        user = self.request.user
        methods = self.methods()
        fallback = [name for name, enabled, _shown in fallbacks_for(user) if enabled]
        return {
            **super().get_context_data(**kwargs),
            "methods": method_choices(user, methods, fallback),
            "locked": Key.objects.filter(user=user, locked_at__isnull=False, enabled=False).exists(),
            "has_keys": flows.has_keys(user),
            "fallbacks": fallback if any(not m.stored for m in methods) else [],  # 0.9.x's name
        }


class MethodChoice(tuple):
    """A way to verify, as authenticate.html lists it: the factor's attributes (``method.label``,
    ``method.auth_url``) and, unpacked, 0.9.x's ``(url name, label, summary)``, so that a template written for
    0.9.x (``{% for link, label, factors in methods %}<a href="{% url link %}">``) renders too."""

    def __new__(cls, factor, summary):
        choice = super().__new__(cls, (factor.auth_url_name, factor.label, summary))
        choice.factor = factor
        return choice

    def __getattr__(self, name):
        if name == "factor":
            raise AttributeError(name)
        return getattr(self.factor, name)


def method_choices(user, methods, fallback_names):
    """0.9.x's summary of each method: the names of the user's keys of that type, else how many there are."""
    keys = {}
    for key in Key.objects.active().filter(user=user):
        keys.setdefault(key.type, []).append(key)
    choices = []
    for method in methods:
        if not method.stored:
            summary = " + ".join(fallback_names)
        else:
            own = keys.get(method.type, [])
            named = [k.name for k in own if k.name]
            count = len(own)
            summary = ", ".join(named) or ngettext("%(count)d key", "%(count)d keys", count) % {"count": count}
        choices.append(MethodChoice(method, summary))
    return choices


class Logout(View):
    """Sign out from the MFA pages (POST), so a user asked to verify or enrol is never stuck on them."""

    http_method_names = ["post"]

    def post(self, request):
        from django.conf import settings
        from django.contrib.auth import logout
        from django.shortcuts import resolve_url

        logout(request)
        return redirect(resolve_url(settings.LOGIN_URL))
