"""What happens when a factor verifies, a key is managed, or a challenge ends: the one place that both the
HTML views and the JSON API call, so the two cannot disagree."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from . import conf, errors, revocation, session, signals
from .models import Key
from .rules import must_use_mfa
from .session import Verification
from .trust import browsers, sessions


def state(request) -> session.MfaState:
    return session.load(request.session)


def active_verifications(request) -> list[Verification]:
    return state(request).active()


def has_keys(user) -> bool:
    """Keys that oblige the user to verify: enabled ones, and locked ones (so a lockout cannot be turned
    into "no keys, enrol a new one" by someone who only has the password)."""
    from django.db.models import Q

    return Key.objects.filter(user=user, confirmed=True).filter(Q(enabled=True) | Q(locked_at__isnull=False)).exists()


# -- verifying -------------------------------------------------------------------------------------------


def record_verification(
    request, key: Key | None, type_: str, uv: bool = False, trust=None, may_trust: bool = True
) -> None:
    """Add a verified factor to the session (replacing an older one of the same key), cycle the session key,
    and announce it.

    The verifications already in the session are carried over only after a check against the current state
    of the keys, at a revocation counter read before that check (one query each): a verification that races
    a revocation of another key must not carry the revoked one over (see :mod:`multifactor.revocation`).
    """
    now = time.time()
    mfa = state(request)
    kept = [v for v in mfa.active(now) if not (v.key_id == (key.pk if key else None) and v.type == type_)]
    expires = session.draw_expiry(now)
    if trust is not None:  # no longer than the trust itself
        expires = min(expires or float("inf"), trust.expires_at.timestamp())
    mfa.verifications = [
        Verification(key.pk if key else None, type_, now, expires, uv, trust.pk if trust else None),
        *kept,
    ]
    sessions.track(request, mfa)
    value, reset_at = revocation.fresh(request.user.pk)
    revocation.validate(request.user, mfa, reset_at)
    if mfa.ended:  # this session was signed out from elsewhere meanwhile
        sessions.end(request)
        raise errors.FlowError("not_authenticated", _("Sign in first."), 401)
    mfa.revision = value
    request.session.cycle_key()
    session.save(request.session, mfa)
    if trust is None:
        if may_trust and browsers.requested(request):
            browsers.remember(request, key)
        signals.key_used.send(Key, key=key, type=type_, user=request.user, request=request)


def throttled_error(outcome) -> errors.FlowError:
    """Turn a failed :class:`~multifactor.throttle.Outcome` into the error users see: how long to wait, how
    many wrong answers are left before the key locks (once that matters: from the first delay, or when few
    are left; the API always gets the number as ``attempts_left``), and what to do once it is locked."""
    left = outcome.attempts_left
    if outcome.reason == "throttled":
        message = ngettext(
            "Too many wrong answers. Try again in %(seconds)d second.",
            "Too many wrong answers. Try again in %(seconds)d seconds.",
            outcome.retry_after,
        ) % {"seconds": outcome.retry_after}
        return errors.FlowError(
            "throttled",
            _join(message, _tries_left(left)),
            429,
            retry_after=outcome.retry_after,
            attempts_left=left,
        )
    if outcome.reason == "locked":
        if outcome.key is not None and not isinstance(outcome.key, Key):  # the user's fallback codes
            message = _(
                "Too many wrong answers: codes sent to you are locked. Verify with one of your keys or a recovery "
                "code, or ask an administrator to reset your multi-factor authentication."
            )
        else:
            message = _(
                "Too many wrong answers: this key is locked. Verify with another key or a recovery code, then "
                "remove the locked key and add it again. No other way in? Ask an administrator to reset your "
                "multi-factor authentication."
            )
        return errors.FlowError("key_locked", message, 403, attempts_left=0)
    if outcome.reason == "disabled":
        return errors.FlowError("key_disabled", _("This key is disabled."), 403)
    message = _("That code is not valid.")
    if outcome.retry_after or (left is not None and left <= 3):
        wait = ngettext(
            "Wait %(seconds)d second before the next try.",
            "Wait %(seconds)d seconds before the next try.",
            outcome.retry_after,
        ) % {"seconds": outcome.retry_after}
        message = _join(message, _tries_left(left), wait if outcome.retry_after else "")
    return errors.FlowError("invalid_code", message, 400, param="code", attempts_left=left)


def _tries_left(left) -> str:
    if left is None:
        return ""
    return ngettext(
        "%(count)d more wrong answer locks this key.",
        "%(count)d more wrong answers lock this key.",
        left,
    ) % {"count": left}


def _join(*sentences) -> str:
    return " ".join(s for s in sentences if s)


def safe_next(request, consume=True) -> str | None:
    """The remembered URL if ``url_has_allowed_host_and_scheme`` accepts it, else None."""
    mfa = state(request)
    target = mfa.next_url
    if consume and target:
        mfa.next_url = None
        session.save(request.session, mfa)
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


def success_url(request, consume=True) -> str:
    """Where to go after a verification: the remembered URL if it is safe, else LOGIN_REDIRECT_URL."""
    return safe_next(request, consume) or resolve_url(settings.LOGIN_REDIRECT_URL)


def finish(request):
    """The HTML response after a verification: the login message, then a redirect to the remembered URL if it
    is safe, else LOGIN_CALLBACK's response, else a redirect to LOGIN_REDIRECT_URL."""
    from django.shortcuts import redirect

    s = conf.get()
    login_message(request)
    target = safe_next(request)
    if target:
        response = redirect(target)
    elif s.LOGIN_CALLBACK:
        response = import_string(s.LOGIN_CALLBACK)(request, username=request.user.get_username())  # type: ignore[arg-type]
    else:
        response = redirect(resolve_url(settings.LOGIN_REDIRECT_URL))
    return browsers.apply(request, response)  # the trust cookie, when the user asked for it


