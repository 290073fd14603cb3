"""Fallback codes over pluggable transports (SECURITY.md R5, R13, R4; CONTRACT counting rule 8): sent only on
POST, to every enabled transport at once, once per cooldown; valid FALLBACK_TTL seconds, single use, bound to
the session that asked; never stored in clear; at most one factor, and only for a user with keys. Real
transports (tests/transports.py and the default e-mail one through Django's locmem backend)."""

import hashlib
import json
import logging
import re

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.db.models import F
from django.test import override_settings
from django.utils import timezone

from multifactor.models import DisabledFallback, Event, FallbackCode, Key
from tests import transports
from tests.conftest import SIGNED_COOKIES, CsrfClient, make_totp, verify_totp
from tests.mfa_helpers import ADD, API, AUTHENTICATE, BASE, action_url, data, error_codes, mf_settings
from tests.test_recovery import leaks

pytestmark = pytest.mark.django_db

FALLBACK_AUTH = BASE + "fallback/auth/"
SEND_API = API + "fallback/send"
AUTH_API = API + "fallback/authenticate"
SUBJECT = "Your verification code"

EMAIL = (lambda user: user.email, "multifactor.transports.send_email")
SMS = (transports.phone, "tests.transports.record")
TWO = {"email": EMAIL, "sms": SMS}


@pytest.fixture(autouse=True)
def _clear_transports():
    transports.clear()
    yield
    transports.clear()


def client_for(user, totp=None, key=None):
    client = CsrfClient()
    client.force_login(user)
    if totp is not None:
        assert verify_totp(client, totp, key).status_code == 302
    return client


def code_mails():
    return [m for m in mail.outbox if m.subject == SUBJECT]


def last_code(transport="email"):
    """The code of the latest message sent through ``transport`` ("email": the locmem outbox; else the name
    of a function of tests/transports.py)."""
    if transport == "email":
        return transports.code_in(code_mails()[-1].body)
    return transports.code_in(transports.sent(transport)[-1][2])


def send(client):
    r = client.api("post", SEND_API)
    assert r.status_code == 200, r.content
    return data(r)["sent_via"]


def row(user):
    return FallbackCode.objects.get(user=user)


def rewind(user, seconds):
    """Move the last send ``seconds`` into the past (the passing of time, without a sleep)."""
    FallbackCode.objects.filter(user=user).update(sent_at=F("sent_at") - timezone.timedelta(seconds=seconds))


def other_code(code):
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


# -- sending -------------------------------------------------------------------------------------------------


@mf_settings(FALLBACKS=TWO)
def test_get_sends_nothing(signed_in, user, totp_key):
    page = signed_in.get(FALLBACK_AUTH)
    assert page.status_code == 200
    assert page.context["destinations"] == {"email": "alice@example.com", "sms": "+41 79 555 01 23"}
    r = signed_in.api("get", SEND_API)
    assert r.status_code == 405 and error_codes(r) == ["method_not_allowed"]
    assert signed_in.get(FALLBACK_AUTH + "?send=1").status_code == 200
    assert mail.outbox == [] and transports.sent() == []
    assert not FallbackCode.objects.filter(sent_at__isnull=False).exists()
    assert not Event.objects.filter(kind="fallback_sent").exists()


@mf_settings(FALLBACKS=TWO)
def test_post_send_goes_to_every_enabled_transport_at_once(signed_in, user, totp_key):
    assert send(signed_in) == ["email", "sms"]
    assert len(code_mails()) == 1 and code_mails()[0].to == ["alice@example.com"]
    assert [(t, u) for t, u, _m in transports.sent()] == [("record", "alice")]
    code = last_code("email")
    assert last_code("record") == code and len(code) == 8
    # Through the page: a redirect back to it, with a message naming the transports.
    rewind(user, 61)
    r = signed_in.post(FALLBACK_AUTH, {"send": "1"})
    assert r.status_code == 302 and r["Location"] == FALLBACK_AUTH
    assert any("email, sms" in m for m in messages_of(r))
    assert len(code_mails()) == 2 and len(transports.sent()) == 2


