"""The in-process measurement of one library, run by bench/run.py with the library's venv python.

Requests go straight into a ``django.core.handlers.wsgi.WSGIHandler`` (a WSGI environ in, the body read out),
as gunicorn would call it, without the test client's own work (its signals, cookie jar and response
patching), which would dilute the differences between views. For each session engine, in one process:

* the views are timed in interleaved batches (every round runs each view once, in a rotating order), so that
  drift (caches, frequency scaling, the other core's load) hits all views alike; per repetition the mean time
  per request of each view, then the median over repetitions, and the ratio protected / login_required per
  repetition (median, min, max);
* SQL statements per request (``CaptureQueriesContext``, outside the timed loop) and whether the session is
  written: a ``Set-Cookie`` of the session cookie, or (db engine) a changed ``django_session`` row.

Views: ``undecorated``, ``login_required``, ``protected`` (the library's protection) for a verified user,
and ``cold`` (the protected view for a user with a key who has not verified: the redirect). For this library
also ``unjoined`` (the protected view for a session signed in through Django's own ModelBackend, which does
not load the revocation counter with the user: the fallback of one query) and, through an ASGIHandler, an
async view behind ``login_required`` and behind the library's protection (bench/asgi_calls.py). django-otp's
protection needs its middleware: its ``protected`` and ``cold`` go through a handler with ``OTPMiddleware``,
its ``undecorated`` and ``login_required`` through one without (a site without MFA), and
``login_required+mw`` shows what the middleware alone costs a signed-in page of an OTP site. This library's
``SignedInSessionsMiddleware`` (signed-in sessions) is treated the same way.

``--prepare`` instead makes a fresh database with the users and sessions for the real-server run and prints
their cookies as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import os
import pstats
import statistics
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")

ENGINES = {  # with the default configuration otherwise (Django's default cache: local memory)
    "db": "django.contrib.sessions.backends.db",
    "signed_cookies": "django.contrib.sessions.backends.signed_cookies",
}
# The middleware a library adds to every request (its site's others pages pay for it too): the undecorated and
# login_required views are served without it (the site without MFA), the protected ones with it.
SITE_MIDDLEWARE = {
    "otp": "django_otp.middleware.OTPMiddleware",
    "ours": "multifactor.trust.middleware.SignedInSessionsMiddleware",
}


def without_site_middleware(lib: str):
    """override_settings without the library's per-request middleware, or None if it has none installed."""
    from django.conf import settings
    from django.test import override_settings

    mw = SITE_MIDDLEWARE.get(lib)
    if mw not in settings.MIDDLEWARE:
        return None
    return override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m != mw])


def setup(db_path: str, fresh: bool = True):
    os.environ["BENCH_DB"] = db_path
    if fresh:
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(db_path + suffix):
                os.remove(db_path + suffix)
    os.makedirs(os.path.dirname(db_path), exist_ok=True)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode=WAL")


