"""TOTP (SECURITY.md R1-R4): enrolment through the page and the API, RFC 6238 defaults checked against an
independent HMAC-SHA1 implementation, replay, the window, and throttling/lockout. Real pyotp, real requests."""

import base64
import hashlib
import json
import re
import time
from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest
import segno
from django.contrib.messages import get_messages
from django.utils import timezone

from multifactor import crypto
from multifactor.models import Key
from tests.conftest import make_totp, verify_totp
from tests.mfa_helpers import (
    ADD,
    API,
    AUTHENTICATE,
    HOME,
    TOTP_AUTH,
    TOTP_NEW,
    action_url,
    data,
    error_codes,
    hotp,
    mf_settings,
    mfa_state,
    totp_code,
    wait_for_fresh_step,
    wrong_code,
)

pytestmark = pytest.mark.django_db

RFC_SEED = b"12345678901234567890"  # RFC 6238 Appendix B, the SHA1 seed (20 bytes)


def pending_key(user):
    return Key.objects.get(user=user, confirmed=False)


def svg_modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules of segno's inline SVG path (``M x y.5`` then ``h n`` runs and ``m dx dy`` moves)."""
    path = re.search(r'class="qrline"[^>]*\sd="([^"]+)"', svg).group(1)
    dark, x, y = set(), 0.0, 0.0
    for op, args in re.findall(r"([MmHh])([^MmHh]*)", path):
        nums = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", args)]
        if op == "M":
            x, y = nums
        elif op == "m":
            x, y = x + nums[0], y + nums[1]
        else:
            length = nums[0] if op == "h" else nums[0] - x
            dark |= {(int(x) + i, int(y)) for i in range(int(length))}
            x += length
    return dark


def qr_encodes(svg: str, text: str) -> bool:
    """True if the SVG draws the QR symbol of ``text`` (at any error level segno may choose)."""
    drawn = svg_modules(svg)
    for level in "lmqh":
        qr = segno.make(text, error=level)
        border = qr.default_border_size
        expected = {(c + border, r + border) for r, row in enumerate(qr.matrix) for c, v in enumerate(row) if v}
        if drawn == expected:
            return True
    return False


