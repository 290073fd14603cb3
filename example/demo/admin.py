"""The user admin with multifactor's column, filter, inline and reset action mixed in."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from multifactor.admin import MultifactorUserAdmin

User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class DemoUserAdmin(MultifactorUserAdmin, UserAdmin):
    pass
