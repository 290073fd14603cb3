"""0.9.x's class-based view mixins, deciding through :func:`multifactor.policy.enforce` like the decorator.

``MultiFactorMixin`` gives a view 0.9.x's attributes, read when first used: ``active_factors`` (see
:func:`multifactor.compat.common.active_factors`), ``factors`` (the user's keys, as ``UserKey``),
``has_multifactor`` and ``bypass``. ``RequireMultiAuthMixin`` is ``multifactor_protected(factors=1)``: a user
with keys and no verification is challenged, a user without keys is sent to add one. ``PreferMultiAuthMixin``
is ``multifactor_protected()``: only users with keys are challenged. Both return to the page afterwards, let
``BYPASS`` through, and work on async views. New code uses :class:`multifactor.mixins.MultifactorRequiredMixin`.
"""

from asgiref.sync import sync_to_async
from django.utils.functional import cached_property

from .. import policy
from ..models import UserKey
from . import common


class MultiFactorMixin:
    """0.9.x's attributes for a view; enforces nothing on its own."""

    @cached_property
    def active_factors(self):
        return common.active_factors(self.request)

    @cached_property
    def factors(self):
        user = self.request.user
        return UserKey.objects.filter(user=user) if user.is_authenticated else UserKey.objects.none()

    @cached_property
    def has_multifactor(self):
        return common.has_multifactor(self.request)

    @cached_property
    def bypass(self):
        return common.is_bypassed(self.request)


class _Enforcing(MultiFactorMixin):
    required_factors = 0  # passed to policy.enforce as ``factors`` (0.9.x's ``factors`` is the keys)

    def _enforce(self, request):
        return policy.enforce(request, factors=self.required_factors)

    def dispatch(self, request, *args, **kwargs):
        if getattr(self, "view_is_async", False):
            return self._dispatch_async(request, *args, **kwargs)
        response = self._enforce(request)
        if response is not None:
            return response
        return super().dispatch(request, *args, **kwargs)

    async def _dispatch_async(self, request, *args, **kwargs):
        response = await sync_to_async(self._enforce)(request)
        if response is not None:
            return response
        return await super().dispatch(request, *args, **kwargs)


class RequireMultiAuthMixin(_Enforcing):
    """Require a verified factor; a user with no keys is sent to add one."""

    required_factors = 1


class PreferMultiAuthMixin(_Enforcing):
    """Challenge users who have keys; let the others through."""

    required_factors = 0