def check_uri(uri, seed, issuer="Tests", account="alice"):
    parts = urlparse(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == f"/{issuer}:{account}"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["secret"] == seed
    assert query["issuer"] == issuer
    # RFC 6238 defaults: either left out (apps then assume them) or spelled out as the defaults.
    assert query.get("algorithm", "SHA1").upper() == "SHA1"
    assert query.get("digits", "6") == "6"
    assert query.get("period", "30") == "30"


# -- RFC 6238 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unix_time", "eight_digits"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_own_implementation_matches_rfc6238_appendix_b(unix_time, eight_digits):
    assert totp_code(RFC_SEED, unix_time, digits=8) == eight_digits
    assert totp_code(RFC_SEED, unix_time) == eight_digits[-6:]


def test_rfc6238_code_from_independent_hmac_is_accepted(signed_in, user):
    seed_b32 = base64.b32encode(RFC_SEED).decode()
    key = Key.objects.create(user=user, type="TOTP", name="rfc", secret=crypto.encrypt(seed_b32))
    code = totp_code(RFC_SEED, time.time())
    r = signed_in.post(TOTP_AUTH, {"answer": code})
    assert r.status_code == 302, r.content
    key.refresh_from_db()
    assert key.last_step is not None and abs(key.last_step - int(time.time()) // 30) <= 1
    assert signed_in.get("/f1/").content == b"ok"


def test_rfc6238_code_accepted_by_api(signed_in, user):
    Key.objects.create(user=user, type="TOTP", secret=crypto.encrypt(base64.b32encode(RFC_SEED).decode()))
    r = signed_in.api("post", API + "totp/authenticate", {"code": totp_code(RFC_SEED, time.time())})
    assert r.status_code == 200, r.content
    assert data(r) == {"verified": True, "next": "/done/"}


def test_sha256_or_8_digit_codes_are_not_accepted(signed_in, user):
    """The server uses SHA1, 6 digits, 30 s: codes made with SHA256, 8 digits or 60 s steps fail."""
    Key.objects.create(user=user, type="TOTP", secret=crypto.encrypt(base64.b32encode(RFC_SEED).decode()))
    wait_for_fresh_step()
    now = time.time()
    near = {totp_code(RFC_SEED, now + 30 * k) for k in (-1, 0, 1)}
    others = [
        totp_code(RFC_SEED, now, digits=8),
        totp_code(RFC_SEED, now, digest=hashlib.sha256),
        totp_code(RFC_SEED, now, step=60),
    ]
    for code in others:
        if code in near:  # a chance coincidence with a valid SHA1 code proves nothing
            continue
        r = signed_in.api("post", API + "totp/authenticate", {"code": code})
        assert r.status_code == 400 and error_codes(r) == ["invalid_code"], code


# -- enrolment: the HTML page ------------------------------------------------------------------------------


def test_enrol_page_shows_secret_and_inline_qr(signed_in, user):
    r = signed_in.get(TOTP_NEW)
    assert r.status_code == 200
    html = r.content.decode()
    seed = r.context["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", seed)
    assert len(base64.b32decode(seed)) * 8 == 160
    assert f'id="totp-secret">{seed}</code>' in html
    svg = re.search(r"<svg[^>]*>.*?</svg>", html, re.S)
    assert svg, "no inline <svg> QR code"
    uri = r.context["totp_url"]
    check_uri(uri, seed)
    assert qr_encodes(svg.group(0), uri)
    # The pending key holds the seed (encrypted), the session only the key id.
    assert crypto.decrypt(pending_key(user).secret) == seed
    assert seed not in json.dumps(dict(signed_in.session.items()))


def test_enrol_page_resumes_the_same_pending_seed_and_users_get_different_seeds(signed_in, user, django_user_model):
    first = signed_in.get(TOTP_NEW).context["secret"]
    assert signed_in.get(TOTP_NEW).context["secret"] == first
    other = django_user_model.objects.create_user("bob", "bob@example.com", "pw")
    from tests.conftest import CsrfClient

    bob = CsrfClient()
    bob.force_login(other)
    assert bob.get(TOTP_NEW).context["secret"] != first


def test_issuer_and_username_in_otpauth_uri(signed_in, user):
    with mf_settings(TOKEN_ISSUER_NAME="Example Corp"):
        r = signed_in.get(TOTP_NEW)
    check_uri(r.context["totp_url"], r.context["secret"], issuer="Example Corp", account="alice")


def test_enrol_with_current_code_activates_named_key(signed_in, user):
    seed = signed_in.get(TOTP_NEW).context["secret"]
    code = pyotp.TOTP(seed).now()
    r = signed_in.post(TOTP_NEW, {"answer": code, "name": "Work phone"})
    assert r.status_code == 302 and r["Location"] == "/multifactor/recovery/"  # a first key: save recovery codes next
    key = Key.objects.get(user=user)
    assert (key.confirmed, key.enabled, key.name, key.type) == (True, True, "Work phone", "TOTP")
    assert crypto.decrypt(key.secret) == seed
    assert mfa_state(signed_in).pending == {}  # the enrolment is over
    home = signed_in.get(HOME)
    assert "Work phone" in home.content.decode()
    # Enrolment counts as a verification, and the enrolment code cannot be used again.
    assert signed_in.get("/f1/").content == b"ok"
    r = signed_in.post(TOTP_AUTH, {"answer": code})
    assert r.status_code == 400


def test_enrol_code_computed_independently(signed_in, user):
    """The enrolment check uses RFC 6238 defaults too: a code from our own HMAC-SHA1 activates."""
    seed = signed_in.get(TOTP_NEW).context["secret"]
    r = signed_in.post(TOTP_NEW, {"answer": totp_code(base64.b32decode(seed), time.time())})
    assert r.status_code == 302
    assert Key.objects.get(user=user).confirmed


@pytest.mark.parametrize("field", ["secret", "key", "seed", "base32"])
def test_posted_seed_is_ignored(signed_in, user, field):
    server_seed = signed_in.get(TOTP_NEW).context["secret"]
    attacker_seed = pyotp.random_base32()
    attacker = pyotp.TOTP(attacker_seed)
    r = signed_in.post(TOTP_NEW, {"answer": attacker.now(), field: attacker_seed, "name": "x"})
    if attacker.now() != pyotp.TOTP(server_seed).now():  # a one-in-a-million coincidence would match
        assert r.status_code == 400
        assert not Key.objects.filter(user=user, confirmed=True).exists()
    r = signed_in.post(TOTP_NEW, {"answer": pyotp.TOTP(server_seed).now(), field: attacker_seed})
    assert r.status_code == 302
    assert crypto.decrypt(Key.objects.get(user=user, confirmed=True).secret) == server_seed


def test_wrong_enrolment_code_is_a_form_error_and_counted(signed_in, user):
    seed = signed_in.get(TOTP_NEW).context["secret"]
    r = signed_in.post(TOTP_NEW, {"answer": wrong_code(pyotp.TOTP(seed))})
    assert r.status_code == 400
    assert r.context["form"].errors["answer"]
    assert 'role="alert"' in r.content.decode()
    assert r.context["secret"] == seed  # the same enrolment goes on
    assert pending_key(user).failures == 1
    r = signed_in.post(TOTP_NEW, {"answer": "abc"})
    assert r.status_code == 400 and r.context["form"].errors["answer"]


def test_enrolment_lockout_then_a_fresh_enrolment_works(signed_in, user):
    with mf_settings(THROTTLE_MAX_FAILURES=2, THROTTLE_FREE_FAILURES=10):
        seed = signed_in.get(TOTP_NEW).context["secret"]
        totp = pyotp.TOTP(seed)
        assert signed_in.post(TOTP_NEW, {"answer": wrong_code(totp)}).status_code == 400
        r = signed_in.post(TOTP_NEW, {"answer": wrong_code(totp)})
        assert r.status_code == 302  # the pending enrolment is locked: back home with a message
        assert not pending_key(user).enabled
        # Even the right code cannot finish the locked enrolment ...
        r = signed_in.post(TOTP_NEW, {"answer": totp.now()})
        assert not Key.objects.filter(user=user, confirmed=True).exists()
        # ... but starting again gives a new seed that works.
        fresh = signed_in.get(TOTP_NEW).context["secret"]
        assert fresh != seed
        r = signed_in.post(TOTP_NEW, {"answer": pyotp.TOTP(fresh).now()})
        assert r.status_code == 302, r.content
        assert r["Location"] == "/multifactor/recovery/", [str(m) for m in get_messages(r.wsgi_request)]
        assert crypto.decrypt(Key.objects.get(user=user, confirmed=True).secret) == fresh


def test_enrolment_session_cycles_key(signed_in, user):
    seed = signed_in.get(TOTP_NEW).context["secret"]
    before = signed_in.cookies["sessionid"].value
    signed_in.post(TOTP_NEW, {"answer": pyotp.TOTP(seed).now()})
    assert signed_in.cookies["sessionid"].value != before


# -- enrolment and verification: the API -------------------------------------------------------------------


def test_api_enrol_and_authenticate(signed_in, user):
    r = signed_in.api("post", API + "totp/begin")
    assert r.status_code == 200
    body = data(r)
    assert set(body) == {"secret", "totp_url", "qr_svg"}
    seed = body["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", seed)
    check_uri(body["totp_url"], seed)
    assert body["qr_svg"].startswith("<svg") and qr_encodes(body["qr_svg"], body["totp_url"])
    assert seed not in json.dumps(dict(signed_in.session.items()))

    totp = pyotp.TOTP(seed)
    r = signed_in.api("post", API + "totp/activate", {"code": totp.now(), "name": "Laptop"})
    assert r.status_code == 201, r.content
    key = data(r)
    assert set(key) == {"id", "type", "name", "enabled", "created_at", "last_used_at"}
    assert (key["type"], key["name"], key["enabled"]) == ("TOTP", "Laptop", True)
    assert crypto.decrypt(Key.objects.get(pk=key["id"]).secret) == seed

    before = signed_in.cookies["sessionid"].value
    r = signed_in.api("post", API + "totp/authenticate", {"code": totp.at(time.time() + 30)})
    assert r.status_code == 200, r.content
    assert data(r) == {"verified": True, "next": "/done/"}
    assert signed_in.cookies["sessionid"].value != before  # cycle_key() after a verification


def test_api_activate_ignores_posted_secret(signed_in, user):
    server_seed = data(signed_in.api("post", API + "totp/begin"))["secret"]
    attacker_seed = pyotp.random_base32()
    r = signed_in.api("post", API + "totp/activate", {"code": pyotp.TOTP(attacker_seed).now(), "secret": attacker_seed})
    assert r.status_code == 400 and error_codes(r) == ["invalid_code"]
    r = signed_in.api("post", API + "totp/activate", {"code": pyotp.TOTP(server_seed).now(), "secret": attacker_seed})
    assert r.status_code == 201
    assert crypto.decrypt(Key.objects.get(user=user, confirmed=True).secret) == server_seed


def test_api_activate_without_begin_is_409(signed_in):
    r = signed_in.api("post", API + "totp/activate", {"code": "123456"})
    assert r.status_code == 409 and error_codes(r) == ["no_pending_enrolment"]


def test_api_authenticate_returns_safe_next(signed_in, totp_key):
    key, totp = totp_key
    assert signed_in.get("/f1/")["Location"] == AUTHENTICATE  # remembers /f1/
    r = signed_in.api("post", API + "totp/authenticate", {"code": totp.now()})
    assert data(r) == {"verified": True, "next": "/f1/"}


# -- replay and window (R2, R3) ----------------------------------------------------------------------------


def test_same_code_twice_refused(signed_in, totp_key):
    key, totp = totp_key
    code = totp.now()
    assert signed_in.post(TOTP_AUTH, {"answer": code}).status_code == 302
    r = signed_in.post(TOTP_AUTH, {"answer": code})
    assert r.status_code == 400 and r.context["form"].errors["answer"]
    r = signed_in.api("post", API + "totp/authenticate", {"code": code})
    assert r.status_code == 400 and error_codes(r) == ["invalid_code"]


def test_same_code_refused_after_logout_and_login(signed_in, user, totp_key):
    key, totp = totp_key
    code = totp.now()
    assert signed_in.post(TOTP_AUTH, {"answer": code}).status_code == 302
    assert signed_in.post("/accounts/logout/").status_code in (200, 302)
    assert signed_in.get("/f1/").status_code == 302  # signed out: login_required redirects
    signed_in.force_login(user)
    assert signed_in.get("/f1/")["Location"] == AUTHENTICATE  # logout cleared the MFA state
    r = signed_in.post(TOTP_AUTH, {"answer": code})
    assert r.status_code == 400
    assert signed_in.get("/f1/")["Location"] == AUTHENTICATE


def test_same_code_refused_in_another_session(user, totp_key):
    from tests.conftest import CsrfClient

    key, totp = totp_key
    one, two = CsrfClient(), CsrfClient()
    one.force_login(user)
    two.force_login(user)
    code = totp.now()
    assert one.post(TOTP_AUTH, {"answer": code}).status_code == 302
    assert two.post(TOTP_AUTH, {"answer": code}).status_code == 400


def test_earlier_step_than_last_accepted_refused(signed_in, totp_key):
    key, totp = totp_key
    now = time.time()
    current, following = totp.at(now), totp.at(now + 30)
    assert signed_in.post(TOTP_AUTH, {"answer": following}).status_code == 302
    assert signed_in.post(TOTP_AUTH, {"answer": current}).status_code == 400
    key.refresh_from_db()
    assert key.last_step == int(now) // 30 + 1 or key.last_step == int(time.time()) // 30 + 1


def test_previous_step_refused_after_current_accepted(signed_in, totp_key):
    key, totp = totp_key
    now = time.time()
    previous, current = totp.at(now - 30), totp.at(now)
    assert signed_in.post(TOTP_AUTH, {"answer": current}).status_code == 302
    assert signed_in.post(TOTP_AUTH, {"answer": previous}).status_code == 400


@pytest.mark.parametrize(
    "variant",
    [
        lambda c: c[:3] + " " + c[3:],
        lambda c: c.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
        lambda c: " " + c + " ",
        lambda c: c[:3] + "-" + c[3:],
        lambda c: c[:3] + "\u00a0" + c[3:],
    ],
    ids=["space", "fullwidth", "padded", "dash", "nbsp"],
)
def test_other_spellings_of_a_used_code_refused(signed_in, totp_key, variant):
    key, totp = totp_key
    code = totp.now()
    spelled = variant(code)
    assert signed_in.post(TOTP_AUTH, {"answer": code}).status_code == 302
    assert signed_in.post(TOTP_AUTH, {"answer": spelled}).status_code == 400
    assert signed_in.api("post", API + "totp/authenticate", {"code": spelled}).status_code == 400


FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.mark.parametrize("spell", [lambda c: c[:3] + " " + c[3:], lambda c: c.translate(FULLWIDTH)])
def test_other_spellings_of_a_fresh_code_accepted_once(signed_in, totp_key, spell):
    key, totp = totp_key
    code = totp.now()
    assert signed_in.post(TOTP_AUTH, {"answer": spell(code)}).status_code == 302
    assert signed_in.post(TOTP_AUTH, {"answer": code}).status_code == 400


def test_window_one_step(signed_in, totp_key):
    key, totp = totp_key
    wait_for_fresh_step()
    with mf_settings(TOTP_WINDOW=1):
        now = time.time()
        plus_two, plus_one = totp.at(now + 60), totp.at(now + 30)
        assert signed_in.post(TOTP_AUTH, {"answer": plus_two}).status_code == 400
        assert signed_in.post(TOTP_AUTH, {"answer": plus_one}).status_code == 302


def test_window_minus_two_refused(signed_in, totp_key):
    key, totp = totp_key
    wait_for_fresh_step()
    with mf_settings(TOTP_WINDOW=1):
        assert signed_in.post(TOTP_AUTH, {"answer": totp.at(time.time() - 60)}).status_code == 400
        assert signed_in.post(TOTP_AUTH, {"answer": totp.at(time.time() - 30)}).status_code == 302


def test_window_zero_and_two(signed_in, totp_key):
    key, totp = totp_key
    wait_for_fresh_step()
    with mf_settings(TOTP_WINDOW=0):
        assert signed_in.post(TOTP_AUTH, {"answer": totp.at(time.time() + 30)}).status_code == 400
    with mf_settings(TOTP_WINDOW=2):
        assert signed_in.post(TOTP_AUTH, {"answer": totp.at(time.time() + 60)}).status_code == 302


def test_default_window_is_one_step(signed_in, totp_key):
    key, totp = totp_key
    wait_for_fresh_step()
    assert signed_in.post(TOTP_AUTH, {"answer": totp.at(time.time() + 60)}).status_code == 400
    assert signed_in.post(TOTP_AUTH, {"answer": totp.at(time.time() + 30)}).status_code == 302


# -- throttling and lockout (R4) ---------------------------------------------------------------------------


def rewind_throttle(key):
    """The delay has passed (what a sleep would do), leaving the failure count as it is."""
    Key.objects.filter(pk=key.pk).update(throttled_until=timezone.now() - timezone.timedelta(seconds=1))


def test_delay_grows_after_free_failures_api(signed_in, totp_key):
    key, totp = totp_key
    auth = API + "totp/authenticate"
    with mf_settings(THROTTLE_FREE_FAILURES=2, THROTTLE_BASE_DELAY=1, THROTTLE_MAX_DELAY=4, THROTTLE_MAX_FAILURES=20):
        for expected in (1, 2):
            r = signed_in.api("post", auth, {"code": wrong_code(totp)})
            assert r.status_code == 400 and error_codes(r) == ["invalid_code"]
            key.refresh_from_db()
            assert key.failures == expected and key.throttled_until is None
        delays = []
        for failures in (3, 4, 5, 6):
            rewind_throttle(key)
            r = signed_in.api("post", auth, {"code": wrong_code(totp)})
            assert r.status_code == 400
            key.refresh_from_db()
            assert key.failures == failures
            # While throttled even the right code is refused, and not counted.
            r = signed_in.api("post", auth, {"code": totp.now()})
            assert r.status_code == 429 and error_codes(r) == ["throttled"]
            delays.append(int(r["Retry-After"]))
            key.refresh_from_db()
            assert key.failures == failures and key.last_step is None
        assert delays == [1, 2, 4, 4]
        assert signed_in.get("/f1/")["Location"] == AUTHENTICATE


def test_throttled_html_refuses_right_code_then_waits_and_success_resets(signed_in, totp_key):
    key, totp = totp_key
    with mf_settings(THROTTLE_FREE_FAILURES=1, THROTTLE_BASE_DELAY=1, THROTTLE_MAX_FAILURES=20):
        assert signed_in.post(TOTP_AUTH, {"answer": wrong_code(totp)}).status_code == 400
        assert signed_in.post(TOTP_AUTH, {"answer": wrong_code(totp)}).status_code == 400
        r = signed_in.post(TOTP_AUTH, {"answer": totp.now()})
        assert r.status_code == 429
        assert r.context["form"].errors["answer"]
        key.refresh_from_db()
        assert key.failures == 2 and key.last_step is None
        time.sleep(max(0.0, (key.throttled_until - timezone.now()).total_seconds()) + 0.05)
        r = signed_in.post(TOTP_AUTH, {"answer": totp.now()})
        assert r.status_code == 302
        key.refresh_from_db()
        assert key.failures == 0 and key.throttled_until is None
        assert signed_in.get("/f1/").content == b"ok"


def test_success_resets_count(signed_in, totp_key):
    key, totp = totp_key
    with mf_settings(THROTTLE_FREE_FAILURES=10, THROTTLE_MAX_FAILURES=3):
        for _ in range(2):
            signed_in.post(TOTP_AUTH, {"answer": wrong_code(totp)})
        assert signed_in.post(TOTP_AUTH, {"answer": totp.now()}).status_code == 302
        key.refresh_from_db()
        assert key.failures == 0
        for _ in range(2):
            signed_in.post(TOTP_AUTH, {"answer": wrong_code(totp)})
        key.refresh_from_db()
        assert key.enabled and key.locked_at is None and key.failures == 2


def test_lockout_locks_only_that_key_and_keeps_user_signed_in(signed_in, user):
    key_a, totp_a = make_totp(user, "A")
    with mf_settings(THROTTLE_FREE_FAILURES=10, THROTTLE_MAX_FAILURES=3):
        for _ in range(2):
            r = signed_in.post(TOTP_AUTH, {"answer": wrong_code(totp_a)})
            assert r.status_code == 400
        key_b, totp_b = make_totp(user, "B")  # enrolled later: its count starts at 0
        r = signed_in.api("post", API + "totp/authenticate", {"code": wrong_code(totp_a)})
        # A is locked by this guess, B is left: A's lock does not answer for B (SECURITY.md R17).
        assert r.status_code == 400 and error_codes(r) == ["invalid_code"]
        key_a.refresh_from_db()
        key_b.refresh_from_db()
        assert key_a.enabled is False and key_a.locked_at is not None and key_a.failures == 3
        assert key_b.enabled and key_b.locked_at is None and key_b.failures == 1
        # Still signed in.
        assert signed_in.get("/plain/").content == b"plain"
        assert "_auth_user_id" in signed_in.session
        # A's right code is refused, B's works.
        assert signed_in.post(TOTP_AUTH, {"answer": totp_a.now()}).status_code == 400
        r = signed_in.post(TOTP_AUTH, {"answer": totp_b.now()})
        assert r.status_code == 302
        assert signed_in.get("/f1/").content == b"ok"
        home = signed_in.get(HOME).content.decode()
        assert "locked" in home
        # A locked key cannot be re-enabled, neither by the page nor by the API.
        r = signed_in.post(action_url("toggle_factor", key_a.pk))
        assert r.status_code == 302
        assert any("locked" in str(m) for m in get_messages(r.wsgi_request))
        r = signed_in.api("patch", API + f"keys/{key_a.pk}", {"enabled": True})
        assert r.status_code == 409 and error_codes(r) == ["key_locked"]
        key_a.refresh_from_db()
        assert key_a.enabled is False and key_a.locked_at is not None


def test_lockout_ends_that_keys_verification_in_the_victims_session(user):
    """Someone with the password locks the key; the victim stays signed in, their verification of it ends."""
    from tests.conftest import CsrfClient

    key, totp = make_totp(user)
    victim, attacker = CsrfClient(), CsrfClient()
    victim.force_login(user)
    attacker.force_login(user)
    assert verify_totp(victim, totp).status_code == 302
    assert victim.get("/f1/").content == b"ok"
    with mf_settings(THROTTLE_FREE_FAILURES=10, THROTTLE_MAX_FAILURES=2):
        for _ in range(2):
            attacker.post(TOTP_AUTH, {"answer": wrong_code(totp)})
    key.refresh_from_db()
    assert key.locked_at is not None
    assert victim.get("/plain/").content == b"plain"
    assert victim.get("/f1/")["Location"] == AUTHENTICATE


def test_only_key_locked_is_not_no_keys(signed_in, user):
    key, totp = make_totp(user)
    with mf_settings(THROTTLE_FREE_FAILURES=10, THROTTLE_MAX_FAILURES=2):
        for _ in range(2):
            signed_in.post(TOTP_AUTH, {"answer": wrong_code(totp)})
    key.refresh_from_db()
    assert key.locked_at is not None and not key.enabled
    # factors=1: a challenge, not an enrolment.
    r = signed_in.get("/f1/")
    assert r.status_code == 302 and r["Location"] == AUTHENTICATE
    page = signed_in.get(AUTHENTICATE)
    assert page.status_code == 200 and page.context["locked"] and page.context["has_keys"]
    # /add/ refuses without a verification, and so do the enrolment page and API.
    r = signed_in.get(ADD)
    assert r.status_code == 200 and r.context["can_edit"] is False
    assert "totp/new" not in r.content.decode()
    r = signed_in.get(TOTP_NEW)
    assert r.status_code == 302 and r["Location"] == HOME
    r = signed_in.api("post", API + "totp/begin")
    assert r.status_code == 403 and error_codes(r) == ["reauthentication_required"]
    assert not Key.objects.filter(user=user, confirmed=False).exists()
    # The old code path into "no keys": toggling or deleting the locked key needs a verification too.
    r = signed_in.api("delete", API + f"keys/{key.pk}")
    assert r.status_code == 403
    assert Key.objects.filter(pk=key.pk).exists()


def test_throttle_counts_enrolment_failures_with_429(signed_in, user):
    with mf_settings(THROTTLE_FREE_FAILURES=0, THROTTLE_BASE_DELAY=60, THROTTLE_MAX_FAILURES=20):
        seed = data(signed_in.api("post", API + "totp/begin"))["secret"]
        totp = pyotp.TOTP(seed)
        r = signed_in.api("post", API + "totp/activate", {"code": wrong_code(totp)})
        assert r.status_code == 400
        r = signed_in.api("post", API + "totp/activate", {"code": totp.now()})
        assert r.status_code == 429 and error_codes(r) == ["throttled"]
        assert 55 <= int(r["Retry-After"]) <= 60
        assert not Key.objects.filter(user=user, confirmed=True).exists()


def test_hotp_helper_matches_rfc4226_appendix_d():
    expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
    assert [hotp(RFC_SEED, i) for i in range(10)] == expected
