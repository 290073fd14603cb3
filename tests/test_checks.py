"""``manage.py check``: misconfiguration is reported at start-up (ids ``multifactor.*``), never by a crash at
request time."""

import datetime
import types

import pytest
from cryptography.fernet import Fernet
from decorator_include import decorator_include
from django.contrib import admin
from django.core.checks import Error, Warning, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from django.urls import include, path

from multifactor.decorators import multifactor_protected
from tests import views
from tests.conftest import SIGNED_COOKIES, make_totp, verify_totp

# Django 6.1 runs database checks (JSONField support) whenever checks run without explicit databases.
pytestmark = pytest.mark.django_db

KEY = "q2H1iU3N4j3hV6o1yqQm4b9V7lXbJm1gXvM5mM8fJ3E="  # the suite's key (tests/settings.py)


@pytest.fixture(autouse=True)
def no_key_in_environment(monkeypatch):
    monkeypatch.delenv("MULTIFACTOR_ENCRYPTION_KEYS", raising=False)


def multifactor_issues(**kwargs):
    return [m for m in run_checks(**kwargs) if m.id and m.id.startswith("multifactor.")]


def ids(messages):
    return sorted(m.id for m in messages)


def with_multifactor(settings, **values):
    """override_settings(MULTIFACTOR=...) on top of the suite's configuration."""
    return override_settings(MULTIFACTOR={**settings.MULTIFACTOR, **values})


def urlconf(*patterns):
    """A URLconf module built in the test (ROOT_URLCONF accepts a module object)."""
    module = types.ModuleType("tests_checks_urlconf")
    module.urlpatterns = list(patterns)
    return module


def the_mfa_pages(prefix="multifactor/"):
    return path(prefix, include("multifactor.urls"))


# -- a clean configuration -------------------------------------------------------------------------------


def test_clean_configuration_has_no_multifactor_issue():
    assert multifactor_issues() == []
    assert multifactor_issues(include_deployment_checks=True) == []


def test_manage_py_check_passes():
    call_command("check")


# -- settings --------------------------------------------------------------------------------------------


def test_unknown_key_is_an_error(settings):
    with with_multifactor(settings, RECHEK_MAX=60):
        (issue,) = multifactor_issues()
    assert isinstance(issue, Error) and issue.id == "multifactor.E001"
    assert "RECHEK_MAX" in issue.msg


def test_unknown_key_fails_manage_py_check(settings):
    with with_multifactor(settings, NOT_A_SETTING=True):
        with pytest.raises(SystemCheckError, match=r"multifactor\.E001.*NOT_A_SETTING"):
            call_command("check")


@pytest.mark.parametrize(
    "name, value",
    [
        ("RECHECK", "yes"),
        ("RECHECK_MIN", "3h"),
        ("RECHECK_MAX", -5),
        ("RECHECK_MIN", True),
        ("FACTORS", "TOTP"),
        ("FACTORS", ["TOTP", "SMS"]),
        ("FALLBACKS", {"email": "not a pair"}),
        ("BYPASS", 42),
        ("LOGIN_CALLBACK", ["not", "a", "path"]),
        ("SHOW_LOGIN_MESSAGE", "no"),
        ("FIDO_ORIGINS", "https://example.com"),
        ("ENCRYPTION_KEYS", KEY),
        ("TOTP_WINDOW", 100),
        ("THROTTLE_MAX_FAILURES", 1000),
    ],
)
def test_bad_value_is_an_error(settings, name, value):
    with with_multifactor(settings, **{name: value}):
        issues = multifactor_issues()
    (error,) = [i for i in issues if isinstance(i, Error)]  # (W002 too when ENCRYPTION_KEYS is unusable)
    assert error.id == "multifactor.E001" and name in error.msg


def test_settings_must_be_a_dict(settings):
    with override_settings(MULTIFACTOR=[("RECHECK", True)]):
        issues = multifactor_issues()
    assert "multifactor.E001" in ids(issues)


def test_recheck_min_above_max_is_an_error(settings):
    with with_multifactor(settings, RECHECK_MIN=7200, RECHECK_MAX=3600):
        (issue,) = multifactor_issues()
    assert issue.id == "multifactor.E001" and "RECHECK_MAX" in issue.msg


