"""The rules that find reminders: each one set-based, each safe to run twice.

Every rule is one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` (or, where the
test needs Python — working days, goal pace — a bulk insert of the few rows
found, ignoring conflicts) under the unique key (kind, subject id, recipient,
due day). Running a rule twice, or on a day it already ran, creates nothing
new. ``due_on`` is the day the reminder became due, fixed by the subject's own
dates, so a lead not contacted for 40 days gets one reminder, not forty.

The title is a snapshot of the subject's name, kept as data (a goal's title
names its metric in the recipient's language); the label ("Estimate about to
expire") is rendered from the kind at display time, in the reader's language.

Recipients: the owner (a won deal's, an estimate's, a lead's, a to-do's); for
a follow-up case the rep and their team's managers; for a goal the rep, or the
team's managers for a team goal. Inactive users get none. The immediate email
is ``pending`` for users who chose "immediate" and for reminders due in the
last ``EMAIL_LOOKBACK_DAYS`` (the first run on old data must not send
thousands of emails about old news); otherwise ``skipped``: the reminder still
shows in the list and the digest.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Prefetch, Q
from django.utils import translation

from accounts.models import ReminderEmails, Team, User
from feedback.models import OPEN_CASE_STATUSES, FollowUpCase
from feedback.services import add_working_days
from goals.models import Goal, GoalRevision, Metric, OwnerKind
from goals.selectors import fact_totals, goal_actual, goal_target_on, pace
from leads.models import (
    OPEN_ESTIMATE_STATUSES,
    OPEN_STAGES,
    Activity,
    Customer,
    Deal,
    DealStatus,
    Estimate,
    Lead,
    Stage,
)
from reminders import conf
from reminders.models import EmailState, Reminder, ReminderKind, ReminderStatus

logger = logging.getLogger(__name__)

# Won deals whose check-in day passed this many days ago are still picked up
# (a job that did not run for a few days catches up); older ones are history.
CHECK_IN_LOOKBACK_DAYS = 7
# Reminders due longer ago than this are listed but not emailed one by one.
EMAIL_LOOKBACK_DAYS = 7
# Metrics whose pace means something: counts and sums that grow over the period.
PACED_METRICS = (
    Metric.REVENUE_WON,
    Metric.DEALS_WON,
    Metric.ESTIMATE_VALUE,
    Metric.NEW_LEADS,
    Metric.ACTIVITIES,
)


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _insert_select(
    *,
    kind: str,
    subject_column: str,
    select: str,
    params: dict[str, Any],
    today: date,
    now: datetime,
) -> int:
    """Insert the reminders ``select`` finds; how many were new.

    ``select`` yields ``user_id, object_id, due_on, title, customer_id``; the
    subject's own column (``subject_column``) gets ``object_id``.
    """
    customer = "" if subject_column == "customer_id" else ", customer_id"
    customer_value = "" if subject_column == "customer_id" else ", found.customer_id"
    sql = f"""
        INSERT INTO {_table(Reminder)} (
            kind, user_id, object_id, due_on, title, {subject_column}{customer},
            status, created_at, email_state, send_after, attempts, last_error
        )
        SELECT
            %(kind)s, found.user_id, found.object_id, found.due_on, left(found.title, 300),
            found.object_id{customer_value},
            %(open)s, %(now)s,
            CASE WHEN u.reminder_emails = %(immediate)s AND found.due_on > %(email_from)s
                THEN %(pending)s ELSE %(skipped)s END,
            %(now)s, 0, ''
        FROM ({select}) AS found
        JOIN {_table(User)} AS u ON u.id = found.user_id AND u.is_active
        ON CONFLICT (kind, object_id, user_id, due_on) DO NOTHING
    """  # noqa: S608 - our table names; values are parameters
    values = {
        **params,
        "kind": kind,
        "open": ReminderStatus.OPEN,
        "now": now,
        "today": today,
        "tz": settings.TIME_ZONE,
        "immediate": ReminderEmails.IMMEDIATE,
        "email_from": today - timedelta(days=EMAIL_LOOKBACK_DAYS),
        "pending": EmailState.PENDING,
        "skipped": EmailState.SKIPPED,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return cursor.rowcount


def _insert_found(
    rows: list[tuple[int, int, date, str]],
    *,
    kind: str,
    subject_column: str,
    today: date,
    now: datetime,
) -> int:
    """Insert rows found in Python (user id, subject id, due day, title) as a rule's SELECT does."""
    if not rows:
        return 0
    select = """
        SELECT found.user_id, found.object_id, found.due_on, found.title,
               NULL::bigint AS customer_id
        FROM unnest(%(users)s::bigint[], %(objects)s::bigint[], %(dues)s::date[],
                    %(titles)s::text[]) AS found(user_id, object_id, due_on, title)
    """
    users, objects, dues, titles = (list(column) for column in zip(*rows, strict=True))
    return _insert_select(
        kind=kind,
        subject_column=subject_column,
        select=select,
        params={"users": users, "objects": objects, "dues": dues, "titles": titles},
        today=today,
        now=now,
    )


