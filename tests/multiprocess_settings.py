"""Settings for the server processes of tests/test_multiprocess.py: the suite's settings, plus a session engine
and a shared Redis cache chosen through the environment (MF_SESSION_ENGINE, MF_REDIS_URL, MF_REDIS_PREFIX).
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
