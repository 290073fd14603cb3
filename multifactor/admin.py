"""Admin integration. ``MultifactorUserAdmin`` is mixed into a site's UserAdmin (kept from 0.9)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IS_POPUP_VAR, IncorrectLookupParameters
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import Resolver404, resolve, reverse
from django.utils.html import format_html
from django.utils.inspect import get_func_args
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import audit, conf, flows, revocation, signals
from .models import Event, FallbackCode, Key, KeyType, RecoveryCode, TrustedBrowser


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


def _what_is_lost(user) -> list[str]:
    """What a reset takes from ``user``, in words for the confirmation page."""
    lost = []
    keys = [key for key in Key.objects.filter(user=user, confirmed=True) if key.type != KeyType.RECOVERY]
    for key in keys:
        if key.locked_at:
            lost.append(_("%(key)s (locked)") % {"key": key})
        elif not key.enabled:
            lost.append(_("%(key)s (disabled)") % {"key": key})
        else:
            lost.append(str(key))
    codes = RecoveryCode.objects.filter(key__user=user, key__confirmed=True, used_at__isnull=True).count()
    if codes:
        lost.append(
            ngettext("%(count)d unused recovery code", "%(count)d unused recovery codes", codes) % {"count": codes}
        )
    trusted = _trusted_browsers(user)
    if trusted:
        lost.append(ngettext("%(count)d trusted browser", "%(count)d trusted browsers", trusted) % {"count": trusted})
    return lost


def _trusted_browsers(user) -> int:
    """The user's trusted browsers that count now (none while ``TRUST_DAYS`` is 0); the reset ends them."""
    from . import models

    days = getattr(conf.get(), "TRUST_DAYS", 0)
    model = getattr(models, "TrustedBrowser", None)
    if not days or model is None:
        return 0
    rows = model.objects.filter(user=user)
    return (rows.usable(days) if hasattr(rows, "usable") else rows).count()


def _changelist_url(modeladmin, request) -> str:
    opts = modeladmin.model._meta
    return reverse(f"{modeladmin.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist")


def _requires_mfa(request, url) -> bool:
    """Whether ``url`` (the admin's change list) sits behind ``multifactor_protected`` asking this user for a
    factor, as ``decorator_include(multifactor_protected(factors=1), admin.site.urls)`` does."""
    from . import policy

    try:
        options = getattr(resolve(url).func, "multifactor_protected", None)
    except Resolver404:  # pragma: no cover - the URL was just reversed
        return False
    if not options or not policy._matches(request.user, options["user_filter"]):
        return False
    return policy.required_factors(options["factors"], request) > 0


def _reset(user, request) -> None:
    with transaction.atomic():
        for key in Key.objects.filter(user=user):
            key.delete()  # each deletion revokes its verifications in every session
        FallbackCode.objects.filter(user=user).delete()
        TrustedBrowser.objects.filter(user=user).delete()  # trusted browsers end with the keys they trusted
        revocation.revoke_user(user)
        audit.record("mfa_reset", user, request, admin=request.user.get_username())
    audit.notify(user, "mfa_reset")  # after the reset's transaction: no mail for a reset rolled back


@admin.action(description=_("Reset multi-factor authentication (delete every key)"), permissions=["change"])
def reset_multifactor(modeladmin, request, queryset):
    """Ask first (as Django's delete action does), listing what each selected user loses; on "Yes, I'm sure"
    delete their keys and recovery codes and end their verified sessions at once.

    An admin who resets their own account loses their verification too. If the admin asks them for a factor
    (``multifactor_protected`` around it), they are sent straight to enrol a new key, and come back to the
    change list afterwards; otherwise they stay, with a link to enrol."""
    users = list(queryset)
    if not request.POST.get("post"):
        return _confirm_reset(modeladmin, request, users)
    for user in users:
        _reset(user, request)
    count = len(users)
    modeladmin.message_user(
        request,
        ngettext(
            "Multi-factor authentication was reset for %(count)d user.",
            "Multi-factor authentication was reset for %(count)d users.",
            count,
        )
        % {"count": count},
        messages.SUCCESS,
    )
    if request.user.pk not in {user.pk for user in users}:
        return None  # back to the change list
    back = _changelist_url(modeladmin, request)
    add = reverse("multifactor:add")
    if _requires_mfa(request, back):
        messages.warning(
            request,
            _(
                "You reset your own multi-factor authentication. The admin asks for a key: add a new one now, "
                "and you will be taken back to the admin."
            ),
        )
        flows.remember_next(request, back)
        return redirect(add)
    messages.warning(
        request,
        format_html(
            _(
                'You reset your own multi-factor authentication. <a href="{}">Add a new key</a> to protect your '
                "account again."
            ),
            add,
        ),
    )
    return None


def _confirm_reset(modeladmin, request, users):
    opts = modeladmin.model._meta
    me = request.user.pk
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Reset multi-factor authentication?"),
        "subtitle": None,
        "opts": opts,
        "users": [{"user": user, "lost": _what_is_lost(user), "is_you": user.pk == me} for user in users],
        "includes_you": any(user.pk == me for user in users),
        "you_need_a_key": any(user.pk == me for user in users)
        and _requires_mfa(request, _changelist_url(modeladmin, request)),
        "count": len(users),
        "trust_on": bool(getattr(conf.get(), "TRUST_DAYS", 0)),
        "notify": conf.get().NOTIFY_USER,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "cancel_url": _changelist_url(modeladmin, request) + ("?" + request.GET.urlencode() if request.GET else ""),
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(
        request,
        getattr(modeladmin, "reset_multifactor_confirmation_template", None)
        or [
            f"admin/{opts.app_label}/{opts.model_name}/multifactor_reset_confirmation.html",
            "admin/multifactor/reset_confirmation.html",
        ],
        context,
    )


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


@admin.register(TrustedBrowser)
class TrustedBrowserAdmin(admin.ModelAdmin):
    """Each user's trusted browsers (filter or search by user). Deleting one ends it in every session: the
    user's revision is raised with it. The MFA reset deletes them all."""

    list_display = ("user", "key", "user_agent", "created_at", "last_used_at", "expires_at")
    list_filter = ("created_at",)
    search_fields = ("user__username", "user_agent")
    list_select_related = ("user", "key")
    readonly_fields = ("user", "key", "user_agent", "created_at", "expires_at", "last_used_at")
    exclude = ("token_hash", "password_mac")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        revocation.bump({obj.user_id})

    def delete_queryset(self, request, queryset):
        users = set(queryset.values_list("user_id", flat=True))
        super().delete_queryset(request, queryset)
        revocation.bump(users)
