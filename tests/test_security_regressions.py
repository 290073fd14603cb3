"""One named test per line of SECURITY.md's "predecessor's bugs" and per advisory it cites, so a reviewer can
tick them off. Each test fails if the old behaviour comes back. (WebAuthn ones: test_security_regressions_webauthn.)"""

import ast
import configparser
import functools
import pathlib
import sys

import pyotp
import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from multifactor import conf
from multifactor.models import FALLBACK, Key
from multifactor.session import Verification
from tests.conftest import CsrfClient, edit_mfa_state, make_totp, verify_totp
from tests.mfa_helpers import AUTHENTICATE, BASE, TOTP_AUTH, TOTP_NEW, action_url, mf_settings

pytestmark = pytest.mark.django_db
ROOT = pathlib.Path(__file__).resolve().parent.parent
FALLBACK_AUTH = BASE + "fallback/auth/"
RECORDING = {"rec": (lambda user: user.email, "tests.transports.record")}


def fallback_only(client, n=1, at=None):
    import time

    def change(state):
        now = time.time() if at is None else at
        state.verifications = [Verification(None, FALLBACK, now, now + 3600) for _ in range(n)]

    edit_mfa_state(client, change)


# -- django-multifactor 0.9.x -----------------------------------------------------------------------------


def test_max_age_is_measured_from_the_verification_time_not_the_expiry(signed_in, totp_key):
    verify_totp(signed_in, totp_key[1])

    def age(state):
        state.verifications = [
            Verification(v.key_id, v.type, v.verified_at - 61, v.expires_at) for v in state.verifications
        ]

    edit_mfa_state(signed_in, age)  # verified 61 s ago, RECHECK expiry still hours away
    assert signed_in.get("/max-age/")["Location"] == AUTHENTICATE


def test_two_fallback_codes_do_not_count_as_two_factors(signed_in, totp_key):
    fallback_only(signed_in, n=2)
    assert signed_in.get("/f2/").status_code == 302


def test_a_fallback_code_does_not_satisfy_factors_1_for_a_user_without_keys(signed_in):
    fallback_only(signed_in)
    assert signed_in.get("/f1/")["Location"] == BASE + "add/"


def test_the_fallback_code_is_not_in_the_session(user, totp_key, settings):
    from django.core import signing

    from tests import transports

    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"  # readable by the client
    client = CsrfClient()
    client.force_login(user)
    with mf_settings(FALLBACKS=RECORDING):
        transports.SENT.clear()
        assert client.post(FALLBACK_AUTH, {"send": "1"}).status_code == 302
        code = "".join(ch for ch in transports.SENT[-1][2] if ch.isdigit())[:8]
    raw = client.cookies["sessionid"].value
    data = signing.loads(raw, salt="django.contrib.sessions.backends.signed_cookies", serializer=signing.JSONSerializer)
    assert len(code) == 8 and code not in raw and code not in str(data)


def test_enrolment_ignores_a_totp_seed_posted_by_the_client(signed_in, user):
    attacker_seed = pyotp.random_base32()
    page = signed_in.get(TOTP_NEW)
    server_seed = page.context["secret"]
    response = signed_in.post(
        TOTP_NEW, {"answer": pyotp.TOTP(attacker_seed).now(), "secret": attacker_seed, "key": attacker_seed}
    )
    assert response.status_code == 400 and not Key.objects.filter(user=user, confirmed=True).exists()
    signed_in.post(TOTP_NEW, {"answer": pyotp.TOTP(server_seed).now(), "secret": attacker_seed})
    from multifactor import crypto

    assert crypto.decrypt(Key.objects.get(user=user, confirmed=True).secret) == server_seed


def test_enrolment_page_escapes_what_it_shows(signed_in, user):
    user.username = '<script>alert("x")</script>'
    user.save()
    body = signed_in.get(TOTP_NEW).content.decode()
    assert "<script>alert" not in body


def test_totp_enrolment_works_with_keyword_only_provisioning_uri():
    assert pyotp.TOTP(pyotp.random_base32()).provisioning_uri(name="a", issuer_name="b").startswith("otpauth://")


def test_enrolment_page_renders_with_the_installed_pyotp(signed_in):
    assert signed_in.get(TOTP_NEW).status_code == 200


def test_every_runtime_import_is_declared():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    declared = {
        line.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower().replace("-", "_")
        for line in config["options"]["install_requires"].strip().splitlines()
    }
    names = {"django": "django", "pyotp": "pyotp", "fido2": "fido2", "cryptography": "cryptography", "segno": "segno"}
    stdlib = set(sys.stdlib_module_names) | {"multifactor", "asgiref"}  # asgiref comes with Django
    for path in (ROOT / "multifactor").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            for module in modules:
                top = module.split(".")[0]
                assert top in stdlib or names.get(top) in declared, f"{path.name} imports undeclared {top}"


