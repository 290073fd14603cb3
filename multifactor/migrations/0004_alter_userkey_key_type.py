from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("multifactor", "0003_userkey_name")]
    operations = []  # 0.9.x changed only the field's choices here
