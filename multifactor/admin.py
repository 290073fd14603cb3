"""Admin integration. ``MultifactorUserAdmin`` is mixed into a site's UserAdmin (kept from 0.9)."""

from django.contrib import admin
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _

from . import audit, revocation
from .models import Event, FallbackCode, Key


class KeyInline(admin.TabularInline):
    model = Key
    fk_name = "user"
    fields = ("type", "name", "enabled", "created_at", "last_used_at", "locked_at")
    readonly_fields = ("type", "created_at", "last_used_at", "locked_at")
    extra = 0
    can_delete = True

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).filter(confirmed=True)


class HasKeysFilter(admin.SimpleListFilter):
    title = _("multifactor")
    parameter_name = "multifactor"

    def lookups(self, request, model_admin):
        return (("yes", _("Has enabled keys")), ("no", _("No enabled keys")))

    def queryset(self, request, queryset):
        active = Exists(Key.objects.active().filter(user=OuterRef("pk")))
        if self.value() == "yes":
            return queryset.filter(active)
        if self.value() == "no":
            return queryset.filter(~active)
        return queryset


@admin.action(description=_("Reset multi-factor authentication (delete every key)"), permissions=["change"])
def reset_multifactor(modeladmin, request, queryset):
    """Delete the selected users' keys and recovery codes; their verified sessions end at once."""
    count = 0
    for user in queryset:
        with transaction.atomic():
            for key in Key.objects.filter(user=user):
                key.delete()  # each deletion revokes its verifications in every session
            FallbackCode.objects.filter(user=user).delete()
            revocation.revoke_user(user)
            audit.record("mfa_reset", user, request, admin=request.user.get_username())
        count += 1
    modeladmin.message_user(request, _("Multi-factor authentication was reset for %(n)d user(s).") % {"n": count})


class MultifactorUserAdmin(admin.ModelAdmin):
    """Mix into your UserAdmin: ``class StaffAdmin(UserAdmin, MultifactorUserAdmin)``.

    Every hook extends what the other bases return, so it combines with other admin mixins.
    """

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.has_change_permission(request):
            actions["reset_multifactor"] = (reset_multifactor, "reset_multifactor", reset_multifactor.short_description)
        return actions

    def get_list_display(self, request):
        return (*super().get_list_display(request), "multifactor_enabled")

    def get_list_filter(self, request):
        return (*super().get_list_filter(request), HasKeysFilter)

    def get_inlines(self, request, obj):
        return (*super().get_inlines(request, obj), KeyInline)

    def get_queryset(self, request):
        active = Exists(Key.objects.active().filter(user=OuterRef("pk")))
        return super().get_queryset(request).annotate(_multifactor_enabled=active)

    @admin.display(boolean=True, description=_("MFA"), ordering="_multifactor_enabled")
    def multifactor_enabled(self, obj):
        return getattr(obj, "_multifactor_enabled", None)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """The audit trail: read-only, searchable, filterable."""

    list_display = ("created_at", "username", "kind", "key_type", "key_id", "ip")
    list_filter = ("kind", "key_type", "created_at")
    search_fields = ("username", "ip", "user_agent")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Event._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Key)
class KeyAdmin(admin.ModelAdmin):
    """Every key: searchable and filterable; an admin may disable or delete one, never see its secrets."""

    list_display = ("__str__", "user", "type", "enabled", "locked_at", "created_at", "last_used_at")
    list_filter = ("type", "enabled", "created_at", "last_used_at")
    search_fields = ("name", "user__username", "user__email")
    fields = ("user", "type", "name", "enabled", "created_at", "last_used_at", "locked_at", "sign_count", "aaguid")
    readonly_fields = ("user", "type", "created_at", "last_used_at", "locked_at", "sign_count", "aaguid")
    list_select_related = ("user",)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(confirmed=True)

    def has_add_permission(self, request):
        return False
