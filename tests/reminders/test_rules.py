"""Each reminder rule with frozen time; running the rules twice creates nothing new."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.test import override_settings

from accounts.models import ReminderEmails
from feedback.models import CaseSource, CaseStatus, FollowUpCase
from goals.models import DailyRepFact, Goal, Metric, OwnerKind, PeriodKind
from leads.models import EstimateStatus, Stage, Temperature
from reminders import rules, tasks
from reminders.models import EmailState, Reminder, ReminderKind
from tests.factories_leads import (
    ActivityFactory,
    CustomerFactory,
    DealFactory,
    EstimateFactory,
    LeadFactory,
)
from tests.goals.builders import local

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stockholm")]

TODAY = dt.date(2026, 6, 17)  # a Wednesday
NOW = local(2026, 6, 17, 6, 0)


@pytest.fixture
def stockholm(settings):
    settings.TIME_ZONE = "Europe/Stockholm"


def found(kind: str) -> list[tuple[str, dt.date, str]]:
    return sorted(
        (reminder.user.email, reminder.due_on, reminder.email_state)
        for reminder in Reminder.objects.filter(kind=kind).select_related("user")
    )


def run(today: dt.date = TODAY, now: dt.datetime = NOW) -> dict[str, int]:
    with time_machine.travel(now, tick=False):
        return rules.run_rules(today=today, now=now)


# --- check-in -----------------------------------------------------------------------------


@override_settings(REMINDER_CHECK_IN_DAYS=30)
def test_check_in_thirty_days_after_a_won_deal_once(cast):
    customer = CustomerFactory(owner=cast.rep, name="Acme AB")
    DealFactory(owner=cast.rep, customer=customer, close_date=TODAY - dt.timedelta(days=30))
    DealFactory(owner=cast.rep, close_date=TODAY - dt.timedelta(days=29))  # not yet
    DealFactory(
        owner=cast.rep, close_date=TODAY - dt.timedelta(days=30), status="lost", lost_reason="price"
    )

    counts = run()

    assert counts[ReminderKind.CHECK_IN] == 1
    assert found(ReminderKind.CHECK_IN) == [("alice@example.com", TODAY, EmailState.PENDING)]
    assert Reminder.objects.get().title == "Acme AB"
    # Twice: nothing new.
    assert run()[ReminderKind.CHECK_IN] == 0
    assert Reminder.objects.count() == 1


# --- lead without contact -----------------------------------------------------------------


def test_lead_without_contact_by_temperature(cast):
    three_days_ago = local(2026, 6, 14, 10)
    LeadFactory(
        owner=cast.rep,
        stage=Stage.HOT,
        temperature=Temperature.HOT,
        company_name="Hot Co",
        last_contact_at=three_days_ago,
    )
    LeadFactory(
        owner=cast.rep,
        stage=Stage.WARM,
        temperature=Temperature.WARM,
        last_contact_at=three_days_ago,
    )  # warm: 7 days
    LeadFactory(
        owner=None,
        team=cast.team,
        stage=Stage.HOT,
        temperature=Temperature.HOT,
        last_contact_at=three_days_ago,
    )  # nobody to remind
    LeadFactory(
        owner=cast.rep,
        stage=Stage.LOST,
        temperature=Temperature.HOT,
        lost_reason="price",
        last_contact_at=three_days_ago,
    )  # closed

    run()

    # Due the day the silence reached two days, not today: created once, not daily.
    assert found(ReminderKind.LEAD_NO_CONTACT) == [
        ("alice@example.com", dt.date(2026, 6, 16), EmailState.PENDING)
    ]
    assert Reminder.objects.get().title == "Hot Co"
    run(TODAY + dt.timedelta(days=1), NOW + dt.timedelta(days=1))
    assert Reminder.objects.count() == 1


def test_lead_silence_counts_in_company_days_on_the_daylight_saving_day(cast):
    """Stockholm moved to summer time on 29 March 2026: 00:30 local is 23:30 UTC the day
    before. The last contact's day is the 29th (company time), so a hot lead is due on
    the 31st, not on the 30th."""
    LeadFactory(
        owner=cast.rep,
        stage=Stage.HOT,
        temperature=Temperature.HOT,
        last_contact_at=local(2026, 3, 29, 0, 30),
    )

    run(dt.date(2026, 3, 30), local(2026, 3, 30, 6))
    assert found(ReminderKind.LEAD_NO_CONTACT) == []

    run(dt.date(2026, 3, 31), local(2026, 3, 31, 6))
    assert [r[1] for r in found(ReminderKind.LEAD_NO_CONTACT)] == [dt.date(2026, 3, 31)]


def test_a_contacted_lead_that_goes_silent_again_is_reminded_again(cast):
    lead = LeadFactory(
        owner=cast.rep,
        stage=Stage.HOT,
        temperature=Temperature.HOT,
        last_contact_at=local(2026, 6, 10, 10),
    )
    run()
    lead.last_contact_at = local(2026, 6, 14, 10)
    lead.save(update_fields=["last_contact_at"])
    run()

    assert [r[1] for r in found(ReminderKind.LEAD_NO_CONTACT)] == [
        dt.date(2026, 6, 12),
        dt.date(2026, 6, 16),
    ]


# --- estimates, to-dos ----------------------------------------------------------------------


@override_settings(REMINDER_ESTIMATE_EXPIRING_DAYS=3)
def test_estimate_expiring_within_three_days(cast):
    EstimateFactory(owner=cast.rep, valid_until=TODAY + dt.timedelta(days=3))
    EstimateFactory(owner=cast.rep, valid_until=TODAY + dt.timedelta(days=4))
    EstimateFactory(
        owner=cast.rep,
        valid_until=TODAY + dt.timedelta(days=1),
        status=EstimateStatus.ACCEPTED,
        issued_on=TODAY - dt.timedelta(days=9),
        decided_on=TODAY - dt.timedelta(days=1),
    )
    EstimateFactory(owner=cast.rep, valid_until=TODAY - dt.timedelta(days=1))

    run()

    assert found(ReminderKind.ESTIMATE_EXPIRING) == [
        ("alice@example.com", TODAY + dt.timedelta(days=3), EmailState.PENDING)
    ]


def test_overdue_to_do(cast):
    ActivityFactory(owner=cast.rep, subject="Send the brochure", due_at=local(2026, 6, 16, 17))
    ActivityFactory(owner=cast.rep, due_at=local(2026, 6, 16, 17), done_at=local(2026, 6, 16, 18))
    ActivityFactory(owner=cast.rep, due_at=local(2026, 6, 17, 9))  # later today
    ActivityFactory(owner=cast.rep)  # not a to-do

    run()

    assert found(ReminderKind.ACTIVITY_OVERDUE) == [
        ("alice@example.com", dt.date(2026, 6, 16), EmailState.PENDING)
    ]
    assert Reminder.objects.get().title == "Send the brochure"


# --- cases --------------------------------------------------------------------------------


def test_case_past_its_deadline_goes_to_the_rep_and_their_manager(cast):
    customer = CustomerFactory(owner=cast.rep, name="Acme AB")
    common = {
        "customer": customer,
        "rep": cast.rep,
        "team": cast.team,
        "source": CaseSource.MANUAL,
        "opened_at": local(2026, 6, 10),
    }
    FollowUpCase.objects.create(summary="Late delivery", deadline=local(2026, 6, 16, 10), **common)
    FollowUpCase.objects.create(summary="Fine", deadline=local(2026, 6, 18, 10), **common)
    FollowUpCase.objects.create(
        summary="Done",
        deadline=local(2026, 6, 12, 10),
        status=CaseStatus.RESOLVED,
        resolution_note="Called back",
        resolved_at=local(2026, 6, 11),
        **common,
    )

    run()

    assert found(ReminderKind.CASE_OVERDUE) == [
        ("alice@example.com", dt.date(2026, 6, 16), EmailState.PENDING),
        ("manager@example.com", dt.date(2026, 6, 16), EmailState.PENDING),
    ]
    assert Reminder.objects.first().title == "Acme AB · Late delivery"


# --- SQL response time ----------------------------------------------------------------------


@override_settings(SQL_RESPONSE_WORKING_DAYS=1)
def test_sql_lead_not_contacted_within_one_working_day(cast):
    # Reached SQL on Friday 15:00: due Monday 15:00 (the weekend does not count).
    friday = local(2026, 6, 12, 15)
    LeadFactory(owner=cast.rep, stage=Stage.SQL, temperature="", reached_sql_at=friday)
    LeadFactory(
        owner=cast.rep,
        stage=Stage.SQL,
        temperature="",
        reached_sql_at=friday,
        last_contact_at=local(2026, 6, 15, 9),
    )  # called Monday morning

    run(dt.date(2026, 6, 15), local(2026, 6, 15, 14))
    assert found(ReminderKind.SQL_NOT_CONTACTED) == []

    run(dt.date(2026, 6, 15), local(2026, 6, 15, 16))
    assert found(ReminderKind.SQL_NOT_CONTACTED) == [
        ("alice@example.com", dt.date(2026, 6, 15), EmailState.PENDING)
    ]
    run(dt.date(2026, 6, 16), local(2026, 6, 16, 16))
    assert Reminder.objects.count() == 1


# --- goals --------------------------------------------------------------------------------


def _goal(cast, **fields) -> Goal:
    values = {
        "period_kind": PeriodKind.MONTH,
        "start": dt.date(2026, 6, 1),
        "end": dt.date(2026, 6, 30),
        "metric": Metric.REVENUE_WON,
        "target": Decimal("30000"),
        "created_by": cast.admin,
    }
    values.update(fields)
    return Goal.objects.create(**values)


def test_goal_behind_pace_at_mid_period_once_per_period(cast):
    # June: mid-period is the 15th. Facts up to yesterday (16 days) give 3,000 of
    # 30,000 * 16/30 = 16,000: pace 0.19.
    DailyRepFact.objects.create(day=dt.date(2026, 6, 5), rep=cast.rep, revenue_won=Decimal("3000"))
    DailyRepFact.objects.create(
        day=dt.date(2026, 6, 5), rep=cast.teammate, revenue_won=Decimal("16000")
    )
    rep_goal = _goal(cast, owner_kind=OwnerKind.REP, rep=cast.rep)
    _goal(cast, owner_kind=OwnerKind.REP, rep=cast.teammate)  # on track
    team_goal = _goal(cast, owner_kind=OwnerKind.TEAM, team=cast.team, target=Decimal("90000"))

    run(dt.date(2026, 6, 14), local(2026, 6, 14, 6))
    assert found(ReminderKind.GOAL_BEHIND) == []  # before mid-period

    run()
    run(TODAY + dt.timedelta(days=1), NOW + dt.timedelta(days=1))

    assert sorted(Reminder.objects.values_list("user__email", "goal_id", "due_on")) == [
        ("alice@example.com", rep_goal.pk, dt.date(2026, 6, 15)),
        ("manager@example.com", team_goal.pk, dt.date(2026, 6, 15)),
    ]


# --- recipients and preferences -------------------------------------------------------------


def test_preferences_and_inactive_users(cast):
    cast.rep.reminder_emails = ReminderEmails.DIGEST
    cast.rep.save(update_fields=["reminder_emails"])
    cast.teammate.reminder_emails = ReminderEmails.NONE
    cast.teammate.save(update_fields=["reminder_emails"])
    cast.other_rep.is_active = False
    cast.other_rep.save(update_fields=["is_active"])
    for user in (cast.rep, cast.teammate, cast.other_rep, cast.manager):
        ActivityFactory(owner=user, due_at=local(2026, 6, 16, 17))

    run()

    assert found(ReminderKind.ACTIVITY_OVERDUE) == [
        ("alice@example.com", dt.date(2026, 6, 16), EmailState.SKIPPED),  # digest only
        ("bob@example.com", dt.date(2026, 6, 16), EmailState.SKIPPED),  # listed, never emailed
        ("manager@example.com", dt.date(2026, 6, 16), EmailState.PENDING),
    ]


def test_old_news_is_listed_but_not_emailed(cast):
    ActivityFactory(owner=cast.rep, due_at=local(2026, 5, 1, 17))

    run()

    assert found(ReminderKind.ACTIVITY_OVERDUE) == [
        ("alice@example.com", dt.date(2026, 5, 1), EmailState.SKIPPED)
    ]


def test_running_every_rule_twice_creates_nothing_new(cast):
    customer = CustomerFactory(owner=cast.rep)
    DealFactory(owner=cast.rep, customer=customer, close_date=TODAY - dt.timedelta(days=30))
    LeadFactory(
        owner=cast.rep,
        stage=Stage.HOT,
        temperature=Temperature.HOT,
        last_contact_at=local(2026, 6, 1),
    )
    EstimateFactory(owner=cast.rep, valid_until=TODAY + dt.timedelta(days=1))
    ActivityFactory(owner=cast.rep, due_at=local(2026, 6, 16, 17))

    first = run()
    second = run()

    assert sum(first.values()) == 4
    assert sum(second.values()) == 0
    assert Reminder.objects.count() == 4


def test_a_failing_rule_does_not_stop_the_others(cast, monkeypatch):
    ActivityFactory(owner=cast.rep, due_at=local(2026, 6, 16, 17))

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setitem(rules.RULES, ReminderKind.CHECK_IN, broken)

    with pytest.raises(rules.RuleFailed) as failure:
        run()

    assert failure.value.kinds == [ReminderKind.CHECK_IN]
    assert failure.value.counts[ReminderKind.ACTIVITY_OVERDUE] == 1
    assert Reminder.objects.count() == 1


def test_the_daily_task_uses_the_company_date(cast):
    # 23:30 UTC on the 16th is already the 17th in Stockholm: the to-do due at
    # 00:10 on the 17th (local) is overdue and due on the 17th.
    ActivityFactory(owner=cast.rep, due_at=local(2026, 6, 17, 0, 10))
    with time_machine.travel(dt.datetime(2026, 6, 16, 23, 30, tzinfo=dt.UTC), tick=False):
        counts = tasks.create_reminders_today()

    assert counts[ReminderKind.ACTIVITY_OVERDUE] == 1
    assert Reminder.objects.get().due_on == dt.date(2026, 6, 17)


# Every rule, set-based: per rule a savepoint and its release (2 * 7), one INSERT ...
# SELECT for each of the five SQL rules, the SQL-lead candidates, and the goals
# (none here). Goals are few: each costs its facts (a team goal also its members).
RULES_QUERIES = 2 * 7 + 5 + 1 + 1


@pytest.mark.parametrize("count", [2, 3])
def test_rule_query_count_does_not_grow_with_rows(cast, django_assert_num_queries, count: int):
    for _index in range(count):
        customer = CustomerFactory(owner=cast.rep)
        DealFactory(owner=cast.rep, customer=customer, close_date=TODAY - dt.timedelta(days=30))
        LeadFactory(
            owner=cast.rep,
            stage=Stage.HOT,
            temperature=Temperature.HOT,
            last_contact_at=local(2026, 6, 1),
        )
        EstimateFactory(owner=cast.rep, valid_until=TODAY + dt.timedelta(days=1))
        ActivityFactory(owner=cast.rep, due_at=local(2026, 6, 16, 17))

    with django_assert_num_queries(RULES_QUERIES):
        counts = rules.run_rules(today=TODAY, now=NOW)

    assert sum(counts.values()) == 4 * count
