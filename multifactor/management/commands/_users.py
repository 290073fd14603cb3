"""Shared by the commands: find users by username (clear errors for unknown ones)."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def find_users(usernames):
    User = get_user_model()
    field = User.USERNAME_FIELD
    found = {getattr(u, field): u for u in User.objects.filter(**{f"{field}__in": usernames})}
    missing = [name for name in usernames if name not in found]
    if missing:
        raise CommandError(f"Unknown user(s): {', '.join(missing)}")
    return [found[name] for name in usernames]
