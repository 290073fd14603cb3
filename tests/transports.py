"""Real fallback transports for the tests (``MULTIFACTOR["FALLBACKS"]`` points at them by dotted path).

``record`` and ``record_other`` keep every message they are given in ``SENT`` (thread-safe, for the
PostgreSQL race tests); ``explode`` raises, as a broken SMS gateway would; ``refuse`` reports "not sent".
"""

import re
import threading

SENT: list[tuple[str, str, str]] = []  # (transport, username, message)
_lock = threading.Lock()


def _keep(transport, user, message):
    with _lock:
        SENT.append((transport, user.get_username(), message))


def record(user, message):
    _keep("record", user, message)
    return True


def record_other(user, message):
    _keep("record_other", user, message)
    return True


def explode(user, message):
    raise RuntimeError("the gateway is down")


def refuse(user, message):
    return False


def phone(user):
    """A destination: every test user has a phone number."""
    return "+41 79 555 01 23"


def no_destination(user):
    return ""


def clear():
    with _lock:
        SENT.clear()


def sent(transport=None) -> list[tuple[str, str, str]]:
    with _lock:
        return [item for item in SENT if transport is None or item[0] == transport]


def code_in(message: str, digits: int = 8) -> str:
    """The code in a fallback message (the only run of exactly ``digits`` digits)."""
    found = re.findall(rf"(?<!\d)\d{{{digits}}}(?!\d)", message)
    assert len(found) == 1, message
    return found[0]
