"""The WebAuthn ceremonies: register a key, verify with one, and sign in with a passkey.

Each ``*_begin`` stores fido2's small state (the challenge, nothing secret) in the session; each
``*_complete`` removes it before verifying, so a challenge answers once. Credentials are the browser's
``PublicKeyCredential.toJSON()``.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import login
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from fido2 import cbor
from fido2.cose import CoseKey
from fido2.server import Fido2Server
from fido2.webauthn import (
    Aaguid,
    AttestedCredentialData,
    AuthenticationResponse,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialUserEntity,
    RegistrationResponse,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ... import conf, crypto, errors, flows, session, throttle
from ...models import Key, WebAuthnChallenge
from . import FACTOR, keys_of, origin_allowed, rp_id_for, user_for_handle, user_handle

STATE_TTL = 300  # seconds a ceremony may take (WebAuthn's recommended default timeout)
MAX_CREDENTIAL_ID = 1023
TRANSPORTS = [t.value for t in AuthenticatorTransport]  # fido2 turns any other value into None


def failed(message, code="webauthn_failed", status=400):
    return errors.FlowError(code, message, status, param="credential")


def _server(request) -> tuple[Fido2Server, str]:
    rp_id = rp_id_for(request.get_host())
    if rp_id is None:
        raise failed(_("Security keys cannot be used on this domain."), "rp_id_mismatch", 400)
    rp = PublicKeyCredentialRpEntity(id=rp_id, name=conf.get().FIDO_SERVER_NAME)
    return Fido2Server(rp, verify_origin=lambda origin: origin_allowed(origin, rp_id)), rp_id


def _store(request, kind, state, **extra):
    mfa = session.load(request.session)
    mfa.pending["fido2"] = {"kind": kind, "state": dict(state), "at": time.time(), **extra}
    session.save(request.session, mfa)


def _take(request, kind) -> dict:
    """Remove the ceremony state from the session (single use) and return it if it is fresh, of ``kind``, and
    its challenge was not used yet by a parallel request that read the same session."""
    mfa = session.load(request.session)
    stored = mfa.pending.pop("fido2", None)
    session.save(request.session, mfa)
    if not isinstance(stored, dict) or stored.get("kind") != kind or time.time() - stored.get("at", 0) > STATE_TTL:
        raise failed(_("This request expired. Start again."), "ceremony_expired", 409)
    if not _claim(stored.get("state")):
        raise failed(_("This request expired. Start again."), "ceremony_expired", 409)
    return stored


def _claim(state) -> bool:
    """Record the state's challenge as used, once across every request and process (a unique row)."""
    challenge = state.get("challenge") if isinstance(state, dict) else None
    if not isinstance(challenge, str):
        return False
    now = timezone.now()
    WebAuthnChallenge.objects.filter(used_at__lt=now - timedelta(seconds=STATE_TTL)).delete()
    try:
        with transaction.atomic():
            WebAuthnChallenge.objects.create(digest=crypto.sha256_hex(challenge.encode()), used_at=now)
    except IntegrityError:
        return False
    return True


def _descriptor(key: Key) -> PublicKeyCredentialDescriptor:
    return PublicKeyCredentialDescriptor(
        type="public-key",  # type: ignore[arg-type]  # fido2 takes the enum's value too
        id=bytes(key.credential_id),  # type: ignore[arg-type]  # a FIDO2 key has one
        transports=key.transports or None,
    )


def _credential_data(key: Key) -> AttestedCredentialData:
    return AttestedCredentialData.create(
        Aaguid.NONE,
        bytes(key.credential_id),  # type: ignore[arg-type]  # a FIDO2 key has one
        CoseKey.parse(cbor.decode(bytes(key.public_key))),  # type: ignore[arg-type]  # a COSE map
    )


def _parse(kind, credential):
    if not isinstance(credential, dict) or credential.get("type") != "public-key":
        raise failed(_("The key's answer is missing or malformed."), "invalid_credential")
    try:
        parsed = (RegistrationResponse if kind == "register" else AuthenticationResponse).from_dict(credential)
        parsed.response.client_data  # noqa: B018  (parses clientDataJSON)
    except Exception:  # fido2 raises many kinds on malformed input
        raise failed(_("The key's answer is missing or malformed."), "invalid_credential") from None
    if parsed.response.client_data.cross_origin:
        raise failed(_("Security keys cannot be used from inside another site."), "cross_origin")
    return parsed


