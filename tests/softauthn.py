"""A software WebAuthn authenticator plus browser, for tests without a browser.

It takes the ``{"publicKey": {...}}`` options the server sends (fido2 2.x JSON, unpadded base64url) and
answers with exactly what a browser's ``PublicKeyCredential.toJSON()`` gives: an ECDSA P-256 (ES256)
credential, ``fmt: "none"`` attestation, CBOR through ``fido2.cbor``, signatures through ``cryptography``.

Every field a relying party must check can be bent per call (see the keyword arguments of
:meth:`SoftAuthenticator.create` and :meth:`SoftAuthenticator.get`), so each negative case is one call::

    auth = SoftAuthenticator()
    credential = auth.create(options)                    # registration response (toJSON)
    assertion = auth.get(options, origin="https://evil.example")
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fido2 import cbor

UP, UV, BE, BS, AT, ED = 0x01, 0x04, 0x08, 0x10, 0x40, 0x80
ES256 = -7


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _public_key_options(options: dict) -> dict:
    return options["publicKey"] if "publicKey" in options else options


class _Default:
    """Marks a keyword argument left out (None is a meaningful value for some of them)."""


DEFAULT = _Default()


class SoftAuthenticator:
    """One authenticator holding one credential (made by :meth:`create`).

    ``rp_id`` and ``origin`` are what an honest browser on that origin would use. ``sign_count`` is the
    counter the next assertion reports after adding ``counter_step`` (0: an authenticator without a counter,
    as synced passkeys are). ``uv``, ``be``, ``bs`` are the flags it sets by default; ``resident``: whether
    it keeps the user handle (a discoverable credential, sent back as ``userHandle`` in assertions).
    """

    def __init__(
        self,
        rp_id: str = "localhost",
        origin: str = "http://localhost",
        *,
        uv: bool = True,
        be: bool = False,
        bs: bool = False,
        resident: bool = False,
        sign_count: int = 0,
        counter_step: int = 1,
        credential_id: bytes | None = None,
        credential_id_length: int = 32,
        aaguid: bytes = bytes(16),
        transports: tuple[str, ...] = ("usb",),
        attachment: str = "cross-platform",
    ):
        self.rp_id, self.origin = rp_id, origin
        self.uv, self.be, self.bs, self.resident = uv, be, bs, resident
        self.sign_count, self.counter_step = sign_count, counter_step
        self.credential_id = credential_id if credential_id is not None else os.urandom(credential_id_length)
        self.aaguid = aaguid
        self.transports = list(transports)
        self.attachment = attachment
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.user_handle: bytes | None = None

    # -- the pieces ---------------------------------------------------------------------------------------

    def cose_key(self) -> bytes:
        numbers = self.private_key.public_key().public_numbers()
        return cbor.encode(
            {1: 2, 3: ES256, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        )

    def spki(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @staticmethod
    def client_data(
        type_: str, challenge: str, origin: str, cross_origin=False, *, top_origin=None, extra=None
    ) -> bytes:
        data = {"type": type_, "challenge": challenge, "origin": origin, "crossOrigin": cross_origin}
        if top_origin is not None:
            data["topOrigin"] = top_origin
        data.update(extra or {})
        return json.dumps(data, separators=(",", ":")).encode()

    @staticmethod
    def flags(up=True, uv=False, be=False, bs=False, at=False) -> int:
        return (UP if up else 0) | (UV if uv else 0) | (BE if be else 0) | (BS if bs else 0) | (AT if at else 0)

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))

    # -- registration -------------------------------------------------------------------------------------

    def create(
        self,
        options: dict,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        up: bool = True,
        uv: bool | None = None,
        be: bool | None = None,
        bs: bool | None = None,
        sign_count: int | None = None,
        cross_origin=False,
        challenge: str | None = None,
        type_: str = "webauthn.create",
        credential_id: bytes | None = None,
        cred_props: bool | None = None,
    ) -> dict:
        """A registration response for ``options`` (``{"publicKey": ...}`` of ``register_begin``).

        Every keyword overrides what an honest authenticator and browser would send; ``rp_id`` only
        changes the RP ID hash in the authenticator data (the lie of a phishing proxy's authenticator).
        """
        pk = _public_key_options(options)
        rp_id = rp_id if rp_id is not None else self.rp_id
        if self.resident or (pk.get("authenticatorSelection") or {}).get("residentKey") == "required":
            self.resident = True
        self.user_handle = b64u_decode(pk["user"]["id"])
        if credential_id is not None:
            self.credential_id = credential_id
        count = self.sign_count if sign_count is None else sign_count
        flags = self.flags(
            up, self.uv if uv is None else uv, self.be if be is None else be, self.bs if bs is None else bs, at=True
        )
        attested = self.aaguid + struct.pack(">H", len(self.credential_id)) + self.credential_id + self.cose_key()
        auth_data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", count) + attested
        client_data = self.client_data(
            type_,
            challenge if challenge is not None else pk["challenge"],
            self.origin if origin is None else origin,
            cross_origin,
        )
        attestation = cbor.encode({"fmt": "none", "attStmt": {}, "authData": auth_data})
        extensions = {}
        if cred_props is not None or self.resident:
            extensions["credProps"] = {"rk": self.resident if cred_props is None else cred_props}
        return {
            "id": b64u(self.credential_id),
            "rawId": b64u(self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": self.attachment,
            "response": {
                "clientDataJSON": b64u(client_data),
                "attestationObject": b64u(attestation),
                "authenticatorData": b64u(auth_data),
                "transports": list(self.transports),
                "publicKeyAlgorithm": ES256,
                "publicKey": b64u(self.spki()),
            },
            "clientExtensionResults": extensions,
        }

    # -- assertion ----------------------------------------------------------------------------------------

    def get(
        self,
        options: dict,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        up: bool = True,
        uv: bool | None = None,
        be: bool | None = None,
        bs: bool | None = None,
        sign_count: int | None = None,
        cross_origin=False,
        challenge: str | None = None,
        type_: str = "webauthn.get",
        bad_signature: bool = False,
        user_handle=DEFAULT,
        credential_id: bytes | None = None,
    ) -> dict:
        """An assertion (``toJSON()`` of the credential ``navigator.credentials.get`` resolves to).

        The counter advances by ``counter_step`` unless ``sign_count`` is given. ``user_handle``: bytes,
        or None to leave it out; by default the stored handle of a discoverable credential (else None).
        ``credential_id`` claims another credential's id (signed with this authenticator's key).
        ``bad_signature`` signs something else, so the signature is well-formed DER but wrong.
        """
        pk = _public_key_options(options)
        rp_id = rp_id if rp_id is not None else self.rp_id
        if sign_count is None:
            self.sign_count += self.counter_step
            count = self.sign_count
        else:
            count = sign_count
        flags = self.flags(
            up, self.uv if uv is None else uv, self.be if be is None else be, self.bs if bs is None else bs
        )
        auth_data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", count)
        client_data = self.client_data(
            type_,
            challenge if challenge is not None else pk["challenge"],
            self.origin if origin is None else origin,
            cross_origin,
        )
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.sign(b"not what was asked" + signed if bad_signature else signed)
        if user_handle is DEFAULT:
            user_handle = self.user_handle if self.resident else None
        cid = credential_id if credential_id is not None else self.credential_id
        response = {
            "clientDataJSON": b64u(client_data),
            "authenticatorData": b64u(auth_data),
            "signature": b64u(signature),
        }
        if user_handle is not None:
            response["userHandle"] = b64u(user_handle)
        return {
            "id": b64u(cid),
            "rawId": b64u(cid),
            "type": "public-key",
            "authenticatorAttachment": self.attachment,
            "response": response,
            "clientExtensionResults": {},
        }
