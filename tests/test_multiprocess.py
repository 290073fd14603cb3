"""Revocation across worker processes (CONTRACT decorator rule 4, SECURITY.md R9), for real: two server
processes (``python -m tests.serve``) share one database (a SQLite file, or a scratch PostgreSQL or MariaDB
database when DATABASE_URL is postgres:// or mysql://) and, for the cache-based engines, one Redis. A key
disabled through process A ends the verifications that process B sees, on B's very next request; a throttle
or lock reached through A holds in B."""

import contextlib
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

from tests.mfa_helpers import REDIS_URL, flush_prefix, redis_connection, wrong_code

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TIMEOUT = 15  # seconds, for any one step (a request, a server start)
ENGINES = {  # session engine, shared cache for the cache session engine (None: locmem, each process its own)
    "db": ("django.contrib.sessions.backends.db", None),
    "cached_db": ("django.contrib.sessions.backends.cached_db", None),
    "cache+redis": ("django.contrib.sessions.backends.cache", "redis"),
    "signed_cookies": ("django.contrib.sessions.backends.signed_cookies", None),  # the default local cache
}


# -- the shared database -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def database_env(tmp_path_factory):
    """Environment variables giving the server processes one shared, migrated-on-demand database."""
    url = os.environ.get("DATABASE_URL", "")
    name = f"mf_multiprocess_{os.getpid()}_{secrets.token_hex(4)}"
    parts = urllib.parse.urlparse(url)
    if url.startswith(("mysql", "mariadb")):
        yield from _mysql_database(parts, name)
        return
    if not url.startswith("postgres"):
        yield {"SQLITE_NAME": str(tmp_path_factory.mktemp("multiprocess") / "db.sqlite3")}
        return
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(url, autocommit=True, connect_timeout=TIMEOUT) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {"DATABASE_URL": urllib.parse.urlunparse(parts._replace(path="/" + name))}
    finally:
        with psycopg.connect(url, autocommit=True, connect_timeout=TIMEOUT) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _mysql_database(parts, name):
    pymysql = pytest.importorskip("pymysql")

    def execute(sql):
        conn = pymysql.connect(
            host=parts.hostname,
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            connect_timeout=TIMEOUT,
        )
        try:
            conn.cursor().execute(sql)
        finally:
            conn.close()

    execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield {"DATABASE_URL": urllib.parse.urlunparse(parts._replace(path="/" + name))}
    finally:
        execute(f"DROP DATABASE IF EXISTS `{name}`")


# -- the server processes ----------------------------------------------------------------------------------


def process_env(database_env, engine, redis_prefix, save_every_request=False):
    drop = ("DATABASE_URL", "SQLITE_NAME", "MF_REDIS_URL", "MF_REDIS_PREFIX", "MF_SAVE_EVERY_REQUEST", "MF_MULTIFACTOR")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    backend, shared = ENGINES[engine]
    env.update(database_env)
    env["DJANGO_SETTINGS_MODULE"] = "tests.multiprocess_settings"
    env["MF_SESSION_ENGINE"] = backend
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if save_every_request:
        env["MF_SAVE_EVERY_REQUEST"] = "1"
    if shared == "redis":
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


@contextlib.contextmanager
def two_servers(database_env, log_dir, engine, save_every_request=False):
    """(env, process A, process B) for one session engine; stopped, and their Redis keys removed, after."""
    redis = redis_connection() if ENGINES[engine][1] == "redis" else None
    prefix = f"mftest-{secrets.token_hex(8)}"
    env = process_env(database_env, engine, prefix, save_every_request=save_every_request)
    started = []
    try:
        for name in ("a", "b"):
            started.append(Server(env, log_dir / f"server-{name}.log"))
        yield env, started[0], started[1]
    finally:
        for server in started:
            server.stop()
        if redis is not None:
            flush_prefix(redis, prefix)
            redis.close()


@pytest.fixture(params=list(ENGINES))
def servers(request, database_env, tmp_path):
    """(engine, env, process A, process B)."""
    with two_servers(database_env, tmp_path, request.param) as (env, a, b):
        yield request.param, env, a, b


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
        status, location, body = self.request(server, "/multifactor/totp/auth/", {"answer": code})
        assert status == 302, body[:800]


