"""The admin: ``MultifactorUserAdmin`` (column, filter, keys inline, reset action), the key and event admins, and
the contract's "Installing it in a site" layout (the admin behind ``decorator_include``), all through the test
client with CSRF enforced."""

from __future__ import annotations

import base64
import json
import re
import types
from html.parser import HTMLParser

import pyotp
import pytest
from decorator_include import decorator_include
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Permission
from django.core import checks
from django.core.management import call_command
from django.test import RequestFactory, override_settings
from django.urls import include, path
from django.utils import timezone

from multifactor import crypto
from multifactor.admin import HasKeysFilter, KeyInline, MultifactorUserAdmin
from multifactor.decorators import multifactor_protected
from multifactor.models import Event, FallbackCode, Key, RecoveryCode
from tests.admin_site import site as staff_site
from tests.conftest import CsrfClient, make_totp, verify_totp
from tests.mfa_helpers import data, mfa_state

pytestmark = pytest.mark.urls("tests.admin_urls")

STAFF_ADMIN = "/staff-admin/"
USERS = STAFF_ADMIN + "auth/user/"
KEYS = STAFF_ADMIN + "multifactor/key/"
EVENTS = STAFF_ADMIN + "multifactor/event/"
User = get_user_model()


# -- helpers -----------------------------------------------------------------------------------------------


class _Forms(HTMLParser):
    """The forms of a page, with what a browser would submit for each (inputs, checked boxes, selected options,
    textareas; no submit buttons)."""

    def __init__(self):
        super().__init__()
        self.forms, self._form, self._select, self._textarea = [], None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {"id": a.get("id"), "action": a.get("action"), "fields": []}
            self.forms.append(self._form)
        elif self._form is None:
            return
        elif tag == "input" and a.get("name"):
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self._form["fields"].append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select" and a.get("name"):
            self._select = {"name": a["name"], "multiple": "multiple" in a, "options": []}
        elif tag == "option" and self._select is not None:
            self._select["options"].append((a.get("value", ""), "selected" in a))
        elif tag == "textarea" and a.get("name"):
            self._textarea = [a["name"], ""]

    def handle_data(self, text):
        if self._textarea is not None:
            self._textarea[1] += text

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select" and self._select is not None:
            chosen = [v for v, selected in self._select["options"] if selected]
            if not chosen and not self._select["multiple"] and self._select["options"]:
                chosen = [self._select["options"][0][0]]
            self._form["fields"] += [(self._select["name"], v) for v in chosen]
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self._form["fields"].append(tuple(self._textarea))
            self._textarea = None


def form_data(response, form_id=None) -> dict:
    """The named form (else the first with fields) of a page, as a dict for the test client (lists for
    repeated names)."""
    parser = _Forms()
    parser.feed(response.content.decode())
    forms = [f for f in parser.forms if (form_id is None and f["fields"]) or f["id"] == form_id]
    assert forms, f"no form {form_id!r} on the page"
    fields: dict = {}
    for name, value in forms[0]["fields"]:
        fields.setdefault(name, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in fields.items()}


def keys_inline(response):
    (inline,) = [f for f in response.context["inline_admin_formsets"] if f.formset.model is Key]
    return inline


def protected_client(user, totp=None, key=None):
    """A second browser, signed in as ``user`` and verified with their TOTP key."""
    other = CsrfClient()
    other.force_login(user)
    if totp is not None:
        assert verify_totp(other, totp, key).status_code == 302
        assert other.get("/f1/").status_code == 200
    return other


@pytest.fixture
def root(db):
    return User.objects.create_superuser("root", "root@example.com", "pw-root-123")


@pytest.fixture
def admin_client(root):
    client = CsrfClient()
    client.force_login(root)
    return client


@pytest.fixture
def people(db):
    """alice: an enabled TOTP key; bob: only a disabled key; carol: no key; dave: only a pending enrolment."""
    alice = User.objects.create_user("alice", "alice@example.com", "pw")
    bob = User.objects.create_user("bob", "bob@example.com", "pw")
    carol = User.objects.create_user("carol", "carol@example.com", "pw")
    dave = User.objects.create_user("dave", "dave@example.com", "pw")
    alice_key, alice_totp = make_totp(alice)
    bob_key, _ = make_totp(bob)
    Key.objects.filter(pk=bob_key.pk).update(enabled=False)
    Key.objects.create(user=dave, type="TOTP", confirmed=False, secret=crypto.encrypt(pyotp.random_base32()))
    return types.SimpleNamespace(
        alice=alice, bob=bob, carol=carol, dave=dave, alice_key=alice_key, alice_totp=alice_totp, bob_key=bob_key
    )


# -- the user changelist: column and filter ----------------------------------------------------------------


