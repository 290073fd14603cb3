from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("multifactor", "0002_auto_20190823_2128")]
    operations = [
        migrations.AddField(
            model_name="userkey",
            name="name",
            field=models.CharField(blank=True, max_length=30, null=True),
        ),
    ]