def rule_check_in(*, today: date, now: datetime) -> int:
    """Check in with the customer REMINDER_CHECK_IN_DAYS after a won deal (deal owner)."""
    days = conf.check_in_days()
    select = f"""
        SELECT d.owner_id AS user_id, d.id AS object_id,
               d.close_date + %(days)s AS due_on,
               c.name || CASE WHEN d.title <> '' THEN ' · ' || d.title ELSE '' END AS title,
               d.customer_id AS customer_id
        FROM {_table(Deal)} AS d JOIN {_table(Customer)} AS c ON c.id = d.customer_id
        WHERE d.status = %(won)s
          AND d.close_date BETWEEN %(oldest)s AND %(newest)s
    """  # noqa: S608 - our table names; values are parameters
    params = {
        "days": days,
        "won": DealStatus.WON,
        "oldest": today - timedelta(days=days + CHECK_IN_LOOKBACK_DAYS),
        "newest": today - timedelta(days=days),
    }
    return _insert_select(
        kind=ReminderKind.CHECK_IN,
        subject_column="deal_id",
        select=select,
        params=params,
        today=today,
        now=now,
    )


def rule_lead_no_contact(*, today: date, now: datetime) -> int:
    """An open, owned lead without contact for N days by its temperature (hot 2, warm 7, cold 30).

    Last contact is ``last_contact_at`` (kept by activities), else the day the
    lead was created. due_on is the day it became due: contacting the lead
    moves it, so a new silence gives a new reminder.
    """
    days = conf.lead_no_contact_days()
    cases = " ".join(f"WHEN %(temp_{name})s THEN %(days_{name})s" for name in sorted(days))
    select = f"""
        SELECT l.owner_id AS user_id, l.id AS object_id,
               (timezone(%(tz)s, COALESCE(l.last_contact_at, l.created_at))::date
                + (CASE l.temperature {cases} END)) AS due_on,
               COALESCE(NULLIF(l.company_name, ''), NULLIF(l.contact_name, ''), l.email) AS title,
               l.customer_id AS customer_id
        FROM {_table(Lead)} AS l
        WHERE l.owner_id IS NOT NULL
          AND l.stage = ANY(%(open_stages)s)
          AND l.temperature = ANY(%(temperatures)s)
    """  # noqa: S608 - our table names; values are parameters
    params: dict[str, Any] = {
        "open_stages": [stage for stage in OPEN_STAGES if stage != Stage.SQL],
        "temperatures": sorted(days),
    }
    for name, count in days.items():
        params[f"temp_{name}"] = name
        params[f"days_{name}"] = int(count)
    select = f"SELECT * FROM ({select}) AS due WHERE due.due_on <= %(today)s"  # noqa: S608
    return _insert_select(
        kind=ReminderKind.LEAD_NO_CONTACT,
        subject_column="lead_id",
        select=select,
        params=params,
        today=today,
        now=now,
    )


