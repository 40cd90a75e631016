"""Goals: constraints, creation, revisions (and the target in force on a day), splits."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from goals.models import Goal, GoalRevision, Metric, OwnerKind, PeriodKind, RevisionReason
from goals.selectors import goal_actual, goal_target_on, revenue_quota_for
from goals.services import goal_create, goal_revise, goal_split, period_bounds
from leads.models import ActivityKind
from tests.conftest import Cast
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def march_goal(cast: Cast, target: str = "100000", **extra) -> Goal:
    data = {
        "actor": cast.manager,
        "owner_kind": OwnerKind.REP,
        "rep": cast.rep,
        "metric": Metric.REVENUE_WON,
        "period_kind": PeriodKind.MONTH,
        "start": dt.date(2026, 3, 14),
        "target": Decimal(target),
    }
    return goal_create(**{**data, **extra})


# --- Constraints in the database ----------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "with_rep", "with_team"),
    [
        (OwnerKind.REP, False, False),
        (OwnerKind.REP, True, True),
        (OwnerKind.TEAM, True, False),
        (OwnerKind.TEAM, False, False),
        (OwnerKind.COMPANY, True, False),
        (OwnerKind.COMPANY, False, True),
    ],
)
def test_exactly_the_owner_of_the_kind_is_set(
    cast: Cast, kind: str, with_rep: bool, with_team: bool
) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Goal.objects.create(
            owner_kind=kind,
            rep=cast.rep if with_rep else None,
            team=cast.team if with_team else None,
            period_kind=PeriodKind.MONTH,
            start=dt.date(2026, 3, 1),
            end=dt.date(2026, 3, 31),
            metric=Metric.DEALS_WON,
            target=10,
        )


def test_a_period_cannot_end_before_it_starts(cast: Cast) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Goal.objects.create(
            owner_kind=OwnerKind.COMPANY,
            period_kind=PeriodKind.CUSTOM,
            start=dt.date(2026, 3, 31),
            end=dt.date(2026, 3, 1),
            metric=Metric.DEALS_WON,
            target=10,
        )


# --- Creating ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "day", "bounds"),
    [
        (PeriodKind.MONTH, dt.date(2026, 2, 14), (dt.date(2026, 2, 1), dt.date(2026, 2, 28))),
        (PeriodKind.QUARTER, dt.date(2026, 11, 30), (dt.date(2026, 10, 1), dt.date(2026, 12, 31))),
        (PeriodKind.YEAR, dt.date(2026, 7, 4), (dt.date(2026, 1, 1), dt.date(2026, 12, 31))),
    ],
)
def test_period_bounds(kind: str, day: dt.date, bounds: tuple[dt.date, dt.date]) -> None:
    assert period_bounds(kind, day) == bounds


def test_a_month_goal_covers_the_whole_month(cast: Cast) -> None:
    goal = march_goal(cast)
    assert (goal.start, goal.end, goal.target) == (
        dt.date(2026, 3, 1),
        dt.date(2026, 3, 31),
        Decimal(100000),
    )
    assert goal.created_by == cast.manager


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"target": Decimal(-5)}, "target"),
        ({"metric": Metric.NPS, "target": Decimal(120)}, "target"),
        ({"metric": Metric.CSAT, "target": Decimal(101)}, "target"),
        ({"metric": Metric.DEALS_WON, "target": Decimal("2.5")}, "target"),
        ({"activity_kind": ActivityKind.CALL}, "activity_kind"),
        ({"metric": Metric.ACTIVITIES, "activity_kind": "juggling"}, "activity_kind"),
        ({"period_kind": PeriodKind.CUSTOM}, "end"),
        ({"period_kind": PeriodKind.CUSTOM, "end": dt.date(2026, 1, 1)}, "end"),
        ({"metric": "happiness"}, "metric"),
    ],
)
def test_bad_goals_are_refused_with_a_message(cast: Cast, changes: dict, field: str) -> None:
    data = {
        "actor": cast.manager,
        "owner_kind": OwnerKind.REP,
        "rep": cast.rep,
        "metric": Metric.REVENUE_WON,
        "period_kind": PeriodKind.MONTH,
        "start": dt.date(2026, 3, 1),
        "target": Decimal(1000),
        **changes,
    }
    with pytest.raises(ValidationError) as refused:
        goal_create(**data)
    assert field in refused.value.message_dict
    assert not Goal.objects.exists()


def test_an_nps_goal_may_be_negative(cast: Cast) -> None:
    goal = goal_create(
        actor=cast.admin,
        owner_kind=OwnerKind.COMPANY,
        metric=Metric.NPS,
        period_kind=PeriodKind.YEAR,
        start=dt.date(2026, 1, 1),
        target=Decimal(-10),
    )
    assert goal.target == Decimal(-10)


@pytest.mark.parametrize("who", ["rep", "other_manager", "marketing", "other_rep"])
def test_only_their_manager_or_an_admin_sets_a_reps_goal(cast: Cast, who: str) -> None:
    with pytest.raises(ValidationError):
        goal_create(
            actor=getattr(cast, who),
            owner_kind=OwnerKind.REP,
            rep=cast.rep,
            metric=Metric.DEALS_WON,
            period_kind=PeriodKind.MONTH,
            start=dt.date(2026, 3, 1),
            target=Decimal(5),
        )
    assert not Goal.objects.exists()


def test_company_goals_are_for_admins(cast: Cast) -> None:
    data = {
        "owner_kind": OwnerKind.COMPANY,
        "metric": Metric.NEW_LEADS,
        "period_kind": PeriodKind.QUARTER,
        "start": dt.date(2026, 4, 1),
        "target": Decimal(5000),
    }
    with pytest.raises(ValidationError):
        goal_create(actor=cast.manager, **data)
    assert goal_create(actor=cast.admin, **data).owner_kind == OwnerKind.COMPANY


# --- Revisions and the target in force on a day ----------------------------------------


def test_goal_target_on_follows_the_revisions(cast: Cast) -> None:
    goal = march_goal(cast)
    goal_revise(
        goal=goal,
        actor=cast.manager,
        new_target=Decimal(120000),
        reason=RevisionReason.PERFORMANCE,
        effective_from=dt.date(2026, 3, 10),
        today=dt.date(2026, 3, 10),
    )
    goal_revise(
        goal=goal,
        actor=cast.manager,
        new_target=Decimal(90000),
        reason=RevisionReason.ECONOMY,
        effective_from=dt.date(2026, 3, 20),
        today=dt.date(2026, 3, 22),
        comment="Orders dried up after the price rise.",
    )
    goal.refresh_from_db()
    assert goal.target == Decimal(90000)  # the target in force now
    assert goal_target_on(goal, dt.date(2026, 2, 28)) == Decimal(100000)
    assert goal_target_on(goal, dt.date(2026, 3, 9)) == Decimal(100000)
    assert goal_target_on(goal, dt.date(2026, 3, 10)) == Decimal(120000)
    assert goal_target_on(goal, dt.date(2026, 3, 19)) == Decimal(120000)
    assert goal_target_on(goal, dt.date(2026, 3, 31)) == Decimal(90000)
    revisions = list(goal.revisions.values_list("old_target", "new_target", "reason"))
    assert revisions == [
        (Decimal(100000), Decimal(120000), RevisionReason.PERFORMANCE),
        (Decimal(120000), Decimal(90000), RevisionReason.ECONOMY),
    ]


def test_a_revision_reaching_back_keeps_the_later_one_in_force(cast: Cast) -> None:
    goal = march_goal(cast)
    goal_revise(
        goal=goal,
        actor=cast.manager,
        new_target=Decimal(80000),
        reason=RevisionReason.COMPETITION,
        effective_from=dt.date(2026, 3, 20),
        today=dt.date(2026, 3, 25),
    )
    # Made later, but in force from earlier: the 20th's revision still wins from the 20th.
    revision = goal_revise(
        goal=goal,
        actor=cast.manager,
        new_target=Decimal(95000),
        reason=RevisionReason.ECONOMY,
        effective_from=dt.date(2026, 3, 5),
        today=dt.date(2026, 3, 26),
    )
    assert revision.old_target == Decimal(100000)
    goal.refresh_from_db()
    assert goal.target == Decimal(80000)
    assert goal_target_on(goal, dt.date(2026, 3, 4)) == Decimal(100000)
    assert goal_target_on(goal, dt.date(2026, 3, 10)) == Decimal(95000)
    assert goal_target_on(goal, dt.date(2026, 3, 21)) == Decimal(80000)


def test_a_goal_without_revisions_has_its_own_target(cast: Cast) -> None:
    goal = march_goal(cast)
    assert goal_target_on(goal, dt.date(2026, 3, 15)) == Decimal(100000)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"effective_from": dt.date(2026, 3, 25)}, "effective_from"),  # in the future
        ({"effective_from": dt.date(2026, 2, 28)}, "effective_from"),  # before the period
        ({"reason": "mood"}, "reason"),
        ({"reason": RevisionReason.OTHER}, "comment"),
        ({"new_target": Decimal(-1)}, "new_target"),
        ({"new_target": Decimal(100000)}, "new_target"),  # no change
    ],
)
def test_bad_revisions_are_refused_and_save_nothing(cast: Cast, changes: dict, field: str) -> None:
    goal = march_goal(cast)
    data = {
        "goal": goal,
        "actor": cast.manager,
        "new_target": Decimal(110000),
        "reason": RevisionReason.PERFORMANCE,
        "effective_from": dt.date(2026, 3, 10),
        "today": dt.date(2026, 3, 15),
        **changes,
    }
    with pytest.raises(ValidationError) as refused:
        goal_revise(**data)
    assert field in refused.value.message_dict
    assert not GoalRevision.objects.exists()
    goal.refresh_from_db()
    assert goal.target == Decimal(100000)


def test_a_rep_cannot_revise_their_own_goal(cast: Cast) -> None:
    goal = march_goal(cast)
    with pytest.raises(ValidationError):
        goal_revise(
            goal=goal,
            actor=cast.rep,
            new_target=Decimal(1),
            reason=RevisionReason.PERFORMANCE,
            effective_from=dt.date(2026, 3, 10),
            today=dt.date(2026, 3, 15),
        )
    assert not GoalRevision.objects.exists()


def test_before_the_period_a_revision_counts_from_its_first_day(cast: Cast) -> None:
    goal = march_goal(cast)
    goal_revise(
        goal=goal,
        actor=cast.manager,
        new_target=Decimal(70000),
        reason=RevisionReason.ECONOMY,
        effective_from=dt.date(2026, 3, 1),
        today=dt.date(2026, 2, 20),
    )
    goal.refresh_from_db()
    assert goal.target == Decimal(70000)


# --- Splitting -------------------------------------------------------------------------


def team_goal(cast: Cast) -> Goal:
    return goal_create(
        actor=cast.manager,
        owner_kind=OwnerKind.TEAM,
        team=cast.team,
        metric=Metric.DEALS_WON,
        period_kind=PeriodKind.QUARTER,
        start=dt.date(2026, 4, 1),
        target=Decimal(30),
    )


def test_a_team_goal_splits_among_its_members(cast: Cast) -> None:
    goal = team_goal(cast)
    splits = goal_split(
        goal=goal, actor=cast.manager, targets={cast.rep: Decimal(20), cast.teammate: Decimal(10)}
    )
    assert {(g.rep, g.target, g.parent_id, g.metric) for g in splits} == {
        (cast.rep, Decimal(20), goal.pk, Metric.DEALS_WON),
        (cast.teammate, Decimal(10), goal.pk, Metric.DEALS_WON),
    }
    assert {(g.start, g.end) for g in splits} == {(goal.start, goal.end)}


def test_a_split_to_someone_outside_the_team_or_twice_is_refused(cast: Cast) -> None:
    goal = team_goal(cast)
    with pytest.raises(ValidationError):
        goal_split(goal=goal, actor=cast.manager, targets={cast.other_rep: Decimal(5)})
    goal_split(goal=goal, actor=cast.manager, targets={cast.rep: Decimal(5)})
    with pytest.raises(ValidationError):
        goal_split(goal=goal, actor=cast.manager, targets={cast.rep: Decimal(5)})
    assert goal.splits.count() == 1


def test_a_company_goal_split_is_for_admins(cast: Cast) -> None:
    goal = goal_create(
        actor=cast.admin,
        owner_kind=OwnerKind.COMPANY,
        metric=Metric.REVENUE_WON,
        period_kind=PeriodKind.YEAR,
        start=dt.date(2026, 1, 1),
        target=Decimal(1000000),
    )
    newcomer = UserFactory(team=cast.other_team)
    with pytest.raises(ValidationError):
        goal_split(goal=goal, actor=cast.manager, targets={cast.rep: Decimal(5)})
    splits = goal_split(goal=goal, actor=cast.admin, targets={newcomer: Decimal(250000)})
    assert splits[0].parent == goal


def test_goal_actual_and_revenue_quota(cast: Cast) -> None:
    totals = {
        "revenue_won": Decimal(500),
        "deals_won": 3,
        "estimate_value_issued": Decimal(1500),
        "leads_created": 7,
        "act_call": 4,
        "act_email": 2,
        **{c: 0 for c in ("act_meeting", "act_demo", "act_sales_meeting", "act_event")},
        **{c: 0 for c in ("act_follow_up", "act_note")},
        "csat_answered": 4,
        "csat_satisfied": 3,
        "nps_answered": 0,
        "nps_promoters": 0,
        "nps_detractors": 0,
    }
    revenue = march_goal(cast)
    calls = march_goal(cast, "10", metric=Metric.ACTIVITIES, activity_kind=ActivityKind.CALL)
    activities = march_goal(cast, "10", metric=Metric.ACTIVITIES)
    csat = march_goal(cast, "90", metric=Metric.CSAT)
    nps = march_goal(cast, "30", metric=Metric.NPS)
    assert goal_actual(revenue, totals) == Decimal(500)
    assert goal_actual(calls, totals) == Decimal(4)
    assert goal_actual(activities, totals) == Decimal(6)
    assert goal_actual(csat, totals) == Decimal(75)
    assert goal_actual(nps, totals) is None
    assert revenue_quota_for([revenue, calls, march_goal(cast, "50")]) == Decimal(100050)
    assert revenue_quota_for([calls]) is None
