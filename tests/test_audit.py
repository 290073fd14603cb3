"""The audit trail (SECURITY.md R12, R15): every signal fires once per event and writes one Event row (who,
what, which key, IP, user agent); the client IP comes from REMOTE_ADDR unless TRUSTED_PROXIES says how many
proxies append to X-Forwarded-For; notification mails follow NOTIFY_USER; events are pruned by a command."""

import io
from collections import Counter

import pyotp
import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db.models import F
from django.utils import timezone

from multifactor import signals
from multifactor.models import Event, FallbackCode, Key
from tests import transports
from tests.conftest import CsrfClient, make_totp, verify_totp
from tests.mfa_helpers import API, TOTP_AUTH, action_url, data, mf_settings, wrong_code
from tests.test_fallback import SUBJECT, TWO, last_code, other_code
from tests.test_recovery import new_set

pytestmark = pytest.mark.django_db

SIGNALS = [
    "key_added",
    "key_removed",
    "key_toggled",
    "key_used",
    "verification_failed",
    "key_locked",
    "recovery_code_used",
    "codes_regenerated",
    "fallback_sent",
]
IP, AGENT = "203.0.113.5", "AuditTest/1.0 (X11)"
NOTICES = {
    "key_added": "A security key was added to your account",
    "key_removed": "A security key was removed from your account",
    "key_locked": "A security key of yours was locked",
    "recovery_code_used": "A recovery code was used on your account",
}


class Fired(list):
    """What the signals sent, as (name, kwargs); ``reset()`` forgets them and the events so far."""

    def counts(self):
        return Counter(name for name, _kwargs in self)

    def one(self, name):
        [kwargs] = [kw for n, kw in self if n == name]
        return kwargs

    def reset(self):
        self.clear()
        Event.objects.all().delete()
        mail.outbox.clear()
        transports.clear()


@pytest.fixture
def fired():
    found = Fired()
    for name in SIGNALS:

        def receiver(sender, signal=None, _name=name, **kwargs):
            found.append((_name, kwargs))

        getattr(signals, name).connect(receiver, weak=False, dispatch_uid=f"tests.audit.{name}")
    yield found
    for name in SIGNALS:
        getattr(signals, name).disconnect(dispatch_uid=f"tests.audit.{name}")


def client_for(user, totp=None, key=None, **defaults):
    client = CsrfClient(REMOTE_ADDR=IP, HTTP_USER_AGENT=AGENT, **defaults)
    client.force_login(user)
    if totp is not None:
        assert verify_totp(client, totp, key).status_code == 302
    return client


def events():
    return Counter(Event.objects.values_list("kind", flat=True))


def check_event(kind, user, key_id=None, key_type="", ip=IP, agent=AGENT):
    event = Event.objects.get(kind=kind)
    assert (event.user_id, event.username) == (user.pk, user.username)
    assert (event.key_id, event.key_type) == (key_id, key_type)
    assert (event.ip, event.user_agent) == (ip, agent)
    assert abs((timezone.now() - event.created_at).total_seconds()) < 30
    return event


def notices():
    return [(m.subject, m.to) for m in mail.outbox if m.subject != SUBJECT]


# -- one signal, one row, per event --------------------------------------------------------------------------


def test_enrolling_a_key_fires_key_added_and_key_used_once(fired, user):
    client = client_for(user)
    seed = data(client.api("post", API + "totp/begin"))["secret"]
    assert fired.counts() == Counter()
    r = client.api("post", API + "totp/activate", {"code": pyotp.TOTP(seed).now(), "name": "Phone"})
    assert r.status_code == 201
    key = Key.objects.get(user=user, confirmed=True)
    assert fired.counts() == Counter(key_added=1, key_used=1) == events()
    assert fired.one("key_added")["key"] == key and fired.one("key_added")["user"] == user
    assert fired.one("key_added")["request"] is not None
    check_event("key_added", user, key.pk, "TOTP")
    check_event("key_used", user, key.pk, "TOTP")
    assert notices() == [(NOTICES["key_added"], ["alice@example.com"])]
    assert "Phone" in mail.outbox[0].body


def test_deleting_a_key_fires_key_removed_once(fired, user):
    key, totp = make_totp(user, "Old phone")
    make_totp(user, "New phone")
    client = client_for(user, totp, key)
    fired.reset()
    assert client.api("delete", API + f"keys/{key.pk}").status_code == 204
    assert fired.counts() == Counter(key_removed=1) == events()
    assert fired.one("key_removed")["key_pk"] == key.pk
    check_event("key_removed", user, key.pk, "TOTP")
    assert notices() == [(NOTICES["key_removed"], ["alice@example.com"])]
    assert "Old phone" in mail.outbox[0].body


