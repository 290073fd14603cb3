"""Stored state: keys, fallback opt-outs, per-user revision markers, codes, the audit trail and WebAuthn state.

One ``Key`` table with typed, nullable columns per factor type (rather than a JSON bag), so that the
constraints that matter are enforced by the database: a WebAuthn credential id is unique, a TOTP time step
is a number the verification can compare and update atomically.
"""

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import signals


class KeyType(models.TextChoices):
    FIDO2 = "FIDO2", _("Security key or passkey")
    TOTP = "TOTP", _("Authenticator app")
    RECOVERY = "RECOVERY", _("Recovery codes")


FALLBACK = "FALLBACK"  # a verified fallback code: a factor type of sessions, never of a stored key


# Fields whose change can end a verification: every ORM update touching one of them is announced.
REVOKING_FIELDS = frozenset({"enabled", "confirmed", "locked_at", "revoked_at"})


class KeyQuerySet(models.QuerySet):
    def active(self):
        """Keys that can verify a user: confirmed and enabled."""
        return self.filter(confirmed=True, enabled=True)

    def update(self, **kwargs):
        """An update of ``enabled``, ``confirmed``, ``locked_at`` or ``revoked_at``, with any value or
        expression (``bulk_update`` comes here too), ends the verifications it may affect: the keys it
        disabled get ``revoked_at`` and their users' revision is raised (see :mod:`multifactor.revocation`),
        in the update's own transaction."""
        if REVOKING_FIELDS.isdisjoint(kwargs):
            return super().update(**kwargs)
        with transaction.atomic(using=self.db):
            rows = list(self.values_list("pk", "user_id"))
            count = super().update(**kwargs)
            pks = [pk for pk, _user in rows]
            if "revoked_at" not in kwargs:
                now = timezone.now()
                models.QuerySet.update(self.model.objects.filter(pk__in=pks, enabled=False), revoked_at=now)  # type: ignore[attr-defined]
            signals.keys_changed.send(self.model, user_pks={user for _pk, user in rows})
        return count


class Key(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="multifactor_keys")
    type = models.CharField(_("type"), max_length=16, choices=KeyType.choices)
    name = models.CharField(_("name"), max_length=64, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    confirmed = models.BooleanField(default=True, help_text=_("False while its enrolment is pending."))
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    # TOTP: the seed, Fernet-encrypted (see multifactor.crypto); the last accepted time step (RFC 6238 5.2).
    secret = models.TextField(blank=True, editable=False)
    last_step = models.BigIntegerField(null=True, blank=True, editable=False)

    # WebAuthn: sha256(credential id) carries the uniqueness (a BLOB cannot be UNIQUE on every database).
    credential_id = models.BinaryField(max_length=1023, null=True, blank=True)
    credential_hash = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    public_key = models.BinaryField(null=True, blank=True)
    sign_count = models.BigIntegerField(default=0)
    aaguid = models.CharField(max_length=36, blank=True)
    transports = models.JSONField(default=list, blank=True)
    rp_id = models.CharField(max_length=253, blank=True)
    discoverable = models.BooleanField(default=False)
    backup_eligible = models.BooleanField(null=True, blank=True)
    backup_state = models.BooleanField(null=True, blank=True)
    uv_seen = models.BooleanField(default=False)
    clone_suspected_at = models.DateTimeField(null=True, blank=True)
    legacy_handle = models.TextField(blank=True, editable=False)  # hex user handle of a key from 0.9.x

    # Throttling (multifactor.throttle): consecutive failures, the delay they earned, and a lockout.
    failures = models.PositiveIntegerField(default=0, editable=False)
    throttled_until = models.DateTimeField(null=True, blank=True, editable=False)
    locked_at = models.DateTimeField(null=True, blank=True)

    # Revocation (multifactor.revocation): when the key was last disabled. A verification made before it is
    # void even if the key is enabled again, since signed_cookies sessions cannot be edited from the server.
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = KeyQuerySet.as_manager()

    class Meta:
        verbose_name = _("multifactor key")
        verbose_name_plural = _("multifactor keys")
        ordering = ("created_at", "pk")
        indexes = [
            models.Index(
                fields=["user", "enabled", "confirmed"],
                name="multifactor_key_user_active",
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(type__in=[t.value for t in KeyType]),
                name="multifactor_key_type_valid",
            ),
        ]

    def __str__(self):
        label = self.get_type_display()
        return f"{self.name} ({label})" if self.name else str(label)

    def save(self, *args, **kwargs):
        # A name comes from users (pages, API, enrolment): PostgreSQL refuses NUL in text, so drop it here,
        # once for every path, rather than answer a 500.
        if "\x00" in self.name:
            self.name = self.name.replace("\x00", "")
        super().save(*args, **kwargs)

    @classmethod
    def from_db(cls, db, field_names, values, **kwargs):  # Django 6.1 passes fetch_mode
        # Remember whether the row could verify when loaded, so a save that makes it unusable (or a save of a
        # pending enrolment, which revokes nothing) is told apart by multifactor.revocation.
        instance = super().from_db(db, field_names, values, **kwargs)
        instance._loaded_usable = instance.__dict__.get("enabled") and instance.__dict__.get("confirmed")  # type: ignore[attr-defined]
        return instance

    def display_name(self):
        return str(self)

    @property
    def is_usable(self):
        return self.enabled and self.confirmed


class DisabledFallback(models.Model):
    """A fallback transport a user switched off for themselves (table kept from django-multifactor 0.9)."""

    id = models.AutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    fallback = models.CharField(max_length=50)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "fallback"], name="multifactor_disabledfallback_unique")]

    def __str__(self):
        return f"{self.fallback} off for user {self.user_id}"


