"""The HTML pages shared by every factor: home (list and manage keys), add, help, authenticate.

Thin: each view parses the request, calls :mod:`multifactor.flows`, and turns a
:class:`~multifactor.errors.FlowError` into a message and a redirect (or a 404), never a 500.
"""

import re

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.http.request import split_domain_port
from django.shortcuts import redirect, resolve_url
from django.template import engines
from django.template.backends.django import DjangoTemplates
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.generic import TemplateView, View

from . import conf, factors, flows
from .errors import FlowError
from .models import DisabledFallback, Key, UserKey
from .trust import pages as trust_pages

OWN_BASE = "multifactor/base.html"
TITLE = re.compile(r"<title>(.*?)</title>", re.S)
SITE_PAGE = (
    "{% extends multifactor_site_base %}{% block title %}{{ multifactor_title }} · {{ block.super }}{% endblock %}"
    "{% block content %}{{ multifactor_card }}{% endblock %}"
)


def page_context(request) -> dict:
    """What every MFA page's layout reads: the way back to the site, and whether localhost is needed."""
    host, port = split_domain_port(request.get_host())
    localhost_url = ""
    if settings.DEBUG and host in ("127.0.0.1", "[::1]"):
        # WebAuthn needs a domain name as RP ID: an IP address is refused by every browser.
        localhost_url = f"{request.scheme}://localhost{':' + port if port else ''}{request.get_full_path()}"
    return {"multifactor_site_url": resolve_url(settings.LOGIN_REDIRECT_URL), "localhost_url": localhost_url}


def render(request, template_name, context=None, status=200):
    """Render an MFA page: in its own layout, or, with ``BASE_TEMPLATE`` set to a site's base template, as a
    fragment put into that template's ``content`` block (its ``title`` block gets the page title).

    Two steps, because the pages' own ``content`` block (kept for templates written for 0.9.x) would otherwise
    replace the site's ``content`` block whole, without the card around it."""
    context = {**page_context(request), **(context or {})}
    site_base = conf.get().BASE_TEMPLATE
    if site_base == OWN_BASE:
        return HttpResponse(render_to_string(template_name, context, request), status=status)
    fragment = render_to_string(template_name, {**context, "multifactor_fragment": True}, request)
    found = TITLE.search(fragment)
    title, card = (found.group(1), fragment[: found.start()] + fragment[found.end() :]) if found else ("", fragment)
    page = next(e for e in engines.all() if isinstance(e, DjangoTemplates)).from_string(SITE_PAGE)
    extra = {"multifactor_site_base": site_base, "multifactor_title": mark_safe(title.strip())}  # noqa: S308
    body = page.render({**context, **extra, "multifactor_card": mark_safe(card)}, request)  # noqa: S308
    return HttpResponse(body, status=status)


class PageMixin:
    """For TemplateViews: render through :func:`render`."""

    def render_to_response(self, context, **response_kwargs):
        return render(self.request, self.template_name, context, status=response_kwargs.get("status", 200))


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


def enrolment_next(request) -> str:
    """Where a page sends a user who just enrolled a key: to save recovery codes if they have none yet
    (the moment they are most likely to), else where they were going."""
    summary = recovery_summary(request.user)
    if summary is not None and not summary["total"]:
        messages.info(request, _("Now save a set of recovery codes, in case you lose your keys."))
        return reverse("multifactor:recovery_start")
    return flows.success_url(request)


def after_enrolment(request):
    return redirect(enrolment_next(request))


class CodeVerifyView(MultifactorView):
    """A page that verifies the user with a code typed into ``form_class``'s ``field`` (TOTP, recovery and
    fallback codes): a wrong code is a form error with the flow's status (400, or 429 while throttled)."""

    template_name = ""
    form_class: type | None = None
    field = ""
    raise_statuses: tuple[int, ...] = ()  # FlowError statuses that become a message and a redirect instead

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


def addable_factors(user):
    """The kinds of key this user may add now: recovery codes only next to a key (alone they are a dead end)."""
    keys = has_own_keys(user)
    return [f for f in factors.all_factors() if f.allowed() and f.start_url_name and (keys or f.type != "RECOVERY")]


def has_own_keys(user):
    return Key.objects.active().filter(user=user).exclude(type="RECOVERY").exists()


class Home(PageMixin, MultifactorView, TemplateView):
    template_name = "multifactor/home.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        verified = {v.key_id for v in flows.active_verifications(self.request)}
        has_keys = flows.has_keys(user)
        # A fallback stands in only for keys a user has: without keys it is of no use, so it is not offered.
        reachable = fallbacks_for(user)
        fallbacks = reachable if has_keys else []
        return {
            **super().get_context_data(**kwargs),
            # the recovery code set is shown once, in its own section, not as a key
            "keys": Key.objects.filter(user=user, confirmed=True).exclude(type="RECOVERY"),
            "verified_ids": verified,
            "can_edit": flows.can_manage(self.request),
            "has_keys": has_keys,
            "fallbacks": fallbacks,
            "addable": addable_factors(user),
            "recovery": recovery_summary(user),
            # 0.9.x's names, for home.html written for 0.9.x
            "factors": UserKey.objects.filter(user=user),
            "authed_kids": sorted(k for k in verified if k is not None),
            "available_fallbacks": reachable,
            **trust_pages.home_context(self.request),  # trusted browsers and signed-in sessions
        }

    def post(self, request, *args, **kwargs):
        return HttpResponseNotAllowed(["GET"])


def delete_key(request, ident):
    key = flows.user_key(request, ident)
    flows.delete(request, key)
    messages.success(request, _("%(key)s has been deleted.") % {"key": key})
    trust_pages.offer_sign_out(request)


class Delete(MultifactorView):
    """GET: what deleting this key means, and a button that POSTs ``delete_factor``; POST deletes it."""

    http_method_names = ["get", "post"]

    def get(self, request, pk):
        key = flows.user_key(request, pk)
        others = Key.objects.active().filter(user=request.user).exclude(pk=key.pk).exclude(type="RECOVERY")
        context = {
            "key": key,
            "last": key.type != "RECOVERY" and key.enabled and not others.exists(),
            "can_edit": flows.can_manage(request),
        }
        return render(request, "multifactor/delete.html", context)

    def post(self, request, pk):
        delete_key(request, pk)
        return redirect("multifactor:home")


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
        delete_key(request, ident)

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
        context = {
            "object": UserKey.objects.get(pk=key.pk),
            "key": key,
            "form": RenameForm(initial={"name": key.name}),
            "can_edit": flows.can_manage(request),
        }
        return render(request, "multifactor/userkey_form.html", context)

    def post(self, request, pk):
        key = flows.user_key(request, pk)
        flows.rename(request, key, request.POST.get("name", ""))
        messages.info(request, _("Renamed to %(key)s.") % {"key": key})
        return redirect("multifactor:home")


class Add(PageMixin, MultifactorView, TemplateView):
    template_name = "multifactor/add.html"

    def get(self, request, *args, **kwargs):
        wanted = request.GET.get("next")
        if wanted:  # the page the user came from, to return to after enrolling (checked when it is used)
            flows.remember_next(request, wanted)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        methods = addable_factors(self.request.user)
        return {
            **super().get_context_data(**kwargs),
            "methods": methods,
            "first": not flows.has_keys(self.request.user),
            "can_edit": flows.can_manage(self.request),
            "available_factors": [f.type for f in methods],  # 0.9.x's name, for add.html written for 0.9.x
        }


class Help(PageMixin, TemplateView):
    template_name = "multifactor/help.html"


class Authenticate(PageMixin, MultifactorView, TemplateView):
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