@mf_settings(FALLBACKS=TWO, FALLBACK_COOLDOWN=60)
def test_two_sends_inside_the_cooldown_send_once(signed_in, user, totp_key):
    send(signed_in)
    code = last_code()
    r = signed_in.api("post", SEND_API)
    assert r.status_code == 429 and error_codes(r) == ["cooldown"]
    assert 1 <= int(r["Retry-After"]) <= 61
    r = signed_in.post(FALLBACK_AUTH, {"send": "1"})
    assert r.status_code == 302 and any("Wait" in m for m in messages_of(r))
    # Another session of the same user shares the cooldown.
    assert client_for(user).api("post", SEND_API).status_code == 429
    assert len(code_mails()) == 1 and len(transports.sent()) == 1
    # The cooldown over, a resend sends a new code and the old one is dead.
    rewind(user, 60)
    send(signed_in)
    assert len(code_mails()) == 2
    new = last_code()
    if new != code:  # (1 in 10^8 that they are equal)
        r = signed_in.api("post", AUTH_API, {"code": code})
        assert r.status_code == 400 and error_codes(r) == ["invalid_code"]
    assert signed_in.api("post", AUTH_API, {"code": new}).status_code == 200


@mf_settings(FALLBACKS=TWO, FALLBACK_COOLDOWN=0)
def test_no_cooldown_sends_every_time(signed_in, totp_key):
    send(signed_in)
    send(signed_in)
    assert len(code_mails()) == 2


@mf_settings(FALLBACKS=TWO, THROTTLE_FREE_FAILURES=100, THROTTLE_MAX_FAILURES=4)
def test_a_resend_never_resets_the_failure_count(signed_in, user, totp_key):
    send(signed_in)
    for _ in range(2):
        r = signed_in.api("post", AUTH_API, {"code": other_code(last_code())})
        assert r.status_code == 400
    assert row(user).failures == 2
    rewind(user, 61)
    send(signed_in)
    assert row(user).failures == 2
    assert signed_in.api("post", AUTH_API, {"code": other_code(last_code())}).status_code == 400
    rewind(user, 61)
    send(signed_in)
    r = signed_in.api("post", AUTH_API, {"code": other_code(last_code())})
    assert r.status_code == 403 and error_codes(r) == ["key_locked"]
    assert row(user).failures == 4 and row(user).locked_at is not None
    # Locked: no more sending, and the right code is refused.
    rewind(user, 61)
    r = signed_in.api("post", SEND_API)
    assert r.status_code == 403 and error_codes(r) == ["locked"]
    r = signed_in.api("post", AUTH_API, {"code": last_code()})
    assert r.status_code == 403 and error_codes(r) == ["key_locked"]
    assert signed_in.get("/f1/")["Location"] == AUTHENTICATE


@mf_settings(FALLBACKS=TWO, THROTTLE_FREE_FAILURES=1, THROTTLE_BASE_DELAY=60)
def test_a_resend_keeps_the_delay_too(signed_in, user, totp_key):
    send(signed_in)
    for _ in range(2):
        signed_in.api("post", AUTH_API, {"code": other_code(last_code())})
    delayed_until = row(user).throttled_until
    assert delayed_until is not None
    rewind(user, 61)
    send(signed_in)
    assert row(user).throttled_until == delayed_until
    r = signed_in.api("post", AUTH_API, {"code": last_code()})
    assert r.status_code == 429 and error_codes(r) == ["throttled"] and 55 <= int(r["Retry-After"]) <= 60
    r = signed_in.post(FALLBACK_AUTH, {"otp": last_code()})
    assert r.status_code == 429 and r.context["form"].errors["otp"]
    assert row(user).failures == 2
    FallbackCode.objects.filter(user=user).update(throttled_until=timezone.now())
    assert signed_in.api("post", AUTH_API, {"code": last_code()}).status_code == 200
    assert row(user).failures == 0


# -- verifying ---------------------------------------------------------------------------------------------


@mf_settings(FALLBACKS=TWO)
def test_a_user_with_a_totp_key_meets_factors_1_with_a_fallback_code_on_the_pages(signed_in, user, totp_key):
    assert signed_in.get("/f1/")["Location"] == AUTHENTICATE
    page = signed_in.get(AUTHENTICATE + "?choose=1")
    assert "FALLBACK" in [m.type for m in page.context["methods"]]
    assert signed_in.post(FALLBACK_AUTH, {"send": "1"}).status_code == 302
    before = signed_in.cookies["sessionid"].value
    r = signed_in.post(FALLBACK_AUTH, {"otp": last_code("record")})
    assert r.status_code == 302 and r["Location"] == "/f1/"
    assert signed_in.cookies["sessionid"].value != before  # cycle_key()
    assert signed_in.get("/f1/").content == b"ok"
    status = data(signed_in.api("get", API + "status"))
    assert [(v["type"], v["key_id"]) for v in status["verified"]] == [("FALLBACK", None)]


