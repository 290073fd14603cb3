"""The demo's URLs: multifactor installed exactly as the README says, plus a few pages to try it on."""

from decorator_include import decorator_include
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from multifactor.decorators import multifactor_protected

from . import views

urlpatterns = [
    path("multifactor/", include("multifactor.urls")),
    path("admin/", decorator_include(multifactor_protected(factors=1), admin.site.urls)),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("protected/", views.protected, name="protected"),
    path("step-up/", views.step_up, name="step-up"),
]
