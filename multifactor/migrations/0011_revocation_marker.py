"""One revocation design for every session engine: a per-user revision counter replaces the index of
sessions (revocation no longer edits stored sessions)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("multifactor", "0010_webauthn_challenge"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Revision",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="multifactor_revision",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("value", models.BigIntegerField(default=0)),
                ("reset_at", models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.DeleteModel(name="SessionVerification"),
    ]
