"""Reads of the reminders app, scoped by the user (accounts.access).

A reminder is "open" on a day when its status is open, or it was snoozed until
that day or before (a snooze ends by itself; no job has to wake it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db.models import Count, Min, Q, QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from accounts.access import get_or_404, managed_team_and_member_ids, users_for_user
from accounts.models import Role, User
from feedback.models import DeliveryState, SurveyDelivery
from reminders import conf
from reminders.models import Digest, EmailState, Reminder, ReminderKind, ReminderStatus

PANEL_SIZE = 10
ERRORS_SHOWN = 20


def open_on(day: date) -> Q:
    return Q(status=ReminderStatus.OPEN) | Q(status=ReminderStatus.SNOOZED, snoozed_until__lte=day)


def reminders_for_user(*, user: User) -> QuerySet[Reminder]:
    """Reminders the user may see: their own; a manager also their teams' members'; admin all.

    Marketing gets none (reminders are about the sales work). The recipient
    is the owner: a rep never sees another person's reminders.
    """
    reminders = Reminder.objects.all()
    if not (user.is_authenticated and user.is_active):
        return reminders.none()
    if user.role == Role.ADMIN:
        return reminders
    if user.role == Role.MANAGER:
        _team_ids, member_ids = managed_team_and_member_ids(user)
        return reminders.filter(user__in=[user.pk, *member_ids])
    if user.role == Role.REP:
        return reminders.filter(user=user.pk)
    return reminders.none()


def reminder_get_own(*, user: User, pk: Any) -> Reminder:
    """One of the user's own reminders (only the recipient changes one); 404 otherwise."""
    return get_or_404(Reminder.objects.filter(user=user.pk), pk=pk)


def open_reminders_for_user(
    *, user: User, today: date, rep: User | None = None
) -> QuerySet[Reminder]:
    """The visible reminders open today, soonest due first; ``rep`` narrows to one person."""
    reminders = reminders_for_user(user=user).filter(open_on(today))
    if rep is not None:
        reminders = reminders.filter(user=rep.pk)
    return reminders.order_by("due_on", "pk")


def rep_choices_for(*, user: User) -> QuerySet[User]:
    """People whose reminders the user may filter by (themselves and their teams' members)."""
    return users_for_user(user=user).filter(is_active=True, role__in=(Role.REP, Role.MANAGER))


@dataclass(frozen=True)
class RepRollup:
    user_id: int
    name: str
    open: int
    overdue: int


def rollup_by_rep(*, user: User, today: date) -> list[RepRollup]:
    """Open and overdue reminders per person (a manager's team, all for admin); one query."""
    rows = (
        reminders_for_user(user=user)
        .filter(open_on(today))
        .values("user_id", "user__display_name")
        .annotate(open=Count("pk"), overdue=Count("pk", filter=Q(due_on__lt=today)))
        .order_by("user__display_name", "user_id")
    )
    return [
        RepRollup(row["user_id"], row["user__display_name"], row["open"], row["overdue"])
        for row in rows
    ]


@dataclass(frozen=True)
class ReminderPanel:
    reminders: list[Reminder]
    count: int

    @property
    def more(self) -> int:
        return self.count - len(self.reminders)

    @property
    def rows(self) -> list[tuple[Reminder, str | None]]:
        """Each reminder with the page of what it is about (no query: ids are on the row)."""
        return [(reminder, subject_url(reminder)) for reminder in self.reminders]


def reminder_panel_for(*, user: User, today: date) -> ReminderPanel:
    """The user's own open reminders for the dashboard: the first ten and how many in all.

    One query, or two when there are ten or more (the count).
    """
    if not (user.is_authenticated and user.is_active):
        return ReminderPanel(reminders=[], count=0)
    mine = Reminder.objects.filter(open_on(today), user=user.pk)
    shown = list(mine.order_by("due_on", "pk")[:PANEL_SIZE])
    count = mine.count() if len(shown) == PANEL_SIZE else len(shown)
    return ReminderPanel(reminders=shown, count=count)