def test_changelist_shows_the_mfa_column(admin_client, people):
    response = admin_client.get(USERS)
    assert response.status_code == 200
    html = response.content.decode()
    assert "column-multifactor" in html
    shown = {u.username: u._multifactor_enabled for u in response.context["cl"].result_list}
    assert shown == {"alice": True, "bob": False, "carol": False, "dave": False, "root": False}
    cells = re.findall(r'<td class="field-multifactor">(.*?)</td>', html)
    usernames = [u.username for u in response.context["cl"].result_list]
    assert ['alt="True"' in cell for cell in cells] == [name == "alice" for name in usernames]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("yes", {"alice"}), ("no", {"bob", "carol", "dave", "root"}), (None, {"alice", "bob", "carol", "dave", "root"})],
)
def test_changelist_filter(admin_client, people, value, expected):
    response = admin_client.get(USERS, {"multifactor": value} if value else {})
    assert response.status_code == 200
    assert {u.username for u in response.context["cl"].result_list} == expected
    filters = [spec for spec in response.context["cl"].filter_specs if isinstance(spec, HasKeysFilter)]
    assert len(filters) == 1
    assert "?multifactor=yes" in response.content.decode() and "?multifactor=no" in response.content.decode()


def test_column_is_sortable(admin_client, people):
    response = admin_client.get(USERS)
    index = list(response.context["cl"].list_display).index("multifactor")
    ordered = admin_client.get(USERS, {"o": f"-{index}"})
    assert ordered.status_code == 200
    assert [u.username for u in ordered.context["cl"].result_list][0] == "alice"


# -- the change page: the keys inline ----------------------------------------------------------------------


def test_change_page_shows_keys_inline_to_disable_or_delete_but_not_add(admin_client, people):
    alice = people.alice
    Key.objects.create(user=alice, type="TOTP", confirmed=False, secret=crypto.encrypt(pyotp.random_base32()))
    response = admin_client.get(f"{USERS}{alice.pk}/change/")
    assert response.status_code == 200
    inline = keys_inline(response)
    assert inline.has_add_permission is False
    assert inline.has_change_permission and inline.has_delete_permission
    assert [f.instance.pk for f in inline.formset.forms] == [people.alice_key.pk]  # the pending one is not listed
    fields = form_data(response, "user_form")
    assert fields["multifactor_keys-TOTAL_FORMS"] == "1"
    assert fields["multifactor_keys-MAX_NUM_FORMS"] == "0"  # no "Add another" button
    assert fields["multifactor_keys-0-enabled"] == "on"
    html = response.content.decode()
    assert 'name="multifactor_keys-0-DELETE"' in html
    assert "multifactor_keys-__prefix__" not in html  # no empty form to add from


def test_inline_disables_a_key_and_ends_its_sessions(admin_client, people):
    alice, key = people.alice, people.alice_key
    other = protected_client(alice, people.alice_totp, key)
    url = f"{USERS}{alice.pk}/change/"
    fields = form_data(admin_client.get(url), "user_form")
    del fields["multifactor_keys-0-enabled"]  # untick
    response = admin_client.post(url, fields)
    assert response.status_code == 302, response.context and response.context["errors"]
    key.refresh_from_db()
    assert key.enabled is False
    # the stored session is not edited: its next request sees the raised revocation counter
    assert other.get("/f1/").status_code == 302
    event = Event.objects.get(kind="key_toggled")
    assert (event.user, event.key_id, event.detail) == (alice, key.pk, {"enabled": False, "admin": "root"})


def test_inline_deletes_a_key_and_ends_its_sessions(admin_client, people):
    alice, key = people.alice, people.alice_key
    other = protected_client(alice, people.alice_totp, key)
    url = f"{USERS}{alice.pk}/change/"
    fields = form_data(admin_client.get(url), "user_form")
    fields["multifactor_keys-0-DELETE"] = "on"
    assert admin_client.post(url, fields).status_code == 302
    assert not Key.objects.filter(pk=key.pk).exists()
    assert other.get("/f1/").status_code == 302
    event = Event.objects.get(kind="key_removed")
    assert (event.user, event.key_id, event.detail["admin"]) == (alice, key.pk, "root")


def test_inline_cannot_add_a_key(admin_client, people):
    alice = people.alice
    url = f"{USERS}{alice.pk}/change/"
    fields = form_data(admin_client.get(url), "user_form")
    fields.update(
        {
            "multifactor_keys-TOTAL_FORMS": "2",
            "multifactor_keys-1-name": "planted",
            "multifactor_keys-1-enabled": "on",
            "multifactor_keys-1-user": str(alice.pk),
        }
    )
    admin_client.post(url, fields)
    assert list(Key.objects.filter(user=alice).values_list("pk", flat=True)) == [people.alice_key.pk]


