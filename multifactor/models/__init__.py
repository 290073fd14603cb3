"""Stored state: keys and their codes, fallback opt-outs, revision markers, the audit trail.

A package so that 0.9.x's ``UserKey`` (:mod:`.userkey`) can sit at its old path, ``multifactor.models``,
on top of the library's own models (:mod:`.keys`) without the two importing each other.
"""

from .keys import (  # noqa: F401
    FALLBACK,
    REVOKING_FIELDS,
    DisabledFallback,
    Event,
    FallbackCode,
    Key,
    KeyQuerySet,
    KeyType,
    RecoveryCode,
    Revision,
    WebAuthnChallenge,
    WebAuthnUser,
)
from .trust import SignedInSession, TrustedBrowser  # noqa: F401
from .userkey import DOMAIN_KEYS, KeyTypes, UserKey  # noqa: F401  (django-multifactor 0.9.x names)
