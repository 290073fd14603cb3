"""Settings for the server processes of tests/test_multiprocess.py: the suite's settings, plus a session engine
and a shared cache for the cache session engine chosen through the environment (MF_SESSION_ENGINE; Redis:
MF_REDIS_URL, MF_REDIS_PREFIX), SESSION_SAVE_EVERY_REQUEST (MF_SAVE_EVERY_REQUEST),
and extra MULTIFACTOR settings as a JSON object in MF_MULTIFACTOR.
The database comes from DATABASE_URL or SQLITE_NAME, as in tests/settings.py."""

import os

from tests.settings import *  # noqa: F403

if os.environ.get("MF_SESSION_ENGINE"):
    SESSION_ENGINE = os.environ["MF_SESSION_ENGINE"]
if os.environ.get("MF_REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["MF_REDIS_URL"],
            "KEY_PREFIX": os.environ.get("MF_REDIS_PREFIX", ""),
        }
    }
if os.environ.get("MF_SAVE_EVERY_REQUEST"):  # sliding sessions: every response saves the session
    SESSION_SAVE_EVERY_REQUEST = True
if os.environ.get("MF_MULTIFACTOR"):  # extra MULTIFACTOR settings as JSON, e.g. small THROTTLE_* values
    import json

    MULTIFACTOR = {**MULTIFACTOR, **json.loads(os.environ["MF_MULTIFACTOR"])}  # noqa: F405

# Server errors go to stderr (the servers' logs), so that a failing test can show the traceback.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False}},
}

# SQLite shared by several processes: BEGIN IMMEDIATE, so that a transaction that reads and then writes (the
# throttle's check-and-count) waits for the write lock instead of failing at once with "database is locked"
# (SQLite cannot upgrade a deferred transaction's read lock while another connection writes). Django >= 5.1.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})  # noqa: F405
