"""Failure counting shared by every factor (SECURITY.md R4).

Consecutive failures are counted per key in the key's row. After ``THROTTLE_FREE_FAILURES`` of them each
further failure doubles a delay (from ``THROTTLE_BASE_DELAY`` up to ``THROTTLE_MAX_DELAY`` seconds) during
which the key refuses to check any answer; at ``THROTTLE_MAX_FAILURES`` the key is locked (disabled, with
``locked_at`` set) and must be re-enrolled. A success resets the count. The row is locked for the whole
check (``select_for_update``) and the counter is bumped with an ``UPDATE ... SET failures = failures + 1``,
so parallel guesses are all counted on every database. Only the key is affected: the user stays signed in
and their other keys keep working.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import conf, signals
from .models import FALLBACK, Key


@dataclasses.dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str = ""  # "", "invalid", "throttled", "locked", "disabled"
    retry_after: int = 0
    key: Key | None = None


def delay_after(failures: int) -> int:
    """Seconds a key waits after this many consecutive failures."""
    s = conf.get()
    extra = failures - s.THROTTLE_FREE_FAILURES
    if extra <= 0:
        return 0
    return min(s.THROTTLE_MAX_DELAY, s.THROTTLE_BASE_DELAY * 2 ** min(extra - 1, 30))


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
        if row.throttled_until and row.throttled_until > now:
            wait = math.ceil((row.throttled_until - now).total_seconds())
            return Outcome(False, "throttled", wait, row)
        if check(row):
            done = {"failures": 0, "throttled_until": None, **({"last_used_at": now} if is_key else {})}
            model.objects.filter(pk=pk).update(**done)
            for name, value in done.items():
                setattr(row, name, value)
            return Outcome(True, key=row)
        model.objects.filter(pk=pk).update(failures=F("failures") + 1)
        failures = model.objects.filter(pk=pk).values_list("failures", flat=True).get()
        delay = delay_after(failures)
        locked = failures >= conf.get().THROTTLE_MAX_FAILURES
        model.objects.filter(pk=pk).update(throttled_until=now + timezone.timedelta(seconds=delay) if delay else None)
        if locked:
            row.locked_at = now
            if is_key:
                row.enabled = False
                row.save(update_fields=["enabled", "locked_at"])  # revoked everywhere by the model's signal
            else:
                model.objects.filter(pk=pk).update(locked_at=now)
    row.refresh_from_db()
    user = row.user
    key, type_ = (row, row.type) if is_key else (None, FALLBACK)  # the audit trail names the factor either way
    signals.verification_failed.send(model, key=key, type=type_, user=user, request=request, failures=failures)
    if locked:
        if is_key and request is not None:
            from . import revocation

            revocation.strip_request(request, {row.pk})
        signals.key_locked.send(model, key=key, type=type_, user=user, request=request)
        return Outcome(False, "locked", key=row)
    return Outcome(False, "invalid", delay, row)
