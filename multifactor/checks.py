"""System checks (ids ``multifactor.E…`` / ``multifactor.W…``): settings, encryption keys, URL layout."""

from django.conf import settings
from django.core import checks
from django.urls import NoReverseMatch, Resolver404, ResolverMatch, URLResolver, get_resolver, reverse
from django.utils.module_loading import import_string

from . import conf
from .backends import joins_revision


@checks.register()
def check_settings(app_configs=None, **kwargs):
    found = []
    s = conf.get()
    for kind, key, message in s.problems:
        # W010, not W001: 0.9.x's W001 meant "LOCKOUT_PERIOD shorter than ATTEMPT_PERIOD" (retired with the lockout
        # period), and a site that silenced it must not silence this. Ids from 010 on are about 0.9.x sites.
        cls, cid = (checks.Error, "E001") if kind == "error" else (checks.Warning, "W010")
        found.append(cls(f"MULTIFACTOR[{key!r}] {message}.", id=f"multifactor.{cid}"))
    if not s.encryption_keys and not settings.DEBUG:
        found.append(
            checks.Warning(
                "No MULTIFACTOR['ENCRYPTION_KEYS'] (nor MULTIFACTOR_ENCRYPTION_KEYS in the environment): "
                "TOTP seeds are encrypted under a key derived from SECRET_KEY, which must then never change.",
                hint="Generate one with `python -m multifactor.crypto` and keep it outside the database.",
                id="multifactor.W002",
            )
        )
    for key in s.encryption_keys:
        try:
            from cryptography.fernet import Fernet

            Fernet(key)
        except (ValueError, TypeError):
            found.append(
                checks.Error(
                    "An encryption key is not a valid Fernet key.",
                    id="multifactor.E002",
                )
            )
    if not any(joins_revision(path) for path in settings.AUTHENTICATION_BACKENDS):
        found.append(
            checks.Warning(
                "No authentication backend loads the multifactor revocation counter with the user: every protected "
                "request of a verified user costs one more SQL query.",
                hint="List 'multifactor.backends.ModelBackend' first in AUTHENTICATION_BACKENDS (keep your old backend "
                "after it so existing sessions stay signed in), or put multifactor.backends.RevisionMixin in front of "
                "your own backend.",
                id="multifactor.W007",
            )
        )
    return found


@checks.register(checks.Tags.urls)
def check_urls(app_configs=None, **kwargs):
    """The MFA pages (and their API) must not sit behind the protection they serve: a challenge would lead
    to a page that challenges again, forever. Every page reversible without arguments is resolved through
    the site's URLconf, so a protected include, a protected catch-all listed first, or one protected page
    are all found."""
    try:
        reverse("multifactor:authenticate")
    except NoReverseMatch:
        return [
            checks.Warning(
                "multifactor's URLs are not included: the decorator has nowhere to send users.",
                hint='Add path("multifactor/", include("multifactor.urls")) to your URLconf.',
                id="multifactor.W004",
            )
        ]
    from . import urls

    resolver = get_resolver()
    looping = []
    for pattern in urls.urlpatterns:
        try:
            url = reverse(f"multifactor:{pattern.name}")
        except NoReverseMatch:
            continue  # takes arguments (a key id): protected like its neighbours, if at all
        try:
            match = resolver.resolve(url)
        except Resolver404:  # pragma: no cover - reverse() just produced it
            continue
        if getattr(match.func, "multifactor_protected", None) is not None:
            looping.append(url)
    if looping:
        return [
            checks.Error(
                f"The multifactor pages {', '.join(looping)} are wrapped in multifactor_protected: users would be "
                "redirected to them forever.",
                hint="Include multifactor.urls outside (and before) any decorator_include(multifactor_protected(...)).",
                id="multifactor.E003",
            )
        ]
    return []


@checks.register(checks.Tags.urls, checks.Tags.admin)
def check_admin_collision(app_configs=None, **kwargs):
    """0.9.x's README mounted the pages at ``admin/multifactor/``, which is also the admin's index page of the
    app ``multifactor`` (the key and event admins): listed first, the MFA pages answer it, so the admin's
    breadcrumb and app link lead to the user's keys page. Found by resolving each admin site's app index."""
    from django.apps import apps

    if not apps.is_installed("django.contrib.admin"):
        return []
    from django.contrib.admin.sites import all_sites

    resolver = get_resolver()
    found = []
    for site in list(all_sites):
        if not any(model._meta.app_label == "multifactor" for model in site._registry):
            continue
        try:
            url = reverse(f"{site.name}:app_list", kwargs={"app_label": "multifactor"})
            match = resolver.resolve(url)
        except (NoReverseMatch, Resolver404):
            continue
        if "multifactor" in match.app_names:
            found.append(
                checks.Warning(
                    f"The multifactor pages are mounted at {url}, which is also the address of the admin site "
                    f"{site.name!r}'s index of the multi-factor models: the admin's breadcrumb and app link "
                    "open the user's keys page instead.",
                    hint='Mount them where no admin URL can be, before the admin, e.g. path("multifactor/", '
                    'include("multifactor.urls")), and update links or bookmarks to the old address. The old '
                    "mount keeps working until then.",
                    id="multifactor.W012",
                )
            )
    return found


