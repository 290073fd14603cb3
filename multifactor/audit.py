"""The audit trail: every multifactor signal becomes an Event row, and some a notice mailed to the user.

Receivers are connected in ``MultifactorConfig.ready``. The client address is REMOTE_ADDR unless
``TRUSTED_PROXIES`` says how many reverse proxies append to X-Forwarded-For (SECURITY.md R15).
"""

import ipaddress
import logging

from django.core.mail import send_mail
from django.template.loader import render_to_string

from . import conf, signals

logger = logging.getLogger("multifactor")

# signal -> event kind
KINDS = {
    signals.key_added: "key_added",
    signals.key_removed: "key_removed",
    signals.key_used: "key_used",
    signals.verification_failed: "verification_failed",
    signals.key_locked: "key_locked",
    signals.recovery_code_used: "recovery_code_used",
    signals.codes_regenerated: "codes_regenerated",
    signals.fallback_sent: "fallback_sent",
}
NOTIFY = {"key_added", "key_removed", "recovery_code_used", "key_locked"}


def _ip(value) -> str | None:
    """The address in canonical form, or None if it is not one (the column is an inet on PostgreSQL, where a
    stray value would fail the insert and with it the request)."""
    try:
        return str(ipaddress.ip_address(str(value).strip().split("%", 1)[0]))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """REMOTE_ADDR; with ``TRUSTED_PROXIES`` = n, the n-th entry from the end of X-Forwarded-For (the address
    the outermost trusted proxy saw). None when that is not an IP address."""
    if request is None:
        return None
    proxies = conf.get().TRUSTED_PROXIES
    if proxies:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
        if len(forwarded) >= proxies:
            return _ip(forwarded[-proxies])
    return _ip(request.META.get("REMOTE_ADDR", ""))


def record(kind, user, request=None, key=None, **detail):
    from .models import Event

    detail = {k: v for k, v in detail.items() if isinstance(v, (str, int, float, bool, list, type(None)))}
    return Event.objects.create(
        user=user if getattr(user, "pk", None) else None,
        username=user.get_username() if user is not None else "",
        kind=kind,
        key_id=getattr(key, "pk", None) or detail.pop("key_pk", None),
        key_type=getattr(key, "type", "") or detail.get("type") or "",
        ip=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "") if request is not None else "").replace("\x00", "")[:300],
        detail=detail,
    )


def _receiver(kind):
    def receive(sender, user=None, request=None, key=None, **kwargs):
        kwargs.pop("signal", None)
        record(kind, user, request, key, **kwargs)
        if kind in NOTIFY:
            notify(user, kind, key)

    return receive


def notify(user, kind, key=None):
    """Mail the user about a change to their MFA (NIST SP 800-63B-4 4.6), unless ``NOTIFY_USER`` is off;
    failures are logged, not raised."""
    if not conf.get().NOTIFY_USER or not getattr(user, "email", None):
        return
    context = {"user": user, "kind": kind, "key": key}
    try:
        subject = " ".join(render_to_string("multifactor/notify/subject.txt", context).split())
        send_mail(subject, render_to_string("multifactor/notify/body.txt", context), None, [user.email])
    except Exception:
        logger.exception("Could not send the multifactor notice %s to user %s", kind, user.pk)


_receivers: list = []


def connect():
    for signal, kind in [*KINDS.items(), (signals.key_toggled, "key_toggled")]:
        receiver = _receiver(kind)
        _receivers.append(receiver)  # signals hold weak references
        signal.connect(receiver, dispatch_uid=f"multifactor.audit.{kind}")
