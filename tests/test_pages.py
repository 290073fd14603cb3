"""The end-user pages as people meet them (issue 14): deleting a key asks first, the same kind of message after
every enrolment and verification, the chooser's wording, a calm keys list, guidance on the pages, and
MULTIFACTOR["BASE_TEMPLATE"] putting the pages inside a site's own base template."""

import re

import pyotp
import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.urls import reverse

from multifactor.models import DisabledFallback, Key
from tests.conftest import make_totp, verify_totp
from tests.mfa_helpers import ADD, AUTHENTICATE, HELP, HOME, TOTP_AUTH, TOTP_NEW, action_url, mf_settings
from tests.softauthn import SoftAuthenticator
from tests.test_webauthn import authenticate, new_client, register

pytestmark = pytest.mark.django_db

FALLBACK_AUTH = reverse("multifactor:fallback_auth")
RECOVERY = reverse("multifactor:recovery_start")


def delete_url(pk):
    return reverse("multifactor:delete", args=[pk])


def messages_of(response):
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def title(html):
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip()


@pytest.fixture(autouse=True)
def webauthn_origin(settings):
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "FIDO_SERVER_ID": "localhost", "FIDO_ORIGINS": ["http://localhost"]}


# -- deleting a key asks first ---------------------------------------------------------------------------


def test_delete_asks_first_and_says_what_is_lost(verified_two, two_keys):
    _a, (b, _) = two_keys
    page = verified_two.get(delete_url(b.pk))
    html = page.content.decode()
    assert page.status_code == 200 and Key.objects.filter(pk=b.pk).exists()  # a GET deletes nothing
    assert "Delete Tablet (Authenticator app)?" in title(html)
    assert "This key will no longer sign you in." in html
    assert "your last key" not in html  # Phone is left
    assert f'action="{delete_url(b.pk)}"' in html and f'href="{HOME}"' in html  # delete it, or keep it

    response = verified_two.post(delete_url(b.pk))
    assert response.status_code == 302 and response["Location"] == HOME
    assert not Key.objects.filter(pk=b.pk).exists()
    assert ("success", "Tablet (Authenticator app) has been deleted.") in messages_of(response)


def test_deleting_the_last_key_says_what_happens(verified, totp_key):
    key, _ = totp_key
    html = verified.get(delete_url(key.pk)).content.decode()
    assert "It is your last key" in html and "password alone" in html


def test_the_keys_page_links_to_the_confirmation_not_to_a_one_click_delete(verified_two, two_keys):
    (a, _), _b = two_keys
    html = verified_two.get(HOME).content.decode()
    assert f'href="{delete_url(a.pk)}"' in html
    assert action_url("delete_factor", a.pk) not in html


def test_the_delete_action_of_0_9_still_deletes_on_post(verified_two, two_keys):
    _a, (b, _) = two_keys
    assert verified_two.post(action_url("delete_factor", b.pk)).status_code == 302
    assert not Key.objects.filter(pk=b.pk).exists()


def test_delete_page_of_someone_elses_key_is_404_and_needs_reauthentication(signed_in, two_keys, django_user_model):
    (a, _), _b = two_keys
    html = signed_in.get(delete_url(a.pk)).content.decode()  # not verified in this session
    assert "Delete it" not in html and "first <a" in html
    assert signed_in.post(delete_url(a.pk)).status_code == 302 and Key.objects.filter(pk=a.pk).exists()
    other = django_user_model.objects.create_user("mallory", "m@example.com", "pw")
    theirs, _ = make_totp(other, "Mallory's")
    assert signed_in.get(delete_url(theirs.pk)).status_code == 404


# -- feedback: the same kind of message after every enrolment and verification -----------------------------


def test_totp_enrolment_and_verification_end_with_a_message(signed_in, user):
    page = signed_in.get(TOTP_NEW)
    seed = page.context["secret"]
    response = signed_in.post(TOTP_NEW, {"answer": pyotp.TOTP(seed).now(), "name": "Phone"})
    assert response.status_code == 302 and response["Location"] == RECOVERY  # first key: save codes next
    assert ("success", "Your authenticator app has been added.") in messages_of(response)


def test_a_security_key_enrolment_and_verification_end_with_a_message(user):
    client = new_client(user)
    auth = SoftAuthenticator()
    page = client.get(reverse("multifactor:fido2_start"))
    assert f'data-done="{RECOVERY}"' in page.content.decode()  # the first key: recovery codes next
    response = register(client, auth, "Blue key", via="pages")
    assert response.status_code == 201
    shown = [text for _level, text in messages_of(client.get(RECOVERY))]
    assert "Your security key has been added." in shown

    other = new_client(user)
    assert authenticate(other, auth, via="pages").status_code == 200
    shown = messages_of(other.get("/done/"))
    assert any(level == "info" and "You are now multifactor-authenticated" in text for level, text in shown)


