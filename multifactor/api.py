"""The JSON API (``api/v1/``): session-authenticated, CSRF-protected, thin over :mod:`multifactor.flows`.

Every response is ``{"data": ...}`` or ``{"errors": [...]}``; CSRF failures, bad JSON, unknown ids and
throttling are all answered in that format, never as an HTML page or a 500. ``OPTIONS`` on an endpoint is
answered for anyone (it tells only what any 405 tells: the methods) with 200, an ``Allow`` header and
``{"data": {"methods": [...]}}``; a 405 carries the same ``Allow`` header.
"""

import datetime
import json

from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from . import conf, factors, flows, responses
from .errors import FlowError
from .models import Key
from .trust import browsers


def _iso(ts):
    if ts is None:
        return None
    if isinstance(ts, (int, float)):
        ts = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)
    return ts.isoformat()


def key_json(key: Key) -> dict:
    return {
        "id": key.pk,
        "type": key.type,
        "name": key.name,
        "enabled": key.enabled,
        "created_at": _iso(key.created_at),
        "last_used_at": _iso(key.last_used_at),
    }


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason


@method_decorator(csrf_exempt, name="dispatch")
class ApiView(View):
    """Base for API endpoints: JSON errors for every failure; ``anonymous`` endpoints skip the login check."""

    anonymous = False

    def dispatch(self, request, *args, **kwargs):
        if request.method == "OPTIONS":
            return self.options(request, *args, **kwargs)
        if request.method.lower() not in self.http_method_names or not hasattr(self, request.method.lower()):
            response = responses.error("method_not_allowed", _("Method not allowed."), 405)
            response["Allow"] = ", ".join(self.allowed_methods())
            return response
        try:
            request.body  # noqa: B018  read it now: the CSRF check's read of a form body would consume the stream
        except RequestDataTooBig:
            return responses.error("too_large", _("The request body is too large."), 413)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            reason = _CsrfCheck(lambda r: None).process_view(request, None, (), {})
            if reason is not None:
                return responses.error(
                    "csrf_failed",
                    _("CSRF check failed: %(reason)s") % {"reason": reason},
                    403,
                )
        if not self.anonymous and not request.user.is_authenticated:
            return responses.error("not_authenticated", _("Sign in first."), 401)
        try:
            self.body = self.parse_body(request)
            return super().dispatch(request, *args, **kwargs)
        except FlowError as error:
            return responses.errors([error.as_json()], error.status, retry_after=error.retry_after)

    def allowed_methods(self) -> list[str]:
        """The methods this endpoint answers, OPTIONS included."""
        names = [m for m in self.http_method_names if m != "options" and hasattr(self, m)]
        return [m.upper() for m in names] + ["OPTIONS"]

    def options(self, request, *args, **kwargs):
        """The API's answer to OPTIONS (Django's is an empty text/html 200)."""
        methods = self.allowed_methods()
        response = responses.data({"methods": methods})
        response["Allow"] = ", ".join(methods)
        return response

    @staticmethod
    def parse_body(request) -> dict:
        if request.method in ("GET", "HEAD", "OPTIONS", "DELETE") or not request.body:
            return {}
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[...]]]]" nested too deep
            raise FlowError("invalid_json", _("The request body is not valid JSON."), 400) from None
        if not isinstance(body, dict):
            raise FlowError("invalid_json", _("The request body must be a JSON object."), 400)
        return body

    def field(self, name, kind=str, required=True):
        value = self.body.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise FlowError(
                "invalid",
                _("%(name)s is missing or of the wrong type.") % {"name": name},
                400,
                param=name,
            )
        return value


class Status(ApiView):
    def get(self, request):
        active = flows.active_verifications(request)
        return responses.data(
            {
                "verified": [
                    {
                        "type": v.type,
                        "key_id": v.key_id,
                        "verified_at": _iso(v.verified_at),
                        "expires_at": _iso(v.expires_at),
                    }
                    for v in active
                ],
                "has_keys": flows.has_keys(request.user),
                "types": [f.type for f in factors.all_factors() if f.allowed()],
                "fallbacks": list(conf.get().FALLBACKS),
            }
        )


class Keys(ApiView):
    def get(self, request):
        keys = Key.objects.filter(user=request.user, confirmed=True)
        return responses.data([key_json(k) for k in keys])


class KeyDetail(ApiView):
    http_method_names = ["get", "patch", "delete"]

    def get(self, request, key_id):
        return responses.data(key_json(flows.user_key(request, key_id)))

    def patch(self, request, key_id):
        key = flows.user_key(request, key_id)
        name = self.field("name", str, required=False)
        enabled = self.field("enabled", bool, required=False)
        if name is None and enabled is None:  # an empty body is bad input, not a no-op success
            message = _("%(name)s is missing or of the wrong type.") % {"name": "name or enabled"}
            raise FlowError("invalid", message, 400)
        # All or nothing: the name is checked, then the change that can be refused (403, 409) is made first.
        if name is not None:
            name = flows.check_name(name)
        if enabled is not None:
            flows.set_enabled(request, key, enabled)
        if name is not None:
            flows.rename(request, key, name)
        return responses.data(key_json(key))

    def delete(self, request, key_id):
        flows.delete(request, flows.user_key(request, key_id))
        return HttpResponse(status=204)


def verified(request):
    """The success answer of every ``*/authenticate`` endpoint (with the trust cookie, if one was asked for)."""
    return browsers.apply(request, responses.data({"verified": True, "next": flows.success_url(request)}))


@method_decorator(csrf_exempt, name="dispatch")  # its own dispatch: a JSON 404 even without a CSRF token
class NotFound(ApiView):
    """Any other path under the API: a JSON 404 for every method."""

    anonymous = True
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def dispatch(self, request, *args, **kwargs):
        return responses.error("not_found", _("No such API endpoint."), 404)
