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
from .models import Key


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


def attempt(key_pk: int, check: Callable[[Key], bool], request=None, pending=False) -> Outcome:
    """Run ``check(key)`` on the locked key row, counting the result. ``check`` may update the row.

    ``pending``: the key is being enrolled (its code check is throttled like any other).
    """
    now = timezone.now()
    with transaction.atomic():
        key = Key.objects.select_for_update().filter(pk=key_pk).first()
        if key is None or key.confirmed == pending:
            return Outcome(False, "invalid")
        if not key.enabled:
            return Outcome(False, "locked" if key.locked_at else "disabled", key=key)
        if key.throttled_until and key.throttled_until > now:
            wait = math.ceil((key.throttled_until - now).total_seconds())
            return Outcome(False, "throttled", wait, key)
        if check(key):
            Key.objects.filter(pk=key.pk).update(failures=0, throttled_until=None, last_used_at=now)
            key.failures, key.throttled_until, key.last_used_at = 0, None, now
            return Outcome(True, key=key)
        Key.objects.filter(pk=key.pk).update(failures=F("failures") + 1)
        failures = Key.objects.filter(pk=key.pk).values_list("failures", flat=True).get()
        delay = delay_after(failures)
        locked = failures >= conf.get().THROTTLE_MAX_FAILURES
        fields = {"throttled_until": now + timezone.timedelta(seconds=delay) if delay else None}
        Key.objects.filter(pk=key.pk).update(**fields)
        if locked:
            key.enabled, key.locked_at = False, now
            key.save(update_fields=["enabled", "locked_at"])  # revoked everywhere by the model's signal
    key.refresh_from_db()
    signals.verification_failed.send(Key, key=key, user=key.user, request=request, failures=failures)
    if locked:
        from . import revocation

        if request is not None:
            revocation.strip_request(request, {key.pk})
        signals.key_locked.send(Key, key=key, user=key.user, request=request)
        return Outcome(False, "locked", key=key)
    return Outcome(False, "invalid", delay, key)
