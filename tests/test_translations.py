"""The German catalogue (multifactor/locale/de): complete, compiled, consistent, and used by the pages.

The catalogue checks run for every locale under multifactor/locale/. To add one (say French)::

    cd multifactor
    django-admin makemessages -l fr --no-obsolete   # creates locale/fr/LC_MESSAGES/django.po
    # translate every msgstr (no "#, fuzzy" left), keeping %(name)s, {} and <a href="..."> as they are
    django-admin compilemessages -l fr               # writes django.mo next to it; ship both

After changing a marked string anywhere, run the first and last commands for every locale and translate what
makemessages added or marked fuzzy; test_catalogue_covers_every_marked_string fails until then.
"""

from __future__ import annotations

import ast
import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import translation

from multifactor.models import Key
from tests.conftest import CsrfClient, make_totp

PACKAGE = Path(__file__).resolve().parent.parent / "multifactor"
LOCALES = sorted(p.name for p in (PACKAGE / "locale").iterdir() if (p / "LC_MESSAGES" / "django.po").exists())


def parse_po(path: Path) -> list[dict]:
    """The entries of a .po file: msgid, msgid_plural, msgstr (a list: one per plural form), flags.
    Obsolete (#~) entries are skipped; the header (empty msgid) is included."""
    entries, entry, field = [], None, None
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if entry is not None and "msgid" in entry:
                entries.append(entry)
            entry, field = None, None
            continue
        if line.startswith("#~"):
            continue
        entry = entry if entry is not None else {"flags": set(), "msgstr": {}}
        if line.startswith("#,"):
            entry["flags"] |= {f.strip() for f in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            value = ast.literal_eval(line)
            if isinstance(field, int):
                entry["msgstr"][field] += value
            else:
                entry[field] += value
        else:
            keyword, _, value = line.partition(" ")
            match = re.fullmatch(r"msgstr(?:\[(\d+)\])?", keyword)
            if match:
                field = int(match.group(1) or 0)
                entry["msgstr"][field] = ast.literal_eval(value)
            else:
                field = keyword
                entry[field] = ast.literal_eval(value)
    return entries


def catalogue(locale):
    return [e for e in parse_po(PACKAGE / "locale" / locale / "LC_MESSAGES" / "django.po") if e["msgid"]]


def test_german_is_shipped():
    assert "de" in LOCALES


@pytest.mark.parametrize("locale", LOCALES)
def test_catalogue_has_no_untranslated_or_fuzzy_entry(locale):
    entries = catalogue(locale)
    assert len(entries) > 150
    untranslated = [e["msgid"] for e in entries if not all(e["msgstr"].values())]
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    assert untranslated == [] and fuzzy == []
    plural = [e for e in entries if "msgid_plural" in e]
    assert plural and all(len(e["msgstr"]) >= 1 for e in plural)  # as many as nplurals: tests/test_locales.py


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_placeholders_and_markup(locale):
    for entry in catalogue(locale):
        if "msgid_plural" in entry:
            continue  # a plural form may drop a singular's placeholder: tests/test_locales.py checks those
        for translated in entry["msgstr"].values():
            for pattern in (r"%\(\w+\)[sd]", r"\{\}", r"<a href=\"[^\"]*\">", r"</a>"):
                source = sorted(re.findall(pattern, entry["msgid"]))
                assert sorted(re.findall(pattern, translated)) == source, (entry["msgid"], translated)


def test_german_says_sie_throughout():
    informal = re.compile(r"\b(du|dich|dir|dein\w*|euch|euer\w*)\b", re.IGNORECASE)
    for entry in catalogue("de"):
        for translated in entry["msgstr"].values():
            assert not informal.search(translated), translated


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalogue_matches_the_po_file(locale):
    """The shipped .mo is the compiled .po (run ``django-admin compilemessages`` in multifactor/ after editing)."""
    directory = PACKAGE / "locale" / locale / "LC_MESSAGES"
    with open(directory / "django.mo", "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for entry in catalogue(locale):
        if "msgid_plural" in entry:
            for n in (1, 5):  # the form the language's Plural-Forms picks (pl, uk: 3 forms; ja, zh: 1)
                got = compiled.ngettext(entry["msgid"], entry["msgid_plural"], n)
                assert got == entry["msgstr"][compiled.plural(n)]
        else:
            assert compiled.gettext(entry["msgid"]) == entry["msgstr"][0], entry["msgid"]


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("xgettext"), reason="needs GNU gettext (xgettext)")
def test_catalogue_covers_every_marked_string(tmp_path):
    """makemessages on a copy of the package finds no string the shipped catalogue lacks (nor one it has
    in excess): a string marked for translation after the catalogue was made fails here."""
    copy = tmp_path / "multifactor"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    shutil.rmtree(copy / "locale")
    (copy / "locale").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}  # makemessages needs none
    done = subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "de", "--no-obsolete"],  # this venv's Django
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    fresh = {(e["msgid"], e.get("msgid_plural")) for e in parse_po(copy / "locale/de/LC_MESSAGES/django.po")}
    shipped = {(e["msgid"], e.get("msgid_plural")) for e in parse_po(PACKAGE / "locale/de/LC_MESSAGES/django.po")}
    assert fresh - shipped == set(), "strings not in the catalogue yet: run makemessages and translate them"
    assert shipped - fresh == set(), "strings no longer used: run makemessages --no-obsolete"


