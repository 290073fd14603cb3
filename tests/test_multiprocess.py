"""Revocation across worker processes (CONTRACT decorator rule 4, SECURITY.md R9), for real: two server
processes (``python -m tests.serve``) share one database (a SQLite file, or a scratch PostgreSQL database
when DATABASE_URL is postgres://) and, for the cache-based engines, one Redis. A key disabled through
process A ends the verifications that process B sees, on B's very next request."""

import http.cookiejar
import os
import secrets
import selectors
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pyotp
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TIMEOUT = 15  # seconds, for any one step (a request, a server start)
REDIS_URL = os.environ.get("MULTIFACTOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ENGINES = {
    "db": ("django.contrib.sessions.backends.db", False),
    "cache+redis": ("django.contrib.sessions.backends.cache", True),
    "signed_cookies+redis": ("django.contrib.sessions.backends.signed_cookies", True),
}


# -- the shared database -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def database_env(tmp_path_factory):
    """Environment variables giving the server processes one shared, migrated-on-demand database."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield {"SQLITE_NAME": str(tmp_path_factory.mktemp("multiprocess") / "db.sqlite3")}
        return
    psycopg = pytest.importorskip("psycopg")
    parts = urllib.parse.urlparse(url)
    name = f"mf_multiprocess_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True, connect_timeout=TIMEOUT) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {"DATABASE_URL": urllib.parse.urlunparse(parts._replace(path="/" + name))}
    finally:
        with psycopg.connect(url, autocommit=True, connect_timeout=TIMEOUT) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_connection():
    redis = pytest.importorskip("redis")
    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        connection.ping()
    except redis.exceptions.ConnectionError:
        connection.close()
        if os.environ.get("MULTIFACTOR_TEST_REDIS_URL") or os.environ.get("CI"):
            raise
        pytest.skip(f"no Redis at {REDIS_URL}")
    return connection


def flush_prefix(connection, prefix):
    for key in connection.scan_iter(f"{prefix}:*"):
        connection.delete(key)


# -- the server processes ----------------------------------------------------------------------------------


def process_env(database_env, engine, redis_prefix):
    drop = ("DATABASE_URL", "SQLITE_NAME", "MF_REDIS_URL", "MF_REDIS_PREFIX")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    backend, uses_redis = ENGINES[engine]
    env.update(database_env)
    env["DJANGO_SETTINGS_MODULE"] = "tests.multiprocess_settings"
    env["MF_SESSION_ENGINE"] = backend
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if uses_redis:
        env["MF_REDIS_URL"] = REDIS_URL
        env["MF_REDIS_PREFIX"] = redis_prefix  # keys of their own: suites running at once do not meet
    return env


def run_setup(env, username, password, *seeds) -> list[int]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.serve", "setup", username, password, *seeds],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [int(line) for line in done.stdout.split()]


class Server:
    def __init__(self, env, log_path):
        self.log = open(log_path, "w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.port = self._read_port()

    def _read_port(self) -> int:
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=TIMEOUT):
                self.stop()
                raise AssertionError(f"server did not start in {TIMEOUT} s: {self.errors()}")
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise AssertionError(f"server failed: {line!r} {self.errors()}")
        return int(line)

    def errors(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process.stdout.close()
        self.log.close()


@pytest.fixture(params=list(ENGINES))
def servers(request, database_env, tmp_path):
    """(env, process A, process B) for one session engine."""
    engine = request.param
    redis = redis_connection() if ENGINES[engine][1] else None
    prefix = f"mftest-{secrets.token_hex(8)}"
    env = process_env(database_env, engine, prefix)
    started = []
    try:
        for name in ("a", "b"):
            started.append(Server(env, tmp_path / f"server-{name}.log"))
        yield engine, env, started[0], started[1]
    finally:
        for server in started:
            server.stop()
        if redis is not None:
            flush_prefix(redis, prefix)
            redis.close()


# -- a browser: a cookie jar shared across both processes --------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def cookie(self, name):
        return next((c.value for c in self.jar if c.name == name), None)

    def request(self, server, path, form=None):
        """GET (form None) or POST a form with the CSRF token; returns (status, Location, body)."""
        url = f"http://{HOST}:{server.port}{path}"
        data = None
        if form is not None:
            token = self.cookie("csrftoken")
            assert token, "no csrftoken cookie yet"
            data = urllib.parse.urlencode({**form, "csrfmiddlewaretoken": token}).encode()
        try:
            response = self.opener.open(urllib.request.Request(url, data=data), timeout=TIMEOUT)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            body = response.read()
            status = response.status if hasattr(response, "status") else response.code
            return status, response.headers.get("Location"), body

    def log_in(self, server, username, password):
        status, _, _ = self.request(server, "/accounts/login/")
        assert status == 200
        status, location, body = self.request(server, "/accounts/login/", {"username": username, "password": password})
        assert status == 302, body[:500]

    def verify(self, server, code):
        status, location, body = self.request(server, "/admin/multifactor/totp/auth/", {"answer": code})
        assert status == 302, body[:800]


AUTHENTICATE = "/admin/multifactor/authenticate/"


def test_disable_in_process_a_challenges_in_process_b(servers):
    engine, env, a, b = servers
    started = time.monotonic()
    seed_1, seed_2 = pyotp.random_base32(), pyotp.random_base32()
    username, password = f"user_{engine.replace('+', '_')}_{secrets.token_hex(3)}", "pw-" + secrets.token_hex(8)
    key_1, _key_2 = run_setup(env, username, password, seed_1, seed_2)
    totp = pyotp.TOTP(seed_1)

    # Browser 1 signs in and verifies through A; its cookies work on B.
    one = Browser()
    one.log_in(a, username, password)
    assert one.request(b, "/f1/")[1] == AUTHENTICATE
    one.verify(a, totp.now())
    assert one.request(b, "/f1/")[::2] == (200, b"ok")

    # Browser 2: its own session, signed in and verified through B (with the next step's code: the current
    # one was used by browser 1).
    two = Browser()
    two.log_in(b, username, password)
    two.verify(b, totp.at(time.time() + 30))
    assert two.request(b, "/f1/")[::2] == (200, b"ok")
    assert two.request(a, "/f1/")[::2] == (200, b"ok")

    # Browser 1 disables the key through A.
    status, location, _ = one.request(a, f"/admin/multifactor/toggle_factor:{key_1}/", {})
    assert (status, location) == (302, "/admin/multifactor/")

    # The very next request to B, from either browser, is challenged.
    status, location, _ = one.request(b, "/f1/")
    assert (status, location) == (302, AUTHENTICATE)
    status, location, _ = two.request(b, "/f1/")
    assert (status, location) == (302, AUTHENTICATE)
    assert two.request(a, "/f1/")[1] == AUTHENTICATE
    # Signed in still, through either process.
    assert two.request(b, "/plain/")[::2] == (200, b"plain")
    print(f"\nmulti-process {engine}: {time.monotonic() - started:.2f} s after the servers started")


def test_delete_in_process_b_ends_verification_seen_by_a(servers):
    engine, env, a, b = servers
    seed_1, seed_2 = pyotp.random_base32(), pyotp.random_base32()
    username, password = f"del_{engine.replace('+', '_')}_{secrets.token_hex(3)}", "pw-" + secrets.token_hex(8)
    key_1, _key_2 = run_setup(env, username, password, seed_1, seed_2)
    totp = pyotp.TOTP(seed_1)
    one, two = Browser(), Browser()
    one.log_in(a, username, password)
    one.verify(a, totp.now())
    two.log_in(b, username, password)
    two.verify(b, totp.at(time.time() + 30))
    assert one.request(a, "/f1/")[::2] == (200, b"ok")

    status, location, _ = two.request(b, f"/admin/multifactor/delete_factor:{key_1}/", {})
    assert (status, location) == (302, "/admin/multifactor/")
    assert one.request(a, "/f1/")[:2] == (302, AUTHENTICATE)
