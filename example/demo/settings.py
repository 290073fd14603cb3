"""Settings of the demo site. DEMO ONLY: the secrets below are public; never reuse them in a real site."""

import os
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent  # example/

# DEMO ONLY: a public, made-up secret. A real site reads its SECRET_KEY from the environment.
SECRET_KEY = "demo-only-not-secret-_JPenDaTq_CBYvHe6XwplG6cxepnmNgwBwOkQQSX"
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "demo",  # before staticfiles: its runserver (which ends with the URL and the credentials) is the one used
    "django.contrib.staticfiles",
    "multifactor",
]
AUTHENTICATION_BACKENDS = ["multifactor.backends.ModelBackend"]  # the revocation counter comes with the user
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "multifactor.trust.middleware.SignedInSessionsMiddleware",  # signed-out sessions refused on every page
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "demo.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# runserver answers requests in threads: IMMEDIATE transactions wait for each other instead of failing.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DATABASE") or BASE_DIR / "db.sqlite3",  # DEMO_DATABASE: the start-up test's
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "/static/"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Fallback codes and notifications are printed in the runserver console instead of being sent.
# Django 6.1 configures e-mail with MAILERS and deprecates EMAIL_BACKEND.
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = "demo@localhost"

MULTIFACTOR = {
    "TOKEN_ISSUER_NAME": "Multifactor demo",
    "FIDO_SERVER_ID": "localhost",  # open the demo as http://localhost:<port> (127.0.0.1 is not a valid RP ID)
    "FIDO_SERVER_NAME": "Multifactor demo",
    "PASSKEY_LOGIN": True,  # the login page links to passwordless sign-in with a passkey
    "BASE_TEMPLATE": "demo/base.html",  # the MFA pages inside the demo's own page (header, messages)
    "TRUST_DAYS": 30,  # verification pages offer "Trust this browser for 30 days"
    # DEMO ONLY: this key is public, so TOTP seeds stored with it are not protected. A real site generates
    # its own with `python -m multifactor.crypto` and keeps it out of the code (MULTIFACTOR_ENCRYPTION_KEYS).
    "ENCRYPTION_KEYS": ["nnu1M0evLhKut-XDxLnK4Hbjq1j8b9sHFJ1HNFErTrc="],
}