def _require_allowed():
    if not FACTOR.allowed():
        raise errors.factor_not_allowed()


# -- registration ----------------------------------------------------------------------------------------


def register_begin(request, passkey=False) -> dict:
    _require_allowed()
    flows.require_manage(request)
    server, rp_id = _server(request)
    user = request.user
    entity = PublicKeyCredentialUserEntity(
        id=user_handle(user), name=user.get_username(), display_name=user.get_full_name() or user.get_username()
    )
    existing = Key.objects.filter(user=user, type=FACTOR.type, credential_id__isnull=False)
    options, state = server.register_begin(
        entity,
        credentials=[_descriptor(k) for k in existing],
        resident_key_requirement=ResidentKeyRequirement.REQUIRED if passkey else ResidentKeyRequirement.DISCOURAGED,
        user_verification=UserVerificationRequirement.REQUIRED if passkey else UserVerificationRequirement.PREFERRED,
    )
    _store(request, "register", state, passkey=bool(passkey), rp=rp_id)
    return dict(options)


def register_complete(request, credential, name="") -> Key:
    _require_allowed()
    flows.require_manage(request)
    stored = _take(request, "register")
    server, rp_id = _server(request)
    parsed = _parse("register", credential)  # malformed input and crossOrigin are refused before fido2 sees them
    if rp_id != stored.get("rp"):
        raise failed(_("This request expired. Start again."), "ceremony_expired", 409)
    try:
        auth_data = server.register_complete(stored["state"], credential)
    except ValueError as error:
        raise failed(_("The key's answer could not be verified (%(why)s).") % {"why": error}) from None
    data: AttestedCredentialData = auth_data.credential_data  # type: ignore[assignment]  # registration has it
    if bytes(parsed.raw_id) != data.credential_id:
        raise failed(_("The key's answer is missing or malformed."), "invalid_credential")
    if len(data.credential_id) > MAX_CREDENTIAL_ID:
        raise failed(_("This key's credential id is too long."))
    if auth_data.is_backed_up() and not auth_data.is_backup_eligible():
        raise failed(_("The key reported impossible backup flags."))
    transports = credential["response"].get("transports")
    extensions = credential.get("clientExtensionResults")
    props = extensions.get("credProps") if isinstance(extensions, dict) else None
    props = props if isinstance(props, dict) else {}
    key = Key(
        user=request.user,
        type=FACTOR.type,
        name=(name or "").strip()[:64] or str(_("Security key")),
        confirmed=False,
        credential_id=data.credential_id,
        credential_hash=crypto.sha256_hex(data.credential_id),
        public_key=cbor.encode(dict(data.public_key)),
        sign_count=auth_data.counter,
        aaguid=str(data.aaguid),
        transports=[t for t in TRANSPORTS if isinstance(transports, list) and t in transports],
        rp_id=rp_id,
        discoverable=bool(props.get("rk", stored.get("passkey"))),
        backup_eligible=auth_data.is_backup_eligible(),
        backup_state=auth_data.is_backed_up(),
        uv_seen=auth_data.is_user_verified(),
    )
    try:
        with transaction.atomic():
            key.save()
    except IntegrityError:
        raise failed(_("This key is already registered."), "duplicate_credential", 409) from None
    return flows.add_key(request, key)


# -- verification ----------------------------------------------------------------------------------------


def authenticate_begin(request) -> dict:
    server, rp_id = _server(request)
    keys = list(keys_of(request.user).filter(rp_id=rp_id))
    if not keys:
        raise errors.FlowError("no_key", _("You have no security key registered for this site."), 400)
    options, state = server.authenticate_begin([_descriptor(k) for k in keys], UserVerificationRequirement.PREFERRED)
    _store(request, "authenticate", state, rp=rp_id)
    return dict(options)


