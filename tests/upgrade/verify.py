"""Run with this library installed in place of 0.9.5 (DJANGO_SETTINGS_MODULE=site_settings, the same database):
``migrate``, then use the old keys through this library's pages and API. Reads legacy_seed.py's JSON on stdin and
prints one JSON line of facts for tests/test_upgrade_from_09.py to assert on (so a failure there says what
happened, not only that this script stopped).
"""

import io
import json
import os
import secrets
import sys
import time

import django

django.setup()

import pyotp  # noqa: E402
from authenticator import Authenticator  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core import checks  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.migrations.recorder import MigrationRecorder  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

legacy = json.load(sys.stdin)
facts = {}
started = time.monotonic()


def recorded():
    return sorted(name for app, name in MigrationRecorder(connection).applied_migrations() if app == "multifactor")


class Browser(Client):
    """CSRF enforced, the token sent as a page's script would; requests come to https://localhost."""

    def __init__(self):
        super().__init__(enforce_csrf_checks=True, HTTP_HOST="localhost")
        self.token = secrets.token_hex(16)
        self.cookies["csrftoken"] = self.token

    def post(self, path, data=None, **kwargs):
        kwargs.setdefault("headers", {})["X-CSRFToken"] = self.token
        return super().post(path, data, **kwargs)

    def api(self, path, body=None):
        response = self.post(
            path, json.dumps(body or {}), content_type="application/json", headers={"Accept": "application/json"}
        )
        return response.status_code, json.loads(response.content or b"null")


def answer(response):
    return {"status": response.status_code, "location": response.get("Location")}


# -- the upgrade itself ------------------------------------------------------------------------------------

import multifactor  # noqa: E402

facts["module"] = multifactor.__file__
facts["recorded_before"] = recorded()
out = io.StringIO()
call_command("migrate", interactive=False, stdout=out)
facts["migrate_output"] = out.getvalue()
again = io.StringIO()
call_command("migrate", interactive=False, stdout=again)
facts["migrate_again_output"] = again.getvalue()
facts["recorded_after"] = recorded()
facts["tables"] = sorted(t for t in connection.introspection.table_names() if t.startswith("multifactor"))
facts["checks"] = [
    {"id": m.id, "level": m.level, "msg": m.msg} for m in checks.run_checks() if m.id.startswith("multifactor.")
]
facts["migrate_seconds"] = time.monotonic() - started

from multifactor import crypto  # noqa: E402
from multifactor.models import DisabledFallback, Key  # noqa: E402

User = get_user_model()
user = User.objects.get(pk=legacy["user_id"])
facts["keys"] = [
    {
        "id": k.pk,
        "user_id": k.user_id,
        "type": k.type,
        "name": k.name,
        "enabled": k.enabled,
        "confirmed": k.confirmed,
        "created_at": k.created_at.isoformat(),
        "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
        "last_step": k.last_step,
        "secret": k.secret,
        "secret_plain": crypto.decrypt(k.secret) if k.secret else None,
        "secret_with_environment_key": (
            Fernet(os.environ["MULTIFACTOR_ENCRYPTION_KEYS"]).decrypt(k.secret.encode()).decode() if k.secret else None
        ),
        "credential_id": bytes(k.credential_id).hex() if k.credential_id is not None else None,
        "has_public_key": k.public_key is not None,
        "rp_id": k.rp_id,
        "aaguid": k.aaguid,
    }
    for k in Key.objects.order_by("pk")
]
facts["disabled_fallbacks"] = sorted(DisabledFallback.objects.values_list("user_id", "fallback"))

# Where do the seeds appear in clear? Every column of every table of the site.
seeds = [legacy["totp_seed"], legacy["other_seed"]]
found = []
quote = connection.ops.quote_name
with connection.cursor() as cursor:
    for table in connection.introspection.table_names():
        cursor.execute(f"SELECT * FROM {quote(table)}")  # noqa: S608 (table names from the database itself)
        for row in cursor.fetchall():
            for value in row:
                text = bytes(value).decode("latin-1") if isinstance(value, (bytes, memoryview)) else str(value)
                found += [(table, seed) for seed in seeds if seed in text or seed.lower() in text]
facts["seeds_in_clear"] = found

# -- the old keys at work ----------------------------------------------------------------------------------

setup_test_environment()  # response.context, and mail kept in memory
status = io.StringIO()
call_command("multifactor_status", "olduser", "otheruser", stdout=status)
facts["status_output"] = status.getvalue()

totp = pyotp.TOTP(legacy["totp_seed"])
browser = Browser()
browser.force_login(user)
facts["protected_before"] = answer(browser.get("/protected/"))
facts["totp_page"] = answer(browser.get("/mf/totp/auth/"))
facts["totp_replay"] = answer(browser.post("/mf/totp/auth/", {"answer": legacy["totp_used_code"]}))
facts["totp"] = answer(browser.post("/mf/totp/auth/", {"answer": totp.now()}))
facts["protected_after_totp"] = answer(browser.get("/protected/"))
home = browser.get("/mf/")
facts["home_fallbacks"] = [list(f) for f in home.context["fallbacks"]] if home.context else None


def webauthn(exported):
    browser = Browser()
    browser.force_login(user)
    result = {"protected_before": answer(browser.get("/protected/"))}
    status, body = browser.api("/mf/api/v1/webauthn/authenticate/begin")
    result["begin"] = status
    if status != 200:
        result["begin_body"] = body
        return result
    authenticator = Authenticator.load(exported)
    result["allowed"] = sorted(c["id"] for c in body["data"]["publicKey"].get("allowCredentials") or [])
    status, body = browser.api(
        "/mf/api/v1/webauthn/authenticate/complete", {"credential": authenticator.get(body["data"])}
    )
    result["complete"] = status
    result["complete_body"] = body
    result["protected_after"] = answer(browser.get("/protected/"))
    return result


facts["security_key"] = webauthn(legacy["security_key"])
facts["platform_key"] = webauthn(legacy["platform_key"])

# The site's own 0.9-style code and templates, driven as legacy_seed.py drove them with 0.9.5.
import site_driver  # noqa: E402

facts["site"] = site_driver.drive(user, User.objects.get(pk=legacy["other_id"]), User.objects.get(username="boss"))

# A session 0.9.5 left behind (its verifications in 0.9's format) is simply not verified any more.
old = Client(HTTP_HOST="localhost")
old.cookies["sessionid"] = legacy["session_key"]
facts["old_session"] = answer(old.get("/protected/"))
facts["seconds"] = time.monotonic() - started

print(json.dumps(facts))
