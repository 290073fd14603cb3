"""``manage.py seed_demo``: create (or reset) the demo superuser and print how to sign in."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

USERNAME = "demo"
PASSWORD = "demo-password-123"  # a demo account on a local SQLite file


def sign_in_lines(port) -> list[str]:
    """The URL to open and the credentials: the last lines ``make demo`` prints (see the demo's runserver)."""
    return [
        f"Open      http://localhost:{port}/   (localhost, not 127.0.0.1: WebAuthn needs it)",
        f"Username  {USERNAME}",
        f"Password  {PASSWORD}",
    ]


class Command(BaseCommand):
    help = "Create the demo superuser (idempotent) and print its credentials."

    def add_arguments(self, parser):
        parser.add_argument("--port", default=os.environ.get("PORT") or "8000", help="The port runserver uses.")

    def handle(self, *args, port, **options):
        user, created = get_user_model().objects.get_or_create(
            username=USERNAME, defaults={"email": "demo@example.com"}
        )
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(PASSWORD)
        user.save()
        self.stdout.write(self.style.SUCCESS(f"Demo user {'created' if created else 'reset'}."))
        for line in sign_in_lines(port):
            self.stdout.write(line)
