"""Fallback transports: ``fn(user, message) -> truthy when sent``, named by dotted path in ``FALLBACKS``."""

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from . import conf

logger = logging.getLogger("multifactor")


def send_email(user, message):
    """E-mail the message (plain text, plus HTML when ``HTML_EMAIL``) from DEFAULT_FROM_EMAIL.

    Templates: ``multifactor/fallback/email_subject.txt``, ``email.txt`` and ``email.html``.
    """
    if not getattr(user, "email", None):
        return False
    context = {"user": user, "message": message}
    subject = " ".join(render_to_string("multifactor/fallback/email_subject.txt", context).split())
    body = render_to_string("multifactor/fallback/email.txt", context)
    mail = EmailMultiAlternatives(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
    if conf.get().HTML_EMAIL:
        mail.attach_alternative(render_to_string("multifactor/fallback/email.html", context), "text/html")
    return mail.send() > 0


def send_console(user, message):
    """Development transport: writes the message to the ``multifactor`` logger (never use in production)."""
    logger.warning("Fallback code for %s: %s", user.get_username(), message)
    return True
