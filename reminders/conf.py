"""The reminders app's settings, with their defaults, read when used.

Each value can be set in ``salesperf/settings.py`` under the name given; reading
at call time (not import time) lets tests use ``override_settings``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from django.conf import settings


def check_in_days() -> int:
    """REMINDER_CHECK_IN_DAYS: check in with the customer this many days after a won deal (30)."""
    return int(getattr(settings, "REMINDER_CHECK_IN_DAYS", 30))


def lead_no_contact_days() -> dict[str, int]:
    """REMINDER_LEAD_NO_CONTACT_DAYS: days without contact, by temperature."""
    return dict(
        getattr(settings, "REMINDER_LEAD_NO_CONTACT_DAYS", {"hot": 2, "warm": 7, "cold": 30})
    )


def estimate_expiring_days() -> int:
    """REMINDER_ESTIMATE_EXPIRING_DAYS: remind this many days before an estimate expires (3)."""
    return int(getattr(settings, "REMINDER_ESTIMATE_EXPIRING_DAYS", 3))


def goal_pace_below() -> Decimal:
    """REMINDER_GOAL_PACE_BELOW: a goal below this pace at mid-period is behind (0.8)."""
    return Decimal(str(getattr(settings, "REMINDER_GOAL_PACE_BELOW", "0.8")))


def sql_response_working_days() -> int:
    """SQL_RESPONSE_WORKING_DAYS: an SQL lead must be contacted within this many working days."""
    return int(getattr(settings, "SQL_RESPONSE_WORKING_DAYS", 1))


def digest_local_hour() -> int:
    """DIGEST_LOCAL_HOUR: the digest goes out at this hour of each user's own time zone (8)."""
    return int(getattr(settings, "DIGEST_LOCAL_HOUR", 8))


def claim_timeout() -> timedelta:
    """REMINDER_CLAIM_TIMEOUT: a claimed email not sent after this is given back (10 minutes)."""
    return getattr(settings, "REMINDER_CLAIM_TIMEOUT", timedelta(minutes=10))


def max_attempts() -> int:
    """REMINDER_MAX_ATTEMPTS: after this many failed sends an email is marked failed (5)."""
    return int(getattr(settings, "REMINDER_MAX_ATTEMPTS", 5))


def retry_delay(attempts: int) -> timedelta:
    """Back-off after a failed send: 30 seconds, doubling, at most 30 minutes."""
    return min(timedelta(seconds=30) * (2 ** max(0, attempts - 1)), timedelta(minutes=30))


def sweep_limit() -> int:
    """REMINDER_SWEEP_LIMIT: emails one sweeper or dispatcher run enqueues at most (1,000)."""
    return int(getattr(settings, "REMINDER_SWEEP_LIMIT", 1000))


def message_id_domain() -> str:
    return urlsplit(settings.SITE_URL).hostname or "salesperf.invalid"
