"""Races on recovery and fallback codes (SECURITY.md R4, R5, R6) on a real database with row locks: run with
DATABASE_URL=postgres://postgres@127.0.0.1:5432/test or
mysql://root@127.0.0.1:3306/test (MariaDB). Each thread has its own connection and client; the
threads are released together by a barrier."""

import time

import pytest

from multifactor.models import FallbackCode, Key, RecoveryCode
from multifactor.session import Verification
from tests import transports
from tests.conftest import CsrfClient, make_totp
from tests.mfa_helpers import API, edit_mfa_state, mf_settings, needs_concurrent_db, race
from tests.test_fallback import TWO, last_code, other_code
from tests.test_recovery import wrong_code

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    needs_concurrent_db,
]

THREADS = 20
RECOVERY_AUTH = API + "recovery-codes/authenticate"
FALLBACK_AUTH = API + "fallback/authenticate"


@pytest.fixture(autouse=True)
def _clear_transports():
    transports.clear()
    yield
    transports.clear()


def signed_in(user, verified_key=None):
    client = CsrfClient()
    client.force_login(user)
    if verified_key is not None:  # a fresh verification of the key, as a TOTP code would have made
        now = time.time()
        edit_mfa_state(client, lambda s: s.verifications.append(Verification(verified_key.pk, "TOTP", now, now + 3600)))
    return client


def sharing_session(client):
    """Another client in the same browser session (same session cookie, its own CSRF token)."""
    twin = CsrfClient()
    twin.cookies["sessionid"] = client.cookies["sessionid"].value
    return twin


def outcome(response):
    if response.status_code in (200, 201):
        return "ok"
    return response.json()["errors"][0]["code"]


def make_codes(user):
    key, _totp = make_totp(user)
    response = signed_in(user, key).api("post", API + "recovery-codes")
    assert response.status_code == 201, response.content
    return response.json()["data"]["codes"], key


# -- recovery codes -----------------------------------------------------------------------------------------


@mf_settings(THROTTLE_FREE_FAILURES=1000, THROTTLE_MAX_FAILURES=100)
def test_one_recovery_code_used_by_20_threads_succeeds_once(user):
    codes, _key = make_codes(user)

    def work(client):
        return [outcome(client.api("post", RECOVERY_AUTH, {"code": codes[0]}))]

    results, elapsed = race([signed_in(user) for _ in range(THREADS)], work)
    print(f"\n{THREADS} parallel uses of one recovery code: {elapsed:.2f} s")
    assert len(results) == THREADS
    assert results.count("ok") == 1
    assert results.count("invalid_code") == THREADS - 1
    assert RecoveryCode.objects.filter(key__user=user, used_at__isnull=False).count() == 1
    assert Key.objects.get(user=user, type="RECOVERY").failures == THREADS - 1


@mf_settings(THROTTLE_FREE_FAILURES=1000, THROTTLE_MAX_FAILURES=100)
def test_one_recovery_code_on_the_page_by_20_threads_succeeds_once(user):
    codes, _key = make_codes(user)

    def work(client):
        return [client.post("/multifactor/recovery/auth/", {"code": codes[1].lower()}).status_code]

    results, _elapsed = race([signed_in(user) for _ in range(THREADS)], work)
    assert results.count(302) == 1 and results.count(400) == THREADS - 1
    assert RecoveryCode.objects.filter(used_at__isnull=False).count() == 1