@pytest.mark.parametrize(
    "name",
    ["FIDO_SERVER_ICON", "MAX_ATTEMPTS", "ATTEMPT_PERIOD", "LOCKOUT_PERIOD", "ATTEMPT_RETENTION_DAYS", "U2F_APPID"],
)
def test_deprecated_keys_are_warnings(settings, name):
    with with_multifactor(settings, **{name: 5}):
        (issue,) = multifactor_issues()
    assert isinstance(issue, Warning) and issue.id == "multifactor.W010"  # 0.9.x's W001 meant something else
    assert name in issue.msg
    call_command("check")  # a warning does not stop the site


def test_every_0_9_setting_is_accepted(settings):
    """The keys django-multifactor 0.9 documented keep working unchanged (a package swap)."""
    old = {
        "LOGIN_CALLBACK": False,
        "RECHECK": True,
        "RECHECK_MIN": 60 * 60 * 3,
        "RECHECK_MAX": 60 * 60 * 6,
        "FIDO_SERVER_ID": "example.com",
        "FIDO_SERVER_NAME": "Django App",
        "TOKEN_ISSUER_NAME": "Django App",
        "LOGIN_MESSAGE": '<a href="{}">Manage multifactor settings</a>.',
        "SHOW_LOGIN_MESSAGE": False,
        "FACTORS": ["FIDO2", "TOTP"],
        "FALLBACKS": {"email": (lambda user: user.email, "multifactor.factors.fallback.send_email")},
        "HTML_EMAIL": True,
        "BYPASS": None,
    }
    with with_multifactor(settings, **old):
        assert multifactor_issues() == []


def test_bad_setting_does_not_break_requests(settings, client, user):
    """A bad value falls back to its default (and check reports it); requests keep working."""
    key, totp = make_totp(user)
    client.force_login(user)
    with with_multifactor(settings, RECHECK_MIN="soon", RECHECK="always", UNKNOWN=1):
        assert client.get("/f1/")["Location"] == "/multifactor/authenticate/"
        assert verify_totp(client, totp).status_code == 302
        assert client.get("/f1/").content == b"ok"


# -- encryption keys -------------------------------------------------------------------------------------


def test_missing_encryption_key_outside_debug_is_a_warning(settings):
    multifactor = {k: v for k, v in settings.MULTIFACTOR.items() if k != "ENCRYPTION_KEYS"}
    with override_settings(MULTIFACTOR=multifactor, DEBUG=False):
        (issue,) = multifactor_issues()
    assert isinstance(issue, Warning) and issue.id == "multifactor.W002"


def test_missing_encryption_key_in_debug_is_fine(settings):
    multifactor = {k: v for k, v in settings.MULTIFACTOR.items() if k != "ENCRYPTION_KEYS"}
    with override_settings(MULTIFACTOR=multifactor, DEBUG=True):
        assert multifactor_issues() == []


def test_encryption_key_from_environment_is_enough(settings, monkeypatch):
    monkeypatch.setenv("MULTIFACTOR_ENCRYPTION_KEYS", f"{Fernet.generate_key().decode()}, {KEY}")
    multifactor = {k: v for k, v in settings.MULTIFACTOR.items() if k != "ENCRYPTION_KEYS"}
    with override_settings(MULTIFACTOR=multifactor, DEBUG=False):
        assert multifactor_issues() == []


@pytest.mark.parametrize("bad", ["not-a-fernet-key", KEY[:-4], "", "x" * 44])
def test_invalid_fernet_key_is_an_error(settings, bad):
    with with_multifactor(settings, ENCRYPTION_KEYS=[KEY, bad]):
        issues = multifactor_issues()
    assert ids(issues) == ["multifactor.E002"], issues


def test_invalid_fernet_key_in_environment_is_an_error(settings, monkeypatch):
    monkeypatch.setenv("MULTIFACTOR_ENCRYPTION_KEYS", "nope")
    multifactor = {k: v for k, v in settings.MULTIFACTOR.items() if k != "ENCRYPTION_KEYS"}
    with override_settings(MULTIFACTOR=multifactor):
        assert ids(multifactor_issues()) == ["multifactor.E002"]


