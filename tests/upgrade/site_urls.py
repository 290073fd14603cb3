"""The upgrading site's URLs: the same before and after the package swap."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.urls import include, path

from multifactor.decorators import multifactor_protected

try:  # in process (tests/test_compat_site.py): tests.upgrade.site_urls; in the sites' subprocesses: site_urls
    from . import site_views
except ImportError:
    import site_views


def protected(request):
    return HttpResponse("protected ok")


def done(request):
    return HttpResponse("done")


staff_site = admin.AdminSite(name="siteadmin")
staff_site.register(get_user_model(), site_views.StaffAdmin)

urlpatterns = [
    path("mf/", include("multifactor.urls")),
    path("protected/", login_required(multifactor_protected(factors=1)(protected))),
    path("done/", done),
    path("admin/", staff_site.urls),
    path("", include(site_views.urlpatterns)),
]
