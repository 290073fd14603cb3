"""Ending verifications when a key is disabled, deleted, locked or replaced: one rule for every session engine.

Each user has a revision counter (:class:`~multifactor.models.Revision`). Every change that can end one of
the user's verifications raises it in the change's own transaction: a key disabled, deleted, locked or made
pending (however the ORM did it: ``save``, ``update`` with any expression, ``bulk_update``, ``delete``), a
recovery set replaced, an admin reset. A session's MFA state records the counter at which its verifications
were last checked against the keys. A protected request compares the two: equal, nothing was revoked since
(no query, no write); different, the verifications are checked against the keys once and the state records
the counter it read.

The counter is read with the user. :class:`multifactor.backends.ModelBackend` (or ``RevisionMixin`` in a
site's own backend) joins it to the user row that ``login_required`` loads anyway, so the comparison costs no
statement. Without it, one primary-key query per protected request (system check ``multifactor.W007``).

Why no interleaving can bring a revoked verification back: revocation never edits a session. A request that
saves an older copy of the session saves the older counter with it, so the next request checks again. The
counter is read before the keys are, so a check racing a revocation either sees the revoked key or records
the counter from before the revocation (and is checked again on the next request).
"""

from __future__ import annotations

import functools

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import conf, crypto
from .models import Key, Revision, SignedInSession, TrustedBrowser
from .models.trust import password_mac
from .session import MfaState, load, save

NOT_JOINED = object()


# -- reading the counter ---------------------------------------------------------------------------------


@functools.cache
def _descriptor_cache_name() -> str:
    return Revision._meta.get_field("user").remote_field.cache_name


def joined(user):
    """The user's (value, reset_at) as loaded with the user row, or NOT_JOINED if the backend did not join it."""
    cache = getattr(getattr(user, "_state", None), "fields_cache", None)
    if cache is None:
        return NOT_JOINED
    name = _descriptor_cache_name()
    if name not in cache:
        return NOT_JOINED
    row = cache[name]
    return (0, None) if row is None else (row.value, row.reset_at)


def fresh(user_pk):
    """The user's (value, reset_at) read from the database now."""
    row = Revision.objects.filter(user_id=user_pk).values_list("value", "reset_at").first()
    return row or (0, None)


def current(user):
    """Joined if the backend loaded it with the user (no query), else read now (one query per user object:
    the middleware and the protection of one request share it, as they share a joined value)."""
    found = joined(user)
    if found is NOT_JOINED:
        found = getattr(user, "_multifactor_revision", None) or fresh(user.pk)
        user._multifactor_revision = found
    return found


# -- checking a session's verifications ------------------------------------------------------------------


def check(user, state: MfaState, revision) -> MfaState | None:
    """None if the state is known good at ``revision`` (no query); else the corrected state (checked against
    the keys and the session's own row), recording ``revision``. The caller saves a returned state, and logs
    the session out if it comes back ``ended`` (signed out from elsewhere: its revision is then left as it
    was, so that every later request checks again until it is logged out)."""
    if not state.verifications and state.sid is None:
        return None
    value, reset_at = revision
    if state.revision == value:
        return None
    validate(user, state, reset_at)
    if not state.ended:
        state.revision = value
    return state


def validate(user, state: MfaState, reset_at=None) -> MfaState:
    """Drop verifications whose key is gone, pending, disabled, locked or was revoked after they were made
    (then enabled again), those older than an admin reset, fallbacks of a user left with no key or made before
    the user's latest revocation, and those from a trusted browser whose trust ended (one query each). A
    session whose row was signed out loses them all and is marked ``ended``."""
    if state.sid is not None and not _session_live(user, state.sid):
        state.verifications, state.ended = [], True
        return state
    if not state.verifications:
        return state
    keys = Key.objects.filter(user_id=user.pk, confirmed=True).values_list("pk", "enabled", "locked_at", "revoked_at")
    floor = reset_at.timestamp() if reset_at else 0.0
    active, latest = {}, floor
    for pk, enabled, locked_at, revoked_at in keys:
        revoked = max(revoked_at.timestamp() if revoked_at else 0.0, floor)
        latest = max(latest, revoked)
        if enabled and locked_at is None:
            active[pk] = revoked

    trusted = _trusted(user, {v.trust_id for v in state.verifications if v.trust_id is not None})

    def valid(v):
        if v.trust_id is not None and v.trust_id not in trusted:
            return False
        if v.key_id is None:  # a fallback code stands in for keys the user still has
            return bool(active) and v.verified_at > latest
        return v.key_id in active and v.verified_at > active[v.key_id]

    state.verifications = [v for v in state.verifications if valid(v)]
    return state


def _session_live(user, sid) -> bool:
    """Whether this sign-in was not signed out; its ``last_seen_at`` becomes now (one UPDATE)."""
    rows = SignedInSession.objects.filter(pk=sid, user_id=user.pk, ended_at__isnull=True)
    return bool(rows.update(last_seen_at=timezone.now()))


def _trusted(user, ids) -> set:
    """The ids among ``ids`` of the user's trusted browsers that may still count (none when TRUST_DAYS is 0)."""
    days = conf.get().TRUST_DAYS
    if not ids or not days:
        return set()
    mac = password_mac(user)
    rows = TrustedBrowser.objects.usable(days).filter(user_id=user.pk, pk__in=ids).values_list("pk", "password_mac")
    return {pk for pk, stored in rows if crypto.constant_time_equals(stored, mac)}


def refresh_request(request) -> None:
    """Check the current request's own session now (after this request revoked something), so that what it
    renders and saves no longer holds the revoked verification."""
    state = load(request.session)
    if state.verifications or state.sid is not None:
        value, reset_at = fresh(request.user.pk)
        validate(request.user, state, reset_at)
        if not state.ended:
            state.revision = value
        save(request.session, state)


# -- revoking --------------------------------------------------------------------------------------------


def bump(user_pks, reset=False) -> None:
    """Raise these users' counters (creating their rows), in the caller's transaction if there is one."""
    pks = sorted({pk for pk in user_pks if pk is not None})
    if not pks:
        return
    with transaction.atomic():
        Revision.objects.bulk_create([Revision(user_id=pk) for pk in pks], ignore_conflicts=True)
        changes: dict = {"value": F("value") + 1}
        if reset:
            changes["reset_at"] = timezone.now()
        Revision.objects.filter(user_id__in=pks).update(**changes)


def revoke_keys(keys) -> None:
    """End every verification of these keys (Key instances, deleted ones included) in every session."""
    bump({k.user_id for k in keys})


def revoke_user(user) -> None:
    """End every verification of a user made until now, whatever its key (an admin reset)."""
    bump({user.pk}, reset=True)


# Receivers, connected in multifactor.apps (models do not import the services above them).


def on_key_saved(sender, instance, raw=False, **kwargs):
    if raw:
        return
    usable = instance.enabled and instance.locked_at is None
    was_usable = getattr(instance, "_loaded_usable", False)
    instance._loaded_usable = usable and instance.confirmed
    if usable and (instance.confirmed or not was_usable):
        return  # usable, or a pending enrolment that never verified anything
    if not instance.enabled:
        instance.revoked_at = timezone.now()
        Key.objects.filter(pk=instance.pk).update(revoked_at=instance.revoked_at)  # raises the counter
    else:
        bump({instance.user_id})


def on_key_deleted(sender, instance, **kwargs):
    bump({instance.user_id})


def on_keys_changed(sender, user_pks, **kwargs):
    bump(user_pks)
