"""0.9.x's ``multifactor.common`` helpers, over ``flows`` (verifications) and ``conf`` (settings).

What changed under the same names (README.rst, "Upgrading from 0.9.x"):

- ``active_factors`` returns ``ActiveFactor`` tuples, indexed as 0.9.x's were: ``(key_type, key_id,
  verified_at, expires)``, ``expires`` False without RECHECK. A fallback code's type is ``"FALLBACK"`` (0.9.x:
  None). Only verifications still valid are listed: expired ones, and those of a key since disabled or
  deleted, are not.
- ``write_session(request, key)`` records a verification the way every factor of this library does (the
  session key is cycled, the verification is indexed for revocation, counted by the decorator, audited), for
  an enabled key of the signed-in user; ``key=None`` records a fallback code. It refuses anything else.
- ``login(request)`` ends a verification as the library's pages do: the login message, then the remembered
  page if it is safe, else ``LOGIN_CALLBACK``'s response, else ``settings.LOGIN_REDIRECT_URL`` (0.9.x:
  ``LOGIN_URL``).
"""

from __future__ import annotations

import random
import time
from typing import NamedTuple

from django.shortcuts import render as django_render
from django.utils import timezone
from django.utils.module_loading import import_string

from .. import conf, flows
from ..models import FALLBACK, DisabledFallback, Key


class ActiveFactor(NamedTuple):
    key_type: str
    key_id: int | None
    verified_at: float
    expires: float | bool


def has_multifactor(request) -> bool:
    """The signed-in user has keys that oblige them to verify (enabled ones, or locked ones)."""
    return request.user.is_authenticated and flows.has_keys(request.user)


def active_factors(request) -> list[ActiveFactor]:
    """The verifications of this session that still count, newest first."""
    if not request.user.is_authenticated:
        return []
    verifications = flows.active_verifications(request)
    ids = {v.key_id for v in verifications if v.key_id is not None}
    live = set(Key.objects.active().filter(user=request.user, pk__in=ids).values_list("pk", flat=True)) if ids else ()
    return [
        ActiveFactor(v.type, v.key_id, v.verified_at, False if v.expires_at is None else v.expires_at)
        for v in verifications
        if v.key_id is None or v.key_id in live
    ]


def disabled_fallbacks(request):
    """Names of the fallbacks the signed-in user switched off."""
    if not request.user.is_authenticated:
        return DisabledFallback.objects.none().values_list("fallback", flat=True)
    return DisabledFallback.objects.filter(user=request.user).values_list("fallback", flat=True)


def is_bypassed(request) -> bool:
    """``BYPASS(request)``, as the decorator asks it."""
    path = conf.get().BYPASS
    return bool(path and import_string(path)(request))


def next_check() -> float:
    """A timestamp RECHECK_MIN to RECHECK_MAX seconds from now (each verification draws its own expiry)."""
    s = conf.get()
    return time.time() + random.randint(s.RECHECK_MIN, s.RECHECK_MAX)


def method_url(method: str) -> str:
    """The URL name of the page that verifies with a factor type: ``"TOTP"`` -> ``"multifactor:totp_auth"``."""
    return f"multifactor:{method.lower()}_auth"


def write_session(request, key) -> None:
    """Record that the signed-in user verified with ``key`` (None: with a fallback code)."""
    if key is None:
        flows.record_verification(request, None, FALLBACK)
        return
    if not isinstance(key, Key) or key.user_id != request.user.pk or not key.is_usable:
        raise ValueError("write_session() needs an enabled key of the signed-in user, or None for a fallback code.")
    key.last_used_at = timezone.now()
    Key.objects.filter(pk=key.pk).update(last_used_at=key.last_used_at)
    flows.record_verification(request, key, key.type)


def login(request):
    """The response after a successful verification."""
    return flows.finish(request)


def render(request, template_name, context=None, **kwargs):
    return django_render(request, template_name, {**(context or {})}, **kwargs)
