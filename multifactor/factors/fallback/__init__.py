"""Fallback codes sent over the site's transports (``FALLBACKS``: e-mail by default, any callable).

A code of ``FALLBACK_DIGITS`` digits (8 by default) from ``secrets`` is sent on POST only, to every transport
the user has not switched off at once (a user then notices a code they did not ask for on another channel).
Only its keyed hash is stored, in one row per user that also binds it to the requesting session (a random
nonce) and carries the failure count, so a resend replaces the code but never resets the count. It is valid
``FALLBACK_TTL`` seconds (at most 10 minutes), used once, and counts as at most one factor, only for a user
who has keys of their own: it stands in for a key they cannot reach right now. NIST SP 800-63B-4 3.1.3.1
does not accept e-mail as an out-of-band authenticator: set ``FALLBACKS = {}`` to turn this off.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ... import conf, crypto, errors, flows, session, signals, throttle
from ...models import FALLBACK, DisabledFallback, FallbackCode, Key
from ...transports import debug_print_console, send_email  # noqa: F401  (0.9.x's paths for these transports)
from ..base import Factor, register

logger = logging.getLogger("multifactor")
NONCE = "fallback"  # name of the session-binding nonce in MfaState.pending (not a secret: the code is)


class FallbackFactor(Factor):
    type = FALLBACK
    label = gettext_lazy("Fallback code")
    description = gettext_lazy("A code we send you, when you cannot reach your keys.")
    auth_url_name = "multifactor:fallback_auth"
    start_url_name = ""
    order = 40
    stored = False

    def allowed(self) -> bool:
        return bool(conf.get().FALLBACKS)

    def usable_by(self, user) -> bool:
        return self.allowed() and bool(destinations(user)) and Key.objects.active().filter(user=user).exists()


FACTOR = register(FallbackFactor())


def destinations(user) -> dict[str, object]:
    """{name: shown destination} of the transports that reach this user and that they have not switched off."""
    off = set(DisabledFallback.objects.filter(user=user).values_list("fallback", flat=True))
    found = {}
    for name, (destination, _transport) in conf.get().FALLBACKS.items():
        if name in off:
            continue
        try:
            shown = destination(user)
        except Exception:  # a site's callable must not break the flow
            logger.exception("FALLBACKS[%r] destination failed", name)
            continue
        if shown:
            found[name] = shown
    return found


def _digest(code: str, salt: str) -> str:
    key = crypto.derived_key().encode()  # keyed: a database dump alone cannot test guesses
    return hmac.new(key, f"{salt}:{code}".encode(), hashlib.sha256).hexdigest()


def _require_usable(request):
    if not FACTOR.allowed():
        raise errors.factor_not_allowed()
    if not Key.objects.active().filter(user=request.user).exists():
        raise errors.FlowError("no_key", _("Fallback codes stand in for your keys: add a key first."), 409)


def switched_off(request) -> bool:
    """The user may use fallback codes but every transport is switched off (or reaches them nowhere): the
    page says so instead of sending nothing and starting a cooldown. (The API's ``fallback/send`` answers
    ``{"sent_via": []}`` then, with the same cooldown as any send, so that it answers alike with or without
    an e-mail address on file.)"""
    _require_usable(request)
    return not destinations(request.user)


def _cooldown(wait: int) -> errors.FlowError:
    # "asked", not "sent": the last request may have reached no transport (each one failed).
    message = ngettext(
        "You asked for a code moments ago. Wait %(seconds)d second before asking again.",
        "You asked for a code moments ago. Wait %(seconds)d seconds before asking again.",
        wait,
    ) % {"seconds": wait}
    return errors.FlowError("cooldown", message, 429, retry_after=wait)


def send(request) -> list[str]:
    """Send a new code over every enabled transport; returns the names it was sent through."""
    _require_usable(request)
    s = conf.get()
    now = timezone.now()
    row, _created = FallbackCode.objects.get_or_create(user=request.user)
    if row.locked_at:
        raise errors.FlowError("locked", _("Fallback codes are locked for your account. Ask an administrator."), 403)
    if row.sent_at and (now - row.sent_at).total_seconds() < s.FALLBACK_COOLDOWN:
        wait = int(s.FALLBACK_COOLDOWN - (now - row.sent_at).total_seconds()) + 1
        raise _cooldown(wait)
    code = f"{secrets.randbelow(10**s.FALLBACK_DIGITS):0{s.FALLBACK_DIGITS}d}"
    salt, nonce = secrets.token_hex(8), secrets.token_hex(16)
    claimed = FallbackCode.objects.filter(pk=row.pk, sent_at=row.sent_at).update(
        digest=_digest(code, salt), salt=salt, nonce=nonce, sent_at=now, used_at=None
    )
    if not claimed:  # a parallel send won the cooldown race
        raise _cooldown(s.FALLBACK_COOLDOWN)
    state = session.load(request.session)
    state.pending[NONCE] = nonce
    session.save(request.session, state)
    minutes = max(1, round(s.FALLBACK_TTL / 60))
    message = ngettext(
        "Your verification code is %(code)s. It is valid for %(minutes)d minute.",
        "Your verification code is %(code)s. It is valid for %(minutes)d minutes.",
        minutes,
    ) % {"code": code, "minutes": minutes}
    sent = []
    for name in destinations(request.user):
        try:
            if import_string(s.FALLBACKS[name][1])(request.user, message):
                sent.append(name)
        except Exception:  # one broken transport must not stop the others
            logger.exception("Fallback transport %r failed", name)
    signals.fallback_sent.send(FallbackCode, user=request.user, request=request, type=FALLBACK, sent_via=sent)
    return sent


def authenticate(request, code) -> None:
    """Verify the user with the code they were sent (bound to this session, single use, throttled)."""
    _require_usable(request)
    s = conf.get()
    if not isinstance(code, str) or not code.strip().isdigit() or len(code.strip()) != s.FALLBACK_DIGITS:
        raise errors.FlowError("invalid_code", _("Enter the code we sent you."), 400, param="code")
    code = code.strip()
    nonce = session.load(request.session).pending.get(NONCE)
    row = FallbackCode.objects.filter(user=request.user).first()
    if row is None or not nonce or not row.sent_at:
        raise errors.FlowError("not_sent", _("Ask for a code first."), 409)
    now = timezone.now()

    def check(locked):
        fresh = locked.sent_at and (now - locked.sent_at).total_seconds() <= s.FALLBACK_TTL
        right = crypto.constant_time_equals(locked.digest, _digest(code, locked.salt))
        bound = crypto.constant_time_equals(locked.nonce, nonce)
        if fresh and right and bound and locked.used_at is None:
            return FallbackCode.objects.filter(pk=locked.pk, used_at__isnull=True).update(used_at=now) == 1
        return False

    outcome = throttle.attempt(row.pk, check, request, model=FallbackCode)
    if not outcome.ok:
        raise flows.throttled_error(outcome)
    state = session.load(request.session)
    state.pending.pop(NONCE, None)
    session.save(request.session, state)
    flows.record_verification(request, None, FALLBACK)
