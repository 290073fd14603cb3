"""Secrets at rest (SECURITY.md R10): no table holds a usable TOTP seed; Fernet keys from settings or the
environment; ``multifactor_rotate_keys`` re-encrypts everything, or changes nothing when it cannot."""

import base64
import io
import time

import pyotp
import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import CommandError, call_command
from django.db import connection

from multifactor import crypto
from multifactor.models import Key
from tests.conftest import CsrfClient
from tests.mfa_helpers import API, TOTP_AUTH, TOTP_NEW, data, mf_settings

pytestmark = pytest.mark.django_db

OLD = settings.MULTIFACTOR["ENCRYPTION_KEYS"][0]
NEW = Fernet.generate_key().decode()
STRANGER = Fernet.generate_key().decode()


def dump_database() -> list[tuple[str, str, object]]:
    """Every value of every column of every table, read with raw SQL: (table, column, value)."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - names from introspection
            columns = [c[0] for c in cursor.description]
            for row in cursor.fetchall():
                found.extend((table, column, value) for column, value in zip(columns, row, strict=True))
    return found


def as_texts(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        return [value.decode("latin-1"), value.hex()]
    return [str(value)]


def leaks(seed: str) -> list[tuple[str, str]]:
    raw = base64.b32decode(seed)
    needles = [seed, seed.lower(), raw.decode("latin-1"), raw.hex(), base64.b64encode(raw).decode()]
    hits = []
    for table, column, value in dump_database():
        texts = as_texts(value)
        if table == "django_session" and column == "session_data":
            texts.append(str(SessionStore().decode(value)))  # the session's content, decoded
        if any(needle in text for needle in needles for text in texts):
            hits.append((table, column))
    return hits


def test_no_column_holds_the_seed_after_enrolment(signed_in, user):
    html_seed = signed_in.get(TOTP_NEW).context["secret"]
    pending = leaks(html_seed)
    assert pending == [], pending  # a pending enrolment neither
    assert signed_in.post(TOTP_NEW, {"answer": pyotp.TOTP(html_seed).now(), "name": "page"}).status_code == 302
    api_seed = data(signed_in.api("post", API + "totp/begin"))["secret"]
    assert signed_in.api("post", API + "totp/activate", {"code": pyotp.TOTP(api_seed).now()}).status_code == 201
    assert signed_in.post(TOTP_AUTH, {"answer": pyotp.TOTP(api_seed).at(time.time() + 30)}).status_code == 302

    assert Key.objects.filter(user=user, confirmed=True).count() == 2
    assert len(dump_database()) > 50  # the dump saw the tables (users, sessions, keys, ...)
    for seed in (html_seed, api_seed):
        assert leaks(seed) == []
    # The seeds are there, encrypted: the configured key (not the database) opens them.
    secrets_ = {crypto.decrypt(k.secret) for k in Key.objects.filter(user=user)}
    assert secrets_ == {html_seed, api_seed}
    with pytest.raises(InvalidToken):
        Fernet(STRANGER).decrypt(Key.objects.filter(user=user).first().secret.encode())


def test_leak_detector_finds_a_plain_seed(user):
    """The dump above would notice a seed stored in the clear (the test can fail)."""
    seed = pyotp.random_base32()
    Key.objects.create(user=user, type="TOTP", name=seed)
    assert ("multifactor_key", "name") in leaks(seed)


def test_leak_detector_reads_sessions(signed_in):
    seed = pyotp.random_base32()
    session = signed_in.session
    session["oops"] = seed
    session.save()
    assert ("django_session", "session_data") in leaks(seed)


def test_same_seed_encrypts_differently():
    seed = pyotp.random_base32()
    assert crypto.encrypt(seed) != crypto.encrypt(seed)
    assert seed not in crypto.encrypt(seed)


def test_keys_from_environment(monkeypatch, user):
    env_key = Fernet.generate_key().decode()
    monkeypatch.setenv("MULTIFACTOR_ENCRYPTION_KEYS", f" {env_key} , {OLD}")
    without = {k: v for k, v in settings.MULTIFACTOR.items() if k != "ENCRYPTION_KEYS"}
    from django.test import override_settings

    with override_settings(MULTIFACTOR=without):
        token = crypto.encrypt("SEED")
        assert Fernet(env_key).decrypt(token.encode()) == b"SEED"
        assert crypto.decrypt(Fernet(OLD).encrypt(b"OLD").decode()) == "OLD"


def test_settings_keys_win_over_environment(monkeypatch):
    monkeypatch.setenv("MULTIFACTOR_ENCRYPTION_KEYS", STRANGER)
    with mf_settings(ENCRYPTION_KEYS=[NEW]):
        assert Fernet(NEW).decrypt(crypto.encrypt("x").encode()) == b"x"


# -- rotation ----------------------------------------------------------------------------------------------


def enrol_keys(user, n=2):
    """n TOTP keys made under the current encryption keys; returns [(key, pyotp.TOTP)]."""
    made = []
    for i in range(n):
        seed = pyotp.random_base32()
        key = Key.objects.create(user=user, type="TOTP", name=f"k{i}", secret=crypto.encrypt(seed))
        made.append((key, pyotp.TOTP(seed)))
    return made


def test_rotate_then_only_the_new_key_is_needed(user, django_user_model):
    other = django_user_model.objects.create_user("bob", "bob@example.com", "pw")
    with mf_settings(ENCRYPTION_KEYS=[OLD]):
        made = enrol_keys(user, 2) + enrol_keys(other, 1)
        carol = django_user_model.objects.create_user("carol", "carol@example.com", "pw")
        client = CsrfClient()
        client.force_login(carol)
        seed = client.get(TOTP_NEW).context["secret"]  # a pending enrolment is rotated too
    before = dict(Key.objects.values_list("pk", "secret"))

    with mf_settings(ENCRYPTION_KEYS=[NEW, OLD]):
        call_command("multifactor_rotate_keys", stdout=io.StringIO())

    after = dict(Key.objects.values_list("pk", "secret"))
    assert set(after) == set(before)
    for pk, token in after.items():
        assert token != before[pk]
        Fernet(NEW).decrypt(token.encode())
        with pytest.raises(InvalidToken):
            Fernet(OLD).decrypt(token.encode())

    with mf_settings(ENCRYPTION_KEYS=[NEW]):
        for key, totp in made:
            c = CsrfClient()
            c.force_login(key.user)
            r = c.api("post", API + "totp/authenticate", {"code": totp.now()})
            assert r.status_code == 200, (key.name, r.content)
            key.refresh_from_db()
            assert key.last_used_at is not None
        r = client.post(TOTP_NEW, {"answer": pyotp.TOTP(seed).now()})
        assert r.status_code == 302
        assert Key.objects.filter(user=carol, confirmed=True).count() == 1

    with mf_settings(ENCRYPTION_KEYS=[OLD]):  # the old key alone no longer opens anything
        key, totp = made[0]
        c = CsrfClient()
        c.force_login(user)
        r = c.api("post", API + "totp/authenticate", {"code": totp.at(time.time() + 30)})
        assert r.status_code == 400


def test_rotate_is_idempotent(user):
    with mf_settings(ENCRYPTION_KEYS=[NEW, OLD]):
        [(key, totp)] = enrol_keys(user, 1)
        call_command("multifactor_rotate_keys", stdout=io.StringIO())
        call_command("multifactor_rotate_keys", stdout=io.StringIO())
    with mf_settings(ENCRYPTION_KEYS=[NEW]):
        key.refresh_from_db()
        assert pyotp.TOTP(crypto.decrypt(key.secret)).now() == totp.now()


def test_rotate_fails_and_changes_nothing_when_a_token_cannot_be_read(user, capsys):
    with mf_settings(ENCRYPTION_KEYS=[OLD]):
        made = enrol_keys(user, 2)
    unreadable = Key.objects.create(
        user=user, type="TOTP", name="lost", secret=Fernet(STRANGER).encrypt(b"JBSWY3DPEHPK3PXP").decode()
    )
    with mf_settings(ENCRYPTION_KEYS=[OLD]):
        made += enrol_keys(user, 1)  # readable keys before and after the bad one
    before = dict(Key.objects.values_list("pk", "secret"))
    with mf_settings(ENCRYPTION_KEYS=[NEW, OLD]):
        with pytest.raises(CommandError):
            call_command("multifactor_rotate_keys")
    assert dict(Key.objects.values_list("pk", "secret")) == before
    assert str(unreadable.pk) in capsys.readouterr().err
    with mf_settings(ENCRYPTION_KEYS=[OLD]):
        for key, _totp in made:
            crypto.decrypt(Key.objects.get(pk=key.pk).secret)
