"""Admin integration. ``MultifactorUserAdmin`` is mixed into a site's UserAdmin (kept from 0.9)."""

from django.contrib import admin
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _

from .models import Event, Key


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


class MultifactorUserAdmin(admin.ModelAdmin):
    """Mix into your UserAdmin: ``class StaffAdmin(UserAdmin, MultifactorUserAdmin)``."""

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
