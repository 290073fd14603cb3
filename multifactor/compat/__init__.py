"""Names django-multifactor 0.9.x sites use, kept so that switching to this library is a package swap.

Everything here is thin: it maps a 0.9.x name onto the library's own modules (``conf``, ``flows``,
``policy``, ``models``) and holds no logic of its own. The 0.9.x import paths (``multifactor.common``,
``multifactor.app_settings``, the 0.9.x mixins in ``multifactor.mixins``, ``multifactor.models.UserKey``)
re-export from here; the module ones raise a ``DeprecationWarning`` (silent unless warnings are enabled)
that names what replaces them. README.rst, "Upgrading from 0.9.x", lists every name and what changed.
"""

import warnings


def deprecated(old: str, new: str, stacklevel: int = 3) -> None:
    """Warn that the 0.9.x name ``old`` is kept for compatibility and ``new`` replaces it."""
    warnings.warn(
        f"{old} is kept for django-multifactor 0.9.x sites; use {new} instead.", DeprecationWarning, stacklevel
    )
