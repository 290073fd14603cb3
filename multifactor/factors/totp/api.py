"""API endpoints for TOTP: ``totp/begin``, ``totp/activate``, ``totp/authenticate``."""

from ... import responses
from ...api import ApiView, key_json, verified
from . import activate, authenticate, begin, provisioning_uri, qr_svg


class Begin(ApiView):
    def post(self, request):
        _key, seed = begin(request)
        uri = provisioning_uri(request.user, seed)
        return responses.data({"secret": seed, "totp_url": uri, "qr_svg": qr_svg(uri)})


class Activate(ApiView):
    def post(self, request):
        key = activate(request, self.field("code"), self.field("name", str, required=False) or "")
        return responses.data(key_json(key), status=201)


class Authenticate(ApiView):
    def post(self, request):
        authenticate(request, self.field("code"))
        return verified(request)
