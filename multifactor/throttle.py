"""Failure counting shared by every factor (SECURITY.md R4, R17).

Consecutive failures are counted per key in the key's row. After ``THROTTLE_FREE_FAILURES`` of them each
further failure doubles a delay (from ``THROTTLE_BASE_DELAY`` up to ``THROTTLE_MAX_DELAY`` seconds) during
which the key refuses to check any answer; at ``THROTTLE_MAX_FAILURES`` the key is locked (disabled, with
``locked_at`` set) and must be re-enrolled. A success resets the count. Every failed outcome says how many
wrong answers are left before the lock (``attempts_left``), and an answer refused during a delay is written to
the audit trail (``verification_throttled``): it was not checked, so it is no failure, but it is an attempt.
The row is locked for the whole check (``select_for_update``) and the counter is bumped with an ``UPDATE ...
SET failures = failures + 1``, so parallel guesses are all counted on every database. Only the key is
affected: the user stays signed in and their other keys keep working.

Keys that answer the same kind of code (a user's several authenticator apps) go through
:func:`attempt_any`: the code is tried on each of them, and only a code that none of them accepts is a
failure, counted once on every one of them. So a right code of one app is never a failure of another, and a
user's wrong guesses are capped at ``THROTTLE_MAX_FAILURES`` however many apps they enrolled.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import audit, conf, signals
from .models import FALLBACK, Key


@dataclasses.dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str = ""  # "", "invalid", "throttled", "locked", "disabled"
    retry_after: int = 0
    key: Key = None  # type: ignore[assignment]  # None only when not ok: callers read it after checking ok
    attempts_left: int | None = None  # wrong answers left before the key locks (None: not known)


def attempts_left(failures: int) -> int:
    """Wrong answers a key with this many consecutive failures may still take before it locks."""
    return max(0, conf.get().THROTTLE_MAX_FAILURES - failures)


def _refused(rows, request, retry_after: int, model=Key) -> None:
    """Write an answer refused during a delay to the audit trail: it was not checked (no failure is counted),
    but someone tried, and the trail shows every try."""
    row = rows[0]
    key = row if model is Key and len(rows) == 1 else None
    type_ = row.type if model is Key else FALLBACK
    detail = {"type": type_, "retry_after": retry_after, "failures": max(r.failures for r in rows)}
    if len(rows) > 1:
        detail["keys"] = sorted(r.pk for r in rows)
    audit.record("verification_throttled", row.user, request, key, **detail)


def delay_after(failures: int) -> int:
    """Seconds a key waits after this many consecutive failures."""
    s = conf.get()
    extra = failures - s.THROTTLE_FREE_FAILURES
    if extra <= 0:
        return 0
    return min(s.THROTTLE_MAX_DELAY, s.THROTTLE_BASE_DELAY * 2 ** min(extra - 1, 30))


def _wait(row, now) -> int:
    """Seconds left in the row's delay (0: it may check an answer now)."""
    if row.throttled_until and row.throttled_until > now:
        return math.ceil((row.throttled_until - now).total_seconds())
    return 0


def _count_failure(model, pks: Iterable[int], now) -> dict[int, int]:
    """One more failure on each row (in the caller's transaction, rows locked); their new counts by pk."""
    pks = list(pks)
    model.objects.filter(pk__in=pks).update(failures=F("failures") + 1)
    counts = dict(model.objects.filter(pk__in=pks).values_list("pk", "failures"))
    for pk, failures in counts.items():
        delay = delay_after(failures)
        model.objects.filter(pk=pk).update(throttled_until=now + timedelta(seconds=delay) if delay else None)
    return counts


def _lock(row, now) -> None:
    row.locked_at = now
    if isinstance(row, Key):
        row.enabled = False
        row.save(update_fields=["enabled", "locked_at"])  # revoked everywhere by the model's signal
    else:
        type(row).objects.filter(pk=row.pk).update(locked_at=now)


def _announce_locked(rows, request) -> None:
    keys = [row for row in rows if isinstance(row, Key)]
    if keys and request is not None:
        from . import revocation

        revocation.refresh_request(request)
    for row in rows:
        key, type_ = (row, row.type) if isinstance(row, Key) else (None, FALLBACK)
        signals.key_locked.send(type(row), key=key, type=type_, user=row.user, request=request)


