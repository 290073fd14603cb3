"""The typed, validated view of ``settings.MULTIFACTOR``.

Read lazily and rebuilt when ``override_settings`` changes a relevant setting, so tests and sites that
change settings at run time are honoured. A bad value never crashes a request: it falls back to the
default and is reported by ``manage.py check`` (see :mod:`multifactor.checks`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

KNOWN_FACTORS = ("FIDO2", "TOTP", "RECOVERY")
ENV_ENCRYPTION_KEYS = "MULTIFACTOR_ENCRYPTION_KEYS"

# Keys django-multifactor 0.9.x understood that this version ignores (reported as a warning).
DEPRECATED_KEYS = {
    "FIDO_SERVER_ICON": "WebAuthn Level 2 removed the RP icon.",
    "U2F_APPID": "U2F is gone; FIDO2 (WebAuthn) keys replace it.",
    "MAX_ATTEMPTS": "use THROTTLE_MAX_FAILURES.",
    "ATTEMPT_PERIOD": "throttling now counts consecutive failures per key (THROTTLE_*).",
    "LOCKOUT_PERIOD": "use THROTTLE_MAX_DELAY.",
    "ATTEMPT_RETENTION_DAYS": "attempts are audit events now; only prune_mfa_attempts (kept from 0.9) reads it, "
    "multifactor_prune_events --days does not.",
    "CACHE": "revocation no longer uses a cache: a revision counter is loaded with the user (docs: Revocation).",
}


def _default_fallbacks():
    return {"email": (lambda user: user.email, "multifactor.factors.fallback.send_email")}


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _nonneg_int(v):
    return _is_int(v) and v >= 0


def _pos_int(v):
    return _is_int(v) and v > 0


def _str_or_false(v):
    return v in (None, False) or isinstance(v, str)


def _str(v):
    return isinstance(v, str)


def _text(v):
    return isinstance(v, (str, Promise))  # plain, or lazy (gettext_lazy, as 0.9's README suggests)


def _bool(v):
    return isinstance(v, bool)


def _str_list(v):
    return isinstance(v, (list, tuple)) and all(isinstance(i, str) for i in v)


def _factor_list(v):
    return _str_list(v) and all(i in KNOWN_FACTORS for i in v)


def _fallbacks(v):
    return isinstance(v, dict) and all(
        isinstance(k, str)
        and isinstance(t, (list, tuple))
        and len(t) == 2
        and callable(t[0])
        and (isinstance(t[1], str) or callable(t[1]))
        for k, t in v.items()
    )


REQUIRE_KEYS = {"superusers", "staff", "groups", "predicate", "factors", "grace_until", "grace_period", "exempt"}


def _require_rules(v):
    return (
        isinstance(v, dict)
        and set(v) <= REQUIRE_KEYS
        and (v.get("groups") is None or _str_list(v["groups"]))
        and (v.get("exempt") is None or _str_list(v["exempt"]))
        and (v.get("factors") is None or _pos_int(v["factors"]))
        and (v.get("grace_period") is None or _nonneg_int(v["grace_period"]))
        and (v.get("predicate") is None or _str(v["predicate"]))
    )


# name: (default or factory, validator, description). The settings page of the docs is generated from it (docs/_ext).
SPEC: dict[str, tuple[Any, Callable[[Any], bool], str]] = {
    "LOGIN_CALLBACK": (
        False,
        _str_or_false,
        "dotted path of fn(request, username=...) -> response",
    ),
    "RECHECK": (
        True,
        _bool,
        "expire verifications after RECHECK_MIN..RECHECK_MAX seconds",
    ),
    "RECHECK_MIN": (3 * 3600, _pos_int, "seconds"),
    "RECHECK_MAX": (6 * 3600, _pos_int, "seconds"),
    "FIDO_SERVER_ID": (
        "localhost",
        lambda v: _str(v) or (_str_list(v) and bool(v)),
        "WebAuthn RP ID, or a list of them",
    ),
    "FIDO_SERVER_NAME": ("Django App", _str, "WebAuthn RP name"),
    "FIDO_ORIGINS": (
        None,
        lambda v: v is None or _str_list(v),
        "allowed WebAuthn origins",
    ),
    "PASSKEY_LOGIN": (False, _bool, "allow passwordless sign-in with a passkey"),
    "TOKEN_ISSUER_NAME": ("Django App", _str, "issuer shown in authenticator apps"),
    "LOGIN_MESSAGE": (
        _('You are now multifactor-authenticated. <a href="{}">Multifactor settings</a>.'),
        _text,
        "message after a verification; {} is the home URL",
    ),
    "SHOW_LOGIN_MESSAGE": (True, _bool, "show LOGIN_MESSAGE"),
    "FACTORS": (list(KNOWN_FACTORS), _factor_list, "factor types users may add"),
    "FALLBACKS": (
        _default_fallbacks,
        _fallbacks,
        "name -> (destination(user), transport path)",
    ),
    "HTML_EMAIL": (True, _bool, "send fallback e-mail as HTML too"),
    "BYPASS": (None, _str_or_false, "dotted path of fn(request) -> bool"),
    "ENCRYPTION_KEYS": (
        None,
        lambda v: v is None or _str_list(v),
        "Fernet keys, first encrypts",
    ),
    "TOTP_WINDOW": (
        1,
        lambda v: _nonneg_int(v) and v <= 10,
        "time steps accepted either side",
    ),
    "TOTP_ENROL_TTL": (900, _pos_int, "seconds a pending TOTP enrolment lives"),
    "REAUTH_WINDOW": (300, _pos_int, "seconds a verification allows managing keys"),
    "THROTTLE_FREE_FAILURES": (3, _nonneg_int, "consecutive failures before any delay"),
    "THROTTLE_BASE_DELAY": (1, _pos_int, "seconds, doubled per further failure"),
    "THROTTLE_MAX_DELAY": (300, _pos_int, "seconds, the longest delay"),
    "THROTTLE_MAX_FAILURES": (
        20,
        lambda v: _pos_int(v) and v <= 100,
        "failures that lock a key",
    ),
    "RECOVERY_CODES": (10, lambda v: _pos_int(v) and v <= 50, "codes in a recovery set"),
    "FALLBACK_DIGITS": (8, lambda v: _is_int(v) and 6 <= v <= 12, "digits of a fallback code"),
    "FALLBACK_TTL": (600, lambda v: _pos_int(v) and v <= 600, "seconds a fallback code is valid (at most 600)"),
    "FALLBACK_COOLDOWN": (60, _nonneg_int, "seconds between two sends of a fallback code"),
    "NOTIFY_USER": (True, _bool, "mail users when a key is added, removed or locked, or a recovery code used"),
    "REQUIRE": (None, lambda v: v is None or _require_rules(v), "site-wide enforcement rules (see middleware)"),
    "TRUSTED_PROXIES": (0, lambda v: _nonneg_int(v) and v <= 10, "reverse proxies appending to X-Forwarded-For"),
    "TRUST_DAYS": (0, lambda v: _nonneg_int(v) and v <= 365, "days a trusted browser counts as one factor (0: off)"),
    "BASE_TEMPLATE": (
        "multifactor/base.html",
        lambda v: _str(v) and bool(v),
        "template the MFA pages are put in (a site's base with title and content blocks)",
    ),
}


@dataclasses.dataclass(frozen=True)
class MultifactorSettings:
    LOGIN_CALLBACK: str | bool
    RECHECK: bool
    RECHECK_MIN: int
    RECHECK_MAX: int
    FIDO_SERVER_ID: str | list
    FIDO_SERVER_NAME: str
    FIDO_ORIGINS: list | None
    PASSKEY_LOGIN: bool
    TOKEN_ISSUER_NAME: str
    LOGIN_MESSAGE: str
    SHOW_LOGIN_MESSAGE: bool
    FACTORS: list
    FALLBACKS: dict
    HTML_EMAIL: bool
    BYPASS: str | None
    ENCRYPTION_KEYS: list | None
    TOTP_WINDOW: int
    TOTP_ENROL_TTL: int
    REAUTH_WINDOW: int
    THROTTLE_FREE_FAILURES: int
    THROTTLE_BASE_DELAY: int
    THROTTLE_MAX_DELAY: int
    THROTTLE_MAX_FAILURES: int
    RECOVERY_CODES: int
    FALLBACK_DIGITS: int
    FALLBACK_TTL: int
    FALLBACK_COOLDOWN: int
    NOTIFY_USER: bool
    TRUSTED_PROXIES: int
    TRUST_DAYS: int
    BASE_TEMPLATE: str
    REQUIRE: dict | None
    problems: tuple = ()  # (kind, key, message) found while reading; reported by checks

    @property
    def rp_ids(self) -> list[str]:
        return [self.FIDO_SERVER_ID] if isinstance(self.FIDO_SERVER_ID, str) else list(self.FIDO_SERVER_ID)

    @property
    def origins(self) -> list[str]:
        """The WebAuthn origins allowed: the setting, else https://<each RP ID> (+ http://localhost in DEBUG).

        ``http://localhost`` matches any port; every other origin must match exactly.
        """
        if self.FIDO_ORIGINS is not None:
            return list(self.FIDO_ORIGINS)
        origins = [f"https://{rp_id}" for rp_id in self.rp_ids]
        if django_settings.DEBUG:
            origins.append("http://localhost")
        return origins

    @property
    def encryption_keys(self) -> list[str]:
        """Fernet keys from the setting, else the environment (comma separated); [] if neither."""
        if self.ENCRYPTION_KEYS:
            return list(self.ENCRYPTION_KEYS)
        env = os.environ.get(ENV_ENCRYPTION_KEYS, "")
        return [k.strip() for k in env.split(",") if k.strip()]


def _build() -> MultifactorSettings:
    raw = getattr(django_settings, "MULTIFACTOR", None) or {}
    problems = []
    if not isinstance(raw, dict):
        problems.append(("error", "MULTIFACTOR", "must be a dict"))
        raw = {}
    values = {}
    for name, (default, valid, _doc) in SPEC.items():
        value = raw.get(name, default() if callable(default) else default)
        if name in raw and not valid(value):
            problems.append(("error", name, f"invalid value {value!r} ({_doc})"))
            value = default() if callable(default) else default
        values[name] = value
    if values["RECHECK_MIN"] > values["RECHECK_MAX"]:
        problems.append(("error", "RECHECK_MIN", "RECHECK_MIN is greater than RECHECK_MAX"))
        values["RECHECK_MIN"] = values["RECHECK_MAX"]
    for name in raw:
        if name in DEPRECATED_KEYS:
            problems.append(("warning", name, "is ignored: " + DEPRECATED_KEYS[name]))
        elif name not in SPEC:
            problems.append(("error", name, "is not a known MULTIFACTOR setting"))
    return MultifactorSettings(**values, problems=tuple(problems))


_cached: MultifactorSettings | None = None


def get() -> MultifactorSettings:
    """The current settings object (built on first use, then cached until a setting changes)."""
    global _cached
    if _cached is None:
        _cached = _build()
    return _cached


@receiver(setting_changed)
def _reset(setting, **kwargs):
    """Forget the settings object when a setting it reads changes. Other modules that cache something built
    from settings (crypto's Fernet keys) listen to ``setting_changed`` themselves: nothing here imports them."""
    global _cached
    if setting in ("MULTIFACTOR", "DEBUG", "SECRET_KEY"):
        _cached = None
