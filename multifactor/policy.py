"""The decision for one protected request: let it through, challenge, or send the user to enrol.

This follows the contract's rules in order. A verified user whose state is unchanged costs no SQL query and
no session write: the verifications are read from the already loaded session, and the revocation counter
loaded with the user says whether they are still good (see :mod:`multifactor.revocation`). Queries happen
only on the cold paths (no verification yet, not enough factors, a ``user_filter`` dict, a revocation since
the session was last checked).

:func:`aenforce` serves async views without a thread hop when the answer needs no query (a verified user, an
integer ``factors``, no ``user_filter`` or ``BYPASS``); anything else runs :func:`enforce` in a thread.
"""

from __future__ import annotations

import time

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from . import conf, flows, responses, revocation, session
from .models import FALLBACK, Key
from .trust import browsers, sessions


def required_factors(factors, request) -> int:
    """``factors`` may be a number or any callable taking the request (function, partial, method, object)."""
    return int(factors(request)) if callable(factors) else int(factors)


def count_factors(active, user) -> int:
    """Distinct keys, plus at most one for fallback codes, and that only for a user with enabled keys; a
    trusted browser counts as one factor only when nothing else does (it is never a second factor).

    A verified key is enabled (revocation strips it otherwise), so the database is asked only when the
    session holds fallback verifications alone: a fallback's worth depends on keys it did not verify.
    """
    keys = {v.key_id for v in active if v.key_id is not None and not v.trusted}
    fallback = any(v.type == FALLBACK for v in active) and (keys or Key.objects.active().filter(user=user).exists())
    count = len(keys) + (1 if fallback else 0)
    return count or (1 if any(v.trusted for v in active) else 0)


def newest_verified_at(active) -> float | None:
    """When the newest factor verified in this session was verified; a trusted browser's verification was
    made in an earlier session, so it never meets ``max_age``."""
    return max((v.verified_at for v in active if not v.trusted), default=None)


def _stale(active, max_age, now) -> bool:
    newest = newest_verified_at(active)
    return newest is None or now - newest > max_age


def _bypassed(request) -> bool:
    path = conf.get().BYPASS
    return bool(path and import_string(path)(request))


def _matches(user, user_filter) -> bool:
    if user_filter is None:
        return True
    if callable(user_filter):
        return bool(user_filter(user))
    return get_user_model().objects.filter(pk=user.pk, **user_filter).exists()


def enforce(request, factors=0, user_filter=None, max_age=0, advertise=False, user=None):
    """None to let the view run, else the response to send instead (a challenge or an enrolment)."""
    user = request.user if user is None else user
    if not user.is_authenticated or _bypassed(request) or not _matches(user, user_filter):
        return None
    now = time.time()
    state = session.load(request.session)
    fixed = revocation.check(user, state, revocation.current(user))
    if fixed is not None and fixed.ended:
        return signed_out(request)
    if fixed is not None:
        state = fixed
        session.save(request.session, state)
    active = state.active(now)
    required = required_factors(factors, request)
    if not active and required <= 1 and not max_age and browsers.COOKIE in request.COOKIES:
        trust = browsers.redeem(request, user)
        if trust is not None:
            flows.record_verification(request, trust.key, trust.key.type, trust=trust)
            state = session.load(request.session)
            active = state.active(now)
    # A verified key implies the user has keys; ask the database only if needed (a fallback implies nothing).
    has_keys = True if any(v.key_id is not None for v in active) else None

    def keys_exist():
        nonlocal has_keys
        if has_keys is None:
            has_keys = flows.has_keys(user)
        return has_keys

    if not active and keys_exist():
        return challenge(request, state)
    if max_age and active and _stale(active, max_age, now):
        msg = ngettext(
            "This page requires you to verify again every %(seconds)d second.",
            "This page requires you to verify again every %(seconds)d seconds.",
            max_age,
        ) % {"seconds": max_age}
        return challenge(request, state, msg)
    if required and count_factors(active, user) < required:
        msg = ngettext(
            "This page requires %(count)d verified security factor.",
            "This page requires %(count)d verified security factors.",
            required,
        ) % {"count": required}
        return challenge(request, state, msg) if keys_exist() else enrol(request, state, msg)
    if advertise and not state.advertised and not keys_exist():
        messages.info(
            request,
            format_html(
                _('Make your account more secure by <a href="{}">adding a second security factor</a>.'),
                reverse("multifactor:home"),
            ),
        )
        state.advertised = True
        session.save(request.session, state)
    return None


def passes_without_query(state, revision, factors, max_age, now) -> bool:
    """True when the request may go through and knowing it took no query: the state is checked at the current
    revision, a key is verified, ``max_age`` is met and enough distinct keys are verified (fallbacks, whose
    worth depends on other keys, are not counted here)."""
    if revision is revocation.NOT_JOINED or not state.verifications or state.revision != revision[0]:
        return False
    active = state.active(now)
    keys = {v.key_id for v in active if v.key_id is not None and not v.trusted}
    if not keys:
        return factors <= 1 and not max_age and any(v.trusted for v in active)
    if max_age and _stale(active, max_age, now):
        return False
    return len(keys) >= factors


async def aenforce(request, factors=0, user_filter=None, max_age=0, advertise=False):
    """:func:`enforce` for async views: the hot path runs in the event loop, the rest in a thread."""
    user = await request.auser()
    if not user.is_authenticated:
        return None
    if isinstance(factors, int) and user_filter is None and not conf.get().BYPASS:
        state = session.MfaState.from_json(await request.session.aget(session.SESSION_KEY))
        if passes_without_query(state, revocation.joined(user), factors, max_age, time.time()):
            return None
    return await sync_to_async(enforce)(request, factors, user_filter, max_age, advertise, user=user)


def signed_out(request):
    """This session was signed out from elsewhere: log it out and send it to sign in again."""
    from django.contrib.auth.views import redirect_to_login

    path = request.get_full_path()
    sessions.end(request)
    if responses.prefers_json(request):
        return responses.error("not_authenticated", _("Sign in first."), 401)
    return redirect_to_login(path)


def challenge(request, state, message=None):
    return _send(request, state, "multifactor:authenticate", message)


def enrol(request, state, message=None):
    return _send(request, state, "multifactor:add", message)


def _send(request, state, url_name, message):
    url = reverse(url_name)
    if responses.prefers_json(request):
        return responses.error(
            "mfa_required",
            message or _("Multi-factor verification is required."),
            401,
            meta={
                "authenticate_url": reverse("multifactor:authenticate"),
                "enrol_url": reverse("multifactor:add"),
            },
        )
    if request.method in ("GET", "HEAD"):
        state.next_url = request.get_full_path()
        session.save(request.session, state)
    if message:
        messages.warning(request, message)
    return redirect(url)
