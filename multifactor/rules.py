"""The site-wide REQUIRE rules: whom they select and until when a grace period lets them in.

Below both :mod:`multifactor.flows` (which refuses removing a required user's last key) and the enforcement
middleware, so neither imports the other.
"""

import datetime

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.module_loading import import_string


def must_use_mfa(user, rules: dict) -> bool:
    """Whether the REQUIRE rules select this user (groups and predicate may query the database)."""
    if rules.get("superusers") and user.is_superuser:
        return True
    if rules.get("staff") and user.is_staff:
        return True
    groups = rules.get("groups")
    if groups and user.groups.filter(name__in=groups).exists():
        return True
    predicate = rules.get("predicate")
    return bool(predicate and import_string(predicate)(user))


def grace_deadline(user, rules: dict) -> datetime.datetime | None:
    """The latest of ``grace_until`` and ``date_joined + grace_period``; None if there is no grace."""
    candidates = []
    until = rules.get("grace_until")
    if until:
        try:  # a date first: parse_datetime would read "2027-01-31" as its first moment, not the whole day
            parsed = parse_date(str(until)) or parse_datetime(str(until))
        except ValueError:  # well formed but impossible ("2027-02-30"): no grace rather than a crash
            parsed = None
        if isinstance(parsed, datetime.date) and not isinstance(parsed, datetime.datetime):
            parsed = datetime.datetime.combine(parsed, datetime.time.max)
        if parsed is not None:
            candidates.append(_like_now(parsed))
    joined = getattr(user, "date_joined", None)
    if rules.get("grace_period") and joined:
        candidates.append(_like_now(joined) + datetime.timedelta(seconds=rules["grace_period"]))
    return max(candidates) if candidates else None


def _like_now(moment: datetime.datetime) -> datetime.datetime:
    """Aware under USE_TZ, naive local time otherwise, so that it compares with ``timezone.now()``."""
    if settings.USE_TZ:
        return moment if timezone.is_aware(moment) else timezone.make_aware(moment)
    return timezone.make_naive(moment) if timezone.is_aware(moment) else moment
