"""Authentication backends that load the user's revocation counter in the same statement as the user.

Every protected request already loads the signed-in user (``login_required`` does). Joining the user's
:class:`~multifactor.models.Revision` row to that one query lets :mod:`multifactor.revocation` know whether
anything was revoked since the session was checked without a statement of its own. List
``"multifactor.backends.ModelBackend"`` in ``AUTHENTICATION_BACKENDS`` in place of Django's, or put
:class:`RevisionMixin` in front of a backend of your own that loads users like Django's ``ModelBackend``.
"""

from django.contrib.auth import backends, get_user_model

RELATED = "multifactor_revision"


class RevisionMixin:
    """``get_user`` / ``aget_user`` as Django's ModelBackend, with the revision row joined (a LEFT JOIN on its
    primary key: one statement, as before)."""

    def _users(self):
        return get_user_model()._default_manager.select_related(RELATED)

    def _allowed(self, user):
        can = getattr(self, "user_can_authenticate", None)
        return user if can is None or can(user) else None

    def get_user(self, user_id):
        user_model = get_user_model()
        try:
            user = self._users().get(pk=user_id)
        except user_model.DoesNotExist:
            return None
        return self._allowed(user)

    async def aget_user(self, user_id):
        user_model = get_user_model()
        try:
            user = await self._users().aget(pk=user_id)
        except user_model.DoesNotExist:
            return None
        return self._allowed(user)


class ModelBackend(RevisionMixin, backends.ModelBackend):
    """Django's ModelBackend, loading the revocation counter with the user."""


class AllowAllUsersModelBackend(RevisionMixin, backends.AllowAllUsersModelBackend):
    """Django's AllowAllUsersModelBackend, loading the revocation counter with the user."""


def joins_revision(backend_path: str) -> bool:
    from django.utils.module_loading import import_string

    try:
        return issubclass(import_string(backend_path), RevisionMixin)
    except (ImportError, TypeError):
        return False
