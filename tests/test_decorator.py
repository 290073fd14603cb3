"""``multifactor_protected`` and ``MultifactorRequiredMixin``: the contract's ten rules, in order, through real
requests (tests/views.py holds the protected views), then async views, class-based views, where a challenge
returns to, and the JSON answer."""

import dataclasses
import time

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.test import AsyncClient, override_settings

from multifactor import session
from multifactor.models import Key
from tests.conftest import (
    CsrfClient,
    edit_mfa_state,
    make_totp,
    mfa_state,
    verify_totp,
)

pytestmark = pytest.mark.django_db

AUTHENTICATE = "/multifactor/authenticate/"
ADD = "/multifactor/add/"
HOME = "/multifactor/"


def assert_challenged(response, to=AUTHENTICATE):
    assert response.status_code == 302, (response.status_code, response.content[:200])
    assert response["Location"] == to


def assert_runs(response, body=b"ok"):
    assert response.status_code == 200, (response.status_code, response.get("Location"))
    assert response.content == body


def shift(client, **changes):
    """Move every verification in the client's session (e.g. ``verified_at=-61`` seconds)."""

    def change(state):
        state.verifications = [
            dataclasses.replace(v, **{name: getattr(v, name) + delta for name, delta in changes.items()})
            for v in state.verifications
        ]

    return edit_mfa_state(client, change)


def add_verification(client, key_id, type_, at=None):
    """Put a verification into the client's session through the session store (a fallback code's, for
    instance, whose factor has no page yet)."""
    now = time.time() if at is None else at

    def change(state):
        state.verifications.append(session.Verification(key_id, type_, now, now + 3 * 3600))

    return edit_mfa_state(client, change)


def messages_of(client):
    return client.get("/messages/").json()["messages"]


# -- Rule 1: anonymous users pass ------------------------------------------------------------------------


def test_rule1_anonymous_user_runs_the_view(client):
    assert_runs(client.get("/open/"))
    assert_runs(client.get("/async/"), b"async ok")  # protected with factors=1 and no login_required