@pytest.mark.parametrize("how", ["api", "page"])
def test_disabling_and_enabling_a_key_fire_key_toggled_once_each(fired, user, how):
    key, totp = make_totp(user)
    other, _ = make_totp(user, "other")
    client = client_for(user, totp, key)
    fired.reset()
    for enabled in (False, True):
        if how == "api":
            assert client.api("patch", API + f"keys/{other.pk}", {"enabled": enabled}).status_code == 200
        else:
            assert client.post(action_url("toggle_factor", other.pk)).status_code == 302
    assert fired.counts() == Counter(key_toggled=2) == events()
    assert [kw["enabled"] for n, kw in fired] == [False, True]
    rows = Event.objects.filter(kind="key_toggled").order_by("pk")
    assert [e.detail["enabled"] for e in rows] == [False, True]
    assert {(e.key_id, e.key_type, e.ip, e.user_agent) for e in rows} == {(other.pk, "TOTP", IP, AGENT)}
    assert notices() == []
    # Asking for the state a key is already in changes nothing and fires nothing.
    client.api("patch", API + f"keys/{other.pk}", {"enabled": True})
    assert fired.counts() == Counter(key_toggled=2)


def test_a_verification_fires_key_used_once(fired, user):
    key, totp = make_totp(user)
    client = client_for(user)
    assert client.post(TOTP_AUTH, {"answer": totp.now()}).status_code == 302
    assert fired.counts() == Counter(key_used=1) == events()
    assert fired.one("key_used")["type"] == "TOTP"
    check_event("key_used", user, key.pk, "TOTP")
    assert notices() == []


def test_a_wrong_code_fires_verification_failed_once(fired, user):
    key, totp = make_totp(user)
    client = client_for(user)
    assert client.api("post", API + "totp/authenticate", {"code": wrong_code(totp)}).status_code == 400
    assert fired.counts() == Counter(verification_failed=1) == events()
    assert fired.one("verification_failed")["failures"] == 1
    event = check_event("verification_failed", user, key.pk, "TOTP")
    assert event.detail["failures"] == 1
    # Input that is not a code at all is not a guess: nothing fires.
    client.api("post", API + "totp/authenticate", {"code": "nope"})
    assert fired.counts() == Counter(verification_failed=1)


@mf_settings(THROTTLE_FREE_FAILURES=10, THROTTLE_MAX_FAILURES=2)
def test_a_lockout_fires_key_locked_once(fired, user):
    key, totp = make_totp(user)
    client = client_for(user)
    for _ in range(2):
        client.api("post", API + "totp/authenticate", {"code": wrong_code(totp)})
    assert fired.counts() == Counter(verification_failed=2, key_locked=1) == events()
    check_event("key_locked", user, key.pk, "TOTP")
    assert notices() == [(NOTICES["key_locked"], ["alice@example.com"])]
    client.api("post", API + "totp/authenticate", {"code": wrong_code(totp)})  # already locked: no new events
    assert fired.counts() == Counter(verification_failed=2, key_locked=1) == events()


def test_regenerating_fires_codes_regenerated_once(fired, user):
    key, totp = make_totp(user)
    client = client_for(user, totp, key)
    fired.reset()
    new_set(client)
    recovery = Key.objects.get(user=user, type="RECOVERY")
    assert fired.counts() == Counter(codes_regenerated=1, key_added=1) == events()  # the first set adds the key
    assert fired.one("codes_regenerated")["count"] == 10
    check_event("codes_regenerated", user, recovery.pk, "RECOVERY")
    check_event("key_added", user, recovery.pk, "RECOVERY")
    fired.reset()
    assert client.api("post", API + "recovery-codes").status_code == 201
    assert fired.counts() == Counter(codes_regenerated=1) == events()
    assert notices() == []


def test_a_recovery_code_fires_recovery_code_used_once(fired, user):
    key, totp = make_totp(user)
    codes = new_set(client_for(user, totp, key))
    recovery = Key.objects.get(user=user, type="RECOVERY")
    fired.reset()
    client = client_for(user)
    assert client.api("post", API + "recovery-codes/authenticate", {"code": codes[0]}).status_code == 200
    assert fired.counts() == Counter(recovery_code_used=1, key_used=1) == events()
    assert fired.one("recovery_code_used")["remaining"] == 9
    event = check_event("recovery_code_used", user, recovery.pk, "RECOVERY")
    assert event.detail["remaining"] == 9
    assert codes[0] not in str(event.detail)
    assert notices() == [(NOTICES["recovery_code_used"], ["alice@example.com"])]


