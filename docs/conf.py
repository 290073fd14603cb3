"""Sphinx configuration for django-multifactor's documentation (``make docs``).

Django is set up with the test suite's settings (``tests.settings``) so that autodoc can import the package,
and so that the local extension (``_ext/multifactor_docs.py``) can read ``multifactor.conf.SPEC`` (the
settings page), ``multifactor.urls`` (checked against ``multifactor/openapi.json`` on the API page) and the
system check ids raised in ``multifactor/``.

How links are checked. ``make docs`` builds with ``-W --keep-going``, so every warning fails the build, and
this file sets ``nitpicky = True``: every cross-reference (``:doc:``, ``:ref:`` and its section labels,
``:py:`` objects, ``:setting:`` and ``:check:``) must resolve, or the build fails. That is the check of
internal references and anchors. The second step, the ``linkcheck`` builder, then checks every other link
that is not http(s): relative links to files. External http(s) links are ignored (``linkcheck_ignore``):
the machines that build the docs (developers' and CI's) reach package registries only, so a check of the
wider web would fail for reasons that are not the documentation's. There is no intersphinx for the same
reason: Python's and Django's names in signatures are listed in ``nitpick_ignore_regex`` instead.
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(ROOT), str(DOCS / "_ext")]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
import django  # noqa: E402

django.setup()

import multifactor  # noqa: E402

project = "django-multifactor"
author = "django-multifactor developers"
copyright = "django-multifactor developers"
release = multifactor.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "multifactor_docs",
]

exclude_patterns = ["_build"]
templates_path = []
html_theme = "furo"
html_title = f"django-multifactor {release}"
html_static_path = []
pygments_style = "sphinx"
pygments_dark_style = "monokai"

# -- references ------------------------------------------------------------------------------------------

nitpicky = True
nitpick_ignore_regex = [
    # Python's and Django's own names (no intersphinx: see the module docstring).
    (r"py:.*", r"(django|asgiref|fido2|pyotp|cryptography)(\..*)?"),
    (r"py:.*", r"(str|int|bool|float|bytes|dict|list|tuple|set|object|callable|None|Any|Callable|Iterable)"),
    (r"py:.*", r"(typing|collections\.abc|datetime|dataclasses)\..*"),
    (r"py:.*", r"(HttpRequest|HttpResponse|QuerySet|Signal|User|Promise)"),
    # Models and services that the reference does not document (yet): named in signatures only.
    (r"py:class", r"(multifactor\.models(\.keys)?\.)?(Key|Event|Revision|FallbackCode)"),
    (r"py:class", r"Factor"),
]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"

linkcheck_ignore = [r"https?://.*"]

# -- output ----------------------------------------------------------------------------------------------

rst_prolog = """
.. |project| replace:: django-multifactor
"""
