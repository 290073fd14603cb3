"""Signals sent by multifactor (every one with ``user`` and ``request`` keyword arguments, ``request``
possibly None when the change came from a command or the admin)."""

from django.dispatch import Signal

key_added = Signal()  # key
key_removed = Signal()  # key (already deleted: its pk is None), key_pk
key_toggled = Signal()  # key, enabled
key_used = Signal()  # key (None for a fallback code), type
# key (None for a fallback code, and for a TOTP code tried on several apps), type, failures; for a TOTP code
# also keys: the pks of the apps it was tried on (one guess counts on all of them)
verification_failed = Signal()
key_locked = Signal()  # key (None for a user's fallback codes), type
recovery_code_used = Signal()  # key (the RECOVERY key), remaining
codes_regenerated = Signal()  # key, count
fallback_sent = Signal()  # type ("FALLBACK"), sent_via (names of the transports that took it)

# Internal: a queryset update changed keys' enabled/confirmed/locked_at/revoked_at (user_pks). Models send it
# rather than import the revocation service above them; multifactor.apps connects the receiver.
keys_changed = Signal()
