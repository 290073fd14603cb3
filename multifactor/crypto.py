"""Encryption at rest for stored secrets (TOTP seeds), and constant-time hashing helpers.

Keys come from ``MULTIFACTOR["ENCRYPTION_KEYS"]`` or the ``MULTIFACTOR_ENCRYPTION_KEYS`` environment variable
(comma separated Fernet keys): the first encrypts, all decrypt, so a new key can be put first and the old
ones kept until ``manage.py multifactor_rotate_keys`` has re-encrypted everything. Without either, a key is
derived from SECRET_KEY (and ``manage.py check`` warns outside DEBUG): never from the database, so a dump
alone reveals no seed.
"""

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from . import conf

_fernet = None


def derived_key() -> str:
    """A Fernet key derived from SECRET_KEY, the fallback when no key is configured."""
    material = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"django-multifactor", info=b"fernet")
    return base64.urlsafe_b64encode(material.derive(settings.SECRET_KEY.encode())).decode()


def configured_keys() -> list[str]:
    return conf.get().encryption_keys or [derived_key()]


def fernet() -> MultiFernet:
    global _fernet
    if _fernet is None:
        _fernet = MultiFernet([Fernet(k) for k in configured_keys()])
    return _fernet


def reset():
    global _fernet
    _fernet = None


@receiver(setting_changed)
def _reset_on_change(setting, **kwargs):
    if setting in ("MULTIFACTOR", "SECRET_KEY"):
        reset()


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt with any configured key; raises ``InvalidToken`` when none fits."""
    return fernet().decrypt(token.encode()).decode()


def rotate(token: str) -> str:
    """Re-encrypt under the first key (the token stays readable by any configured key until then)."""
    return fernet().rotate(token.encode()).decode()


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    a = a.encode() if isinstance(a, str) else a
    b = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a, b)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


__all__ = [
    "InvalidToken",
    "encrypt",
    "decrypt",
    "rotate",
    "constant_time_equals",
    "sha256_hex",
]


if __name__ == "__main__":  # python -m multifactor.crypto: print a new key
    print(Fernet.generate_key().decode())
