"""What the keys page shows of trusted browsers and signed-in sessions (below the views, which include it)."""

from .. import revocation, session
from ..models import SignedInSession
from . import agents, browsers, sessions


def home_context(request) -> dict:
    """What the keys page shows of trusted browsers and sessions, and whether to offer signing out the others
    (after an admin reset that sessions from before it outlived)."""
    trusted = browsers.listing(request)
    signed_in = sessions.listing(request)
    for row in [*trusted, *signed_in]:
        row.browser = agents.describe(row.user_agent)  # type: ignore[attr-defined]  # for display only
    _value, reset_at = revocation.current(request.user)
    sid = session.load(request.session).sid
    offer = (
        request.GET.get("offer") == "sign-out"
        or bool(reset_at)
        and SignedInSession.objects.filter(user=request.user, ended_at__isnull=True, created_at__lt=reset_at)
        .exclude(pk=sid)  # type: ignore[misc]  # None excludes nothing
        .exists()
    )
    return {
        "trust_days": browsers.days(),
        "trusted_browsers": trusted,
        "signed_in_sessions": signed_in,
        "offer_sign_out": offer,
    }


def offer_sign_out(request) -> None:
    """After a key is removed: offer to sign out the user's other sessions, if there are any (a message
    linking to the keys page's button: the removed key may be what someone else signed in with)."""
    from django.contrib import messages
    from django.urls import reverse
    from django.utils.html import format_html
    from django.utils.translation import gettext as _

    sid = session.load(request.session).sid
    if SignedInSession.objects.filter(user=request.user, ended_at__isnull=True).exclude(pk=sid).exists():  # type: ignore[misc]
        url = reverse("multifactor:home") + "?offer=sign-out#mf-sign-out-offer"
        messages.info(request, format_html('<a href="{}">{}</a>', url, _("Sign out everywhere else?")))
