"""Three views per library (undecorated, ``login_required``, the library's protection) and its MFA pages."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.urls import include, path

from .settings import LIB


def plain(request):
    return HttpResponse(b"plain ok")


def signed_in(request):
    return HttpResponse(b"login ok")


def protected(request):
    return HttpResponse(b"protected ok")


async def async_signed_in(request):
    return HttpResponse(b"async login ok")


async def async_protected(request):
    return HttpResponse(b"async protected ok")


urlpatterns = [
    path("plain/", plain, name="plain"),
    path("login/", login_required(signed_in), name="login_required"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
]

if LIB in ("ours", "mf095"):
    from multifactor.decorators import multifactor_protected

    urlpatterns += [
        path("protected/", login_required(multifactor_protected(factors=1)(protected)), name="protected"),
        path("admin/multifactor/", include("multifactor.urls")),
    ]
if LIB == "ours":
    urlpatterns += [
        path("async/login/", login_required(async_signed_in), name="async_login_required"),
        path(
            "async/protected/",
            login_required(multifactor_protected(factors=1)(async_protected)),
            name="async_protected",
        ),
    ]
if LIB == "otp":
    from django_otp.decorators import otp_required
    from django_otp.views import LoginView as OtpLoginView

    urlpatterns += [
        # otp_required redirects anonymous and unverified users alike; login_required first, as for the others.
        path("protected/", login_required(otp_required(protected)), name="protected"),
        path("otp/login/", OtpLoginView.as_view(), name="otp_login"),
    ]
