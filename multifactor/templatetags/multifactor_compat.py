"""``{% multifactor_09_names %}``: the context variables 0.9.x's templates used, next to this library's names.

``multifactor/base.html`` runs it before its blocks, so a page template written for 0.9.x (which extends
base.html) finds its variables where a view of this library hands them out under a new name. A name the view
(or a site) set itself is never replaced.
"""

from django import template

register = template.Library()

# 0.9.x name: this library's name (multifactor/TOTP/add.html: the secret and the otpauth:// URI of the QR code)
NAMES_09 = {"secret_key": "secret", "qr": "totp_url"}


@register.simple_tag(takes_context=True)
def multifactor_09_names(context):
    for old, new in NAMES_09.items():
        if new in context and old not in context:
            context[old] = context[new]
    return ""
