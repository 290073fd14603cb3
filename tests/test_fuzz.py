"""No input gives a 500 (SECURITY.md R7, CONTRACT "Never a 500 for any input"): hypothesis posts junk (random
text, unicode, NULs, huge strings, wrong JSON types, missing fields, bodies that are not JSON) to every page
and JSON endpoint found in ``multifactor.urls.urlpatterns``, as a signed-in user with a TOTP key and a set of
recovery codes, verified or not. JSON endpoints must always answer JSON. Each example runs in a fresh client
and a savepoint that is rolled back, so throttling and deletions from one example do not leak into the next."""

import json
import string
import time
from urllib.parse import quote, urlencode

import pytest
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.urls.resolvers import RoutePattern
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from multifactor import urls as mf_urls
from multifactor.api import ApiView
from multifactor.session import Verification
from tests import transports
from tests.conftest import CsrfClient, make_totp, verify_totp
from tests.mfa_helpers import BASE, edit_mfa_state, mf_settings

pytestmark = pytest.mark.django_db

PATTERNS = {p.name: p for p in mf_urls.urlpatterns}
FIELDS = ["code", "name", "enabled", "credential", "passkey", "answer", "otp", "send", "codes", "next", "id"]
KNOWN = ["toggle_factor", "delete_factor", "toggle_fallback", "email", "sms", "rename", "0", "-1", "1e3"]
MULTIFACTOR = {
    "FALLBACKS": {"sms": (transports.phone, "tests.transports.record")},
    "RECOVERY_CODES": 2,  # cheaper regenerations: the fuzz is about input, not entropy
    "FALLBACK_COOLDOWN": 0,
}

# -- strategies -------------------------------------------------------------------------------------------

