"""System checks (ids ``multifactor.E…`` / ``multifactor.W…``): settings, encryption keys, URL layout."""

from django.conf import settings
from django.core import checks
from django.urls import NoReverseMatch, Resolver404, get_resolver, reverse

from . import conf, revocation


@checks.register()
def check_settings(app_configs=None, **kwargs):
    found = []
    s = conf.get()
    for kind, key, message in s.problems:
        cls, cid = (checks.Error, "E001") if kind == "error" else (checks.Warning, "W001")
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
    if revocation.mode() == "database":
        found.append(
            checks.Warning(
                "signed_cookies sessions with a process-local cache: each protected request queries the database to "
                "see revoked keys.",
                hint="Point MULTIFACTOR['CACHE'] at a shared cache (Redis, Memcached).",
                id="multifactor.W003",
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
