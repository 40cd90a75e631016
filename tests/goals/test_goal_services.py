"""Goal services not covered by test_goals.py: split suggestions, reviews, goal visibility."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from goals.models import DailyRepFact, Goal, GoalReview, Metric, OwnerKind, PeriodKind, ReviewStatus
from goals.selectors import goal_progress, goals_for_user
from goals.services import (
    SPLIT_BY_SHARE,
    SPLIT_EVENLY,
    goal_create,
    goal_review_create,
    goal_review_done,
    goal_split_suggestion,
)
from tests.conftest import Cast
from tests.factories import ProductLineFactory, UserFactory

pytestmark = pytest.mark.django_db

MARCH = dt.date(2026, 3, 1)


def team_goal(cast: Cast, target: str, metric: str = Metric.REVENUE_WON, **extra) -> Goal:
    return goal_create(
        actor=cast.manager,
        owner_kind=OwnerKind.TEAM,
        team=cast.team,
        metric=metric,
        period_kind=PeriodKind.MONTH,
        start=MARCH,
        target=Decimal(target),
        **extra,
    )


def february(rep, **values) -> None:
    """History in the previous period of the same length (31 days before March: 29 Jan-28 Feb)."""
    DailyRepFact.objects.create(rep=rep, day=dt.date(2026, 2, 10), **values)


# --- Split suggestions ------------------------------------------------------------------


def test_an_even_split_puts_the_odd_cent_on_the_largest_share(cast: Cast) -> None:
    third = UserFactory(team=cast.team)
    goal = team_goal(cast, "100.00")
    reps = [cast.rep, cast.teammate, third]
    suggestion = goal_split_suggestion(goal=goal, reps=reps, method=SPLIT_EVENLY)
    assert sum(suggestion.values()) == Decimal("100.00")
    assert suggestion == {
        cast.rep.pk: Decimal("33.34"),
        cast.teammate.pk: Decimal("33.33"),
        third.pk: Decimal("33.33"),
    }


def test_a_count_is_split_in_whole_units(cast: Cast) -> None:
    third = UserFactory(team=cast.team)
    goal = team_goal(cast, "10", metric=Metric.DEALS_WON)
    suggestion = goal_split_suggestion(
        goal=goal, reps=[cast.rep, cast.teammate, third], method=SPLIT_EVENLY
    )
    assert sorted(suggestion.values()) == [3, 3, 4]
    assert all(value == int(value) for value in suggestion.values())


def test_by_share_follows_last_periods_results(cast: Cast) -> None:
    goal = team_goal(cast, "1000.00")
    february(cast.rep, revenue_won=Decimal("3000"))
    february(cast.teammate, revenue_won=Decimal("1000"))
    # Before the previous period: not counted.
    DailyRepFact.objects.create(rep=cast.teammate, day=dt.date(2026, 1, 20), revenue_won=50000)
    suggestion = goal_split_suggestion(
        goal=goal, reps=[cast.rep, cast.teammate], method=SPLIT_BY_SHARE
    )
    assert suggestion == {cast.rep.pk: Decimal("750.00"), cast.teammate.pk: Decimal("250.00")}


def test_by_share_gives_a_newcomer_an_even_share_and_the_rest_by_result(cast: Cast) -> None:
    newcomer = UserFactory(team=cast.team)
    goal = team_goal(cast, "90", metric=Metric.DEALS_WON)
    february(cast.rep, deals_won=2)
    february(cast.teammate, deals_won=1)
    suggestion = goal_split_suggestion(
        goal=goal, reps=[cast.rep, cast.teammate, newcomer], method=SPLIT_BY_SHARE
    )
    # The newcomer gets 90 / 3 = 30; the other 60 go 2:1.
    assert suggestion == {cast.rep.pk: 40, cast.teammate.pk: 20, newcomer.pk: 30}


def test_by_share_rounds_and_still_adds_up(cast: Cast) -> None:
    goal = team_goal(cast, "100", metric=Metric.ACTIVITIES, activity_kind="call")
    third = UserFactory(team=cast.team)
    february(cast.rep, act_call=1, act_email=100)
    february(cast.teammate, act_call=1)
    february(third, act_call=1)
    suggestion = goal_split_suggestion(
        goal=goal, reps=[cast.rep, cast.teammate, third], method=SPLIT_BY_SHARE
    )
    assert sum(suggestion.values()) == 100
    assert sorted(suggestion.values()) == [33, 33, 34]


def test_without_history_by_share_is_even(cast: Cast) -> None:
    goal = team_goal(cast, "50.00")
    suggestion = goal_split_suggestion(
        goal=goal, reps=[cast.rep, cast.teammate], method=SPLIT_BY_SHARE
    )
    assert list(suggestion.values()) == [Decimal("25.00"), Decimal("25.00")]


def test_a_rate_is_not_divided(cast: Cast) -> None:
    goal = team_goal(cast, "85", metric=Metric.CSAT)
    suggestion = goal_split_suggestion(goal=goal, reps=[cast.rep, cast.teammate])
    assert list(suggestion.values()) == [Decimal(85), Decimal(85)]


def test_an_unknown_method_is_refused(cast: Cast) -> None:
    goal = team_goal(cast, "10.00")
    with pytest.raises(ValidationError):
        goal_split_suggestion(goal=goal, reps=[cast.rep], method="dice")


# --- Reviews -------------------------------------------------------------------------------


def review_data(cast: Cast, **changes) -> dict:
    return {
        "goal": team_goal(cast, "1000.00"),
        "actor": cast.manager,
        "cause": "price",
        "corrective_action": "New price list",
        "action_owner": cast.rep,
        "due_on": dt.date(2026, 3, 20),
        "today": dt.date(2026, 3, 16),
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cause": "weather"}, "cause"),
        ({"corrective_action": "  "}, "corrective_action"),
        ({"due_on": dt.date(2026, 3, 15)}, "due_on"),
        ({"action_owner": "other_rep"}, "action_owner"),
    ],
)
def test_bad_reviews_are_refused_and_save_nothing(cast: Cast, changes: dict, field: str) -> None:
    if changes.get("action_owner") == "other_rep":
        changes["action_owner"] = cast.other_rep
    with pytest.raises(ValidationError) as error:
        goal_review_create(**review_data(cast, **changes))
    assert field in error.value.message_dict
    assert not GoalReview.objects.exists()


def test_only_who_may_set_the_goal_reviews_it(cast: Cast) -> None:
    for actor in (cast.rep, cast.other_manager, cast.marketing):
        with pytest.raises(ValidationError):
            goal_review_create(**review_data(cast, actor=actor))
    assert not GoalReview.objects.exists()


def test_marking_done_twice_is_harmless(cast: Cast) -> None:
    review = goal_review_create(**review_data(cast))
    done = goal_review_done(review=review, actor=cast.rep)
    first = done.done_at
    again = goal_review_done(review=review, actor=cast.manager)
    assert again.status == ReviewStatus.DONE and again.done_at == first
    with pytest.raises(ValidationError):
        goal_review_done(review=review, actor=cast.teammate)


# --- Visibility and progress ---------------------------------------------------------------


def test_goals_for_user_follows_the_roles(cast: Cast) -> None:
    own = goal_create(
        actor=cast.manager,
        owner_kind=OwnerKind.REP,
        rep=cast.rep,
        metric=Metric.DEALS_WON,
        period_kind=PeriodKind.MONTH,
        start=MARCH,
        target=Decimal(3),
    )
    team = team_goal(cast, "10.00")
    company = goal_create(
        actor=cast.admin,
        owner_kind=OwnerKind.COMPANY,
        metric=Metric.DEALS_WON,
        period_kind=PeriodKind.YEAR,
        start=MARCH,
        target=Decimal(300),
    )
    assert set(goals_for_user(user=cast.rep)) == {own, team, company}
    assert set(goals_for_user(user=cast.teammate)) == {team, company}
    assert set(goals_for_user(user=cast.other_rep)) == {company}
    assert set(goals_for_user(user=cast.manager)) == {own, team, company}
    assert set(goals_for_user(user=cast.other_manager)) == {company}
    assert set(goals_for_user(user=cast.marketing)) == set()
    assert set(goals_for_user(user=cast.admin)) == {own, team, company}


def test_progress_narrows_by_product_line_and_counts_unassigned_leads_for_the_company(
    cast: Cast,
) -> None:
    line, other_line = ProductLineFactory(), ProductLineFactory()
    narrowed = team_goal(cast, "100.00", product_line=line)
    leads = goal_create(
        actor=cast.admin,
        owner_kind=OwnerKind.COMPANY,
        metric=Metric.NEW_LEADS,
        period_kind=PeriodKind.MONTH,
        start=MARCH,
        target=Decimal(10),
    )
    day = dt.date(2026, 3, 2)
    DailyRepFact.objects.create(rep=cast.rep, day=day, product_line=line, revenue_won=40)
    DailyRepFact.objects.create(rep=cast.rep, day=day, product_line=other_line, revenue_won=99)
    DailyRepFact.objects.create(rep=None, day=day, leads_created=3)
    DailyRepFact.objects.create(rep=cast.other_rep, day=day, leads_created=2)
    rows = goal_progress([narrowed, leads], today=dt.date(2026, 3, 11))
    assert rows[0].actual == Decimal(40)
    # 10 of 31 days elapsed: pace = 40 / (100 * 10/31) = 1.24.
    assert rows[0].status == "on_track"
    assert rows[1].actual == Decimal(5)


def test_a_goal_over_is_met_or_missed_and_a_future_one_not_started(cast: Cast) -> None:
    goal = team_goal(cast, "100.00")
    DailyRepFact.objects.create(rep=cast.rep, day=dt.date(2026, 3, 31), revenue_won=99)
    (over,) = goal_progress([goal], today=dt.date(2026, 4, 2))
    assert over.status == "missed" and over.attainment == Decimal("0.99")
    (early,) = goal_progress([goal], today=dt.date(2026, 3, 1))
    assert early.status == "not_started" and early.actual is None


def test_progress_reads_each_metric_from_its_own_columns(cast: Cast) -> None:
    def rep_goal(metric: str, target: int, **extra) -> Goal:
        return goal_create(
            actor=cast.manager,
            owner_kind=OwnerKind.REP,
            rep=cast.rep,
            metric=metric,
            period_kind=PeriodKind.MONTH,
            start=MARCH,
            target=Decimal(target),
            **extra,
        )

    goals = [
        rep_goal(Metric.CSAT, 80),
        rep_goal(Metric.NPS, 10),
        rep_goal(Metric.ACTIVITIES, 10),
        rep_goal(Metric.ACTIVITIES, 10, activity_kind="demo"),
        rep_goal(Metric.ESTIMATE_VALUE, 10),
        rep_goal(Metric.DEALS_WON, 10),
        rep_goal(Metric.NEW_LEADS, 10),
    ]
    DailyRepFact.objects.create(
        rep=cast.rep,
        day=dt.date(2026, 3, 3),
        csat_answered=4,
        csat_satisfied=3,
        nps_answered=5,
        nps_promoters=3,
        nps_detractors=1,
        act_call=2,
        act_demo=1,
        estimate_value_issued=Decimal("1234.50"),
        deals_won=2,
        leads_created=7,
        revenue_won=999,
    )
    actuals = [row.actual for row in goal_progress(goals, today=dt.date(2026, 3, 10))]
    assert actuals == [
        Decimal(75),
        Decimal(40),
        Decimal(3),
        Decimal(1),
        Decimal("1234.50"),
        Decimal(2),
        Decimal(7),
    ]
    statuses = [row.status for row in goal_progress(goals[:2], today=dt.date(2026, 3, 10))]
    assert statuses == ["behind", "on_track"]