def test_a_locked_key_cannot_be_enabled_again(admin_client, people):
    from django.utils import timezone

    alice, key = people.alice, people.alice_key
    Key.objects.filter(pk=key.pk).update(enabled=False, locked_at=timezone.now())
    url = f"{USERS}{alice.pk}/change/"
    fields = form_data(admin_client.get(url), "user_form")
    fields["multifactor_keys-0-enabled"] = "on"
    response = admin_client.post(url, fields)
    assert response.status_code == 200  # the form again, with the error
    assert "cannot be enabled" in response.content.decode()
    response = admin_client.post(f"{KEYS}{key.pk}/change/", {"name": "x", "enabled": "on"})
    assert response.status_code == 200 and "cannot be enabled" in response.content.decode()
    key.refresh_from_db()
    assert key.enabled is False


# -- the reset action --------------------------------------------------------------------------------------


def ask_reset(client, *users, changelist=USERS):
    """Choose the action on the change list: the confirmation page, nothing done yet."""
    page = client.post(
        changelist, {"action": "reset_multifactor", "_selected_action": [u.pk for u in users], "index": "0"}
    )
    assert page.status_code == 200, page.get("Location")
    assert page.templates[0].name == "admin/multifactor/reset_confirmation.html"
    return page


def reset(client, *users, changelist=USERS):
    """Choose the action, then answer "Yes, I'm sure" with the confirmation page's own form."""
    page = ask_reset(client, *users, changelist=changelist)
    return client.post(changelist, form_data(page, "multifactor-reset-form"))


def test_reset_removes_every_key_and_ends_verified_sessions_at_once(admin_client, people):
    alice = people.alice
    other = protected_client(alice, people.alice_totp, people.alice_key)
    codes = data(other.api("POST", "/multifactor/api/v1/recovery-codes"))["codes"]
    assert codes and RecoveryCode.objects.filter(key__user=alice).exists()
    FallbackCode.objects.create(user=alice, digest="d" * 64, salt="s" * 16)
    bystander = protected_client(people.bob)  # another user's session is left alone

    response = reset(admin_client, alice)
    assert response.status_code == 302
    assert not Key.objects.filter(user=alice).exists()
    assert not RecoveryCode.objects.filter(key__user=alice).exists()
    assert not FallbackCode.objects.filter(user=alice).exists()
    assert Key.objects.filter(user=people.bob).exists()
    # the second browser's very next request to a protected view is stopped (no keys left: sent to enrol)
    # the stored session is not edited: its next request sees the raised revocation counter
    answer = other.get("/f1/")
    assert answer.status_code == 302 and answer["Location"] == "/multifactor/add/"
    assert bystander.get("/plain/").status_code == 200

    event = Event.objects.get(kind="mfa_reset")
    assert (event.user, event.username, event.detail) == (alice, "alice", {"admin": "root"})
    messages = [str(m) for m in admin_client.get(USERS).context["messages"]]
    assert any("reset for 1 user" in m for m in messages)


def test_reset_tells_the_user_by_mail(admin_client, people, mailoutbox):
    mailoutbox.clear()
    reset(admin_client, people.alice)
    (mail,) = mailoutbox
    assert mail.to == ["alice@example.com"]
    assert mail.subject == "Multi-factor authentication was reset on your account"
    assert "An administrator reset the multi-factor authentication of your account" in mail.body
    assert people.alice_totp.secret not in mail.body


def test_reset_mail_follows_notify_user(admin_client, people, mailoutbox, settings):
    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "NOTIFY_USER": False}
    mailoutbox.clear()
    reset(admin_client, people.alice)
    assert mailoutbox == []
    assert Event.objects.filter(kind="mfa_reset").count() == 1


