"""Fallback transports: ``fn(user, message) -> truthy when sent``, named by dotted path in ``FALLBACKS``."""

import logging
import sys
import warnings

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string, select_template

from . import conf

logger = logging.getLogger("multifactor")


def send_email(user, message):
    """E-mail the message (plain text, plus HTML when ``HTML_EMAIL``) from DEFAULT_FROM_EMAIL.

    Templates: ``multifactor/fallback/email_subject.txt``, ``email.txt`` and ``email.html`` (context: ``user``,
    ``message``). A site's ``multifactor/email.html``, the name 0.9.x's README gave, is used for the HTML part
    when it exists.
    """
    if not getattr(user, "email", None):
        return False
    context = {"user": user, "message": message}
    subject = " ".join(render_to_string("multifactor/fallback/email_subject.txt", context).split())
    body = render_to_string("multifactor/fallback/email.txt", context)
    mail = EmailMultiAlternatives(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
    if conf.get().HTML_EMAIL:
        html = select_template(["multifactor/email.html", "multifactor/fallback/email.html"])
        mail.attach_alternative(html.render(context), "text/html")
    return mail.send() > 0


def send_console(user, message):
    """Development transport: writes the message to the ``multifactor`` logger (never use in production)."""
    logger.warning("Fallback code for %s: %s", user.get_username(), message)
    return True


def debug_print_console(user, message):
    """django-multifactor 0.9.x's development transport (``multifactor.factors.fallback.debug_print_console``):
    prints the message on standard output; :func:`send_console` replaces it."""
    warnings.warn(
        "debug_print_console is kept for django-multifactor 0.9.x sites; use multifactor.transports.send_console.",
        DeprecationWarning,
        stacklevel=2,
    )
    sys.stdout.write(f"{user} {message}\n")
    sys.stdout.flush()
    return "command line"
