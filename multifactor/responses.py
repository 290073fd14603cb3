"""JSON responses in the API's format: ``{"data": ...}`` or ``{"errors": [...]}`` (and ``"meta"``)."""

from django.http import JsonResponse


def data(payload, status=200):
    return JsonResponse({"data": payload}, status=status)


def error(code, message, status, param=None, meta=None, retry_after=0):
    item = {"code": code, "message": str(message)}
    if param:
        item["param"] = param
    return errors([item], status, meta, retry_after)


def errors(items, status, meta=None, retry_after=0):
    body = {"errors": items}
    if meta:
        body["meta"] = meta
    response = JsonResponse(body, status=status)
    if retry_after:
        response["Retry-After"] = str(int(retry_after))
    return response


def prefers_json(request) -> bool:
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"
