"""TOTP authenticator apps (RFC 6238: SHA1, 6 digits, 30 s steps, so every app works).

The seed (160 bits from ``secrets`` via pyotp) is made on the server and stored encrypted; a pending
enrolment is a Key row with ``confirmed=False`` whose id, never its seed, the session remembers. Each code
is accepted once: the matched time step must be later than the last accepted one, and the comparison and
update happen on the locked row (SECURITY.md R2).

A user may have several apps (SECURITY.md R4, R17). A code is tried on each of them (pyotp compares in
constant time) inside one :func:`multifactor.throttle.attempt_any`, which locks all of the user's TOTP rows:

- the app that accepts it verifies the user, and the failure count, which is the user's, goes back to 0 on
  every app: a right code of one app is never a failed guess on another, fires no ``verification_failed``;
- a code that no app accepts is one failed guess, counted on every usable app, so ``THROTTLE_MAX_FAILURES``
  wrong guesses lock them all, however many apps are enrolled (no N x limit guesses with N apps);
- an app in its delay, locked or disabled checks no code, so it can neither accept one nor answer for
  another app: a wrong code is answered with 429 only when every app is delayed (the per-user cap), and
  with ``key_locked`` only when no app is left. Apps whose counts differ (one enrolled after wrong guesses
  on another) each wait their own delay; a right code of an app that is not delayed still works.
"""

from __future__ import annotations

import unicodedata
from datetime import timedelta

import pyotp
import segno
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ... import conf, crypto, errors, flows, session, throttle
from ...models import Key, KeyType
from ..base import Factor, register

DIGITS = 6


class TotpFactor(Factor):
    type = KeyType.TOTP.value
    label = gettext_lazy("Authenticator app")
    description = gettext_lazy("A six-digit code from an app such as Google Authenticator, Aegis or 1Password.")
    auth_url_name = "multifactor:totp_auth"
    start_url_name = "multifactor:totp_start"
    order = 20


FACTOR = register(TotpFactor())


def normalise(code) -> str | None:
    """The code as ASCII digits (spaces and dashes dropped, full-width digits folded), or None."""
    if not isinstance(code, str):
        return None
    code = unicodedata.normalize("NFKC", code).replace(" ", "").replace("-", "")
    return code if len(code) == DIGITS and code.isascii() and code.isdigit() else None


def _require_allowed():
    if not FACTOR.allowed():
        raise errors.factor_not_allowed()


def _invalid_code():
    return errors.FlowError("invalid_code", _("Enter the 6-digit code from your app."), 400, param="code")


# -- enrolment -------------------------------------------------------------------------------------------


def begin(request) -> tuple[Key, str]:
    """Start (or resume) an enrolment: a pending key with a fresh server-made seed. Returns (key, seed)."""
    _require_allowed()
    flows.require_manage(request)
    ttl = timedelta(seconds=conf.get().TOTP_ENROL_TTL)
    # Expired enrolments go, and so do ones locked by wrong codes: starting again gives a fresh seed.
    Key.objects.filter(user=request.user, confirmed=False).filter(
        Q(created_at__lt=timezone.now() - ttl) | Q(enabled=False)
    ).delete()
    state = session.load(request.session)
    key = Key.objects.filter(
        user=request.user,
        type=FACTOR.type,
        confirmed=False,
        enabled=True,
        pk=state.pending.get("TOTP"),  # type: ignore[misc]  # None matches no row
    ).first()
    if key is None:
        key = Key.objects.create(
            user=request.user,
            type=FACTOR.type,
            confirmed=False,
            secret=crypto.encrypt(pyotp.random_base32()),
        )
        # A new dict, not an in-place change: the loaded state may share its dict with the session's data,
        # and an in-place change would not mark the session modified.
        state.pending["TOTP"] = key.pk
        session.save(request.session, state)
    return key, crypto.decrypt(key.secret)


def provisioning_uri(user, seed: str) -> str:
    return pyotp.TOTP(seed).provisioning_uri(name=user.get_username(), issuer_name=conf.get().TOKEN_ISSUER_NAME)


def qr_svg(uri: str) -> str:
    """The QR code as inline SVG markup, drawn on the server (no client-side script, CSP-safe)."""
    return segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff", omitsize=False)


def activate(request, code, name="") -> Key:
    """Finish an enrolment with the app's current code; the new key also counts as verified."""
    _require_allowed()
    flows.require_manage(request)
    state = session.load(request.session)
    pk: int = state.pending.get("TOTP")  # type: ignore[assignment]  # None fails the check below
    ttl = timedelta(seconds=conf.get().TOTP_ENROL_TTL)
    if not Key.objects.filter(pk=pk, user=request.user, confirmed=False, created_at__gte=timezone.now() - ttl).exists():
        raise errors.FlowError("no_pending_enrolment", _("Start the enrolment again: it expired."), 409)
    normalised = normalise(code)
    if normalised is None:
        raise _invalid_code()
    outcome = throttle.attempt(pk, lambda key: _accept(key, normalised), request, pending=True)
    if not outcome.ok:
        raise flows.throttled_error(outcome)
    state = session.load(request.session)
    state.pending.pop("TOTP", None)
    session.save(request.session, state)
    key = outcome.key
    key.name = (name or "").strip()[:64] or _("Authenticator app")
    return flows.add_key(request, key)


# -- verification ----------------------------------------------------------------------------------------


def authenticate(request, code) -> Key:
    """Verify the user with a code from any of their TOTP keys."""
    keys = list(Key.objects.active().filter(user=request.user, type=FACTOR.type).values_list("pk", flat=True))
    if not keys:
        if Key.objects.filter(user=request.user, type=FACTOR.type, confirmed=True, locked_at__isnull=False).exists():
            raise flows.throttled_error(throttle.Outcome(False, "locked"))
        raise errors.FlowError("no_key", _("You have no authenticator app set up."), 400)
    normalised = normalise(code)
    if normalised is None:
        raise _invalid_code()
    outcome = throttle.attempt_any(keys, lambda key: _accept(key, normalised), request)
    if not outcome.ok:
        raise flows.throttled_error(outcome)
    flows.record_verification(request, outcome.key, FACTOR.type)
    return outcome.key


def _accept(key: Key, code: str) -> bool:
    """True if ``code`` matches a time step later than the key's last accepted one; records that step."""
    try:
        totp = pyotp.TOTP(crypto.decrypt(key.secret))
        step = totp.verify_and_get_timecode(code, valid_window=conf.get().TOTP_WINDOW)
    except (pyotp.exceptions.OTPVerificationError, crypto.InvalidToken, ValueError):
        return False
    last = key.last_step
    if last is not None and step <= last:
        return False
    # A conditional update, so the step is claimed once even where the row lock is a no-op (SQLite).
    claimed = (
        Key.objects.filter(pk=key.pk)
        .filter(**({"last_step__lt": step} if last is not None else {"last_step__isnull": True}))
        .update(last_step=step)
    )
    key.last_step = step
    return claimed == 1
