"""The upgrading site's URLs: the same before and after the package swap."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.urls import include, path

from multifactor.decorators import multifactor_protected


def protected(request):
    return HttpResponse("protected ok")


def done(request):
    return HttpResponse("done")


urlpatterns = [
    path("mf/", include("multifactor.urls")),
    path("protected/", login_required(multifactor_protected(factors=1)(protected))),
    path("done/", done),
]
