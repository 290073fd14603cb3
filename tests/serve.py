"""A one-process WSGI server over the test project, for tests/test_multiprocess.py.

``python -m tests.serve`` binds 127.0.0.1 on a free port, prints the port on its first line of output, and
serves until terminated. ``python -m tests.serve setup USERNAME PASSWORD SEED [SEED ...]`` migrates the
database and creates the user with one TOTP key per seed (printing their ids). ``setup-users PASSWORD
USERNAME:SEED [...]`` migrates and creates one user per pair with one TOTP key each (for tests/test_soak.py);
``events`` prints the audit trail's counts as JSON, ``{username: {kind: count}}``. Settings:
``tests.multiprocess_settings`` (database from SQLITE_NAME or DATABASE_URL).
"""

import os
import sys


def setup(username, password, *seeds):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from multifactor import crypto
    from multifactor.models import Key

    call_command("migrate", verbosity=0, interactive=False)
    user = get_user_model().objects.create_user(username, f"{username}@example.com", password)
    for i, seed in enumerate(seeds):
        key = Key.objects.create(user=user, type="TOTP", name=f"key{i}", secret=crypto.encrypt(seed))
        print(key.pk)


def setup_users(password, *pairs):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from multifactor import crypto
    from multifactor.models import Key

    call_command("migrate", verbosity=0, interactive=False)
    for pair in pairs:
        username, seed = pair.split(":", 1)
        user = get_user_model().objects.create_user(username, f"{username}@example.com", password)
        Key.objects.create(user=user, type="TOTP", name="phone", secret=crypto.encrypt(seed))


def events():
    import json

    from django.db.models import Count

    from multifactor.models import Event

    counts = {}
    for row in Event.objects.values("username", "kind").annotate(n=Count("pk")).order_by():
        counts.setdefault(row["username"], {})[row["kind"]] = row["n"]
    print(json.dumps(counts))


def serve():
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from django.core.wsgi import get_wsgi_application

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format, *args):
            pass

    server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=QuietHandler)
    print(server.server_port, flush=True)
    server.serve_forever()


def main(argv):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.multiprocess_settings")
    import django

    django.setup()
    if argv[:1] == ["setup"]:
        setup(*argv[1:])
    elif argv[:1] == ["setup-users"]:
        setup_users(*argv[1:])
    elif argv[:1] == ["events"]:
        events()
    else:
        serve()


if __name__ == "__main__":
    main(sys.argv[1:])
