from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MultifactorConfig(AppConfig):
    name = "multifactor"
    verbose_name = _("Multi-factor authentication")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.contrib.auth.signals import user_logged_out

        from . import audit, checks, factors, revocation  # noqa: F401  (registers checks and factor types)

        audit.connect()

        def forget(sender, request, **kwargs):
            if request is not None and hasattr(request, "session"):
                revocation.forget_session(request.session.session_key)

        user_logged_out.connect(forget, dispatch_uid="multifactor.forget_session")
