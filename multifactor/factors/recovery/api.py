"""API: ``recovery-codes`` (GET remaining / POST a new set) and ``recovery-codes/authenticate``."""

from ... import responses
from ...api import ApiView, verified
from . import authenticate, regenerate, remaining


class Codes(ApiView):
    def get(self, request):
        left, total = remaining(request.user)
        return responses.data({"remaining": left, "total": total})

    def post(self, request):
        return responses.data({"codes": regenerate(request)}, status=201)


class Authenticate(ApiView):
    def post(self, request):
        authenticate(request, self.field("code"))
        return verified(request)
