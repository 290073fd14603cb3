"""Recovery codes (SECURITY.md R6, R4, R8): format and entropy, single use through the page and the API, a new
set replaces the old, shown once, stored only as salted hashes, counted as a factor, regenerated only with
another key inside the re-authentication window, throttled and locked like every factor. Real requests."""

import hashlib
import math
import re
import secrets
from urllib.parse import unquote

import pytest
from django.contrib.messages import get_messages
from django.test import override_settings
from django.utils import timezone

from multifactor.factors import recovery
from multifactor.models import Key, RecoveryCode
from tests.conftest import SIGNED_COOKIES, CsrfClient, make_totp, verify_totp
from tests.mfa_helpers import API, AUTHENTICATE, BASE, HOME, data, error_codes, mf_settings, session_of
from tests.test_crypto import as_texts, dump_database

pytestmark = pytest.mark.django_db

RECOVERY = BASE + "recovery/"
RECOVERY_AUTH = BASE + "recovery/auth/"
CODES_API = API + "recovery-codes"
AUTH_API = API + "recovery-codes/authenticate"
UNAMBIGUOUS = set("23456789ABCDEFGHJKLMNPQRSTUVWXYZ")
FORMAT = re.compile(r"^[23456789A-HJ-NP-Z]{4}(-[23456789A-HJ-NP-Z]{4}){3}$")


def client_for(user, totp=None, key=None):
    """A new signed-in client; verified with the TOTP key when one is given."""
    client = CsrfClient()
    client.force_login(user)
    if totp is not None:
        assert verify_totp(client, totp, key).status_code == 302
    return client


def new_set(client):
    """Make a set through the page; returns the codes as shown."""
    response = client.post(RECOVERY)
    assert response.status_code == 200, response.content[:500]
    return response.context["codes"]


def recovery_key(user):
    return Key.objects.get(user=user, type="RECOVERY")


def wrong_code(codes=(), same_lookup_as=None):
    """A well-formed code that is not in ``codes``; with ``same_lookup_as``, one sharing that code's public
    lookup part (so only the secret part is wrong)."""
    plain = {c.replace("-", "") for c in codes}
    while True:
        head = same_lookup_as.replace("-", "")[: recovery.ID_LENGTH] if same_lookup_as else ""
        body = "".join(secrets.choice(recovery.ALPHABET) for _ in range(16 - len(head)))
        candidate = head + body
        if candidate not in plain:
            return recovery.display(candidate)


@pytest.fixture
def with_codes(user, totp_key):
    """(codes, the verified client that made them, key, totp)."""
    key, totp = totp_key
    maker = client_for(user, totp, key)
    return new_set(maker), maker, key, totp


# -- format and entropy --------------------------------------------------------------------------------------


def test_a_set_has_recovery_codes_codes_in_the_human_format(verified, user):
    codes = new_set(verified)
    assert len(codes) == 10 == len(set(codes))
    for code in codes:
        assert FORMAT.match(code), code
        assert len(code.replace("-", "")) == 16
        assert set(code.replace("-", "")) <= UNAMBIGUOUS  # no 0/O, 1/I
    with mf_settings(RECOVERY_CODES=4):
        assert len(data(verified.api("post", CODES_API))["codes"]) == 4
    assert data(verified.api("get", CODES_API)) == {"remaining": 4, "total": 4}


def test_each_code_has_at_least_64_secret_bits():
    assert set(recovery.ALPHABET) == UNAMBIGUOUS and len(recovery.ALPHABET) == 32
    assert recovery.ID_LENGTH + recovery.SECRET_LENGTH == 16
    assert recovery.SECRET_LENGTH * math.log2(len(recovery.ALPHABET)) >= 64  # the public lookup part not counted


def test_codes_use_the_whole_alphabet_and_differ_between_sets(verified):
    """Drawn from a CSPRNG over all 32 symbols (800 symbols: a missing one has probability ~1e-9)."""
    with mf_settings(RECOVERY_CODES=50):
        first = new_set(verified)
    assert set("".join(first).replace("-", "")) == UNAMBIGUOUS
    second = new_set(verified)
    assert not set(first) & set(second)


# -- single use, input forms ---------------------------------------------------------------------------------


