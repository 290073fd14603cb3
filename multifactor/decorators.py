"""``multifactor_protected``: the per-view protection, a thin wrapper over :mod:`multifactor.policy`."""

import functools

# asgiref's test also sees views marked with markcoroutinefunction (an async class-based view's as_view()),
# which inspect.iscoroutinefunction() misses before Python 3.12.
from asgiref.sync import iscoroutinefunction

from . import policy

__all__ = ["multifactor_protected"]


def multifactor_protected(factors=0, user_filter=None, max_age=0, advertise=False):
    """Require ``factors`` verified factors (a number, or any callable taking the request) for a view.

    ``user_filter`` (a dict of ``User.objects.filter`` lookups, or a callable taking the user) limits the
    protection to the users it matches; ``max_age`` (seconds) requires a verification that recent;
    ``advertise`` tells users without keys, once per session, that they can add one. Works on sync and
    async views; pair it with ``login_required`` (anonymous users pass through).
    """
    options = {
        "factors": factors,
        "user_filter": user_filter,
        "max_age": max_age,
        "advertise": advertise,
    }

    def decorator(view):
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def wrapped(request, *args, **kwargs):
                response = await policy.aenforce(request, **options)
                if response is not None:
                    return response
                return await view(request, *args, **kwargs)

        else:

            @functools.wraps(view)
            def wrapped(request, *args, **kwargs):
                response = policy.enforce(request, **options)
                if response is not None:
                    return response
                return view(request, *args, **kwargs)

        wrapped.multifactor_protected = options  # type: ignore[attr-defined]  # lets the system check spot MFA pages behind protection
        return wrapped

    return decorator