def test_no_cycle_key_bug_the_session_key_changes_on_verification(signed_in, totp_key):
    before = signed_in.session.session_key
    verify_totp(signed_in, totp_key[1])
    assert signed_in.session.session_key != before


def test_a_disabled_key_does_not_stay_verified_in_other_sessions(user, totp_key):
    key, totp = totp_key
    first, second = CsrfClient(), CsrfClient()
    for c in (first, second):
        c.force_login(user)
        verify_totp(c, totp, key)
    assert second.get("/f1/").content == b"ok"
    first.post(action_url("toggle_factor", key.pk))
    assert second.get("/f1/").status_code == 302  # no longer verified (and, with no key left, sent to enrol)


def test_factors_may_be_a_partial(signed_in, totp_key):
    verify_totp(signed_in, totp_key[1])
    assert signed_in.get("/partial/").status_code == 302  # partial asks for 2, one verified: a challenge, not a 500
    assert callable(functools.partial(lambda n, request: n, 1))


@pytest.mark.parametrize(
    "url", [TOTP_NEW, TOTP_AUTH, BASE, BASE + "add/", BASE + "recovery/", FALLBACK_AUTH, BASE + "fido2/new/"]
)
def test_anonymous_access_to_mfa_pages_is_not_a_500(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_toggling_a_missing_key_is_a_404_not_a_500(signed_in):
    assert signed_in.post(action_url("toggle_factor", 999999)).status_code == 404


def test_a_bad_fallback_name_is_a_404_not_a_500(signed_in):
    assert signed_in.post(action_url("toggle_fallback", "nope")).status_code == 404


def test_a_post_to_home_is_a_405_not_a_500(signed_in):
    assert signed_in.post(BASE).status_code == 405


def test_settings_are_read_lazily_so_override_settings_works(signed_in, totp_key):
    assert conf.get().TOTP_WINDOW == 1
    with mf_settings(TOTP_WINDOW=3):
        assert conf.get().TOTP_WINDOW == 3


def test_the_documented_email_templates_are_the_ones_rendered(signed_in, totp_key, settings, tmp_path):
    override = tmp_path / "multifactor" / "fallback"
    override.mkdir(parents=True)
    (override / "email.txt").write_text("SITE TEXT {{ message }}")
    (override / "email.html").write_text("<p>SITE HTML {{ message }}</p>")
    (override / "email_subject.txt").write_text("SITE SUBJECT")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    mail.outbox.clear()
    signed_in.post(FALLBACK_AUTH, {"send": "1"})
    message = mail.outbox[-1]
    assert message.subject == "SITE SUBJECT" and message.body.startswith("SITE TEXT")
    assert "SITE HTML" in message.alternatives[0][0]


def test_factors_setting_closes_the_urls_not_only_the_cards(signed_in):
    with mf_settings(FACTORS=["FIDO2"]):
        response = signed_in.get(TOTP_NEW)
        assert response.status_code == 302 and Key.objects.filter(type="TOTP").count() == 0
        api = signed_in.api("post", BASE + "api/v1/totp/begin")
        assert api.status_code == 403


def test_a_protected_request_writes_no_session_and_adds_no_query(verified, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as plain:
        verified.get("/plain/")
    with django_assert_num_queries(len(plain)):
        response = verified.get("/f1/")
    assert response.content == b"ok" and "sessionid" not in response.cookies


# -- advisories of other libraries ------------------------------------------------------------------------


def test_allauth_0_61_0_a_totp_code_is_accepted_once(signed_in, totp_key):
    code = totp_key[1].now()
    assert signed_in.post(TOTP_AUTH, {"answer": code}).status_code == 302
    assert signed_in.post(TOTP_AUTH, {"answer": code}).status_code == 400


def test_allauth_65_20_1_a_used_code_in_another_representation_is_refused(signed_in, totp_key):
    code = totp_key[1].now()
    signed_in.post(TOTP_AUTH, {"answer": code})
    full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in code)
    for variant in (f"{code[:3]} {code[3:]}", full_width, f" {code} "):
        assert signed_in.post(TOTP_AUTH, {"answer": variant}).status_code == 400


def test_predecessor_0_9_5_a_lockout_does_not_log_the_user_out(signed_in, user):
    key, totp = make_totp(user)
    with mf_settings(THROTTLE_MAX_FAILURES=2, THROTTLE_FREE_FAILURES=5):
        for _ in range(2):
            signed_in.post(TOTP_AUTH, {"answer": "000000" if totp.now() != "000000" else "111111"})
    key.refresh_from_db()
    assert key.locked_at is not None
    assert signed_in.get(BASE).status_code == 200  # still signed in


def test_predecessor_issue_107_enrolling_a_new_totp_needs_the_old_factor(signed_in, totp_key):
    response = signed_in.get(TOTP_NEW)
    assert response.status_code == 302  # reauthentication required, not an enrolment page
    assert signed_in.api("post", BASE + "api/v1/totp/begin").status_code == 403


def test_allauth_65_21_0_pending_state_does_not_reach_the_next_user(client, user):
    other = get_user_model().objects.create_user("mallory", "m@example.com", "pw")
    client.force_login(user)
    client.get(TOTP_NEW)  # a pending enrolment in this browser
    client.post("/accounts/logout/")
    client.force_login(other)
    from multifactor import session

    assert session.load(client.session).pending == {}
    assert session.load(client.session).verifications == []


def test_allauth_65_14_2_x_forwarded_for_is_not_trusted_by_default(signed_in, totp_key):
    from multifactor.models import Event

    signed_in.post(TOTP_AUTH, {"answer": totp_key[1].now()}, HTTP_X_FORWARDED_FOR="6.6.6.6", REMOTE_ADDR="10.1.2.3")
    assert Event.objects.filter(kind="key_used").latest("pk").ip == "10.1.2.3"


# -- SECURITY.md R4 and R17: several keys of one type (issue 13 part 1) ------------------------------------
# More cases, and the PostgreSQL races showing parallel guesses on several apps are capped in total, are in
# tests/test_totp_several_apps.py.


def test_r17_r4_a_right_code_of_app_b_is_no_failed_guess_on_app_a(signed_in, user):
    """R17 "a code accepted by one of the user's keys is no failed guess on the others"; R4 "a lockout must
    not lock their other factors": 25 sign-ins with B (over the default limit of 20) leave A untouched."""
    from multifactor.models import Event

    key_a, totp_a = make_totp(user, "A")
    key_b, totp_b = make_totp(user, "B")
    for _ in range(25):
        assert verify_totp(signed_in, totp_b, key_b).status_code == 302
    key_a.refresh_from_db()
    assert (key_a.failures, key_a.throttled_until, key_a.enabled) == (0, None, True)
    assert not Event.objects.filter(kind__in=["verification_failed", "key_locked"]).exists()
    assert signed_in.post(TOTP_AUTH, {"answer": totp_a.now()}).status_code == 302


@pytest.mark.parametrize("n", [2, 5])
def test_r17_r4_wrong_guesses_are_capped_per_user_however_many_apps(signed_in, user, n):
    """R17 "failures still cap guesses per user at the limit, however many keys are enrolled" (no N x limit
    guesses with N apps); R4 "at most ... consecutive failures, then the key is disabled"."""
    from tests.test_totp_several_apps import wrong_for

    keys = [make_totp(user, str(i)) for i in range(n)]
    wrong = wrong_for(*(t for _k, t in keys))
    with mf_settings(THROTTLE_FREE_FAILURES=100, THROTTLE_MAX_FAILURES=10):
        answers = [signed_in.post(TOTP_AUTH, {"answer": wrong}).status_code for _ in range(10)]
        assert all(status == 400 for status in answers)
        for key, totp in keys:
            key.refresh_from_db()
            assert key.locked_at is not None and not key.enabled
            assert signed_in.post(TOTP_AUTH, {"answer": totp.now()}).status_code in (400, 403)
    assert signed_in.get(BASE).status_code == 200  # still signed in


def test_r17_r4_a_delayed_app_does_not_answer_for_another(signed_in, user):
    """R4 "consecutive failures per key raise a growing delay", R17: while app A waits out its delay, a
    wrong code is checked by app B (400, counted), not answered with A's 429, and B's right code works."""
    from tests.test_totp_several_apps import wrong_for

    key_a, totp_a = make_totp(user, "A")
    with mf_settings(THROTTLE_FREE_FAILURES=2, THROTTLE_BASE_DELAY=60):
        for _ in range(3):
            signed_in.post(TOTP_AUTH, {"answer": wrong_for(totp_a)})
        assert signed_in.post(TOTP_AUTH, {"answer": totp_a.now()}).status_code == 429
        key_b, totp_b = make_totp(user, "B")
        assert signed_in.post(TOTP_AUTH, {"answer": wrong_for(totp_a, totp_b)}).status_code == 400
        assert signed_in.post(TOTP_AUTH, {"answer": totp_b.now()}).status_code == 302
    key_a.refresh_from_db()
    assert key_a.failures == 0 and key_a.enabled  # a success resets the (per-user) count
