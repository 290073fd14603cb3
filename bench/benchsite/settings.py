"""Settings of the benchmark site, chosen by environment variables (set by bench/run.py):

* ``BENCH_LIB``: ``ours`` or ``mf095`` (django-multifactor, this tree or 0.9.5) or ``otp`` (django-otp 1.7.5).
* ``BENCH_DB``: the SQLite file (WAL, synchronous=NORMAL, persistent connections: the same for everyone).
* ``BENCH_ENGINE``: ``db`` or ``signed_cookies`` (the session engine; the in-process run switches it with
  override_settings).

Everything else is what a newcomer gets: Django's default cache (local memory), and for this library the
README's settings (its authentication backend, which loads the revocation counter with the user).
"""

import os
from pathlib import Path

LIB = os.environ.get("BENCH_LIB", "ours")
ENGINES = {
    "db": "django.contrib.sessions.backends.db",
    "signed_cookies": "django.contrib.sessions.backends.signed_cookies",
}

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "bench-only-not-secret-0123456789abcdefghijklmnopqrstuvwxyz"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
ROOT_URLCONF = "benchsite.urls"
WSGI_APPLICATION = "benchsite.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/plain/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # setup speed only; never on a hot path
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SESSION_ENGINE = ENGINES[os.environ.get("BENCH_ENGINE", "db")]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
if LIB in ("ours", "mf095"):
    INSTALLED_APPS.append("multifactor")
if LIB == "ours":  # the README's set-up: the revocation counter is loaded with the user (Django's own
    # backend is listed too, only for the benchmark's "unjoined" sessions signed in through it)
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
        "multifactor.trust.middleware.SignedInSessionsMiddleware",
    )
    AUTHENTICATION_BACKENDS = ["multifactor.backends.ModelBackend", "django.contrib.auth.backends.ModelBackend"]
elif LIB == "otp":
    INSTALLED_APPS += ["django_otp", "django_otp.plugins.otp_totp"]
    # django-otp's protection is the middleware (which loads the verifying device) plus otp_required.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
        "django_otp.middleware.OTPMiddleware",
    )
    OTP_LOGIN_URL = "/otp/login/"
elif LIB != "mf095":
    raise RuntimeError(f"BENCH_LIB={LIB!r}: expected ours, mf095 or otp")

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DB", str(BASE_DIR.parent / ".work" / LIB / "db.sqlite3")),
        "CONN_MAX_AGE": None,  # persistent: measure the libraries, not connection set-up
        "OPTIONS": {
            "init_command": "PRAGMA synchronous=NORMAL;",  # with journal_mode=WAL, set once on the file
            "transaction_mode": "IMMEDIATE",  # writers queue on the busy timeout instead of failing
            "timeout": 30,
        },
    }
}


if LIB == "ours":
    MULTIFACTOR = {
        "ENCRYPTION_KEYS": ["q2H1iU3N4j3hV6o1yqQm4b9V7lXbJm1gXvM5mM8fJ3E="],
        "FIDO_SERVER_ID": "localhost",
        "FIDO_ORIGINS": ["http://localhost"],
        "TOKEN_ISSUER_NAME": "Bench",
    }
elif LIB == "mf095":
    MULTIFACTOR = {"FIDO_SERVER_ID": "localhost", "TOKEN_ISSUER_NAME": "Bench"}
