"""django-multifactor 0.9.x's command, kept for the cron jobs that call it.

0.9.x stored every TOTP and fallback attempt in an ``AuthAttempt`` table and this command deleted the old
rows. Throttling now counts failures on each key, and attempts are audit events (``Event`` rows of the kinds
``key_used``, ``verification_failed`` and ``verification_throttled``): this deletes those older than
``--days`` days, else ``MULTIFACTOR["ATTEMPT_RETENTION_DAYS"]`` if the site still sets it, else 90 (0.9.x's
default).
``multifactor_prune_events`` prunes the whole audit trail.
"""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from multifactor.models import Event

ATTEMPT_KINDS = (Event.Kind.KEY_USED, Event.Kind.VERIFICATION_FAILED, Event.Kind.VERIFICATION_THROTTLED)


def retention_days() -> int:
    raw = getattr(settings, "MULTIFACTOR", None)
    days = raw.get("ATTEMPT_RETENTION_DAYS", 90) if isinstance(raw, dict) else 90
    return days if isinstance(days, int) and not isinstance(days, bool) and days >= 0 else 90


class Command(BaseCommand):
    help = (
        "Delete recorded verification attempts (audit events) older than ATTEMPT_RETENTION_DAYS (or --days). "
        "Kept from django-multifactor 0.9; see also multifactor_prune_events."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, help="Override MULTIFACTOR['ATTEMPT_RETENTION_DAYS'] (90).")

    def handle(self, *args, days=None, **options):
        days = retention_days() if days is None else days
        if days < 0:
            raise CommandError("--days must be 0 or more.")
        cutoff = timezone.now() - timedelta(days=days)
        deleted, _ = Event.objects.filter(kind__in=ATTEMPT_KINDS, created_at__lt=cutoff).delete()
        self.stdout.write(f"Deleted {deleted} attempt(s).")
