"""API: ``webauthn/register/*``, ``webauthn/authenticate/*`` and (anonymous) ``passkey/*``."""

from ... import responses
from ...api import ApiView, key_json, verified
from . import ceremonies
from .views import passkey_answer


class RegisterBegin(ApiView):
    def post(self, request):
        return responses.data(ceremonies.register_begin(request, passkey=self.body.get("passkey") is True))


class RegisterComplete(ApiView):
    def post(self, request):
        key = ceremonies.register_complete(
            request, self.body.get("credential"), self.field("name", str, required=False) or ""
        )
        return responses.data(key_json(key), status=201)


class AuthenticateBegin(ApiView):
    def post(self, request):
        return responses.data(ceremonies.authenticate_begin(request))


class AuthenticateComplete(ApiView):
    def post(self, request):
        ceremonies.authenticate_complete(request, self.body.get("credential"))
        return verified(request)


class PasskeyBegin(ApiView):
    anonymous = True

    def post(self, request):
        return responses.data(ceremonies.passkey_begin(request))


class PasskeyComplete(ApiView):
    anonymous = True

    def post(self, request):
        return responses.data(passkey_answer(request, self.body))