def test_reset_ends_sessions_kept_in_signed_cookies(settings, root, people):
    """Sessions the server cannot edit: the next request re-validates them and finds no key."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    admin = CsrfClient()
    admin.force_login(root)
    other = protected_client(people.alice, people.alice_totp, people.alice_key)
    assert reset(admin, people.alice).status_code == 302
    assert other.get("/f1/")["Location"] == "/multifactor/add/"


def test_reset_of_several_users(admin_client, people):
    make_totp(people.carol)
    reset(admin_client, people.alice, people.bob, people.carol)
    assert not Key.objects.filter(user__in=[people.alice, people.bob, people.carol]).exists()
    assert Event.objects.filter(kind="mfa_reset").count() == 3


def test_reset_needs_the_change_permission(db, people):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_user"))
    client = CsrfClient()
    client.force_login(viewer)
    response = client.get(USERS)
    assert response.status_code == 200
    assert "reset_multifactor" not in response.content.decode()
    client.post(USERS, {"action": "reset_multifactor", "_selected_action": [people.alice.pk], "index": "0"})
    assert Key.objects.filter(user=people.alice).exists()
    assert not Event.objects.filter(kind="mfa_reset").exists()


def test_reset_asks_first_and_says_what_is_lost(admin_client, people, mailoutbox):
    alice = people.alice
    other = protected_client(alice, people.alice_totp, people.alice_key)
    codes = data(other.api("POST", "/multifactor/api/v1/recovery-codes"))["codes"]
    mailoutbox.clear()
    page = ask_reset(admin_client, alice, people.carol)
    html = page.content.decode()
    assert "Are you sure you want to reset the multi-factor authentication of these 2 users?" in html
    assert "every security key, passkey and authenticator app" in html and "their recovery codes" in html
    assert "every verification in their signed-in sessions" in html
    # per user: the keys by name, the unused recovery codes counted (ngettext); carol has nothing to lose
    assert str(people.alice_key) in html and f"{len(codes)} unused recovery codes" in html
    assert "<strong>carol</strong>: no keys or recovery codes" in html
    assert "(you)" not in html and "Your own account is selected" not in html
    fields = form_data(page, "multifactor-reset-form")
    assert fields["post"] == "yes" and fields["action"] == "reset_multifactor"
    assert sorted(map(int, fields["_selected_action"])) == sorted([alice.pk, people.carol.pk])
    # asking changed nothing
    assert Key.objects.filter(user=alice).count() == 2 and RecoveryCode.objects.filter(key__user=alice).exists()
    assert not Event.objects.filter(kind="mfa_reset").exists() and mailoutbox == []
    assert other.get("/f1/").status_code == 200


def test_reset_confirmation_counts_in_the_singular(admin_client, people):
    Key.objects.create(user=people.bob, type="TOTP", enabled=False, locked_at=timezone.now(), name="old phone")
    html = ask_reset(admin_client, people.bob).content.decode()
    assert "Are you sure you want to reset the multi-factor authentication of this user?" in html
    assert "phone (Authenticator app) (disabled)" in html and "old phone (Authenticator app) (locked)" in html
    response = reset(admin_client, people.bob)
    assert response.status_code == 302 and response["Location"] == USERS
    messages = [str(m) for m in admin_client.get(USERS).context["messages"]]
    assert messages == ["Multi-factor authentication was reset for 1 user."]


def test_reset_message_counts_in_the_plural(admin_client, people):
    reset(admin_client, people.alice, people.bob)
    messages = [str(m) for m in admin_client.get(USERS).context["messages"]]
    assert messages == ["Multi-factor authentication was reset for 2 users."]


def test_cancelling_the_reset_changes_nothing(admin_client, people, mailoutbox):
    alice = people.alice
    other = protected_client(alice, people.alice_totp, people.alice_key)
    mailoutbox.clear()
    page = ask_reset(admin_client, alice)
    (cancel,) = re.findall(r'<a href="([^"]*)" class="button cancel-link">No, take me back</a>', page.content.decode())
    assert cancel == USERS
    back = admin_client.get(cancel)
    assert back.status_code == 200 and [str(m) for m in back.context["messages"]] == []
    assert list(Key.objects.filter(user=alice)) == [people.alice_key]
    assert not Event.objects.filter(kind="mfa_reset").exists() and mailoutbox == []
    assert other.get("/f1/").status_code == 200  # still verified


def test_reset_of_yourself_in_an_admin_without_mfa_keeps_you_there(admin_client, root, people):
    """/staff-admin/ is not behind multifactor_protected: after resetting yourself the admin still answers,
    with a link to enrol again."""
    key, totp = make_totp(root)
    assert verify_totp(admin_client, totp, key).status_code == 302
    page = ask_reset(admin_client, root, people.alice)
    html = page.content.decode()
    assert "<strong>root</strong> (you)" in html
    assert "Your own account is selected: your keys are deleted too" in html
    response = admin_client.post(USERS, form_data(page, "multifactor-reset-form"))
    assert response.status_code == 302 and response["Location"] == USERS
    back = admin_client.get(USERS)
    assert back.status_code == 200
    shown = [str(m) for m in back.context["messages"]]
    assert 'You reset your own multi-factor authentication. <a href="/multifactor/add/">Add a new key</a>' in shown[1]
    assert not Key.objects.filter(user__in=[root, people.alice]).exists()
    assert mfa_state(admin_client).verifications == []


def protected_staff_admin():
    """The staff admin behind multifactor_protected(factors=1), as the README installs the admin."""
    module = types.ModuleType("tests_admin_protected_staff")
    module.urlpatterns = [
        path("multifactor/", include("multifactor.urls")),
        path("staff-admin/", decorator_include(multifactor_protected(factors=1), staff_site.urls)),
        path("", include("tests.views")),
    ]
    return module


def test_reset_of_yourself_behind_mfa_sends_you_to_enrol_and_back(root, people):
    """The admin asks for a factor and you just deleted yours: straight to enrolment (not a dead end), and
    back to the change list once the new key is added."""
    key, totp = make_totp(root)
    client = CsrfClient()
    client.force_login(root)
    with override_settings(ROOT_URLCONF=protected_staff_admin()):
        assert client.get(USERS)["Location"] == "/multifactor/authenticate/"
        assert verify_totp(client, totp, key).status_code == 302
        page = ask_reset(client, root)
        assert "This admin asks you for a key, so right after the reset you will be asked to add a new one" in (
            page.content.decode()
        )
        response = client.post(USERS, form_data(page, "multifactor-reset-form"))
        assert response.status_code == 302 and response["Location"] == "/multifactor/add/"
        assert not Key.objects.filter(user=root).exists()
        add = client.get("/multifactor/add/")
        assert add.status_code == 200
        shown = [str(m) for m in add.context["messages"]]
        assert "Multi-factor authentication was reset for 1 user." in shown
        assert any("You reset your own multi-factor authentication. The admin asks for a key" in m for m in shown)
        assert client.get(USERS)["Location"] == "/multifactor/add/"  # no way around it
        assert mfa_state(client).next_url == USERS  # where enrolment ends
        enrol = client.get("/multifactor/totp/new/")
        answer = client.post("/multifactor/totp/new/", {"answer": pyotp.TOTP(enrol.context["secret"]).now()})
        assert answer.status_code == 302
        assert client.get(USERS).status_code == 200


def test_reset_of_someone_else_behind_mfa_keeps_you_in_the_admin(root, people):
    key, totp = make_totp(root)
    client = CsrfClient()
    client.force_login(root)
    with override_settings(ROOT_URLCONF=protected_staff_admin()):
        assert verify_totp(client, totp, key).status_code == 302
        page = ask_reset(client, people.alice)
        assert "Your own account is selected" not in page.content.decode()
        response = client.post(USERS, form_data(page, "multifactor-reset-form"))
        assert response.status_code == 302 and response["Location"] == USERS
        assert client.get(USERS).status_code == 200
    assert not Key.objects.filter(user=people.alice).exists() and Key.objects.filter(user=root).exists()


def test_reset_confirmation_keeps_the_change_list_filters(admin_client, people):
    page = admin_client.post(
        f"{USERS}?multifactor=yes",
        {"action": "reset_multifactor", "_selected_action": [people.alice.pk], "index": "0"},
    )
    assert page.status_code == 200
    assert 'href="/staff-admin/auth/user/?multifactor=yes" class="button cancel-link"' in page.content.decode()


# -- no secret on any admin page ---------------------------------------------------------------------------


def _variants(raw: bytes) -> set[str]:
    return {
        raw.hex(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        repr(raw)[2:-1][:40],
    }


def test_no_secret_on_any_admin_page(admin_client, people):
    alice = people.alice
    seed = pyotp.random_base32()
    totp_key, totp = make_totp(alice, name="second phone", seed=seed)
    other = protected_client(alice, totp, totp_key)
    codes = data(other.api("POST", "/multifactor/api/v1/recovery-codes"))["codes"]
    public_key = bytes(range(1, 78))
    Key.objects.create(
        user=alice, type="FIDO2", name="yubikey", credential_id=b"\x01" * 32, public_key=public_key, sign_count=7
    )
    FallbackCode.objects.create(user=alice, digest="f" * 12 + "0123456789abcdef", salt="saltsaltsalt1234")

    secrets = {seed, seed.lower(), *(k.secret for k in Key.objects.exclude(secret=""))}
    secrets |= {crypto.decrypt(k.secret) for k in Key.objects.exclude(secret="")}
    secrets |= {c for c in codes} | {c.replace("-", "") for c in codes}
    for row in RecoveryCode.objects.all():
        secrets |= {row.digest, row.salt}
    for row in FallbackCode.objects.all():
        secrets |= {row.digest, row.salt}
    secrets |= _variants(public_key)

    pages = [USERS, KEYS, EVENTS, f"{USERS}?multifactor=yes", f"{KEYS}?q=alice", f"{EVENTS}?q=alice"]
    pages += [f"{USERS}{u.pk}/change/" for u in User.objects.all()]
    pages += [f"{KEYS}{k.pk}/change/" for k in Key.objects.filter(confirmed=True)]
    pages += [f"{EVENTS}{e.pk}/change/" for e in Event.objects.all()]
    pages += [f"{KEYS}{k.pk}/history/" for k in Key.objects.filter(confirmed=True)]
    assert len(pages) > 15
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        leaked = [s for s in secrets if s and s in html]
        assert not leaked, f"{page} shows {leaked}"


def test_key_admin_lets_an_admin_disable_and_delete_but_not_add(admin_client, people):
    key = people.alice_key
    other = protected_client(people.alice, people.alice_totp, key)
    assert admin_client.get(f"{KEYS}add/").status_code == 403
    page = admin_client.get(f"{KEYS}{key.pk}/change/")
    assert set(page.context["adminform"].form.fields) == {"name", "enabled"}
    response = admin_client.post(f"{KEYS}{key.pk}/change/", {"name": "old phone"})  # "enabled" unticked
    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.name, key.enabled) == ("old phone", False)
    assert other.get("/f1/").status_code == 302
    response = admin_client.post(
        KEYS, {"action": "delete_selected", "_selected_action": [people.bob_key.pk], "post": "yes"}
    )
    assert response.status_code == 302
    assert not Key.objects.filter(pk=people.bob_key.pk).exists()
    assert Event.objects.filter(kind="key_removed", user=people.bob, key_id=people.bob_key.pk).exists()


def test_event_admin_is_read_only_searchable_and_filterable(admin_client, people):
    Event.objects.create(user=people.alice, username="alice", kind="key_used", key_type="TOTP", ip="192.0.2.1")
    Event.objects.create(user=people.bob, username="bob", kind="verification_failed", key_type="TOTP")
    event = Event.objects.get(username="alice")
    assert [e.username for e in admin_client.get(EVENTS, {"q": "alice"}).context["cl"].result_list] == ["alice"]
    filtered = admin_client.get(EVENTS, {"kind__exact": "verification_failed"}).context["cl"].result_list
    assert [e.username for e in filtered] == ["bob"]
    assert admin_client.get(f"{EVENTS}add/").status_code == 403
    page = admin_client.get(f"{EVENTS}{event.pk}/change/")
    assert page.status_code == 200 and page.context["adminform"].form.fields == {}
    assert admin_client.post(f"{EVENTS}{event.pk}/change/", {"username": "mallory"}).status_code == 403
    assert admin_client.get(f"{EVENTS}{event.pk}/delete/").status_code == 403
    event.refresh_from_db()
    assert event.username == "alice"


# -- MultifactorUserAdmin combines with other mixins and keeps no state --------------------------------------


def mark(modeladmin, request, queryset):
    pass


class OtherInline(admin.TabularInline):
    model = User.groups.through
    extra = 0


class OtherMixin(admin.ModelAdmin):
    """Another site's mixin with the same hooks: it extends what super() returns, as ours does."""

    def get_list_display(self, request):
        return (*super().get_list_display(request), "date_joined")

    def get_list_filter(self, request):
        return (*super().get_list_filter(request), "date_joined")

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions["mark"] = (mark, "mark", "Mark")
        return actions

    def get_inlines(self, request, obj):
        return (*super().get_inlines(request, obj), OtherInline)