@mf_settings(FALLBACKS=TWO, THROTTLE_FREE_FAILURES=10, THROTTLE_MAX_FAILURES=2)
def test_fallback_events_name_the_fallback(fired, user):
    make_totp(user)
    client = client_for(user)
    assert client.api("post", API + "fallback/send").status_code == 200
    assert fired.counts() == Counter(fallback_sent=1) == events()
    assert fired.one("fallback_sent")["sent_via"] == ["email", "sms"]
    event = check_event("fallback_sent", user, None, "FALLBACK")
    assert event.detail["sent_via"] == ["email", "sms"]
    assert last_code() not in str(event.detail)
    assert client.api("post", API + "fallback/send").status_code == 429  # refused: nothing sent, nothing fired
    assert fired.counts() == Counter(fallback_sent=1)
    code = last_code()
    fired.reset()
    assert client.api("post", API + "fallback/authenticate", {"code": other_code(code)}).status_code == 400
    assert fired.counts() == Counter(verification_failed=1) == events()
    check_event("verification_failed", user, None, "FALLBACK")
    assert client.api("post", API + "fallback/authenticate", {"code": code}).status_code == 200
    assert fired.counts() == Counter(verification_failed=1, key_used=1) == events()
    check_event("key_used", user, None, "FALLBACK")
    FallbackCode.objects.update(sent_at=F("sent_at") - timezone.timedelta(seconds=61))
    client.api("post", API + "fallback/send")
    code = last_code()
    fired.reset()
    for _ in range(2):
        client.api("post", API + "fallback/authenticate", {"code": other_code(code)})
    assert fired.counts() == Counter(verification_failed=2, key_locked=1) == events()
    check_event("key_locked", user, None, "FALLBACK")
    [(subject, to)] = notices()
    assert to == ["alice@example.com"] and "None" not in mail.outbox[-1].body + subject


# -- client IP and user agent (R15) ------------------------------------------------------------------------


def failed_event(user, totp, **request):
    Event.objects.all().delete()
    client = CsrfClient()
    client.force_login(user)
    client.api("post", API + "totp/authenticate", {"code": wrong_code(totp)}, **request)
    return Event.objects.get(kind="verification_failed")