class Call:
    """One GET of ``path`` with a session cookie, through a WSGI handler; checks the status every time."""

    def __init__(self, handler, path, cookie_name, cookie, expect_status, expect_body=None):
        self.handler, self.path, self.cookie_name = handler, path, cookie_name
        self.expect_status, self.expect_body = expect_status, expect_body
        self.set_cookie(cookie)

    def set_cookie(self, cookie):
        self.cookie = cookie
        self.environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": self.path,
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_ACCEPT": "text/html",
            "HTTP_COOKIE": f"{self.cookie_name}={cookie}",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }

    def full(self):
        """(status, headers, body)"""
        environ = dict(self.environ)
        environ["wsgi.input"] = io.BytesIO(b"")
        seen = []

        def start_response(status, headers, exc_info=None):
            seen.append((status, headers))

        result = self.handler(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            result.close()  # fires request_finished, as a WSGI server does
        status, headers = seen[0]
        if not status.startswith(self.expect_status) or (self.expect_body and body != self.expect_body):
            raise RuntimeError(f"GET {self.path}: {status} {body[:200]!r} (expected {self.expect_status})")
        return status, headers, body

    __call__ = full

    def new_cookie(self, headers):
        prefix = self.cookie_name + "="
        for name, value in headers:
            value = value.strip()  # Django's WSGIHandler sends Morsel.output(header=""): " name=value; ..."
            if name.lower() == "set-cookie" and value.startswith(prefix):
                return value[len(prefix) :].split(";", 1)[0]
        return None


def session_row(cookie):
    from django.contrib.sessions.models import Session

    return Session.objects.filter(session_key=cookie).values_list("session_data", "expire_date").first()


def inspect(call: Call, engine: str, samples: int = 5) -> dict:
    """SQL statements per request and whether the session is written (outside the timed loop)."""
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    db = settings.SESSION_ENGINE.endswith(".db")
    counts, writes, statements = [], [], None
    for _ in range(samples):
        before = session_row(call.cookie) if db else None
        with CaptureQueriesContext(connection) as captured:
            _status, headers, _body = call.full()
        sql = [q["sql"] for q in captured.captured_queries]
        after = session_row(call.cookie) if db else None
        written = call.new_cookie(headers) is not None or before != after
        written = written or any("django_session" in s and not s.lstrip().upper().startswith("SELECT") for s in sql)
        counts.append(len(sql))
        writes.append(written)
        statements = sql
    return {"queries": max(counts), "queries_min": min(counts), "session_written": any(writes), "sql": statements}


def warm(call: Call, n: int = 30) -> None:
    """Warm up, following Set-Cookie as a browser would (a cold challenge remembers the URL once)."""
    for _ in range(n):
        _status, headers, _body = call.full()
        cookie = call.new_cookie(headers)
        if cookie:
            call.set_cookie(cookie)


def time_views(calls: dict, reps: int, requests: int, batch: int) -> tuple[dict, dict, dict]:
    """Per view, the mean microseconds per request of each repetition: wall clock, and this process's CPU
    time (which leaves out waiting: for the CPU on a busy machine, but also for Redis or the disk); and the
    time per request of its fastest batch."""
    names = list(calls)
    rounds = max(1, requests // batch)
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    best = dict.fromkeys(names, float("inf"))  # the fastest batch: the least disturbed by the machine's other load
    for _rep in range(reps):
        gc.collect()
        totals = dict.fromkeys(names, 0)
        cpu_totals = dict.fromkeys(names, 0)
        for rnd in range(rounds):
            shift = rnd % len(names)
            for name in names[shift:] + names[:shift]:
                call = calls[name]
                cpu_start = time.process_time_ns()
                start = time.perf_counter_ns()
                for _ in range(batch):
                    call()
                elapsed = time.perf_counter_ns() - start
                totals[name] += elapsed
                best[name] = min(best[name], elapsed / batch / 1000.0)
                cpu_totals[name] += time.process_time_ns() - cpu_start
        for name in names:
            wall[name].append(totals[name] / (rounds * batch) / 1000.0)
            cpu[name].append(cpu_totals[name] / (rounds * batch) / 1000.0)
    return wall, cpu, best


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "all": values}


def build_calls(lib: str, cookies: dict) -> dict:
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    base = handler
    bare = without_site_middleware(lib)
    if bare is not None:
        with bare:
            base = WSGIHandler()
    name, verified, cold = cookies["cookie_name"], cookies["verified"], cookies["cold"]
    calls = {
        "undecorated": Call(base, "/plain/", name, verified, "200", b"plain ok"),
        "login_required": Call(base, "/login/", name, verified, "200", b"login ok"),
        "protected": Call(handler, "/protected/", name, verified, "200", b"protected ok"),
        "cold": Call(handler, "/protected/", name, cold, "302"),
    }
    if base is not handler:
        calls["login_required+mw"] = Call(handler, "/login/", name, verified, "200", b"login ok")
    if "verified_unjoined" in cookies:
        calls["unjoined"] = Call(handler, "/protected/", name, cookies["verified_unjoined"], "200", b"protected ok")
    return calls


def measure_async(lib: str, cookies: dict, args) -> dict | None:
    """Ours only (the others have no async protection): an async view behind ``login_required`` and behind
    ``login_required`` + the library's protection, through Django's ASGIHandler on one event loop."""
    if lib != "ours":
        return None
    import asyncio

    from asgi_calls import AsgiCall, inspect_async

    loop = asyncio.new_event_loop()
    try:
        name, verified = cookies["cookie_name"], cookies["verified"]
        bare = without_site_middleware(lib)
        with bare if bare is not None else contextlib.nullcontext():
            base = AsgiCall(loop, "/async/login/", name, verified, b"async login ok")
        calls = {
            "async_login_required": base,
            "async_protected": AsgiCall(loop, "/async/protected/", name, verified, b"async protected ok"),
        }
        for call in calls.values():
            warm(call)
        details = {n: inspect_async(call) for n, call in calls.items()}
        per_rep, cpu, best = time_views(calls, args.reps, args.requests, args.batch)
    finally:
        loop.close()
    base, prot = "async_login_required", "async_protected"
    return {
        "views": {n: {"us": summary(per_rep[n]), "cpu_us": summary(cpu[n]), **details[n]} for n in calls},
        "ratio": summary([p / b for p, b in zip(per_rep[prot], per_rep[base], strict=True)]),
        "cpu_ratio": summary([p / b for p, b in zip(cpu[prot], cpu[base], strict=True)]),
        "extra_queries": details[prot]["queries"] - details[base]["queries"],
    }


def measure_engine(lib: str, engine: str, args) -> dict:
    import libs
    from django.test import override_settings

    with override_settings(SESSION_ENGINE=ENGINES[engine]):
        cookies = libs.prepare(tag=engine)
        calls = build_calls(lib, cookies)
        for call in calls.values():
            warm(call)
        details = {name: inspect(call, engine) for name, call in calls.items()}
        if args.profile and engine in args.profile:
            profile(calls, args)
        per_rep, cpu, best = time_views(calls, args.reps, args.requests, args.batch)
        async_result = measure_async(lib, cookies, args)
    ratios = [p / b for p, b in zip(per_rep["protected"], per_rep["login_required"], strict=True)]
    cpu_ratios = [p / b for p, b in zip(cpu["protected"], cpu["login_required"], strict=True)]
    cold = [c / b for c, b in zip(per_rep["cold"], per_rep["login_required"], strict=True)]
    views = {}
    for name in calls:
        views[name] = {
            "us": summary(per_rep[name]),
            "cpu_us": summary(cpu[name]),
            "best_us": best[name],
            **details[name],
        }
    result = {
        "views": views,
        "ratio": summary(ratios),
        "cpu_ratio": summary(cpu_ratios),
        "best_ratio": best["protected"] / best["login_required"],
        "cold_ratio": summary(cold),
        "extra_queries": details["protected"]["queries"] - details["login_required"]["queries"],
        "cold_extra_queries": details["cold"]["queries"] - details["login_required"]["queries"],
    }
    if "unjoined" in per_rep:  # ours with Django's own backend: the counter read by its own query
        unjoined = [p / b for p, b in zip(per_rep["unjoined"], per_rep["login_required"], strict=True)]
        result["unjoined_ratio"] = summary(unjoined)
        result["unjoined_extra_queries"] = details["unjoined"]["queries"] - details["login_required"]["queries"]
    if async_result:
        result["async"] = async_result
    if "login_required+mw" in per_rep:
        mw = [p / b for p, b in zip(per_rep["login_required+mw"], per_rep["login_required"], strict=True)]
        result["middleware_ratio"] = summary(mw)
    return result


def profile(calls: dict, args) -> None:
    """cProfile of the protected view and of login_required (the same count each), to stderr."""
    for name in ("login_required", "protected"):
        call = calls[name]
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.profile_requests):
            call()
        profiler.disable()
        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream)
        stats.sort_stats("cumulative").print_stats(35)
        print(f"\n===== cProfile: {name}, {args.profile_requests} requests =====", file=sys.stderr)
        print(stream.getvalue(), file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lib", required=True, choices=["ours", "mf095", "otp"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--out", help="write the JSON result here (default: stdout)")
    parser.add_argument("--engines", default="db,signed_cookies")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--requests", type=int, default=2000, help="requests per view per repetition")
    parser.add_argument("--batch", type=int, default=100, help="requests per view per interleaving round")
    parser.add_argument("--profile", default="", help="engines to profile (comma separated), printed to stderr")
    parser.add_argument("--profile-requests", type=int, default=3000)
    parser.add_argument("--prepare", action="store_true", help="only make the database and print the cookies")
    args = parser.parse_args(argv)
    os.environ["BENCH_LIB"] = args.lib
    args.profile = [e for e in args.profile.split(",") if e]

    setup(args.db)
    if args.prepare:
        import libs

        print(json.dumps(libs.prepare()))
        return
    import django

    result = {
        "lib": args.lib,
        "python": sys.version.split()[0],
        "django": django.get_version(),
        "method": "WSGIHandler (ASGIHandler for the async rows) called in-process",
        "reps": args.reps,
        "requests": args.requests,
        "batch": args.batch,
        "engines": {},
    }
    for engine in args.engines.split(","):
        started = time.time()
        result["engines"][engine] = measure_engine(args.lib, engine, args)
        result["engines"][engine]["seconds"] = round(time.time() - started, 1)
        print(f"[{args.lib}] {engine}: {time.time() - started:.0f} s", file=sys.stderr)
    text = json.dumps(result, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
