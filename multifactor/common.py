"""django-multifactor 0.9.x's helpers, kept for sites (and custom factors) that import them.

Replaced by :mod:`multifactor.flows` (``record_verification``, ``finish``, ``has_keys``,
``active_verifications``) and :mod:`multifactor.conf`; see :mod:`multifactor.compat.common` for what each
name does now.
"""

from .compat import deprecated
from .compat.common import (  # noqa: F401
    ActiveFactor,
    active_factors,
    disabled_fallbacks,
    has_multifactor,
    is_bypassed,
    login,
    method_url,
    next_check,
    render,
    write_session,
)

deprecated("multifactor.common", "multifactor.flows (record_verification, finish, has_keys) and multifactor.conf")
