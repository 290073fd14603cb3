"""``MultifactorRequiredMixin``: ``multifactor_protected`` for class-based views, sync or async.

0.9.x's ``MultiFactorMixin``, ``RequireMultiAuthMixin`` and ``PreferMultiAuthMixin`` are importable from here
too (they live in :mod:`multifactor.compat.mixins`).
"""

from . import policy


class MultifactorRequiredMixin:
    """Same rules as the decorator; configure with the class attributes below. Put it after
    ``LoginRequiredMixin`` in the bases so anonymous users are sent to log in first."""

    factors = 0
    user_filter = None
    max_age = 0
    advertise = False

    def enforce_multifactor(self, request):
        """None to go on, else the challenge (or enrolment) response."""
        return policy.enforce(
            request,
            factors=self.factors,
            user_filter=self.user_filter,
            max_age=self.max_age,
            advertise=self.advertise,
        )

    async def aenforce_multifactor(self, request):
        """The same for async views: no thread hop when the answer needs no query."""
        return await policy.aenforce(
            request,
            factors=self.factors,
            user_filter=self.user_filter,
            max_age=self.max_age,
            advertise=self.advertise,
        )

    def dispatch(self, request, *args, **kwargs):
        if getattr(self, "view_is_async", False):
            return self._dispatch_async(request, *args, **kwargs)
        response = self.enforce_multifactor(request)
        if response is not None:
            return response
        return super().dispatch(request, *args, **kwargs)

    async def _dispatch_async(self, request, *args, **kwargs):
        response = await self.aenforce_multifactor(request)
        if response is not None:
            return response
        return await super().dispatch(request, *args, **kwargs)


_COMPAT_MIXINS = ("MultiFactorMixin", "RequireMultiAuthMixin", "PreferMultiAuthMixin")


def __getattr__(name):
    """django-multifactor 0.9.x's mixins (multifactor.compat.mixins), on first use, with a DeprecationWarning."""
    if name in _COMPAT_MIXINS:
        from .compat import deprecated
        from .compat import mixins as compat_mixins

        deprecated(f"multifactor.mixins.{name}", "multifactor.mixins.MultifactorRequiredMixin")
        return getattr(compat_mixins, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
