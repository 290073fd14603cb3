"""Async requests for the in-process benchmark: Django's ASGIHandler driven on one event loop, as an ASGI
server would drive it (a scope, a receive that delivers the empty body and then waits, a send that collects).

Timing runs the handler on a persistent loop in the main thread, so that the only thread hops measured are
the ones Django and the library make. Counting SQL needs the database work on the thread whose connection
``CaptureQueriesContext`` watches: :func:`inspect_async` runs the same request through ``async_to_sync``,
under which ``sync_to_async`` comes back to the calling thread.
"""

from __future__ import annotations

import asyncio


class AsgiCall:
    """One GET of ``path`` with a session cookie through an ASGIHandler; checks status and body every time."""

    def __init__(self, loop, path, cookie_name, cookie, expect_body):
        from django.core.handlers.asgi import ASGIHandler

        self.loop, self.path, self.cookie_name, self.expect_body = loop, path, cookie_name, expect_body
        self.handler = ASGIHandler()
        self.set_cookie(cookie)

    def set_cookie(self, cookie):
        self.cookie = cookie
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"accept", b"text/html"),
                (b"cookie", f"{self.cookie_name}={cookie}".encode()),
            ],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 80),
        }

    async def once(self):
        sent = []
        delivered = False

        async def receive():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # the client stays connected; Django cancels this when done

        async def send(message):
            sent.append(message)

        await self.handler(dict(self.scope), receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start["headers"]]
        if start["status"] != 200 or body != self.expect_body:
            raise RuntimeError(f"GET {self.path} (ASGI): {start['status']} {body[:200]!r}")
        return str(start["status"]), headers, body

    def full(self):
        """(status, headers, body)"""
        return self.loop.run_until_complete(self.once())

    __call__ = full

    def new_cookie(self, headers):
        prefix = self.cookie_name + "="
        for name, value in headers:
            if name.lower() == "set-cookie" and value.strip().startswith(prefix):
                return value.strip()[len(prefix) :].split(";", 1)[0]
        return None


def inspect_async(call: AsgiCall, samples: int = 5) -> dict:
    """SQL statements per request and whether the session is written (cookie set or db row changed)."""
    from asgiref.sync import async_to_sync
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from inproc import session_row

    db = settings.SESSION_ENGINE.endswith(".db")
    counts, writes = [], []
    for _ in range(samples):
        before = session_row(call.cookie) if db else None
        with CaptureQueriesContext(connection) as captured:
            _status, headers, _body = async_to_sync(call.once)()
        after = session_row(call.cookie) if db else None
        counts.append(len(captured.captured_queries))
        writes.append(call.new_cookie(headers) is not None or before != after)
    return {"queries": max(counts), "queries_min": min(counts), "session_written": any(writes)}
