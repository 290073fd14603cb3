"""WebAuthn through the real pages in a real browser: headless Chromium, the DevTools virtual authenticator, the
page script (static/multifactor/webauthn.js) and a live server that sends a strict Content-Security-Policy.

Every page these tests open is checked for CSP violations and uncaught script errors (the ``page`` fixture),
so each ceremony below also proves that the page script works under ``script-src 'self'``.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urljoin

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the playwright_browser fixture skips these tests, or fails them in CI
    expect = None

from multifactor.models import Key
from tests.conftest import make_totp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MF = "/multifactor/"
PASSWORD = "pw-alice-123"  # tests/conftest.py's ``user`` fixture: alice
SPY = "mf-credentials-get:"
CANCELLED = "The request was cancelled or timed out. Try again."


def url(path: str):
    """A matcher for page.wait_for_url / expect(...).to_have_url: this exact path (any query)."""
    return re.compile(r"^http://localhost:\d+" + re.escape(path) + r"(\?.*)?$")


def log_in(page, username="alice", password=PASSWORD, next_url=None):
    page.goto("/accounts/login/" + (f"?next={next_url}" if next_url else ""))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(url(next_url or "/done/"))


def log_out(page):
    """POST to Django's LogoutView with the CSRF cookie, from the page's own cookie jar."""
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(urljoin(page.url, "/accounts/logout/"), headers={"X-CSRFToken": token})
    assert response.ok, response.status
    assert not any(c["name"] == "sessionid" for c in page.context.cookies())


def enrol(page, name="Blue key", passkey=False, done=MF + "recovery/"):
    """Add a key on the enrolment page by pressing its button (a signed-in user with no key, or verified)."""
    page.goto(MF + "fido2/new/")
    page.fill("#key-name", name)
    if passkey:
        page.check("#key-passkey")
    page.get_by_role("button", name="Add a key").click()
    page.wait_for_url(url(done))


def status(page):
    return page.locator("[data-mf-status]")


def expect_error(page, text):
    box = status(page)
    expect(box).to_be_visible()
    expect(box).to_have_class(re.compile(r"\bmf-error\b"))
    expect(box).to_contain_text(text)


def expect_challenged(page, path="/f1/"):
    """``path`` is protected and not passed: the browser is sent to verify (one FIDO2 key: straight to it)."""
    page.goto(path)
    expect(page).to_have_url(url(MF + "fido2/auth/"))


def open_passkey_page(page, authenticator, next_url="") -> list[str]:
    """Open the passkey page so that its button, not autofill, answers; returns the page's get() calls so far.

    Under the virtual environment (``WebAuthn.enable`` without UI) Chromium sends a conditional request straight
    to the authenticator, which would answer it on page load. So the authenticator stops answering while the
    page loads: the page's conditional request stays pending, as it does in a real browser until the user picks
    a passkey, and a press of the button has to abort it and start its own request.
    """
    calls = spy_on_credentials_get(page)
    authenticator.presence(False)
    page.goto(MF + "passkey/" + (f"?next={next_url}" if next_url else ""))
    for _ in range(200):  # the page script asked for a passkey with autofill (after a fetch of the options)
        if calls:
            break
        page.wait_for_timeout(25)
    assert calls == ["conditional"], calls
    page.wait_for_timeout(200)  # the request reaches the (not answering) authenticator
    authenticator.presence(True)
    return calls


def spy_on_credentials_get(page) -> list[str]:
    """Record the ``mediation`` of every navigator.credentials.get() the page makes, across navigations."""
    calls = []

    def on_console(message):
        if message.text.startswith(SPY):
            calls.append(message.text[len(SPY) :])

    page.on("console", on_console)
    page.add_init_script(
        "(() => { const get = navigator.credentials.get.bind(navigator.credentials);"
        " navigator.credentials.get = (options) => {"
        f" console.log('{SPY}' + (options.mediation || 'optional')); return get(options); }}; }})();"
    )
    return calls


def screenshot(page, name):
    """MULTIFACTOR_SCREENSHOTS=<dir> saves the pages the tests see, to look at them."""
    folder = os.environ.get("MULTIFACTOR_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


# -- security key as a second factor ---------------------------------------------------------------------


def test_enrol_a_security_key(page, authenticator, user):
    log_in(page)
    page.goto(MF + "fido2/new/")
    expect(page.get_by_role("heading", name="Add a security key or passkey")).to_be_visible()
    expect(status(page)).to_be_hidden()
    screenshot(page, "enrol")
    assert page.evaluate("typeof PublicKeyCredential.parseCreationOptionsFromJSON") == "function"

    page.fill("#key-name", "Blue key")
    page.get_by_role("button", name="Add a key").click()
    page.wait_for_url(url(MF + "recovery/"))  # a first key: save recovery codes next

    key = Key.objects.get(user=user)
    assert (key.type, key.name, key.confirmed, key.enabled) == ("FIDO2", "Blue key", True, True)
    assert key.rp_id == "localhost" and not key.discoverable and key.uv_seen
    [credential] = authenticator.credentials()
    assert credential["rpId"] == "localhost" and not credential["isResidentCredential"]

    page.goto(MF)
    row = page.locator(".mf-key", has_text="Blue key")
    expect(row).to_contain_text("enabled")
    expect(row).to_contain_text("verified now")  # enrolling counts as verifying with the key
    screenshot(page, "home")


def test_second_factor_with_the_key(page, authenticator, user):
    log_in(page)
    enrol(page)
    log_out(page)

    log_in(page)
    expect_challenged(page)
    assert page.evaluate("typeof PublicKeyCredential.parseRequestOptionsFromJSON") == "function"
    expect(status(page)).to_be_hidden()
    page.get_by_role("button", name="Use security key").click()
    page.wait_for_url(url("/f1/"))
    expect(page.locator("body")).to_have_text("ok")

    key = Key.objects.get(user=user)
    assert key.sign_count == authenticator.credentials()[0]["signCount"] >= 2
    assert key.last_used_at is not None


def test_without_the_webauthn_json_helpers(page, authenticator, user):
    """Browsers without parseCreationOptionsFromJSON / parseRequestOptionsFromJSON / toJSON() (older Firefox and
    Safari) get the page script's own base64url encoding: enrol and verify with it."""
    page.add_init_script(
        "delete PublicKeyCredential.parseCreationOptionsFromJSON;"
        " delete PublicKeyCredential.parseRequestOptionsFromJSON;"
        " delete PublicKeyCredential.prototype.toJSON;"
    )
    log_in(page)
    enrol(page)
    assert page.evaluate("typeof PublicKeyCredential.prototype.toJSON") == "undefined"
    log_out(page)
    log_in(page)
    expect_challenged(page)
    page.get_by_role("button", name="Use security key").click()
    page.wait_for_url(url("/f1/"))
    assert Key.objects.get(user=user).transports == ["internal"]


