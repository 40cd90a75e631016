"""The daily digest: once per user per local day, at 8:00 in their own time zone."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from accounts.models import ReminderEmails
from reminders import tasks
from reminders.digests import digest_send, digests_create_due
from reminders.models import Digest, EmailState, ReminderKind
from tests.factories_leads import ActivityFactory
from tests.reminders.helpers import reminder_for

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def _zones(cast) -> None:
    """Alice in São Paulo (UTC-3), Bob in Tokyo (UTC+9): on either side of midnight."""
    cast.rep.time_zone = "America/Sao_Paulo"
    cast.rep.save(update_fields=["time_zone"])
    cast.teammate.time_zone = "Asia/Tokyo"
    cast.teammate.save(update_fields=["time_zone"])


def digests() -> list[tuple[str, dt.date]]:
    return sorted(Digest.objects.values_list("user__email", "local_date"))


def test_digest_days_follow_each_users_clock_on_both_sides_of_midnight(cast):
    _zones(cast)
    others = {
        cast.manager.pk,
        cast.other_rep.pk,
        cast.other_manager.pk,
        cast.marketing.pk,
        cast.admin.pk,
    }

    # 10:30 UTC: São Paulo 07:30 (too early), Tokyo 19:30 on the 17th.
    digests_create_due(now=dt.datetime(2026, 6, 17, 10, 30, tzinfo=UTC))
    assert [d for d in digests() if d[0] in ("alice@example.com", "bob@example.com")] == [
        ("bob@example.com", dt.date(2026, 6, 17))
    ]
    # 11:30 UTC: São Paulo 08:30 on the 17th.
    digests_create_due(now=dt.datetime(2026, 6, 17, 11, 30, tzinfo=UTC))
    # 23:30 UTC: Tokyo is at 08:30 on the 18th; São Paulo still on the 17th (has one).
    created = digests_create_due(now=dt.datetime(2026, 6, 17, 23, 30, tzinfo=UTC))
    assert created == 1
    # Again: nothing new.
    assert digests_create_due(now=dt.datetime(2026, 6, 17, 23, 45, tzinfo=UTC)) == 0

    mine = [d for d in digests() if d[0] in ("alice@example.com", "bob@example.com")]
    assert mine == [
        ("alice@example.com", dt.date(2026, 6, 17)),
        ("bob@example.com", dt.date(2026, 6, 17)),
        ("bob@example.com", dt.date(2026, 6, 18)),
    ]
    assert Digest.objects.exclude(user__in=others).count() == 3


def test_digest_on_the_daylight_saving_day(cast):
    """Stockholm, 29 March 2026: clocks go from 02:00 to 03:00. 8:00 local is 06:00 UTC."""
    cast.rep.time_zone = "Europe/Stockholm"
    cast.rep.save(update_fields=["time_zone"])

    digests_create_due(now=dt.datetime(2026, 3, 29, 5, 59, tzinfo=UTC))  # 07:59 local
    assert ("alice@example.com", dt.date(2026, 3, 29)) not in digests()
    digests_create_due(now=dt.datetime(2026, 3, 29, 6, 0, tzinfo=UTC))  # 08:00 local
    assert ("alice@example.com", dt.date(2026, 3, 29)) in digests()


def test_preferences_decide_who_gets_a_digest(cast):
    cast.rep.reminder_emails = ReminderEmails.DIGEST
    cast.rep.save(update_fields=["reminder_emails"])
    cast.teammate.reminder_emails = ReminderEmails.NONE
    cast.teammate.save(update_fields=["reminder_emails"])
    cast.other_rep.is_active = False
    cast.other_rep.save(update_fields=["is_active"])

    digests_create_due(now=dt.datetime(2026, 6, 17, 12, 0, tzinfo=UTC))  # 14:00 in Stockholm

    emails = {email for email, _day in digests()}
    assert "alice@example.com" in emails
    assert "bob@example.com" not in emails
    assert "charlie@example.com" not in emails


def _digest_for(user, now: dt.datetime) -> Digest:
    return Digest.objects.create(
        user=user,
        local_date=timezone.localdate(now, timezone.get_default_timezone()),
        send_after=now - dt.timedelta(minutes=1),
    )


def test_a_digest_lists_the_users_own_reminders_and_to_dos_and_goes_once(cast):
    now = timezone.now()
    reminder_for(cast.rep, title="Call back Acme", object_id=1)
    reminder_for(cast.other_rep, title="Other team's thing", object_id=2)
    ActivityFactory(owner=cast.rep, subject="Send the brochure", due_at=now - dt.timedelta(hours=1))
    digest = _digest_for(cast.rep, now)

    assert digest_send(digest_id=digest.pk, now=now).result == "sent"
    assert digest_send(digest_id=digest.pk, now=now).result == "not due"

    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert "Call back Acme" in body
    assert "Send the brochure" in body
    assert "Other team's thing" not in body
    assert mail.outbox[0].extra_headers["Message-ID"].startswith(f"<digest.{digest.pk}@")
    digest.refresh_from_db()
    assert (digest.state, digest.item_count) == (EmailState.SENT, 2)


def test_a_managers_digest_has_the_teams_overdue_items_and_goals_at_risk(cast):
    now = timezone.now()
    ActivityFactory(
        owner=cast.teammate, subject="Bob's late call", due_at=now - dt.timedelta(days=2)
    )
    ActivityFactory(
        owner=cast.other_rep, subject="Charlie's late call", due_at=now - dt.timedelta(days=2)
    )
    reminder_for(
        cast.rep, kind=ReminderKind.GOAL_BEHIND, title="Alice · Revenue · 40%", object_id=7
    )
    reminder_for(
        cast.other_rep, kind=ReminderKind.GOAL_BEHIND, title="Charlie · Revenue", object_id=8
    )
    digest = _digest_for(cast.manager, now)

    assert digest_send(digest_id=digest.pk, now=now).result == "sent"

    body = mail.outbox[0].body
    assert "Bob's late call" in body
    assert "Alice · Revenue · 40%" in body
    assert "Charlie" not in body


def test_a_digest_with_nothing_to_say_is_skipped(cast):
    now = timezone.now()
    digest = _digest_for(cast.rep, now)

    assert digest_send(digest_id=digest.pk, now=now).result == "skipped"

    assert mail.outbox == []
    digest.refresh_from_db()
    assert (digest.state, digest.last_error) == (EmailState.SKIPPED, "nothing to say")


def test_the_digest_task_creates_and_sends(cast, django_capture_on_commit_callbacks):
    reminder_for(cast.rep, title="Call back Acme")
    late_evening = (
        timezone.now().astimezone(timezone.get_default_timezone()).replace(hour=22, minute=0)
    )
    with (
        time_machine.travel(late_evening, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        tasks.create_digests()

    assert [message.to for message in mail.outbox] == [["Alice Rep <alice@example.com>"]]
