"""A user with several authenticator apps (SECURITY.md R4, R17; issue 13 part 1).

A right code of one app is no failed guess on another; a code that no app accepts is one failed guess of the
user, counted on every app, so THROTTLE_MAX_FAILURES wrong guesses lock them all however many apps there
are; a delayed or locked app checks nothing and never answers for another. Real pyotp, real requests; the
races run on PostgreSQL (or MariaDB) with one thread and connection per client.
"""

import time

import pyotp
import pytest
from django.utils import timezone

from multifactor import signals
from multifactor.models import Event, Key
from tests.conftest import CsrfClient, make_totp, verify_totp
from tests.mfa_helpers import API, TOTP_AUTH, data, error_codes, mf_settings, needs_concurrent_db, race

pytestmark = pytest.mark.django_db

AUTH = API + "totp/authenticate"


def wrong_for(*totps, now=None) -> str:
    """A 6-digit code that no step near now of any of these apps accepts."""
    now = time.time() if now is None else now
    near = {t.at(now + 30 * k) for t in totps for k in range(-3, 4)}
    return next(c for c in ("000000", "111111", "123456", "654321", "999999", "424242", "135790") if c not in near)


def apps(user, n):
    """``n`` confirmed TOTP keys of ``user``, created in this order: [(key, pyotp.TOTP)]."""
    return [make_totp(user, f"app {i}") for i in range(n)]


def rewind_delays(user):
    """Every delay of the user's keys has passed (what a sleep would do); the counts stay as they are."""
    Key.objects.filter(user=user, throttled_until__isnull=False).update(
        throttled_until=timezone.now() - timezone.timedelta(seconds=1)
    )


def state(key):
    key.refresh_from_db()
    return key.failures, key.throttled_until, key.enabled, key.locked_at


def failed_events(user):
    return Event.objects.filter(user=user, kind="verification_failed").count()


# -- a right code of one app is no failure of another ------------------------------------------------------


def test_25_sign_ins_with_app_b_count_nothing_on_app_a(signed_in, user):
    """The review's reproduction: with the default limit (20) the 20th sign-in with B used to lock A."""
    (key_a, totp_a), (key_b, totp_b) = apps(user, 2)
    for i in range(25):
        r = verify_totp(signed_in, totp_b, key_b)  # a new time step for B each time
        assert r.status_code == 302, (i, r.content)
        assert state(key_a) == (0, None, True, None), i
    assert failed_events(user) == 0
    assert not Event.objects.filter(user=user, kind="key_locked").exists()
    key_b.refresh_from_db()
    assert key_b.failures == 0 and key_b.last_used_at is not None
    # A verifies at once: no delay, no lock.
    r = signed_in.api("post", AUTH, {"code": totp_a.now()})
    assert r.status_code == 200 and data(r)["verified"] is True, r.content
    key_a.refresh_from_db()
    assert key_a.failures == 0 and key_a.last_step is not None
    assert Event.objects.filter(user=user, kind="key_used").count() == 26
    assert failed_events(user) == 0


def test_after_sign_ins_with_b_a_wrong_code_is_one_plain_failure(signed_in, user):
    """Not A's 429: A earned no delay from B's sign-ins, so a wrong code is checked and counted once."""
    (key_a, totp_a), (key_b, totp_b) = apps(user, 2)
    with mf_settings(THROTTLE_FREE_FAILURES=1, THROTTLE_BASE_DELAY=60):
        for _ in range(3):
            assert verify_totp(signed_in, totp_b, key_b).status_code == 302
        r = signed_in.api("post", AUTH, {"code": wrong_for(totp_a, totp_b)})
    assert r.status_code == 400 and error_codes(r) == ["invalid_code"]
    assert state(key_a)[:2] == (1, None) and state(key_b)[:2] == (1, None)
    assert failed_events(user) == 1


def test_a_wrong_code_fires_one_event_naming_every_app_tried(signed_in, user):
    (key_a, totp_a), (key_b, totp_b), (key_c, totp_c) = apps(user, 3)
    fired = []

    def receiver(sender, **kwargs):
        fired.append(kwargs)

    signals.verification_failed.connect(receiver, weak=False, dispatch_uid="tests.several_apps")
    try:
        r = signed_in.api("post", AUTH, {"code": wrong_for(totp_a, totp_b, totp_c)})
    finally:
        signals.verification_failed.disconnect(dispatch_uid="tests.several_apps")
    assert r.status_code == 400
    [sent] = fired
    assert sent["key"] is None and sent["type"] == "TOTP" and sent["failures"] == 1
    assert sent["keys"] == sorted([key_a.pk, key_b.pk, key_c.pk])
    event = Event.objects.get(user=user, kind="verification_failed")
    assert event.key_id is None and event.key_type == "TOTP" and event.detail["keys"] == sent["keys"]


