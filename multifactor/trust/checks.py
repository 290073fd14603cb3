"""Wiring of the signed-in sessions: the sign-in and sign-out receivers, and the check that the middleware
which logs out sessions signed out from elsewhere is installed (protected views refuse them without it)."""

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core import checks

from . import sessions

MIDDLEWARE = "multifactor.trust.middleware.SignedInSessionsMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


def connect():
    user_logged_in.connect(sessions.on_logged_in, dispatch_uid="multifactor.sessions.logged_in")
    user_logged_out.connect(sessions.on_logged_out, dispatch_uid="multifactor.sessions.logged_out")


@checks.register(checks.Tags.security)
def check_sessions_middleware(app_configs=None, **kwargs):
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if MIDDLEWARE not in middleware:
        return [
            checks.Warning(
                f"{MIDDLEWARE} is not in MIDDLEWARE: a session signed out from its user's list of sessions is "
                "refused only on views protected by multifactor, not on every page.",
                hint=f"Add it right after {AUTH_MIDDLEWARE}.",
                id="multifactor.W020",
            )
        ]
    if AUTH_MIDDLEWARE in middleware and middleware.index(MIDDLEWARE) < middleware.index(AUTH_MIDDLEWARE):
        return [
            checks.Error(
                f"{MIDDLEWARE} must come after {AUTH_MIDDLEWARE}.",
                id="multifactor.E020",
            )
        ]
    return []
