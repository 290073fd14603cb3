"""API: ``fallback/send`` and ``fallback/authenticate``."""

from ... import responses
from ...api import ApiView, verified
from . import authenticate, send


class Send(ApiView):
    def post(self, request):
        return responses.data({"sent_via": send(request)})


class Authenticate(ApiView):
    def post(self, request):
        authenticate(request, self.field("code"))
        return verified(request)