def test_remove_the_key(page, authenticator, user):
    log_in(page)
    enrol(page)
    page.goto(MF)
    row = page.locator(".mf-key", has_text="Blue key")
    row.locator("summary").click()  # the row's menu
    row.get_by_role("link", name="Delete…").click()
    expect(page.get_by_text("It is your last key")).to_be_visible()  # it asks first, and says what happens
    page.get_by_role("button", name="Delete it").click()
    page.wait_for_url(url(MF))
    expect(page.get_by_role("status")).to_contain_text("Blue key (Security key or passkey) has been deleted.")
    expect(page.get_by_text("You have no security keys yet.")).to_be_visible()
    assert not Key.objects.filter(user=user).exists()

    # No key left: factors=1 cannot be met by verifying, so /f1/ sends the user to enrol, not to verify.
    page.goto("/f1/")
    expect(page).to_have_url(url(MF + "add/"))
    expect(page.get_by_role("status")).to_contain_text("This page requires 1 verified security factor.")


# -- passkeys --------------------------------------------------------------------------------------------


def test_passkey_sign_in_with_the_button(page, authenticator, user):
    log_in(page)
    enrol(page, "Laptop", passkey=True)
    key = Key.objects.get(user=user)
    assert key.discoverable and key.uv_seen
    assert authenticator.credentials()[0]["isResidentCredential"]
    log_out(page)

    calls = open_passkey_page(page, authenticator, next_url="/f1/")
    screenshot(page, "passkey")
    expect(status(page)).to_be_hidden()
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(url("/f1/"))  # signed in, and the passkey (with UV) counts as a verified factor
    assert calls == ["conditional", "optional"]  # the button aborted the autofill request and made its own
    expect(page.locator("body")).to_have_text("ok")
    page.goto(MF)
    expect(page.locator(".mf-key", has_text="Laptop")).to_contain_text("verified now")


