"""The demo's goals (seed_demo): a year of monthly team goals split to reps, the
current quarter, a company goal, revisions and reviews; made once, the same every time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum

from goals import demo
from goals.models import Goal, GoalReview, GoalRevision, Metric, OwnerKind, PeriodKind
from goals.selectors import goal_target_on
from tests.conftest import Cast
from tests.factories import TeamFactory, UserFactory
from tests.factories_leads import CustomerFactory, DealFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 5, 16)


def sales(rep, amount: str, months: int = 12) -> None:
    customer = CustomerFactory(owner=rep)
    for back in range(1, months + 1):
        DealFactory(
            owner=rep,
            customer=customer,
            amount=Decimal(amount),
            close_date=TODAY - dt.timedelta(days=30 * back),
        )


def snapshot() -> list[tuple]:
    return list(
        Goal.objects.order_by("pk").values_list(
            "owner_kind", "rep__email", "team__name", "start", "end", "metric", "target"
        )
    )


def test_a_year_of_goals_split_to_reps(cast: Cast) -> None:
    sales(cast.rep, "30000")
    result = demo.seed_goals(today=TODAY)
    assert result is not None
    monthly = Goal.objects.filter(period_kind=PeriodKind.MONTH, owner_kind=OwnerKind.TEAM)
    # North (Alice, Bob) and South (Charlie): 13 months each (May 2025 - May 2026).
    assert monthly.filter(team=cast.team).count() == 13
    assert monthly.filter(team=cast.other_team).count() == 13
    assert min(monthly.values_list("start", flat=True)) == dt.date(2025, 5, 1)
    for team_goal in monthly.filter(team=cast.team):
        splits = team_goal.splits.all()
        assert {goal.rep_id for goal in splits} == {cast.rep.pk, cast.teammate.pk}
        # Each split adds up to the team's target as set (revisions aside).
        set_with = sum(goal_target_on(goal, goal.start) for goal in splits)
        assert set_with == team_goal.target
    # Alice sells about 30,000 a month: her targets follow, Bob's are the default.
    alice = Goal.objects.filter(rep=cast.rep, metric=Metric.REVENUE_WON)
    assert all(Decimal(20000) <= goal.target <= Decimal(40000) for goal in alice)
    quarter = Goal.objects.filter(period_kind=PeriodKind.QUARTER)
    assert quarter.filter(owner_kind=OwnerKind.TEAM).count() == 2
    assert quarter.filter(metric=Metric.ACTIVITIES, activity_kind="call").count() == 3
    company = Goal.objects.get(owner_kind=OwnerKind.COMPANY)
    assert (company.start, company.end) == (dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    revisions = GoalRevision.objects.select_related("goal")
    assert revisions.count() >= 3
    for revision in revisions:
        assert revision.goal.target == revision.new_target and revision.reason
    assert GoalReview.objects.count() >= 1
    review = GoalReview.objects.select_related("goal").first()
    assert review.goal.start == dt.date(2026, 4, 1) and review.action_owner_id == review.goal.rep_id


def test_seeding_twice_changes_nothing_and_is_the_same_everywhere(cast: Cast) -> None:
    sales(cast.rep, "25000")
    demo.seed_goals(today=TODAY)
    first = snapshot()
    counts = (GoalRevision.objects.count(), GoalReview.objects.count())
    assert demo.seed_goals(today=TODAY) is None
    assert snapshot() == first
    assert (GoalRevision.objects.count(), GoalReview.objects.count()) == counts
    # The same data again from scratch gives the same targets.
    GoalReview.objects.all().delete()
    Goal.objects.filter(parent__isnull=False).delete()
    Goal.objects.all().delete()
    demo.seed_goals(today=TODAY)
    assert [row[:6] for row in snapshot()] == [row[:6] for row in first]
    assert sorted(row[6] for row in snapshot()) == sorted(row[6] for row in first)


def test_a_team_added_later_gets_its_goals_and_the_others_are_kept(cast: Cast) -> None:
    demo.seed_goals(today=TODAY, teams=["North"])
    assert not Goal.objects.filter(team=cast.other_team).exists()
    before = Goal.objects.count()
    result = demo.seed_goals(today=TODAY)
    assert result is not None and result.counts["team goals"] == 13
    assert Goal.objects.count() > before
    assert Goal.objects.filter(team=cast.other_team, period_kind=PeriodKind.MONTH).count() == 13


def test_large_scale_is_bulk_and_quick(cast: Cast, django_assert_max_num_queries) -> None:
    for number in range(10):
        team = TeamFactory(name=f"Large {number}")
        for _ in range(10):
            UserFactory(team=team)
    # A constant number of queries whatever the number of teams and reps.
    with django_assert_max_num_queries(20):
        result = demo.seed_goals(today=TODAY)
    assert result is not None
    assert result.counts["rep goals"] == (100 + 3) * 13
    total = Goal.objects.filter(owner_kind=OwnerKind.TEAM, period_kind=PeriodKind.MONTH)
    assert total.aggregate(Sum("target"))["target__sum"] > 0
