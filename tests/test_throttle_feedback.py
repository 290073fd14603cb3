"""What people are told when they get a code wrong (issue 14, item 7): how long to wait, in words that count
(ngettext: "1 second", "2 seconds"), how many wrong answers are left before the key locks (also in the JSON
error as ``attempts_left``), and what to do once it is locked. Every answer is in the audit trail, those
refused during a delay (429) too. And the fallback's "switched off" case, which used to start a cooldown for a
code that was never sent. All through the test client, CSRF enforced."""

import json

import pytest
from django.utils import timezone

from multifactor.models import DisabledFallback, Event, FallbackCode, Key
from multifactor.throttle import attempts_left
from tests import transports
from tests.conftest import CsrfClient, make_totp, verify_totp
from tests.mfa_helpers import API, BASE, data, mf_settings

pytestmark = pytest.mark.django_db

TOTP_API = API + "totp/authenticate"
RECOVERY_API = API + "recovery-codes/authenticate"
TOTP_PAGE = BASE + "totp/auth/"
FALLBACK_PAGE = BASE + "fallback/auth/"
SEND_API = API + "fallback/send"
ATTEMPTS = ("verification_failed", "verification_throttled")

# 3 free failures, then a delay of a minute (deterministic: no test is fast enough to outlive it), 6 lock.
STRICT = {"THROTTLE_FREE_FAILURES": 3, "THROTTLE_BASE_DELAY": 60, "THROTTLE_MAX_DELAY": 600, "THROTTLE_MAX_FAILURES": 6}


def wrong(totp):
    return f"{(int(totp.now()) + 1) % 1_000_000:06d}"


def error(response):
    body = json.loads(response.content)
    assert set(body) <= {"errors", "meta"}, body
    (item,) = body["errors"]
    return item


