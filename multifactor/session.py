"""The MFA state kept in a user's session, as named structures.

Stored under one session key as plain JSON (safe for the signed_cookies engine, which clients can read):
key ids, factor types and timestamps, never a secret. Reading it never writes the session; every change goes
through :func:`save`, so a protected request whose state did not change leaves the session untouched.
"""

from __future__ import annotations

import dataclasses
import random
import time

from . import conf

SESSION_KEY = "multifactor"


@dataclasses.dataclass(frozen=True)
class Verification:
    """One verified factor: which key (None for a fallback code), its type, when, and until when."""

    key_id: int | None
    type: str
    verified_at: float
    expires_at: float | None  # None: no RECHECK expiry
    uv: bool = False  # WebAuthn user verification seen (a passkey with UV is multi-factor on its own)
    trust_id: int | None = None  # made from a trusted browser (multifactor.trust): one factor, never more

    @property
    def trusted(self) -> bool:
        """From a trusted browser, not from a factor verified in this session."""
        return self.trust_id is not None

    def active(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now

    def to_json(self) -> dict:
        data = {
            "k": self.key_id,
            "t": self.type,
            "at": self.verified_at,
            "exp": self.expires_at,
            "uv": self.uv,
        }
        if self.trust_id is not None:
            data["tr"] = self.trust_id  # only when set: sessions stored before it read back unchanged
        return data

    @classmethod
    def from_json(cls, data) -> Verification | None:
        try:
            return cls(
                data["k"],
                str(data["t"]),
                float(data["at"]),
                data["exp"],
                bool(data.get("uv", False)),
                _int_or_none(data.get("tr")),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclasses.dataclass
class MfaState:
    """Everything multifactor keeps in a session.

    ``verifications``: the verified factors. ``next_url``: where to return after a challenge.
    ``advertised``: the optional-MFA notice was shown. ``revision``: the user's revocation counter at which
    the verifications were last checked against the keys (see :mod:`multifactor.revocation`). ``pending``:
    id of a key whose enrolment is under way (the secret itself stays in the database). ``sid``: this
    sign-in's :class:`~multifactor.models.SignedInSession` row (see :mod:`multifactor.trust.sessions`).
    ``ended`` (never stored): a check found the session signed out; the caller logs it out.
    """

    verifications: list[Verification] = dataclasses.field(default_factory=list)
    next_url: str | None = None
    advertised: bool = False
    revision: int | None = None
    pending: dict = dataclasses.field(default_factory=dict)
    sid: int | None = None
    ended: bool = dataclasses.field(default=False, compare=False)

    def active(self, now: float | None = None) -> list[Verification]:
        now = time.time() if now is None else now
        return [v for v in self.verifications if v.active(now)]

    def to_json(self) -> dict:
        data: dict = {"v": [v.to_json() for v in self.verifications]}
        if self.next_url:
            data["n"] = self.next_url
        if self.advertised:
            data["a"] = True
        if self.revision is not None:
            data["r"] = self.revision
        if self.pending:
            data["p"] = dict(self.pending)  # a copy: the session must not share our dict
        if self.sid is not None:
            data["s"] = self.sid
        return data

    @classmethod
    def from_json(cls, data) -> MfaState:
        if not isinstance(data, dict):
            return cls()
        verifications = [v for v in map(Verification.from_json, data.get("v") or []) if v is not None]
        pending = data.get("p")
        return cls(
            verifications=verifications,
            next_url=data.get("n") if isinstance(data.get("n"), str) else None,
            advertised=bool(data.get("a")),
            revision=_int_or_none(data.get("r")),
            pending=dict(pending) if isinstance(pending, dict) else {},
            sid=_int_or_none(data.get("s")),
        )


def _int_or_none(value) -> int | None:
    # A string token of the earlier design (or anything else) reads as None: checked against the keys once.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def load(session) -> MfaState:
    return MfaState.from_json(session.get(SESSION_KEY))


def save(session, state: MfaState) -> None:
    """Store the state; an unchanged state leaves the session unmodified (so it is not written back)."""
    data = state.to_json()
    if session.get(SESSION_KEY) != data:
        session[SESSION_KEY] = data


def draw_expiry(now: float) -> float | None:
    """A RECHECK expiry drawn uniformly in [RECHECK_MIN, RECHECK_MAX] seconds from now, per verification."""
    settings = conf.get()
    if not settings.RECHECK:
        return None
    return now + random.uniform(settings.RECHECK_MIN, settings.RECHECK_MAX)


def clear(session) -> None:
    session.pop(SESSION_KEY, None)
