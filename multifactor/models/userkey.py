"""0.9.x's ``UserKey`` and ``KeyTypes``, over the library's ``Key`` (at 0.9.x's path, ``multifactor.models``).

``UserKey`` is a proxy of ``Key``: the same rows, with 0.9.x's field names on top, so that what sites wrote
against 0.9.x keeps working::

    UserKey.objects.filter(user=user, enabled=True).exists()
    UserKey.objects.filter(user=user, key_type=KeyTypes.TOTP).count()
    UserKey.objects.values("key_type").annotate(n=Count("pk"))      # keys per type

``key_type``, ``added_on`` and ``last_used`` are annotations of ``type``, ``created_at`` and ``last_used_at``
(filter, order and group by them; write the new names in ``update()``), and properties on the instances.
Its manager leaves out enrolments still pending (``confirmed=False``), which 0.9.x never stored. 0.9.x's
``properties`` JSON is gone: ``UserKey(key_type="TOTP", properties={"secret_key": ...})``, as sites' test
fixtures create keys, still works (the seed is encrypted); reading it gives the non-secret parts only. New
code uses :class:`multifactor.models.Key` and ``user.multifactor_keys``, which is unchanged.
"""

from django.db import models
from django.db.models import F

from .. import crypto
from .keys import Key, KeyQuerySet, KeyType

KeyTypes = KeyType  # 0.9.x: FIDO2 and TOTP, same values; RECOVERY is new
DOMAIN_KEYS = KeyType.FIDO2  # 0.9.x: the key types bound to a domain (the WebAuthn RP ID)

ALIASES = {"key_type": "type", "added_on": "created_at", "last_used": "last_used_at"}  # 0.9.x name: ours


class UserKeyManager(models.Manager.from_queryset(KeyQuerySet)):  # type: ignore[misc]  # dynamic base
    def get_queryset(self):
        aliases = {old: F(new) for old, new in ALIASES.items()}
        return super().get_queryset().filter(confirmed=True).annotate(**aliases)


def _alias(new):
    def get(self):
        return getattr(self, new)

    def set(self, value):  # also how the annotation's value lands on a fetched instance
        setattr(self, new, value)

    return property(get, set)


class UserKey(Key):
    """A key under its 0.9.x name (a proxy: no table of its own)."""

    key_type = _alias("type")
    added_on = _alias("created_at")
    last_used = _alias("last_used_at")
    expires = None  # 0.9.x had the column but never set it

    objects = UserKeyManager()  # type: ignore[misc]  # the proxy's manager in place of Key's

    class Meta:
        proxy = True

    def get_key_type_display(self):
        return self.get_type_display()

    @property
    def properties(self):
        if self.type == KeyType.FIDO2:
            return {"domain": self.rp_id}
        return {"last_step": self.last_step} if self.type == KeyType.TOTP else {}

    @properties.setter
    def properties(self, value):
        value = dict(value or {})
        if not self.type and "secret_key" in value:  # properties= came before key_type= (only TOTP had a seed)
            self.type = KeyType.TOTP
        if self.type != KeyType.TOTP or set(value) - {"secret_key", "last_step"}:
            raise ValueError("Only a TOTP key's secret_key and last_step can be set through 0.9.x's properties.")
        if "secret_key" in value:
            self.secret = crypto.encrypt(value["secret_key"])
        if "last_step" in value:
            self.last_step = value["last_step"]

    @property
    def device(self):
        return (self.aaguid or "----") if self.type == KeyType.FIDO2 else ""

    @property
    def auth_url(self):
        """The URL name of the page that verifies with this key (0.9.x: ``{% url factor.auth_url %}``)."""
        return f"multifactor:{self.type.lower()}_auth"