text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)
special = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "abc\x00def",
        "x" * 200_000,
        "1" * 5000,
        "١٢٣٤٥٦",
        "𝟙𝟚𝟛𝟜𝟝𝟞",
        "１２３４５６７８",
        "ABCD-EFGH-JKLM-NPQR",
        "abcd efgh jklm npqr",
        "123456",
        "12345678",
        "000000",
        "<script>alert(1)</script>",
        "%00",
        "' OR 1=1 --",
        "../../etc/passwd",
        "\u202e\ufeff",
        "null",
        "true",
        "[]",
        "{}",
    ]
)
junk_text = st.one_of(text, special, st.integers().map(str))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    junk_text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
field_names = st.one_of(st.sampled_from(FIELDS), st.text(max_size=8))
json_bodies = st.one_of(
    st.dictionaries(field_names, json_values, max_size=4),
    json_values,
)
raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"{", b'{"code": }', b"\xff\xfe\x00", b'{"code": "1"}' * 1000, b"[" * 5000 + b"]" * 5000]),
)
form_bodies = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(alphabet=string.ascii_letters + "_[]", min_size=1, max_size=8)),
    st.one_of(junk_text, st.lists(junk_text, max_size=3)),
    max_size=4,
)
segment = st.one_of(
    st.sampled_from(KNOWN + ["{key}", "{recovery}"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/"), min_size=1, max_size=20),
)
integer_segment = st.one_of(st.just("{key}"), st.integers(min_value=0, max_value=2**70).map(str))


def path_for(name, draw):
    """A path that reaches pattern ``name``: converters filled with junk (or the user's real key ids)."""
    pattern = PATTERNS[name].pattern
    if not isinstance(pattern, RoutePattern):  # the JSON 404 catch-all under api/
        return BASE + "api/" + quote(draw(st.text(max_size=30)), safe="/")
    kwargs = {}
    for arg, converter in pattern.converters.items():
        kwargs[arg] = draw(integer_segment if converter.regex == "[0-9]+" else segment)
    return {"kwargs": kwargs, "name": name}


@st.composite
def requests(draw, name):
    view = PATTERNS[name].callback.view_class
    is_json = issubclass(view, ApiView)
    method = draw(st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT"] if is_json else ["GET", "POST"]))
    kind = draw(st.sampled_from(["json", "raw", "form", "none"] if is_json else ["form", "form", "json", "none"]))
    if kind == "json":
        body = json.dumps(draw(json_bodies))
    elif kind == "raw":
        body = draw(raw_bodies)
    elif kind == "form":
        body = draw(form_bodies)
    else:
        body = None
    return {
        "path": path_for(name, draw),
        "method": method,
        "kind": kind,
        "body": body,
        "query": draw(st.one_of(st.just(""), st.dictionaries(st.sampled_from(FIELDS), junk_text, max_size=2))),
        "verified": draw(st.booleans()),
        "json_accept": draw(st.booleans()),
        "csrf": draw(st.sampled_from([True, True, True, False])),  # mostly with the token, to get past it
    }


# -- the test ------------------------------------------------------------------------------------------------


@pytest.fixture
def world(user):
    """The user's keys: a TOTP key (verified once, to make a recovery set), and the ids to put in URLs."""
    with mf_settings(**MULTIFACTOR):
        key, totp = make_totp(user)
        maker = CsrfClient()
        maker.force_login(user)
        assert verify_totp(maker, totp, key).status_code == 302
        assert maker.post(BASE + "recovery/").status_code == 200
    from multifactor.models import Key

    return {"user": user, "key": key, "recovery": Key.objects.get(user=user, type="RECOVERY")}


def resolve(request, world):
    path = request["path"]
    if isinstance(path, str):
        return path
    kwargs = {
        k: v.replace("{key}", str(world["key"].pk)).replace("{recovery}", str(world["recovery"].pk))
        for k, v in path["kwargs"].items()
    }
    try:
        return reverse(f"multifactor:{path['name']}", kwargs=kwargs)
    except NoReverseMatch:
        assume(False)


def send(client, request, path):
    headers = {"Accept": "application/json"} if request["json_accept"] else {}
    method, body, kind = request["method"].lower(), request["body"], request["kind"]
    if request["query"]:
        path += "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in request["query"].items())
    if method == "get":
        return client.get(path, headers=headers)
    if method == "put":  # CsrfClient adds its token to POST, PATCH and DELETE only
        if request["csrf"]:
            headers["X-CSRFToken"] = client.csrf_token
        extra = {}
    else:
        extra = {"csrf": request["csrf"]}
    if kind == "form" and method == "post":
        return client.post(path, body, headers=headers, **extra)
    if kind == "form":  # a form body on PATCH/DELETE/PUT: urlencoded by hand
        data = urlencode(body, doseq=True)
        content_type = "application/x-www-form-urlencoded"
    else:
        data, content_type = (b"" if body is None else body), "application/json"
    return getattr(client, method)(path, data, content_type=content_type, headers=headers, **extra)


def check(name, request, world):
    user = world["user"]
    with transaction.atomic():
        client = CsrfClient()
        client.force_login(user)
        if request["verified"]:
            now = time.time()
            key_id = world["key"].pk
            edit_mfa_state(client, lambda s: s.verifications.append(Verification(key_id, "TOTP", now, now + 3600)))
        path = resolve(request, world)
        response = send(client, request, path)
        transaction.set_rollback(True)
    assert response.status_code < 500, (name, path, request["method"], response.status_code)
    if issubclass(PATTERNS[name].callback.view_class, ApiView):
        assert not 300 <= response.status_code < 400, (name, path, response.status_code)
        if response.status_code != 204:
            assert response["Content-Type"].startswith("application/json"), (name, path, response["Content-Type"])
            body = json.loads(response.content)
            envelope = {"openapi"} if name == "api-openapi" and response.status_code == 200 else {"data", "errors"}
            assert isinstance(body, dict) and (set(body) & envelope), body  # the description itself is bare


@pytest.mark.parametrize("name", list(PATTERNS))
def test_no_500_for_junk(name, world):
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(request=requests(name))
    def run(request):
        transports.clear()
        check(name, request, world)

    with mf_settings(**MULTIFACTOR):
        run()


def test_every_url_name_is_fuzzed():
    """The list above comes from the URLconf itself: a new endpoint is fuzzed without editing this file."""
    assert {"recovery_start", "recovery_auth", "fallback_auth", "api-recovery-codes", "api-fallback-send"} <= set(
        PATTERNS
    )
    assert len(PATTERNS) == len(mf_urls.urlpatterns)


# -- what the fuzz found, pinned down (each failed with a 500 before its fix) --------------------------------


@pytest.mark.parametrize("name", sorted(n for n, p in PATTERNS.items() if issubclass(p.callback.view_class, ApiView)))
def test_a_form_post_to_a_json_endpoint_answers_json(name, world):
    """The CSRF check read the multipart body as a form; reading ``request.body`` afterwards raised."""
    client = CsrfClient()
    client.force_login(world["user"])
    try:
        path = reverse(f"multifactor:{name}")
    except NoReverseMatch:
        path = reverse(f"multifactor:{name}", kwargs={"key_id": str(world["key"].pk)}) if name == "api-key" else None
    path = path or BASE + "api/nothing"
    response = client.post(path, {"code": "123456", "name": "x"})  # multipart/form-data, with the CSRF header
    assert response.status_code < 500
    assert response["Content-Type"].startswith("application/json")


def test_deeply_nested_json_is_a_400(world):
    client = CsrfClient()
    client.force_login(world["user"])
    body = b"[" * 100_000 + b"]" * 100_000
    response = client.post(BASE + "api/v1/totp/authenticate", body, content_type="application/json")
    assert response.status_code == 400 and json.loads(response.content)["errors"][0]["code"] == "invalid_json"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_an_unknown_api_path_is_a_json_404_even_without_a_csrf_token(method, world):
    client = CsrfClient()
    client.force_login(world["user"])
    response = (
        getattr(client, method)(BASE + "api/v2/whatever", "{}", content_type="application/json", csrf=False)
        if (method != "put")
        else client.put(BASE + "api/v2/whatever", "{}", content_type="application/json")
    )
    assert response.status_code == 404 and json.loads(response.content)["errors"][0]["code"] == "not_found"


def test_nul_characters_in_key_names_are_dropped_not_a_500(world):
    """PostgreSQL refuses NUL in text columns: rename page, API PATCH and TOTP enrolment all store names."""
    import pyotp

    from multifactor.models import Key

    user, key = world["user"], world["key"]
    client = CsrfClient()
    client.force_login(user)
    now = time.time()
    edit_mfa_state(client, lambda s: s.verifications.append(Verification(key.pk, "TOTP", now, now + 3600)))
    assert client.post(BASE + f"rename/{key.pk}/", {"name": "pho\x00ne"}).status_code == 302
    assert Key.objects.get(pk=key.pk).name == "phone"
    response = client.patch(
        BASE + f"api/v1/keys/{key.pk}", json.dumps({"name": "\x00tablet"}), content_type="application/json"
    )
    assert response.status_code == 200 and Key.objects.get(pk=key.pk).name == "tablet"
    begin = client.api("post", BASE + "api/v1/totp/begin")
    assert begin.status_code == 200, begin.content
    seed = json.loads(begin.content)["data"]["secret"]
    body = json.dumps({"code": pyotp.TOTP(seed).now(), "name": "wa\x00tch"})
    response = client.post(BASE + "api/v1/totp/activate", body, content_type="application/json")
    assert response.status_code == 201 and json.loads(response.content)["data"]["name"] == "watch"


def test_a_nul_in_the_user_agent_is_not_a_500(world):
    from multifactor.models import Event

    client = CsrfClient(HTTP_USER_AGENT="bad\x00agent")
    client.force_login(world["user"])
    response = client.post(
        BASE + "api/v1/totp/authenticate", json.dumps({"code": "000000"}), content_type="application/json"
    )
    assert response.status_code in (200, 400)
    assert Event.objects.filter(user_agent="badagent").exists()