# -- the per-user cap ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 5])
def test_at_most_max_failures_wrong_guesses_in_total_before_every_app_refuses(signed_in, user, n):
    keys = apps(user, n)
    totps = [t for _k, t in keys]
    limit = 20
    with mf_settings(THROTTLE_FREE_FAILURES=3, THROTTLE_BASE_DELAY=1, THROTTLE_MAX_FAILURES=limit):
        checked = 0
        while True:
            rewind_delays(user)  # the attacker waits out every delay
            r = signed_in.api("post", AUTH, {"code": wrong_for(*totps)})
            checked += 1
            if r.status_code == 403:
                break
            assert r.status_code == 400 and error_codes(r) == ["invalid_code"], checked
            assert checked < n * limit
        assert error_codes(r) == ["key_locked"]
        assert checked == limit  # the 20th wrong guess locked every app at once, not one app in turn
        for key, _totp in keys:
            failures, _until, enabled, locked_at = state(key)
            assert failures == limit and enabled is False and locked_at is not None
        # Every app refuses its right code, by page and by API, and nothing more is counted.
        rewind_delays(user)
        for key, totp in keys:
            r = signed_in.api("post", AUTH, {"code": totp.now()})
            assert r.status_code == 403 and error_codes(r) == ["key_locked"]
            assert signed_in.post(TOTP_AUTH, {"answer": totp.now()}).status_code in (400, 403)
            key.refresh_from_db()
            assert key.last_step is None and key.failures == limit
    assert failed_events(user) == limit  # one event per guess, not one per app
    assert Event.objects.filter(user=user, kind="key_locked").count() == n
    assert signed_in.get("/plain/").content == b"plain"  # still signed in


def test_a_success_in_between_resets_the_users_count(signed_in, user):
    """Consecutive failures, counted per user: a right code of any app starts the count again on every app."""
    (key_a, totp_a), (key_b, totp_b) = apps(user, 2)
    with mf_settings(THROTTLE_FREE_FAILURES=10, THROTTLE_MAX_FAILURES=3):
        for _ in range(2):
            assert signed_in.api("post", AUTH, {"code": wrong_for(totp_a, totp_b)}).status_code == 400
        assert signed_in.api("post", AUTH, {"code": totp_b.now()}).status_code == 200
        assert state(key_a)[0] == state(key_b)[0] == 0
        for _ in range(2):
            assert signed_in.api("post", AUTH, {"code": wrong_for(totp_a, totp_b)}).status_code == 400
        assert state(key_a)[2:] == (True, None) and state(key_b)[2:] == (True, None)


# -- delays: a delayed app neither accepts a code nor answers for another ---------------------------------


def test_a_wrong_code_while_one_app_is_delayed_is_not_answered_with_its_429(signed_in, user):
    """A earned a delay on its own; B, enrolled after, has none. A wrong code is checked by B and counted;
    A's code is not checked by A while it waits; B's right code works and resets the user's count."""
    key_a, totp_a = make_totp(user, "A")
    with mf_settings(THROTTLE_FREE_FAILURES=2, THROTTLE_BASE_DELAY=60, THROTTLE_MAX_FAILURES=20):
        for _ in range(3):
            assert signed_in.api("post", AUTH, {"code": wrong_for(totp_a)}).status_code == 400
        r = signed_in.api("post", AUTH, {"code": totp_a.now()})
        assert r.status_code == 429 and error_codes(r) == ["throttled"]  # A alone: the user's cap
        key_b, totp_b = make_totp(user, "B")
        r = signed_in.api("post", AUTH, {"code": wrong_for(totp_a, totp_b)})
        assert r.status_code == 400 and error_codes(r) == ["invalid_code"], r.content
        assert state(key_a)[0] == 4 and state(key_b)[0] == 1  # one guess, counted on both
        # A's right code: A is waiting, so only B checks it, and B refuses it.
        r = signed_in.api("post", AUTH, {"code": totp_a.now()})
        assert r.status_code == 400 and error_codes(r) == ["invalid_code"]
        key_a.refresh_from_db()
        assert key_a.last_step is None and key_a.failures == 5 and state(key_b)[:2] == (2, None)
        # B's right code works while A waits, and the count (the user's) starts again on both.
        r = signed_in.api("post", AUTH, {"code": totp_b.now()})
        assert r.status_code == 200, r.content
        assert state(key_a)[:2] == (0, None) and state(key_b)[:2] == (0, None)


def test_when_every_app_is_delayed_the_per_user_cap_answers_429(signed_in, user):
    (key_a, totp_a), (key_b, totp_b) = apps(user, 2)
    with mf_settings(THROTTLE_FREE_FAILURES=2, THROTTLE_BASE_DELAY=60, THROTTLE_MAX_FAILURES=20):
        for _ in range(3):
            r = signed_in.api("post", AUTH, {"code": wrong_for(totp_a, totp_b)})
            assert r.status_code == 400
        assert state(key_a)[0] == state(key_b)[0] == 3
        for code in (wrong_for(totp_a, totp_b), totp_a.now(), totp_b.now()):
            r = signed_in.api("post", AUTH, {"code": code})
            assert r.status_code == 429 and error_codes(r) == ["throttled"]
            assert 55 <= int(r["Retry-After"]) <= 60
        r = signed_in.post(TOTP_AUTH, {"answer": totp_b.now()})
        assert r.status_code == 429
        for key in (key_a, key_b):  # not checked, not counted
            key.refresh_from_db()
            assert key.failures == 3 and key.last_step is None
        rewind_delays(user)
        assert signed_in.post(TOTP_AUTH, {"answer": totp_b.now()}).status_code == 302
        assert state(key_a)[:2] == (0, None)


