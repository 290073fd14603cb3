"""django-multifactor 0.9.x's ``UserKey``, back as a proxy of ``Key`` (multifactor/models/userkey.py): no table."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("multifactor", "0011_revocation_marker"),
    ]

    operations = [
        migrations.CreateModel(
            name="UserKey",
            fields=[],
            options={"proxy": True, "indexes": [], "constraints": []},
            bases=("multifactor.key",),
        ),
    ]
