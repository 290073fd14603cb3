"""``SignedInSessionsMiddleware``: a session signed out from elsewhere is logged out on its next request, on
every page, not only on protected ones (those refuse it by themselves through :mod:`multifactor.policy`).

Put it right after ``AuthenticationMiddleware``. Per request it compares the session's recorded revision
with the one loaded with the user (:class:`multifactor.backends.ModelBackend`): equal, nothing happens (no
query, no write); different, the session's row and verifications are checked once. It loads
``request.user``, which nearly every page does anyway.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.contrib.auth.models import AnonymousUser

from .. import revocation, session
from . import sessions


class SignedInSessionsMiddleware:
    sync_capable = True
    async_capable = True  # in an async stack the usual request stays in the event loop (no thread hop)

    def __init__(self, get_response):
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not settled(request.session.get(session.SESSION_KEY), user):
            self.check(request, user)
        return self.get_response(request)

    async def __acall__(self, request):
        auser = getattr(request, "auser", None)
        user = await auser() if auser is not None else None
        if user is not None and user.is_authenticated:
            raw = await request.session.aget(session.SESSION_KEY)
            if not settled(raw, user) and await sync_to_async(self.check)(request, user):
                request.auser = _anonymous  # logout() reset request.user; auser() has the user cached
        return await self.get_response(request)

    @staticmethod
    def check(request, user) -> bool:
        """Whether the session was found signed out (and is now logged out)."""
        state = session.load(request.session)
        if state.sid is None:
            sessions.start(request, user, state)  # signed in before tracking existed: once
            return False
        fixed = revocation.check(user, state, revocation.current(user))
        if fixed is not None and fixed.ended:
            sessions.end(request)
            return True
        if fixed is not None:
            session.save(request.session, fixed)
        return False


def settled(raw, user) -> bool:
    """The usual request, read from the stored state without parsing it: tracked, and checked at the
    revision loaded with the user (no query, nothing to do)."""
    if not isinstance(raw, dict) or raw.get("s") is None:
        return False
    joined = revocation.joined(user)
    return joined is not revocation.NOT_JOINED and type(raw.get("r")) is int and raw["r"] == joined[0]


async def _anonymous():
    return AnonymousUser()
