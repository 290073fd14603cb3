"""Soak (issue 6, reliability suite): gunicorn with two worker processes on loopback serves the test project
over one shared database (a SQLite file, or a scratch PostgreSQL or MariaDB database when DATABASE_URL is
postgres:// or mysql://), while simulated users, each a thread with its own cookie jar, sign in with the
password form, pass TOTP with real pyotp codes (each user has a key of their own), browse protected pages,
sign out, and now and then type a wrong code or replay a code already accepted.

Bounded: SOAK_SECONDS (default 10; 60 for a manual run), SOAK_USERS (default 8). Asserts: no 5xx and no
failed request, every wrong or replayed code refused, every right code accepted (each user's steps accepted
once, strictly increasing), and the audit trail complete: per user, key_used events = codes accepted and
verification_failed events = codes refused, and no other kind of event.

    SOAK_SECONDS=60 python -m pytest tests/test_soak.py -s
"""

import json
import os
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pyotp
import pytest

from tests.mfa_helpers import wrong_code
from tests.test_multiprocess import HOST, ROOT, TIMEOUT, Browser, database_env, process_env  # noqa: F401

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("SOAK_SECONDS", "10"))
USERS = int(os.environ.get("SOAK_USERS", "8"))
WORKERS = 2
WRONG_RATE = 0.3  # chance, per sign-in, of a wrong code before the right one
REPLAY_RATE = 0.2  # chance, per sign-in, of replaying the user's last accepted code first
STEP = 30
WINDOW = 1  # TOTP_WINDOW, the library's default
AUTHENTICATE = "/multifactor/authenticate/"
TOTP_AUTH = "/multifactor/totp/auth/"
PAGES = ("/f1/", "/cbv/", "/callable/", "/lambda/", "/plain/", "/multifactor/")
PROBE = "/done/"  # an open page the users never ask for: readiness checks, left out of the access counts
BODIES = {"/f1/": b"ok", "/cbv/": b"cbv ok", "/callable/": b"ok", "/lambda/": b"ok", "/plain/": b"plain"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Gunicorn:
    """``gunicorn --workers 2`` on a free loopback port; an access log of worker pid and status per request."""

    def __init__(self, env, tmp_path):
        self.port = free_port()
        self.access = tmp_path / "access.log"
        self.log_path = tmp_path / "gunicorn.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--bind", f"{HOST}:{self.port}"),
                *("--timeout", "60", "--graceful-timeout", "5"),
                *("--access-logfile", str(self.access), "--access-logformat", "%(p)s %(s)s %(m)s %(U)s"),
                "django.core.wsgi:get_wsgi_application()",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.monotonic() + TIMEOUT * 2
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited: {self.errors()}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}{PROBE}", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"gunicorn did not answer in {TIMEOUT * 2} s: {self.errors()}")

    def errors(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()[-5000:]

    def access_lines(self) -> list[list[str]]:
        if not self.access.exists():
            return []
        lines = [line.split() for line in self.access.read_text().splitlines() if line.strip()]
        return [line for line in lines if line[3:] != [PROBE]]  # the simulated users' requests

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()  # graceful: the arbiter stops its workers
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()


def manage(env, *args) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tests.serve", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


class SimulatedUser(threading.Thread):
    def __init__(self, server, username, password, seed, deadline):
        super().__init__(name=username, daemon=True)
        self.server, self.username, self.password, self.deadline = server, username, password, deadline
        self.totp = pyotp.TOTP(seed)
        self.accepted_steps: list[int] = []
        self.refused = 0  # wrong or replayed codes, all refused
        self.requests = 0
        self.problems: list[str] = []  # 5xx, failed requests, unexpected answers

    # -- one request, counted and checked ----------------------------------------------------------------

    def call(self, browser, path, form=None, expect=(200,), location=None, body=None):
        self.requests += 1
        try:
            status, where, content = browser.request(self.server, path, form)
        except Exception as error:  # a refused connection, a timeout: a failure of the soak
            self.problems.append(f"{path}: {type(error).__name__}: {error}")
            return None, None, b""
        if status >= 500 or status not in expect or (location is not None and where != location):
            self.problems.append(f"{'POST' if form is not None else 'GET'} {path}: {status} {where} {content[:200]!r}")
        elif body is not None and content != body:
            self.problems.append(f"GET {path}: body {content[:200]!r}")
        return status, where, content

    # -- codes ---------------------------------------------------------------------------------------------

    def next_step(self):
        """The step whose code to use now: the current one, or the next one (inside the window) when the
        current one was used already; None when both were."""
        now = int(time.time()) // STEP
        last = self.accepted_steps[-1] if self.accepted_steps else None
        step = now if last is None or last < now else last + 1
        return step if step <= now + WINDOW else None

    # -- the life of a user ----------------------------------------------------------------------------------

    def sign_in(self, step):
        browser = Browser()
        self.call(browser, "/accounts/login/")
        form = {"username": self.username, "password": self.password}
        self.call(browser, "/accounts/login/", form, expect=(302,))
        self.call(browser, "/f1/", expect=(302,), location=AUTHENTICATE)
        if self.accepted_steps and random.random() < REPLAY_RATE:
            replay = self.totp.at(self.accepted_steps[-1] * STEP)
            if replay != self.totp.at(step * STEP):
                self.call(browser, TOTP_AUTH, {"answer": replay}, expect=(400,))
                self.refused += 1
        if random.random() < WRONG_RATE:
            self.call(browser, TOTP_AUTH, {"answer": wrong_code(self.totp)}, expect=(400,))
            self.refused += 1
        status, where, _ = self.call(browser, TOTP_AUTH, {"answer": self.totp.at(step * STEP)}, expect=(302,))
        if status == 302 and where != AUTHENTICATE:
            self.accepted_steps.append(step)
        self.call(browser, "/f1/", body=b"ok")
        return browser

    def browse(self, browser, n):
        for _ in range(n):
            page = random.choice(PAGES)
            self.call(browser, page, body=BODIES.get(page))

    def run(self):
        browser = None
        try:
            while time.monotonic() < self.deadline and not self.problems:
                step = self.next_step()
                if step is None:  # both usable steps spent: browse the current session until a step frees up
                    if browser is None:
                        time.sleep(0.2)
                        continue
                    self.browse(browser, 1)
                    time.sleep(0.02)
                    continue
                if browser is not None:
                    self.call(browser, "/accounts/logout/", {}, expect=(200, 302))
                    self.call(browser, "/f1/", expect=(302,))  # signed out: to the login page
                browser = self.sign_in(step)
                self.browse(browser, random.randint(3, 8))
        except Exception as error:  # reported by the test; a thread must not die silently
            self.problems.append(f"{type(error).__name__}: {error}")


def test_soak(database_env, tmp_path):  # noqa: F811
    try:
        import gunicorn  # noqa: F401 (the server the soak runs against; in the "test" extra)
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("gunicorn is not installed (pip install gunicorn)")
    env = process_env(database_env, "db", "")
    password = "pw-" + secrets.token_hex(8)
    tag = secrets.token_hex(3)
    seeds = {f"soak{i}_{tag}": pyotp.random_base32() for i in range(USERS)}
    manage(env, "setup-users", password, *(f"{name}:{seed}" for name, seed in seeds.items()))

    server = Gunicorn(env, tmp_path)
    try:
        deadline = time.monotonic() + SECONDS
        users = [SimulatedUser(server, name, password, seed, deadline) for name, seed in seeds.items()]
        started = time.monotonic()
        for user in users:
            user.start()
        for user in users:
            user.join(timeout=SECONDS + 120)
        elapsed = time.monotonic() - started
        assert not any(user.is_alive() for user in users), "a simulated user hung"
    finally:
        server.stop()

    access = server.access_lines()
    statuses = [int(line[1]) for line in access]
    workers = {line[0] for line in access}
    requests = sum(user.requests for user in users)
    accepted = sum(len(user.accepted_steps) for user in users)
    refused = sum(user.refused for user in users)
    print(
        f"\nsoak: {USERS} users, {WORKERS} gunicorn workers ({len(workers)} served), {elapsed:.1f} s, "
        f"{requests} requests ({requests / elapsed:.0f}/s), {accepted} codes accepted, {refused} refused"
    )
    problems = [f"{user.username}: {p}" for user in users for p in user.problems]
    assert not problems, (problems[:10], server.errors())
    assert not [s for s in statuses if s >= 500], server.errors()
    assert len(access) == requests  # every request reached the server and was answered
    assert len(workers) == WORKERS, workers
    assert accepted >= USERS  # every user signed in and passed TOTP at least once
    for user in users:
        steps = user.accepted_steps
        assert steps == sorted(set(steps)), (user.username, steps)  # each step accepted once, in order

    # The audit trail: one key_used per accepted code, one verification_failed per refused code, nothing else.
    counts = json.loads(manage(env, "events"))
    for user in users:
        got = counts.get(user.username, {})
        want = {"key_used": len(user.accepted_steps), **({"verification_failed": user.refused} if user.refused else {})}
        assert got == want, (user.username, got, want)
    assert set(counts) <= set(seeds), counts
