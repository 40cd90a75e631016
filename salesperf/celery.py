"""Celery application: settings come from Django settings under CELERY_."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesperf.settings")

app = Celery("salesperf")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Every periodic job, in one place. django-celery-beat copies these into the
# database when beat starts, where an admin can change a schedule without a
# deploy (Admin → Periodic tasks). Times are in the company's time zone.
app.conf.beat_schedule = {
    # 03:30 every night: expired sessions and login-throttle records older than 30 days.
    "housekeeping-nightly": {
        "task": "accounts.tasks.housekeeping",
        "schedule": crontab(hour=3, minute=30),
    },
}
