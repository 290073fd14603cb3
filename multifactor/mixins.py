"""``MultifactorRequiredMixin``: ``multifactor_protected`` for class-based views."""

from . import policy


class MultifactorRequiredMixin:
    """Same rules as the decorator; configure with the class attributes below. Put it after
    ``LoginRequiredMixin`` in the bases so anonymous users are sent to log in first."""

    factors = 0
    user_filter = None
    max_age = 0
    advertise = False

    def dispatch(self, request, *args, **kwargs):
        response = policy.enforce(
            request,
            factors=self.factors,
            user_filter=self.user_filter,
            max_age=self.max_age,
            advertise=self.advertise,
        )
        if response is not None:
            return response
        return super().dispatch(request, *args, **kwargs)
