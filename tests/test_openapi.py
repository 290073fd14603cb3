"""The OpenAPI description (multifactor/openapi.json, served at ``api/v1/openapi.json``): a valid OpenAPI 3.1
document, in step with the URL patterns and the views' methods, and true of the running API: schemathesis
sends every operation generated requests, as a signed-in and verified user with a CSRF token, against a live
server, and checks each answer's status code, content type, headers and body against the description."""

from __future__ import annotations

import json
import re
import secrets
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import include, path, resolve, reverse

from multifactor import openapi, urls
from tests.conftest import make_totp
from tests.mfa_helpers import error_codes

API_PREFIX = "api/v1/"

# Two mounts of the include, with instance namespaces, for the served copy's servers URL (pytest.mark.urls).
urlpatterns = [
    path("first/mfa/", include("multifactor.urls")),
    path("second/", include("multifactor.urls", namespace="other")),
]


def spec_paths() -> set[str]:
    return set(openapi.document()["paths"])


def url_paths() -> dict[str, type]:
    """{OpenAPI path: view class} for every ``api/v1/`` pattern of multifactor.urls."""
    found = {}
    for pattern in urls.urlpatterns:
        route = str(pattern.pattern)
        if route.startswith(API_PREFIX):
            found["/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route.removeprefix(API_PREFIX))] = pattern.callback
    return found


def api_url(spec_path: str) -> str:
    return reverse("multifactor:api-openapi").removesuffix("openapi.json") + re.sub(r"{\w+}", "1", spec_path)[1:]


# -- the document ------------------------------------------------------------------------------------------


def test_the_file_is_a_valid_openapi_31_document():
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation import OpenAPIV31SpecValidator

    spec = openapi.document()
    assert spec["openapi"].startswith("3.1.")
    validate(spec, cls=OpenAPIV31SpecValidator)


def test_every_api_url_pattern_is_described_and_every_description_is_routed():
    described, routed = spec_paths(), set(url_paths())
    assert routed - described == set(), "URL patterns missing from multifactor/openapi.json"
    assert described - routed == set(), "described in multifactor/openapi.json but routed nowhere"


def test_every_described_path_resolves_to_its_view_with_the_described_methods():
    for spec_path, item in openapi.document()["paths"].items():
        match = resolve(api_url(spec_path))
        assert match.url_name != "api-not-found", spec_path
        view = match.func.view_class
        methods = {m for m in view.http_method_names if hasattr(view, m)} - {"options", "head"}
        assert set(item) - {"parameters", "options"} == methods, spec_path
        assert "options" in item, spec_path


def test_served_copy_is_json_for_anyone_and_valid(db):
    from openapi_spec_validator import validate

    response = Client(enforce_csrf_checks=True).get(reverse("multifactor:api-openapi"))
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    spec = json.loads(response.content)
    validate(spec)
    assert spec["servers"] == [{"url": api_url("/")[:-1], "description": "This site's API."}]
    assert spec["paths"] == openapi.document()["paths"]


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(("namespace", "prefix"), [("multifactor", "/first/mfa/"), ("other", "/second/")])
def test_served_copy_names_the_mount_it_was_fetched_from(db, namespace, prefix):
    url = reverse(f"{namespace}:api-openapi")
    assert url == prefix + "api/v1/openapi.json"
    spec = Client().get(url).json()
    assert spec["servers"][0]["url"] == prefix + "api/v1"


def test_served_copy_names_the_sites_cookies_and_csrf_header(db, settings):
    settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME = "sid", "xsrf"
    settings.CSRF_HEADER_NAME = "HTTP_X_XSRF_TOKEN"
    schemes = Client().get(reverse("multifactor:api-openapi")).json()["components"]["securitySchemes"]
    assert (schemes["session"]["name"], schemes["csrfCookie"]["name"]) == ("sid", "xsrf")
    assert schemes["csrfHeader"]["name"] == "X-Xsrf-Token"
    assert openapi.document()["components"]["securitySchemes"]["session"]["name"] == "sessionid"  # not mutated


def test_with_csrf_in_the_session_there_is_no_csrf_cookie_to_name(db, settings):
    settings.CSRF_USE_SESSIONS = True
    spec = Client().get(reverse("multifactor:api-openapi")).json()
    assert "csrfCookie" not in spec["components"]["securitySchemes"]
    assert "csrfCookie" not in json.dumps(spec["paths"])


# -- regression: PATCH keys/<id> with nothing to change -----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("body", [None, {}, {"name": None}, {"enabled": None}, {"other": 1}])
def test_patch_key_without_name_or_enabled_is_400(signed_in, user, body):
    key, _ = make_totp(user, "A")
    response = signed_in.api("patch", api_url(f"/keys/{key.pk}"), body)
    assert response.status_code == 400 and error_codes(response) == ["invalid"]
    key.refresh_from_db()
    assert (key.name, key.enabled) == ("A", True)


# -- schemathesis against a live server ------------------------------------------------------------------

EXAMPLES = 12  # per strategy (positive, negative, and one per real id): the whole run takes about a minute
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]