class OtherFirst(OtherMixin, UserAdmin, MultifactorUserAdmin):
    pass


class OursFirst(MultifactorUserAdmin, OtherMixin, UserAdmin):
    pass


class PlainStaffAdmin(UserAdmin, MultifactorUserAdmin):
    list_display = ("username", "email")


@pytest.fixture
def admin_request(root):
    request = RequestFactory().get("/")
    request.user = root
    return request


@pytest.mark.parametrize("cls", [OtherFirst, OursFirst])
def test_combines_with_another_mixin(cls, admin_request, people):
    model_admin = cls(User, AdminSite(name=f"combo-{cls.__name__}"))
    display = model_admin.get_list_display(admin_request)
    assert "multifactor" in display and "date_joined" in display
    assert {"mark", "reset_multifactor", "delete_selected"} <= set(model_admin.get_actions(admin_request))
    filters = model_admin.get_list_filter(admin_request)
    assert HasKeysFilter in filters and "date_joined" in filters and "is_staff" in filters
    inlines = model_admin.get_inlines(admin_request, people.alice)
    assert KeyInline in inlines and OtherInline in inlines
    response = model_admin.changelist_view(admin_request)
    response.render()
    html = response.content.decode()
    assert 'value="reset_multifactor"' in html and 'value="mark"' in html
    assert "column-multifactor" in html and "column-date_joined" in html


