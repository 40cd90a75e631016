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
    # 00:15 every night: sent estimates past their "valid until" become expired.
    "leads-expire-estimates": {
        "task": "leads.tasks.expire_estimates",
        "schedule": crontab(hour=0, minute=15),
    },
    # 00:20 every night: open leads warm up as their buying timeframe draws near.
    "leads-refresh-temperatures": {
        "task": "leads.tasks.refresh_temperatures",
        "schedule": crontab(hour=0, minute=20),
    },
    # 02:10 every night: learn the win probabilities from the decided leads.
    "leads-recompute-win-model": {
        "task": "leads.tasks.recompute_win_model",
        "schedule": crontab(hour=2, minute=10),
    },
    # 02:30 every night, after the model: rescore open leads (decay, engagement, probability).
    "leads-rescore-open-leads": {
        "task": "leads.tasks.rescore_open_leads",
        "schedule": crontab(hour=2, minute=30),
    },
    # 02:15 every night, after the estimates expired: KPI facts up to yesterday —
    # yesterday, the week before, and the older days late edits touched.
    "kpis-nightly": {
        "task": "goals.tasks.compute_kpis_nightly",
        "schedule": crontab(hour=2, minute=15),
    },
    # 02:40 every night, after the nightly KPI facts: freeze the forecasts due today
    # (first day of a month, quarter or year; weekly on Mondays) for forecast accuracy.
    "forecast-snapshots": {
        "task": "goals.tasks.take_forecast_snapshots_today",
        "schedule": crontab(hour=2, minute=40),
    },
    # 04:00 on Sundays: rebuild the last 400 days of facts (deals deleted or moved
    # off an old day, territories changed): about 35 s on the large data set.
    "kpis-weekly-rebuild": {
        "task": "goals.tasks.compute_kpis_rebuild",
        "schedule": crontab(hour=4, minute=0, day_of_week="sun"),
    },
    # Every minute: send the survey invitations and reminders that are due (claimed, sent once).
    "feedback-dispatch-surveys": {
        "task": "feedback.tasks.dispatch_surveys",
        "schedule": crontab(),
    },
    # Every five minutes: give back survey emails claimed by a worker that died.
    "feedback-sweep-survey-claims": {
        "task": "feedback.tasks.sweep_survey_claims",
        "schedule": crontab(minute="*/5"),
    },
    # 03:30 every night: expired sessions and login-throttle records older than 30 days.
    "housekeeping-nightly": {
        "task": "accounts.tasks.housekeeping",
        "schedule": crontab(hour=3, minute=30),
    },
    # 06:00 every day, after the nightly KPI facts (goal pace reads them): every
    # reminder rule for the company day (safe to repeat: unique keys).
    "reminders-create-daily": {
        "task": "reminders.tasks.create_reminders_today",
        "schedule": crontab(hour=6, minute=0),
    },
    # Every hour at :05: SQL leads not contacted within their response time,
    # counted in working hours, so a daily run would be up to a day late.
    "reminders-create-sql-hourly": {
        "task": "reminders.tasks.create_sql_reminders_now",
        "schedule": crontab(minute=5),
    },
    # Every minute: queue the reminder and digest emails that are due (claimed, sent once).
    "reminders-dispatch": {
        "task": "reminders.tasks.dispatch_reminders",
        "schedule": crontab(),
    },
    # Every five minutes: give back stale reminder/digest claims and queue every
    # pending, due email again (a Redis that lost its queue loses nothing).
    "reminders-sweep": {
        "task": "reminders.tasks.sweep_reminders",
        "schedule": crontab(minute="*/5"),
    },
    # Every 15 minutes: the daily digest of each user whose local 8:00 has passed.
    "reminders-create-digests": {
        "task": "reminders.tasks.create_digests",
        "schedule": crontab(minute="*/15"),
    },
}