def test_adding_a_key_from_the_keys_page_returns_there(verified, user):
    html = verified.get(HOME).content.decode()
    assert f'href="{ADD}?next={HOME}"' in html
    verified.post(RECOVERY)  # has recovery codes already: not sent to make them after this key
    verified.get(ADD + "?next=" + HOME)
    page = verified.get(TOTP_NEW)
    response = verified.post(TOTP_NEW, {"answer": pyotp.TOTP(page.context["secret"]).now()})
    assert response.status_code == 302 and response["Location"] == HOME


# -- the chooser and the keys list -----------------------------------------------------------------------


def test_the_first_factor_page_is_titled_for_what_it_lists_and_offers_no_recovery_codes(signed_in):
    html = signed_in.get(ADD).content.decode()
    assert "Add a security key" not in title(html)
    assert "Protect your account with a second factor" in title(html)
    assert "Authenticator app" in html and "Security key or passkey" in html
    assert RECOVERY not in html  # recovery codes alone are a dead end


def test_recovery_codes_are_offered_next_to_a_key(verified):
    html = verified.get(ADD).content.decode()
    assert RECOVERY in html and "Add a way to verify it's you" in title(html)


def test_no_empty_recovery_heading_for_a_user_without_keys(signed_in):
    html = signed_in.get(HOME).content.decode()
    assert "Recovery codes" not in html and "You have no security keys yet." in html


def test_the_recovery_set_is_not_listed_as_a_key(verified, user):
    verified.post(RECOVERY)
    response = verified.get(HOME)
    assert all(k.type != "RECOVERY" for k in response.context["keys"])
    assert response.content.decode().count("Recovery code") == 1  # the section's heading only


def test_dates_are_unambiguous(verified, totp_key):
    key, _ = totp_key
    Key.objects.filter(pk=key.pk).update(created_at="2026-03-12T10:00:00Z")
    html = verified.get(HOME).content.decode()
    keys = html[html.index('<ul class="mf-keys">') : html.index("</ul>", html.index('<ul class="mf-keys">'))]
    assert "added 12 Mar 2026" in keys and "12/03/2026" not in keys and "03/12/2026" not in keys


def test_fallback_switch_is_shown_only_to_whom_may_use_it(signed_in, user, totp_key):
    html = signed_in.get(HOME).content.decode()  # has a key, not verified in this session: may not toggle
    assert "alice@example.com" in html and "Switch off" not in html
    key, totp = totp_key
    verify_totp(signed_in, totp)
    assert "Switch off" in signed_in.get(HOME).content.decode()


def test_a_user_without_keys_is_not_offered_fallbacks(signed_in, user):
    DisabledFallback.objects.filter(user=user).delete()
    html = signed_in.get(HOME).content.decode()
    assert "Fallback codes" not in html and "Switch off" not in html


# -- guidance ------------------------------------------------------------------------------------------------


def test_help_covers_security_keys_and_passkeys(client):
    html = client.get(HELP).content.decode()
    assert "Security keys and passkeys" in html and "passkey" in html


def test_totp_setup_links_the_otpauth_uri(signed_in):
    html = signed_in.get(TOTP_NEW).content.decode()
    assert re.search(r'<a href="otpauth://totp/[^"]+">Open in authenticator app</a>', html)


def test_passkey_page_says_the_username_is_optional(client, settings):
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "PASSKEY_LOGIN": True}
    html = client.get(reverse("multifactor:passkey_login")).content.decode()
    assert "Username (optional)" in html and "leave it empty" in html


def test_after_send_the_page_says_where_and_focuses_the_code(signed_in, user, totp_key):
    before = signed_in.get(FALLBACK_AUTH).content.decode()
    assert "autofocus" not in before
    response = signed_in.post(FALLBACK_AUTH, {"send": "1"})
    assert ("success", "A code was sent via email to alice@example.com. Enter it below.") in messages_of(response)
    assert len(mail.outbox) == 1
    html = signed_in.get(FALLBACK_AUTH).content.decode()
    assert "We sent a code to alice@example.com." in html
    assert re.search(r'<input[^>]*name="otp"[^>]*autofocus', html)
    assert 'autocomplete="one-time-code"' in html and 'inputmode="numeric"' in html


