"""The nightly housekeeping job: old sessions and login-throttle records go, recent ones stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.tasks import housekeeping
from salesperf.celery import app

pytestmark = pytest.mark.django_db


def _attempt(when, ip: str) -> AccessAttempt:
    attempt = AccessAttempt.objects.create(
        username="x@example.com", ip_address=ip, user_agent="", failures_since_start=1
    )
    AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=when)
    return attempt


def test_housekeeping_deletes_only_what_is_past_its_cutoff() -> None:
    now = timezone.now()
    old = _attempt(now - timedelta(days=31), ip="10.0.0.1")
    recent = _attempt(now - timedelta(days=2), ip="10.0.0.2")
    expired, live = SessionStore(), SessionStore()
    expired.create()
    live.create()
    Session.objects.filter(session_key=expired.session_key).update(
        expire_date=now - timedelta(minutes=1)
    )

    deleted = housekeeping.delay().get()

    assert deleted["sessions"] == 1 and deleted["access_attempts"] == 1
    assert list(AccessAttempt.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not AccessAttempt.objects.filter(pk=old.pk).exists()
    assert Session.objects.filter(session_key=live.session_key).exists()
    # Safe to repeat: a second run finds nothing more.
    assert housekeeping.delay().get() == dict.fromkeys(deleted, 0)


def test_housekeeping_is_scheduled_every_night() -> None:
    entry = app.conf.beat_schedule["housekeeping-nightly"]
    assert entry["task"] == "accounts.tasks.housekeeping"
    assert entry["schedule"].hour == {3} and entry["schedule"].minute == {30}
