"""A partial index of the open estimates by owner: a team's pipeline."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0004_deal_lead_created_at"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="estimate",
            index=models.Index(
                condition=models.Q(("status", "draft"), ("status", "sent"), _connector="OR"),
                fields=["owner", "valid_until"],
                name="estimate_open_owner",
            ),
        ),
    ]
