"""``manage.py seed_demo``: create (or reset) the demo superuser and print how to sign in."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

USERNAME = "demo"
PASSWORD = "demo-password-123"  # a demo account on a local SQLite file


class Command(BaseCommand):
    help = "Create the demo superuser (idempotent) and print its credentials."

    def handle(self, *args, **options):
        user, created = get_user_model().objects.get_or_create(
            username=USERNAME, defaults={"email": "demo@example.com"}
        )
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(PASSWORD)
        user.save()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo user {'created' if created else 'ready'}: username {USERNAME!r}, password {PASSWORD!r}"
            )
        )
        self.stdout.write("Open http://localhost:8000/ (use localhost, not 127.0.0.1, for WebAuthn).")
