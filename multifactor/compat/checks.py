"""``multifactor.W011``: a site's override of one of the library's templates, written for 0.9.x, that misses
what this version's pages need. Rendering would not fail: a page would quietly stop working, so say it here."""

import re
from pathlib import Path

from django.core import checks
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.base import Template as DjangoTemplate
from django.template.loader import get_template
from django.template.loader_tags import BlockNode

OURS = Path(__file__).resolve().parent.parent / "templates"


def _override(name):
    """The site's compiled template for ``name`` if it is not the library's own, else None."""
    try:
        template = getattr(get_template(name), "template", None)
    except (TemplateDoesNotExist, TemplateSyntaxError):
        return None  # none at all (another engine), or one whose error its first render shows
    if not isinstance(template, DjangoTemplate) or template.origin is None:
        return None  # another template engine: nothing we can read
    try:
        if Path(template.origin.name).resolve().is_relative_to(OURS):
            return None
    except (TypeError, ValueError, OSError):
        pass  # not a file (a locmem or database loader): a site's template
    return template


def _problems():
    base = _override("multifactor/base.html")
    if base is not None:
        blocks = {node.name for node in base.nodelist.get_nodes_by_type(BlockNode)}
        missing = [name for name in ("content", "scripts") if name not in blocks]
        if missing:
            yield (
                base.origin.name,
                f"multifactor/base.html has no {' or '.join(f'{{% block {name} %}}' for name in missing)}: the pages "
                "that fill them (the security key and passkey pages load their script in 'scripts') would not work.",
                'Add {% block scripts %}{% endblock %} before </body> (0.9.x\'s "head" block was there).',
            )
    fallback = _override("multifactor/fallback/auth.html")
    if fallback is not None and not re.search(r"""name\s*=\s*["']?send\b""", fallback.source):
        yield (
            fallback.origin.name,
            "multifactor/fallback/auth.html has no button named 'send': a GET no longer sends a fallback code, so "
            "users of this page could never get one.",
            'Add <form method="post">{% csrf_token %}<button name="send" value="1">...</button></form>.',
        )


@checks.register(checks.Tags.templates)
def check_template_overrides(app_configs=None, **kwargs):
    return [
        checks.Warning(f"Your {message} ({origin})", hint=hint, id="multifactor.W011")
        for origin, message, hint in _problems()
    ]
