"""Settings for the test suite. DATABASE_URL (postgres://, mysql://) switches from SQLite; tox and .ci/run set it."""

import os
from urllib.parse import urlparse

import django

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/done/"
# The README's set-up: the revocation counter is loaded with the user (no query of its own on protected views).
AUTHENTICATION_BACKENDS = ["multifactor.backends.ModelBackend"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; not what a site should use

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "multifactor",
    "tests",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "multifactor.trust.middleware.SignedInSessionsMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
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


def database_from_url(url):
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_NAME", ":memory:"),
        }
    parts = urlparse(url)
    engine = {
        "postgres": "postgresql",
        "postgresql": "postgresql",
        "mysql": "mysql",
        "mariadb": "mysql",
    }[parts.scheme]
    config = {
        "ENGINE": f"django.db.backends.{engine}",
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }
    if engine == "mysql":
        config["OPTIONS"] = {"charset": "utf8mb4"}
    return config


DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL"))}
if os.environ.get("SQLITE_NAME"):  # multi-process tests share a file database
    DATABASES["default"]["TEST"] = {"NAME": os.environ["SQLITE_NAME"]}

try:  # PyMySQL stands in for mysqlclient, which needs C headers to build
    import pymysql

    pymysql.install_as_MySQLdb()
except ImportError:
    pass

MULTIFACTOR = {
    "ENCRYPTION_KEYS": ["q2H1iU3N4j3hV6o1yqQm4b9V7lXbJm1gXvM5mM8fJ3E="],
    "FIDO_SERVER_ID": "localhost",
    "TOKEN_ISSUER_NAME": "Tests",
}

if django.VERSION >= (6, 1):  # Django 6.1 configures e-mail through MAILERS (EMAIL_BACKEND is deprecated)
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