SPELLINGS = {
    "as shown": lambda c: c,
    "lower case": lambda c: c.lower(),
    "no separators": lambda c: c.replace("-", ""),
    "lower, no separators": lambda c: c.replace("-", "").lower(),
    "spaces": lambda c: c.replace("-", " "),
    "mixed case and padding": lambda c: "  " + "".join(ch.lower() if i % 2 else ch for i, ch in enumerate(c)) + " ",
}


@pytest.mark.parametrize("spelling", list(SPELLINGS))
@mf_settings(THROTTLE_FREE_FAILURES=100)
def test_each_spelling_is_accepted_once_on_the_page(user, with_codes, spelling):
    codes, _maker, _key, _totp = with_codes
    code = codes[3]
    client = client_for(user)
    assert client.get("/f1/")["Location"] == AUTHENTICATE
    r = client.post(RECOVERY_AUTH, {"code": SPELLINGS[spelling](code)})
    assert r.status_code == 302 and r["Location"] == "/f1/"
    assert client.get("/f1/").content == b"ok"
    # Used up: no spelling of it works again, in this session or another.
    for other in (client, client_for(user)):
        for again in SPELLINGS.values():
            r = other.post(RECOVERY_AUTH, {"code": again(code)})
            assert r.status_code == 400 and r.context["form"].errors["code"]
    assert client_for(user).get("/f1/")["Location"] == AUTHENTICATE
    assert RecoveryCode.objects.filter(key__user=user, used_at__isnull=False).count() == 1


@mf_settings(THROTTLE_FREE_FAILURES=100)
def test_each_code_works_once_through_the_api(user, with_codes):
    codes, _maker, _key, _totp = with_codes
    client = client_for(user)
    assert data(client.api("get", CODES_API)) == {"remaining": 10, "total": 10}
    r = client.api("post", AUTH_API, {"code": codes[0].lower().replace("-", "")})
    assert r.status_code == 200 and data(r) == {"verified": True, "next": "/done/"}
    assert client.get("/f1/").content == b"ok"
    for again in (codes[0], codes[0].replace("-", "")):
        r = client_for(user).api("post", AUTH_API, {"code": again})
        assert r.status_code == 400 and error_codes(r) == ["invalid_code"]
    assert data(client.api("get", CODES_API)) == {"remaining": 9, "total": 10}
    # Every other code still works, each once.
    for code in codes[1:]:
        assert client_for(user).api("post", AUTH_API, {"code": code}).status_code == 200
    assert data(client.api("get", CODES_API)) == {"remaining": 0, "total": 10}
    r = client_for(user).api("post", AUTH_API, {"code": codes[5]})
    assert r.status_code == 400


def test_a_code_with_the_right_lookup_but_a_wrong_secret_fails(user, with_codes):
    codes, _maker, key, _totp = with_codes
    client = client_for(user)
    r = client.api("post", AUTH_API, {"code": wrong_code(codes, same_lookup_as=codes[0])})
    assert r.status_code == 400 and error_codes(r) == ["invalid_code"]
    key_ = recovery_key(user)
    assert key_.failures == 1
    assert data(client.api("get", CODES_API))["remaining"] == 10
    assert client.get("/f1/")["Location"] == AUTHENTICATE


@mf_settings(THROTTLE_FREE_FAILURES=100)
def test_malformed_codes_are_refused_without_a_500(user, with_codes):
    codes, *_ = with_codes
    client = client_for(user)
    for junk in ["", "0000-0000-0000-0000", codes[0] + "A", codes[0][:-1], "ÄBCD-EFGH-JKLM-NPQR", "１" * 16]:
        r = client.api("post", AUTH_API, {"code": junk})
        assert r.status_code == 400, junk
    for junk in [None, 12345678, ["x"], {"a": 1}]:
        r = client.api("post", AUTH_API, {"code": junk})
        assert r.status_code == 400 and error_codes(r) == ["invalid"]
    assert client.post(RECOVERY_AUTH, {"code": "x" * 100}).status_code == 400
    assert client.post(RECOVERY_AUTH, {}).status_code == 400


