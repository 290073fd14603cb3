"""Upgrading a site from django-multifactor 0.9.5 (from PyPI) to this library keeps its users' keys.

For each database (SQLite; PostgreSQL when DATABASE_URL points at one):

1. a scratch virtualenv with django-multifactor 0.9.5 (cached between runs, see ``legacy_python``) migrates a new
   site and enrols users through 0.9.5's own views: two FIDO2 credentials (a security key, and a discoverable
   one that returns 0.9.5's user handle), a TOTP key, the e-mail fallback switched off, and another user's
   disabled TOTP key of an older 0.9 (tests/upgrade/legacy_seed.py);
2. this library, with the same settings module and database, runs ``migrate`` and signs in with the old keys
   through its own pages and API (tests/upgrade/verify.py), in a subprocess of its own;
3. the tests below check what that subprocess reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import django
import pytest
from cryptography.fernet import Fernet

from tests.settings import database_from_url

pytestmark = pytest.mark.slow

LEGACY_VERSION = "0.9.5"
HERE = Path(__file__).resolve().parent / "upgrade"
ROOT = HERE.parent.parent
ENCRYPTION_KEY = Fernet.generate_key().decode()


# -- the 0.9.5 virtualenv ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path):
    """One creator at a time (parallel test runs share the cached virtualenv)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def legacy_python() -> Path:
    """The python of a virtualenv with django-multifactor 0.9.5, the running Django version and psycopg.

    Made once (about half a minute) under MULTIFACTOR_LEGACY_VENV or the temporary directory, keyed by the
    versions, and reused while its ``.complete`` marker exists; delete the directory to make it again.
    """
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}-django{django.get_version()}"
    root = Path(
        os.environ.get("MULTIFACTOR_LEGACY_VENV")
        or Path(tempfile.gettempdir()) / f"django-multifactor-{LEGACY_VERSION}-venv-{tag}"
    )
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    marker = root / ".complete"
    root.parent.mkdir(parents=True, exist_ok=True)
    with _locked(root.parent / f".{root.name}.lock"):
        if not marker.exists():
            shutil.rmtree(root, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, capture_output=True)
            install = subprocess.run(
                [
                    str(python),
                    *("-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
                    f"django-multifactor=={LEGACY_VERSION}",
                    f"Django=={django.get_version()}",
                    "packaging",  # 0.9.5 imports it without declaring it
                    "psycopg[binary]",
                ],
                capture_output=True,
                text=True,
                timeout=900,
            )
            if install.returncode:
                pytest.fail(
                    f"could not install django-multifactor {LEGACY_VERSION} from PyPI:\n{install.stderr[-3000:]}"
                )
            marker.write_text(LEGACY_VERSION)
    return python


# -- a scratch database per backend ------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_postgres():
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...)")
    import psycopg
    from psycopg import sql

    config = database_from_url(url)
    server = {
        "dbname": "postgres",
        "user": config["USER"] or None,
        "password": config["PASSWORD"] or None,
        "host": config["HOST"] or None,
        "port": config["PORT"] or None,
    }
    name = f"mf_upgrade_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**{k: v for k, v in server.items() if v}, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield {**config, "NAME": name}
        finally:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def scratch_sqlite(directory: Path):
    yield {"ENGINE": "django.db.backends.sqlite3", "NAME": str(directory / "site.sqlite3")}


