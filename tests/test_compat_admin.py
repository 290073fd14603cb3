"""0.9.x's admin names and flags: ``HasMultifactorFilter``, ``MultiFactorInline``, the ``multifactor`` column,
``multifactor_filter`` / ``multifactor_list_display`` / ``multifactor_inline = False``, and a bookmarked
``?multifactor=True`` / ``False`` change list, through the admin's pages."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.urls import path

from multifactor.admin import HasKeysFilter, HasMultifactorFilter, KeyInline, MultiFactorInline, MultifactorUserAdmin
from tests.conftest import CsrfClient, make_totp

pytestmark = pytest.mark.urls(__name__)
User = get_user_model()


class Everything(UserAdmin, MultifactorUserAdmin):
    pass


class NoFilter(UserAdmin, MultifactorUserAdmin):
    multifactor_filter = False


class NoColumn(UserAdmin, MultifactorUserAdmin):
    multifactor_list_display = False


class NoInline(UserAdmin, MultifactorUserAdmin):
    multifactor_inline = False


class PlacedByHand(UserAdmin, MultifactorUserAdmin):
    """Flags off, and the 0.9.x names placed by the site itself."""

    multifactor_filter = multifactor_list_display = multifactor_inline = False
    list_display = ("username", "multifactor")
    list_filter = (HasMultifactorFilter,)
    inlines = (MultiFactorInline,)


SITES = {}
for cls in (Everything, NoFilter, NoColumn, NoInline, PlacedByHand):
    SITES[cls.__name__] = site = admin.AdminSite(name=f"compat-{cls.__name__}")
    site.register(User, cls)
urlpatterns = [path(f"{name}/", site.urls) for name, site in SITES.items()]


@pytest.fixture
def people(db):
    alice = User.objects.create_user("alice", "a@example.com", "pw")
    make_totp(alice)
    bob = User.objects.create_user("bob", "b@example.com", "pw")
    key, _ = make_totp(bob)
    key.enabled = False
    key.save()
    root = User.objects.create_superuser("root", "r@example.com", "pw")
    client = CsrfClient()
    client.force_login(root)
    return alice, bob, client


def changelist(client, site, **params):
    return client.get(f"/{site}/auth/user/", params)


def shown(response):
    assert response.status_code == 200, response.get("Location")
    return sorted(u.username for u in response.context["cl"].result_list)


def test_the_09_names_are_the_librarys():
    assert HasMultifactorFilter is HasKeysFilter and MultiFactorInline is KeyInline
    assert MultifactorUserAdmin.multifactor_filter is MultifactorUserAdmin.multifactor_list_display is True
    assert MultifactorUserAdmin.multifactor_inline is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [("True", ["alice"]), ("False", ["bob", "root"]), ("yes", ["alice"]), ("no", ["bob", "root"])],
)
def test_bookmarked_filter_urls_filter(people, value, expected):
    response = changelist(people[2], "Everything", multifactor=value)
    assert shown(response) == expected
    (spec,) = [s for s in response.context["cl"].filter_specs if isinstance(s, HasMultifactorFilter)]
    selected = [choice["display"] for choice in spec.choices(response.context["cl"]) if choice["selected"]]
    assert len(selected) == 1 and str(selected[0]) != "All"  # the sidebar shows the bookmarked choice


@pytest.mark.parametrize("value", ["maybe", "", "1"])
def test_a_value_the_filter_does_not_know_is_refused_not_ignored(people, value):
    response = changelist(people[2], "Everything", multifactor=value)
    assert response.status_code == 302 and response["Location"].endswith("?e=1")  # the admin's "invalid lookup"


def test_the_column_is_named_multifactor(people):
    response = changelist(people[2], "Everything")
    assert "multifactor" in response.context["cl"].list_display
    html = response.content.decode()
    assert "column-multifactor" in html and 'class="field-multifactor"' in html


@pytest.mark.parametrize(
    ("site", "column", "filter_", "inline"),
    [
        ("Everything", True, True, True),
        ("NoFilter", True, False, True),
        ("NoColumn", False, True, True),
        ("NoInline", True, True, False),
        ("PlacedByHand", True, True, True),
    ],
)
def test_the_opt_out_flags(people, site, column, filter_, inline):
    alice, _bob, client = people
    response = changelist(client, site)
    cl = response.context["cl"]
    assert list(cl.list_display).count("multifactor") == (1 if column else 0)
    assert sum(isinstance(s, HasMultifactorFilter) for s in cl.filter_specs) == (1 if filter_ else 0)
    change = client.get(f"/{site}/auth/user/{alice.pk}/change/")
    assert change.status_code == 200
    assert ("multifactor_keys-TOTAL_FORMS" in change.content.decode()) is inline


def test_without_the_filter_a_bookmarked_url_is_refused_too(people):
    response = changelist(people[2], "NoFilter", multifactor="True")
    assert response.status_code == 302 and response["Location"].endswith("?e=1")  # Django's own answer