def class_state():
    return [
        (cls.list_display, cls.list_filter, cls.inlines, cls.actions) for cls in (OursFirst, PlainStaffAdmin, UserAdmin)
    ]


def test_keeps_no_class_state(admin_request, people):
    before = class_state()
    one = OursFirst(User, AdminSite(name="one"))
    two = PlainStaffAdmin(User, AdminSite(name="two"))
    for _ in range(3):  # repeated calls do not pile up entries
        first = one.get_list_display(admin_request)
        second = two.get_list_display(admin_request)
        one.get_actions(admin_request), two.get_actions(admin_request)
        one.get_list_filter(admin_request), two.get_list_filter(admin_request)
        one.get_inlines(admin_request, people.alice), two.get_inlines(admin_request, people.alice)
    assert list(first).count("multifactor") == 1 and "date_joined" in first
    assert list(second) == ["username", "email", "multifactor"]
    assert list(two.get_inlines(admin_request, people.alice)).count(KeyInline) == 1
    assert class_state() == before
    assert "multifactor" not in UserAdmin.list_display


def test_actions_switched_off_stay_off(admin_request):
    class NoActions(UserAdmin, MultifactorUserAdmin):
        actions = None

    assert NoActions(User, AdminSite(name="noactions")).get_actions(admin_request) == {}


