"""The demo's ``runserver``: Django's (with static files), whose last words are where to go and how to sign
in, after Django's banner and on every restart of the autoreloader."""

from django.contrib.staticfiles.management.commands.runserver import Command as RunserverCommand

from .seed_demo import sign_in_lines


class Command(RunserverCommand):
    def on_bind(self, server_port):
        super().on_bind(server_port)
        lines = ["", "Multifactor demo", *sign_in_lines(server_port), ""]
        self.stdout.write("\n".join(f"  {line}" if line else "" for line in lines))
