"""Ending verifications when a key is disabled, deleted or locked, in every session, at once.

Protected requests must not pay a query for this, so the work happens when a key is revoked instead:

* **Server-side sessions** (db, cache, cached_db, file): each verification is recorded in
  :class:`~multifactor.models.SessionVerification` when it is added. Revoking a key loads every session
  listed for it through the session store, strips the verification and saves it back, so the next request
  to any worker process reads a session without it. A protected request only compares the session key with
  the one the state was indexed under (no query); a session re-keyed behind our back is re-validated
  against the database once and indexed again.
* **signed_cookies sessions** live in the browser and cannot be edited from the server. There each user has a
  revision token in the shared cache (``MULTIFACTOR["CACHE"]``), changed on every revocation; a request
  whose session carries another token re-validates its verifications against the database once. With a
  process-local cache (locmem, dummy) the database is asked on every protected request instead, since other
  processes' revocations cannot be seen (``manage.py check`` warns).
"""

from __future__ import annotations

import secrets
import weakref
from importlib import import_module

from django.conf import settings
from django.contrib.sessions.backends.signed_cookies import (
    SessionStore as SignedCookieStore,
)
from django.core.cache import caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from . import conf
from .session import SESSION_KEY, MfaState, load, save

_mode = None  # "index", "revision" or "database"


def reset():
    global _mode
    _mode = None


def session_store_class():
    return import_module(settings.SESSION_ENGINE).SessionStore


def mode() -> str:
    global _mode
    if _mode is None:
        if not issubclass(session_store_class(), SignedCookieStore):
            _mode = "index"
        elif isinstance(cache(), (LocMemCache, DummyCache)):
            _mode = "database"
        else:
            _mode = "revision"
    return _mode


def cache():
    return caches[conf.get().CACHE]


def _revision_key(user_pk) -> str:
    return f"multifactor:rev:{user_pk}"


# Per cache object (Django keeps one per thread and alias): how to read a token from it.
_readers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _reader(shared):
    """A function reading a revision token from ``shared``, as a string or None.

    Django's RedisCache builds a new client object on every call and sends reads to a random replica, which
    may lag behind the revocation just written to the primary. For it the token is read through one client
    of the primary kept per cache object; any other cache is asked through the cache API (it must show a
    write to every later read).
    """
    read = _readers.get(shared)
    if read is None:
        if type(shared) is RedisCache:
            client = shared._cache.get_client(write=True)
            key_func, prefix, version = shared.key_func, shared.key_prefix, shared.version

            def read(name):
                raw = client.get(key_func(name, prefix, version))
                return None if raw is None else raw.decode()

        else:

            def read(name):
                value = shared.get(name)
                return None if value is None else str(value)

        _readers[shared] = read
    return read


def read_revision(user_pk) -> str | None:
    return _reader(cache())(_revision_key(user_pk))


def _new_token() -> int:
    # An int: Django's Redis serializer (and django-redis's) stores ints as plain digits, so a read needs
    # no unpickling.
    return secrets.randbits(62)


def current_revision(user_pk) -> str:
    token = read_revision(user_pk)
    if token is None:
        cache().add(_revision_key(user_pk), _new_token(), timeout=None)
        token = read_revision(user_pk)
    return token


# -- the protected-request check -------------------------------------------------------------------------


def still_valid(request, state: MfaState) -> MfaState | None:
    """None if the state's verifications are known good (no query, no write); else a corrected state.

    The caller saves a returned state into the session.
    """
    if not state.verifications:
        return None
    current = mode()
    if current == "index":
        if state.indexed_as == request.session.session_key:
            return None
        fixed = validate(request.user, state)
        register(request, fixed)
        return fixed
    if current == "revision":
        if state.revision and read_revision(request.user.pk) == state.revision:
            return None
        revision = current_revision(request.user.pk)  # read before the database: a revocation racing us wins
        fixed = validate(request.user, state)
        fixed.revision = revision
        return fixed
    before = list(state.verifications)  # validate() edits the state in place
    fixed = validate(request.user, state)
    return fixed if fixed.verifications != before else None


