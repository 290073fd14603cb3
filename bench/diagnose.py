"""Where this library's hot path spends its time (run in the ``ours`` venv by ``bench/run.py --only diagnose``).

1. ``policy.enforce`` and its parts timed on one verified request object, outside any request (hot caches):
   the floor of the decorator's own work.
2. On the signed_cookies engine, the protected view with ``revocation.still_valid`` replaced, one variant at a
   time, by cheaper ways to read the revision token, interleaved with login_required as in inproc.py. These
   replacements exist only in this process, to measure what a change to the library would buy; the library
   itself is not changed:

   * ``as is``: the library (one GET through a ``redis.Redis`` client of the primary, kept per cache object);
   * ``cache.get per request``: the token read through Django's cache API, as the library did before
     (``RedisCache`` builds a new client object on every call, and reads from a replica if there is one);
   * ``raw RESP GET``: the GET written by hand on one socket: the floor of any per-request round trip;
   * ``local table + recv``: the token from a dict in the process, after one non-blocking ``recv`` (the cost of
     draining pushed invalidations, as Redis client-side caching or pub/sub would deliver them);
   * ``no check``: no revision check at all (not a candidate: it shows the rest of the decorator).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time
import timeit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
os.environ["BENCH_LIB"] = "ours"


def enforce_parts(cookies) -> list[tuple[str, float]]:
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import get_user
    from django.test import RequestFactory

    from multifactor import conf, policy, revocation, session

    request = RequestFactory().get("/protected/")
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(cookies["verified"])
    request.user = get_user(request)
    if policy.enforce(request, factors=1) is not None:
        raise RuntimeError("the verified session is not verified")
    state = session.load(request.session)
    parts = [
        ("policy.enforce(request, factors=1)", lambda: policy.enforce(request, factors=1)),
        ("  session.load(request.session)", lambda: session.load(request.session)),
        ("  revocation.still_valid(request, state)", lambda: revocation.still_valid(request, state)),
        ("  conf.get()", conf.get),
        ("  state.active(now)", lambda: state.active(time.time())),
    ]
    n = 20000
    return [(label, min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6) for label, fn in parts]


def variants():
    from django.core.cache import caches

    from multifactor import conf, revocation

    as_is = revocation.still_valid
    state_holder = {}

    def alias():
        return conf.get().CACHE

    def cache_api(request, state):  # how the token was read before: Django's cache.get (a client per call)
        token = caches[alias()].get(revocation._revision_key(request.user.pk))
        if token is not None and state.revision and str(token) == state.revision:
            return None
        return as_is(request, state)

    def raw_resp(request, state):
        from django.conf import settings

        sock = state_holder.get("sock")
        if sock is None:
            host, port = settings.REDIS_URL.split("//", 1)[1].split("/", 1)[0].split(":")
            sock = state_holder["sock"] = socket.create_connection((host, int(port)))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = caches[alias()].make_and_validate_key(revocation._revision_key(request.user.pk)).encode()
        sock.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key))
        reply = sock.recv(65536)
        if reply.startswith(b"$") and not reply.startswith(b"$-1") and state.revision:
            header_end = reply.index(b"\r\n")
            payload = reply[header_end + 2 : header_end + 2 + int(reply[1:header_end])]
            if payload.decode() == state.revision:
                return None
        return as_is(request, state)

    pushed, _peer = socket.socketpair()  # stands in for the subscription socket: nothing ever arrives
    pushed.setblocking(False)
    table = {}

    def local_table(request, state):
        try:
            pushed.recv(65536)
        except BlockingIOError:
            pass
        token = table.get(request.user.pk)
        if token is None:
            token = table[request.user.pk] = revocation.read_revision(request.user.pk)
        return None if token == state.revision and token else as_is(request, state)

    def no_check(request, state):
        return None

    return {
        "as is": as_is,
        "cache.get per request": cache_api,
        "raw RESP GET": raw_resp,
        "local table + recv": local_table,
        "no check": no_check,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)

    import inproc

    inproc.setup(args.db)
    import libs
    from django.conf import settings
    from django.test import override_settings

    from multifactor import revocation

    lines = []
    try:
        with override_settings(SESSION_ENGINE=inproc.ENGINES["db"][0]):
            cookies = libs.prepare(tag="diag-db")
            lines.append("policy.enforce on one request object, db sessions (best of 5 x 20000, hot caches):")
            lines += [f"  {label:44} {us:7.2f} us" for label, us in enforce_parts(cookies)]
        engine, cache = inproc.ENGINES["signed_cookies"]
        with override_settings(SESSION_ENGINE=engine, MULTIFACTOR={**settings.MULTIFACTOR, "CACHE": cache}):
            cookies = libs.prepare(tag="diag-sc")
            calls = inproc.build_calls("ours", cookies)
            for call in calls.values():
                inproc.warm(call)
            options = variants()
            names = ["login_required", *options]
            wall = {n: [] for n in names}
            cpu = {n: [] for n in names}
            for _rep in range(args.reps):
                for rnd in range(args.rounds):
                    shift = rnd % len(names)
                    for name in names[shift:] + names[:shift]:
                        revocation.still_valid = options.get(name, options["as is"])
                        call = calls["login_required" if name == "login_required" else "protected"]
                        start_cpu, start = time.process_time_ns(), time.perf_counter_ns()
                        for _ in range(args.batch):
                            call()
                        wall[name].append((time.perf_counter_ns() - start) / args.batch / 1000)
                        cpu[name].append((time.process_time_ns() - start_cpu) / args.batch / 1000)
            revocation.still_valid = options["as is"]
        base, base_cpu = statistics.median(wall["login_required"]), statistics.median(cpu["login_required"])
        lines.append("")
        lines.append(
            "signed_cookies + Redis, protected view with each way of reading the revision (median of batches):"
        )
        for name in names:
            w, c = statistics.median(wall[name]), statistics.median(cpu[name])
            lines.append(f"  {name:22} {w:7.0f} us  {w / base:6.3f}x   CPU {c:7.0f} us  {c / base_cpu:6.3f}x")
    finally:
        inproc.cleanup_redis(settings.CACHES["shared"]["KEY_PREFIX"])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
