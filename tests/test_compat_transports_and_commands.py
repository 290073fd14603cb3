"""0.9.x's development transport ``multifactor.factors.fallback.debug_print_console`` (a fallback code through the
real fallback page) and its ``manage.py prune_mfa_attempts`` (the cron jobs' command)."""

import datetime
import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from multifactor.factors.fallback import debug_print_console
from multifactor.models import Event
from tests.mfa_helpers import mf_settings

FALLBACK = "/multifactor/fallback/auth/"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_debug_print_console_carries_a_fallback_code(signed_in, user, totp_key, capsys):
    """0.9's docs and test settings: ``"FALLBACKS": {"console": (..., "...fallback.debug_print_console")}``."""
    console = {"console": (lambda user: "the console", "multifactor.factors.fallback.debug_print_console")}
    with mf_settings(FALLBACKS=console):
        sent = signed_in.post(FALLBACK, {"send": "1"})
        printed = capsys.readouterr().out
        assert sent.status_code == 302 and printed.startswith("alice ")
        code = re.search(r"\b(\d{8})\b", printed).group(1)
        assert signed_in.post(FALLBACK, {"otp": code})["Location"] == "/done/"  # verified


def test_debug_print_console_warns_and_names_its_replacement(capsys, user):
    with pytest.warns(DeprecationWarning, match="send_console"):
        assert debug_print_console(user, "hello") == "command line"
    assert capsys.readouterr().out == "alice hello\n"


def events(user, kind, days_ago):
    at = timezone.now() - datetime.timedelta(days=days_ago)
    return Event.objects.create(user=user, username=user.get_username(), kind=kind, created_at=at)


@pytest.fixture
def history(user):
    old = [events(user, "key_used", 100), events(user, "verification_failed", 95)]
    recent = [events(user, "verification_failed", 10), events(user, "key_used", 1)]
    kept = [events(user, "key_added", 400), events(user, "mfa_reset", 200)]  # not attempts: other audit events
    return old, recent, kept


def prune(*args):
    out = io.StringIO()
    call_command("prune_mfa_attempts", *args, stdout=out)
    return out.getvalue().strip()


def remaining():
    return sorted(Event.objects.values_list("kind", flat=True))


def test_prune_mfa_attempts_deletes_attempts_older_than_90_days(history):
    assert prune() == "Deleted 2 attempt(s)."
    assert remaining() == ["key_added", "key_used", "mfa_reset", "verification_failed"]


def test_prune_mfa_attempts_reads_attempt_retention_days_and_days(history):
    with mf_settings(ATTEMPT_RETENTION_DAYS=5):
        assert prune() == "Deleted 3 attempt(s)."
    assert prune("--days", "0") == "Deleted 1 attempt(s)."
    assert remaining() == ["key_added", "mfa_reset"]


def test_prune_mfa_attempts_refuses_negative_days(history):
    with pytest.raises(CommandError):
        prune("--days", "-1")
