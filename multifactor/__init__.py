"""django-multifactor: multi-factor authentication for Django (TOTP, WebAuthn, recovery and fallback codes)."""

__version__ = "1.0.0.dev0"