# -- the pages in German -----------------------------------------------------------------------------------


@pytest.fixture
def german(settings):
    settings.LANGUAGE_CODE = "de"  # no LocaleMiddleware in the suite: every request uses LANGUAGE_CODE
    yield
    translation.activate("en-us")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/multifactor/", ["Ihre Sicherheitsschlüssel", "Sie haben noch keine Sicherheitsschlüssel."]),
        ("/multifactor/add/", ["Schützen Sie Ihr Konto mit einem zweiten Faktor", "Authenticator-App"]),
        ("/multifactor/help/", ["Über die Multi-Faktor-Authentifizierung", "Gerät verloren?"]),
        ("/multifactor/totp/new/", ["Authenticator-App einrichten", "Code aus Ihrer App", "Aktivieren"]),
        ("/multifactor/fido2/new/", ["Sicherheitsschlüssel oder Passkey hinzufügen"]),
    ],
)
def test_pages_render_in_german(german, user, url, expected):
    client = CsrfClient()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="de">' in html
    for text in expected:
        assert text in html, text


def test_home_with_keys_in_german(german, user):
    make_totp(user, name="Telefon")
    client = CsrfClient()
    client.force_login(user)
    html = client.get("/multifactor/").content.decode()
    for text in ("nie verwendet", "aktiviert", "Um diese Einstellungen zu ändern,"):
        assert text in html, text
    assert "Your security keys" not in html and "Last used" not in html
    choose = client.get("/multifactor/authenticate/", follow=True)
    assert "Bestätigen" in choose.content.decode()


def test_api_errors_in_german(german, user):
    client = CsrfClient()
    client.force_login(user)
    response = client.api("PATCH", "/multifactor/api/v1/keys/999", {"name": "x"})
    assert response.status_code == 404
    assert response.json()["errors"][0]["message"] == "Diesen Schlüssel gibt es nicht."


def test_protected_view_message_in_german(german, user):
    client = CsrfClient()
    client.force_login(user)
    response = client.get("/f2/", headers={"Accept": "application/json"})
    assert response.json()["errors"][0]["message"] == "Diese Seite erfordert 2 bestätigte Sicherheitsfaktoren."


@pytest.mark.urls("tests.admin_urls")
def test_admin_in_german(german, db):
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    make_totp(root)
    client = CsrfClient()
    client.force_login(root)
    html = client.get("/staff-admin/auth/user/").content.decode()
    for text in ("Hat aktive Schlüssel", "Keine aktiven Schlüssel", "Multi-Faktor-Authentifizierung zurücksetzen"):
        assert text in html, text
    change = client.get(f"/staff-admin/auth/user/{root.pk}/change/").content.decode()
    assert "Multi-Faktor-Schlüssel" in change and "zuletzt verwendet" in change.lower()
    assert Key.objects.filter(user=root).exists()