def login_message(request) -> None:
    """LOGIN_MESSAGE, after a verification through any HTML page (the WebAuthn pages' JSON endpoints too)."""
    s = conf.get()
    if s.SHOW_LOGIN_MESSAGE:
        messages.info(request, format_html(str(s.LOGIN_MESSAGE), reverse("multifactor:home")))


def remember_next(request, url: str) -> None:
    mfa = state(request)
    if mfa.next_url != url:
        mfa.next_url = url
        session.save(request.session, mfa)


# -- managing keys ---------------------------------------------------------------------------------------


def can_manage(request) -> bool:
    """A user with no keys may enrol a first one; otherwise one of their own keys (or a recovery code) verified
    within REAUTH_WINDOW. A fallback code does not count: it proves a mailbox, and whoever has the password and
    the mailbox must not be able to enrol a key of their own (NIST SP 800-63B-4 forbids e-mail authenticators)."""
    if not has_keys(request.user):
        return True
    window = conf.get().REAUTH_WINDOW
    now = time.time()
    return any(
        v.key_id is not None and not v.trusted and now - v.verified_at <= window for v in active_verifications(request)
    )


def require_manage(request) -> None:
    if not can_manage(request):
        raise errors.reauthentication_required()


def user_key(request, key_id) -> Key:
    """The signed-in user's confirmed key with this id (an int, or a string of ASCII digits), else a 404."""
    if isinstance(key_id, str) and not (key_id.isascii() and key_id.isdigit()):
        raise errors.not_found()  # no " 1", "1_0" or "١" spellings of an id
    try:
        return Key.objects.get(user=request.user, confirmed=True, pk=int(key_id))
    except (Key.DoesNotExist, TypeError, ValueError, OverflowError):
        raise errors.not_found() from None


def set_enabled(request, key: Key, enabled: bool) -> Key:
    require_manage(request)
    if key.enabled == enabled:
        return key
    if enabled and key.locked_at:
        raise errors.FlowError("key_locked", _("A locked key must be enrolled again."), 409)
    if not enabled:
        require_not_last(request, key)
    key.enabled = enabled
    key.save(update_fields=["enabled"])  # a disabled key is revoked everywhere by the model's signal
    if not enabled:
        revocation.refresh_request(request)
    signals.key_toggled.send(Key, key=key, enabled=enabled, user=request.user, request=request)
    return key


def check_name(name: str) -> str:
    """The name as stored (stripped); a 400 if it is too long."""
    name = (name or "").strip()
    if len(name) > Key._meta.get_field("name").max_length:  # type: ignore[operator]  # a CharField has one
        raise errors.FlowError("invalid", _("The name is too long."), 400, param="name")
    return name


def rename(request, key: Key, name: str) -> Key:
    name = check_name(name)
    key.name = name
    key.save(update_fields=["name"])
    return key


def require_not_last(request, key: Key) -> None:
    """Refuse to remove the user's last key (recovery codes do not count) when REQUIRE selects them."""
    rules = conf.get().REQUIRE
    if not rules or not key.enabled or key.type == "RECOVERY":
        return
    others = Key.objects.active().filter(user=request.user).exclude(pk=key.pk).exclude(type="RECOVERY")
    if not others.exists() and must_use_mfa(request.user, rules):
        raise errors.FlowError(
            "mfa_required_by_policy",
            _("This site requires multi-factor authentication for your account: add another key before removing it."),
            409,
        )


def delete(request, key: Key) -> None:
    require_manage(request)
    require_not_last(request, key)
    pk = key.pk
    key.delete()  # revoked everywhere by the model's signal
    revocation.refresh_request(request)
    signals.key_removed.send(Key, key=key, key_pk=pk, user=request.user, request=request)


def add_key(request, key: Key) -> Key:
    """Confirm a newly enrolled key. A user's first key also counts as a verification of it; a further key
    does not: its secret was handed to whoever holds the session, so enrolling it proves nothing a step-up
    (``max_age``), a second factor or the re-authentication window may rely on."""
    first = not has_keys(request.user)
    key.confirmed = True
    key.save()
    if first:
        record_verification(request, key, key.type, may_trust=False)
    signals.key_added.send(Key, key=key, user=request.user, request=request)
    return key