def test_passkey_sign_in_by_autofill(page, authenticator, user):
    """Conditional mediation: the page asks for a passkey on load with ``mediation: "conditional"`` (no button
    press), and the authenticator's answer signs the user in.

    What this cannot show is the user picking the passkey from the username field's autofill list: that list is
    browser UI, not page content. With ``WebAuthn.enable(enableUI=false)`` (needed for automatic answers)
    Chromium has no UI to hold the request back, so it dispatches the conditional request to the virtual
    authenticator at once (ChromeAuthenticatorRequestDelegate::EmbedderControlsAuthenticatorDispatch returns
    false when the WebAuthn UI is disabled); with ``enableUI=true`` the request correctly waits, but focusing or
    clicking the field and pressing ArrowDown, Enter selects nothing in headless Chromium 156.
    """
    log_in(page)
    enrol(page, "Phone", passkey=True)
    log_out(page)

    calls = spy_on_credentials_get(page)
    page.goto(MF + "passkey/")
    page.wait_for_url(url("/done/"))  # LOGIN_REDIRECT_URL: no button was pressed
    assert calls == ["conditional"]
    page.goto("/f1/")
    expect(page.locator("body")).to_have_text("ok")


# -- failures shown in the page --------------------------------------------------------------------------


def test_the_same_key_cannot_be_added_twice(page, authenticator, user):
    log_in(page)
    enrol(page)
    page.goto(MF + "fido2/new/")
    page.get_by_role("button", name="Add a key").click()  # excludeCredentials names the key's credential
    expect_error(page, "This key is already registered.")
    assert Key.objects.filter(user=user).count() == 1 and len(authenticator.credentials()) == 1


@pytest.mark.parametrize("fault", ["bogus_signature", "bad_up"])
def test_bad_assertion_is_refused(page, authenticator, user, fault):
    log_in(page)
    enrol(page)
    log_out(page)
    log_in(page)
    expect_challenged(page)

    authenticator.override(**{fault: True})
    page.get_by_role("button", name="Use security key").click()
    expect_error(page, "The key's answer could not be verified.")
    screenshot(page, f"auth-error-{fault}")
    expect(page).to_have_url(url(MF + "fido2/auth/"))
    expect(page.get_by_role("button", name="Use security key")).to_be_enabled()  # the user may try again
    expect_challenged(page)  # still not verified

    authenticator.override()
    page.get_by_role("button", name="Use security key").click()
    page.wait_for_url(url("/f1/"))


@pytest.mark.parametrize("fault", ["bogus_signature", "bad_uv"])
def test_bad_passkey_assertion_does_not_sign_in(page, authenticator, user, fault):
    log_in(page)
    enrol(page, passkey=True)
    log_out(page)

    open_passkey_page(page, authenticator)
    authenticator.override(**{fault: True})  # bad_uv: UV is required for a passkey sign-in
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect_error(page, "Sign-in with this passkey failed.")
    page.goto("/f1/")
    expect(page).to_have_url(url("/accounts/login/"))  # not signed in


def test_removed_credential_shows_an_error(page, authenticator, user):
    log_in(page)
    enrol(page)
    log_out(page)
    log_in(page)
    expect_challenged(page)

    authenticator.remove_credentials()  # the key no longer holds the credential the server asks for
    page.get_by_role("button", name="Use security key").click()
    expect_error(page, CANCELLED)
    expect_challenged(page)


