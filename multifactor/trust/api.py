"""API: ``trusted-browsers`` and ``sessions`` (GET the list, DELETE one or all), like ``keys``: removing
needs a factor verified within the re-authentication window (``reauthentication_required`` otherwise)."""

from django.http import HttpResponse

from .. import errors, flows, responses
from ..api import ApiView, _iso
from . import agents, browsers, sessions


def _id(value) -> int:
    if not (isinstance(value, str) and value.isascii() and value.isdigit()) or len(value) > 18:
        raise errors.FlowError("not_found", errors.not_found().message, 404)
    return int(value)


def trust_json(row) -> dict:
    return {
        "id": row.pk,
        "created_at": _iso(row.created_at),
        "expires_at": _iso(row.expires_at),
        "last_used_at": _iso(row.last_used_at),
        "user_agent": row.user_agent,
        "browser": agents.describe(row.user_agent),
        "current": row.current,
    }


def session_json(row) -> dict:
    return {
        "id": row.pk,
        "created_at": _iso(row.created_at),
        "last_seen_at": _iso(row.last_seen_at),
        "ip": row.ip,
        "user_agent": row.user_agent,
        "browser": agents.describe(row.user_agent),
        "current": row.current,
    }


class TrustedBrowsers(ApiView):
    http_method_names = ["get", "delete"]

    def get(self, request):
        return responses.data([trust_json(r) for r in browsers.listing(request)])

    def delete(self, request):
        flows.require_manage(request)
        browsers.revoke(request)
        return browsers.apply(request, HttpResponse(status=204))


class TrustedBrowser(ApiView):
    http_method_names = ["delete"]

    def delete(self, request, trust_id):
        pk = _id(trust_id)
        flows.require_manage(request)
        if not browsers.revoke(request, pk):
            raise errors.FlowError("not_found", errors.not_found().message, 404)
        return browsers.apply(request, HttpResponse(status=204))


class Sessions(ApiView):
    http_method_names = ["get", "delete"]

    def get(self, request):
        return responses.data([session_json(r) for r in sessions.listing(request)])

    def delete(self, request):
        flows.require_manage(request)
        sessions.sign_out(request, others=True)
        return HttpResponse(status=204)


class Session(ApiView):
    http_method_names = ["delete"]

    def delete(self, request, session_id):
        pk = _id(session_id)
        flows.require_manage(request)
        if not sessions.sign_out(request, pk):
            raise errors.FlowError("not_found", errors.not_found().message, 404)
        return HttpResponse(status=204)