def subject_url(reminder: Reminder) -> str | None:
    """The page of what the reminder is about, when that page exists."""
    targets = [
        ("leads:deal_detail", reminder.deal_id),
        ("leads:estimate_detail", reminder.estimate_id),
        ("leads:detail", reminder.lead_id),
        ("goals:goal_detail", reminder.goal_id),
        ("feedback:case_detail", reminder.case_id),
        ("leads:customer_detail", reminder.customer_id),
    ]
    for name, pk in targets:
        if pk is None:
            continue
        try:
            return reverse(name, args=[pk])
        except NoReverseMatch:
            continue
    if reminder.kind == ReminderKind.ACTIVITY_OVERDUE:
        try:
            return reverse("leads:activity_list")
        except NoReverseMatch:
            return None
    return None


# --- Ops --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpsError:
    what: Any
    id: int
    user: str
    state: str
    at: datetime
    attempts: int
    error: str


@dataclass
class OpsSummary:
    reminders: dict[str, int] = field(default_factory=dict)
    digests: dict[str, int] = field(default_factory=dict)
    surveys: dict[str, int] = field(default_factory=dict)
    oldest_pending: datetime | None = None
    oldest_pending_digest: datetime | None = None
    stuck_reminders: int = 0
    stuck_digests: int = 0
    errors: list[OpsError] = field(default_factory=list)


def _counts(model: Any, state: str, states: list[str]) -> dict[str, int]:
    found = dict(model.objects.values_list(state).annotate(count=Count("pk")).order_by())
    return {name: found.get(name, 0) for name in states}


def ops_summary(*, now: datetime) -> OpsSummary:
    """What an operator needs to see a stuck queue: counts by state, oldest due, stuck claims,
    the last errors. A handful of aggregate queries, independent of the data's size."""
    stale_before = now - conf.claim_timeout()
    summary = OpsSummary(
        reminders=_counts(Reminder, "email_state", list(EmailState.values)),
        digests=_counts(Digest, "state", list(EmailState.values)),
        surveys=_counts(SurveyDelivery, "state", list(DeliveryState.values)),
    )
    summary.oldest_pending = Reminder.objects.filter(
        email_state=EmailState.PENDING, send_after__lte=now
    ).aggregate(oldest=Min("send_after"))["oldest"]
    summary.oldest_pending_digest = Digest.objects.filter(
        state=EmailState.PENDING, send_after__lte=now
    ).aggregate(oldest=Min("send_after"))["oldest"]
    summary.stuck_reminders = Reminder.objects.filter(
        email_state=EmailState.CLAIMED, claimed_at__lt=stale_before
    ).count()
    summary.stuck_digests = Digest.objects.filter(
        state=EmailState.CLAIMED, claimed_at__lt=stale_before
    ).count()
    reminder_errors = (
        Reminder.objects.exclude(last_error="")
        .exclude(email_state=EmailState.SKIPPED)
        .select_related("user")
        .order_by("-send_after", "-pk")[:ERRORS_SHOWN]
    )
    digest_errors = (
        Digest.objects.exclude(last_error="")
        .exclude(state=EmailState.SKIPPED)
        .select_related("user")
        .order_by("-send_after", "-pk")[:ERRORS_SHOWN]
    )
    survey_errors = (
        SurveyDelivery.objects.exclude(last_error="")
        .exclude(state=DeliveryState.CANCELLED)
        .order_by("-send_after", "-pk")[:ERRORS_SHOWN]
    )
    errors = [
        OpsError(
            _("Reminder"),
            row.pk,
            str(row.user),
            row.get_email_state_display(),
            row.send_after,
            row.attempts,
            row.last_error,
        )
        for row in reminder_errors
    ]
    errors += [
        OpsError(
            _("Digest"),
            row.pk,
            str(row.user),
            row.get_state_display(),
            row.send_after,
            row.attempts,
            row.last_error,
        )
        for row in digest_errors
    ]
    errors += [
        OpsError(
            _("Survey email"),
            row.pk,
            "",
            row.get_state_display(),
            row.send_after,
            row.attempts,
            row.last_error,
        )
        for row in survey_errors
    ]
    summary.errors = sorted(errors, key=lambda error: error.at, reverse=True)[:ERRORS_SHOWN]
    return summary