# -- the revocation counter and the authentication backend ----------------------------------------------


@pytest.mark.parametrize(
    "backends",
    [["django.contrib.auth.backends.ModelBackend"], ["tests.nowhere.Backend"], []],
    ids=["django", "missing", "none"],
)
def test_no_backend_joining_the_revision_is_a_warning(settings, backends):
    with override_settings(AUTHENTICATION_BACKENDS=backends):
        (issue,) = multifactor_issues()
    assert isinstance(issue, Warning) and issue.id == "multifactor.W007"


@pytest.mark.parametrize(
    "backends",
    [
        ["multifactor.backends.ModelBackend"],
        ["multifactor.backends.AllowAllUsersModelBackend", "django.contrib.auth.backends.ModelBackend"],
        ["tests.views.SiteBackend"],
    ],
    ids=["ours", "ours-then-django", "site-mixin"],
)
def test_a_backend_joining_the_revision_is_fine(settings, backends):
    with override_settings(AUTHENTICATION_BACKENDS=backends):
        assert multifactor_issues() == []


def test_signed_cookies_with_local_cache_are_fine(settings):
    """No shared cache is needed any more: revocation reads a counter loaded with the user."""
    with override_settings(SESSION_ENGINE=SIGNED_COOKIES):
        assert multifactor_issues() == []


def test_db_sessions_with_local_cache_are_fine(settings):
    for engine in ("django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db"):
        with override_settings(SESSION_ENGINE=engine):
            assert multifactor_issues() == []


# -- the MFA pages must not sit behind their own protection (a redirect loop) ---------------------------


def test_mfa_pages_behind_decorator_include_are_an_error():
    conf = urlconf(
        path("admin/multifactor/", decorator_include(multifactor_protected(factors=1), "multifactor.urls")),
        path("", include(views.urlpatterns)),
    )
    with override_settings(ROOT_URLCONF=conf):
        (issue,) = multifactor_issues()
        with pytest.raises(SystemCheckError, match=r"multifactor\.E003"):
            call_command("check")
    assert isinstance(issue, Error) and issue.id == "multifactor.E003"


def test_mfa_pages_shadowed_by_a_protected_admin_are_an_error():
    """The MFA pages listed after a protected admin: the admin's catch-all answers their URLs."""
    conf = urlconf(
        path("admin/", decorator_include(multifactor_protected(factors=1), admin.site.urls)),
        the_mfa_pages("admin/multifactor/"),
    )
    with override_settings(ROOT_URLCONF=conf):
        assert ids(multifactor_issues()) == ["multifactor.E003"]


def test_one_protected_mfa_page_is_an_error():
    """Not only the authenticate page: any MFA page a challenge leads to must be reachable."""
    conf = urlconf(
        path("multifactor/totp/auth/", multifactor_protected(factors=1)(views.ok)),
        the_mfa_pages(),
    )
    with override_settings(ROOT_URLCONF=conf):
        (issue,) = multifactor_issues()
    assert issue.id == "multifactor.E003" and "/multifactor/totp/auth/" in issue.msg


def test_recommended_layout_is_fine():
    conf = urlconf(
        the_mfa_pages(),
        path("admin/", decorator_include(multifactor_protected(factors=1), admin.site.urls)),
    )
    with override_settings(ROOT_URLCONF=conf):
        assert multifactor_issues() == []


@pytest.mark.parametrize("prefix", ["mfa/", "accounts/security/", ""])
def test_any_mount_point_is_fine(prefix):
    conf = urlconf(path("protected/", multifactor_protected(factors=1)(views.ok)), the_mfa_pages(prefix))
    with override_settings(ROOT_URLCONF=conf):
        assert multifactor_issues() == []


def test_mfa_pages_not_included_is_a_warning():
    conf = urlconf(path("", include(views.urlpatterns)))
    with override_settings(ROOT_URLCONF=conf):
        assert ids(multifactor_issues()) == ["multifactor.W004"]


