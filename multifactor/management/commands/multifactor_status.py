"""List users' keys and their last use."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from multifactor.models import Key

from ._users import find_users


class Command(BaseCommand):
    help = "Show multifactor keys and their last use, for the given users or every user who has keys."

    def add_arguments(self, parser):
        parser.add_argument("users", nargs="*", help="usernames (default: every user with keys)")

    def handle(self, *args, users, **options):
        if users:
            people = find_users(users)
        else:
            User = get_user_model()
            people = User.objects.filter(pk__in=Key.objects.filter(confirmed=True).values("user")).order_by("pk")
        for user in people:
            keys = Key.objects.filter(user=user, confirmed=True)
            self.stdout.write(f"{user.get_username()}: {sum(k.enabled for k in keys)} enabled of {len(keys)} key(s)")
            for key in keys:
                state = "locked" if key.locked_at else ("enabled" if key.enabled else "disabled")
                used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
                self.stdout.write(f"  #{key.pk} {key.type:<8} {state:<8} last used {used}  {key.name}")
