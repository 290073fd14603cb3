"""``MultifactorRequiredMixin``: ``multifactor_protected`` for class-based views, sync or async."""

from asgiref.sync import sync_to_async

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

    def dispatch(self, request, *args, **kwargs):
        if getattr(self, "view_is_async", False):
            return self._dispatch_async(request, *args, **kwargs)
        response = self.enforce_multifactor(request)
        if response is not None:
            return response
        return super().dispatch(request, *args, **kwargs)

    async def _dispatch_async(self, request, *args, **kwargs):
        # The policy may query the database: run it off the event loop, as the decorator does.
        response = await sync_to_async(self.enforce_multifactor)(request)
        if response is not None:
            return response
        return await super().dispatch(request, *args, **kwargs)