# -- MULTIFACTOR["REQUIRE"]: what the enforcement middleware would only find at request time -------------


@pytest.mark.parametrize("predicate", ["tests.views.no_such_function", "no_such_module.must_use", "nodots"])
def test_require_predicate_that_does_not_import_is_an_error(settings, predicate):
    with with_multifactor(settings, REQUIRE={"staff": True, "predicate": predicate}):
        (issue,) = multifactor_issues()
        with pytest.raises(SystemCheckError, match=r"multifactor\.E004"):
            call_command("check")
    assert isinstance(issue, Error) and issue.id == "multifactor.E004"
    assert repr(predicate) in issue.msg and "cannot be imported" in issue.msg and issue.hint


def test_require_predicate_that_is_not_callable_is_an_error(settings):
    with with_multifactor(settings, REQUIRE={"predicate": "tests.views.urlpatterns"}):
        (issue,) = multifactor_issues()
    assert issue.id == "multifactor.E004" and "'tests.views.urlpatterns'" in issue.msg and "not a callable" in issue.msg


def test_require_callable_predicate_is_fine(settings):
    with with_multifactor(settings, REQUIRE={"predicate": "tests.views.only_named"}):
        assert multifactor_issues() == []


@pytest.mark.parametrize("until", ["soon", "2099-02-30", "31/01/2099", "2099-01-31T25:00", ["2099-01-31"]])
def test_require_grace_until_the_middleware_cannot_parse_is_an_error(settings, until):
    with with_multifactor(settings, REQUIRE={"staff": True, "grace_until": until}):
        (issue,) = multifactor_issues()
    assert isinstance(issue, Error) and issue.id == "multifactor.E005"
    assert repr(until) in issue.msg and "YYYY-MM-DD" in issue.hint


@pytest.mark.parametrize(
    "until",
    [
        "2099-01-31",
        "2001-01-01",  # past: the grace is over, not a mistake
        "2099-01-31T12:00:00+00:00",
        "2099-01-31 12:00",
        "2099-01-31T12:00:00Z",
        datetime.date(2099, 1, 31),
        datetime.datetime(2099, 1, 31, 12, tzinfo=datetime.timezone.utc),
        None,
    ],
)
def test_require_grace_until_the_middleware_parses_is_fine(settings, until):
    with with_multifactor(settings, REQUIRE={"staff": True, "grace_until": until}):
        assert multifactor_issues() == []


@pytest.mark.parametrize("entry", ["pain", "admin:nope", "nope:plain", "healthz/", "multifactor"])
def test_require_exempt_name_no_url_carries_is_a_warning(settings, entry):
    with with_multifactor(settings, REQUIRE={"staff": True, "exempt": ["plain", "/healthz", entry]}):
        (issue,) = multifactor_issues()
        call_command("check")  # a warning does not stop the site
    assert isinstance(issue, Warning) and issue.id == "multifactor.W005"
    assert repr(entry) in issue.msg and "'plain'" not in issue.msg and "/healthz" not in issue.msg


def test_require_exempt_names_and_prefixes_the_middleware_matches_are_fine(settings):
    exempt = [
        "plain",
        "admin:login",
        "multifactor:rename",  # takes arguments: reverse() without them would fail, the middleware still matches
        "tests.views.ok",  # an unnamed pattern's view_name is the view's dotted path
        "/healthz",
        "/no/such/prefix/",  # prefixes are not checked
    ]
    with with_multifactor(settings, REQUIRE={"staff": True, "exempt": exempt}):
        assert multifactor_issues() == []


def test_require_exempt_names_use_the_instance_namespace(settings):
    """reverse("app:plain") finds the app namespace, but the middleware compares view_name ("inst:plain")."""
    conf = urlconf(the_mfa_pages(), path("x/", include((views.urlpatterns, "app"), namespace="inst")))
    with override_settings(ROOT_URLCONF=conf):
        with with_multifactor(settings, REQUIRE={"exempt": ["app:plain"]}):
            assert ids(multifactor_issues()) == ["multifactor.W005"]
        with with_multifactor(settings, REQUIRE={"exempt": ["inst:plain"]}):
            assert multifactor_issues() == []