AUTHENTICATE = "/multifactor/authenticate/"


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
    status, location, _ = one.request(a, f"/multifactor/toggle_factor:{key_1}/", {})
    assert (status, location) == (302, "/multifactor/")

    # The very next request to B, from either browser, is challenged.
    status, location, _ = one.request(b, "/f1/")
    assert (status, location) == (302, AUTHENTICATE)
    status, location, _ = two.request(b, "/f1/")
    assert (status, location) == (302, AUTHENTICATE)
    assert two.request(a, "/f1/")[1] == AUTHENTICATE
    # Signed in still, through either process.
    assert two.request(b, "/plain/")[::2] == (200, b"plain")
    print(f"\nmulti-process {engine}: {time.monotonic() - started:.2f} s after the servers started")


def verified_pair(env, a, b, prefix):
    """A user with two TOTP keys; a browser verified with the first through A, another through B.
    (id of the first key, browser A, browser B)."""
    seed_1, seed_2 = pyotp.random_base32(), pyotp.random_base32()
    username, password = f"{prefix}_{secrets.token_hex(4)}", "pw-" + secrets.token_hex(8)
    key_1, _key_2 = run_setup(env, username, password, seed_1, seed_2)
    totp = pyotp.TOTP(seed_1)
    one, two = Browser(), Browser()
    one.log_in(a, username, password)
    one.verify(a, totp.now())
    two.log_in(b, username, password)
    two.verify(b, totp.at(time.time() + 30))
    return key_1, one, two


def test_delete_in_process_b_ends_verification_seen_by_a(servers):
    engine, env, a, b = servers
    key_1, one, two = verified_pair(env, a, b, f"del_{engine.replace('+', '_')}")
    assert one.request(a, "/f1/")[::2] == (200, b"ok")

    status, location, _ = two.request(b, f"/multifactor/delete_factor:{key_1}/", {})
    assert (status, location) == (302, "/multifactor/")
    assert one.request(a, "/f1/")[:2] == (302, AUTHENTICATE)


# -- a throttle or lock reached through one process holds in the other (SECURITY.md R4) --------------------

TOTP_AUTH = "/multifactor/totp/auth/"
THROTTLE_SMALL = {  # two free failures, then a long delay; never locked
    "THROTTLE_FREE_FAILURES": 2,
    "THROTTLE_BASE_DELAY": 300,
    "THROTTLE_MAX_DELAY": 300,
    "THROTTLE_MAX_FAILURES": 50,
}
LOCK_SMALL = {  # locked at the third failure, before any delay
    "THROTTLE_FREE_FAILURES": 10,
    "THROTTLE_BASE_DELAY": 1,
    "THROTTLE_MAX_DELAY": 1,
    "THROTTLE_MAX_FAILURES": 3,
}


@pytest.fixture
def throttle_servers(database_env, tmp_path):
    """A factory: (env, process A, process B) whose MULTIFACTOR settings include ``overrides`` (passed to the
    servers as JSON in MF_MULTIFACTOR). Database sessions; the throttle state lives in the key's row."""
    import json

    started = []

    def start(overrides):
        env = process_env(database_env, "db", "")
        env["MF_MULTIFACTOR"] = json.dumps(overrides)
        pair = [Server(env, tmp_path / f"throttle-{name}-{len(started)}.log") for name in ("a", "b")]
        started.extend(pair)
        return env, pair[0], pair[1]

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def signed_in_pair(env, a, b, prefix):
    """A user with one TOTP key; one browser signed in through A, another through B. (browser A, browser B,
    pyotp.TOTP)."""
    seed = pyotp.random_base32()
    username, password = f"{prefix}_{secrets.token_hex(3)}", "pw-" + secrets.token_hex(8)
    run_setup(env, username, password, seed)
    one, two = Browser(), Browser()
    one.log_in(a, username, password)
    two.log_in(b, username, password)
    return one, two, pyotp.TOTP(seed)


