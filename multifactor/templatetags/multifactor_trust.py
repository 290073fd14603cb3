"""``{% multifactor_trust_days as days %}``: TRUST_DAYS, for the "trust this browser" checkbox of every
verification form (``multifactor/trust/checkbox.html``), whatever view renders it."""

from django import template

from .. import conf

register = template.Library()


@register.simple_tag
def multifactor_trust_days():
    return conf.get().TRUST_DAYS
