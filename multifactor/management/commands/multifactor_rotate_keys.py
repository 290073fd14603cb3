"""Re-encrypt every stored secret under the first configured encryption key."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from multifactor import crypto
from multifactor.models import Key


class Command(BaseCommand):
    help = "Re-encrypt every stored TOTP seed under the first key of MULTIFACTOR['ENCRYPTION_KEYS']."

    def handle(self, *args, **options):
        crypto.reset()
        done = failed = 0
        with transaction.atomic():
            for key in Key.objects.select_for_update().exclude(secret="").only("pk", "secret"):
                try:
                    rotated = crypto.rotate(key.secret)
                except crypto.InvalidToken:
                    failed += 1
                    self.stderr.write(f"Key {key.pk}: no configured encryption key can decrypt it.")
                    continue
                Key.objects.filter(pk=key.pk).update(secret=rotated)
                done += 1
            if failed:
                raise CommandError(f"{failed} secret(s) could not be decrypted; nothing was changed.")
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {done} secret(s) under the first key."))