def test_rule1_anonymous_user_with_login_required_goes_to_login(client):
    response = client.get("/f1/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# -- Rule 2: BYPASS --------------------------------------------------------------------------------------


def test_rule2_bypass_runs_the_view_and_is_read_lazily(signed_in, totp_key, settings):
    headers = {"X-Bypass-MFA": "yes"}
    assert_challenged(signed_in.get("/f1/", headers=headers))  # not configured yet
    with override_settings(MULTIFACTOR={**settings.MULTIFACTOR, "BYPASS": "tests.views.bypass"}):
        assert_runs(signed_in.get("/f1/", headers=headers))
        assert_runs(signed_in.get("/f2/", headers=headers))
        assert_challenged(signed_in.get("/f1/"))  # the bypass function said no
    assert_challenged(signed_in.get("/f1/", headers=headers))  # the override is gone


def test_rule2_bypass_also_skips_enrolment(signed_in, settings):
    with override_settings(MULTIFACTOR={**settings.MULTIFACTOR, "BYPASS": "tests.views.bypass"}):
        assert_runs(signed_in.get("/f1/", headers={"X-Bypass-MFA": "yes"}))
        assert_challenged(signed_in.get("/f1/"), ADD)


# -- Rule 3: user_filter ---------------------------------------------------------------------------------


def test_rule3_user_filter_dict_matching_user_is_challenged(client, staff):
    make_totp(staff)
    client.force_login(staff)
    assert_challenged(client.get("/filter-dict/"))


def test_rule3_user_filter_dict_other_user_runs_without_mfa(signed_in, totp_key):
    assert_runs(signed_in.get("/filter-dict/"))  # alice is not staff: no MFA check at all
    assert_challenged(signed_in.get("/f1/"))  # while the same user is challenged elsewhere


def test_rule3_user_filter_callable_matching_user_is_challenged(client, staff):
    make_totp(staff)
    client.force_login(staff)
    assert_challenged(client.get("/filter-fn/"))  # only_named: usernames starting with "staff"


def test_rule3_user_filter_callable_other_user_runs_without_mfa(signed_in, totp_key):
    assert_runs(signed_in.get("/filter-fn/"))


def test_rule3_user_filter_no_match_skips_enrolment_too(signed_in):
    assert_runs(signed_in.get("/filter-dict/"))
    assert_runs(signed_in.get("/filter-fn/"))
    assert_challenged(signed_in.get("/f1/"), ADD)


# -- Rule 4: active verifications ------------------------------------------------------------------------


def test_rule4_recheck_expiry_drawn_within_bounds_per_verification(signed_in, totp_key, settings):
    key, totp = totp_key
    with override_settings(MULTIFACTOR={**settings.MULTIFACTOR, "RECHECK_MIN": 100, "RECHECK_MAX": 200}):
        lifetimes = []
        for _ in range(12):
            assert verify_totp(signed_in, totp, key).status_code == 302
            (verification,) = mfa_state(signed_in).verifications
            lifetimes.append(verification.expires_at - verification.verified_at)
        assert all(100 <= t <= 200 for t in lifetimes), lifetimes
        assert len(set(lifetimes)) > 1, "each verification draws its own expiry"
        draws = [session.draw_expiry(1000.0) - 1000.0 for _ in range(5000)]
        assert min(draws) >= 100 and max(draws) <= 200
        assert min(draws) < 110 and max(draws) > 190, "the draw spans the whole range"


def test_rule4_default_recheck_expiry_is_three_to_six_hours(verified):
    (verification,) = mfa_state(verified).verifications
    assert 3 * 3600 <= verification.expires_at - verification.verified_at <= 6 * 3600


def test_rule4_recheck_false_never_expires(signed_in, totp_key, settings):
    key, totp = totp_key
    with override_settings(MULTIFACTOR={**settings.MULTIFACTOR, "RECHECK": False}):
        verify_totp(signed_in, totp)
        (verification,) = mfa_state(signed_in).verifications
        assert verification.expires_at is None
        shift(signed_in, verified_at=-30 * 86400)
        assert_runs(signed_in.get("/f1/"))


def test_rule4_expired_verification_is_not_active(verified):
    assert_runs(verified.get("/f1/"))
    state = mfa_state(verified)
    (verification,) = state.verifications
    assert verification.active(time.time())
    # Time passes: the expiry is now one second ago.
    shift(verified, expires_at=-(verification.expires_at - time.time()) - 1)
    assert not mfa_state(verified).active()
    assert_challenged(verified.get("/f1/"))
    assert_challenged(verified.get("/f0/"))  # keys and no active verification: rule 6, whatever `factors`


def test_rule4_verification_shortly_before_expiry_is_active(verified):
    (verification,) = mfa_state(verified).verifications
    shift(verified, expires_at=-(verification.expires_at - time.time()) + 5)
    assert_runs(verified.get("/f1/"))


def two_keys_verified_with_first(client, user):
    first, totp1 = make_totp(user, "first")
    second, _totp2 = make_totp(user, "second")
    client.force_login(user)
    assert verify_totp(client, totp1).status_code == 302
    assert_runs(client.get("/f1/"))
    return first, second


def test_rule4_disabling_key_on_home_page_ends_its_verification(client, user):
    first, second = two_keys_verified_with_first(client, user)
    response = client.post(f"/multifactor/toggle_factor:{first.pk}/")
    assert response.status_code == 302
    assert not Key.objects.get(pk=first.pk).enabled
    assert_challenged(client.get("/f1/"))  # the user still has an enabled key, but no verification


def test_rule4_deleting_key_on_home_page_ends_its_verification(client, user):
    first, second = two_keys_verified_with_first(client, user)
    assert client.post(f"/multifactor/delete_factor:{first.pk}/").status_code == 302
    assert not Key.objects.filter(pk=first.pk).exists()
    assert_challenged(client.get("/f1/"))


def test_rule4_disabling_key_in_one_session_ends_it_in_another(user):
    laptop, phone = CsrfClient(), CsrfClient()
    first, totp1 = make_totp(user, "first")
    make_totp(user, "second")
    for c in (laptop, phone):
        c.force_login(user)
        assert verify_totp(c, totp1, first).status_code == 302
        assert_runs(c.get("/f1/"))
    assert laptop.post(f"/multifactor/toggle_factor:{first.pk}/").status_code == 302
    assert_challenged(phone.get("/f1/"))
    assert_challenged(laptop.get("/f1/"))


def test_rule4_deleting_key_in_one_session_ends_it_in_another(user):
    laptop, phone = CsrfClient(), CsrfClient()
    first, totp1 = make_totp(user, "first")
    make_totp(user, "second")
    for c in (laptop, phone):
        c.force_login(user)
        assert verify_totp(c, totp1, first).status_code == 302
    assert laptop.post(f"/multifactor/delete_factor:{first.pk}/").status_code == 302
    assert_challenged(phone.get("/f1/"))


def test_rule4_key_disabled_through_the_model_ends_verification(client, user):
    first, second = two_keys_verified_with_first(client, user)
    key = Key.objects.get(pk=first.pk)  # an admin, a shell or a command: not this user's session
    key.enabled = False
    key.save()
    assert_challenged(client.get("/f1/"))


def test_rule4_key_deleted_through_the_model_ends_verification(client, user):
    first, second = two_keys_verified_with_first(client, user)
    Key.objects.get(pk=first.pk).delete()
    assert_challenged(client.get("/f1/"))


def test_rule4_key_bulk_disabled_ends_verification(client, user):
    first, second = two_keys_verified_with_first(client, user)
    Key.objects.filter(pk=first.pk).update(enabled=False)
    assert_challenged(client.get("/f1/"))


def test_rule4_last_key_disabled_sends_user_to_enrol(client, user):
    key, totp = make_totp(user)
    client.force_login(user)
    verify_totp(client, totp)
    assert_runs(client.get("/f1/"))
    key.enabled = False
    key.save()
    assert_challenged(client.get("/f1/"), ADD)


def test_rule4_other_key_stays_verified_when_one_is_disabled(client, user):
    first, totp1 = make_totp(user, "first")
    second, totp2 = make_totp(user, "second")
    client.force_login(user)
    verify_totp(client, totp1)
    verify_totp(client, totp2)
    assert_runs(client.get("/f2/"))
    Key.objects.filter(pk=first.pk).update(enabled=False)
    assert_runs(client.get("/f1/"))
    assert_challenged(client.get("/f2/"))
    assert [v.key_id for v in mfa_state(client).verifications] == [second.pk]


# -- Rule 5: `factors` as a number or any callable -------------------------------------------------------


def test_rule5_factors_int(client, user):
    make_totp(user)
    client.force_login(user)
    assert_challenged(client.get("/f1/"))
    key, totp = make_totp(user, "other")
    verify_totp(client, totp)
    assert_runs(client.get("/f1/"))
    assert_challenged(client.get("/f2/"))


@pytest.mark.parametrize(
    "url",
    ["/fn/", "/partial/", "/method/?n=2", "/callable2/", "/lambda2/"],
    ids=["function", "functools.partial", "bound method", "object with __call__", "lambda"],
)
def test_rule5_factors_callable_requiring_two(client, user, url):
    first, totp1 = make_totp(user, "first")
    second, totp2 = make_totp(user, "second")
    client.force_login(user)
    verify_totp(client, totp1)
    assert_challenged(client.get(url))  # 2 required, 1 verified
    verify_totp(client, totp2)
    assert_runs(client.get(url))


@pytest.mark.parametrize(
    "url",
    ["/method/?n=1", "/callable/", "/lambda/"],
    ids=["bound method", "object with __call__", "lambda"],
)
def test_rule5_factors_callable_requiring_one(client, user, url):
    client.force_login(user)
    assert_challenged(client.get(url), ADD)  # 1 required and no key: enrol (0 would let the view run)
    key, totp = make_totp(user)
    verify_totp(client, totp)
    assert_runs(client.get(url))


def test_rule5_callable_receives_the_request(client, user):
    client.force_login(user)
    assert_runs(client.get("/method/?n=0"))
    assert_challenged(client.get("/method/?n=1"), ADD)


# -- Rule 6: keys but no verification --------------------------------------------------------------------


def test_rule6_keys_without_verification_challenge_even_with_factors_0(signed_in, totp_key):
    assert_challenged(signed_in.get("/f0/"))
    assert_challenged(signed_in.get("/open/"))
    assert_challenged(signed_in.get("/f1/"))


def test_rule6_disabled_key_alone_does_not_challenge(signed_in, totp_key):
    key, _totp = totp_key
    key.enabled = False
    key.save()
    assert_runs(signed_in.get("/f0/"))


# -- Rule 7: max_age, measured from the verification ----------------------------------------------------


def test_rule7_max_age_expired_challenges_although_recheck_is_hours_away(verified):
    assert_runs(verified.get("/max-age/"))
    state = shift(verified, verified_at=-61)
    (verification,) = state.verifications
    assert verification.expires_at - time.time() > 3600 * 2  # RECHECK would keep it for hours
    assert_challenged(verified.get("/max-age/"))
    assert_runs(verified.get("/f1/"))  # still verified for views without max_age


def test_rule7_max_age_recent_verification_passes(verified):
    shift(verified, verified_at=-10)
    assert_runs(verified.get("/max-age/"))


def test_rule7_max_age_uses_the_newest_verification(client, user):
    first, totp1 = make_totp(user, "first")
    second, totp2 = make_totp(user, "second")
    client.force_login(user)
    verify_totp(client, totp1)
    shift(client, verified_at=-600)
    assert_challenged(client.get("/max-age/"))
    verify_totp(client, totp2)
    assert_runs(client.get("/max-age/"))


def test_rule7_step_up_verification_returns_to_the_page(verified, totp_key):
    key, totp = totp_key
    shift(verified, verified_at=-61)
    assert_challenged(verified.get("/max-age/?x=1"))
    response = verify_totp(verified, totp, key)
    assert_challenged(response, "/max-age/?x=1")
    assert_runs(verified.get("/max-age/?x=1"))


# -- Rule 8: distinct factors ----------------------------------------------------------------------------


def test_rule8_fewer_factors_than_required_challenges(verified):
    assert_runs(verified.get("/f1/"))
    assert_challenged(verified.get("/f2/"))


def test_rule8_same_key_verified_twice_counts_once(verified, totp_key):
    key, totp = totp_key
    Key.objects.filter(pk=key.pk).update(last_step=None)
    assert verify_totp(verified, totp, key).status_code == 302
    assert [v.key_id for v in mfa_state(verified).verifications] == [key.pk]
    assert_challenged(verified.get("/f2/"))


def test_rule8_same_key_counts_once_even_if_listed_twice(verified, totp_key):
    key, _totp = totp_key
    add_verification(verified, key.pk, "TOTP")
    assert len(mfa_state(verified).verifications) == 2
    assert_challenged(verified.get("/f2/"))


def test_rule8_two_keys_verified_meet_two_factors(client, user):
    first, totp1 = make_totp(user, "first")
    second, totp2 = make_totp(user, "second")
    client.force_login(user)
    verify_totp(client, totp1)
    assert_challenged(client.get("/f2/"))
    verify_totp(client, totp2)
    assert {v.key_id for v in mfa_state(client).verifications} == {first.pk, second.pk}
    assert_runs(client.get("/f2/"))


def test_rule8_user_without_keys_is_sent_to_enrol(signed_in):
    assert_challenged(signed_in.get("/f1/"), ADD)
    assert_challenged(signed_in.get("/f2/"), ADD)
    assert_runs(signed_in.get("/f0/"))


def test_rule8_fallback_counts_once_for_user_with_keys(signed_in, totp_key):
    add_verification(signed_in, None, "FALLBACK")
    assert_runs(signed_in.get("/f1/"))
    assert_challenged(signed_in.get("/f2/"))


def test_rule8_two_fallbacks_do_not_make_two_factors(signed_in, totp_key):
    add_verification(signed_in, None, "FALLBACK")
    add_verification(signed_in, None, "FALLBACK")
    assert len(mfa_state(signed_in).verifications) == 2
    assert_challenged(signed_in.get("/f2/"))
    assert_runs(signed_in.get("/f1/"))


def test_rule8_fallback_plus_key_make_two_factors(verified):
    add_verification(verified, None, "FALLBACK")
    assert_runs(verified.get("/f2/"))


def test_rule8_fallback_does_not_count_for_user_without_keys(signed_in):
    add_verification(signed_in, None, "FALLBACK")
    assert_challenged(signed_in.get("/f1/"), ADD)
    add_verification(signed_in, None, "FALLBACK")
    assert_challenged(signed_in.get("/f1/"), ADD)


def test_rule8_fallback_stops_counting_when_the_last_key_goes(signed_in, totp_key):
    key, _totp = totp_key
    add_verification(signed_in, None, "FALLBACK")
    assert_runs(signed_in.get("/f1/"))  # the session is now known (indexed) with its fallback
    key.enabled = False
    key.save()
    assert_challenged(signed_in.get("/f1/"), ADD)


def test_rule8_fallback_for_user_without_keys_does_not_stop_advertising(signed_in):
    add_verification(signed_in, None, "FALLBACK")
    assert_runs(signed_in.get("/advertise/"))
    assert [m["level"] for m in messages_of(signed_in)] == ["info"]


# -- Rule 9: advertise -----------------------------------------------------------------------------------


def test_rule9_advertise_once_per_session_to_users_without_keys(signed_in):
    assert_runs(signed_in.get("/advertise/"))
    (message,) = messages_of(signed_in)
    assert message["level"] == "info"
    assert f'href="{HOME}"' in message["message"]
    assert_runs(signed_in.get("/advertise/"))
    assert_runs(signed_in.get("/advertise/"))
    assert messages_of(signed_in) == []


def test_rule9_advertise_again_in_a_new_session(client, user):
    client.force_login(user)
    client.get("/advertise/")
    assert len(messages_of(client)) == 1
    client.post("/accounts/logout/")
    client.force_login(user)
    client.get("/advertise/")
    assert len(messages_of(client)) == 1


def test_rule9_no_advert_for_users_with_keys(verified):
    messages_of(verified)  # the verification's own message
    assert_runs(verified.get("/advertise/"))
    assert messages_of(verified) == []


def test_rule9_no_advert_without_advertise(signed_in):
    assert_runs(signed_in.get("/f0/"))
    assert messages_of(signed_in) == []


# -- Rule 10: the view runs ------------------------------------------------------------------------------


def test_rule10_verified_user_runs_the_view(verified):
    for url in ("/f0/", "/f1/", "/open/", "/callable/", "/lambda/", "/max-age/", "/advertise/"):
        assert_runs(verified.get(url))
    assert_runs(verified.get("/async/"), b"async ok")
    assert_runs(verified.get("/cbv/"), b"cbv ok")


def test_decorator_keeps_the_view_name():
    from multifactor.decorators import multifactor_protected
    from tests.views import ok

    wrapped = multifactor_protected(factors=1)(ok)
    assert wrapped.__name__ == "ok" and wrapped.__wrapped__ is ok


# -- Async views -----------------------------------------------------------------------------------------


def test_async_view_challenge_and_pass(signed_in, totp_key):
    key, totp = totp_key
    assert_challenged(signed_in.get("/async/"))
    verify_totp(signed_in, totp)
    assert_runs(signed_in.get("/async/"), b"async ok")


def test_async_view_sends_user_without_keys_to_enrol(signed_in):
    assert_challenged(signed_in.get("/async/"), ADD)


def async_get(client, url, **kwargs):
    """GET through django.test.AsyncClient with the (sync) client's cookies."""

    async def go():
        async_client = AsyncClient()
        async_client.cookies = client.cookies
        return await async_client.get(url, **kwargs)

    return async_to_sync(go)()


def test_async_view_with_async_client(signed_in, totp_key):
    key, totp = totp_key
    assert_challenged(async_get(signed_in, "/async/"))
    verify_totp(signed_in, totp)
    assert_runs(async_get(signed_in, "/async/"), b"async ok")
    response = async_get(signed_in, "/f2/", headers={"Accept": "application/json"})
    assert response.status_code == 401


def test_async_class_based_view_as_view(signed_in, totp_key):
    """An async class-based view's as_view() is marked as a coroutine function by asgiref, which
    inspect.iscoroutinefunction() does not see before Python 3.12."""
    key, totp = totp_key
    assert_challenged(signed_in.get("/async-cbv/"))
    assert_challenged(async_get(signed_in, "/async-cbv/"))
    verify_totp(signed_in, totp)
    assert_runs(signed_in.get("/async-cbv/"), b"async cbv ok")
    assert_runs(async_get(signed_in, "/async-cbv/"), b"async cbv ok")


def test_async_class_based_view_with_mixin(signed_in, totp_key):
    key, totp = totp_key
    assert_challenged(signed_in.get("/async-mixin/"))
    assert_challenged(async_get(signed_in, "/async-mixin/"))
    verify_totp(signed_in, totp)
    assert_runs(signed_in.get("/async-mixin/"), b"async mixin ok")
    assert_runs(async_get(signed_in, "/async-mixin/"), b"async mixin ok")


# -- MultifactorRequiredMixin ----------------------------------------------------------------------------


def test_mixin_anonymous_goes_to_login(client):
    response = client.get("/cbv/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_mixin_challenge_then_pass(signed_in, totp_key):
    key, totp = totp_key
    assert_challenged(signed_in.get("/cbv/"))
    response = verify_totp(signed_in, totp)
    assert_challenged(response, "/cbv/")
    assert_runs(signed_in.get("/cbv/"), b"cbv ok")


def test_mixin_sends_user_without_keys_to_enrol(signed_in):
    assert_challenged(signed_in.get("/cbv/"), ADD)


def test_mixin_answers_json(signed_in, totp_key):
    response = signed_in.get("/cbv/", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "mfa_required"


# -- Where a challenge returns to ------------------------------------------------------------------------


def test_challenge_remembers_url_with_query_string(signed_in, totp_key):
    key, totp = totp_key
    assert_challenged(signed_in.get("/f1/?a=1&b=two%20words"))
    response = verify_totp(signed_in, totp)
    assert_challenged(response, "/f1/?a=1&b=two%20words")
    assert mfa_state(signed_in).next_url is None  # used once


def test_enrolment_returns_to_the_remembered_url(signed_in):
    """A first key leads to saving recovery codes, and from there back to the page that asked for MFA."""
    import pyotp

    assert_challenged(signed_in.get("/f1/?q=1"), ADD)
    page = signed_in.get("/multifactor/totp/new/")
    response = signed_in.post("/multifactor/totp/new/", {"answer": pyotp.TOTP(page.context["secret"]).now()})
    assert_challenged(response, "/multifactor/recovery/")
    codes_page = signed_in.post("/multifactor/recovery/")
    assert codes_page.status_code == 200
    assert codes_page.context["continue_url"] == "/f1/?q=1"
    assert_runs(signed_in.get("/f1/?q=1"))


def test_enrolment_returns_straight_to_the_remembered_url_without_recovery_codes(signed_in, settings):
    import pyotp

    settings.MULTIFACTOR = {**settings.MULTIFACTOR, "FACTORS": ["TOTP"]}
    assert_challenged(signed_in.get("/f1/?q=1"), ADD)
    page = signed_in.get("/multifactor/totp/new/")
    response = signed_in.post("/multifactor/totp/new/", {"answer": pyotp.TOTP(page.context["secret"]).now()})
    assert_challenged(response, "/f1/?q=1")
    assert_runs(signed_in.get("/f1/?q=1"))


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/x", "http://evil.example", "/\\evil.example", "javascript:alert(1)"],
)
def test_unsafe_next_is_refused(signed_in, totp_key, target):
    key, totp = totp_key

    def change(state):
        state.next_url = target

    edit_mfa_state(signed_in, change)
    response = verify_totp(signed_in, totp)
    assert_challenged(response, "/done/")  # settings.LOGIN_REDIRECT_URL


def test_unsafe_next_falls_back_to_login_callback(signed_in, totp_key, settings):
    key, totp = totp_key

    def change(state):
        state.next_url = "https://evil.example/"

    edit_mfa_state(signed_in, change)
    with override_settings(MULTIFACTOR={**settings.MULTIFACTOR, "LOGIN_CALLBACK": "tests.views.login_callback"}):
        response = verify_totp(signed_in, totp)
    assert response.status_code == 200 and response.content == b"callback for alice"


def test_login_callback_without_remembered_url(signed_in, totp_key, settings):
    key, totp = totp_key
    with override_settings(MULTIFACTOR={**settings.MULTIFACTOR, "LOGIN_CALLBACK": "tests.views.login_callback"}):
        response = verify_totp(signed_in, totp)
    assert response.status_code == 200 and response.content == b"callback for alice"


def test_remembered_url_wins_over_login_callback(signed_in, totp_key, settings):
    key, totp = totp_key
    signed_in.get("/f1/?from=here")
    with override_settings(MULTIFACTOR={**settings.MULTIFACTOR, "LOGIN_CALLBACK": "tests.views.login_callback"}):
        response = verify_totp(signed_in, totp)
    assert_challenged(response, "/f1/?from=here")


def test_no_remembered_url_and_no_callback_goes_to_login_redirect_url(signed_in, totp_key):
    key, totp = totp_key
    assert_challenged(verify_totp(signed_in, totp), "/done/")


def test_post_is_challenged_without_being_remembered(signed_in, totp_key):
    key, totp = totp_key
    signed_in.get("/f1/?first")
    assert_challenged(signed_in.post("/f1/?posted"))
    assert mfa_state(signed_in).next_url == "/f1/?first"


# -- JSON ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/f1/", "/api/thing", "/cbv/", "/async/"])
def test_json_request_gets_401_mfa_required(signed_in, totp_key, url):
    response = signed_in.get(url, headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["errors"][0]["code"] == "mfa_required"
    assert body["errors"][0]["message"]
    assert body["meta"]["authenticate_url"] == AUTHENTICATE


def test_json_request_without_keys_gets_401_too(signed_in):
    response = signed_in.get("/f1/", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "mfa_required"


def test_json_request_for_step_up_gets_401(verified):
    shift(verified, verified_at=-61)
    response = verified.get("/max-age/", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "mfa_required"


def test_json_request_verified_runs(verified):
    response = verified.get("/api/thing", headers={"Accept": "application/json"})
    assert response.status_code == 200 and response.json() == {"ok": True}


def test_html_preferred_over_json_gets_redirect(signed_in, totp_key):
    response = signed_in.get("/f1/", headers={"Accept": "text/html,application/json;q=0.9"})
    assert_challenged(response)


def test_other_user_is_not_affected(client, user):
    other = get_user_model().objects.create_user("bob", "bob@example.com", "pw")
    make_totp(other)
    client.force_login(user)
    assert_runs(client.get("/f0/"))
