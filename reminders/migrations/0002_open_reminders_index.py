"""Someone's open reminders in due order from one partial index (the panel, the list)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reminders", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="reminder",
            name="reminder_user_status",
        ),
        migrations.AddIndex(
            model_name="reminder",
            index=models.Index(
                condition=models.Q(("status", "open"), ("status", "snoozed"), _connector="OR"),
                fields=["user", "due_on", "id"],
                include=("status", "snoozed_until"),
                name="reminder_open_user_due",
            ),
        ),
    ]