def rule_estimate_expiring(*, today: date, now: datetime) -> int:
    """An open estimate (draft or sent) that expires within REMINDER_ESTIMATE_EXPIRING_DAYS.

    due_on is the expiry day: an estimate extended to a new date is reminded again.
    """
    select = f"""
        SELECT e.owner_id AS user_id, e.id AS object_id, e.valid_until AS due_on,
               c.name || CASE WHEN e.title <> '' THEN ' · ' || e.title ELSE '' END AS title,
               e.customer_id AS customer_id
        FROM {_table(Estimate)} AS e JOIN {_table(Customer)} AS c ON c.id = e.customer_id
        WHERE e.status = ANY(%(estimate_open)s)
          AND e.valid_until BETWEEN %(today)s AND %(until)s
    """  # noqa: S608 - our table names; values are parameters
    params = {
        "estimate_open": list(OPEN_ESTIMATE_STATUSES),
        "until": today + timedelta(days=conf.estimate_expiring_days()),
    }
    return _insert_select(
        kind=ReminderKind.ESTIMATE_EXPIRING,
        subject_column="estimate_id",
        select=select,
        params=params,
        today=today,
        now=now,
    )


def rule_activity_overdue(*, today: date, now: datetime) -> int:
    """An open to-do (due, not done) past its due time; due_on is its due day."""
    select = f"""
        SELECT a.owner_id AS user_id, a.id AS object_id,
               timezone(%(tz)s, a.due_at)::date AS due_on,
               a.subject AS title, a.customer_id AS customer_id
        FROM {_table(Activity)} AS a
        WHERE a.due_at IS NOT NULL AND a.done_at IS NULL AND a.due_at < %(now)s
    """  # noqa: S608 - our table names; values are parameters
    return _insert_select(
        kind=ReminderKind.ACTIVITY_OVERDUE,
        subject_column="activity_id",
        select=select,
        params={},
        today=today,
        now=now,
    )


def rule_case_overdue(*, today: date, now: datetime) -> int:
    """An open follow-up case past its deadline: to the rep and their team's managers."""
    managers = Team.managers.through._meta.db_table
    select = f"""
        SELECT k.rep_id AS user_id, k.id AS object_id,
               timezone(%(tz)s, k.deadline)::date AS due_on,
               c.name || ' · ' || k.summary AS title, k.customer_id AS customer_id
        FROM {_table(FollowUpCase)} AS k JOIN {_table(Customer)} AS c ON c.id = k.customer_id
        WHERE k.status = ANY(%(case_open)s) AND k.deadline < %(now)s
        UNION
        SELECT m.user_id, k.id, timezone(%(tz)s, k.deadline)::date,
               c.name || ' · ' || k.summary, k.customer_id
        FROM {_table(FollowUpCase)} AS k JOIN {_table(Customer)} AS c ON c.id = k.customer_id
        JOIN {connection.ops.quote_name(managers)} AS m ON m.team_id = k.team_id
        WHERE k.status = ANY(%(case_open)s) AND k.deadline < %(now)s
    """  # noqa: S608 - our table names; values are parameters
    return _insert_select(
        kind=ReminderKind.CASE_OVERDUE,
        subject_column="case_id",
        select=select,
        params={"case_open": list(OPEN_CASE_STATUSES)},
        today=today,
        now=now,
    )


def rule_sql_not_contacted(*, today: date, now: datetime) -> int:
    """An owned SQL lead not contacted within SQL_RESPONSE_WORKING_DAYS working days.

    Working days need Python (holidays): the database narrows to SQL leads
    with no contact since reaching SQL and at least that many calendar days
    old (a working-day deadline is never sooner), Python checks the deadline.
    due_on is the deadline's day, so each lead is reminded once.
    """
    working_days = conf.sql_response_working_days()
    candidates = (
        Lead.objects.filter(
            stage=Stage.SQL,
            owner__isnull=False,
            reached_sql_at__isnull=False,
            reached_sql_at__lte=now - timedelta(days=working_days),
        )
        .filter(Q(last_contact_at__isnull=True) | Q(last_contact_at__lt=F("reached_sql_at")))
        .only("pk", "owner_id", "reached_sql_at", "company_name", "contact_name", "email")
    )
    rows = []
    for lead in candidates.iterator(chunk_size=2000):
        deadline = add_working_days(lead.reached_sql_at, working_days)
        if deadline > now:
            continue
        rows.append((lead.owner_id, lead.pk, deadline.date(), str(lead)))
    return _insert_found(
        rows,
        kind=ReminderKind.SQL_NOT_CONTACTED,
        subject_column="lead_id",
        today=today,
        now=now,
    )