PATH_HINTS = {
    "BYPASS": "the dotted path of a function fn(request) -> bool",
    "LOGIN_CALLBACK": "the dotted path of a function fn(request, username=...) -> HttpResponse, or False",
    "FALLBACKS": "the dotted path of a transport fn(user, message) -> truthy when sent",
}


def _not_callable(path):
    """Why the dotted ``path`` cannot be called, or None when it names a callable."""
    try:
        target = import_string(path)
    except Exception as exc:  # an error raised while importing the site's module is just as fatal at request time
        return f"cannot be imported ({type(exc).__name__}: {exc})"
    return None if callable(target) else f"names a {type(target).__name__}, not a callable"


@checks.register()
def check_paths(app_configs=None, **kwargs):
    """The dotted paths of ``BYPASS``, ``LOGIN_CALLBACK`` and each ``FALLBACKS`` transport are imported only
    when used: a wrong one would answer every protected request with a 500 (BYPASS), every verification
    (LOGIN_CALLBACK), or silently send no code (a transport, only logged)."""
    s = conf.get()
    paths = [("BYPASS", "['BYPASS']", s.BYPASS), ("LOGIN_CALLBACK", "['LOGIN_CALLBACK']", s.LOGIN_CALLBACK)]
    paths += [("FALLBACKS", f"['FALLBACKS'][{name!r}]", entry[1]) for name, entry in s.FALLBACKS.items()]
    found = []
    for key, where, path in paths:
        problem = _not_callable(path) if isinstance(path, str) and path else None
        if problem:
            found.append(
                checks.Error(
                    f"MULTIFACTOR{where} {path!r} {problem}.", hint=f"Give {PATH_HINTS[key]}.", id="multifactor.E010"
                )
            )
    return found


REQUIRE = "MULTIFACTOR['REQUIRE']"


@checks.register()
def check_require(app_configs=None, **kwargs):
    """What the enforcement middleware would only find at request time: a predicate that does not import
    (every request of a signed-in user would crash) and a ``grace_until`` it cannot parse (silently no grace)."""
    rules = conf.get().REQUIRE  # None when unset, or when invalid (then E001 says so)
    if not rules:
        return []
    found = []
    predicate = rules.get("predicate")
    if predicate:
        try:
            target = import_string(predicate)
        except (ImportError, AttributeError) as exc:
            problem: str | None = f"cannot be imported ({exc})"
        else:
            problem = None if callable(target) else f"names a {type(target).__name__}, not a callable"
        if problem:
            found.append(
                checks.Error(
                    f"{REQUIRE}['predicate'] {predicate!r} {problem}.",
                    hint="Give the dotted path of a function fn(user) -> bool, e.g. 'myapp.mfa.must_use'.",
                    id="multifactor.E004",
                )
            )
    until = rules.get("grace_until")
    if until:
        from .middleware import grace_deadline  # the middleware's own parsing: check and runtime agree

        if grace_deadline(None, {"grace_until": until}) is None:
            found.append(
                checks.Error(
                    f"{REQUIRE}['grace_until'] {until!r} is not a valid date or datetime: "
                    "the middleware would grant no grace period at all.",
                    hint='Use a date "YYYY-MM-DD" (grace lasts until the end of that day), an ISO 8601 datetime '
                    'such as "2027-01-31T12:00:00+00:00" (without an offset: the current time zone), or a '
                    "datetime.date / datetime.datetime.",
                    id="multifactor.E005",
                )
            )
    return found


def _view_names(patterns, namespaces=()):
    """Every ``ResolverMatch.view_name`` the URLconf can produce, which is what the middleware compares the
    ``exempt`` entries with: instance namespaces plus the URL name (or, for an unnamed pattern, the view's
    dotted path), whatever arguments the pattern takes."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = (*namespaces, pattern.namespace) if pattern.namespace else namespaces
            yield from _view_names(pattern.url_patterns, inner)
        else:
            yield ResolverMatch(pattern.callback, (), {}, pattern.name, namespaces=list(namespaces)).view_name


@checks.register(checks.Tags.urls)
def check_require_exempt(app_configs=None, **kwargs):
    """An ``exempt`` entry is a path prefix when it starts with "/", else a view name; a name that no URL
    carries exempts nothing (users are challenged there). A warning: a per-request ``request.urlconf`` may
    know names the site's URLconf does not."""
    rules = conf.get().REQUIRE
    names = [e for e in (rules or {}).get("exempt") or () if not e.startswith("/")]
    if not names:
        return []
    known = set(_view_names(get_resolver().url_patterns))
    unknown = [name for name in names if name not in known]
    if not unknown:
        return []
    return [
        checks.Warning(
            f"{REQUIRE}['exempt'] lists {', '.join(map(repr, unknown))}, which no URL pattern is named: "
            "the middleware exempts nothing for it.",
            hint='Give URL names as used with reverse(), with their instance namespace ("api:health"), '
            'or a path prefix starting with "/" ("/healthz").',
            id="multifactor.W005",
        )
    ]


from .compat import checks as _compat_checks  # noqa: E402, F401  (registers the check of 0.9.x template overrides)