@mf_settings(THROTTLE_FREE_FAILURES=100)
def test_ip_is_remote_addr_and_spoofed_forwarded_for_is_ignored(user):
    _key, totp = make_totp(user)
    assert failed_event(user, totp, REMOTE_ADDR="198.51.100.20").ip == "198.51.100.20"
    event = failed_event(user, totp, REMOTE_ADDR="198.51.100.20", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert event.ip == "198.51.100.20"
    with mf_settings(TRUSTED_PROXIES=0, THROTTLE_FREE_FAILURES=100):
        event = failed_event(user, totp, REMOTE_ADDR="198.51.100.20", HTTP_X_FORWARDED_FOR="10.9.9.9, 10.8.8.8")
        assert event.ip == "198.51.100.20"
    assert failed_event(user, totp, REMOTE_ADDR="2001:db8::7").ip == "2001:db8::7"


@mf_settings(THROTTLE_FREE_FAILURES=100, TRUSTED_PROXIES=1)
def test_one_trusted_proxy_means_the_last_forwarded_for_entry(user):
    _key, totp = make_totp(user)
    forwarded = "10.9.9.9, 192.0.2.44"  # the client wrote the first, our proxy appended the second
    assert failed_event(user, totp, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded).ip == "192.0.2.44"
    assert failed_event(user, totp, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.45").ip == "192.0.2.45"
    assert failed_event(user, totp, REMOTE_ADDR="10.0.0.2").ip == "10.0.0.2"  # no header: the peer
    with mf_settings(THROTTLE_FREE_FAILURES=100, TRUSTED_PROXIES=2):
        event = failed_event(user, totp, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.46, 10.0.0.9")
        assert event.ip == "192.0.2.46"


@mf_settings(THROTTLE_FREE_FAILURES=100, TRUSTED_PROXIES=1)
@pytest.mark.parametrize("forwarded", ["not-an-ip", "192.0.2.1:8080", "999.1.1.1", "'; DROP TABLE x;--", "x" * 500])
def test_a_forwarded_for_that_is_not_an_ip_is_not_stored(user, forwarded):
    _key, totp = make_totp(user)
    event = failed_event(user, totp, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert event.ip is None


@mf_settings(THROTTLE_FREE_FAILURES=100)
def test_user_agent_is_kept_and_cut_to_its_column(user):
    _key, totp = make_totp(user)
    assert failed_event(user, totp, HTTP_USER_AGENT="Agent ü/2").user_agent == "Agent ü/2"
    assert failed_event(user, totp, HTTP_USER_AGENT="A" * 1000).user_agent == "A" * 300
    assert failed_event(user, totp).user_agent == ""


def test_changes_made_without_a_request_are_recorded_too(fired, user):
    key, _totp = make_totp(user)
    signals.key_removed.send(Key, key=key, key_pk=key.pk, user=user, request=None)
    event = Event.objects.get(kind="key_removed")
    assert (event.key_id, event.ip, event.user_agent) == (key.pk, None, "")


# -- notification mails ------------------------------------------------------------------------------------


def test_no_notification_mails_when_notify_user_is_false(fired, user):
    with mf_settings(NOTIFY_USER=False, THROTTLE_FREE_FAILURES=10, THROTTLE_MAX_FAILURES=1):
        client = client_for(user)
        seed = data(client.api("post", API + "totp/begin"))["secret"]
        assert client.api("post", API + "totp/activate", {"code": pyotp.TOTP(seed).now()}).status_code == 201
        codes = data(client.api("post", API + "recovery-codes"))["codes"]
        assert client_for(user).api("post", API + "recovery-codes/authenticate", {"code": codes[0]}).status_code == 200
        r = client_for(user).api("post", API + "recovery-codes/authenticate", {"code": codes[0]})  # used: locks
        assert r.status_code == 403
        key, _totp = make_totp(user, "second")
        assert client.api("delete", API + f"keys/{key.pk}").status_code == 204
    assert {"key_added", "recovery_code_used", "key_locked", "key_removed"} <= set(fired.counts())
    assert mail.outbox == []


def test_notification_mails_when_notify_user_is_true(fired, user):
    with mf_settings(NOTIFY_USER=True):
        client = client_for(user)
        seed = data(client.api("post", API + "totp/begin"))["secret"]
        assert client.api("post", API + "totp/activate", {"code": pyotp.TOTP(seed).now()}).status_code == 201
        key = Key.objects.get(user=user, type="TOTP")
        assert client.api("delete", API + f"keys/{key.pk}").status_code == 204
    assert notices() == [
        (NOTICES["key_added"], ["alice@example.com"]),
        (NOTICES["key_removed"], ["alice@example.com"]),
    ]


def test_a_broken_mail_server_does_not_break_the_flow(fired, user, settings, caplog):
    settings.EMAIL_BACKEND = "tests.test_audit.BrokenBackend"
    if hasattr(settings, "MAILERS"):  # Django 6.1+ sends through MAILERS
        settings.MAILERS = {"default": {"BACKEND": "tests.test_audit.BrokenBackend"}}
    client = client_for(user)
    seed = data(client.api("post", API + "totp/begin"))["secret"]
    assert client.api("post", API + "totp/activate", {"code": pyotp.TOTP(seed).now()}).status_code == 201
    assert Event.objects.filter(kind="key_added").count() == 1
    assert any("notice" in r.getMessage() for r in caplog.records)


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise OSError("the SMTP server is down")


# -- pruning -------------------------------------------------------------------------------------------------


def make_event(user, days_old, kind="key_used"):
    event = Event.objects.create(user=user, username=user.username, kind=kind)
    Event.objects.filter(pk=event.pk).update(created_at=timezone.now() - timezone.timedelta(days=days_old))
    return event.pk


def test_prune_deletes_older_events_only(user):
    old = [make_event(user, 40), make_event(user, 31), make_event(user, 400)]
    young = [make_event(user, 29), make_event(user, 1), make_event(user, 0)]
    out = io.StringIO()
    call_command("multifactor_prune_events", "--days", "30", stdout=out)
    assert sorted(Event.objects.values_list("pk", flat=True)) == sorted(young)
    assert "3" in out.getvalue()
    assert not Event.objects.filter(pk__in=old).exists()
    call_command("multifactor_prune_events", days=30, stdout=io.StringIO())  # nothing more to do
    assert Event.objects.count() == 3


def test_prune_default_keeps_a_year(user):
    kept, gone = make_event(user, 364), make_event(user, 366)
    call_command("multifactor_prune_events", stdout=io.StringIO())
    assert list(Event.objects.values_list("pk", flat=True)) == [kept]
    assert gone != kept


def test_prune_rejects_negative_days(user):
    pk = make_event(user, 10)
    with pytest.raises(CommandError):
        call_command("multifactor_prune_events", "--days", "-1", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("multifactor_prune_events", "--days", "ten", stdout=io.StringIO())
    assert Event.objects.filter(pk=pk).exists()
