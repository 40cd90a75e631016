"""Background work of the reminders app. Tasks are thin: they take ids or ISO
dates and call services; exactly-once sending is the services' business (claims
in the database), so a task that runs twice sends nothing twice.

Schedules (salesperf/celery.py): ``create_reminders_today`` daily at 06:00,
``create_sql_reminders_now`` hourly, ``dispatch_reminders`` every minute,
``sweep_reminders`` every five minutes, ``create_digests`` every 15 minutes.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from celery import shared_task
from celery.exceptions import MaxRetriesExceededError
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from reminders import conf, digests, rules, services

logger = logging.getLogger(__name__)

# Errors of the database (restarting, connection dropped) while claiming: the
# task is retried with backoff; the row is untouched, or claimed and given back
# by the sweeper. SMTP errors are recorded on the row by the service, which
# says when to try again.
DATABASE_ERRORS = (OperationalError, InterfaceError)


# Sending tasks: a database outage retries the task with a growing delay (SMTP errors
# are pushed back on the email's row instead, see ``_retry_later``).
SEND_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "autoretry_for": DATABASE_ERRORS,
    "retry_backoff": 5,
    "retry_backoff_max": 5 * 60,
    "retry_jitter": True,
    "max_retries": 10,
}


def _moment(at: str | None) -> datetime:
    return datetime.fromisoformat(at) if at else timezone.now()


@shared_task(**SEND_TASK_OPTIONS)
def send_reminder_email(self, reminder_id: int) -> str:  # type: ignore[no-untyped-def]
    """Claim, send and mark sent one reminder email (Message-ID ``<reminder.{id}@…>``).

    Queued by the dispatcher and the sweeper; a copy that finds the email
    claimed or sent does nothing. A failed send is pushed back on its row
    (doubling delay) and this task retries itself then; after
    REMINDER_MAX_ATTEMPTS the row is failed with its last error.
    """
    outcome = services.reminder_email_send(reminder_id=reminder_id, now=timezone.now())
    return _retry_later(self, outcome)


@shared_task(**SEND_TASK_OPTIONS)
def send_digest(self, digest_id: int) -> str:  # type: ignore[no-untyped-def]
    """Claim, send and mark sent one daily digest (Message-ID ``<digest.{id}@…>``)."""
    outcome = digests.digest_send(digest_id=digest_id, now=timezone.now())
    return _retry_later(self, outcome)


def _retry_later(task, outcome: services.SendOutcome) -> str:  # type: ignore[no-untyped-def]
    if outcome.retry_in is None or task.request.is_eager:
        return outcome.result
    try:
        raise task.retry(
            countdown=outcome.retry_in.total_seconds(), max_retries=conf.max_attempts() + 10
        )
    except MaxRetriesExceededError:
        # The row is pending with its next attempt set: the dispatcher queues it.
        return outcome.result


@shared_task
def dispatch_reminders(at: str | None = None) -> int:
    """Every minute: queue the reminder and digest emails that are due and not queued yet."""
    now = _moment(at)
    return services.reminders_enqueue_due(now=now) + services.digests_enqueue_due(now=now)


@shared_task
def sweep_reminders(at: str | None = None) -> dict[str, int]:
    """Every five minutes: give back stale claims and queue every pending, due email.

    A Redis that lost its queue loses nothing: PostgreSQL still says what is due.
    """
    return services.emails_sweep(now=_moment(at))


@shared_task
def create_reminders(day_iso: str, at: str | None = None) -> dict[str, int]:
    """Run every reminder rule for the company day ``day_iso`` (safe to repeat)."""
    counts = rules.run_rules(today=date.fromisoformat(day_iso), now=_moment(at))
    logger.info("Reminders created for %s: %s", day_iso, counts)
    return counts


@shared_task
def create_reminders_today() -> dict[str, int]:
    """Daily at 06:00: the company date is computed here, once, and passed on."""
    now = timezone.now()
    return create_reminders(timezone.localdate(now).isoformat(), now.isoformat())


@shared_task
def create_sql_reminders_now() -> int:
    """Hourly: SQL leads not contacted in time (the response time is counted in hours)."""
    now = timezone.now()
    return rules.rule_sql_not_contacted(today=timezone.localdate(now), now=now)


@shared_task
def create_digests(at: str | None = None) -> int:
    """Every 15 minutes: the digests of users whose local 8:00 has passed today."""
    now = _moment(at)
    created = digests.digests_create_due(now=now)
    services.digests_enqueue_due(now=now)
    return created
