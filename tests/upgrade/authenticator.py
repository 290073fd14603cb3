"""The least WebAuthn authenticator the upgrade test needs: one ES256 (P-256) credential that registers with
``fmt: "none"`` and signs assertions, answering in the browser's ``PublicKeyCredential.toJSON()`` form.

Imported both by the django-multifactor 0.9.5 virtualenv (to register a key through 0.9.5's endpoint) and by
this library's side (to verify with it after the upgrade), so it needs only ``cryptography`` and ``fido2.cbor``,
which both have. ``export()``/``load()`` carry the key pair from one process to the other.
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

UP, UV, AT = 0x01, 0x04, 0x40


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Authenticator:
    def __init__(self, *, resident=False, origin="https://localhost", private_key=None, credential_id=None):
        self.resident = resident  # keeps the user handle and returns it in assertions (a discoverable credential)
        self.origin = origin
        self.private_key = private_key or ec.generate_private_key(ec.SECP256R1())
        self.credential_id = credential_id or os.urandom(32)
        self.user_handle: bytes | None = None
        self.counter = 0

    # -- carrying the credential between processes ---------------------------------------------------------

    def export(self) -> dict:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return {
            "pem": pem.decode(),
            "credential_id": b64u(self.credential_id),
            "user_handle": b64u(self.user_handle) if self.user_handle is not None else None,
            "resident": self.resident,
            "counter": self.counter,
            "origin": self.origin,
        }

    @classmethod
    def load(cls, data: dict) -> Authenticator:
        key = serialization.load_pem_private_key(data["pem"].encode(), password=None)
        auth = cls(
            resident=data["resident"],
            origin=data["origin"],
            private_key=key,
            credential_id=b64u_decode(data["credential_id"]),
        )
        auth.user_handle = b64u_decode(data["user_handle"]) if data["user_handle"] else None
        auth.counter = data["counter"]
        return auth

    # -- the pieces ----------------------------------------------------------------------------------------

    def cose_key(self) -> bytes:
        numbers = self.private_key.public_key().public_numbers()
        return cbor.encode({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def attested_credential_data(self) -> bytes:
        return bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + self.cose_key()

    def _client_data(self, kind, challenge) -> bytes:
        data = {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        return json.dumps(data, separators=(",", ":")).encode()

    @staticmethod
    def _options(options: dict) -> dict:
        return options.get("publicKey", options)

    # -- ceremonies ----------------------------------------------------------------------------------------

    def create(self, options: dict) -> dict:
        pk = self._options(options)
        self.user_handle = b64u_decode(pk["user"]["id"])
        rp_hash = hashlib.sha256(pk["rp"]["id"].encode()).digest()
        auth_data = rp_hash + bytes([UP | UV | AT]) + struct.pack(">I", self.counter) + self.attested_credential_data()
        client_data = self._client_data("webauthn.create", pk["challenge"])
        return {
            "id": b64u(self.credential_id),
            "rawId": b64u(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64u(client_data),
                "attestationObject": b64u(cbor.encode({"fmt": "none", "attStmt": {}, "authData": auth_data})),
                "transports": ["usb"],
            },
            "clientExtensionResults": {"credProps": {"rk": self.resident}},
            "authenticatorAttachment": "cross-platform",
        }

    def get(self, options: dict) -> dict:
        pk = self._options(options)
        allowed = [b64u_decode(c["id"]) for c in pk.get("allowCredentials") or []]
        if allowed and self.credential_id not in allowed:
            raise LookupError("the server did not ask for this credential")
        self.counter += 1
        rp_hash = hashlib.sha256(pk["rpId"].encode()).digest()
        auth_data = rp_hash + bytes([UP | UV]) + struct.pack(">I", self.counter)
        client_data = self._client_data("webauthn.get", pk["challenge"])
        signature = self.private_key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        response = {
            "clientDataJSON": b64u(client_data),
            "authenticatorData": b64u(auth_data),
            "signature": b64u(signature),
        }
        if self.resident and self.user_handle is not None:
            response["userHandle"] = b64u(self.user_handle)
        return {
            "id": b64u(self.credential_id),
            "rawId": b64u(self.credential_id),
            "type": "public-key",
            "response": response,
            "clientExtensionResults": {},
            "authenticatorAttachment": "cross-platform",
        }
