"""What one verification costs with this library, end to end through its views (run in the ``ours`` venv).

Each sample is one POST through ``django.test.Client`` (CSRF checks off, the client's overhead included),
into the real view: the form or JSON parsing, the locked transaction of ``throttle.attempt``
(``select_for_update`` of the key row, the check, the success update), the session key cycle, the revocation
index (db sessions) or revision token (signed_cookies), the audit event and the redirect or JSON answer.

* TOTP: ``multifactor:totp_auth`` with the current code (the key's last accepted step is cleared between
  samples, outside the timing, so that each code is new to it).
* Recovery code: ``multifactor:recovery_auth`` with one unused code (a set is made through the JSON API,
  ``recovery-codes``, and made again when used up, outside the timing). Most of its time is the PBKDF2 of the
  code, on purpose (NIST SP 800-63B: salted, cost-hardened look-up secrets).
* WebAuthn: the JSON API's ``webauthn/authenticate/complete`` with an assertion from the software
  authenticator of ``tests/softauthn.py`` (ES256); ``webauthn/authenticate/begin`` is timed separately.

Times are medians over the samples; SQL statements are counted on extra samples with
``CaptureQueriesContext`` (so the timed ones carry no debug cursor).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
os.environ["BENCH_LIB"] = "ours"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
API = "/admin/multifactor/api/v1/"


def softauthn():
    """The test suite's software authenticator, if this tree has it."""
    if ROOT not in sys.path:
        sys.path.append(ROOT)
    try:
        from tests.softauthn import SoftAuthenticator
    except ImportError:
        return None
    return SoftAuthenticator


def measure(fn, samples: int, counted: int = 3) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    for _ in range(samples):
        prepare = fn()  # fn returns the timed callable, having done its untimed preparation
        start = time.perf_counter()
        prepare()
        times.append((time.perf_counter() - start) * 1000.0)
    counts, sql = [], []
    for _ in range(counted):
        prepare = fn()
        with CaptureQueriesContext(connection) as captured:
            prepare()
        counts.append(len(captured.captured_queries))
        sql = [q["sql"][:160] for q in captured.captured_queries]
    return {
        "ms": {"median": statistics.median(times), "min": min(times), "max": max(times)},
        "samples": samples,
        "queries": max(counts),
        "queries_min": min(counts),
        "sql": sql,
    }


def expect(response, status):
    if response.status_code != status:
        raise RuntimeError(f"expected {status}, got {response.status_code}: {response.content[:300]!r}")
    return response


def post_json(client, url, body=None):
    return client.post(
        url, json.dumps(body or {}), content_type="application/json", headers={"Accept": "application/json"}
    )


def run_engine(engine: str, samples: int) -> dict:
    import libs
    from django.test import Client, override_settings
    from inproc import ENGINES

    out = {}
    with override_settings(SESSION_ENGINE=ENGINES[engine]):
        user = libs.make_user(f"verifier-{engine}")
        code_now = libs.add_totp_key(user)
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)

        def totp():
            libs.allow_reuse(user)
            data = {"answer": code_now()}
            return lambda: expect(client.post("/admin/multifactor/totp/auth/", data), 302)

        out["totp"] = measure(totp, samples)

        codes = []

        def recovery():
            if not codes:
                response = expect(post_json(client, API + "recovery-codes"), 201)
                codes.extend(json.loads(response.content)["data"]["codes"])
            data = {"code": codes.pop()}
            return lambda: expect(client.post("/admin/multifactor/recovery/auth/", data), 302)

        out["recovery"] = measure(recovery, max(5, samples // 2))

        SoftAuthenticator = softauthn()
        if SoftAuthenticator is None:
            out["webauthn"] = {"skipped": "tests/softauthn.py is not in this tree"}
            return out
        auth = SoftAuthenticator(rp_id="localhost", origin="http://localhost")
        options = json.loads(expect(post_json(client, API + "webauthn/register/begin"), 200).content)["data"]
        body = {"name": "bench key", "credential": auth.create(options)}
        expect(post_json(client, API + "webauthn/register/complete", body), 201)

        def webauthn():
            begin = json.loads(expect(post_json(client, API + "webauthn/authenticate/begin"), 200).content)["data"]
            body = {"credential": auth.get(begin)}
            return lambda: expect(post_json(client, API + "webauthn/authenticate/complete", body), 200)

        def webauthn_begin():
            return lambda: expect(post_json(client, API + "webauthn/authenticate/begin"), 200)

        out["webauthn"] = measure(webauthn, samples)
        out["webauthn_begin"] = measure(webauthn_begin, samples)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--out")
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--engines", default="db,signed_cookies")
    args = parser.parse_args(argv)

    import inproc

    inproc.setup(args.db)

    result = {"method": "django.test.Client POST through the view", "engines": {}}
    for engine in args.engines.split(","):
        started = time.time()
        result["engines"][engine] = run_engine(engine, args.samples)
        print(f"[verify] {engine}: {time.time() - started:.0f} s", file=sys.stderr)
    text = json.dumps(result, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
