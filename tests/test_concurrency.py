"""Races (SECURITY.md R2, R4) on a real database with row locks: run with
DATABASE_URL=postgres://postgres@127.0.0.1:5432/test or
mysql://root@127.0.0.1:3306/test (MariaDB). Threads each use their own connection and client."""

import pytest

from tests.conftest import CsrfClient, make_totp
from tests.mfa_helpers import API, mf_settings, needs_concurrent_db, race, wait_for_fresh_step, wrong_code

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    needs_concurrent_db,
]

THREADS = 20


def run_in_threads(user, n, work):
    """Start ``n`` threads, each with its own signed-in client, released together by a barrier; each runs
    ``work(client)`` and returns a list of results. Returns every result and the elapsed seconds."""
    clients = []
    for _ in range(n):
        client = CsrfClient()
        client.force_login(user)
        clients.append(client)
    return race(clients, work)


def outcome(response):
    if response.status_code == 200:
        return "ok"
    return response.json()["errors"][0]["code"]


def test_same_code_in_parallel_succeeds_once(user):
    key, totp = make_totp(user)
    wait_for_fresh_step()
    code = totp.now()

    def work(client):
        return [outcome(client.api("post", API + "totp/authenticate", {"code": code}))]

    results, elapsed = run_in_threads(user, THREADS, work)
    print(f"\n{THREADS} parallel posts of one code: {elapsed:.2f} s, outcomes {sorted(results)}")
    assert len(results) == THREADS
    assert results.count("ok") == 1
    assert set(results) <= {"ok", "invalid_code", "throttled"}
    key.refresh_from_db()
    assert key.last_step is not None


def test_same_code_in_parallel_html_succeeds_once(user):
    key, totp = make_totp(user)
    wait_for_fresh_step()
    code = totp.now()

    def work(client):
        return [client.post("/multifactor/totp/auth/", {"answer": code}).status_code]

    results, _elapsed = run_in_threads(user, THREADS, work)
    assert results.count(302) == 1
    assert set(results) <= {302, 400, 429}


def test_parallel_wrong_codes_are_all_counted_and_lock_at_the_limit(user):
    key, totp = make_totp(user)
    per_thread = 10
    limit = 100
    bad = wrong_code(totp)

    def work(client):
        return [outcome(client.api("post", API + "totp/authenticate", {"code": bad})) for _ in range(per_thread)]

    with mf_settings(THROTTLE_FREE_FAILURES=1000, THROTTLE_MAX_FAILURES=limit):
        results, elapsed = run_in_threads(user, THREADS, work)
    print(f"\n{THREADS * per_thread} parallel wrong codes: {elapsed:.2f} s")
    assert len(results) == THREADS * per_thread
    key.refresh_from_db()
    assert key.failures == limit  # no lost update, none counted past the lock
    assert key.enabled is False and key.locked_at is not None
    # Exactly limit - 1 answers were "wrong code"; the one that reached the limit and every later one: locked
    # (or "no key" once the locked key no longer counts as the user's).
    assert results.count("invalid_code") == limit - 1
    assert set(results) <= {"invalid_code", "key_locked", "no_key"}
    assert results.count("key_locked") >= 1


def test_parallel_wrong_codes_with_delay_never_pass_the_limit(user):
    """With the default growing delay most guesses are refused unchecked; none slips past the count."""
    key, totp = make_totp(user)
    bad = wrong_code(totp)

    def work(client):
        return [outcome(client.api("post", API + "totp/authenticate", {"code": bad})) for _ in range(5)]

    with mf_settings(THROTTLE_FREE_FAILURES=3, THROTTLE_MAX_FAILURES=10):
        results, _elapsed = run_in_threads(user, THREADS, work)
    key.refresh_from_db()
    checked = results.count("invalid_code")
    assert key.failures == checked  # every checked guess counted, every throttled one not
    assert checked <= 10
    assert "throttled" in results