def validate(user, state: MfaState) -> MfaState:
    """Drop verifications whose key is gone or disabled or was disabled after they were made (then enabled
    again), and fallbacks of a user left with no key or made before the user's latest revocation (1 query)."""
    from .models import Key

    keys = Key.objects.filter(user=user, confirmed=True).values_list("pk", "enabled", "revoked_at")
    active, latest = {}, 0.0
    for pk, enabled, revoked_at in keys:
        revoked = revoked_at.timestamp() if revoked_at else 0.0
        latest = max(latest, revoked)
        if enabled:
            active[pk] = revoked

    def valid(v):
        if v.key_id is None:  # a fallback code stands in for keys the user still has
            return bool(active) and v.verified_at > latest
        return v.key_id in active and v.verified_at > active[v.key_id]

    state.verifications = [v for v in state.verifications if valid(v)]
    return state


# -- recording verifications -----------------------------------------------------------------------------


def register(request, state: MfaState, previous_key: str | None = None) -> None:
    """Record the session's verifications so a revocation can find it (called when one is added).

    ``previous_key`` is the session key before a ``cycle_key()``; its rows go. One transaction, two
    statements: the rows of the previous, indexed and current keys and the user's stale rows are deleted
    together, then the current ones inserted.
    """
    from .models import SessionVerification

    current = mode()
    if current == "revision":
        state.revision = current_revision(request.user.pk)
        return
    if current != "index":
        return
    session = request.session
    if session.session_key is None:
        session.save()
    key = session.session_key
    stale_before = timezone.now() - timezone.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    keys = sorted({k for k in (previous_key, state.indexed_as, key) if k})
    with transaction.atomic():
        SessionVerification.objects.filter(
            Q(session_key__in=keys) | Q(user=request.user, created_at__lt=stale_before)
        ).delete()
        SessionVerification.objects.bulk_create(
            SessionVerification(session_key=key, user=request.user, key_id=v.key_id) for v in state.verifications
        )
    state.indexed_as = key


def forget_session(session_key) -> None:
    """Drop a session's index rows (on logout); only server-side sessions have any."""
    from .models import SessionVerification

    if session_key and mode() == "index":
        SessionVerification.objects.filter(session_key=session_key).delete()


# -- revoking --------------------------------------------------------------------------------------------


def revoke_keys(keys) -> None:
    """End every verification of these keys (Key instances, deleted ones included) in every session.

    Called by the Key model's signals and bulk update, so the admin, commands and cascades all revoke.
    Runs now and again once the surrounding transaction commits, so a request that re-validated against
    the database before the commit cannot keep a verification alive.
    """
    pairs = {(k.user_id, k.pk) for k in keys}
    if pairs:
        _on_commit_too(lambda: _revoke(pairs))


def revoke_user(user) -> None:
    """End every verification of a user (an admin reset)."""
    _on_commit_too(lambda: _revoke({(user.pk, None)}, everything=True))


def strip_request(request, key_pks=None) -> None:
    """Also strip the current request's session in memory, which the response would otherwise save back.

    ``key_pks`` None strips everything; fallbacks go too when the user has no active key left.
    """
    from .models import Key

    everything = key_pks is None
    dead = set(key_pks or ())
    if not everything and not Key.objects.active().filter(user=request.user).exists():
        dead.add(None)
    state = load(request.session)
    if _strip(state, dead, everything):
        save(request.session, state)


def _on_commit_too(fn) -> None:
    fn()
    if connection.in_atomic_block:
        transaction.on_commit(fn)


def _revoke(pairs, everything=False) -> None:
    from .models import Key, SessionVerification

    by_user: dict = {}
    for user_pk, key_pk in pairs:
        by_user.setdefault(user_pk, set()).add(key_pk)
    for user_pk, dead in by_user.items():
        if not everything and not Key.objects.active().filter(user_id=user_pk).exists():
            dead.add(None)  # a fallback code only stands in for keys the user still has
        if mode() != "index":
            cache().set(_revision_key(user_pk), _new_token(), timeout=None)
            continue
        rows = SessionVerification.objects.filter(user_id=user_pk)
        if not everything:
            which = Q(key_id__in=[k for k in dead if k is not None])
            rows = rows.filter(which | Q(key_id__isnull=True) if None in dead else which)
        store_class = session_store_class()
        for session_key in set(rows.values_list("session_key", flat=True)):
            store = store_class(session_key=session_key)
            data = store.get(SESSION_KEY)
            if store.session_key is None:
                continue  # expired or gone
            state = MfaState.from_json(data)
            if _strip(state, dead, everything):
                save(store, state)
                store.save()
        rows.delete()


def _strip(state: MfaState, dead: set, everything: bool) -> bool:
    kept = [] if everything else [v for v in state.verifications if v.key_id not in dead]
    changed = kept != state.verifications
    state.verifications = kept
    return changed
