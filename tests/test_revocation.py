"""Revocation (SECURITY.md R9, CONTRACT decorator rule 4): disabling or deleting a key, however it is done,
ends its verifications in every session of the user on the very next request, with every session engine."""

import time
import uuid

import pytest
from django.db.models import Value
from django.db.models.functions import Now

from multifactor.models import FALLBACK, Key
from multifactor.session import Verification
from tests.conftest import CsrfClient, make_totp, verify_totp
from tests.mfa_helpers import (
    ADD,
    API,
    AUTHENTICATE,
    REDIS_URL,
    action_url,
    data,
    edit_mfa_state,
    flush_prefix,
    mfa_state,
    redis_connection,
)

pytestmark = pytest.mark.django_db

SIGNED = "django.contrib.sessions.backends.signed_cookies"
JOINED = "multifactor.backends.ModelBackend"
PLAIN = "django.contrib.auth.backends.ModelBackend"  # the counter is then read by a query of its own
ENGINES = {  # session engine, cache for the cache-based session engines, authentication backend
    "db": ("django.contrib.sessions.backends.db", "locmem", JOINED),
    "cache": ("django.contrib.sessions.backends.cache", "locmem", JOINED),
    "cached_db": ("django.contrib.sessions.backends.cached_db", "locmem", JOINED),
    "file": ("django.contrib.sessions.backends.file", "locmem", JOINED),
    "cache+redis": ("django.contrib.sessions.backends.cache", "redis", JOINED),
    "signed_cookies": (SIGNED, "locmem", JOINED),
    "db+plain_backend": ("django.contrib.sessions.backends.db", "locmem", PLAIN),
    "signed_cookies+plain_backend": (SIGNED, "locmem", PLAIN),
}


@pytest.fixture(params=list(ENGINES))
def engine(request, settings, tmp_path):
    backend, cache, auth_backend = ENGINES[request.param]
    connection = prefix = None
    if cache == "redis":
        connection, prefix = redis_connection(), f"mftest-{uuid.uuid4().hex}"
        flush_prefix(connection, prefix)
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": prefix,
            }
        }
    else:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.SESSION_ENGINE = backend
    settings.SESSION_FILE_PATH = str(tmp_path)
    settings.AUTHENTICATION_BACKENDS = [auth_backend]
    yield request.param
    if connection is not None:
        flush_prefix(connection, prefix)
        connection.close()


def signed_in_client(user):
    client = CsrfClient()
    client.force_login(user)
    return client


def verified_client(user, totp, key):
    client = signed_in_client(user)
    response = verify_totp(client, totp, key)  # allows the same key to verify again in another session
    assert response.status_code == 302, response.content
    assert client.get("/f1/").content == b"ok"
    return client


def revoke_by_action_toggle(one, key):
    assert one.post(action_url("toggle_factor", key.pk)).status_code == 302
    assert not Key.objects.get(pk=key.pk).enabled


def revoke_by_api_patch(one, key):
    assert one.api("patch", API + f"keys/{key.pk}", {"enabled": False}).status_code == 200


def revoke_by_bulk_update(one, key):
    assert Key.objects.filter(pk=key.pk).update(enabled=False) == 1


def revoke_by_bulk_update_objects(one, key):
    """bulk_update() becomes update(enabled=Case(When(...))): an expression, not the literal False."""
    key = Key.objects.get(pk=key.pk)
    key.enabled = False
    assert Key.objects.bulk_update([key], ["enabled"]) == 1


def revoke_by_update_with_zero(one, key):
    assert Key.objects.filter(pk=key.pk).update(enabled=0) == 1


def revoke_by_update_with_expression(one, key):
    assert Key.objects.filter(pk=key.pk).update(enabled=Value(False)) == 1


def revoke_by_update_through_the_user(one, key):
    assert key.user.multifactor_keys.filter(pk=key.pk).update(enabled=False) == 1


def revoke_by_update_confirmed(one, key):
    assert Key.objects.filter(pk=key.pk).update(confirmed=False) == 1


def revoke_by_update_locked_at(one, key):
    assert Key.objects.filter(pk=key.pk).update(locked_at=Now()) == 1


def revoke_by_save_unconfirmed(one, key):
    key = Key.objects.get(pk=key.pk)
    key.confirmed = False
    key.save()


def revoke_by_save(one, key):
    key = Key.objects.get(pk=key.pk)
    key.enabled = False
    key.save()


def revoke_by_model_delete(one, key):
    Key.objects.get(pk=key.pk).delete()


def revoke_by_bulk_delete(one, key):
    Key.objects.filter(pk=key.pk).delete()


def revoke_by_action_delete(one, key):
    assert one.post(action_url("delete_factor", key.pk)).status_code == 302
    assert not Key.objects.filter(pk=key.pk).exists()


def revoke_by_api_delete(one, key):
    assert one.api("delete", API + f"keys/{key.pk}").status_code == 204


REVOKERS = [
    revoke_by_action_toggle,
    revoke_by_api_patch,
    revoke_by_bulk_update,
    revoke_by_bulk_update_objects,
    revoke_by_update_with_zero,
    revoke_by_update_with_expression,
    revoke_by_update_through_the_user,
    revoke_by_update_confirmed,
    revoke_by_update_locked_at,
    revoke_by_save_unconfirmed,
    revoke_by_save,
    revoke_by_model_delete,
    revoke_by_bulk_delete,
    revoke_by_action_delete,
    revoke_by_api_delete,
]