def test_codes_of_another_user_do_not_work(user, with_codes, django_user_model):
    codes, *_ = with_codes
    bob = django_user_model.objects.create_user("bob", "bob@example.com", "pw")
    bob_key, bob_totp = make_totp(bob)
    bob_codes = new_set(client_for(bob, bob_totp, bob_key))
    client = client_for(bob)
    r = client.api("post", AUTH_API, {"code": codes[0]})
    assert r.status_code == 400
    assert client.get("/f1/")["Location"] == AUTHENTICATE
    assert client_for(user).api("post", AUTH_API, {"code": bob_codes[0]}).status_code == 400
    assert client.api("post", AUTH_API, {"code": bob_codes[0]}).status_code == 200


def test_a_user_without_codes_is_refused(signed_in, totp_key):
    r = signed_in.api("post", AUTH_API, {"code": wrong_code()})
    assert r.status_code == 400 and error_codes(r) == ["no_key"]
    assert data(signed_in.api("get", CODES_API)) == {"remaining": 0, "total": 0}


# -- a new set replaces the old one ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["page", "api"])
@mf_settings(THROTTLE_FREE_FAILURES=100)
def test_regeneration_replaces_the_set_and_old_codes_die(user, with_codes, how):
    old, maker, _key, _totp = with_codes
    key_before = recovery_key(user)
    new = new_set(maker) if how == "page" else data(maker.api("post", CODES_API))["codes"]
    assert len(new) == 10 and not set(old) & set(new)
    assert RecoveryCode.objects.filter(key__user=user).count() == 10
    assert recovery_key(user).pk == key_before.pk  # one RECOVERY key per user, its codes replaced
    for code in old:
        r = client_for(user).api("post", AUTH_API, {"code": code})
        assert r.status_code == 400, code
    r = client_for(user).post(RECOVERY_AUTH, {"code": new[9]})
    assert r.status_code == 302


def test_regeneration_after_some_use_restores_a_full_set(user, with_codes):
    codes, maker, _key, _totp = with_codes
    client = client_for(user)
    assert client.api("post", AUTH_API, {"code": codes[0]}).status_code == 200
    assert client.api("post", AUTH_API, {"code": codes[1]}).status_code == 200
    assert data(maker.api("get", CODES_API)) == {"remaining": 8, "total": 10}
    new_set(maker)
    assert data(maker.api("get", CODES_API)) == {"remaining": 10, "total": 10}


# -- shown once ----------------------------------------------------------------------------------------------


def test_codes_are_shown_once_with_no_store_and_a_txt_download(user, with_codes):
    codes, maker, _key, _totp = with_codes
    response = maker.post(RECOVERY)
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    shown = response.context["codes"]
    for code in shown:
        assert code in page
    link = re.search(r'<a [^>]*download="([^"]+)"[^>]*href="data:text/plain;charset=utf-8,([^"]+)"', page)
    assert link, page
    assert link.group(1).endswith(".txt")
    assert unquote(link.group(2)).split() == shown
    # Never again: not on the page, not through the API.
    for client in (maker, client_for(user)):
        again = client.get(RECOVERY).content.decode()
        assert "10 of 10" in again
        for code in shown:
            assert code not in again and code.replace("-", "") not in again
        listing = client.api("get", CODES_API).content.decode()
        assert all(code not in listing and code.replace("-", "") not in listing for code in shown)
        assert set(data(client.api("get", CODES_API))) == {"remaining", "total"}
        home = client.get(HOME).content.decode()
        assert all(code not in home for code in shown)


def test_get_never_makes_or_shows_codes(verified, user):
    page = verified.get(RECOVERY)
    assert page.status_code == 200 and "codes" not in page.context
    assert not RecoveryCode.objects.exists()
    assert verified.get(RECOVERY).status_code == 200
    assert not Key.objects.filter(user=user, type="RECOVERY").exists()


# -- stored only as salted hashes ----------------------------------------------------------------------------


def spellings(code):
    compact = code.replace("-", "")
    secret = compact[recovery.ID_LENGTH :]
    return {code, compact, code.lower(), compact.lower(), secret, secret.lower()}


def leaks(needles, clients=()):
    """Where any needle appears: every column of every table (raw SQL, sessions decoded), and each client's
    cookies and loaded session (the session of a signed_cookies engine is its cookie)."""
    from django.contrib.sessions.backends.db import SessionStore

    hits = []
    for table, column, value in dump_database():
        texts = as_texts(value)
        if table == "django_session" and column == "session_data":
            texts.append(str(SessionStore().decode(value)))
        hits += [(table, column) for text in texts if any(n in text for n in needles)]
    for client in clients:
        texts = [morsel.value for morsel in client.cookies.values()]
        texts.append(repr(session_of(client).load()))
        hits += [("client", text[:40]) for text in texts if any(n in text for n in needles)]
    return hits


