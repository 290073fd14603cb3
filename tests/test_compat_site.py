"""A django-multifactor 0.9.x site after the package swap, in process: its own code (tests/upgrade/site_views.py:
the 0.9 mixins, ``multifactor.common``, ``mf_settings``, ``UserKey`` queries, ``MultifactorUserAdmin`` with a flag,
a custom fallback transport, BYPASS) and its 0.9-style template overrides (tests/templates/multifactor09/), driven
by tests/upgrade/site_driver.py through real requests with CSRF enforced. tests/test_upgrade_from_09.py drives the
same site with 0.9.5 itself first and compares."""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from multifactor.models import DisabledFallback
from tests.conftest import make_totp
from tests.upgrade import site_driver

pytestmark = [pytest.mark.urls("tests.upgrade.site_urls"), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TEMPLATES_09 = Path(__file__).resolve().parent / "templates" / "multifactor09"
User = get_user_model()


@pytest.fixture
def site_09(settings):
    """The 0.9 site's settings (tests/upgrade/site_settings.py) over the suite's own."""
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [TEMPLATES_09]}]
    settings.MULTIFACTOR = {
        **settings.MULTIFACTOR,
        "FACTORS": ["FIDO2", "TOTP"],
        "FALLBACKS": {
            "email": (lambda user: user.email, "multifactor.factors.fallback.send_email"),
            "pigeon": (lambda user: f"loft {user.get_username()}", "tests.upgrade.site_views.send_pigeon"),
        },
        "BYPASS": "tests.upgrade.site_views.bypass_when_impersonating",
    }


@pytest.fixture
def people(db):
    olduser = User.objects.create_user("olduser", "old@example.com", "pw")
    make_totp(olduser, name="Old phone")
    make_totp(olduser, name="")
    DisabledFallback.objects.create(user=olduser, fallback="email")
    other = User.objects.create_user("otheruser", "other@example.com", "pw")
    key, _ = make_totp(other)
    key.enabled = False
    key.save()
    boss = User.objects.create_superuser("boss", "boss@example.com", "pw")
    return olduser, other, boss


@pytest.fixture
def facts(site_09, people):
    return site_driver.drive(*people)


def test_the_0_9_mixins_challenge_and_enrol_as_before(facts):
    assert facts["require_unverified"] == {"status": 302, "location": "/mf/authenticate/"}
    assert facts["prefer_unverified"] == {"status": 302, "location": "/mf/authenticate/"}
    assert facts["other_require"] == {"status": 302, "location": "/mf/add/"}  # no enabled key: enrol
    assert facts["other_prefer"]["status"] == 200  # nothing to verify with: let through
    assert facts["other_prefer"]["json"] == {"has_multifactor": False, "active": [], "factors": 1, "bypass": False}


def test_the_mixin_attributes(facts):
    assert facts["attributes_unverified"]["json"] == {
        "has_multifactor": True,
        "active": [],
        "factors": 2,
        "bypass": False,
    }
    assert facts["require_bypassed"]["status"] == 200 and facts["require_bypassed"]["json"]["bypass"] is True
    verified = facts["require_verified"]
    assert verified["status"] == 200
    assert verified["json"]["active"] == [["FALLBACK", None]]  # 0.9.x: [None, None]


def test_the_custom_transport_carries_the_fallback_code(facts):
    pigeon = facts["pigeon"]
    assert pigeon["sent"] == 1 and pigeon["succeeded"] == "pigeon"  # e-mail is switched off for this user
    assert pigeon["verify"] == {"status": 302, "location": "/require/"}  # back to the page that asked


def test_the_common_helpers(facts):
    before, after = facts["helpers_unverified"]["json"], facts["helpers_verified"]["json"]
    assert before["has_multifactor"] is True and before["active"] == [] and after["active"] == [["FALLBACK", None]]
    for helpers in (before, after):
        assert helpers["disabled_fallbacks"] == ["email"]
        assert helpers["is_bypassed"] is False
        assert helpers["method_url"] == "multifactor:totp_auth"
        assert helpers["next_check_in_range"] is True
        assert helpers["keys_per_type"] == {"TOTP": 2} and helpers["totp_keys"] == 2 and helpers["related_keys"] == 2
        assert helpers["settings"] == {
            "RECHECK": True,
            "RECHECK_MIN": 10800,
            "RECHECK_MAX": 21600,
            "FACTORS": ["FIDO2", "TOTP"],
        }
        assert helpers["fallbacks"] == ["email", "pigeon"]


def test_the_0_9_home_override_renders_its_content(facts):
    home = facts["home"]
    assert home["status"] == 200 and home["override"]
    assert home["factors"] == [
        {"type": "TOTP", "name": "", "state": "locked"},  # a fallback code verifies no key
        {"type": "TOTP", "name": "Old phone", "state": "locked"},
    ]
    assert home["fallbacks"] == [{"name": "email", "enabled": "off"}, {"name": "pigeon", "enabled": "on"}]


def test_the_0_9_add_override_replaces_the_page_block(facts):
    assert facts["add"] == {"status": 200, "methods": [{"type": "FIDO2"}, {"type": "TOTP"}]}


def test_the_admin_flags_and_the_bookmarked_filter(facts):
    assert facts["admin"] == {
        "True": ["olduser"],
        "False": ["boss", "otheruser"],
        "column": True,
        "filter": True,
        "change_page": 200,
        "inline": False,  # multifactor_inline = False
    }
