"""Fixtures for the real-browser WebAuthn tests: Debian's Chromium driven by Playwright (sync API), with the
DevTools virtual authenticator, against a live server that sends a strict Content-Security-Policy.

Without a browser (no /usr/bin/chromium, or Playwright not installed) these tests are skipped on a laptop and
FAIL when ``CI=true``: CI must really run them (``scripts/ensure-chromium`` installs chromium there).
``MULTIFACTOR_CHROMIUM`` points to another Chromium binary. Never run ``playwright install``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("MULTIFACTOR_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000  # a ceremony takes well under a second; this only bounds a failure

# The RP ID must be "localhost" (127.0.0.1 is not a valid RP ID); FIDO_ORIGINS "http://localhost" allows any
# port, so the live server's random one works.
BROWSER_MULTIFACTOR = {
    "FIDO_SERVER_ID": "localhost",
    "FIDO_ORIGINS": ["http://localhost"],
    "PASSKEY_LOGIN": True,
}

# Every securitypolicyviolation event is logged to the console with this prefix (the listener is installed
# before any page script runs, on every page), so violations are caught across navigations.
CSP_MARK = "CSP-VIOLATION"
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP_MARK " + JSON.stringify({directive: e.violatedDirective, blocked: e.blockedURI,
    source: e.sourceFile, line: e.lineNumber, sample: e.sample, page: document.location.pathname}));
});
""".replace("CSP_MARK", CSP_MARK)


def unavailable(reason: str):
    """Skip on a developer's machine; fail in CI, which must run the browser tests."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must run the browser tests (see scripts/ensure-chromium)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def playwright_browser():
    """One headless Chromium per test module. Not for the whole session: while Playwright's sync API runs, its
    event loop sits in the main thread, where Django's async_to_sync (async views, the async test client)
    refuses to run, and DJANGO_ALLOW_ASYNC_UNSAFE must stay set."""
    if not Path(CHROMIUM).is_file():
        unavailable(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed")
    manager = sync_playwright().start()
    try:
        browser = manager.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
    except Exception as error:
        manager.stop()
        unavailable(f"Chromium at {CHROMIUM} does not start: {error}")
    # Playwright's sync API keeps an event loop in the main thread, where the tests also use the ORM.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield browser
    finally:
        browser.close()
        manager.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def live_server(django_db_setup, playwright_browser):
    """pytest-django's live server, started here (not shared with other modules) so that its middleware
    stack, loaded once when the server thread starts, includes :class:`tests.csp.StrictCSPMiddleware`."""
    from django.conf import settings
    from django.test.utils import override_settings
    from pytest_django.live_server_helper import LiveServer

    with override_settings(MIDDLEWARE=["tests.csp.StrictCSPMiddleware", *settings.MIDDLEWARE]):
        server = LiveServer("localhost")
        yield server
        server.stop()


@pytest.fixture(autouse=True)
def browser_settings(settings):
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, **BROWSER_MULTIFACTOR}


class PageLog:
    """What a page reported: CSP violations (events and console reports) and uncaught script errors."""

    def __init__(self):
        self.csp: list[str] = []
        self.errors: list[str] = []

    def on_console(self, message):
        text = message.text
        if text.startswith(CSP_MARK) or "Content Security Policy" in text:
            self.csp.append(text)

    def on_error(self, error):
        self.errors.append(str(error))

    def assert_clean(self):
        assert not self.csp, f"CSP violations: {self.csp}"
        assert not self.errors, f"script errors: {self.errors}"


@pytest.fixture
def page_log():
    return PageLog()


@pytest.fixture
def context(playwright_browser, live_server):
    context = playwright_browser.new_context(base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context, page_log):
    page = context.new_page()
    page.add_init_script(CSP_LISTENER)
    page.on("console", page_log.on_console)
    page.on("pageerror", page_log.on_error)
    yield page
    page_log.assert_clean()


class VirtualAuthenticator:
    """A DevTools virtual authenticator attached to one page (it survives navigations in that tab)."""

    DEFAULTS = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }

    def __init__(self, page, **options):
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})  # first: without it WebAuthn calls hang forever
        added = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {**self.DEFAULTS, **options}})
        self.id = added["authenticatorId"]

    def _send(self, method, **params):
        return self.cdp.send(f"WebAuthn.{method}", {"authenticatorId": self.id, **params})

    def credentials(self) -> list[dict]:
        return self._send("getCredentials")["credentials"]

    def remove_credentials(self):
        for credential in self.credentials():
            self._send("removeCredential", credentialId=credential["credentialId"])

    def presence(self, enabled: bool):
        """Whether the authenticator answers by itself (as if touched); when off, requests wait."""
        self._send("setAutomaticPresenceSimulation", enabled=enabled)

    def override(self, bogus_signature=False, bad_uv=False, bad_up=False):
        self._send("setResponseOverrideBits", isBogusSignature=bogus_signature, isBadUV=bad_uv, isBadUP=bad_up)


@pytest.fixture
def authenticator(page):
    """A CTAP2 platform-like authenticator with resident keys and user verification, answering by itself."""
    return VirtualAuthenticator(page)
