"""Operations commands: multifactor_status, multifactor_disable, multifactor_prune_events.
(multifactor_rotate_keys is tested in tests/test_crypto.py.)"""

from __future__ import annotations

import datetime
import io

import pyotp
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from multifactor import crypto
from multifactor.models import Event, Key
from tests.conftest import CsrfClient, make_totp, verify_totp

User = get_user_model()


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def alice(db):
    return User.objects.create_user("alice", "alice@example.com", "pw")


@pytest.fixture
def bob(db):
    return User.objects.create_user("bob", "bob@example.com", "pw")


def verified_client(user, totp, key):
    client = CsrfClient()
    client.force_login(user)
    assert verify_totp(client, totp, key).status_code == 302
    assert client.get("/f1/").status_code == 200
    return client


# -- multifactor_status ------------------------------------------------------------------------------------


def test_status_lists_every_user_with_keys(alice, bob):
    phone, _ = make_totp(alice, name="phone")
    tablet, _ = make_totp(alice, name="tablet")
    Key.objects.filter(pk=tablet.pk).update(enabled=False)
    used = timezone.now().replace(microsecond=0)
    Key.objects.filter(pk=phone.pk).update(last_used_at=used)
    locked, _ = make_totp(bob, name="old")
    Key.objects.filter(pk=locked.pk).update(enabled=False, locked_at=timezone.now())
    User.objects.create_user("carol")  # no keys: not listed
    Key.objects.create(user=User.objects.create_user("dave"), type="TOTP", confirmed=False, secret="x")  # pending

    lines = run("multifactor_status").splitlines()
    assert lines[0] == "alice: 1 enabled of 2 key(s)"
    assert lines[1].split() == [f"#{phone.pk}", "TOTP", "enabled", "last", "used", used.isoformat(), "phone"]
    assert lines[2].split() == [f"#{tablet.pk}", "TOTP", "disabled", "last", "used", "never", "tablet"]
    assert lines[3] == "bob: 0 enabled of 1 key(s)"
    assert lines[4].split()[:3] == [f"#{locked.pk}", "TOTP", "locked"]
    assert len(lines) == 5
    assert "carol" not in "\n".join(lines) and "dave" not in "\n".join(lines)


def test_status_of_named_users_in_the_order_given(alice, bob):
    make_totp(alice)
    out = run("multifactor_status", "bob", "alice")
    assert out.splitlines()[0] == "bob: 0 enabled of 0 key(s)"
    assert out.splitlines()[1] == "alice: 1 enabled of 1 key(s)"


def test_status_shows_no_secret(alice):
    seed = pyotp.random_base32()
    key, _ = make_totp(alice, seed=seed)
    out = run("multifactor_status", "alice")
    assert seed not in out and key.secret not in out and crypto.decrypt(key.secret) not in out


def test_status_with_no_keys_anywhere(db):
    assert run("multifactor_status") == ""


@pytest.mark.parametrize("command", ["multifactor_status", "multifactor_disable"])
def test_unknown_users_are_a_clear_error(alice, command):
    with pytest.raises(CommandError, match=r"^Unknown user\(s\): ghost, ghoul$"):
        call_command(command, "alice", "ghost", "ghoul", stdout=io.StringIO())


# -- multifactor_disable -----------------------------------------------------------------------------------


def test_disable_switches_every_key_off_and_ends_sessions(alice, bob):
    key, totp = make_totp(alice)
    spare, _ = make_totp(alice, name="spare")
    bob_key, bob_totp = make_totp(bob)
    client = verified_client(alice, totp, key)
    bystander = verified_client(bob, bob_totp, bob_key)

    out = run("multifactor_disable", "alice")
    assert out == "Disabled 2 key(s) of alice.\n"
    assert list(Key.objects.filter(user=alice).values_list("enabled", flat=True)) == [False, False]
    assert Key.objects.get(pk=bob_key.pk).enabled
    # the stored session is not edited: its next request sees the raised revocation counter
    assert client.get("/f1/").status_code == 302  # stopped on the very next request
    assert bystander.get("/f1/").status_code == 200
    event = Event.objects.get(kind="mfa_reset")
    assert (event.user, event.detail) == (alice, {"detail_action": "disabled", "count": 2})


def test_disable_with_delete_removes_the_keys(alice):
    key, totp = make_totp(alice)
    client = verified_client(alice, totp, key)
    assert run("multifactor_disable", "--delete", "alice") == "Deleted 1 key(s) of alice.\n"
    assert not Key.objects.filter(user=alice).exists()
    response = client.get("/f1/")
    assert response.status_code == 302 and response["Location"] == "/multifactor/add/"
    assert Event.objects.get(kind="mfa_reset").detail == {"detail_action": "deleted", "count": 1}


def test_disable_several_users(alice, bob):
    make_totp(alice)
    make_totp(bob)
    out = run("multifactor_disable", "alice", "bob")
    assert out.splitlines() == ["Disabled 1 key(s) of alice.", "Disabled 1 key(s) of bob."]
    assert not Key.objects.filter(enabled=True).exists()


def test_disable_changes_nothing_when_a_user_is_unknown(alice):
    make_totp(alice)
    with pytest.raises(CommandError, match="ghost"):
        call_command("multifactor_disable", "alice", "ghost", stdout=io.StringIO())
    assert Key.objects.get(user=alice).enabled
    assert not Event.objects.exists()


def test_disable_needs_a_user(db):
    with pytest.raises(CommandError):
        call_command("multifactor_disable", stdout=io.StringIO(), stderr=io.StringIO())


# -- multifactor_prune_events ------------------------------------------------------------------------------


def event_aged(user, days):
    return Event.objects.create(
        user=user, username=user.username, kind="key_used", created_at=timezone.now() - datetime.timedelta(days=days)
    )


def test_prune_deletes_events_older_than_the_given_days(alice):
    old, older, recent = event_aged(alice, 40), event_aged(alice, 400), event_aged(alice, 5)
    assert run("multifactor_prune_events", "--days", "30") == "Deleted 2 event(s) older than 30 day(s).\n"
    assert list(Event.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not Event.objects.filter(pk__in=[old.pk, older.pk]).exists()


def test_prune_defaults_to_a_year(alice):
    event_aged(alice, 400)
    keep = event_aged(alice, 300)
    assert run("multifactor_prune_events") == "Deleted 1 event(s) older than 365 day(s).\n"
    assert list(Event.objects.values_list("pk", flat=True)) == [keep.pk]


def test_prune_zero_days_deletes_everything_so_far(alice):
    event_aged(alice, 0)
    event_aged(alice, 1)
    run("multifactor_prune_events", "--days", "0")
    assert not Event.objects.exists()


@pytest.mark.parametrize("days", ["-1", "soon"])
def test_prune_refuses_bad_days(alice, days):
    event_aged(alice, 400)
    with pytest.raises(CommandError):
        call_command("multifactor_prune_events", "--days", days, stdout=io.StringIO(), stderr=io.StringIO())
    assert Event.objects.count() == 1