def run(python, script, database, pythonpath, stdin=None, extra_env=None):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="site_settings",
        MF_UPGRADE_DATABASE=json.dumps(database),
        PYTHONPATH=os.pathsep.join(str(p) for p in pythonpath),
        PYTHONDONTWRITEBYTECODE="1",
        **(extra_env or {}),
    )
    done = subprocess.run(
        [str(python), str(HERE / script)],
        input=stdin,
        env=env,
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-2000:]}\n{done.stderr[-5000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def upgrade(request, tmp_path_factory):
    """(what 0.9.5 left, what this library reported after migrating) for one database backend."""
    started = time.monotonic()
    python = legacy_python()
    venv_ready = time.monotonic()
    database = scratch_sqlite(tmp_path_factory.mktemp("upgrade")) if request.param == "sqlite" else scratch_postgres()
    with database as config:
        legacy = run(python, "legacy_seed.py", config, [HERE])
        seeded = time.monotonic()
        facts = run(
            sys.executable,
            "verify.py",
            config,
            [ROOT, HERE],
            stdin=json.dumps(legacy),
            extra_env={"MULTIFACTOR_ENCRYPTION_KEYS": ENCRYPTION_KEY},
        )
    print(
        f"\nupgrade from {LEGACY_VERSION} on {request.param}: virtualenv {venv_ready - started:.1f}s, "
        f"0.9.5 site {seeded - venv_ready:.1f}s, migrate and sign-ins {time.monotonic() - seeded:.1f}s"
    )
    return legacy, facts


# -- the tests ---------------------------------------------------------------------------------------------

LEGACY_MIGRATIONS = [
    "0001_initial",
    "0002_auto_20190823_2128",
    "0003_userkey_name",
    "0004_alter_userkey_key_type",
    "0005_authattempt",
]


def test_the_packages_were_really_swapped(upgrade):
    legacy, facts = upgrade
    assert legacy["package"] == LEGACY_VERSION and "site-packages" in legacy["module"]
    assert Path(facts["module"]).resolve() == (ROOT / "multifactor" / "__init__.py").resolve()


def test_migrate_continues_from_the_recorded_09_migrations(upgrade):
    legacy, facts = upgrade
    assert legacy["migrations"] == LEGACY_MIGRATIONS == facts["recorded_before"]
    assert facts["recorded_after"][: len(LEGACY_MIGRATIONS)] == LEGACY_MIGRATIONS
    migrations_dir = ROOT / "multifactor" / "migrations"
    ours = sorted(p.stem for p in migrations_dir.glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert facts["recorded_after"] == ours
    assert "multifactor.0001_initial" not in facts["migrate_output"]  # the 0.9 ones are not applied again
    assert "No migrations to apply." in facts["migrate_again_output"]


def test_the_legacy_tables_are_gone(upgrade):
    _, facts = upgrade
    assert "multifactor_userkey" not in facts["tables"]
    assert "multifactor_authattempt" not in facts["tables"]
    assert {"multifactor_key", "multifactor_disabledfallback"} <= set(facts["tables"])


def test_every_key_is_kept_with_its_state(upgrade):
    legacy, facts = upgrade
    old = {k["id"]: k for k in legacy["userkeys"]}
    assert len(facts["keys"]) == len(old) == 4
    by_type = {}
    for key in facts["keys"]:
        by_type.setdefault((key["user_id"], key["type"]), []).append(key)
    for userkey in old.values():
        (match,) = [
            k
            for k in by_type[(userkey["user_id"], userkey["key_type"])]
            if k["created_at"] == _iso(userkey["added_on"])
        ]
        assert match["enabled"] == userkey["enabled"] and match["confirmed"]
        assert match["name"] == (userkey["name"] or "")
        assert match["last_used_at"] == (_iso(userkey["last_used"]) if userkey["last_used"] else None)
    (totp,) = by_type[(legacy["user_id"], "TOTP")]
    assert totp["name"] == "Old phone"
    assert totp["last_step"] == legacy["totp_properties"]["last_step"]  # a code used under 0.9 stays used
    (older,) = by_type[(legacy["other_id"], "TOTP")]
    assert older["enabled"] is False and older["last_step"] is None
    fido = by_type[(legacy["user_id"], "FIDO2")]
    expected = {_b64u_hex(legacy["security_key"]["credential_id"]), _b64u_hex(legacy["platform_key"]["credential_id"])}
    assert {k["credential_id"] for k in fido} == expected
    assert all(k["has_public_key"] and k["rp_id"] == "localhost" for k in fido)


def test_totp_seeds_are_encrypted_and_nowhere_in_clear(upgrade):
    legacy, facts = upgrade
    totp_keys = {k["secret_plain"]: k for k in facts["keys"] if k["type"] == "TOTP"}
    assert set(totp_keys) == {legacy["totp_seed"], legacy["other_seed"]}
    for seed, key in totp_keys.items():
        assert seed not in key["secret"] and key["secret"].startswith("gAAAAA")  # a Fernet token
        assert key["secret_with_environment_key"] == seed  # under MULTIFACTOR_ENCRYPTION_KEYS
    assert facts["seeds_in_clear"] == []


def test_the_fallback_opt_out_is_kept(upgrade):
    legacy, facts = upgrade
    assert facts["disabled_fallbacks"] == [[legacy["user_id"], "email"]] == legacy["disabled_fallbacks"]
    assert facts["home_fallbacks"] == [  # e-mail shown as switched off; the site's own transport as on
        ["email", False, "old@example.com"],
        ["pigeon", True, "loft olduser"],
    ]


def test_the_same_settings_keep_working(upgrade):
    _, facts = upgrade
    assert not [c for c in facts["checks"] if c["level"] >= 40], facts["checks"]  # no error
    # MAX_ATTEMPTS: ignored, said so; as W010, since 0.9.x's W001 meant "LOCKOUT_PERIOD < ATTEMPT_PERIOD"
    ids = [c["id"] for c in facts["checks"]]
    assert "multifactor.W010" in ids and "multifactor.W001" not in ids
    assert not [i for i in ids if i in ("multifactor.E010", "multifactor.W011")]  # the site's paths and templates
    (ignored,) = [c for c in facts["checks"] if c["id"] == "multifactor.W010"]
    assert "MAX_ATTEMPTS" in ignored["msg"]


def test_the_totp_key_verifies_through_totp_auth(upgrade):
    _, facts = upgrade
    assert facts["protected_before"] == {"status": 302, "location": "/mf/authenticate/"}
    assert facts["totp_page"]["status"] == 200
    assert facts["totp_replay"]["status"] == 400  # the code 0.9.5 accepted at enrolment is spent
    assert facts["totp"] == {"status": 302, "location": "/protected/"}
    assert facts["protected_after_totp"]["status"] == 200


def test_the_fido2_security_key_verifies_through_the_webauthn_api(upgrade):
    legacy, facts = upgrade
    result = facts["security_key"]
    assert result["protected_before"]["status"] == 302
    assert result["begin"] == 200 and legacy["security_key"]["credential_id"] in result["allowed"]
    assert result["complete"] == 200, result["complete_body"]
    assert result["complete_body"]["data"]["verified"] is True
    assert result["protected_after"]["status"] == 200


def test_a_discoverable_fido2_credential_from_09_verifies(upgrade):
    result = upgrade[1]["platform_key"]
    assert result["complete"] == 200, result["complete_body"]
    assert result["protected_after"]["status"] == 200


def test_sessions_left_by_09_are_challenged_not_broken(upgrade):
    _, facts = upgrade
    assert facts["old_session"] == {"status": 302, "location": "/mf/authenticate/"}


# -- the site's own 0.9.x-style code and templates (tests/upgrade/site_views.py, site_driver.py) ----------------


def _as_in_09(site):
    """What this library answered, with its one documented difference put back: a fallback code's type in
    ``active_factors`` is "FALLBACK" (0.9.x: None)."""
    site = json.loads(json.dumps(site))
    for answer in site.values():
        payload = answer.get("json") if isinstance(answer, dict) else None
        if payload and "active" in payload:
            payload["active"] = [[None if t == "FALLBACK" else t, k] for t, k in payload["active"]]
    return site


def test_the_09_site_code_behaves_as_it_did_with_09(upgrade):
    legacy, facts = upgrade
    before, after = legacy["site"], facts["site"]
    assert after["helpers_verified"]["json"]["active"] == [["FALLBACK", None]]
    assert _as_in_09(after) == before


def test_the_09_site_saw_what_09_promised(upgrade):
    """The comparison above would also pass if both were wrong: what 0.9.5 itself answered, spelled out."""
    site = upgrade[0]["site"]
    assert site["require_unverified"] == site["prefer_unverified"] == {"status": 302, "location": "/mf/authenticate/"}
    assert site["other_require"] == {"status": 302, "location": "/mf/add/"}
    assert site["require_bypassed"]["json"]["bypass"] is True
    assert site["pigeon"]["sent"] == 1 and site["pigeon"]["succeeded"] == "pigeon"
    assert site["pigeon"]["verify"] == {"status": 302, "location": "/require/"}
    assert site["helpers_verified"]["json"]["keys_per_type"] == {"FIDO2": 2, "TOTP": 1}
    assert site["home"]["override"] and len(site["home"]["factors"]) == 3
    assert site["add"]["methods"] == [{"type": "FIDO2"}, {"type": "TOTP"}]
    assert site["admin"] == {
        "True": ["olduser"],
        "False": ["boss", "otheruser"],
        "column": True,
        "filter": True,
        "change_page": 200,
        "inline": False,
    }


def test_status_command_on_migrated_keys(upgrade):
    _, facts = upgrade
    lines = facts["status_output"].splitlines()
    assert lines[0] == "olduser: 3 enabled of 3 key(s)"
    assert "otheruser: 0 enabled of 1 key(s)" in lines
    assert not any(seed in facts["status_output"] for seed in (upgrade[0]["totp_seed"], upgrade[0]["other_seed"]))


def _iso(value: str) -> str:
    from datetime import datetime, timezone

    return datetime.fromisoformat(value).astimezone(timezone.utc).isoformat()


def _b64u_hex(text: str) -> str:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).hex()
