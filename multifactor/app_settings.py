"""django-multifactor 0.9.x's ``mf_settings``, kept for sites that read it; replaced by ``multifactor.conf.get()``
(a typed, validated object: ``conf.get().RECHECK_MIN``). See :mod:`multifactor.compat.settings`."""

from .compat import deprecated
from .compat.settings import mf_settings  # noqa: F401

deprecated("multifactor.app_settings.mf_settings", "multifactor.conf.get()")
