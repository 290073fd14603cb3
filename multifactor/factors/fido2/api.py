"""API: ``webauthn/register/*``, ``webauthn/authenticate/*`` and (anonymous) ``passkey/*``."""

from ... import flows, responses
from ...api import ApiView, key_json, verified
from . import ceremonies
from .views import passkey_next


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
        user = ceremonies.passkey_complete(request, self.body.get("credential"))
        verified_now = any(v.key_id for v in flows.active_verifications(request))
        return responses.data(
            {
                "user": user.get_username(),
                "verified": verified_now,
                "next": passkey_next(request, self.body.get("next")),
            }
        )
