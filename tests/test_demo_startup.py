"""``make demo`` (issue 14, item 8): it uses the port it is given (``PORT=8011 make demo``), migrates quietly,
and its last lines are the URL to open and the credentials, after Django's banner. The demo site runs for
real (its own settings, a throw-away database), in subprocesses."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example" / "manage.py"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture
def demo_env(tmp_path):
    env = {**os.environ, "DEMO_DATABASE": str(tmp_path / "demo.sqlite3"), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the demo's own settings, not the suite's
    return env


def manage(env, *args):
    return subprocess.run(
        [sys.executable, str(MANAGE), *args], env=env, capture_output=True, text=True, timeout=120, check=True
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_passes_the_port_everywhere():
    out = subprocess.run(
        ["make", "-n", "-W", ".venv/.installed", "demo", "PORT=8011"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PORT": "8011"},
    ).stdout
    commands = [line for line in out.splitlines() if "example/manage.py" in line]
    assert [c.split("example/manage.py ", 1)[1] for c in commands] == [
        "migrate --noinput --skip-checks -v0",
        "seed_demo --skip-checks --port 8011",
        "runserver localhost:8011",
    ]
    assert "8000" not in "\n".join(commands)


def test_demo_start_ends_with_the_url_and_the_credentials(demo_env):
    assert manage(demo_env, "migrate", "--noinput", "--skip-checks", "-v0").stdout == ""  # quiet
    port = free_port()
    seeded = manage(demo_env, "seed_demo", "--skip-checks", "--port", str(port)).stdout.splitlines()
    assert seeded[-3:] == [
        f"Open      http://localhost:{port}/   (localhost, not 127.0.0.1: WebAuthn needs it)",
        "Username  demo",
        "Password  demo-password-123",
    ]
    server = subprocess.Popen(
        [sys.executable, str(MANAGE), "runserver", "--noreload", f"localhost:{port}"],
        env={**demo_env, "DJANGO_RUNSERVER_HIDE_WARNING": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("  Password"):
                break
        shown = [line.strip() for line in lines if line.strip()]
        assert shown[-4:] == [
            "Multifactor demo",
            f"Open      http://localhost:{port}/   (localhost, not 127.0.0.1: WebAuthn needs it)",
            "Username  demo",
            "Password  demo-password-123",
        ], "\n".join(lines)
        # Django's banner: "Starting development server at ..." (5.2), "Starting WSGI development server ..." (6.1)
        assert any(f"development server at http://localhost:{port}/" in line for line in lines)
        assert not [line for line in lines if "8000" in line]
        with urllib.request.urlopen(f"http://localhost:{port}/", timeout=20) as page:
            html = page.read().decode()
        assert page.status == 200 and f"http://localhost:{port}" in html and "localhost:8000" not in html
    finally:
        server.terminate()
        server.wait(timeout=20)
