"""Admin integration. ``MultifactorUserAdmin`` is mixed into a site's UserAdmin (kept from 0.9)."""

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IS_POPUP_VAR, IncorrectLookupParameters
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils.inspect import get_func_args
from django.utils.translation import gettext_lazy as _

from . import audit, revocation, signals
from .models import Event, FallbackCode, Key


class KeyForm(forms.ModelForm):
    """An admin may disable a key, but not enable one that was locked: it must be enrolled again (R4)."""

    class Meta:
        model = Key
        fields = ("name", "enabled")

    def clean_enabled(self):
        enabled = self.cleaned_data.get("enabled")
        if enabled and self.instance.pk and self.instance.locked_at and not self.instance.enabled:
            raise forms.ValidationError(_("A locked key must be enrolled again; it cannot be enabled."))
        return enabled


def _announce_changes(request, changed, deleted):
    """Send the signals the user's own pages send (audit trail, notices) for keys changed in the admin."""
    admin_name = request.user.get_username()
    for key in changed:
        signals.key_toggled.send(Key, key=key, enabled=key.enabled, user=key.user, request=request, admin=admin_name)
    for key, pk in deleted:
        signals.key_removed.send(Key, key=key, key_pk=pk, user=key.user, request=request, admin=admin_name)


class KeyInline(admin.TabularInline):
    model = Key
    form = KeyForm
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
    """``?multifactor=yes`` / ``no``; 0.9.x's ``True`` / ``False`` (bookmarked change lists) mean the same. Any
    other value is refused as Django refuses a bad lookup (the change list shows its error), not ignored."""

    title = _("multifactor")
    parameter_name = "multifactor"
    SPELLINGS = {"yes": "yes", "no": "no", "True": "yes", "False": "no"}

    def lookups(self, request, model_admin):
        return (("yes", _("Has enabled keys")), ("no", _("No enabled keys")))

    def value(self):
        value = super().value()
        return self.SPELLINGS.get(value, value)

    def queryset(self, request, queryset):
        active = Exists(Key.objects.active().filter(user=OuterRef("pk")))
        if self.value() == "yes":
            return queryset.filter(active)
        if self.value() == "no":
            return queryset.filter(~active)
        if self.value() is not None:
            raise IncorrectLookupParameters(f"multifactor={self.value()!r}")
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
        audit.notify(user, "mfa_reset")  # after the reset's transaction: no mail for a reset rolled back
        count += 1
    modeladmin.message_user(request, _("Multi-factor authentication was reset for %(n)d user(s).") % {"n": count})


# django-multifactor 0.9.x's names for them.
HasMultifactorFilter = HasKeysFilter
MultiFactorInline = KeyInline


class MultifactorUserAdmin(admin.ModelAdmin):
    """Mix into your UserAdmin: ``class StaffAdmin(UserAdmin, MultifactorUserAdmin)``.

    Every hook extends what the other bases return, so it combines with other admin mixins. As in 0.9.x, a
    site turns a part off with ``multifactor_list_display``, ``multifactor_filter`` or ``multifactor_inline =
    False`` (and may then place ``"multifactor"``, ``HasMultifactorFilter`` or ``MultiFactorInline`` itself).
    """

    multifactor_list_display = True
    multifactor_filter = True
    multifactor_inline = True

    def get_actions(self, request, action_location=None):
        # Django 6.1 passes action_location (and looks for that parameter by name); 5.2 and 6.0 do not, and
        # another mixin further along may not take it yet.
        parent = super().get_actions
        if action_location is not None and "action_location" in get_func_args(parent):
            actions = parent(request, action_location=action_location)
        else:
            actions = parent(request)
        if getattr(action_location, "name", "CHANGE_LIST") != "CHANGE_LIST":
            return actions  # the reset action belongs on the change list only
        if self.actions is None or IS_POPUP_VAR in request.GET:
            return actions  # the site switched actions off here
        if self.has_change_permission(request):
            actions["reset_multifactor"] = (reset_multifactor, "reset_multifactor", reset_multifactor.short_description)
        return actions

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        if not self.multifactor_list_display or "multifactor" in shown:
            return shown
        return (*shown, "multifactor")

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        if not self.multifactor_filter or HasKeysFilter in filters:
            return filters
        return (*filters, HasKeysFilter)

    def get_inlines(self, request, obj):
        inlines = super().get_inlines(request, obj)
        if not self.multifactor_inline or KeyInline in inlines:
            return inlines
        return (*inlines, KeyInline)

    def get_queryset(self, request):
        active = Exists(Key.objects.active().filter(user=OuterRef("pk")))
        return super().get_queryset(request).annotate(_multifactor_enabled=active)

    def save_formset(self, request, form, formset, change):
        ours = formset.model is Key
        pks = {id(f.instance): f.instance.pk for f in formset.forms} if ours else {}  # a deleted key loses its pk
        super().save_formset(request, form, formset, change)
        if ours:
            toggled = [key for key, fields in formset.changed_objects if "enabled" in fields]
            _announce_changes(request, toggled, [(key, pks.get(id(key))) for key in formset.deleted_objects])

    @admin.display(boolean=True, description=_("MFA"), ordering="_multifactor_enabled")
    def multifactor(self, obj):
        """The column (named as in 0.9.x): the user has enabled keys."""
        return getattr(obj, "_multifactor_enabled", None)

    multifactor_enabled = multifactor  # this library's name for it before 1.0


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """The audit trail: read-only, searchable, filterable."""

    list_display = ("created_at", "username", "kind", "key_type", "key_id", "ip")
    list_filter = ("kind", "key_type", "created_at")
    search_fields = ("username", "ip", "user_agent")
    # No date_hierarchy: on MySQL/MariaDB it needs the server's time-zone tables, which many do not load.
    readonly_fields = [f.name for f in Event._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # an audit trail: old events go with `manage.py multifactor_prune_events`


@admin.register(Key)
class KeyAdmin(admin.ModelAdmin):
    """Every key: searchable and filterable; an admin may disable or delete one, never see its secrets."""

    list_display = ("__str__", "user", "type", "enabled", "locked_at", "created_at", "last_used_at")
    list_filter = ("type", "enabled", "created_at", "last_used_at")
    search_fields = ("name", "user__username", "user__email")
    fields = ("user", "type", "name", "enabled", "created_at", "last_used_at", "locked_at", "sign_count", "aaguid")
    readonly_fields = ("user", "type", "created_at", "last_used_at", "locked_at", "sign_count", "aaguid")
    list_select_related = ("user",)
    form = KeyForm

    def get_queryset(self, request):
        return super().get_queryset(request).filter(confirmed=True)

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "enabled" in form.changed_data:
            _announce_changes(request, [obj], [])

    def delete_model(self, request, obj):
        pk = obj.pk
        super().delete_model(request, obj)
        _announce_changes(request, [], [(obj, pk)])

    def delete_queryset(self, request, queryset):
        keys = [(key, key.pk) for key in queryset.select_related("user")]
        super().delete_queryset(request, queryset)
        _announce_changes(request, [], keys)
