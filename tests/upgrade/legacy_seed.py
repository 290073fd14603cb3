"""Run by the django-multifactor 0.9.5 virtualenv (DJANGO_SETTINGS_MODULE=site_settings): migrate a new site,
then enrol users through 0.9.5's own views, as its users did. Prints one JSON line: what the upgraded site must
still know (seeds, key pairs, ids), for tests/upgrade/verify.py and tests/test_upgrade_from_09.py.
"""

import json
import time
from importlib.metadata import version

import django

django.setup()

import pyotp  # noqa: E402
import site_driver  # noqa: E402
from authenticator import Authenticator  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.migrations.recorder import MigrationRecorder  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

import multifactor  # noqa: E402
from multifactor.models import AuthAttempt, DisabledFallback, UserKey  # noqa: E402


def check(condition, what):
    if not condition:
        raise SystemExit(f"legacy seeding failed: {what}")


call_command("migrate", interactive=False, verbosity=0)
User = get_user_model()
user = User.objects.create_user("olduser", "old@example.com", "old-password", first_name="Old", last_name="User")
other = User.objects.create_user("otheruser", "other@example.com", "other-password")

client = Client(HTTP_HOST="localhost")
client.force_login(user)


def register(authenticator):
    options = client.get("/mf/fido2/register/").json()
    response = client.post("/mf/fido2/register/", json.dumps(authenticator.create(options)), "application/json")
    check(response.json().get("status") == "OK", f"FIDO2 registration: {response.content[:300]!r}")


# A security key (its assertions carry no user handle), and a discoverable credential such as a platform
# authenticator makes even when not asked to (its assertions carry 0.9.5's user handle: the username).
security_key = Authenticator()
register(security_key)
platform_key = Authenticator(resident=True)
register(platform_key)

# TOTP, enrolled with a code of the previous time step (still in the window), so that the current code is
# still unused when the upgraded site verifies it.
seed = pyotp.random_base32()
totp = pyotp.TOTP(seed)
used_code = totp.at(time.time() - 30)
response = client.post("/mf/totp/new/", {"key": seed, "answer": used_code})
check(response.status_code == 302, f"TOTP enrolment: {response.status_code}")
totp_key = UserKey.objects.get(user=user, key_type="TOTP")
check(client.post(f"/mf/rename/{totp_key.pk}/", {"name": "Old phone"}).status_code == 302, "rename")

# The e-mail fallback switched off by the user.
check(client.post("/mf/toggle_fallback:email/").status_code == 302, "fallback opt-out")
check(DisabledFallback.objects.filter(user=user, fallback="email").exists(), "fallback opt-out row")

# Another user: a TOTP key of an older 0.9 (no last_step), disabled; and a failed attempt on record.
other_seed = pyotp.random_base32()
UserKey.objects.create(user=other, key_type="TOTP", properties={"secret_key": other_seed}, enabled=False)
AuthAttempt.objects.create(user=other, factor="TOTP")

# The site's own 0.9-style code and templates at work (site_driver.py; verify.py repeats it after the swap).
setup_test_environment()  # response.context
boss = User.objects.create_superuser("boss", "boss@example.com", "boss-password")
site = site_driver.drive(user, other, boss)

print(
    json.dumps(
        {
            "package": version("django-multifactor"),
            "module": multifactor.__file__,
            "django": django.get_version(),
            "migrations": sorted(
                name for app, name in MigrationRecorder(connection).applied_migrations() if app == "multifactor"
            ),
            "user_id": user.pk,
            "other_id": other.pk,
            "totp_seed": seed,
            "totp_used_code": used_code,
            "totp_properties": totp_key.properties,
            "other_seed": other_seed,
            "security_key": security_key.export(),
            "platform_key": platform_key.export(),
            "session_key": client.cookies["sessionid"].value,
            "userkeys": [
                {
                    "id": k.pk,
                    "user_id": k.user_id,
                    "key_type": k.key_type,
                    "name": k.name,
                    "enabled": k.enabled,
                    "added_on": k.added_on.isoformat(),
                    "last_used": k.last_used.isoformat() if k.last_used else None,
                    "properties": k.properties,
                }
                for k in UserKey.objects.order_by("pk")
            ],
            "disabled_fallbacks": list(DisabledFallback.objects.values_list("user_id", "fallback")),
            "site": site,
        }
    )
)