def test_a_passkey_deleted_here_but_still_on_the_device_says_what_to_do(page, authenticator, user):
    log_in(page)
    enrol(page, passkey=True)
    log_out(page)
    Key.objects.filter(user=user).delete()  # deleted on the keys page (or by an admin); the device keeps it

    open_passkey_page(page, authenticator)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect_error(page, "Sign-in with this passkey failed.")
    expect(status(page)).to_contain_text("no longer registered here: remove it from your device")
    page.goto("/f1/")
    expect(page).to_have_url(url("/accounts/login/"))


def test_removed_passkey_shows_an_error(page, authenticator, user):
    log_in(page)
    enrol(page, passkey=True)
    log_out(page)

    authenticator.remove_credentials()
    open_passkey_page(page, authenticator)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect_error(page, CANCELLED)
    page.goto("/f1/")
    expect(page).to_have_url(url("/accounts/login/"))


# -- every page under a strict Content-Security-Policy ---------------------------------------------------

PAGES = [
    "",
    "add/",
    "help/",
    "authenticate/?choose=1",
    "fido2/new/",
    "fido2/auth/",
    "passkey/",
    "totp/new/",
    "totp/auth/",
    "recovery/",
    "recovery/auth/",
    "fallback/auth/",
]


def test_every_page_loads_under_a_strict_csp(page, page_log, authenticator, user, settings):
    from tests.csp import POLICY
    from tests.transports import phone

    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "FALLBACKS": {"sms": (phone, "tests.transports.record")}}
    seen = {}
    log_in(page)
    enrol(page)  # a verified user with a key: every page shows its full form
    make_totp(user)
    page.goto(MF + "recovery/")
    page.get_by_role("button", name="Make a new set").click()  # the codes page, shown once
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    for path in PAGES:
        response = page.goto(MF + path)  # waits for "load": the deferred page script has run
        seen[path] = (response.status, response.headers.get("content-security-policy"), page.url)
        # passkey/ starts an autofill request on load. The live server's threads share one in-memory SQLite
        # connection, so that request must end before the next page's (a real server has one per thread).
        page.wait_for_load_state("networkidle")
    log_out(page)
    page.goto(MF + "passkey/")
    page.wait_for_load_state("networkidle")  # its conditional request went out (and was answered: no passkey)

    assert {path: policy for path, (_code, policy, _url) in seen.items() if policy != POLICY} == {}
    wrong = {
        path: (code, at) for path, (code, _policy, at) in seen.items() if code != 200 or not at.endswith(MF + path)
    }
    assert wrong == {}
    page_log.assert_clean()
    # The listener that reports violations does run under this policy.
    page.evaluate(
        "document.dispatchEvent(new SecurityPolicyViolationEvent('securitypolicyviolation',"
        " {violatedDirective: 'probe', effectiveDirective: 'probe', originalPolicy: '',"
        " disposition: 'enforce', statusCode: 200}))"
    )
    page.wait_for_timeout(100)
    assert page_log.csp and "probe" in page_log.csp[0]
    page_log.csp.clear()


UNREADABLE = """[...document.querySelectorAll("button, a.mf-button")].filter(e => e.offsetParent !== null)
  .filter(e => { const s = getComputedStyle(e); return s.color === s.backgroundColor; })
  .map(e => e.textContent.trim())"""


def test_buttons_are_readable(page, authenticator, user):
    """No button or button-styled link has its text in its background colour."""
    log_in(page)
    enrol(page)
    unreadable = {"recovery": page.evaluate(UNREADABLE)}
    page.get_by_role("button", name="Make a new set").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    unreadable["codes"] = page.evaluate(UNREADABLE)
    for path in ("", "fido2/new/", "fido2/auth/"):
        page.goto(MF + path)
        unreadable[path or "home"] = page.evaluate(UNREADABLE)
    assert not any(unreadable.values()), unreadable
