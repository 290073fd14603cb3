"""The contract's "Installing it in a site" layout, exactly, plus the custom admin site of tests/admin_site.py
and the suite's protected views (tests/views.py). Used by tests/test_admin.py."""

from decorator_include import decorator_include
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from multifactor.decorators import multifactor_protected

from . import views
from .admin_site import site

urlpatterns = [
    path("multifactor/", include("multifactor.urls")),
    path("admin/", decorator_include(multifactor_protected(factors=1), admin.site.urls)),
    path("staff-admin/", site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="tests/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include(views.urlpatterns)),
]
