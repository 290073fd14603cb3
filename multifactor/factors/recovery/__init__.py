"""Recovery codes: single-use look-up secrets for when every device is away (NIST SP 800-63B-4 3.1.2).

A code is 16 characters from an alphabet without look-alikes, shown as ``XXXX-XXXX-XXXX-XXXX``. The first
three characters only pick the stored row (a public lookup id, so a check costs one hash, not one per code);
the other thirteen (65 bits from ``secrets``) are the secret, stored as salted PBKDF2-SHA256: codes under
112 bits must be resistant to offline attack. Each code works once, claimed by a conditional UPDATE on the
locked key row, so two parallel uses of one code give one success. A new set replaces the old one.
"""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ... import conf, crypto, errors, flows, signals, throttle
from ...models import Key, KeyType, RecoveryCode
from ..base import Factor, register

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 symbols: no 0/O, 1/I
ID_LENGTH, SECRET_LENGTH = 3, 13
ITERATIONS = 120_000


class RecoveryFactor(Factor):
    type = KeyType.RECOVERY.value
    label = gettext_lazy("Recovery code")
    description = gettext_lazy("One of the single-use codes you saved when you set up your keys.")
    auth_url_name = "multifactor:recovery_auth"
    start_url_name = "multifactor:recovery_start"
    order = 30

    def usable_by(self, user) -> bool:
        return RecoveryCode.objects.filter(
            key__user=user, key__enabled=True, key__confirmed=True, used_at__isnull=True
        ).exists()


FACTOR = register(RecoveryFactor())


def _digest(secret: str, salt: bytes) -> str:
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, ITERATIONS).hex()


def normalise(code) -> str | None:
    """Upper-case, separators and spaces dropped; None unless 16 characters of the alphabet."""
    if not isinstance(code, str):
        return None
    code = "".join(ch for ch in code.upper() if ch.isalnum())
    return code if len(code) == ID_LENGTH + SECRET_LENGTH and all(ch in ALPHABET for ch in code) else None


def display(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def remaining(user) -> tuple[int, int]:
    """(unused codes, codes in the set) of the user's current set."""
    codes = RecoveryCode.objects.filter(key__user=user, key__type=FACTOR.type, key__confirmed=True)
    return codes.filter(used_at__isnull=True).count(), codes.count()


def _require_allowed():
    if not FACTOR.allowed():
        raise errors.factor_not_allowed()


def regenerate(request) -> list[str]:
    """Make a new set (replacing the old one) and return its codes: the only time they exist in clear."""
    _require_allowed()
    flows.require_manage(request)
    if not Key.objects.active().filter(user=request.user).exclude(type=FACTOR.type).exists():
        raise errors.FlowError("needs_key", _("Add a security key or an authenticator app first."), 409)
    codes: list[str] = []
    ids: set[str] = set()
    while len(codes) < conf.get().RECOVERY_CODES:
        code = "".join(secrets.choice(ALPHABET) for _ in range(ID_LENGTH + SECRET_LENGTH))
        if code[:ID_LENGTH] not in ids:
            ids.add(code[:ID_LENGTH])
            codes.append(code)
    with transaction.atomic():
        # Lock the user's row first: with no set yet there is no key row to lock, and two parallel requests
        # would each create a RECOVERY key (two sets, counted as two factors).
        list(get_user_model().objects.select_for_update().filter(pk=request.user.pk).values_list("pk"))
        key = Key.objects.select_for_update().filter(user=request.user, type=FACTOR.type).first()
        created = key is None
        if key is None:
            key = Key.objects.create(user=request.user, type=FACTOR.type, name=str(FACTOR.label))
        else:
            key.recovery_codes.all().delete()
            # revoked_at: verifications made with the old set end, in every session (multifactor.revocation).
            Key.objects.filter(pk=key.pk).update(
                enabled=True, failures=0, throttled_until=None, locked_at=None, revoked_at=timezone.now()
            )
        rows = []
        for code in codes:
            salt = secrets.token_bytes(16)
            rows.append(
                RecoveryCode(key=key, lookup=code[:ID_LENGTH], salt=salt.hex(), digest=_digest(code[ID_LENGTH:], salt))
            )
        RecoveryCode.objects.bulk_create(rows)
    if created:
        signals.key_added.send(Key, key=key, user=request.user, request=request)
    signals.codes_regenerated.send(Key, key=key, user=request.user, request=request, count=len(codes))
    return [display(c) for c in codes]


def authenticate(request, code) -> Key:
    """Verify the user with one unused recovery code (used up on success)."""
    # Confirmed, enabled or not: a locked or disabled set is refused by throttle.attempt with its reason
    # ("key_locked": make a new set with another key), not as "no recovery codes".
    key = Key.objects.filter(user=request.user, type=FACTOR.type, confirmed=True).first()
    if key is None:
        raise errors.FlowError("no_key", _("You have no recovery codes."), 400)
    normalised = normalise(code)
    if normalised is None:
        raise errors.FlowError("invalid_code", _("Enter a recovery code like ABCD-EFGH-JKLM-NPQR."), 400, param="code")
    used = []

    def check(locked_key):
        for row in RecoveryCode.objects.filter(key=locked_key, lookup=normalised[:ID_LENGTH], used_at__isnull=True):
            if crypto.constant_time_equals(row.digest, _digest(normalised[ID_LENGTH:], bytes.fromhex(row.salt))):
                claimed = RecoveryCode.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=timezone.now())
                if claimed:
                    used.append(row)
                    return True
        return False

    outcome = throttle.attempt(key.pk, check, request)
    if not outcome.ok:
        raise flows.throttled_error(outcome)
    flows.record_verification(request, outcome.key, FACTOR.type)
    left, _total = remaining(request.user)
    signals.recovery_code_used.send(Key, key=outcome.key, user=request.user, request=request, remaining=left)
    return outcome.key
