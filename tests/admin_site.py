"""An admin site of its own for tests/test_admin.py: the contract's ``StaffAdmin(UserAdmin, MultifactorUserAdmin)``
with the key and event admins, so that the default ``admin.site`` the other tests use is left as it is."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from multifactor.admin import EventAdmin, KeyAdmin, MultifactorUserAdmin
from multifactor.models import Event, Key

site = admin.AdminSite(name="staffadmin")


class StaffAdmin(UserAdmin, MultifactorUserAdmin):
    pass


site.register(get_user_model(), StaffAdmin)
site.register(Key, KeyAdmin)
site.register(Event, EventAdmin)
