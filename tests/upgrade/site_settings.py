"""One site's settings, used unchanged before the upgrade (with django-multifactor 0.9.5 installed) and after it
(with this library): an upgrading site swaps the package and keeps its settings, ``MULTIFACTOR`` included.

The database comes from MF_UPGRADE_DATABASE (a JSON ``DATABASES["default"]``), set by tests/test_upgrade_from_09.py.
"""

import json
import os
from pathlib import Path

SECRET_KEY = "upgrade-test-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "testserver"]
USE_TZ = True
ROOT_URLCONF = "site_urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/done/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "multifactor",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The site's own overrides of multifactor's templates, written for 0.9.x (home.html, add.html, ...).
        "DIRS": [Path(__file__).resolve().parent.parent / "templates" / "multifactor09"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {"default": json.loads(os.environ["MF_UPGRADE_DATABASE"])}

# What a 0.9 site has: only keys 0.9 knew. MAX_ATTEMPTS is one this version ignores (a warning, not an error).
# FALLBACKS and BYPASS name the site's own functions (site_views.py), as 0.9's README shows.
MULTIFACTOR = {
    "FIDO_SERVER_ID": "localhost",
    "FIDO_SERVER_NAME": "Upgrade test",
    "TOKEN_ISSUER_NAME": "Upgrade test",
    "FACTORS": ["FIDO2", "TOTP"],
    "MAX_ATTEMPTS": 5,
    "FALLBACKS": {
        "email": (lambda user: user.email, "multifactor.factors.fallback.send_email"),
        "pigeon": (lambda user: f"loft {user.get_username()}", "site_views.send_pigeon"),
    },
    "BYPASS": "site_views.bypass_when_impersonating",
}