def test_a_locked_app_does_not_answer_for_the_others(signed_in, user):
    (key_a, totp_a), (key_b, totp_b) = apps(user, 2)
    Key.objects.filter(pk=key_a.pk).update(failures=20)  # A was at the limit (e.g. data from before)
    with mf_settings(THROTTLE_FREE_FAILURES=100, THROTTLE_MAX_FAILURES=20):
        r = signed_in.api("post", AUTH, {"code": wrong_for(totp_a, totp_b)})
        assert r.status_code == 400 and error_codes(r) == ["invalid_code"]  # B is left: not A's key_locked
        assert state(key_a)[2] is False and state(key_b)[:3] == (1, None, True)
        assert signed_in.api("post", AUTH, {"code": totp_a.now()}).status_code == 400
        assert signed_in.api("post", AUTH, {"code": totp_b.now()}).status_code == 200


# -- the enrolment check -----------------------------------------------------------------------------------


def test_an_enrolment_code_check_counts_only_on_the_pending_key(signed_in, user):
    key_a, totp_a = make_totp(user, "A")
    assert verify_totp(signed_in, totp_a).status_code == 302
    seed = data(signed_in.api("post", API + "totp/begin"))["secret"]
    pending = Key.objects.get(user=user, confirmed=False)
    # A's own code is a wrong code for the new seed: counted on the pending key, never on A.
    a_code = totp_a.at(time.time() + 30)
    if a_code in {pyotp.TOTP(seed).at(time.time() + 30 * k) for k in range(-2, 3)}:
        pytest.skip("A's code happens to be one of the new seed's codes")
    r = signed_in.api("post", API + "totp/activate", {"code": a_code})
    assert r.status_code == 400
    pending.refresh_from_db()
    assert pending.failures == 1 and state(key_a)[:2] == (0, None)
    r = signed_in.api("post", API + "totp/activate", {"code": pyotp.TOTP(seed).now(), "name": "B"})
    assert r.status_code == 201, r.content
    assert state(key_a)[:2] == (0, None)


# -- races (PostgreSQL, MariaDB) ------------------------------------------------------------------------------


THREADS = 20


def _outcome(response):
    return "ok" if response.status_code == 200 else response.json()["errors"][0]["code"]


def _clients(user, n=THREADS):
    clients = []
    for _ in range(n):
        client = CsrfClient()
        client.force_login(user)
        clients.append(client)
    return clients


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@needs_concurrent_db
@mf_settings(THROTTLE_FREE_FAILURES=1000, THROTTLE_MAX_FAILURES=100)
def test_200_parallel_wrong_guesses_on_3_apps_are_capped_at_the_limit_in_total(user):
    keys = apps(user, 3)
    wrong = wrong_for(*(t for _k, t in keys))

    def work(client):
        return [_outcome(client.api("post", AUTH, {"code": wrong})) for _ in range(10)]

    results, elapsed = race(_clients(user), work)
    print(f"\n{THREADS * 10} parallel wrong codes on 3 apps: {elapsed:.2f} s")
    assert len(results) == THREADS * 10
    assert results.count("invalid_code") == 99  # the 100th locked all three; none was counted past it
    assert results.count("key_locked") == 101
    for key, _totp in keys:
        failures, _until, enabled, locked_at = state(key)
        assert failures == 100 and enabled is False and locked_at is not None
    assert failed_events(user) == 100
    r = _clients(user, 1)[0].api("post", AUTH, {"code": keys[1][1].now()})
    assert r.status_code == 403 and error_codes(r) == ["key_locked"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@needs_concurrent_db
@mf_settings(THROTTLE_FREE_FAILURES=3, THROTTLE_BASE_DELAY=60, THROTTLE_MAX_FAILURES=10)
def test_parallel_wrong_guesses_on_3_apps_with_a_delay_never_pass_it(user):
    keys = apps(user, 3)
    wrong = wrong_for(*(t for _k, t in keys))

    def work(client):
        return [_outcome(client.api("post", AUTH, {"code": wrong})) for _ in range(5)]

    results, _elapsed = race(_clients(user), work)
    assert results.count("invalid_code") == 4  # 3 free, the 4th delays every app by 60 s
    assert results.count("throttled") == THREADS * 5 - 4
    assert [state(key)[0] for key, _t in keys] == [4, 4, 4]
    r = _clients(user, 1)[0].api("post", AUTH, {"code": keys[2][1].now()})  # a right code waits too
    assert r.status_code == 429 and int(r["Retry-After"]) > 50
