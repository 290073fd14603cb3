"""The user's signed-in sessions: recorded at sign-in and on verification, listed, and signed out from elsewhere.

Signing a session out marks its row ended and raises the user's revision (:mod:`multifactor.revocation`);
the session's own MFA state names its row (``sid``), so its next request (revision differs) checks the row
and is logged out. This works the same on every session engine, signed_cookies included, and no session
key is stored: a table of session keys (even encrypted) would be a table of bearer credentials, and the
revision check already refuses the session on its next request, which deleting a stored session could not
do better (a request in flight would write it back, and a signed cookie cannot be deleted at all). A request
in flight that saves the older copy of the session saves the older revision with it, so the next request
checks again and the sign-out is never undone.

``last_seen_at`` moves at sign-in, on verification and on each revision check, never on the hot path.
"""

from __future__ import annotations

from django.contrib.auth import logout
from django.utils import timezone

from .. import audit, revocation, session
from ..models import SignedInSession


def _user_agent(request) -> str:
    return request.META.get("HTTP_USER_AGENT", "").replace("\x00", "")[:300]


def _new_row(request, user) -> SignedInSession:
    return SignedInSession.objects.create(user=user, ip=audit.client_ip(request), user_agent=_user_agent(request))


def start(request, user, state: session.MfaState) -> session.MfaState:
    """Give this session a row (unless it has a live one of this user) and check its state at the current
    revision: a sign-in of the same user keeps the session's data, verifications included."""
    live = state.sid is not None and SignedInSession.objects.filter(
        pk=state.sid, user_id=user.pk, ended_at__isnull=True
    ).update(last_seen_at=timezone.now(), ip=audit.client_ip(request), user_agent=_user_agent(request))
    if not live:
        state.sid = _new_row(request, user).pk
    value, reset_at = revocation.fresh(user.pk)
    revocation.validate(user, state, reset_at)
    state.revision = value
    session.save(request.session, state)
    return state


def on_logged_in(sender, request=None, user=None, **kwargs):
    """``user_logged_in`` receiver: record the sign-in."""
    if request is None or not hasattr(request, "session") or user is None:
        return
    start(request, user, session.load(request.session))


def on_logged_out(sender, request=None, user=None, **kwargs):
    """``user_logged_out`` receiver: the row ends with the session (it is flushed right after)."""
    if request is None or not hasattr(request, "session"):
        return
    sid = session.load(request.session).sid
    if sid is not None:
        SignedInSession.objects.filter(pk=sid, ended_at__isnull=True).update(ended_at=timezone.now())


def track(request, state: session.MfaState) -> None:
    """On verification: a session signed in before tracking existed gets its row now."""
    if state.sid is None:
        state.sid = _new_row(request, request.user).pk


def listing(request) -> list[SignedInSession]:
    """The user's sessions not signed out, most recently seen first, ``current`` set on this one."""
    sid = session.load(request.session).sid
    rows = list(SignedInSession.objects.filter(user=request.user, ended_at__isnull=True))
    for row in rows:
        row.current = row.pk == sid  # type: ignore[attr-defined]  # for display only
    return rows


def sign_out(request, session_id=None, others=False) -> int:
    """Sign out one of the user's sessions (``session_id``; this one too) or every other one (``others``).

    The rows end and the user's revision rises in one transaction, so each of those sessions is logged out
    on its next request, in any process; signing out this session logs it out now."""
    sid = session.load(request.session).sid
    rows = SignedInSession.objects.filter(user=request.user, ended_at__isnull=True)
    if others:
        rows = rows.exclude(pk=sid) if sid is not None else rows
    else:
        rows = rows.filter(pk=session_id)
    ids = list(rows.values_list("pk", flat=True))
    if not ids:
        return 0
    from django.db import transaction

    with transaction.atomic():
        SignedInSession.objects.filter(pk__in=ids).update(ended_at=timezone.now())
        revocation.bump({request.user.pk})
    audit.record("session_signed_out", request.user, request, session_ids=ids)
    if sid in ids:
        logout(request)
    else:
        revocation.refresh_request(request)  # this session stays: it need not check again next time
    return len(ids)


def end(request) -> None:
    """Log out a session found signed out from elsewhere (its state came back ``ended``)."""
    logout(request)
