"""``path("...", include("multifactor.urls"))`` (namespace ``multifactor``), at any prefix."""

from django.urls import path, re_path

from . import api, openapi, views
from .factors.fallback import api as fallback_api
from .factors.fallback import views as fallback_views
from .factors.fido2 import api as fido2_api
from .factors.fido2 import views as fido2_views
from .factors.recovery import api as recovery_api
from .factors.recovery import views as recovery_views
from .factors.totp import api as totp_api
from .factors.totp import views as totp_views
from .trust import api as trust_api
from .trust import views as trust_views

app_name = "multifactor"

urlpatterns = [
    path("", views.Home.as_view(), name="home"),
    path("<str:action>:<str:ident>/", views.Action.as_view(), name="action"),
    path("rename/<int:pk>/", views.Rename.as_view(), name="rename"),
    path("delete/<int:pk>/", views.Delete.as_view(), name="delete"),
    path("add/", views.Add.as_view(), name="add"),
    path("help/", views.Help.as_view(), name="help"),
    path("authenticate/", views.Authenticate.as_view(), name="authenticate"),
    path("logout/", views.Logout.as_view(), name="logout"),
    path("fido2/new/", fido2_views.Start.as_view(), name="fido2_start"),
    path("fido2/auth/", fido2_views.Auth.as_view(), name="fido2_auth"),
    path("fido2/register/", fido2_views.Register.as_view(), name="fido2_register"),
    path("fido2/authenticate/", fido2_views.Authenticate.as_view(), name="fido2_authenticate"),
    path("passkey/", fido2_views.PasskeyLogin.as_view(), name="passkey_login"),
    path("passkey/complete/", fido2_views.PasskeyComplete.as_view(), name="passkey_complete"),
    path("totp/new/", totp_views.Start.as_view(), name="totp_start"),
    path("totp/auth/", totp_views.Auth.as_view(), name="totp_auth"),
    path("recovery/", recovery_views.Start.as_view(), name="recovery_start"),
    path("recovery/auth/", recovery_views.Auth.as_view(), name="recovery_auth"),
    path("fallback/auth/", fallback_views.Auth.as_view(), name="fallback_auth"),
    # JSON API
    path("api/v1/status", api.Status.as_view(), name="api-status"),
    path("api/v1/keys", api.Keys.as_view(), name="api-keys"),
    path("api/v1/keys/<str:key_id>", api.KeyDetail.as_view(), name="api-key"),
    path("api/v1/totp/begin", totp_api.Begin.as_view(), name="api-totp-begin"),
    path("api/v1/totp/activate", totp_api.Activate.as_view(), name="api-totp-activate"),
    path("api/v1/totp/authenticate", totp_api.Authenticate.as_view(), name="api-totp-authenticate"),
    path("api/v1/recovery-codes", recovery_api.Codes.as_view(), name="api-recovery-codes"),
    path("api/v1/recovery-codes/authenticate", recovery_api.Authenticate.as_view(), name="api-recovery-authenticate"),
    path("api/v1/fallback/send", fallback_api.Send.as_view(), name="api-fallback-send"),
    path("api/v1/fallback/authenticate", fallback_api.Authenticate.as_view(), name="api-fallback-authenticate"),
    path("api/v1/webauthn/register/begin", fido2_api.RegisterBegin.as_view(), name="api-webauthn-register-begin"),
    path(
        "api/v1/webauthn/register/complete", fido2_api.RegisterComplete.as_view(), name="api-webauthn-register-complete"
    ),
    path(
        "api/v1/webauthn/authenticate/begin",
        fido2_api.AuthenticateBegin.as_view(),
        name="api-webauthn-authenticate-begin",
    ),
    path(
        "api/v1/webauthn/authenticate/complete",
        fido2_api.AuthenticateComplete.as_view(),
        name="api-webauthn-authenticate-complete",
    ),
    path("api/v1/passkey/begin", fido2_api.PasskeyBegin.as_view(), name="api-passkey-begin"),
    path("api/v1/passkey/complete", fido2_api.PasskeyComplete.as_view(), name="api-passkey-complete"),
    path("api/v1/openapi.json", openapi.OpenApi.as_view(), name="api-openapi"),
    path("trusted-browsers/revoke/", trust_views.RevokeTrust.as_view(), name="trust_revoke_all"),
    path("trusted-browsers/<int:pk>/revoke/", trust_views.RevokeTrust.as_view(), name="trust_revoke"),
    path("sessions/sign-out/", trust_views.SignOut.as_view(), name="sessions_sign_out"),
    path("sessions/<int:pk>/sign-out/", trust_views.SignOut.as_view(), name="session_sign_out"),
    path("api/v1/trusted-browsers", trust_api.TrustedBrowsers.as_view(), name="api-trusted-browsers"),
    path("api/v1/trusted-browsers/<str:trust_id>", trust_api.TrustedBrowser.as_view(), name="api-trusted-browser"),
    path("api/v1/sessions", trust_api.Sessions.as_view(), name="api-sessions"),
    path("api/v1/sessions/<str:session_id>", trust_api.Session.as_view(), name="api-session"),
    re_path(r"^api/", api.NotFound.as_view(), name="api-not-found"),  # JSON 404, not the site's HTML page
]