@mf_settings(FALLBACKS=TWO)
def test_an_expired_code_fails(signed_in, user, totp_key):
    send(signed_in)
    rewind(user, 601)
    r = signed_in.api("post", AUTH_API, {"code": last_code()})
    assert r.status_code == 400 and error_codes(r) == ["invalid_code"]
    assert row(user).failures == 1
    assert signed_in.get("/f1/")["Location"] == AUTHENTICATE


@mf_settings(FALLBACKS=TWO)
def test_a_code_is_good_until_its_ttl(signed_in, user, totp_key):
    send(signed_in)
    rewind(user, 590)
    assert signed_in.api("post", AUTH_API, {"code": last_code()}).status_code == 200


@mf_settings(FALLBACKS=TWO, FALLBACK_TTL=120)
def test_the_ttl_is_a_setting(signed_in, user, totp_key):
    send(signed_in)
    rewind(user, 121)
    assert signed_in.api("post", AUTH_API, {"code": last_code()}).status_code == 400


@mf_settings(FALLBACKS=TWO)
def test_a_code_is_single_use(signed_in, user, totp_key):
    send(signed_in)
    code = last_code()
    assert signed_in.api("post", AUTH_API, {"code": code}).status_code == 200
    for client in (signed_in, client_for(user)):
        r = client.api("post", AUTH_API, {"code": code})
        assert r.status_code in (400, 409), r.content
        r = client.post(FALLBACK_AUTH, {"otp": code})
        assert r.status_code in (400, 409)
    assert client_for(user).get("/f1/")["Location"] == AUTHENTICATE
    assert row(user).used_at is not None


@mf_settings(FALLBACKS=TWO)
def test_a_code_is_bound_to_the_session_that_asked_for_it(user, totp_key):
    asker, other = client_for(user), client_for(user)
    send(asker)
    code = last_code()
    r = other.api("post", AUTH_API, {"code": code})
    assert r.status_code == 409 and error_codes(r) == ["not_sent"]
    r = other.post(FALLBACK_AUTH, {"otp": code})
    assert r.status_code == 409 or r.status_code == 400
    assert other.get("/f1/")["Location"] == AUTHENTICATE
    # Even a session that asked for a code earlier cannot use the one sent to another session.
    rewind(user, 61)
    send(other)
    rewind(user, 61)
    send(asker)
    code = last_code()
    r = other.api("post", AUTH_API, {"code": code})
    assert r.status_code == 400 and error_codes(r) == ["invalid_code"]
    assert other.get("/f1/")["Location"] == AUTHENTICATE
    assert asker.api("post", AUTH_API, {"code": code}).status_code == 200
    assert asker.get("/f1/").content == b"ok"


@mf_settings(FALLBACKS=TWO, THROTTLE_FREE_FAILURES=100)
def test_two_fallback_verifications_are_one_factor(signed_in, user, totp_key):
    key, totp = totp_key
    for _ in range(2):
        send(signed_in)
        assert signed_in.api("post", AUTH_API, {"code": last_code()}).status_code == 200
        rewind(user, 61)
        assert signed_in.get("/f1/").content == b"ok"
        assert signed_in.get("/f2/")["Location"] == AUTHENTICATE
    # A key of the user plus a fallback: two (the fallback stands in for another key of theirs).
    assert verify_totp(signed_in, totp, key).status_code == 302
    assert signed_in.get("/f2/").content == b"ok"


@mf_settings(FALLBACKS=TWO)
def test_a_user_without_keys_cannot_send_and_is_sent_to_enrol(signed_in, user):
    assert signed_in.get("/f1/")["Location"] == ADD
    r = signed_in.api("post", SEND_API)
    assert r.status_code == 409 and error_codes(r) == ["no_key"]
    r = signed_in.post(FALLBACK_AUTH, {"send": "1"})
    assert r.status_code == 302
    r = signed_in.api("post", AUTH_API, {"code": "12345678"})
    assert r.status_code == 409 and error_codes(r) == ["no_key"]
    assert mail.outbox == [] and transports.sent() == []
    assert "FALLBACK" not in [m.type for m in signed_in.get(AUTHENTICATE).context["methods"]]
    assert signed_in.get("/f1/")["Location"] == ADD


