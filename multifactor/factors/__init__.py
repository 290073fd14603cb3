"""Factor types. Importing this package registers every built-in one (see :mod:`.base`)."""

from .base import Factor, all_factors, get, register  # noqa: F401
from .fallback import FallbackFactor  # noqa: F401
from .fido2 import Fido2Factor  # noqa: F401
from .recovery import RecoveryFactor  # noqa: F401
from .totp import TotpFactor  # noqa: F401