def _check_assertion(server, state, credential, parsed, key_holder):
    """The ``check`` for throttle.attempt: fido2's verification plus the counter and backup-flag rules."""

    def check(key: Key) -> bool:
        try:
            server.authenticate_complete(state, [_credential_data(key)], credential)
        except ValueError:
            return False
        auth_data = parsed.response.authenticator_data
        new, old = auth_data.counter, key.sign_count
        if (new or old) and new <= old:
            Key.objects.filter(pk=key.pk).update(clone_suspected_at=timezone.now())
            return False
        be, bs = auth_data.is_backup_eligible(), auth_data.is_backed_up()
        if (key.backup_eligible is not None and be != key.backup_eligible) or (bs and not be):
            return False
        uv = auth_data.is_user_verified()
        Key.objects.filter(pk=key.pk).update(sign_count=new, backup_state=bs, uv_seen=key.uv_seen or uv)
        key_holder["uv"] = uv
        return True

    return check


def _handle_fits(key: Key, handle: bytes, user) -> bool:
    """The returned user handle is the user's, or the username handle of a key migrated from 0.9.x."""
    if crypto.constant_time_equals(handle, user_handle(user)):
        return True
    return bool(key.legacy_handle) and crypto.constant_time_equals(handle.hex(), key.legacy_handle)


def _key_for(user, parsed, rp_id) -> Key | None:
    raw_id = bytes(parsed.raw_id)
    return keys_of(user).filter(credential_hash=crypto.sha256_hex(raw_id), rp_id=rp_id).first()


def authenticate_complete(request, credential) -> Key:
    stored = _take(request, "authenticate")
    server, rp_id = _server(request)
    parsed = _parse("authenticate", credential)
    key = _key_for(request.user, parsed, rp_id)
    if key is None or rp_id != stored.get("rp"):
        raise failed(_("This key is not registered with your account."), "unknown_credential")
    handle = parsed.response.user_handle
    if handle and not _handle_fits(key, bytes(handle), request.user):
        raise failed(_("This key belongs to another account."), "unknown_credential")
    holder: dict = {}
    outcome = throttle.attempt(key.pk, _check_assertion(server, stored["state"], credential, parsed, holder), request)
    if not outcome.ok:
        if outcome.reason == "invalid":
            raise failed(_("The key's answer could not be verified."), status=400)
        raise flows.throttled_error(outcome)
    flows.record_verification(request, outcome.key, FACTOR.type, uv=holder.get("uv", False))
    return outcome.key


# -- passkey sign-in -------------------------------------------------------------------------------------


def _require_passkeys():
    if not (conf.get().PASSKEY_LOGIN and FACTOR.allowed()):
        raise errors.FlowError("passkeys_disabled", _("Passkey sign-in is not enabled on this site."), 404)


def passkey_begin(request) -> dict:
    _require_passkeys()
    server, rp_id = _server(request)
    options, state = server.authenticate_begin(None, UserVerificationRequirement.REQUIRED)
    _store(request, "passkey", state, rp=rp_id)
    return dict(options)


def passkey_complete(request, credential):
    """Sign in the passkey's owner. Every failure gets the same answer (no account or key enumeration), and
    failures are not counted against the key: an anonymous caller must not be able to lock a user out."""
    _require_passkeys()
    refused = failed(_("Sign-in with this passkey failed."), "passkey_failed")
    stored = _take(request, "passkey")
    server, rp_id = _server(request)
    parsed = _parse("authenticate", credential)
    handle = parsed.response.user_handle
    user = user_for_handle(bytes(handle)) if handle else None
    if user is None and handle:  # a discoverable credential from 0.9.x returns the username as its handle
        legacy = Key.objects.filter(
            type=FACTOR.type, credential_hash=crypto.sha256_hex(bytes(parsed.raw_id)), legacy_handle=bytes(handle).hex()
        ).first()
        user = legacy.user if legacy else None
    key = _key_for(user, parsed, rp_id) if user is not None and user.is_active else None
    if key is None or rp_id != stored.get("rp") or key.throttled_until and key.throttled_until > timezone.now():
        raise refused
    holder: dict = {}
    check = _check_assertion(server, stored["state"], credential, parsed, holder)
    with transaction.atomic():  # the verdict is raised after the block, so a clone flag it set is kept
        locked = Key.objects.select_for_update().get(pk=key.pk)
        ok = locked.enabled and locked.confirmed and check(locked)
        if ok:
            Key.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    if not ok:
        raise refused
    login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
    if holder.get("uv"):
        flows.record_verification(request, key, FACTOR.type, uv=True)
    return user
