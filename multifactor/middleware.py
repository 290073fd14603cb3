"""Site-wide enforcement: require MFA of chosen users everywhere, not only on decorated views.

Configured by ``MULTIFACTOR["REQUIRE"]`` (off when None)::

    "REQUIRE": {
        "superusers": True, "staff": True, "groups": ["Finance"], "predicate": "myapp.mfa.must_use",
        "factors": 1, "grace_until": "2027-01-31", "grace_period": 7 * 86400,
        "exempt": ["home", "api:health", "/healthz"],
    }

Exempt: the login and logout pages (LOGIN_URL, URLs named ``login``/``logout``, and every admin site's login
and logout), every MFA page, static and media files, the URL names or path prefixes in ``exempt``, and views
decorated with :func:`multifactor_exempt`. During a grace period a user who must enrol is told so (with the
deadline) and may go on; afterwards they are sent to enrol. The decorator stays the per-view tool: this
middleware only adds a floor for the users it selects, and a decorated view may ask for more, never for less.
A verified user costs no query beyond loading ``request.user``: the verifications are read from the session.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from . import conf, flows, policy, revocation, session
from .rules import grace_deadline, must_use_mfa


def multifactor_exempt(view):
    """Mark a view as never subject to :class:`MultifactorEnforcementMiddleware`."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        return view(*args, **kwargs)

    wrapped.multifactor_exempt = True  # type: ignore[attr-defined]
    return wrapped


class MultifactorEnforcementMiddleware:
    """Put it after AuthenticationMiddleware and MessageMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        rules = conf.get().REQUIRE
        if not rules or not request.user.is_authenticated or self.exempt(request, view_func, rules):
            return None
        required = int(rules.get("factors") or 1)
        state = session.load(request.session)
        fixed = revocation.check(request.user, state, revocation.current(request.user))  # no query unless revoked
        if fixed is not None:
            state = fixed
            session.save(request.session, state)
        active = state.active()
        if active and policy.count_factors(active, request.user) >= required:
            return None  # the common case: no query
        if not must_use_mfa(request.user, rules):
            return None
        if not active and not flows.has_keys(request.user):
            deadline = grace_deadline(request.user, rules)
            if deadline and timezone.now() < deadline:
                self.remind(request, deadline)
                return None
        return policy.enforce(request, factors=required)

    @staticmethod
    def exempt(request, view_func, rules) -> bool:
        """A view marked with :func:`multifactor_exempt`, an MFA page, a login or logout page (the site's and
        every admin site's), a URL name or path prefix listed in ``exempt``, static and media files.

        Views protected by ``multifactor_protected`` are not exempt: the decorator may ask for more, never
        for less than this floor."""
        if getattr(view_func, "multifactor_exempt", False):
            return True
        listed = rules.get("exempt") or ()
        match = request.resolver_match
        if match is not None:
            if "multifactor" in match.app_names:
                return True
            if "admin" in match.app_names and match.url_name in ("login", "logout"):
                return True  # any AdminSite, whatever its name
            if match.view_name in {*listed, "login", "logout"}:
                return True
        if any(request.path_info.startswith(p) for p in listed if p.startswith("/")):
            return True
        if request.path == _path_of(settings.LOGIN_URL):
            return True  # the login page itself, not everything under it (LOGIN_URL may be "/")
        prefixes = [_path_of(u) for u in (settings.STATIC_URL, settings.MEDIA_URL)]
        return any(p and p != "/" and request.path.startswith(p) for p in prefixes)

    @staticmethod
    def remind(request, deadline):
        state = session.load(request.session)
        if state.advertised:
            return
        messages.warning(
            request,
            _("You must set up multi-factor authentication before %(deadline)s.")
            % {"deadline": date_format(timezone.template_localtime(deadline), "DATETIME_FORMAT")},  # type: ignore[attr-defined]
        )
        state.advertised = True
        session.save(request.session, state)


def _path_of(url) -> str | None:
    """The local path of a setting that holds a URL, a path or a URL name; None for another site's URL."""
    if not url:
        return None
    try:
        resolved = str(resolve_url(url))
    except NoReverseMatch:
        return None
    parts = urlsplit(resolved)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    return parts.path
