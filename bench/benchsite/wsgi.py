"""The WSGI application gunicorn serves (bench/server.py).

For django-otp the protection is ``OTPMiddleware`` plus ``otp_required``: the middleware (which loads the
verifying device for every signed-in request) is part of what it costs. As in the in-process run, the
baseline views (``/plain/``, ``/login/``) are served by a handler without that middleware, the way a site
without django-otp would serve them, and the protected view by the handler with it.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
application = get_wsgi_application()

if os.environ.get("BENCH_LIB") == "otp":
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    with override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m != "django_otp.middleware.OTPMiddleware"]):
        _without_otp = WSGIHandler()
    _with_otp = application
    _baseline = ("/plain/", "/login/")

    def application(environ, start_response):
        handler = _without_otp if environ.get("PATH_INFO") in _baseline else _with_otp
        return handler(environ, start_response)
