"""FIDO2/WebAuthn security keys and passkeys, with python-fido2 2.x.

fido2's ``Fido2Server`` checks the ceremony's type, challenge, RP ID hash, UP/UV flags and the signature.
What it leaves to the relying party is done here and in :mod:`.ceremonies`: an explicit origin allow-list
(fido2's default accepts any subdomain on any port), the RP ID chosen from settings per request host, a
random 64-byte user handle, single-use challenge state, the sign counter, the backup flags, ``crossOrigin``,
unique credential ids and throttling.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from django.utils.translation import gettext_lazy

from ... import conf
from ...models import Key, KeyType, WebAuthnUser
from ..base import Factor, register


class Fido2Factor(Factor):
    type = KeyType.FIDO2.value
    label = gettext_lazy("Security key or passkey")
    description = gettext_lazy("A USB or NFC security key, or a passkey on your phone or computer.")
    auth_url_name = "multifactor:fido2_auth"
    start_url_name = "multifactor:fido2_start"
    order = 10


FACTOR = register(Fido2Factor())


def rp_id_for(host: str) -> str | None:
    """The configured RP ID that ``host`` (without port) equals or is a subdomain of; None if none fits."""
    host = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else host
    for rp_id in conf.get().rp_ids:
        if host == rp_id or host.endswith("." + rp_id):
            return rp_id
    return None


def origin_allowed(origin: str, rp_id: str) -> bool:
    """The origin is on the allow-list and its host is the RP ID or a subdomain of it."""
    if not isinstance(origin, str):
        return False
    try:
        parts = urlsplit(origin)
        host, port = parts.hostname, parts.port
    except ValueError:
        return False
    if not host or not (host == rp_id or host.endswith("." + rp_id)):
        return False
    for allowed in conf.get().origins:
        want = urlsplit(allowed)
        if want.scheme != parts.scheme or want.hostname != host:
            continue
        if want.port == port or (want.port is None and host == "localhost" and parts.scheme == "http"):
            return True
    return False


def user_handle(user) -> bytes:
    """The user's WebAuthn user handle, made on first use (64 random bytes)."""
    row, _ = WebAuthnUser.objects.get_or_create(user=user, defaults={"handle": secrets.token_bytes(64).hex()})
    return bytes.fromhex(row.handle)


def user_for_handle(handle: bytes):
    row = WebAuthnUser.objects.select_related("user").filter(handle=handle.hex()).first()
    return row.user if row else None


def keys_of(user):
    return Key.objects.active().filter(user=user, type=FACTOR.type)
