"""A trusted browser in a real browser (headless Chromium against a live server with a strict CSP): trust it
with a TOTP code, sign out, sign in again and reach a ``factors=1`` page without a code; then revoke it on
the keys page and be challenged."""

from __future__ import annotations

import pyotp
import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the playwright_browser fixture skips these tests, or fails them in CI
    expect = None

from multifactor.models import Key, TrustedBrowser
from tests.browser.test_webauthn_browser import MF, PASSWORD, log_out, url
from tests.conftest import make_totp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def trust_on(settings, browser_settings):
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "TRUST_DAYS": 14}


def log_in(page, next_url):
    """Sign in on the site's login page, going on to ``next_url`` (or where its protection sends us)."""
    page.goto(f"/accounts/login/?next={next_url}")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()


def enter_code(page, totp, trust=False):
    page.fill("#id_answer", totp.now())
    if trust:
        page.check("input[name=trust_browser]")
    with page.expect_navigation():
        page.get_by_role("button", name="Verify").click()


def test_trust_this_browser_then_revoke_it(page, user):
    key, totp = make_totp(user)
    log_in(page, next_url="/f1/")
    expect(page).to_have_url(url(MF + "totp/auth/"))
    expect(page.get_by_label("Trust this browser for 14 days")).to_be_visible()
    enter_code(page, totp, trust=True)
    page.wait_for_url(url("/f1/"))
    cookie = next(c for c in page.context.cookies() if c["name"] == "multifactor_trust")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert TrustedBrowser.objects.filter(user=user, key=key).count() == 1

    log_out(page)
    log_in(page, next_url="/f1/")  # the same browser, a new session: no code asked
    expect(page).to_have_url(url("/f1/"))
    expect(page.locator("body")).to_have_text("ok")

    # Managing needs a factor verified now: the trust is not one. Verify, then revoke on the keys page.
    Key.objects.filter(pk=key.pk).update(last_step=None)
    page.goto(MF + "totp/auth/")
    enter_code(page, pyotp.TOTP(totp.secret))
    page.goto(MF)
    row = page.locator("[data-mf-trust-row]")
    expect(row).to_contain_text("This browser")
    row.get_by_role("button", name="Revoke").click()
    page.wait_for_url(url(MF))
    expect(page.locator("[data-mf-trust-row]")).to_have_count(0)
    assert not TrustedBrowser.objects.exists()

    log_out(page)
    log_in(page, next_url="/f1/")
    expect(page).to_have_url(url(MF + "totp/auth/"))  # challenged again