def check_hashes(user, codes):
    """Each stored row is the salted PBKDF2-SHA256 of its code's secret part, with a salt of its own."""
    rows = {row.lookup: row for row in RecoveryCode.objects.filter(key__user=user)}
    assert len(rows) == len(codes)
    salts = {row.salt for row in rows.values()}
    assert len(salts) == len(codes) and all(len(bytes.fromhex(s)) >= 16 for s in salts)
    for code in codes:
        compact = code.replace("-", "")
        row = rows[compact[: recovery.ID_LENGTH]]
        secret = compact[recovery.ID_LENGTH :].encode()
        assert row.digest == hashlib.pbkdf2_hmac("sha256", secret, bytes.fromhex(row.salt), recovery.ITERATIONS).hex()
        assert row.digest != hashlib.sha256(secret).hexdigest()


@pytest.mark.parametrize("engine", ["django.contrib.sessions.backends.db", SIGNED_COOKIES])
def test_codes_are_stored_only_as_salted_hashes(user, totp_key, engine):
    key, totp = totp_key
    with override_settings(SESSION_ENGINE=engine):
        maker = client_for(user, totp, key)
        shown = new_set(maker)
        api_codes = data(maker.api("post", CODES_API))["codes"]
        user_of_codes = client_for(user)
        assert user_of_codes.post(RECOVERY_AUTH, {"code": api_codes[0]}).status_code == 302
        assert user_of_codes.api("post", AUTH_API, {"code": api_codes[1].lower()}).status_code == 200
        assert user_of_codes.get("/f1/").content == b"ok"
        needles = set().union(*(spellings(c) for c in shown + api_codes))
        assert len(dump_database()) > 50
        assert leaks(needles, [maker, user_of_codes]) == []
    check_hashes(user, api_codes)


def test_leak_finder_sees_a_code_in_a_signed_cookie_session(user, totp_key):
    """The search above would notice a code kept in a client-readable session (the test can fail)."""
    with override_settings(SESSION_ENGINE=SIGNED_COOKIES):
        client = client_for(user)
        store = client.session
        store["oops"] = "ABCD-EFGH-JKLM-NPQR"
        store.save()
        client.cookies["sessionid"] = store.session_key
        assert leaks({"EFGH-JKLM"}, [client])


# -- a recovery code is a verified factor ----------------------------------------------------------------


def test_a_recovery_code_counts_as_one_factor(user, with_codes):
    codes, _maker, key, totp = with_codes
    client = client_for(user)
    assert client.get("/f2/")["Location"] == AUTHENTICATE
    assert client.post(RECOVERY_AUTH, {"code": codes[0]}).status_code == 302
    assert client.get("/f1/").content == b"ok"
    assert client.get("/f2/")["Location"] == AUTHENTICATE
    # A second recovery code is the same key: still one factor.
    assert client.api("post", AUTH_API, {"code": codes[1]}).status_code == 200
    assert client.get("/f2/")["Location"] == AUTHENTICATE
    # TOTP + a recovery code: two.
    assert verify_totp(client, totp, key).status_code == 302
    assert client.get("/f2/").content == b"ok"
    status = data(client.api("get", API + "status"))
    assert {v["type"] for v in status["verified"]} == {"RECOVERY", "TOTP"}


def test_a_recovery_code_cycles_the_session_key(user, with_codes):
    codes, *_ = with_codes
    client = client_for(user)
    before = client.cookies["sessionid"].value
    assert client.post(RECOVERY_AUTH, {"code": codes[0]}).status_code == 302
    assert client.cookies["sessionid"].value != before


def test_a_recovery_code_lets_the_user_enrol_a_new_key(user, with_codes):
    """The point of recovery codes: the phone is lost, a code lets the user replace it."""
    codes, *_ = with_codes
    client = client_for(user)
    assert client.api("post", API + "totp/begin").status_code == 403
    assert client.api("post", AUTH_API, {"code": codes[0]}).status_code == 200
    assert client.api("post", API + "totp/begin").status_code == 200


