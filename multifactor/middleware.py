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

import datetime
import functools
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.formats import date_format
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from . import conf, flows, policy, revocation, session


def multifactor_exempt(view):
    """Mark a view as never subject to :class:`MultifactorEnforcementMiddleware`."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        return view(*args, **kwargs)

    wrapped.multifactor_exempt = True
    return wrapped


def must_use_mfa(user, rules: dict) -> bool:
    """Whether the REQUIRE rules select this user (groups and predicate may query the database)."""
    if rules.get("superusers") and user.is_superuser:
        return True
    if rules.get("staff") and user.is_staff:
        return True
    groups = rules.get("groups")
    if groups and user.groups.filter(name__in=groups).exists():
        return True
    predicate = rules.get("predicate")
    return bool(predicate and import_string(predicate)(user))


def grace_deadline(user, rules: dict) -> datetime.datetime | None:
    """The latest of ``grace_until`` and ``date_joined + grace_period``; None if there is no grace."""
    candidates = []
    until = rules.get("grace_until")
    if until:
        try:  # a date first: parse_datetime would read "2027-01-31" as its first moment, not the whole day
            parsed = parse_date(str(until)) or parse_datetime(str(until))
        except ValueError:  # well formed but impossible ("2027-02-30"): no grace rather than a crash
            parsed = None
        if isinstance(parsed, datetime.date) and not isinstance(parsed, datetime.datetime):
            parsed = datetime.datetime.combine(parsed, datetime.time.max)
        if parsed is not None:
            candidates.append(_like_now(parsed))
    joined = getattr(user, "date_joined", None)
    if rules.get("grace_period") and joined:
        candidates.append(_like_now(joined) + datetime.timedelta(seconds=rules["grace_period"]))
    return max(candidates) if candidates else None


def _like_now(moment: datetime.datetime) -> datetime.datetime:
    """Aware under USE_TZ, naive local time otherwise, so that it compares with ``timezone.now()``."""
    if settings.USE_TZ:
        return moment if timezone.is_aware(moment) else timezone.make_aware(moment)
    return timezone.make_naive(moment) if timezone.is_aware(moment) else moment


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
        fixed = revocation.still_valid(request, state)  # no query unless a revocation or a re-keying is pending
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
            % {"deadline": date_format(timezone.template_localtime(deadline), "DATETIME_FORMAT")},
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
