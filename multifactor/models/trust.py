"""Trusted browsers and signed-in sessions: the server's record of both (see :mod:`multifactor.trust`).

A trusted browser is known only by the sha256 of the random token in its cookie, so a database dump cannot
be turned back into a cookie. A signed-in session row stores no session key either: signing a session out
marks the row and raises the user's revision, which refuses the session on its next request whatever the
engine (signed_cookies included).
"""

import datetime

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from .keys import Key


def password_mac(user) -> str:
    """An HMAC of the user's session auth hash (itself derived from the password hash): a trust made before a
    password change no longer matches it. Keyed with SECRET_KEY, so the stored value reveals nothing."""
    return salted_hmac("multifactor.trust", user.get_session_auth_hash(), algorithm="sha256").hexdigest()


class TrustedBrowserQuerySet(models.QuerySet):
    def usable(self, days: int, now=None):
        """Rows that may still count as a verification: not expired, made within ``days`` (TRUST_DAYS may have
        been lowered since), after their key's latest revocation and the user's latest admin reset, with the
        key enabled, confirmed and not locked. The password binding is checked by the caller (an HMAC)."""
        now = now or timezone.now()
        revision = "user__multifactor_revision__reset_at"
        return self.filter(
            Q(key__revoked_at__isnull=True) | Q(created_at__gt=F("key__revoked_at")),
            Q(**{f"{revision}__isnull": True}) | Q(created_at__gt=F(revision)),
            expires_at__gt=now,
            created_at__gt=now - datetime.timedelta(days=days),
            key__enabled=True,
            key__confirmed=True,
            key__locked_at__isnull=True,
        )


class TrustedBrowser(models.Model):
    """A browser whose holder verified ``key`` and asked to be trusted until ``expires_at``."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="multifactor_trusted_browsers")
    key = models.ForeignKey(Key, models.CASCADE, related_name="+")  # deleting the key deletes the trust
    token_hash = models.CharField(max_length=64, unique=True, editable=False)  # sha256 hex of the cookie's token
    password_mac = models.CharField(max_length=64, editable=False)  # HMAC of the user's session auth hash
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("trusted since"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    objects = TrustedBrowserQuerySet.as_manager()

    class Meta:
        verbose_name = _("trusted browser")
        verbose_name_plural = _("trusted browsers")
        ordering = ("-created_at", "-pk")
        indexes = [models.Index(fields=["user", "expires_at"], name="multifactor_trust_user")]

    def __str__(self):
        return f"trusted browser {self.pk} of user {self.user_id}"


class SignedInSession(models.Model):
    """One sign-in of a user: shown in their list of sessions; ``ended_at`` set once it is signed out."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="multifactor_sessions")
    created_at = models.DateTimeField(_("signed in"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen"), default=timezone.now)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)
    ended_at = models.DateTimeField(_("signed out"), null=True, blank=True)

    class Meta:
        verbose_name = _("signed-in session")
        verbose_name_plural = _("signed-in sessions")
        ordering = ("-last_seen_at", "-pk")
        indexes = [models.Index(fields=["user", "ended_at"], name="multifactor_session_user")]

    def __str__(self):
        return f"session {self.pk} of user {self.user_id}"