# -- who may regenerate (R8) -------------------------------------------------------------------------------


def test_regenerating_needs_another_key(signed_in, user):
    r = signed_in.api("post", CODES_API)
    assert r.status_code == 409 and error_codes(r) == ["needs_key"]
    r = signed_in.post(RECOVERY)
    assert r.status_code == 302 and r["Location"] == HOME
    assert any("first" in str(m) for m in get_messages(r.wsgi_request))
    assert not Key.objects.filter(user=user).exists() and not RecoveryCode.objects.exists()


def test_regenerating_needs_a_recent_verification(user, totp_key):
    key, totp = totp_key
    client = client_for(user)
    r = client.api("post", CODES_API)
    assert r.status_code == 403 and error_codes(r) == ["reauthentication_required"]
    r = client.post(RECOVERY)
    assert r.status_code == 302 and r["Location"] == HOME
    assert client.get(RECOVERY).context["can_edit"] is False
    assert not RecoveryCode.objects.exists()
    assert verify_totp(client, totp, key).status_code == 302
    with mf_settings(REAUTH_WINDOW=300):
        assert client.api("post", CODES_API).status_code == 201
        from tests.mfa_helpers import age_verifications

        age_verifications(client, 301)
        assert client.get("/f1/").content == b"ok"  # still verified, but not recently enough to manage
        r = client.api("post", CODES_API)
        assert r.status_code == 403 and error_codes(r) == ["reauthentication_required"]
        assert client.get(RECOVERY).context["can_edit"] is False


def test_recovery_codes_alone_are_not_another_key(user, with_codes):
    """With the TOTP key gone, the recovery set cannot renew itself (it would never end)."""
    codes, maker, key, _totp = with_codes
    assert maker.api("delete", API + f"keys/{key.pk}").status_code == 204
    client = client_for(user)
    assert client.api("post", AUTH_API, {"code": codes[0]}).status_code == 200
    r = client.api("post", CODES_API)
    assert r.status_code == 409 and error_codes(r) == ["needs_key"]


def test_recovery_codes_not_in_factors_are_refused(verified, user):
    with mf_settings(FACTORS=["TOTP"]):
        r = verified.api("post", CODES_API)
        assert r.status_code == 403 and error_codes(r) == ["factor_not_allowed"]
        assert verified.post(RECOVERY).status_code == 302
    assert not RecoveryCode.objects.exists()


# -- throttling and lockout (R4) ---------------------------------------------------------------------------


def test_wrong_codes_are_throttled_with_retry_after(user, with_codes):
    codes, *_ = with_codes
    client = client_for(user)
    with mf_settings(THROTTLE_FREE_FAILURES=1, THROTTLE_BASE_DELAY=60, THROTTLE_MAX_FAILURES=20):
        r = client.api("post", AUTH_API, {"code": wrong_code(codes)})
        assert r.status_code == 400 and "Retry-After" not in r
        r = client.post(RECOVERY_AUTH, {"code": wrong_code(codes)})
        assert r.status_code == 400
        # Now delayed: even a right code is refused, unchecked, uncounted and not used up.
        r = client.api("post", AUTH_API, {"code": codes[0]})
        assert r.status_code == 429 and error_codes(r) == ["throttled"]
        assert 55 <= int(r["Retry-After"]) <= 60
        r = client.post(RECOVERY_AUTH, {"code": codes[0]})
        assert r.status_code == 429 and r.context["form"].errors["code"]
        assert recovery_key(user).failures == 2
        assert data(client.api("get", CODES_API))["remaining"] == 10
        assert client.get("/f1/")["Location"] == AUTHENTICATE
        # The delay over, the right code works and the count starts again.
        Key.objects.filter(pk=recovery_key(user).pk).update(throttled_until=timezone.now())
        assert client.api("post", AUTH_API, {"code": codes[0]}).status_code == 200
        key = recovery_key(user)
        assert key.failures == 0 and key.throttled_until is None


