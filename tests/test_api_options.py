"""OPTIONS on the JSON API (issue 17, "also noted"): every endpoint answers in the API's format, a 200 with
an ``Allow`` header and ``{"data": {"methods": [...]}}``, never Django's empty text/html 200; a 405 names the
same methods. OPTIONS needs no sign-in and no CSRF token, and does nothing but describe the endpoint."""

import pytest
from django.urls import reverse

from multifactor import urls
from multifactor.models import FallbackCode, Key
from tests.conftest import CsrfClient
from tests.mfa_helpers import API, mf_settings

pytestmark = pytest.mark.django_db

# The endpoints of CONTRACT.md "JSON API" and the methods each one answers.
CONTRACT = {
    "status": {"GET", "HEAD", "OPTIONS"},
    "keys": {"GET", "HEAD", "OPTIONS"},
    "keys/1": {"GET", "PATCH", "DELETE", "OPTIONS"},
    "totp/begin": {"POST", "OPTIONS"},
    "totp/activate": {"POST", "OPTIONS"},
    "totp/authenticate": {"POST", "OPTIONS"},
    "recovery-codes": {"GET", "HEAD", "POST", "OPTIONS"},
    "recovery-codes/authenticate": {"POST", "OPTIONS"},
    "fallback/send": {"POST", "OPTIONS"},
    "fallback/authenticate": {"POST", "OPTIONS"},
    "webauthn/register/begin": {"POST", "OPTIONS"},
    "webauthn/register/complete": {"POST", "OPTIONS"},
    "webauthn/authenticate/begin": {"POST", "OPTIONS"},
    "webauthn/authenticate/complete": {"POST", "OPTIONS"},
    "passkey/begin": {"POST", "OPTIONS"},
    "passkey/complete": {"POST", "OPTIONS"},
}


def every_endpoint() -> list[str]:
    """The path of every named API endpoint in multifactor.urls (new ones are covered without listing them)."""
    paths = []
    for pattern in urls.urlpatterns:
        name = pattern.name or ""
        if name.startswith("api-") and name != "api-not-found":
            kwargs = {k: "1" for k in pattern.pattern.converters}
            paths.append(reverse(f"multifactor:{name}", kwargs=kwargs))
    return paths


def options(client, path):
    response = client.options(path)
    assert response.status_code == 200, (path, response.status_code, response.content)
    assert response["Content-Type"] == "application/json", path
    methods = response.json()["data"]["methods"]
    assert set(response["Allow"].split(", ")) == set(methods), path
    assert "OPTIONS" in methods and len(methods) == len(set(methods)), path
    return set(methods)


def test_every_contract_endpoint_is_routed():
    assert {API + suffix for suffix in CONTRACT} <= set(every_endpoint())


@pytest.mark.parametrize("suffix", sorted(CONTRACT))
def test_options_answers_json_with_the_contracts_methods(signed_in, suffix):
    assert options(signed_in, API + suffix) == CONTRACT[suffix]


@pytest.mark.parametrize("signed", [True, False], ids=["signed-in", "anonymous"])
def test_options_on_every_endpoint_is_json_for_anyone(user, signed):
    client = CsrfClient()
    if signed:
        client.force_login(user)
    for path in every_endpoint():
        methods = options(client, path)
        assert methods - {"OPTIONS"}, path


def test_a_405_names_the_same_methods(signed_in):
    for path in every_endpoint():
        allowed = options(signed_in, path)
        response = signed_in.put(path, "{}", content_type="application/json")
        assert response.status_code == 405, path
        assert response.json()["errors"][0]["code"] == "method_not_allowed"
        assert set(response["Allow"].split(", ")) == allowed, path


def test_the_listed_methods_are_answered_by_the_endpoint(signed_in):
    """No method in Allow meets a 405 (anonymous or not, it gets the endpoint's own answer)."""
    for path in every_endpoint():
        for method in options(signed_in, path) - {"OPTIONS"}:
            response = signed_in.generic(method, path, "{}", content_type="application/json")
            assert response.status_code != 405, (method, path)


def test_options_needs_no_csrf_token_and_changes_nothing(signed_in, user):
    from multifactor import session

    with mf_settings(FALLBACKS={"rec": (lambda u: u.email, "tests.transports.record")}):
        for suffix in ("totp/begin", "fallback/send", "recovery-codes", "keys/1", "passkey/begin"):
            response = signed_in.options(API + suffix, headers={"X-CSRFToken": ""})
            assert response.status_code == 200
    assert not Key.objects.filter(user=user).exists()
    assert not FallbackCode.objects.filter(user=user, sent_at__isnull=False).exists()
    assert session.load(signed_in.session).pending == {}


def test_options_on_an_unknown_api_path_is_a_json_404(signed_in):
    response = signed_in.options(API + "no/such/endpoint")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json()["errors"][0]["code"] == "not_found"
