"""Delete audit events older than N days."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from multifactor.models import Event


class Command(BaseCommand):
    help = "Delete multifactor audit events older than --days days (default 365)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=365)

    def handle(self, *args, days, **options):
        if days < 0:
            raise CommandError("--days must be 0 or more.")
        cutoff = timezone.now() - timedelta(days=days)
        deleted, _ = Event.objects.filter(created_at__lt=cutoff).delete()
        self.stdout.write(f"Deleted {deleted} event(s) older than {days} day(s).")