# Verification bodies whose ``code`` is also drawn in the shapes the server checks (arbitrary strings are all
# refused before a key is tried), so that wrong codes are counted and throttled (429, Retry-After).
CODE_OPERATIONS = {f"POST /{p}" for p in ("totp/activate", "totp/authenticate", "recovery-codes/authenticate")}
CODE_OPERATIONS.add("POST /fallback/authenticate")
CODE_REGEXES = [r"\A[0-9]{6}\Z", r"\A[2-9A-HJ-NP-Z]{4}(-[2-9A-HJ-NP-Z]{4}){3}\Z"]
# What each operation needs done first to get past "start again" (409), beyond the verified session.
FIRST = {"POST /totp/activate": "api-totp-begin", "POST /fallback/authenticate": "api-fallback-send"}


def with_code(case, code):
    case.body = {**case.body, "code": code}
    return case


def verified_session(live_url: str, username: str, recovery: bool):
    """A requests session of a new user with two TOTP keys, signed in and verified with one of them through the
    real TOTP page (trusting the browser), that sends a CSRF token on every request; and the real ids of the
    user's keys, trusted browsers and sessions, by path parameter name."""
    import requests

    from multifactor.models import SignedInSession, TrustedBrowser

    user = get_user_model().objects.create_user(username, f"{username}@example.com", "pw")
    (first, totp), (second, _) = make_totp(user, "A"), make_totp(user, "B")
    client = Client()
    client.force_login(user)
    verified = client.post(reverse("multifactor:totp_auth"), {"answer": totp.now(), "trust_browser": "on"})
    assert verified.status_code == 302
    session = requests.Session()
    for name, cookie in client.cookies.items():
        session.cookies.set(name, cookie.value)  # no domain: requests would not match "localhost" with one
    token = secrets.token_hex(16)
    session.cookies.set("csrftoken", token)
    session.headers.update({"X-CSRFToken": token, "Accept": "application/json"})
    if recovery:  # only where needed: a set costs ten PBKDF2 hashes
        assert session.post(live_url + reverse("multifactor:api-recovery-codes")).status_code == 201
    ids = {
        "key_id": [first.pk, second.pk],
        "trust_id": list(TrustedBrowser.objects.filter(user=user).values_list("pk", flat=True)),
        "session_id": list(SignedInSession.objects.filter(user=user).values_list("pk", flat=True)),
    }
    assert all(ids.values()), ids
    return session, ids


def fuzz(strategies, examples, call):
    """Run ``call(case)`` on ``examples`` cases drawn from the strategies; hypothesis shrinks a failure."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(strategies))
    def run(case):
        call(case)

    run()


@pytest.mark.slow  # about a minute: `make test` and the database-server tox envs run it
@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_the_description_true_of_the_live_api(live_server, settings):
    import schemathesis
    from hypothesis import strategies as st
    from schemathesis import checks as general
    from schemathesis.specs.openapi import checks as openapi_checks

    checks = [getattr(general, name, None) or getattr(openapi_checks, name) for name in CHECKS]
    settings.MULTIFACTOR = {
        **settings.MULTIFACTOR,
        "PASSKEY_LOGIN": True,
        "TRUST_DAYS": 30,
        "FALLBACKS": {"email": (lambda user: user.email, "tests.transports.record")},
    }
    schema = schemathesis.openapi.from_url(live_server.url + reverse("multifactor:api-openapi"))
    schema.config.generation.update(with_security_parameters=False)  # the session below carries the real ones
    base_url = live_server.url + schema.raw_schema["servers"][0]["url"]
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    started, failures, ran, seen = time.monotonic(), [], [], {}
    for index, result in enumerate(schema.get_all_operations()):
        operation = result.ok()
        session, ids = verified_session(live_server.url, f"user{index}", operation.path.startswith("/recovery"))
        strategies = [operation.as_strategy(mode) for mode in modes]
        if operation.label in CODE_OPERATIONS:
            codes = st.one_of([st.from_regex(regex) for regex in CODE_REGEXES])
            strategies.append(st.builds(with_code, operation.as_strategy(), codes))
        if operation.label in FIRST:
            assert session.post(live_server.url + reverse("multifactor:" + FIRST[operation.label])).ok
        for name, values in ids.items():  # also the user's own ids, not only ones that are 404s
            if "{" + name + "}" in operation.path:
                strategies += [operation.as_strategy(path_parameters={name: str(v)}) for v in values]

        def call(case, session=session, label=operation.label):
            response = case.call_and_validate(base_url=base_url, session=session, checks=checks, timeout=30)
            seen.setdefault(label, set()).add(response.status_code)

        try:
            fuzz(strategies, EXAMPLES * len(strategies), call)
        except (Exception, schemathesis.errors.FailureGroup) as error:  # every operation runs; report all
            failures.append(f"{operation.label}: {error}")
        finally:
            session.close()  # no kept-alive connection outlives the live server
        ran.append(operation.label)
    elapsed = time.monotonic() - started
    assert not failures, "\n\n".join(failures)
    described = {f"{m.upper()} {p}" for p, item in openapi.document()["paths"].items() for m in item}
    # schemathesis leaves out the operation it loaded the schema from (test_served_copy_* cover it).
    unfuzzed = {f"PARAMETERS {p}" for p in spec_paths()} | {"GET /openapi.json"}
    assert set(ran) == described - unfuzzed, "operations not fuzzed"
    print(f"schemathesis: {len(ran)} operations in {elapsed:.1f}s; status codes seen:")
    for label in ran:
        print(f"  {label}: {sorted(seen.get(label, ()))}")