@mf_settings(THROTTLE_FREE_FAILURES=1000, THROTTLE_MAX_FAILURES=100)
def test_200_wrong_recovery_codes_in_parallel_are_all_counted_and_lock_at_the_limit(user):
    codes, _key = make_codes(user)

    def work(client):
        return [outcome(client.api("post", RECOVERY_AUTH, {"code": wrong_code(codes)})) for _ in range(10)]

    results, elapsed = race([signed_in(user) for _ in range(THREADS)], work)
    print(f"\n{THREADS * 10} parallel wrong recovery codes: {elapsed:.2f} s")
    key = Key.objects.get(user=user, type="RECOVERY")
    assert key.failures == 100 and key.locked_at is not None and key.enabled is False
    assert results.count("invalid_code") == 99
    assert results.count("key_locked") == 101
    r = signed_in(user).api("post", RECOVERY_AUTH, {"code": codes[0]})
    assert r.status_code == 403 and outcome(r) == "key_locked"
    assert not RecoveryCode.objects.filter(used_at__isnull=False).exists()


@mf_settings(RECOVERY_CODES=3)
def test_parallel_regenerations_leave_one_set(user):
    key, _totp = make_totp(user)

    def work(client):
        return [outcome(client.api("post", API + "recovery-codes"))]

    results, _elapsed = race([signed_in(user, key) for _ in range(10)], work)
    assert results == ["ok"] * 10
    assert Key.objects.filter(user=user, type="RECOVERY").count() == 1
    assert RecoveryCode.objects.filter(key__user=user).count() == 3


# -- fallback codes -----------------------------------------------------------------------------------------


@mf_settings(FALLBACKS=TWO, THROTTLE_FREE_FAILURES=1000, THROTTLE_MAX_FAILURES=100)
def test_200_wrong_fallback_codes_in_parallel_are_all_counted_and_lock_at_the_limit(user):
    make_totp(user)
    asker = signed_in(user)
    assert asker.api("post", API + "fallback/send").status_code == 200
    code = last_code()
    wrong = other_code(code)

    def work(client):
        return [outcome(client.api("post", FALLBACK_AUTH, {"code": wrong})) for _ in range(10)]

    # Every thread is in the session that asked for the code, so every guess is checked against it.
    results, elapsed = race([sharing_session(asker) for _ in range(THREADS)], work)
    print(f"\n{THREADS * 10} parallel wrong fallback codes: {elapsed:.2f} s")
    assert len(results) == THREADS * 10
    row = FallbackCode.objects.get(user=user)
    assert row.failures == 100 and row.locked_at is not None  # no lost update, none counted past the lock
    assert results.count("invalid_code") == 99
    assert results.count("key_locked") == 101
    r = asker.api("post", FALLBACK_AUTH, {"code": code})
    assert r.status_code == 403 and outcome(r) == "key_locked"
    assert asker.get("/f1/")["Location"].endswith("/authenticate/")


@mf_settings(FALLBACKS=TWO, THROTTLE_FREE_FAILURES=3, THROTTLE_BASE_DELAY=60, THROTTLE_MAX_FAILURES=10)
def test_parallel_wrong_fallback_codes_with_a_delay_never_pass_it(user):
    make_totp(user)
    asker = signed_in(user)
    assert asker.api("post", API + "fallback/send").status_code == 200
    code = last_code()

    def work(client):
        return [outcome(client.api("post", FALLBACK_AUTH, {"code": other_code(code)})) for _ in range(5)]

    results, _elapsed = race([sharing_session(asker) for _ in range(THREADS)], work)
    row = FallbackCode.objects.get(user=user)
    assert row.failures == results.count("invalid_code") == 4  # 3 free, the 4th sets a 60 s delay
    assert results.count("throttled") == THREADS * 5 - 4
    r = asker.api("post", FALLBACK_AUTH, {"code": code})  # the right code, refused while throttled
    assert r.status_code == 429 and outcome(r) == "throttled" and int(r["Retry-After"]) > 50


@mf_settings(FALLBACKS=TWO, FALLBACK_COOLDOWN=60)
def test_parallel_sends_send_once(user):
    make_totp(user)

    def work(client):
        return [outcome(client.api("post", API + "fallback/send"))]

    results, _elapsed = race([signed_in(user) for _ in range(THREADS)], work)
    assert results.count("ok") == 1 and results.count("cooldown") == THREADS - 1
    assert len(transports.sent("record")) == 1
