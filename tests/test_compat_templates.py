"""Template overrides written for django-multifactor 0.9.x (tests/templates/multifactor09/) render their content:
0.9.x's blocks (``container_class``, ``page``) and context variables (home.html: ``factors``, ``authed_kids``,
``available_fallbacks``; add.html: ``available_factors``; authenticate.html: ``methods`` as triples and
``fallbacks``; TOTP/add.html: ``secret_key``, ``qr``; fallback/auth.html: ``succeeded``; userkey_form.html), the
forms in them still work, and the e-mail template 0.9.x's README named is the one sent."""

import re
from pathlib import Path

import pyotp
import pytest
from django.core import mail

from multifactor.models import DisabledFallback, Key
from tests.conftest import make_totp, verify_totp
from tests.mfa_helpers import ADD, AUTHENTICATE, HOME, TOTP_NEW, action_url, rename_url

FALLBACK = "/multifactor/fallback/auth/"
TEMPLATES_09 = Path(__file__).resolve().parent / "templates" / "multifactor09"


@pytest.fixture
def overrides(settings):
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [TEMPLATES_09]}]


@pytest.fixture
def two_keys(user):
    phone, totp = make_totp(user, name="Old phone")
    spare, _ = make_totp(user, name="")
    return phone, spare, totp


def rows(html):
    return re.findall(r'<tr class="site-factor" data-type="(\w+)" data-name="([^"]*)" data-state="(\w+)"', html)


def test_a_09_home_override_renders_its_content(overrides, signed_in, user, two_keys):
    phone, spare, totp = two_keys
    DisabledFallback.objects.create(user=user, fallback="email")
    verify_totp(signed_in, totp)
    response = signed_in.get(HOME)
    html = response.content.decode()
    assert response.status_code == 200 and "Site keys (0.9 override)" in html
    assert 'class="mf-card site-wide"' in html  # container_class
    assert rows(html) == [("TOTP", "Old phone", "authed"), ("TOTP", "", "locked")]
    assert f'href="{rename_url(phone.pk)}"' in html and f'href="{rename_url(spare.pk)}"' in html
    assert 'class="site-auth" href="/multifactor/totp/auth/"' in html  # {% url factor.auth_url %}
    assert 'data-name="email" data-enabled="off"' in html and "alice@example.com" in html
    assert "Added " in html and "Never used." in html and "ago." in html  # added_on, last_used
    assert 'class="site-add"' in html  # can_edit


def test_the_forms_of_a_09_home_override_work(overrides, signed_in, user, two_keys):
    phone, spare, totp = two_keys
    verify_totp(signed_in, totp)
    assert action_url("toggle_factor", spare.pk) in signed_in.get(HOME).content.decode()
    response = signed_in.post(action_url("toggle_factor", spare.pk))
    assert response.status_code == 302
    spare.refresh_from_db()
    assert spare.enabled is False
    assert rows(signed_in.get(HOME).content.decode())[1] == ("TOTP", "", "off")


def test_a_09_override_of_the_page_block_replaces_the_card_and_keeps_the_messages(overrides, signed_in, user):
    key, _ = make_totp(user)
    response = signed_in.get(ADD)
    html = response.content.decode()
    assert response.status_code == 200 and "Pick a factor (0.9 override)" in html
    assert re.findall(r'class="site-method" data-type="(\w+)"', html) == ["FIDO2", "TOTP"]
    assert "<h1></h1>" not in html and 'class="mf-card site-add-page"' in html
    signed_in.post(action_url("toggle_fallback", "email"))  # a message for the next page (refused: not verified)
    assert 'class="mf-message' in signed_in.get(ADD).content.decode()  # messages sit outside the page block