@pytest.mark.parametrize("host,shown", [("127.0.0.1:8000", True), ("localhost:8000", False)])
def test_webauthn_pages_say_open_it_as_localhost_in_debug(signed_in, settings, host, shown):
    settings.DEBUG = True
    html = signed_in.get(reverse("multifactor:fido2_start"), HTTP_HOST=host).content.decode()
    assert ("open this page as localhost" in html) is shown
    if shown:
        assert f'href="http://localhost:8000{reverse("multifactor:fido2_start")}"' in html
    settings.DEBUG = False
    assert (
        "open this page as localhost"
        not in signed_in.get(reverse("multifactor:fido2_start"), HTTP_HOST="127.0.0.1").content.decode()
    )


def test_a_failed_passkey_sign_in_tells_what_to_do_about_a_deleted_passkey(client, settings):
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "PASSKEY_LOGIN": True}
    html = client.get(reverse("multifactor:passkey_login")).content.decode()
    assert 'data-msg-passkey-failed="If you deleted this passkey from your account, it is no longer registered' in html


# -- every page its own title; the site's look --------------------------------------------------------------


def test_every_page_has_its_own_title(verified, totp_key):
    pages = [
        HOME,
        ADD,
        HELP,
        AUTHENTICATE + "?choose=1",
        TOTP_NEW,
        TOTP_AUTH,
        RECOVERY,
        FALLBACK_AUTH,
        reverse("multifactor:fido2_start"),
        reverse("multifactor:fido2_auth"),
        reverse("multifactor:recovery_auth"),
        delete_url(totp_key[0].pk),
        reverse("multifactor:rename", args=[totp_key[0].pk]),
    ]
    titles = [title(verified.get(p).content.decode()) for p in pages]
    assert len(set(titles)) == len(titles), titles


def test_the_own_layout_has_a_site_header(verified, settings):
    html = verified.get(HOME).content.decode()
    assert "Signed in as <strong>alice</strong>" in html
    assert f'href="{settings.LOGIN_REDIRECT_URL}">Back to the site</a>' in html
    assert f'action="{reverse("multifactor:logout")}"' in html


SITE_BASE = (
    "<!DOCTYPE html><html><head><title>{% block title %}Site{% endblock %} | Example site</title></head>"
    '<body><header class="site-header">Example site</header>'
    '{% for message in messages %}<p class="site-message">{{ message }}</p>{% endfor %}'
    "<main>{% block content %}{% endblock %}</main></body></html>"
)


@pytest.fixture
def site_base(settings, tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "base.html").write_text(SITE_BASE)
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "BASE_TEMPLATE": "site/base.html"}
    # (a changed TEMPLATES setting resets the template engines: Django's setting_changed receivers)


def test_base_template_puts_the_pages_inside_the_sites_base(site_base, verified):
    response = verified.get(HOME)
    html = response.content.decode()
    assert response.status_code == 200
    assert title(html) == "Your security keys · Site | Example site"
    assert html.count("<html") == 1 and html.count("<title>") == 1 and html.count("<body") == 1
    assert '<header class="site-header">' in html and "<main>" in html
    assert '<div class="mf mf-embedded">' in html and "multifactor/multifactor.css" in html
    assert "<h1>Your security keys</h1>" in html
    assert 'class="site-message"' in html and 'class="mf-messages"' not in html  # messages shown once, by the site


def test_base_template_keeps_the_webauthn_script_and_status_codes(site_base, signed_in, totp_key):
    html = signed_in.get(reverse("multifactor:fido2_auth")).content.decode()
    assert "multifactor/webauthn.js" in html and title(html) == "Use your security key · Site | Example site"
    response = signed_in.post(TOTP_AUTH, {"answer": "000000x"})
    assert response.status_code == 400 and "site-header" in response.content.decode()


def test_a_bad_base_template_value_is_reported(settings):
    from multifactor import conf

    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "BASE_TEMPLATE": 3}
    assert any(p[1] == "BASE_TEMPLATE" for p in conf.get().problems)
    assert conf.get().BASE_TEMPLATE == "multifactor/base.html"


def test_the_stylesheet_follows_dark_mode_and_shows_focus():
    from pathlib import Path

    import multifactor

    css = (Path(multifactor.__file__).parent / "static" / "multifactor" / "multifactor.css").read_text()
    assert "@media (prefers-color-scheme: dark)" in css and ":focus-visible" in css


def test_with_mf_settings_helper_the_chooser_respects_factors(signed_in):
    with mf_settings(FACTORS=["TOTP"]):
        html = signed_in.get(ADD).content.decode()
    assert "Authenticator app" in html and "Security key or passkey" not in html