@pytest.mark.parametrize("revoke", REVOKERS, ids=lambda f: f.__name__.removeprefix("revoke_by_"))
def test_revocation_reaches_the_other_session(engine, user, revoke):
    k1, totp1 = make_totp(user, "one")
    make_totp(user, "two")  # a key that stays, so the user is challenged rather than sent to enrol
    one = verified_client(user, totp1, k1)
    two = verified_client(user, totp1, k1)
    revoke(one, k1)
    r = two.get("/f1/")
    assert r.status_code == 302 and r["Location"] == AUTHENTICATE
    r = one.get("/f1/")
    assert r.status_code == 302 and r["Location"] == AUTHENTICATE
    assert data(two.api("get", API + "status"))["verified"] == []
    # Still signed in: only the verification ended.
    assert two.get("/plain/").content == b"plain"


@pytest.mark.parametrize("revoke", [revoke_by_bulk_update, revoke_by_api_delete], ids=["bulk_update", "api_delete"])
def test_other_keys_verifications_survive(engine, user, revoke):
    k1, totp1 = make_totp(user, "one")
    k2, totp2 = make_totp(user, "two")
    one = verified_client(user, totp1, k1)
    two = verified_client(user, totp2, k2)
    revoke(one, k1)
    assert two.get("/f1/").content == b"ok"
    assert [v["key_id"] for v in data(two.api("get", API + "status"))["verified"]] == [k2.pk]


def test_revocation_with_several_sessions_each(engine, user):
    k1, totp1 = make_totp(user, "one")
    make_totp(user, "two")
    clients = [verified_client(user, totp1, k1) for _ in range(4)]
    Key.objects.filter(user=user, name="one").update(enabled=False)
    for c in clients:
        assert c.get("/f1/")["Location"] == AUTHENTICATE


def test_reenabling_does_not_bring_verifications_back(engine, user):
    k1, totp1 = make_totp(user, "one")
    make_totp(user, "two")
    two = verified_client(user, totp1, k1)
    Key.objects.filter(pk=k1.pk).update(enabled=False)
    Key.objects.filter(pk=k1.pk).update(enabled=True)
    assert two.get("/f1/")["Location"] == AUTHENTICATE


def inject_fallback(client):
    now = time.time()
    edit_mfa_state(client, lambda state: state.verifications.append(Verification(None, FALLBACK, now, now + 3600)))


@pytest.mark.parametrize(
    "revoke", [revoke_by_action_delete, revoke_by_bulk_update, revoke_by_model_delete], ids=lambda f: f.__name__
)
def test_fallback_dropped_when_last_key_goes(engine, user, revoke):
    k1, totp1 = make_totp(user, "only")
    one = verified_client(user, totp1, k1)
    inject_fallback(one)
    two = signed_in_client(user)
    inject_fallback(two)
    assert two.get("/f1/").content == b"ok"  # a fallback stands in for the key the user has
    assert {v.type for v in mfa_state(one).verifications} == {"TOTP", FALLBACK}

    revoke(one, k1)

    for c in (one, two):
        r = c.get("/f1/")
        assert r.status_code == 302 and r["Location"] == ADD  # no keys left: enrol, the fallback is gone
        assert mfa_state(c).verifications == []
        assert data(c.api("get", API + "status"))["verified"] == []


def test_fallback_kept_while_another_key_remains(engine, user):
    k1, totp1 = make_totp(user, "one")
    make_totp(user, "two")
    one = verified_client(user, totp1, k1)
    two = signed_in_client(user)
    inject_fallback(two)
    assert two.get("/f1/").content == b"ok"
    assert one.post(action_url("delete_factor", k1.pk)).status_code == 302
    assert two.get("/f1/").content == b"ok"
    assert [v.type for v in mfa_state(two).verifications] == [FALLBACK]


def test_fallback_alone_never_counts_for_a_user_without_keys(engine, user):
    two = signed_in_client(user)
    inject_fallback(two)
    r = two.get("/f1/")
    assert r.status_code == 302 and r["Location"] == ADD


def test_locked_key_is_revoked_everywhere(engine, user, settings):
    k1, totp1 = make_totp(user, "one")
    make_totp(user, "two")
    victim = verified_client(user, totp1, k1)
    attacker = signed_in_client(user)
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "THROTTLE_FREE_FAILURES": 10, "THROTTLE_MAX_FAILURES": 1}
    wrong = "000000" if "000000" not in {totp1.at(time.time() + 30 * k) for k in range(-2, 3)} else "111111"
    attacker.post("/multifactor/totp/auth/", {"answer": wrong})
    assert Key.objects.filter(pk=k1.pk, locked_at__isnull=False).exists()
    assert victim.get("/f1/")["Location"] == AUTHENTICATE
    assert victim.get("/plain/").content == b"plain"


def test_reenabling_does_not_revive_a_fallback(engine, user):
    k1, _totp1 = make_totp(user, "only")
    two = signed_in_client(user)
    inject_fallback(two)
    assert two.get("/f1/").content == b"ok"
    Key.objects.filter(pk=k1.pk).update(enabled=False)
    Key.objects.filter(pk=k1.pk).update(enabled=True)
    assert two.get("/f1/")["Location"] == AUTHENTICATE


def test_verification_after_reenabling_counts(engine, user):
    k1, totp1 = make_totp(user, "one")
    one = verified_client(user, totp1, k1)
    revoke_by_save(one, k1)
    key = Key.objects.get(pk=k1.pk)
    key.enabled = True
    key.save()
    assert one.get("/f1/")["Location"] == AUTHENTICATE
    assert verify_totp(one, totp1, k1).status_code == 302
    assert one.get("/f1/").content == b"ok"
    two = verified_client(user, totp1, k1)
    assert two.get("/f1/").content == b"ok"
    assert one.get("/f1/").content == b"ok"