# -- the contract's "Installing it in a site": the admin behind decorator_include ---------------------------


def contract_layout(prefix):
    module = types.ModuleType(f"tests_admin_layout_{prefix.strip('/').replace('/', '_')}")
    module.urlpatterns = [
        path(prefix, include("multifactor.urls")),
        path("admin/", decorator_include(multifactor_protected(factors=1), admin.site.urls)),
        path("", include("tests.views")),
    ]
    return module


LAYOUTS = [
    pytest.param("tests.admin_urls", "/multifactor/", id="readme"),
    pytest.param(contract_layout("security/"), "/security/", id="other-prefix"),
    pytest.param(contract_layout("admin/multifactor/"), "/admin/multifactor/", id="0.9.x-mount"),  # still works
]


def password_login(client, username, password):
    """Log in through the admin's own login form, as a browser: anonymous, GET /admin/ first."""
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"] == "/admin/login/?next=/admin/"
    page = client.get(response["Location"])
    assert page.status_code == 200 and 'name="password"' in page.content.decode()
    fields = form_data(page, "login-form")
    fields.update(username=username, password=password)
    response = client.post("/admin/login/?next=/admin/", fields)
    assert response.status_code == 302 and response["Location"] == "/admin/", response.content[:500]
    client.csrf_token = client.cookies["csrftoken"].value  # login rotates the token; a page's forms carry the new one


@pytest.fixture
def staffer(db):
    return User.objects.create_user("staffer", "staffer@example.com", "pw-staff-123", is_staff=True, is_superuser=True)


@pytest.mark.parametrize(("urlconf", "mfa"), LAYOUTS)
def test_admin_login_then_mfa_then_back(urlconf, mfa, staffer):
    key, totp = make_totp(staffer)
    client = CsrfClient()
    with override_settings(ROOT_URLCONF=urlconf):
        password_login(client, "staffer", "pw-staff-123")
        response = client.get("/admin/")
        assert response.status_code == 302 and response["Location"] == f"{mfa}authenticate/"
        choose = client.get(response["Location"])  # one way to verify: straight to it
        assert choose.status_code == 302 and choose["Location"] == f"{mfa}totp/auth/"
        assert client.get(f"{mfa}totp/auth/").status_code == 200
        response = client.post(f"{mfa}totp/auth/", {"answer": totp.now()})
        assert response.status_code == 302 and response["Location"] == "/admin/"
        index = client.get("/admin/")
        assert index.status_code == 200 and index.context["title"] == "Site administration"
        assert client.get("/admin/auth/user/").status_code == 200


@pytest.mark.parametrize(("urlconf", "mfa"), LAYOUTS)
def test_admin_login_without_keys_is_sent_to_enrol(urlconf, mfa, staffer):
    client = CsrfClient()
    with override_settings(ROOT_URLCONF=urlconf):
        password_login(client, "staffer", "pw-staff-123")
        response = client.get("/admin/")
        assert response.status_code == 302 and response["Location"] == f"{mfa}add/"
        add = client.get(f"{mfa}add/")
        assert add.status_code == 200 and f'href="{mfa}totp/new/"' in add.content.decode()
        page = client.get(f"{mfa}totp/new/")
        assert page.status_code == 200
        code = pyotp.TOTP(page.context["secret"]).now()
        assert client.post(f"{mfa}totp/new/", {"answer": code}).status_code == 302
        assert client.get("/admin/").status_code == 200


def test_admin_login_page_never_loops(db):
    client = CsrfClient()
    response = client.get("/admin/", follow=True)
    assert response.status_code == 200
    assert [url for url, _ in response.redirect_chain] == ["/admin/login/?next=/admin/"]
    # A signed-in user with keys who is not verified yet is sent to the MFA pages, which answer.
    user = User.objects.create_user("staff2", password="pw", is_staff=True)
    make_totp(user)
    client.force_login(user)
    response = client.get("/admin/", follow=True)
    assert response.status_code == 200
    chain = [url for url, _ in response.redirect_chain]
    assert chain == ["/multifactor/authenticate/", "/multifactor/totp/auth/"]


def test_manage_py_check_accepts_the_contract_layout(db):
    call_command("check")  # raises SystemCheckError on any error
    assert not [m for m in checks.run_checks(tags=[checks.Tags.urls]) if m.id == "multifactor.E003"]


