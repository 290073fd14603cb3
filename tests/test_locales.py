"""Every shipped locale (multifactor/locale/<xx>/LC_MESSAGES/django.po and .mo), checked with polib.

For each locale: every string the code marks is in the catalogue and translated (nothing empty, nothing
fuzzy, nothing stale), placeholders and markup are kept, plural entries have exactly the forms the
language's Plural-Forms header asks for and that header is the standard one, the compiled .mo says what
the .po says; and the pages render in that language.

After changing a marked string: ``.venv/bin/python scripts/i18n-sync`` (lists, per locale, what is new,
untranslated or fuzzy), translate, ``scripts/i18n-sync --compile``, then run this file.
"""

from __future__ import annotations

import gettext
import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import translation

from tests.conftest import CsrfClient, make_totp
from tests.mfa_helpers import AUTHENTICATE, HOME, TOTP_NEW

polib = pytest.importorskip("polib")

PACKAGE = Path(__file__).resolve().parent.parent / "multifactor"
LOCALE_DIR = PACKAGE / "locale"
LOCALES = sorted(p.name for p in LOCALE_DIR.iterdir() if (p / "LC_MESSAGES" / "django.po").exists())

# The standard gettext Plural-Forms of each shipped language (the GNU gettext manual / CLDR integer rules).
PLURAL_FORMS = {
    "de": "nplurals=2; plural=(n != 1);",
    "es": "nplurals=2; plural=(n != 1);",
    "fr": "nplurals=2; plural=(n > 1);",
    "it": "nplurals=2; plural=(n != 1);",
    "ja": "nplurals=1; plural=0;",
    "nl": "nplurals=2; plural=(n != 1);",
    "pl": "nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);",
    "pt_BR": "nplurals=2; plural=(n > 1);",
    "tr": "nplurals=2; plural=(n != 1);",
    "uk": "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);",
    "zh_Hans": "nplurals=1; plural=0;",
}
# %-style (Python) and {}-style placeholders, and HTML tags: a translation keeps exactly the same ones.
PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxXeEfFgGcrsa%]")
BRACES = re.compile(r"\{[^{}]*\}")
TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def po_file(locale):
    return polib.pofile(str(LOCALE_DIR / locale / "LC_MESSAGES" / "django.po"))


def entries(locale):
    return [e for e in po_file(locale) if not e.obsolete]


def nplurals(locale):
    return int(re.search(r"nplurals\s*=\s*(\d+)", po_file(locale).metadata["Plural-Forms"]).group(1))


def normalised(forms):
    return re.sub(r"\s+", "", forms).rstrip(";")


def marks(text):
    return {
        "%": sorted(m for m in PERCENT.findall(text) if m != "%%"),
        "{}": sorted(BRACES.findall(text)),
        "tags": sorted(re.sub(r"\s+", " ", t) for t in TAG.findall(text)),
    }


def test_the_expected_locales_are_shipped():
    """de, and pt_BR (which 0.9.5 shipped: a Brazilian 0.9.x site keeps its translation), and the rest."""
    assert set(PLURAL_FORMS) <= set(LOCALES), set(PLURAL_FORMS) - set(LOCALES)
    assert len(LOCALES) >= 11


@pytest.mark.parametrize("locale", LOCALES)
def test_header(locale):
    po = po_file(locale)
    assert locale in PLURAL_FORMS, f"add the standard Plural-Forms of {locale} to PLURAL_FORMS"
    assert normalised(po.metadata["Plural-Forms"]) == normalised(PLURAL_FORMS[locale])
    assert po.metadata["Language"] == locale
    assert po.metadata["Content-Type"].lower() == "text/plain; charset=utf-8"
    assert not po.metadata_is_fuzzy