def test_throttle_reached_through_a_holds_in_b(throttle_servers):
    env, a, b = throttle_servers(THROTTLE_SMALL)
    one, two, totp = signed_in_pair(env, a, b, "throttle")
    # Two free failures, then the third starts a 300 s delay: all refused as wrong codes, through A.
    for _ in range(3):
        status, _, body = one.request(a, TOTP_AUTH, {"answer": wrong_code(totp)})
        assert status == 400, body[:500]
    status, _, _ = one.request(a, TOTP_AUTH, {"answer": wrong_code(totp)})
    assert status == 429  # throttled now, in A
    # Through B, another browser (its own session) with the right code: refused, not even checked.
    status, _, body = two.request(b, TOTP_AUTH, {"answer": totp.now()})
    assert status == 429, body[:500]
    assert b"Too many wrong answers" in body
    assert two.request(b, "/f1/")[:2] == (302, AUTHENTICATE)
    # The same browser as A's, through B: refused too.
    status, _, _ = one.request(b, TOTP_AUTH, {"answer": totp.now()})
    assert status == 429
    assert one.request(b, "/f1/")[:2] == (302, AUTHENTICATE)


def test_lock_reached_through_a_holds_in_b(throttle_servers):
    env, a, b = throttle_servers(LOCK_SMALL)
    one, two, totp = signed_in_pair(env, a, b, "lock")
    for _ in range(3):  # the third failure locks the key
        status, _, body = one.request(a, TOTP_AUTH, {"answer": wrong_code(totp)})
        assert status == 400, body[:500]
    # The right code through B is refused: the key is locked (disabled) in the shared database.
    status, location, body = two.request(b, TOTP_AUTH, {"answer": totp.now()})
    assert status != 302 and status in (400, 403, 429), (status, location, body[:500])
    assert two.request(b, "/f1/")[:2] == (302, AUTHENTICATE)
    # The next step's code, through A, is refused as well: locked is not throttled, it does not wear off.
    status, _, _ = one.request(a, TOTP_AUTH, {"answer": totp.at(time.time() + 30)})
    assert status != 302
    assert one.request(a, "/f1/")[:2] == (302, AUTHENTICATE)


# -- a request in flight during a revocation cannot write the verification back (SECURITY.md R16) -----------


@pytest.fixture(
    params=[(e, every) for e in ("db", "cache+redis", "signed_cookies") for every in (False, True)],
    ids=lambda p: f"{p[0]}-{'save_every_request' if p[1] else 'write_in_view'}",
)
def inflight_servers(request, database_env, tmp_path):
    engine, save_every = request.param
    with two_servers(database_env, tmp_path, engine, save_every_request=save_every) as (env, a, b):
        yield engine, save_every, env, a, b


def wait_for(path, what):
    deadline = time.monotonic() + TIMEOUT
    while not path.exists():
        assert time.monotonic() < deadline, f"{what} did not happen in {TIMEOUT} s"
        time.sleep(0.02)


def test_a_request_in_flight_in_a_during_a_revocation_in_b_does_not_undo_it(inflight_servers, tmp_path):
    """The reproduction of the revocation issue: worker A serves a session-writing request of alice's session
    that loaded the session before her key was disabled through worker B, and saves it afterwards. Every
    later request, on either worker, is challenged."""
    import threading

    engine, save_every, env, a, b = inflight_servers
    key_1, victim, owner = verified_pair(env, a, b, "flight")
    assert victim.request(b, "/f1/")[::2] == (200, b"ok")

    gate = tmp_path / "gate"
    gate.mkdir()
    landed = {}
    path = f"/in-flight/?gate={urllib.parse.quote(str(gate))}&write={0 if save_every else 1}"
    flight = threading.Thread(target=lambda: landed.update(answer=victim.request(a, path)))
    flight.start()
    try:
        wait_for(gate / "started", "the request in flight")
        status, location, _ = owner.request(b, f"/multifactor/toggle_factor:{key_1}/", {})
        assert (status, location) == (302, "/multifactor/")
        assert victim.request(b, "/f1/")[:2] == (302, AUTHENTICATE)  # seen at once, while A is still busy
    finally:
        (gate / "go").touch()
        flight.join(TIMEOUT)
    assert landed["answer"][::2] == (200, b"landed")  # it saved the session it loaded before the revocation

    for server in (a, b, a, b):
        assert victim.request(server, "/f1/")[:2] == (302, AUTHENTICATE)
    assert victim.request(a, "/plain/")[::2] == (200, b"plain")  # still signed in
