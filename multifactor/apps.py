from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MultifactorConfig(AppConfig):
    name = "multifactor"
    verbose_name = _("Multi-factor authentication")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        """Wire the services to the models' signals here, so that models never import the layers above them."""
        from django.db.models.signals import post_delete, post_save

        from . import audit, checks, factors, revocation, signals  # noqa: F401  (registers checks and factor types)
        from .models import Key
        from .trust import checks as trust

        audit.connect()
        post_save.connect(revocation.on_key_saved, sender=Key, dispatch_uid="multifactor.revoke_on_save")
        post_delete.connect(revocation.on_key_deleted, sender=Key, dispatch_uid="multifactor.revoke_on_delete")
        signals.keys_changed.connect(revocation.on_keys_changed, dispatch_uid="multifactor.revoke_on_update")
        trust.connect()
