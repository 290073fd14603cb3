"""Disable (or delete) every key of the given users, ending their verified sessions at once."""

from django.core.management.base import BaseCommand
from django.db import transaction

from multifactor import audit
from multifactor.models import Key

from ._users import find_users


class Command(BaseCommand):
    help = "Disable all multifactor keys of the given users (with --delete, remove them)."

    def add_arguments(self, parser):
        parser.add_argument("users", nargs="+", help="usernames")
        parser.add_argument("--delete", action="store_true", help="delete the keys instead of disabling them")

    def handle(self, *args, users, delete, **options):
        for user in find_users(users):
            with transaction.atomic():
                keys = Key.objects.filter(user=user)
                count = keys.count()
                if delete:
                    for key in keys:  # one by one, so each revocation signal fires
                        key.delete()
                else:
                    keys.update(enabled=False)  # KeyQuerySet.update revokes them everywhere
                audit.record("mfa_reset", user, detail_action="deleted" if delete else "disabled", count=count)
            verb = "Deleted" if delete else "Disabled"
            self.stdout.write(f"{verb} {count} key(s) of {user.get_username()}.")
