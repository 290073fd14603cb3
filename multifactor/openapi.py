"""``api/v1/openapi.json``: the OpenAPI 3.1 description of the JSON API (the package's ``openapi.json``).

The file cannot know where a site mounts ``multifactor.urls`` nor what its cookies are called, so the served
copy names the real prefix in ``servers`` and the site's session cookie, CSRF cookie and CSRF header in the
security schemes: a client generator or a fuzzer can use it as it is.
"""

import copy
import functools
import json
import pathlib

from django.conf import settings
from django.http import JsonResponse
from django.urls import reverse

from .api import ApiView

FILE = pathlib.Path(__file__).with_name("openapi.json")
SUFFIX = "openapi.json"


@functools.cache
def document() -> dict:
    """The description as shipped (read once per process)."""
    return json.loads(FILE.read_text(encoding="utf-8"))


def header_name(meta_name: str) -> str:
    """``HTTP_X_CSRFTOKEN`` -> ``X-Csrftoken`` (header names are case-insensitive)."""
    return "-".join(part.capitalize() for part in meta_name.removeprefix("HTTP_").split("_"))


def for_site(api_prefix: str) -> dict:
    """The description with this site's API prefix (``/multifactor/api/v1/``) and cookie/header names."""
    spec = copy.deepcopy(document())
    spec["servers"] = [{"url": api_prefix.rstrip("/"), "description": "This site's API."}]
    schemes = spec["components"]["securitySchemes"]
    schemes["session"]["name"] = settings.SESSION_COOKIE_NAME
    schemes["csrfCookie"]["name"] = settings.CSRF_COOKIE_NAME
    if settings.CSRF_HEADER_NAME != "HTTP_X_CSRFTOKEN":  # keep the usual spelling, X-CSRFToken, by default
        schemes["csrfHeader"]["name"] = header_name(settings.CSRF_HEADER_NAME)
    if settings.CSRF_USE_SESSIONS:  # the token lives in the session: there is no CSRF cookie to send
        del schemes["csrfCookie"]
        for item in spec["paths"].values():
            for operation in item.values():
                for requirement in operation.get("security", []) if isinstance(operation, dict) else []:
                    requirement.pop("csrfCookie", None)
    return spec


class OpenApi(ApiView):
    """Anonymous GET; the document itself, not wrapped in ``data``."""

    anonymous = True

    def get(self, request):
        namespace = request.resolver_match.namespace if request.resolver_match else None
        url = reverse("multifactor:api-openapi", current_app=namespace)
        return JsonResponse(for_site(url.removesuffix(SUFFIX)))