def rule_goal_behind(*, today: date, now: datetime) -> int:
    """A rep or team goal below REMINDER_GOAL_PACE_BELOW from mid-period on; once per period.

    Pace uses the nightly facts up to yesterday. due_on is the period's middle
    day, so a goal gives at most one reminder per period (to the rep, or to the
    team's managers). One facts query per goal: there are a few hundred goals
    in a period, not millions.
    """
    yesterday = today - timedelta(days=1)
    threshold = conf.goal_pace_below()
    goals = (
        Goal.objects.filter(
            owner_kind__in=(OwnerKind.REP, OwnerKind.TEAM),
            metric__in=PACED_METRICS,
            start__lte=yesterday,
            end__gte=today,
        )
        .select_related("rep", "team")
        .prefetch_related(
            Prefetch("revisions", queryset=GoalRevision.objects.all()),
            Prefetch(
                "team__managers", queryset=User.objects.filter(is_active=True), to_attr="active"
            ),
        )
    )
    rows = []
    for goal in goals:
        middle = goal.start + timedelta(days=(goal.end - goal.start).days // 2)
        if today < middle:
            continue
        if goal.owner_kind == OwnerKind.REP:
            if goal.rep is None:
                continue
            reps: list[int] = [goal.rep_id]
            recipients = [goal.rep]
        else:
            if goal.team is None:
                continue
            reps = list(User.objects.filter(team=goal.team_id).values_list("pk", flat=True))
            recipients = list(goal.team.active)
        if not recipients:
            continue
        totals = fact_totals(
            reps=reps,
            start=goal.start,
            end=yesterday,
            product_line=goal.product_line_id,
            territory=goal.territory_id,
        )
        target = goal_target_on(goal, yesterday, goal.revisions.all())
        goal_pace = pace(goal_actual(goal, totals), target, goal.start, goal.end, yesterday)
        if goal_pace is None or goal_pace >= threshold:
            continue
        rows += [
            (user.pk, goal.pk, middle, _goal_title(goal, goal_pace, user.language))
            for user in recipients
        ]
    return _insert_found(
        rows, kind=ReminderKind.GOAL_BEHIND, subject_column="goal_id", today=today, now=now
    )


def _goal_title(goal: Goal, goal_pace: Decimal, language: str) -> str:
    """Who, which metric (in the recipient's language: the title is kept as data), when, pace."""
    owner = goal.rep if goal.owner_kind == OwnerKind.REP else goal.team
    with translation.override(language):
        metric = str(goal.get_metric_display())
    return f"{owner} · {metric} {goal.start:%Y-%m-%d}/{goal.end:%Y-%m-%d} · {goal_pace * 100:.0f}%"


RULES = {
    ReminderKind.CHECK_IN: rule_check_in,
    ReminderKind.LEAD_NO_CONTACT: rule_lead_no_contact,
    ReminderKind.ESTIMATE_EXPIRING: rule_estimate_expiring,
    ReminderKind.ACTIVITY_OVERDUE: rule_activity_overdue,
    ReminderKind.GOAL_BEHIND: rule_goal_behind,
    ReminderKind.CASE_OVERDUE: rule_case_overdue,
    ReminderKind.SQL_NOT_CONTACTED: rule_sql_not_contacted,
}


def run_rules(*, today: date, now: datetime) -> dict[str, int]:
    """Every rule for the company day ``today``; the new reminders per kind.

    Each rule is its own transaction: one failing rule neither undoes nor stops
    the others; RuleFailed is raised after the last one.
    """
    counts = {}
    failed = []
    for kind, rule in RULES.items():
        try:
            with transaction.atomic():
                counts[str(kind)] = rule(today=today, now=now)
        except Exception:  # the other rules still run; the task fails at the end
            logger.exception("Reminder rule %s failed for %s", kind, today)
            failed.append(str(kind))
    if failed:
        raise RuleFailed(failed, counts)
    return counts


class RuleFailed(Exception):
    """Some rules failed (logged); the others ran and their reminders are saved."""

    def __init__(self, kinds: list[str], counts: dict[str, int]) -> None:
        super().__init__(f"reminder rules failed: {', '.join(kinds)}; created: {counts}")
        self.kinds = kinds
        self.counts = counts
