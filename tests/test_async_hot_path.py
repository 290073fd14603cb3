"""Async protected views: for a verified user the check runs in the event loop, with no thread hop of its
own and no query, so an async view behind ``login_required`` + the protection costs what ``login_required``
alone costs (bench/ measures the time; this counts the hops).

A hop is a call of asgiref's ``SyncToAsync`` (what ``sync_to_async`` returns); counting them is
instrumentation of asgiref, the library's own logic runs unchanged.
"""

import pytest
from asgiref import sync
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import AsyncClient
from django.test.utils import CaptureQueriesContext

from tests.conftest import verify_totp

pytestmark = pytest.mark.django_db


@pytest.fixture
def hops(monkeypatch):
    seen = []
    original = sync.SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        seen.append(getattr(self.func, "__qualname__", type(self.func).__name__))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", counting)
    return seen


def run_async(client, url, hops):
    """GET ``url`` through AsyncClient with ``client``'s cookies: (response, hops, SQL statements)."""

    async def go():
        async_client = AsyncClient()
        async_client.cookies = client.cookies
        return await async_client.get(url)

    hops.clear()
    with CaptureQueriesContext(connection) as queries:
        response = async_to_sync(go)()
    return response, list(hops), len(queries)


def test_verified_async_view_adds_no_thread_hop_and_no_query(signed_in, totp_key, hops):
    key, totp = totp_key
    verify_totp(signed_in, totp)
    run_async(signed_in, "/async-login/", hops)  # warm: the first request of a session may differ
    base, base_hops, base_sql = run_async(signed_in, "/async-login/", hops)
    protected, protected_hops, protected_sql = run_async(signed_in, "/async-login-f1/", hops)
    assert base.status_code == protected.status_code == 200
    assert protected.content == b"async ok"
    assert protected_hops == base_hops, (base_hops, protected_hops)
    assert protected_sql == base_sql


def test_unverified_async_view_is_challenged_through_the_sync_path(signed_in, totp_key, hops):
    """Off the hot path (here: a challenge) the full check may run in a thread; it still answers right."""
    response, challenge_hops, _ = run_async(signed_in, "/async-login-f1/", hops)
    assert response.status_code == 302 and response["Location"].endswith("/authenticate/")
    _, base_hops, _ = run_async(signed_in, "/async-login/", hops)
    assert len(challenge_hops) > len(base_hops)  # the counter above does see the library's hops


def test_signed_in_sessions_middleware_stays_in_the_event_loop(signed_in, totp_key, hops):
    """``SignedInSessionsMiddleware`` (tests/settings.py installs it) is async-capable: a settled session
    passes it without a hop; Django would otherwise run a sync-only middleware in a thread on every request."""
    from django.conf import settings

    assert "multifactor.trust.middleware.SignedInSessionsMiddleware" in settings.MIDDLEWARE
    key, totp = totp_key
    verify_totp(signed_in, totp)
    run_async(signed_in, "/async-login/", hops)
    response, seen, _ = run_async(signed_in, "/async-login-f1/", hops)
    assert response.status_code == 200
    # A sync-only middleware puts itself and everything outside it in a thread: one hop of the handler chain.
    assert not [name for name in seen if name.startswith(("convert_exception_to_response", "SignedInSessions"))]
    assert not [name for name in seen if "check" in name], seen