@pytest.mark.parametrize("locale", LOCALES)
def test_every_entry_is_translated_and_none_is_fuzzy(locale):
    found = entries(locale)
    assert len(found) > 150
    fuzzy = [e.msgid for e in found if "fuzzy" in e.flags]
    untranslated = [e.msgid for e in found if not e.translated()]
    assert fuzzy == [], "check these, then remove their '#, fuzzy' line"
    assert untranslated == []


@pytest.mark.parametrize("locale", LOCALES)
def test_plural_entries_have_exactly_nplurals_forms(locale):
    n = nplurals(locale)
    plural = [e for e in entries(locale) if e.msgid_plural]
    assert plural
    for entry in plural:
        assert sorted(entry.msgstr_plural) == list(range(n)), entry.msgid
        assert all(entry.msgstr_plural[i].strip() for i in range(n)), entry.msgid
        assert entry.msgstr == ""


@pytest.mark.parametrize("locale", LOCALES)
def test_placeholders_and_markup_are_kept(locale):
    for entry in entries(locale):
        sources = [entry.msgid] + ([entry.msgid_plural] if entry.msgid_plural else [])
        # A plural form may leave out what the English singular leaves out ("this user" / "these %(counter)s
        # users"): each form has at least the singular's placeholders and at most the plural's.
        least, most = marks(sources[0]), marks(sources[-1])
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        for translated in filter(None, translations):  # an empty one fails test_every_entry_is_translated...
            got = marks(translated)
            for kind in ("%", "{}"):
                assert set(least[kind]) <= set(got[kind]) <= set(most[kind]), (sources, translated)
            if not entry.msgid_plural:  # identical sets of placeholders
                assert set(got["%"]) == set(most["%"]) and set(got["{}"]) == set(most["{}"]), (sources, translated)
            assert got["tags"] == most["tags"], (sources, translated)  # the same tags, as many times
            if "python-format" in entry.flags:
                try:
                    translated % {name: 1 for name in re.findall(r"%\((\w+)\)", translated)}
                except (KeyError, ValueError, TypeError) as error:
                    pytest.fail(f"{translated!r} is not a valid format string: {error}")


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_mo_is_the_po(locale):
    """django.mo holds exactly the .po's translations (run ``scripts/i18n-sync --compile`` after editing)."""
    directory = LOCALE_DIR / locale / "LC_MESSAGES"
    po = po_file(locale)
    mo = polib.mofile(str(directory / "django.mo"))

    def content(catalogue):
        return {
            (e.msgctxt, e.msgid, e.msgid_plural or None): (
                tuple(sorted(e.msgstr_plural.items())) if e.msgid_plural else e.msgstr
            )
            for e in catalogue
            if e.msgid
            and not getattr(e, "obsolete", False)
            and (isinstance(e, polib.MOEntry) or (e.translated() and "fuzzy" not in e.flags))  # what msgfmt keeps
        }

    assert content(mo) == content(po)
    assert normalised(mo.metadata.get("Plural-Forms", "")) == normalised(po.metadata["Plural-Forms"])


# -- in step with the code -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_catalogue(tmp_path_factory):
    """What makemessages finds in the code now (on a copy of the package, with no catalogue of its own)."""
    if not shutil.which("xgettext"):
        pytest.skip("needs GNU gettext (xgettext)")
    copy = tmp_path_factory.mktemp("i18n") / "multifactor"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo", "*.pyc"))
    shutil.rmtree(copy / "locale")
    (copy / "locale").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}  # makemessages needs none
    done = subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "en", "--no-obsolete"],  # this venv's Django
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    po = polib.pofile(str(copy / "locale/en/LC_MESSAGES/django.po"))
    return {(e.msgctxt, e.msgid, e.msgid_plural or None) for e in po if e.msgid}


@pytest.mark.parametrize("locale", LOCALES)
def test_catalogue_has_every_string_of_the_code(fresh_catalogue, locale):
    shipped = {(e.msgctxt, e.msgid, e.msgid_plural or None) for e in entries(locale)}
    missing = sorted(m[1] for m in fresh_catalogue - shipped)
    assert missing == [], "strings not in the catalogue yet: run scripts/i18n-sync and translate them"
    stale = sorted(m[1] for m in shipped - fresh_catalogue)
    assert stale == [], "strings no longer used: run scripts/i18n-sync (makemessages --no-obsolete)"