def test_wrong_codes_lock_the_recovery_key_only(user, with_codes):
    codes, _maker, totp_key_, totp = with_codes
    client = client_for(user)
    with mf_settings(THROTTLE_FREE_FAILURES=100, THROTTLE_MAX_FAILURES=3):
        for _ in range(2):
            r = client.api("post", AUTH_API, {"code": wrong_code(codes)})
            assert r.status_code == 400 and error_codes(r) == ["invalid_code"]
        r = client.api("post", AUTH_API, {"code": wrong_code(codes)})
        assert r.status_code == 403 and error_codes(r) == ["key_locked"]
        key = recovery_key(user)
        assert key.failures == 3 and key.locked_at is not None and key.enabled is False
        # Locked: the right code is refused, and says so; nothing is used up.
        for attempt in (lambda: client.api("post", AUTH_API, {"code": codes[0]}),):
            r = attempt()
            assert r.status_code == 403 and error_codes(r) == ["key_locked"]
        r = client.post(RECOVERY_AUTH, {"code": codes[0]})
        assert r.status_code == 400 and "locked" in str(r.context["form"].errors["code"])
        assert RecoveryCode.objects.filter(used_at__isnull=False).count() == 0
        # Still signed in, the TOTP key untouched and working.
        assert client.get("/plain/").content == b"plain"
        totp_key_.refresh_from_db()
        assert totp_key_.enabled and totp_key_.failures == 0
        assert verify_totp(client, totp, totp_key_).status_code == 302
        assert client.get("/f1/").content == b"ok"
        # A new set (with the TOTP verification) unlocks recovery with fresh codes.
        fresh = data(client.api("post", CODES_API))["codes"]
        key = recovery_key(user)
        assert key.enabled and key.locked_at is None and key.failures == 0
        assert client_for(user).api("post", AUTH_API, {"code": fresh[0]}).status_code == 200
        assert client_for(user).api("post", AUTH_API, {"code": codes[1]}).status_code == 400


def test_failure_count_is_per_key_not_per_session(user, with_codes):
    codes, *_ = with_codes
    with mf_settings(THROTTLE_FREE_FAILURES=100, THROTTLE_MAX_FAILURES=4):
        for _ in range(4):
            client_for(user).api("post", AUTH_API, {"code": wrong_code(codes)})
    assert recovery_key(user).locked_at is not None
    assert client_for(user).api("post", AUTH_API, {"code": codes[0]}).status_code == 403


def test_a_disabled_set_is_refused_as_disabled(user, with_codes):
    codes, maker, *_ = with_codes
    r = maker.api("patch", API + f"keys/{recovery_key(user).pk}", {"enabled": False})
    assert r.status_code == 200
    client = client_for(user)
    r = client.api("post", AUTH_API, {"code": codes[0]})
    assert r.status_code == 403 and error_codes(r) == ["key_disabled"]
    assert recovery_key(user).failures == 0
    assert client.get("/f1/")["Location"] == AUTHENTICATE


# -- the home page and the first key ------------------------------------------------------------------------


@mf_settings(THROTTLE_FREE_FAILURES=100)
def test_home_shows_how_many_remain_and_warns_when_few_are_left(user, with_codes):
    codes, maker, *_ = with_codes
    home = maker.get(HOME)
    assert home.context["recovery"] == {"remaining": 10, "total": 10, "low": False}
    assert "10 of 10 recovery codes left" in home.content.decode()
    assert "running out" not in home.content.decode()
    for code in codes[:8]:
        assert client_for(user).api("post", AUTH_API, {"code": code}).status_code == 200
    home = maker.get(HOME)
    assert home.context["recovery"] == {"remaining": 2, "total": 10, "low": True}
    assert "2 of 10 recovery codes left" in home.content.decode() and "running out" in home.content.decode()
    assert "2 of 10" in maker.get(RECOVERY).content.decode()


def test_a_new_set_is_offered_right_after_the_first_key(signed_in, user):
    import pyotp

    seed = signed_in.get(BASE + "totp/new/").context["secret"]
    r = signed_in.post(BASE + "totp/new/", {"answer": pyotp.TOTP(seed).now()})
    assert r.status_code == 302 and r["Location"] == RECOVERY
    page = signed_in.get(RECOVERY)
    assert page.context["can_edit"] is True and page.context["total"] == 0
    codes = new_set(signed_in)
    assert len(codes) == 10
    # A second key does not ask again: the user has a set.
    seed = signed_in.get(BASE + "totp/new/").context["secret"]
    r = signed_in.post(BASE + "totp/new/", {"answer": pyotp.TOTP(seed).now()})
    assert r.status_code == 302 and r["Location"] != RECOVERY
