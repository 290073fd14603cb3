"""The factor interface and the registry of factor types.

A factor type is one subpackage of :mod:`multifactor.factors` holding a :class:`Factor` subclass (its
domain logic, no HTTP), its HTML views and its API endpoints, registered with :func:`register`. Everything
else (the decorator, the flows, the authenticate and add pages) asks the registry, so adding a factor type
touches nothing outside its subpackage but the list in :mod:`multifactor.factors`.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.functional import Promise

from .. import conf

_registry: dict[str, Factor] = {}


class Factor:
    """One kind of factor. Subclasses set the class attributes and implement the flows they support."""

    type: str = ""
    label: str | Promise = ""
    description: str | Promise = ""
    auth_url_name = ""  # HTML page that verifies a user with this factor
    start_url_name = ""  # HTML page that enrols one (None: cannot be added by the user, e.g. fallbacks)
    stored = True  # False for factors that are not a Key row (fallback codes)
    order = 50  # where the factor is listed: strongest first

    def allowed(self) -> bool:
        """Listed in MULTIFACTOR["FACTORS"] (fallbacks: FALLBACKS is not empty)."""
        return self.type in conf.get().FACTORS

    def usable_by(self, user) -> bool:
        """Whether ``user`` can verify with this factor now (has an active key of this type)."""
        return user.multifactor_keys.active().filter(type=self.type).exists()

    def auth_url(self) -> str:
        return reverse(self.auth_url_name)

    def start_url(self) -> str | None:
        return reverse(self.start_url_name) if self.start_url_name else None


def register(factor: Factor) -> Factor:
    _registry[factor.type] = factor
    return factor


def get(type_: str) -> Factor | None:
    return _registry.get(type_)


def all_factors() -> list[Factor]:
    return sorted(_registry.values(), key=lambda f: f.order)