@mf_settings(FALLBACKS=TWO)
def test_a_fallback_stops_counting_when_the_users_keys_go(user, totp_key):
    key, totp = totp_key
    manager = client_for(user, totp, key)
    client = client_for(user)
    send(client)
    assert client.api("post", AUTH_API, {"code": last_code()}).status_code == 200
    assert client.get("/f1/").content == b"ok"
    assert manager.api("delete", API + f"keys/{key.pk}").status_code == 204
    assert client.get("/f1/")["Location"] == ADD


# -- transports ---------------------------------------------------------------------------------------------


@mf_settings(
    FALLBACKS={
        "broken": (transports.phone, "tests.transports.explode"),
        "sms": SMS,
        "refusing": (transports.phone, "tests.transports.refuse"),
        "email": EMAIL,
    }
)
def test_a_transport_that_raises_does_not_stop_the_others_and_is_logged(signed_in, user, totp_key, caplog):
    with caplog.at_level(logging.ERROR, logger="multifactor"):
        assert send(signed_in) == ["sms", "email"]
    failures = [r for r in caplog.records if r.name == "multifactor" and "broken" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info and "gateway is down" in str(failures[0].exc_info[1])
    assert last_code("record") == last_code("email")
    event = Event.objects.get(kind="fallback_sent")
    assert event.detail["sent_via"] == ["sms", "email"]
    assert signed_in.api("post", AUTH_API, {"code": last_code()}).status_code == 200


@mf_settings(FALLBACKS={"broken": (transports.phone, "tests.transports.explode")})
def test_when_nothing_could_be_sent_the_user_is_told(signed_in, totp_key):
    r = signed_in.post(FALLBACK_AUTH, {"send": "1"})
    assert r.status_code == 302
    assert any("could not be sent" in m for m in messages_of(r))
    assert signed_in.api("post", SEND_API).status_code == 429  # the cooldown still runs
    FallbackCode.objects.update(sent_at=None)
    assert send(signed_in) == []


@mf_settings(
    FALLBACKS={
        "faulty": (lambda user: 1 / 0, "tests.transports.record_other"),
        "sms": SMS,
    }
)
def test_a_destination_that_raises_is_skipped(signed_in, totp_key, caplog):
    assert signed_in.get(FALLBACK_AUTH).status_code == 200
    assert send(signed_in) == ["sms"]
    assert transports.sent("record_other") == []


@mf_settings(FALLBACKS=TWO)
def test_toggle_fallback_switches_a_transport_off_and_on(user, totp_key):
    key, totp = totp_key
    plain = client_for(user)
    r = plain.post(action_url("toggle_fallback", "sms"))  # managing needs a recent verification (R8)
    assert r.status_code == 302 and not DisabledFallback.objects.exists()
    client = client_for(user, totp, key)
    assert client.post(action_url("toggle_fallback", "sms")).status_code == 302
    assert DisabledFallback.objects.filter(user=user, fallback="sms").exists()
    assert client.get(FALLBACK_AUTH).context["destinations"] == {"email": "alice@example.com"}
    assert send(client) == ["email"]
    assert transports.sent() == [] and len(code_mails()) == 1
    assert client.post(action_url("toggle_fallback", "sms")).status_code == 302
    rewind(user, 61)
    assert send(client) == ["email", "sms"]
    assert len(transports.sent()) == 1
    assert client.post(action_url("toggle_fallback", "pigeon")).status_code == 404


@mf_settings(FALLBACKS=TWO)
def test_all_transports_off_means_nothing_is_sent(user, totp_key):
    key, totp = totp_key
    client = client_for(user, totp, key)
    for name in TWO:
        client.post(action_url("toggle_fallback", name))
    assert send(client) == []
    assert mail.outbox == [] and transports.sent() == []
    assert "FALLBACK" not in [m.type for m in client.get(AUTHENTICATE + "?choose=1").context["methods"]]


# -- the default e-mail transport ----------------------------------------------------------------------------


@override_settings(DEFAULT_FROM_EMAIL="mfa@example.org")
def test_default_email_is_text_and_html_from_default_from_email(signed_in, user, totp_key):
    with mf_settings(HTML_EMAIL=True):
        assert send(signed_in) == ["email"]  # the default FALLBACKS
    [message] = code_mails()
    assert message.from_email == "mfa@example.org" and message.to == ["alice@example.com"]
    code = transports.code_in(message.body)
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html" and code in html and html.lstrip().startswith("<!DOCTYPE html>")
    assert "<" not in message.body
    rewind(user, 61)
    with mf_settings(HTML_EMAIL=False):
        send(signed_in)
    assert code_mails()[-1].alternatives == []
    assert transports.code_in(code_mails()[-1].body)


def test_email_templates_can_be_overridden(signed_in, user, totp_key, tmp_path, settings):
    folder = tmp_path / "multifactor" / "fallback"
    folder.mkdir(parents=True)
    (folder / "email_subject.txt").write_text("Site code\n")
    (folder / "email.txt").write_text("TEXT {{ message }} for {{ user.username }}")
    (folder / "email.html").write_text("<p>HTML {{ message }}</p>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    send(signed_in)
    [message] = [m for m in mail.outbox if m.subject == "Site code"]
    assert message.body.startswith("TEXT Your verification code is ") and message.body.endswith(" for alice")
    assert message.alternatives[0][0].startswith("<p>HTML Your verification code is ")


def test_a_user_without_an_email_address_gets_no_mail(user, totp_key):
    from multifactor.transports import send_email

    user.email = ""
    assert send_email(user, "hello 12345678") is False
    assert mail.outbox == []


def test_the_console_transport_logs_the_message(user, caplog):
    from multifactor.transports import send_console

    with caplog.at_level(logging.WARNING, logger="multifactor"):
        assert send_console(user, "Your verification code is 12345678.")
    assert any("12345678" in r.getMessage() and "alice" in r.getMessage() for r in caplog.records)


def test_the_django_multifactor_0_9_path_of_the_email_transport_still_works(signed_in, totp_key):
    with mf_settings(FALLBACKS={"email": (lambda u: u.email, "multifactor.factors.fallback.send_email")}):
        assert send(signed_in) == ["email"]


# -- FALLBACKS = {} turns it off -------------------------------------------------------------------------


@mf_settings(FALLBACKS={})
def test_no_fallbacks_turns_fallback_off(signed_in, user, totp_key):
    r = signed_in.api("post", SEND_API)
    assert r.status_code == 403 and error_codes(r) == ["factor_not_allowed"]
    r = signed_in.api("post", AUTH_API, {"code": "12345678"})
    assert r.status_code == 403 and error_codes(r) == ["factor_not_allowed"]
    r = signed_in.get(FALLBACK_AUTH)
    assert r.status_code == 302 and r["Location"] == AUTHENTICATE
    for body in ({"send": "1"}, {"otp": "12345678"}):
        r = signed_in.post(FALLBACK_AUTH, body)
        assert r.status_code == 302
    page = signed_in.get(AUTHENTICATE + "?choose=1")
    assert "FALLBACK" not in [m.type for m in page.context["methods"]]
    assert FALLBACK_AUTH not in page.content.decode()
    assert data(signed_in.api("get", API + "status"))["fallbacks"] == []
    assert mail.outbox == [] and not FallbackCode.objects.exists()


# -- never stored in clear (R5) ----------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["django.contrib.sessions.backends.db", SIGNED_COOKIES])
def test_the_code_is_never_stored_in_clear(user, totp_key, engine):
    with override_settings(SESSION_ENGINE=engine), mf_settings(FALLBACKS=TWO):
        client = client_for(user)
        other = client_for(user)
        assert client.post(FALLBACK_AUTH, {"send": "1"}).status_code == 302
        first = last_code()
        assert client.get(FALLBACK_AUTH).status_code == 200
        assert leaks({first}, [client, other]) == []
        stored = row(user)
        assert stored.digest and first not in stored.digest + stored.salt + stored.nonce
        unkeyed = {hashlib.sha256(first.encode()).hexdigest(), hashlib.sha1(first.encode()).hexdigest()}  # noqa: S324
        assert stored.digest not in unkeyed  # a keyed hash: a dump alone cannot test the 10^8 candidates
        assert client.post(FALLBACK_AUTH, {"otp": other_code(first)}).status_code == 400
        rewind(user, 61)
        assert send(client) == ["email", "sms"]
        second = last_code()
        assert client.api("post", AUTH_API, {"code": second}).status_code == 200
        assert client.get("/f1/").content == b"ok"
        assert leaks({first, second}, [client, other]) == []


# -- no enumeration (R13) -------------------------------------------------------------------------------------


def test_send_answers_alike_with_or_without_an_email_address(user, totp_key, django_user_model):
    """Status, shape, redirect and cooldown are the same; only ``sent_via`` (the contract's data) differs."""
    bob = django_user_model.objects.create_user("bob", "", "pw")
    make_totp(bob)
    answers = {}
    for who in (user, bob):
        client = client_for(who)
        first = client.api("post", SEND_API)
        again = client.api("post", SEND_API)
        FallbackCode.objects.filter(user=who).update(sent_at=None)
        page = client.post(FALLBACK_AUTH, {"send": "1"})
        answers[who.username] = (
            first.status_code,
            set(json.loads(first.content)),
            set(data(first)),
            again.status_code,
            error_codes(again),
            page.status_code,
            page["Location"],
        )
    assert answers["alice"] == answers["bob"]
    assert len(code_mails()) == 2  # alice's two


def test_anonymous_users_learn_nothing(client):
    for path in (SEND_API, AUTH_API):
        r = client.api("post", path, {"code": "12345678"})
        assert r.status_code == 401 and error_codes(r) == ["not_authenticated"]
    r = client.post(FALLBACK_AUTH, {"send": "1"})
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")
    assert mail.outbox == []


# -- input ---------------------------------------------------------------------------------------------------


@mf_settings(FALLBACKS=TWO)
def test_malformed_codes_are_refused_and_not_counted(signed_in, user, totp_key):
    send(signed_in)
    for junk in ["", "abcdefgh", "1234567", "123456789", "1234 5678", "-1234567", None, 12345678, ["1"]]:
        r = signed_in.api("post", AUTH_API, {"code": junk})
        assert r.status_code == 400, junk
    for junk in ["", "x" * 200, "12345678" * 3]:
        assert signed_in.post(FALLBACK_AUTH, {"otp": junk}).status_code == 400
    assert row(user).failures == 0
    # Surrounding spaces are forgiven.
    assert signed_in.api("post", AUTH_API, {"code": f" {last_code()} "}).status_code == 200


@mf_settings(FALLBACKS=TWO, FALLBACK_DIGITS=6)
def test_the_number_of_digits_is_a_setting(signed_in, totp_key):
    send(signed_in)
    code = transports.code_in(code_mails()[-1].body, digits=6)
    assert re.fullmatch(r"\d{6}", code)
    assert signed_in.api("post", AUTH_API, {"code": code}).status_code == 200


# -- throttling on every factor (R4) -----------------------------------------------------------------------


class Factor:
    """One factor under attack: ``guess(client, right)`` posts an answer through the API, ``row()`` is what
    counts the failures, ``other`` verifies the same user with a different factor."""

    def __init__(self, name, user):
        from tests.test_recovery import new_set

        self.name, self.user = name, user
        self.key, self.totp = make_totp(user)
        maker = client_for(user, self.totp, self.key)
        self.codes = new_set(maker)
        self.used = 0
        self.pending_seed = None
        if name == "enrolment":
            self.pending_seed = data(maker.api("post", API + "totp/begin"))["secret"]
            self.pending_pk = Key.objects.get(user=user, confirmed=False).pk
            self.client = maker  # enrolling a second app, verified with the first
        else:
            self.client = client_for(user)
        if name == "fallback":
            send(self.client)

    def guess(self, right):
        import pyotp

        from tests.mfa_helpers import wrong_code
        from tests.test_recovery import wrong_code as wrong_recovery_code

        c = self.client
        if self.name == "totp":
            Key.objects.filter(pk=self.key.pk).update(last_step=None)
            code = self.totp.now() if right else wrong_code(self.totp)
            return c.api("post", API + "totp/authenticate", {"code": code})
        if self.name == "enrolment":
            totp = pyotp.TOTP(self.pending_seed)
            return c.api("post", API + "totp/activate", {"code": totp.now() if right else wrong_code(totp)})
        if self.name == "recovery":
            code = self.codes[0] if right else wrong_recovery_code(self.codes)
            return c.api("post", API + "recovery-codes/authenticate", {"code": code})
        code = last_code() if right else other_code(last_code())
        return c.api("post", AUTH_API, {"code": code})

    def row(self):
        if self.name == "totp":
            return Key.objects.get(pk=self.key.pk)
        if self.name == "enrolment":
            return Key.objects.get(pk=self.pending_pk)
        if self.name == "recovery":
            return Key.objects.get(user=self.user, type="RECOVERY")
        return FallbackCode.objects.get(user=self.user)

    def other_factor_works(self):
        """Verify with another factor in the attacked session: TOTP, or a recovery code for TOTP itself."""
        if self.name == "totp":
            r = self.client.api("post", API + "recovery-codes/authenticate", {"code": self.codes[-1]})
        else:
            Key.objects.filter(pk=self.key.pk).update(last_step=None)
            r = self.client.api("post", API + "totp/authenticate", {"code": self.totp.now()})
        assert r.status_code == 200, (self.name, r.content)
        assert self.client.get("/f1/").content == b"ok"


FACTOR_NAMES = ["totp", "enrolment", "recovery", "fallback"]


@pytest.mark.parametrize("name", FACTOR_NAMES)
@mf_settings(FALLBACKS=TWO, THROTTLE_FREE_FAILURES=1, THROTTLE_BASE_DELAY=60, THROTTLE_MAX_FAILURES=20)
def test_every_factor_is_delayed_with_429_and_retry_after(user, name):
    factor = Factor(name, user)
    assert factor.guess(right=False).status_code == 400
    assert factor.guess(right=False).status_code == 400
    r = factor.guess(right=True)
    assert r.status_code == 429 and error_codes(r) == ["throttled"]
    assert 55 <= int(r["Retry-After"]) <= 60
    assert factor.row().failures == 2  # the refused guess was not even counted
    # A success after the delay resets the count.
    type(factor.row()).objects.filter(pk=factor.row().pk).update(throttled_until=timezone.now())
    assert factor.guess(right=True).status_code in (200, 201)
    assert factor.row().failures == 0


@pytest.mark.parametrize("name", FACTOR_NAMES)
@mf_settings(FALLBACKS=TWO, THROTTLE_FREE_FAILURES=100, THROTTLE_MAX_FAILURES=5)
def test_every_factor_locks_at_the_limit_without_logging_out_or_locking_others(user, name):
    factor = Factor(name, user)
    for n in range(1, 5):
        r = factor.guess(right=False)
        assert r.status_code == 400 and error_codes(r) == ["invalid_code"]
        assert factor.row().failures == n and factor.row().locked_at is None
    r = factor.guess(right=False)
    assert r.status_code == 403 and error_codes(r) == ["key_locked"]
    locked = factor.row()
    assert locked.failures == 5 and locked.locked_at is not None
    r = factor.guess(right=True)  # the right answer is refused now
    assert r.status_code in (400, 403) and error_codes(r)[0] in ("key_locked", "no_key")
    assert factor.row().failures == 5
    if name != "enrolment":
        assert factor.client.get("/f1/")["Location"] == AUTHENTICATE
    # Never logged out.
    assert factor.client.get("/plain/").content == b"plain"
    assert "_auth_user_id" in factor.client.session
    assert factor.client.api("get", API + "status").status_code == 200
    # The other factors are untouched and still work.
    others = Key.objects.filter(user=user, confirmed=True)
    if isinstance(locked, Key):
        others = others.exclude(pk=locked.pk)
    assert others.count() == (2 if name in ("fallback", "enrolment") else 1)
    assert all(k.enabled and k.locked_at is None and k.failures == 0 for k in others)
    factor.other_factor_works()


def test_a_fallback_code_does_not_open_the_window_for_managing_keys(user):
    """A code sent by e-mail proves a mailbox, not a key: it must not let its holder enrol a key of their own."""
    from multifactor.session import Verification
    from tests.conftest import CsrfClient, edit_mfa_state, make_totp

    make_totp(user)
    client = CsrfClient()
    client.force_login(user)

    def fallback_verified(state):
        import time

        state.verifications = [Verification(None, "FALLBACK", time.time(), time.time() + 3600)]

    edit_mfa_state(client, fallback_verified)
    assert client.get("/f1/").content == b"ok"  # it stands in for the key on protected pages
    response = client.api("post", "/multifactor/api/v1/totp/begin")
    assert response.status_code == 403 and response.json()["errors"][0]["code"] == "reauthentication_required"