def test_manage_py_check_refuses_the_reversed_layout_which_loops(staffer):
    """The admin first: its catch-all view answers /admin/multifactor/..., behind the protection."""
    reversed_layout = types.ModuleType("tests_admin_reversed")
    reversed_layout.urlpatterns = [
        path("admin/", decorator_include(multifactor_protected(factors=1), admin.site.urls)),
        path("admin/multifactor/", include("multifactor.urls")),
    ]
    make_totp(staffer)
    client = CsrfClient()
    client.force_login(staffer)
    with override_settings(ROOT_URLCONF=reversed_layout):
        found = [m.id for m in checks.run_checks(tags=[checks.Tags.urls]) if m.id.startswith("multifactor.")]
        assert found == ["multifactor.E003"]
        response = client.get("/admin/multifactor/authenticate/")
        assert response.status_code == 302 and response["Location"] == "/admin/multifactor/authenticate/"


def test_admin_pages_answer_json_clients_with_401(staffer):
    make_totp(staffer)
    client = CsrfClient()
    client.force_login(staffer)
    response = client.get("/admin/", headers={"Accept": "application/json"})
    assert response.status_code == 401
    body = json.loads(response.content)
    assert body["errors"][0]["code"] == "mfa_required"
    assert body["meta"]["authenticate_url"] == "/multifactor/authenticate/"


# -- the mount point: the admin's index of our models stays the admin's ------------------------------------


def test_admin_app_index_of_our_models_is_reachable_with_the_readme_mount(admin_client, root):
    """README's layout: /multifactor/ for the MFA pages, so /admin/multifactor/ is the admin's own index of
    the key and event admins, which its breadcrumbs link to."""
    key, totp = make_totp(root)
    assert verify_totp(admin_client, totp, key).status_code == 302
    for index in ("/admin/multifactor/", "/staff-admin/multifactor/"):
        page = admin_client.get(index)
        assert page.status_code == 200 and page.resolver_match.url_name == "app_list", index
        assert [app["app_label"] for app in page.context["app_list"]] == ["multifactor"]
        assert {m["object_name"] for m in page.context["app_list"][0]["models"]} >= {"Key", "Event"}
    changelist = admin_client.get(KEYS).content.decode()
    assert f'<a href="{STAFF_ADMIN}multifactor/">Multi-factor authentication</a>' in changelist


def mount_warnings():
    return [m for m in checks.run_checks(tags=[checks.Tags.urls]) if m.id == "multifactor.W012"]


def test_readme_mount_has_no_collision_warning(db):
    assert mount_warnings() == []


def test_the_old_mount_is_a_warning_but_keeps_working(staffer):
    """0.9.x's README mount, admin/multifactor/, is the admin's app index URL of our models: a warning (not an
    error: the pages keep working, as test_admin_login_then_mfa_then_back[0.9.x-mount] shows)."""
    old = contract_layout("admin/multifactor/")
    with override_settings(ROOT_URLCONF=old):
        (warning,) = mount_warnings()
        call_command("check")  # a warning does not stop the site
        client = CsrfClient()
        client.force_login(staffer)
        assert client.get("/admin/multifactor/").resolver_match.namespace == "multifactor"  # the keys page
    assert isinstance(warning, checks.Warning)
    assert "/admin/multifactor/" in warning.msg and "'admin'" in warning.msg
    assert 'path("multifactor/", include("multifactor.urls"))' in warning.hint


def test_the_old_mount_without_our_admins_is_fine(db):
    """An admin site that registers none of our models has no index for them to collide with."""
    bare = AdminSite(name="bare")
    module = types.ModuleType("tests_admin_bare_site")
    module.urlpatterns = [path("bare/multifactor/", include("multifactor.urls")), path("bare/", bare.urls)]
    with override_settings(ROOT_URLCONF=module):
        assert mount_warnings() == []


def test_reset_confirmation_counts_trusted_browsers_and_the_reset_ends_them(admin_client, people, settings):
    from multifactor.models import TrustedBrowser
    from multifactor.models.trust import password_mac

    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "TRUST_DAYS": 30}
    alice = people.alice
    for n in range(2):
        TrustedBrowser.objects.create(
            user=alice,
            key=people.alice_key,
            token_hash=f"{n}" * 64,
            password_mac=password_mac(alice),
            expires_at=timezone.now() + timezone.timedelta(days=30),
        )
    page = ask_reset(admin_client, alice)
    html = page.content.decode()
    assert "2 trusted browsers" in html and "the browsers they chose to trust" in html
    assert admin_client.post(USERS, form_data(page, "multifactor-reset-form")).status_code == 302
    assert not TrustedBrowser.objects.filter(user=alice).exists()