def test_a_09_authenticate_override_gets_methods_as_triples_and_the_fallbacks(overrides, signed_in, user, two_keys):
    Key.objects.create(user=user, type="FIDO2", name="yubikey", credential_id=b"\x02" * 16, rp_id="localhost")
    response = signed_in.get(AUTHENTICATE)
    html = response.content.decode()
    assert response.status_code == 200 and "Verify (0.9 override)" in html
    links = re.findall(r'<a class="site-method" href="([^"]+)"><strong>([^<]+)</strong> <small>([^<]*)</small>', html)
    assert ("/multifactor/totp/auth/", "Authenticator app", "Old phone") in links
    assert ("/multifactor/fido2/auth/", "Security key or passkey", "yubikey") in links
    assert response.context["fallbacks"] == ["email"]
    assert 'href="/multifactor/fallback/auth/">Request Fallback Token <small>email</small>' in html


def test_the_method_summary_counts_unnamed_keys(signed_in, user):
    make_totp(user, name="")
    make_totp(user, name="")
    Key.objects.create(user=user, type="FIDO2", credential_id=b"\x03" * 16, rp_id="localhost")
    methods = signed_in.get(AUTHENTICATE).context["methods"]
    assert {m.type: m[2] for m in methods}["TOTP"] == "2 keys"
    assert [m.label for m in methods][:2] == [m[1] for m in methods][:2]  # ours and 0.9.x's views of one method


def test_no_fallbacks_for_a_user_who_cannot_use_them(signed_in, user):
    assert signed_in.get(AUTHENTICATE).context["fallbacks"] == []  # no keys: a fallback would stand in for nothing


def test_a_09_totp_add_override_gets_secret_key_and_qr_and_its_form_works(overrides, signed_in):
    response = signed_in.get(TOTP_NEW)
    html = response.content.decode()
    secret = response.context["secret"]
    assert "Add TOTP (0.9 override)" in html and f'<code class="site-secret">{secret}</code>' in html
    (uri,) = re.findall(r'data-uri="([^"]+)"', html)
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
    answer = signed_in.post(TOTP_NEW, {"key": secret, "answer": pyotp.TOTP(secret).now()})
    assert answer.status_code == 302
    assert Key.objects.get(type="TOTP").confirmed


def test_the_rename_page_of_09(signed_in, user, two_keys, overrides, settings):
    phone, _spare, _totp = two_keys
    page = signed_in.get(rename_url(phone.pk))
    assert page.status_code == 200 and "Rename Authenticator app (0.9 override)" in page.content.decode()
    assert 'value="Old phone"' in page.content.decode()
    assert signed_in.post(rename_url(phone.pk), {"name": "New phone"}).status_code == 302
    phone.refresh_from_db()
    assert phone.name == "New phone"


def test_our_own_rename_page(signed_in, user, two_keys, django_user_model):
    phone, _spare, _totp = two_keys
    page = signed_in.get(rename_url(phone.pk))
    assert page.status_code == 200 and page.templates[0].name == "multifactor/userkey_form.html"
    assert page.context["object"].get_key_type_display() == "Authenticator app"
    assert page.context["form"]["name"].value() == "Old phone"
    stranger = django_user_model.objects.create_user("mallory", "m@example.com", "pw")
    theirs, _ = make_totp(stranger)
    assert signed_in.get(rename_url(theirs.pk)).status_code == 404


def test_succeeded_names_where_the_code_went(signed_in, user, totp_key):
    assert signed_in.get(FALLBACK).context["succeeded"] == ""  # nothing sent yet (a GET sends nothing)
    signed_in.post(FALLBACK, {"send": "1"})
    assert signed_in.get(FALLBACK).context["succeeded"] == "email"


def test_the_email_template_of_the_09_readme_is_the_one_sent(overrides, signed_in, user, totp_key):
    signed_in.post(FALLBACK, {"send": "1"})
    (message,) = mail.outbox
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and '<p class="site-mail">For alice: ' in html
    code = re.search(r"\b(\d{8})\b", message.body).group(1)
    assert code in html


def test_without_it_our_email_template_is_sent(signed_in, user, totp_key):
    signed_in.post(FALLBACK, {"send": "1"})
    (message,) = mail.outbox
    assert "site-mail" not in message.alternatives[0][0] and "<!DOCTYPE html>" in message.alternatives[0][0]
