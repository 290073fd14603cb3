"""Trusted browsers: "trust this browser for TRUST_DAYS days" after a verification.

The browser gets a random token (256 bits from ``secrets``) in its own cookie; the server keeps only its
sha256, bound to the user, to the key that was verified and (by an HMAC) to the user's password. In a later
session of that browser, with no verification yet, a page asking for at most one factor and no ``max_age``
accepts the trust as one verified factor of that key (:func:`redeem`, called by :mod:`multifactor.policy`).
The session then holds a verification marked with the trust's id, which :mod:`multifactor.revocation`
checks against the row like any other: revoking a trust deletes the row and raises the user's revision, so
a session holding a verification made from it drops it on its next request, in every process and engine.

The cookie is looked at only when a session has no verification that meets the page: the hot path of a
verified session is untouched.
"""

from __future__ import annotations

import datetime
import json
import secrets

from django.conf import settings
from django.utils import timezone

from .. import audit, conf, crypto, revocation
from ..models import Key, TrustedBrowser
from ..models.trust import password_mac

COOKIE = "multifactor_trust"
PENDING = "_multifactor_trust_token"  # request attribute: a token to set on the response
FORGET = "_multifactor_trust_forget"  # request attribute: delete the cookie on the response
TRUTHY = ("1", "on", "true", "yes")


def days() -> int:
    return conf.get().TRUST_DAYS


def requested(request) -> bool:
    """Whether this verification request asks to trust the browser: the form's ``trust_browser`` checkbox,
    or ``"trust_browser": true`` in a JSON body (the API, and the WebAuthn page's script)."""
    if not days() or request.method != "POST":
        return False
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError):
            return False
        return isinstance(body, dict) and body.get("trust_browser") is True
    return str(request.POST.get("trust_browser", "")).lower() in TRUTHY


def _hash(token: str) -> str:
    return crypto.sha256_hex(token.encode())


def _user_agent(request) -> str:
    return request.META.get("HTTP_USER_AGENT", "").replace("\x00", "")[:300]


def remember(request, key: Key | None) -> TrustedBrowser | None:
    """Trust this browser for ``key`` (a stored key: a fallback code proves no key and is never trusted).
    The token goes to the response through :func:`apply`; the trust this browser had before is replaced."""
    if key is None or key.pk is None or not days():
        return None
    now = timezone.now()
    previous = request.COOKIES.get(COOKIE)
    if previous:
        TrustedBrowser.objects.filter(user=request.user, token_hash=_hash(previous)).delete()
    token = secrets.token_urlsafe(32)
    trust = TrustedBrowser.objects.create(
        user=request.user,
        key=key,
        token_hash=_hash(token),
        password_mac=password_mac(request.user),
        user_agent=_user_agent(request),
        created_at=now,
        expires_at=now + datetime.timedelta(days=days()),
    )
    setattr(request, PENDING, token)
    audit.record("browser_trusted", request.user, request, key, trust_id=trust.pk, days=days())
    return trust


def apply(request, response):
    """Set (or delete) the trust cookie on the response of a verification or a revocation."""
    token = getattr(request, PENDING, None)
    if token:
        response.set_cookie(
            COOKIE,
            token,
            max_age=days() * 86400,
            path=settings.SESSION_COOKIE_PATH,
            domain=settings.SESSION_COOKIE_DOMAIN,
            secure=settings.SESSION_COOKIE_SECURE or request.is_secure(),
            httponly=True,
            samesite="Lax",
        )
    elif getattr(request, FORGET, False):
        response.delete_cookie(
            COOKIE, path=settings.SESSION_COOKIE_PATH, domain=settings.SESSION_COOKIE_DOMAIN, samesite="Lax"
        )
    return response


def current(request, user) -> TrustedBrowser | None:
    """This browser's trust for ``user`` if it may count now (cookie, row, key, expiry, reset, password)."""
    token = request.COOKIES.get(COOKIE)
    if not token or not days() or len(token) > 100:
        return None
    trust = TrustedBrowser.objects.usable(days()).filter(user_id=user.pk, token_hash=_hash(token)).first()
    if trust is None:
        return None
    if not crypto.constant_time_equals(trust.password_mac, password_mac(user)):
        trust.delete()  # the password changed since: this trust is over for good
        return None
    return trust


def redeem(request, user) -> TrustedBrowser | None:
    """The trust to count as a verification now, its use recorded; None if this browser has none."""
    trust = current(request, user)
    if trust is not None:
        TrustedBrowser.objects.filter(pk=trust.pk).update(last_used_at=timezone.now())
    return trust


def listing(request) -> list[TrustedBrowser]:
    """The user's trusted browsers that still count, newest first, ``current`` set on this browser's."""
    token = request.COOKIES.get(COOKIE)
    mine = _hash(token) if token else None
    if not days():
        return []
    rows = list(TrustedBrowser.objects.usable(days()).filter(user=request.user))
    mac = password_mac(request.user)
    rows = [r for r in rows if crypto.constant_time_equals(r.password_mac, mac)]
    for row in rows:
        row.current = mine is not None and crypto.constant_time_equals(row.token_hash, mine)
    return rows


def revoke(request, trust_id=None) -> int:
    """End one of the user's trusts (``trust_id``) or all of them, in every session at once: the rows go and
    the user's revision rises, so a session holding a verification made from one re-validates."""
    rows = TrustedBrowser.objects.filter(user=request.user)
    if trust_id is not None:
        rows = rows.filter(pk=trust_id)
    token = request.COOKIES.get(COOKIE)
    ids = list(rows.values_list("pk", "token_hash"))
    if not ids:
        return 0
    TrustedBrowser.objects.filter(pk__in=[pk for pk, _h in ids]).delete()
    revocation.bump({request.user.pk})
    revocation.refresh_request(request)
    if token and any(crypto.constant_time_equals(h, _hash(token)) for _pk, h in ids):
        setattr(request, FORGET, True)
    audit.record("trust_revoked", request.user, request, trust_ids=[pk for pk, _h in ids])
    return len(ids)
