"""``manage.py check`` for 0.9.x sites: dotted paths that cannot work (``multifactor.E010``), keys this version
ignores (``W010``; 0.9.x's ``W001`` is retired, so silencing it silences nothing new), template overrides that
miss what this version needs (``W011``), and a lazy ``LOGIN_MESSAGE`` accepted."""

from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from django.utils.translation import gettext_lazy

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parent / "templates"
NOT_CALLABLE = 42


def a_transport(user, message):
    return True


def issues(tag=None):
    found = run_checks(tags=[tag] if tag else None)
    return [m for m in found if m.id and m.id.startswith("multifactor.")]


def with_multifactor(settings, **values):
    return override_settings(MULTIFACTOR={**settings.MULTIFACTOR, **values})


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("BYPASS", "tests.nowhere.bypass", "cannot be imported (ModuleNotFoundError"),
        ("BYPASS", "tests.views.no_such_function", "cannot be imported (ImportError"),
        ("BYPASS", f"{__name__}.NOT_CALLABLE", "names a int, not a callable"),
        ("LOGIN_CALLBACK", "tests.views.no_such_callback", "cannot be imported"),
    ],
)
def test_a_path_that_cannot_be_called_is_an_error(settings, key, value, problem):
    with with_multifactor(settings, **{key: value}):
        (error,) = issues()
        with pytest.raises(SystemCheckError):
            call_command("check")
    assert error.id == "multifactor.E010" and error.msg.startswith(f"MULTIFACTOR['{key}'] {value!r} {problem}")
    assert "fn(request" in error.hint


def test_a_fallback_transport_that_cannot_be_called_is_an_error(settings):
    fallbacks = {
        "email": (lambda user: user.email, "multifactor.factors.fallback.send_email"),
        "sms": (lambda user: "+1", "tests.nowhere.send_sms"),
        "pigeon": (lambda user: "loft", f"{__name__}.a_transport"),
        "inline": (lambda user: "here", a_transport),  # a callable instead of a path: fine
    }
    with with_multifactor(settings, FALLBACKS=fallbacks):
        (error,) = issues()
    assert error.id == "multifactor.E010" and error.msg.startswith(
        "MULTIFACTOR['FALLBACKS']['sms'] 'tests.nowhere.send_sms'"
    )
    assert "fn(user, message)" in error.hint


def test_the_paths_of_the_09_docs_are_fine(settings):
    fallbacks = {"email": (lambda user: user.email, "multifactor.factors.fallback.debug_print_console")}
    with with_multifactor(
        settings, BYPASS="tests.views.bypass", LOGIN_CALLBACK="tests.views.login_callback", FALLBACKS=fallbacks
    ):
        assert issues() == []


def test_09_lockout_settings_are_w010_and_w001_is_retired(settings):
    with with_multifactor(settings, MAX_ATTEMPTS=5, ATTEMPT_PERIOD=600, LOCKOUT_PERIOD=60):  # 0.9.x's W001 case
        found = issues()
    assert sorted(m.id for m in found) == ["multifactor.W010"] * 3
    assert {m.msg.split("'")[1] for m in found} == {"MAX_ATTEMPTS", "ATTEMPT_PERIOD", "LOCKOUT_PERIOD"}


def test_a_site_that_silenced_w001_still_hears_what_w010_says(settings):
    with with_multifactor(settings, LOCKOUT_PERIOD=60), override_settings(SILENCED_SYSTEM_CHECKS=["multifactor.W001"]):
        found = [m for m in issues() if not m.is_silenced()]
    assert [m.id for m in found] == ["multifactor.W010"]


def test_a_lazy_login_message_is_accepted(settings):
    with with_multifactor(settings, LOGIN_MESSAGE=gettext_lazy('<a href="{}">Manage multifactor settings</a>.')):
        assert issues() == []
    with with_multifactor(settings, LOGIN_MESSAGE=5):
        assert [m.id for m in issues()] == ["multifactor.E001"]


def template_dirs(settings, name):
    return override_settings(TEMPLATES=[{**settings.TEMPLATES[0], "DIRS": [TEMPLATES / name]}])


def test_09_overrides_that_miss_what_this_version_needs_are_reported(settings):
    with template_dirs(settings, "multifactor09_broken"):
        found = issues("templates")
    assert [m.id for m in found] == ["multifactor.W011", "multifactor.W011"]
    base, fallback = (m.msg for m in found)
    assert "multifactor/base.html has no {% block scripts %}" in base and "multifactor09_broken" in base
    assert "multifactor/fallback/auth.html has no button named 'send'" in fallback


def test_09_overrides_that_work_and_our_own_templates_are_not_reported(settings):
    assert issues("templates") == []
    with template_dirs(settings, "multifactor09"):
        assert issues("templates") == []