# -- the pages in each language ------------------------------------------------------------------------

PAGES = {"home": HOME, "totp_start": TOTP_NEW, "authenticate": AUTHENTICATE}


def django_code(locale):
    return translation.to_language(locale)  # pt_BR -> pt-br, zh_Hans -> zh-hans


def page_text(client, url):
    response = client.get(url, follow=True)
    assert response.status_code == 200, url
    return html.unescape(response.content.decode())


@pytest.fixture
def english_pages(settings, user):
    """The three pages in English, for a user with a key: which catalogue strings they show."""
    settings.LANGUAGE_CODE = "en-us"
    make_totp(user, name="Phone")
    client = CsrfClient()
    client.force_login(user)
    pages = {name: page_text(client, url) for name, url in PAGES.items()}
    yield client, pages
    translation.activate("en-us")


@pytest.mark.parametrize("locale", LOCALES)
def test_pages_render_in_each_language(english_pages, settings, locale):
    """Home (the keys page), the TOTP set-up page and the authenticate chooser, with the locale active: each
    catalogue string that is the whole text of an element of the English page is shown translated instead."""
    client, english = english_pages
    catalogue = {e.msgid: e.msgstr for e in entries(locale) if not e.msgid_plural}
    settings.LANGUAGE_CODE = django_code(locale)  # no LocaleMiddleware in the suite: LANGUAGE_CODE decides
    try:
        for name, url in PAGES.items():
            shown = [
                msgid
                for msgid in catalogue
                if len(msgid) >= 8
                and not PERCENT.search(msgid)
                and not BRACES.search(msgid)
                and "<" not in msgid
                and re.search(rf">\s*{re.escape(msgid)}\s*<", english[name])  # the whole text of an element
            ]
            assert len(shown) >= 2, (name, shown)
            text = page_text(client, url)
            assert f'lang="{django_code(locale)}"' in text, name
            missing = [(m, catalogue[m]) for m in shown if catalogue[m] not in text]
            assert missing == [], (locale, name)
            assert any(catalogue[m] != m for m in shown), (locale, name)  # not merely English
    finally:
        translation.activate("en-us")


@pytest.mark.parametrize("locale", LOCALES)
def test_django_serves_the_translations(locale):
    """Django's own catalogue loading (the .mo, merged with Django's and other apps' catalogues) returns this
    catalogue's translations, plural forms chosen by the header's formula."""
    po = po_file(locale)
    choose = gettext.c2py(re.search(r"plural\s*=\s*([^;]+)", po.metadata["Plural-Forms"]).group(1))
    # An app listed earlier in INSTALLED_APPS (Django's admin: "Delete", "Username", ...) may translate the
    # same msgid first; Django's own translation then wins, which is fine as long as it is one.
    with translation.override(django_code(locale)):
        for entry in filter(polib.POEntry.translated, entries(locale)):
            if entry.msgid_plural:
                for n in (0, 1, 2, 5, 11, 22, 101):
                    got = translation.ngettext(entry.msgid, entry.msgid_plural, n)
                    english = entry.msgid if n == 1 else entry.msgid_plural
                    assert got == entry.msgstr_plural[choose(n)] or got != english, (entry.msgid, n)
            else:
                got = (
                    translation.pgettext(entry.msgctxt, entry.msgid)
                    if entry.msgctxt
                    else translation.gettext(entry.msgid)
                )
                assert got == entry.msgstr or got != entry.msgid, entry.msgid
        ours = [e for e in entries(locale) if not e.msgid_plural and not e.msgctxt and e.msgstr != e.msgid]
        assert sum(translation.gettext(e.msgid) == e.msgstr for e in ours) > 0.9 * len(ours)
