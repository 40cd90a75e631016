"""The daily digest: one email per user per day of their own time zone.

``digests_create_due`` runs every 15 minutes and makes, in one INSERT … SELECT,
the day's Digest row of every active user whose local clock has passed
DIGEST_LOCAL_HOUR and who wants reminder emails (immediate or digest); the
unique (user, local day) key makes it once per day whatever the schedule.
Sending is claimed like a reminder email (``reminders.services``); a digest
with nothing to say is marked skipped, not sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.mail import EmailMultiAlternatives
from django.db import connection
from django.db.models import Q, QuerySet

from accounts.access import managed_team_and_member_ids
from accounts.models import ReminderEmails, Role, User
from leads.models import Activity
from reminders import conf
from reminders.models import Digest, EmailState, Reminder, ReminderKind, ReminderStatus
from reminders.services import (
    DIGESTS,
    SendOutcome,
    finish_claim,
    message_id,
    no_email_reason,
    send_claimed,
    site_url,
    user_email,
)

# Items listed per section of the email; the rest is a count and a link.
SHOWN = 20


def digests_create_due(*, now: datetime) -> int:
    """Create today's digest of each user whose local DIGEST_LOCAL_HOUR has passed; how many.

    Set-based and safe to repeat: (user, local day) is unique. Users who want
    no reminder emails, and inactive users, get none.
    """
    sql = f"""
        INSERT INTO {connection.ops.quote_name(Digest._meta.db_table)}
            (user_id, local_date, state, send_after, attempts, last_error, item_count)
        SELECT u.id, timezone(u.time_zone, %(now)s)::date, %(pending)s, %(now)s, 0, '', 0
        FROM {connection.ops.quote_name(User._meta.db_table)} AS u
        WHERE u.is_active
          AND u.reminder_emails = ANY(%(wanted)s)
          AND extract(hour FROM timezone(u.time_zone, %(now)s)) >= %(hour)s
        ON CONFLICT (user_id, local_date) DO NOTHING
    """  # noqa: S608 - our table names; values are parameters
    params = {
        "now": now,
        "pending": EmailState.PENDING,
        "wanted": [ReminderEmails.IMMEDIATE, ReminderEmails.DIGEST],
        "hour": conf.digest_local_hour(),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def open_reminders(user_ids: list[int], day: date) -> QuerySet[Reminder]:
    """Open reminders of these users, and snoozed ones whose snooze is over by ``day``."""
    return Reminder.objects.filter(user__in=user_ids).filter(
        Q(status=ReminderStatus.OPEN) | Q(status=ReminderStatus.SNOOZED, snoozed_until__lte=day)
    )


@dataclass
class DigestContent:
    reminders: list[Reminder] = field(default_factory=list)
    reminder_count: int = 0
    todos: list[Activity] = field(default_factory=list)
    todo_count: int = 0
    # Managers only: their team's overdue to-dos and goals behind pace.
    team_overdue: list[Activity] = field(default_factory=list)
    team_overdue_count: int = 0
    team_goals: list[Reminder] = field(default_factory=list)

    @property
    def item_count(self) -> int:
        return (
            self.reminder_count + self.todo_count + self.team_overdue_count + len(self.team_goals)
        )


def digest_content(*, user: User, day: date) -> DigestContent:
    """What a user's digest for their local ``day`` lists; scoped like every page.

    A rep: their own reminders and to-dos (due by the end of the day). A
    manager also: their team's overdue to-dos and goals behind pace.
    """
    zone = ZoneInfo(user.time_zone)
    end_of_day = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    content = DigestContent()
    mine = open_reminders([user.pk], day).order_by("due_on", "pk")
    content.reminders = list(mine[:SHOWN])
    content.reminder_count = (
        mine.count() if len(content.reminders) == SHOWN else len(content.reminders)
    )
    todos = Activity.objects.filter(
        owner=user, due_at__isnull=False, done_at__isnull=True, due_at__lt=end_of_day
    ).order_by("due_at", "pk")
    content.todos = list(todos[:SHOWN])
    content.todo_count = todos.count() if len(content.todos) == SHOWN else len(content.todos)
    if user.role == Role.MANAGER:
        _team_ids, member_ids = managed_team_and_member_ids(user)
        members = [pk for pk in member_ids if pk != user.pk]
        if members:
            overdue = (
                Activity.objects.filter(
                    owner__in=members,
                    due_at__isnull=False,
                    done_at__isnull=True,
                    due_at__lt=datetime.combine(day, time.min, tzinfo=zone),
                )
                .select_related("owner")
                .order_by("due_at", "pk")
            )
            content.team_overdue = list(overdue[:SHOWN])
            content.team_overdue_count = (
                overdue.count() if len(content.team_overdue) == SHOWN else len(content.team_overdue)
            )
        content.team_goals = list(
            open_reminders([user.pk, *members], day)
            .filter(kind=ReminderKind.GOAL_BEHIND)
            .exclude(user=user)
            .select_related("user")
            .order_by("due_on", "pk")[:SHOWN]
        )
    return content


def _build_digest_email(
    pk: int, claimed_at: datetime, now: datetime
) -> EmailMultiAlternatives | str:
    digest = Digest.objects.select_related("user").get(pk=pk)
    user: User = digest.user
    moot = no_email_reason(user)
    if moot:
        finish_claim(DIGESTS, pk, claimed_at, EmailState.SKIPPED, last_error=moot)
        return "skipped"
    content = digest_content(user=user, day=digest.local_date)
    if content.item_count == 0:
        finish_claim(DIGESTS, pk, claimed_at, EmailState.SKIPPED, last_error="nothing to say")
        return "skipped"
    if not user.email:
        finish_claim(DIGESTS, pk, claimed_at, EmailState.FAILED, last_error="the user has no email")
        return "failed"
    Digest.objects.filter(pk=pk).update(item_count=content.item_count)
    return user_email(
        user=user,
        template="digest",
        message_id=message_id(DIGESTS.prefix, pk),
        context=lambda: {
            "digest": digest,
            "user": user,
            "content": content,
            "url": site_url("reminders:list"),
        },
    )


def digest_send(*, digest_id: int, now: datetime) -> SendOutcome:
    """Claim and send one digest; safe to run any number of times at once."""
    return send_claimed(DIGESTS, digest_id, now, _build_digest_email)