class Revision(models.Model):
    """A user's revocation counter: raised, in the same transaction, by every change that can end one of the
    user's verifications (a key disabled, deleted, locked or replaced; an admin reset).

    Sessions record the value they were last checked at; a protected request that sees another value checks
    its verifications against the keys once (see :mod:`multifactor.revocation`). ``reset_at`` voids every
    verification made before it (an admin reset).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, primary_key=True, related_name="multifactor_revision"
    )
    value = models.BigIntegerField(default=0)
    reset_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"revision {self.value} of user {self.user_id}"


class RecoveryCode(models.Model):
    """One recovery code of a RECOVERY key: a public lookup id and the salted PBKDF2 of the secret part."""

    key = models.ForeignKey(Key, models.CASCADE, related_name="recovery_codes")
    lookup = models.CharField(max_length=8)
    salt = models.CharField(max_length=64)
    digest = models.CharField(max_length=128)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["key", "lookup"], name="multifactor_rc_key_lookup")]

    def __str__(self):
        return f"recovery code {self.lookup}… of key {self.key_id}"


class FallbackCode(models.Model):
    """A user's current fallback code (keyed hash only), its session binding, and the failures counted on it.

    One row per user, updated by each send, so a resend replaces the code but keeps the failure count.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    digest = models.CharField(max_length=128, blank=True)
    salt = models.CharField(max_length=32, blank=True)
    nonce = models.CharField(max_length=64, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)
    throttled_until = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"fallback code of user {self.user_id}"


class Event(models.Model):
    """One entry of the audit trail (see multifactor.audit)."""

    class Kind(models.TextChoices):
        KEY_ADDED = "key_added", _("Key added")
        KEY_REMOVED = "key_removed", _("Key removed")
        KEY_TOGGLED = "key_toggled", _("Key enabled or disabled")
        KEY_USED = "key_used", _("Verified")
        VERIFICATION_FAILED = "verification_failed", _("Verification failed")
        VERIFICATION_THROTTLED = "verification_throttled", _("Verification refused: too many wrong answers")
        KEY_LOCKED = "key_locked", _("Key locked")
        RECOVERY_CODE_USED = "recovery_code_used", _("Recovery code used")
        CODES_REGENERATED = "codes_regenerated", _("Recovery codes regenerated")
        FALLBACK_SENT = "fallback_sent", _("Fallback code sent")
        MFA_RESET = "mfa_reset", _("MFA reset by an administrator")
        BROWSER_TRUSTED = "browser_trusted", _("Browser trusted")
        TRUST_REVOKED = "trust_revoked", _("Browser trust revoked")
        SESSION_SIGNED_OUT = "session_signed_out", _("Session signed out")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    username = models.CharField(max_length=150, blank=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    key_id = models.BigIntegerField(null=True, blank=True)
    key_type = models.CharField(max_length=16, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_at", "-pk")
        indexes = [models.Index(fields=["user", "-created_at"], name="multifactor_event_user")]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.username}, {self.created_at:%Y-%m-%d %H:%M})"


class WebAuthnUser(models.Model):
    """A user's WebAuthn user handle: 64 random bytes, never the username (WebAuthn L3 14.6.1)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    handle = models.CharField(max_length=128, unique=True)  # hex: a BLOB cannot be UNIQUE on every database

    def __str__(self):
        return f"WebAuthn handle of user {self.user_id}"


class WebAuthnChallenge(models.Model):
    """A WebAuthn challenge that has been answered. Parallel requests sharing one session all read the same
    challenge state before any of them writes the session back; the unique digest lets only one of them use
    it. Rows are pruned once older than a challenge may live (see multifactor.factors.fido2.ceremonies)."""

    digest = models.CharField(max_length=64, unique=True)  # sha256 of the challenge
    used_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self):
        return f"WebAuthn challenge {self.digest[:8]}… used {self.used_at:%Y-%m-%d %H:%M:%S}"
