"""WebAuthn races (SECURITY.md R4, R7) on PostgreSQL with real row locks: run with
DATABASE_URL=postgres://postgres@127.0.0.1:5432/test or
mysql://root@127.0.0.1:3306/test (MariaDB). Threads each use their own client and database
connection, released together by a barrier.

The challenge state is single-use. Parallel requests that share one session cookie all read the session
before any of them writes it back, so "pop it from the session" alone lets each of them verify the same
answer; with a counter-less authenticator (synced passkeys report 0) nothing else would stop the replay.
"""

import pytest
from django.db import connections

from multifactor.models import Key
from tests.conftest import CsrfClient
from tests.mfa_helpers import API, data, mf_settings, needs_concurrent_db, race
from tests.softauthn import SoftAuthenticator

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    needs_concurrent_db,
]

THREADS = 10
HOST = "localhost"
ORIGIN = "http://localhost"


@pytest.fixture(autouse=True)
def webauthn_settings(settings):
    settings.MULTIFACTOR = {
        **settings.MULTIFACTOR,
        "FIDO_SERVER_ID": "localhost",
        "FIDO_ORIGINS": [ORIGIN],
        "PASSKEY_LOGIN": True,
    }


def new_client(user=None, session=None):
    client = CsrfClient(HTTP_HOST=HOST)
    if user is not None:
        client.force_login(user)
    if session is not None:
        client.cookies["sessionid"] = session
    return client


def post(client, url, body=None):
    return client.api("post", url, {} if body is None else body)


def enrol(user, auth, passkey=False):
    client = new_client(user)
    options = data(post(client, API + "webauthn/register/begin", {"passkey": passkey}))
    response = post(client, API + "webauthn/register/complete", {"name": "k", "credential": auth.create(options)})
    assert response.status_code == 201, response.content
    connections.close_all()
    return Key.objects.get(pk=data(response)["id"])


def outcome(response):
    if response.status_code in (200, 201):
        return "ok"
    if response.get("Content-Type", "").startswith("application/json"):
        return response.json()["errors"][0]["code"]
    return f"http-{response.status_code}"  # e.g. 400 SessionInterrupted: the session was cycled under it


def run_in_threads(clients, work):
    """Each client runs ``work(client)`` in its own thread, all released at once; returns the outcomes."""
    return race(clients, lambda client: [work(client)])


@pytest.mark.parametrize("counter_step", [0, 1], ids=["no counter", "counter"])
def test_one_assertion_posted_in_parallel_on_one_session_verifies_once(user, counter_step):
    auth = SoftAuthenticator(counter_step=counter_step)
    key = enrol(user, auth)
    owner = new_client(user)
    options = data(post(owner, API + "webauthn/authenticate/begin"))
    assertion = auth.get(options)
    session = owner.cookies["sessionid"].value
    clients = [new_client(session=session) for _ in range(THREADS)]

    def work(client):
        return outcome(post(client, API + "webauthn/authenticate/complete", {"credential": assertion}))

    results, elapsed = run_in_threads(clients, work)
    print(f"\n{THREADS} parallel posts of one assertion: {elapsed:.2f} s, outcomes {sorted(results)}")
    assert results.count("ok") == 1, results
    key.refresh_from_db()
    assert key.sign_count == counter_step
    if counter_step == 0:
        assert key.clone_suspected_at is None  # refused as a used challenge, not as a clone


def test_one_passkey_assertion_posted_in_parallel_signs_in_once(user):
    auth = SoftAuthenticator(counter_step=0)
    enrol(user, auth, passkey=True)
    visitor = new_client()
    assertion = auth.get(data(post(visitor, API + "passkey/begin")))
    session = visitor.cookies["sessionid"].value
    clients = [new_client(session=session) for _ in range(THREADS)]

    def work(client):
        return outcome(post(client, API + "passkey/complete", {"credential": assertion}))

    results, _elapsed = run_in_threads(clients, work)
    assert results.count("ok") == 1, results


def test_one_registration_posted_in_parallel_adds_one_key(user):
    owner = new_client(user)
    options = data(post(owner, API + "webauthn/register/begin"))
    credential = SoftAuthenticator().create(options)
    session = owner.cookies["sessionid"].value
    clients = [new_client(session=session) for _ in range(THREADS)]

    def work(client):
        return outcome(post(client, API + "webauthn/register/complete", {"name": "k", "credential": credential}))

    results, _elapsed = run_in_threads(clients, work)
    assert results.count("ok") == 1, results
    assert Key.objects.filter(user=user, type="FIDO2").count() == 1


def test_parallel_bad_assertions_are_all_counted(user):
    """Each thread has its own session and challenge; every wrong signature is counted, none lost."""
    auth = SoftAuthenticator()
    key = enrol(user, auth)
    clients = [new_client(user) for _ in range(THREADS)]
    per_thread = 3

    def work(client):
        got = []
        for _ in range(per_thread):
            options = data(post(client, API + "webauthn/authenticate/begin"))
            got.append(
                outcome(
                    post(
                        client,
                        API + "webauthn/authenticate/complete",
                        {"credential": auth.get(options, bad_signature=True)},
                    )
                )
            )
        return got

    with mf_settings(THROTTLE_FREE_FAILURES=1000, THROTTLE_MAX_FAILURES=100):
        results, elapsed = run_in_threads(clients, work)
    flat = [r for got in results for r in got]
    print(f"\n{len(flat)} parallel bad assertions: {elapsed:.2f} s")
    assert flat == ["webauthn_failed"] * THREADS * per_thread
    key.refresh_from_db()
    assert key.failures == THREADS * per_thread and key.enabled
