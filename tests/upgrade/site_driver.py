"""Drive the 0.9.x-style site (site_views.py, the 0.9-style templates of tests/templates/multifactor09/) as its
users and staff would: the same requests with django-multifactor 0.9.5 (legacy_seed.py) and with this library
(verify.py, tests/test_compat_site.py). Returns what each request answered, for the two to be compared.
"""

import json
import re
import secrets

from django.test import Client

try:  # in process: tests.upgrade.site_driver; in the 0.9.5 and upgraded sites' subprocesses: site_driver
    from . import site_views
except ImportError:
    import site_views


class Browser(Client):
    """CSRF enforced, the token sent as a page's script would; requests come to localhost."""

    def __init__(self, **kwargs):
        super().__init__(enforce_csrf_checks=True, HTTP_HOST="localhost", **kwargs)
        self.token = secrets.token_hex(16)
        self.cookies["csrftoken"] = self.token

    def post(self, path, data=None, **kwargs):
        kwargs.setdefault("headers", {})["X-CSRFToken"] = self.token
        return super().post(path, data, **kwargs)


def answer(response):
    """Status and redirect target, plus the JSON a site view answered."""
    found = {"status": response.status_code, "location": response.get("Location")}
    if response.get("Content-Type", "").startswith("application/json"):
        found["json"] = json.loads(response.content)
    return found


def markers(html, cls):
    """The data-* attributes of every element of class ``cls`` in a page the 0.9-style templates rendered."""
    found = []
    for tag in re.findall(rf'<[a-z]+ class="{cls}"([^>]*)>', html):
        found.append(dict(re.findall(r'data-([a-z]+)="([^"]*)"', tag)))
    return found


def verify_with_pigeon(browser, prefix):
    """Verify through the fallback page with the code the custom transport carried. 0.9.5 sends on the GET (the
    POST without a code only complains); this library sends on the POST ``send`` (the GET only shows the page):
    the same two requests send exactly one code with either."""
    site_views.OUTBOX.clear()
    browser.post(f"{prefix}fallback/auth/", {"send": "1"})
    page = browser.get(f"{prefix}fallback/auth/")
    context = page.context or {}
    sent = list(site_views.OUTBOX)
    result = {"page": page.status_code, "sent": len(sent), "succeeded": str(context.get("succeeded", ""))}
    code = re.search(r"\b(\d{8})\b", sent[-1]["message"]).group(1) if sent else ""
    result["verify"] = answer(browser.post(f"{prefix}fallback/auth/", {"otp": code}))
    return result


def drive(user, other, staff, prefix="/mf/"):
    facts = {}
    fresh = Browser()
    fresh.force_login(user)
    facts["attributes_unverified"] = answer(fresh.get("/attributes/"))
    facts["require_unverified"] = answer(fresh.get("/require/"))
    facts["prefer_unverified"] = answer(fresh.get("/prefer/"))
    facts["require_bypassed"] = answer(fresh.get("/require/", headers={"X-Impersonating": "yes"}))
    facts["helpers_unverified"] = answer(fresh.get("/helpers/"))
    fresh.get("/require/")  # remembered: the verification returns here
    facts["pigeon"] = verify_with_pigeon(fresh, prefix)
    facts["require_verified"] = answer(fresh.get("/require/"))
    facts["helpers_verified"] = answer(fresh.get("/helpers/"))

    home = fresh.get(prefix)
    html = home.content.decode()
    facts["home"] = {
        "status": home.status_code,
        "override": "Site keys (0.9 override)" in html and "site-wide" in html,
        "factors": sorted(markers(html, "site-factor"), key=lambda m: (m["type"], m["name"])),
        "fallbacks": markers(html, "site-fallback"),
    }
    add = fresh.get(f"{prefix}add/")
    facts["add"] = {"status": add.status_code, "methods": markers(add.content.decode(), "site-method")}

    others = Browser()
    others.force_login(other)
    facts["other_require"] = answer(others.get("/require/"))
    facts["other_prefer"] = answer(others.get("/prefer/"))

    admin = Browser()
    admin.force_login(staff)
    users = "/admin/auth/user/"
    facts["admin"] = {}
    for value in ("True", "False"):
        page = admin.get(users, {"multifactor": value})
        facts["admin"][value] = sorted(u.get_username() for u in page.context["cl"].result_list)
    page = admin.get(users)
    facts["admin"]["column"] = "multifactor" in page.context["cl"].list_display
    facts["admin"]["filter"] = any(
        getattr(spec, "parameter_name", None) == "multifactor" for spec in page.context["cl"].filter_specs
    )
    change = admin.get(f"{users}{user.pk}/change/")
    facts["admin"]["change_page"] = change.status_code
    facts["admin"]["inline"] = "multifactor_keys-TOTAL_FORMS" in change.content.decode()
    return facts