def attempt(pk: int, check: Callable, request=None, pending=False, model=Key) -> Outcome:
    """Run ``check(row)`` on the locked row, counting the result. ``check`` may update the row.

    ``model`` is Key, or another model with ``failures``, ``throttled_until`` and ``locked_at`` (a user's
    FallbackCode). ``pending``: the key is being enrolled (its code check is throttled like any other).
    """
    now = timezone.now()
    is_key = model is Key
    with transaction.atomic():
        row = model.objects.select_for_update().filter(pk=pk).first()
        if row is None or (is_key and row.confirmed == pending):
            return Outcome(False, "invalid")
        if row.locked_at or (is_key and not row.enabled):
            return Outcome(False, "locked" if row.locked_at else "disabled", key=row)
        if wait := _wait(row, now):
            _refused([row], request, wait, model)
            return Outcome(False, "throttled", wait, row, attempts_left(row.failures))
        if check(row):
            done = {"failures": 0, "throttled_until": None, **({"last_used_at": now} if is_key else {})}
            model.objects.filter(pk=pk).update(**done)
            for name, value in done.items():
                setattr(row, name, value)
            return Outcome(True, key=row)
        failures = _count_failure(model, [pk], now)[pk]
        locked = failures >= conf.get().THROTTLE_MAX_FAILURES
        if locked:
            _lock(row, now)
    row.refresh_from_db()
    key, type_ = (row, row.type) if is_key else (None, FALLBACK)  # the audit trail names the factor either way
    signals.verification_failed.send(model, key=key, type=type_, user=row.user, request=request, failures=failures)
    if locked:
        _announce_locked([row], request)
        return Outcome(False, "locked", key=row, attempts_left=0)
    return Outcome(False, "invalid", delay_after(failures), row, attempts_left(failures))


def attempt_any(pks: Iterable[int], check: Callable, request=None) -> Outcome:
    """Run ``check(row)`` on each of one user's confirmed keys ``pks`` (a user's TOTP apps) until one accepts.

    All the rows are locked (in pk order, so parallel requests queue rather than deadlock) for the whole
    check. A locked, disabled or delayed key checks nothing: it can neither accept a code nor answer for
    another. The answer is 429 ("throttled", the soonest a key checks again) only when every usable key is
    delayed, and "locked" only when none is left. A success resets every usable key's count (the count is
    the user's); a code that no key accepts is one failure, counted on every usable key (delayed ones too),
    so whatever the number of keys, ``THROTTLE_MAX_FAILURES`` wrong guesses lock all of them.
    """
    now = timezone.now()
    with transaction.atomic():
        rows = list(Key.objects.select_for_update().filter(pk__in=list(pks), confirmed=True).order_by("pk"))
        usable = [row for row in rows if row.enabled and not row.locked_at]
        if not usable:
            return Outcome(False, "locked" if any(row.locked_at for row in rows) else "disabled")
        ready = [row for row in usable if not _wait(row, now)]
        if not ready:
            wait = min(_wait(row, now) for row in usable)
            _refused(usable, request, wait)
            return Outcome(False, "throttled", wait, attempts_left=attempts_left(max(r.failures for r in usable)))
        for row in ready:
            if check(row):
                Key.objects.filter(pk__in=[r.pk for r in usable]).update(failures=0, throttled_until=None)
                Key.objects.filter(pk=row.pk).update(last_used_at=now)
                row.failures, row.throttled_until, row.last_used_at = 0, None, now
                return Outcome(True, key=row)
        counts = _count_failure(Key, [row.pk for row in usable], now)
        locked = [row for row in usable if counts[row.pk] >= conf.get().THROTTLE_MAX_FAILURES]
        for row in locked:
            _lock(row, now)
    left = [row for row in usable if row not in locked]
    # One guess, one event: it names the key only when there was just one to try.
    signals.verification_failed.send(
        Key,
        key=usable[0] if len(usable) == 1 else None,
        type=usable[0].type,
        user=usable[0].user,
        request=request,
        failures=max(counts.values()),
        keys=sorted(counts),
    )
    if locked:
        _announce_locked(locked, request)
    if not left:
        return Outcome(False, "locked", attempts_left=0)
    most = max(counts[row.pk] for row in left)
    return Outcome(
        False, "invalid", min(delay_after(counts[row.pk]) for row in left), attempts_left=attempts_left(most)
    )