def messages_of(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


def end_delay(user):
    """The passing of the delay, without a sleep."""
    Key.objects.filter(user=user).update(throttled_until=timezone.now() - timezone.timedelta(seconds=1))


@pytest.fixture
def totp_user(user):
    key, totp = make_totp(user)
    client = CsrfClient()
    client.force_login(user)
    return client, key, totp


@mf_settings(**STRICT)
def test_wrong_codes_count_down_to_the_lock_and_say_what_to_do(user, totp_user):
    client, key, totp = totp_user
    seen = []
    for _ in range(3):  # free failures: plain "not valid" while many are left, the count once few are
        r = client.api("post", TOTP_API, {"code": wrong(totp)})
        assert r.status_code == 400 and "Retry-After" not in r
        seen.append((error(r)["attempts_left"], error(r)["message"]))
    assert seen == [
        (5, "That code is not valid."),
        (4, "That code is not valid."),
        (3, "That code is not valid. 3 more wrong answers lock this key."),
    ]
    assert error(r)["code"] == "invalid_code" and error(r)["param"] == "code"

    r = client.api("post", TOTP_API, {"code": wrong(totp)})  # the first delay
    assert (r.status_code, error(r)["attempts_left"]) == (400, 2)
    assert error(r)["message"] == (
        "That code is not valid. 2 more wrong answers lock this key. Wait 60 seconds before the next try."
    )

    r = client.api("post", TOTP_API, {"code": totp.now()})  # even the right code is not checked now
    assert r.status_code == 429 and r["Retry-After"] == "60"
    assert error(r) == {
        "code": "throttled",
        "message": "Too many wrong answers. Try again in 60 seconds. 2 more wrong answers lock this key.",
        "attempts_left": 2,
    }

    end_delay(user)
    r = client.api("post", TOTP_API, {"code": wrong(totp)})
    assert error(r)["attempts_left"] == 1
    assert error(r)["message"].startswith("That code is not valid. 1 more wrong answer locks this key. Wait ")

    end_delay(user)
    r = client.api("post", TOTP_API, {"code": wrong(totp)})
    assert r.status_code == 403
    item = error(r)
    assert (item["code"], item["attempts_left"]) == ("key_locked", 0)
    assert "this key is locked" in item["message"] and "Verify with another key or a recovery code" in item["message"]
    assert "Ask an administrator to reset your multi-factor authentication" in item["message"]
    key.refresh_from_db()
    assert key.locked_at is not None and not key.enabled


@mf_settings(**STRICT)
def test_one_second_is_singular(user, totp_user):
    client, key, totp = totp_user
    for _ in range(4):
        client.api("post", TOTP_API, {"code": wrong(totp)})
    Key.objects.filter(pk=key.pk).update(throttled_until=timezone.now() + timezone.timedelta(milliseconds=500))
    r = client.api("post", TOTP_API, {"code": wrong(totp)})
    assert r.status_code == 429 and r["Retry-After"] == "1"
    assert error(r)["message"].startswith("Too many wrong answers. Try again in 1 second. ")


@mf_settings(**STRICT)
def test_the_html_page_says_the_same(user, totp_user):
    client, key, totp = totp_user
    for _ in range(3):
        page = client.post(TOTP_PAGE, {"answer": wrong(totp)})
    assert page.status_code == 400
    assert "3 more wrong answers lock this key." in page.content.decode()
    client.post(TOTP_PAGE, {"answer": wrong(totp)})
    refused = client.post(TOTP_PAGE, {"answer": totp.now()})
    shown = refused.content.decode() + " ".join(messages_of(refused))
    assert "Try again in 60 seconds. 2 more wrong answers lock this key." in shown


def test_every_answer_is_in_the_audit_trail_refused_ones_too(user, totp_user):
    """The issue's run, at the default settings: 6 wrong codes in a row, the last two refused during the delay
    (429). Each one is an event; the refused ones say so, with the delay that refused them."""
    client, key, totp = totp_user
    with mf_settings(THROTTLE_BASE_DELAY=60):
        statuses = [client.api("post", TOTP_API, {"code": wrong(totp)}).status_code for _ in range(6)]
    assert statuses == [400, 400, 400, 400, 429, 429]
    events = list(Event.objects.filter(user=user, kind__in=ATTEMPTS).order_by("pk"))
    assert [e.kind for e in events] == ["verification_failed"] * 4 + ["verification_throttled"] * 2
    refused = events[-1]
    assert (refused.key_id, refused.key_type, refused.username) == (key.pk, "TOTP", user.username)
    assert refused.ip == "127.0.0.1" and 0 < refused.detail["retry_after"] <= 60 and refused.detail["failures"] == 4
    assert str(refused.get_kind_display()) == "Verification refused: too many wrong answers"
    key.refresh_from_db()
    assert key.failures == 4  # a refused answer is no failure: it was not checked


def test_refused_recovery_codes_are_recorded_too(user, totp_user):
    client, key, totp = totp_user
    assert verify_totp(client, totp, key).status_code == 302
    r = client.api("post", API + "recovery-codes")
    assert r.status_code == 201, r.content
    recovery = Key.objects.get(user=user, type="RECOVERY")
    Key.objects.filter(pk=recovery.pk).update(
        failures=4, throttled_until=timezone.now() + timezone.timedelta(seconds=30)
    )
    r = client.api("post", RECOVERY_API, {"code": data(r)["codes"][0]})
    assert r.status_code == 429 and error(r)["attempts_left"] == attempts_left(4)
    (event,) = Event.objects.filter(kind="verification_throttled")
    assert (event.key_id, event.key_type, event.detail["failures"]) == (recovery.pk, "RECOVERY", 4)


def test_admin_can_filter_the_refused_answers(user, totp_user, admin_user):
    client, key, totp = totp_user
    with mf_settings(THROTTLE_BASE_DELAY=60):
        for _ in range(5):
            client.api("post", TOTP_API, {"code": wrong(totp)})
    admin = CsrfClient()
    admin.force_login(admin_user)
    page = admin.get("/admin/multifactor/event/", {"kind__exact": "verification_throttled"})
    assert page.status_code == 200
    assert [e.kind for e in page.context["cl"].result_list] == ["verification_throttled"]


# -- fallback codes --------------------------------------------------------------------------------------

EMAIL = (lambda user: user.email, "multifactor.transports.send_email")
SMS = (transports.phone, "tests.transports.record")


@pytest.fixture
def verified_client(totp_user):
    client, key, totp = totp_user
    assert verify_totp(client, totp, key).status_code == 302
    return client


@mf_settings(FALLBACKS={"email": EMAIL})
def test_a_switched_off_fallback_sends_nothing_and_starts_no_cooldown(user, verified_client, mailoutbox):
    client = verified_client
    DisabledFallback.objects.create(user=user, fallback="email")
    mailoutbox.clear()
    for _ in range(2):  # the second time too: no "a code was sent moments ago" for a code never sent
        r = client.post(FALLBACK_PAGE, {"send": "1"}, follow=True)
        shown = messages_of(r)
        assert r.redirect_chain == [(FALLBACK_PAGE, 302)]
        assert shown[-1:] == [
            "No fallback is switched on for your account, so no code was sent. Switch one on in your security "
            "settings, or verify with a key or a recovery code."
        ]
        assert not any("moments ago" in m for m in shown)
    assert mailoutbox == [] and not FallbackCode.objects.filter(user=user, sent_at__isnull=False).exists()
    assert not Event.objects.filter(kind="fallback_sent").exists()

    DisabledFallback.objects.filter(user=user).delete()  # switched on again: it sends at once
    r = client.post(FALLBACK_PAGE, {"send": "1"}, follow=True)
    assert any(m.startswith("A code was sent") for m in messages_of(r)) and len(mailoutbox) == 1


@mf_settings(FALLBACKS={"email": EMAIL})
def test_the_api_answers_alike_when_switched_off_and_never_says_sent(user, verified_client, mailoutbox):
    """The API keeps its shape (``sent_via`` empty, the usual cooldown: the same answers with or without a
    destination, see test_fallback.py), and its cooldown does not claim that a code was sent."""
    DisabledFallback.objects.create(user=user, fallback="email")
    mailoutbox.clear()
    r = verified_client.api("post", SEND_API)
    assert r.status_code == 200 and data(r) == {"sent_via": []}
    again = verified_client.api("post", SEND_API)
    assert again.status_code == 429 and error(again)["code"] == "cooldown"
    assert "sent" not in error(again)["message"] and error(again)["message"].startswith("You asked for a code")
    assert mailoutbox == []


@pytest.mark.parametrize(("cooldown", "words"), [(1, "Wait 1 second before"), (60, "Wait 60 seconds before")])
def test_the_cooldown_counts_in_words(user, verified_client, cooldown, words):
    transports.clear()
    with mf_settings(FALLBACKS={"sms": SMS}, FALLBACK_COOLDOWN=cooldown):
        assert verified_client.api("post", SEND_API).status_code == 200
        r = verified_client.api("post", SEND_API)
    transports.clear()
    assert r.status_code == 429 and r["Retry-After"] == str(cooldown)
    assert error(r)["code"] == "cooldown"
    assert error(r)["message"] == f"You asked for a code moments ago. {words} asking again."


@pytest.mark.parametrize(("ttl", "words"), [(60, "valid for 1 minute."), (600, "valid for 10 minutes.")])
def test_the_code_message_counts_minutes_in_words(user, verified_client, ttl, words):
    transports.clear()
    with mf_settings(FALLBACKS={"sms": SMS}, FALLBACK_TTL=ttl):
        assert verified_client.api("post", SEND_API).status_code == 200
    ((_transport, _username, message),) = transports.sent("record")
    transports.clear()
    assert message.endswith(words)
