"""Goal pages: who sees what, the list with its progress, create, revise, split, reviews."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from goals.models import (
    DailyRepFact,
    Goal,
    GoalReview,
    GoalRevision,
    Metric,
    OwnerKind,
    PeriodKind,
    ReviewStatus,
    RevisionReason,
)
from goals.selectors import goal_progress
from goals.services import goal_create, goal_review_create, goal_revise, goal_split
from tests.conftest import Cast, client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MARCH = dt.date(2026, 3, 1)
# The 16th of March, noon in Stockholm: facts are counted up to the 15th.
NOW = dt.datetime(2026, 3, 16, 11, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _frozen(settings, time_machine) -> None:
    settings.TIME_ZONE = "Europe/Stockholm"
    time_machine.move_to(NOW, tick=False)


def make_goal(cast: Cast, *, kind: str = OwnerKind.REP, target: str = "31000", **extra) -> Goal:
    owner: dict[str, Any] = {}
    if kind == OwnerKind.REP:
        owner = {"rep": extra.pop("rep", cast.rep)}
    elif kind == OwnerKind.TEAM:
        owner = {"team": extra.pop("team", cast.team)}
    data = {
        "actor": extra.pop("actor", cast.admin),
        "owner_kind": kind,
        "metric": Metric.REVENUE_WON,
        "period_kind": PeriodKind.MONTH,
        "start": MARCH,
        "target": Decimal(target),
        **owner,
    }
    return goal_create(**{**data, **extra})


def fact(rep, day: dt.date, **values) -> DailyRepFact:
    return DailyRepFact.objects.create(rep=rep, day=day, **values)


@pytest.fixture
def goals(cast: Cast) -> dict[str, Goal]:
    return {
        "own": make_goal(cast),
        "teammate": make_goal(cast, rep=cast.teammate),
        "team": make_goal(cast, kind=OwnerKind.TEAM),
        "other_team": make_goal(cast, kind=OwnerKind.TEAM, team=cast.other_team),
        "other_rep": make_goal(cast, rep=cast.other_rep),
        "company": make_goal(cast, kind=OwnerKind.COMPANY, target="100000"),
    }


def shown(response) -> str:
    return response.content.decode()


# --- Access: every page, every role ----------------------------------------------------

# (page, goal key) -> expected status per role; reps and others who may see but not
# set a goal get 403 on the pages that change it; a goal not visible is 404.
EXPECTED = {
    ("goal_detail", "own"): {
        "owner_rep": 200,
        "manager": 200,
        "other_rep": 404,
        "marketing": 403,
        "admin": 200,
    },
    ("goal_detail", "team"): {
        "owner_rep": 200,
        "manager": 200,
        "other_rep": 404,
        "marketing": 403,
        "admin": 200,
    },
    ("goal_detail", "company"): {
        "owner_rep": 200,
        "manager": 200,
        "other_rep": 200,
        "marketing": 403,
        "admin": 200,
    },
    ("goal_revise", "own"): {
        "owner_rep": 403,
        "manager": 200,
        "other_rep": 404,
        "marketing": 403,
        "admin": 200,
    },
    ("goal_revise", "company"): {
        "owner_rep": 403,
        "manager": 403,
        "other_rep": 403,
        "marketing": 403,
        "admin": 200,
    },
    ("goal_split", "team"): {
        "owner_rep": 403,
        "manager": 200,
        "other_rep": 404,
        "marketing": 403,
        "admin": 200,
    },
    ("goal_root_cause", "own"): {
        "owner_rep": 200,
        "manager": 200,
        "other_rep": 404,
        "marketing": 403,
        "admin": 200,
    },
    ("goal_root_cause", "team"): {
        "owner_rep": 403,
        "manager": 200,
        "other_rep": 404,
        "marketing": 403,
        "admin": 200,
    },
    ("goal_review_create", "own"): {
        "owner_rep": 403,
        "manager": 200,
        "other_rep": 404,
        "marketing": 403,
        "admin": 200,
    },
}


@pytest.mark.parametrize(("page", "key"), list(EXPECTED))
def test_every_goal_page_for_every_role(
    cast: Cast, goals: dict[str, Goal], page: str, key: str
) -> None:
    url = reverse(f"goals:{page}", args=[goals[key].pk])
    for role, user in cast.roles().items():
        assert client_for(user).get(url).status_code == EXPECTED[(page, key)][role], role


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner_rep", 200), ("manager", 200), ("other_rep", 200), ("marketing", 403), ("admin", 200)],
)
def test_the_list_is_for_the_sales_team(cast: Cast, role: str, status: int) -> None:
    user = cast.roles()[role]
    assert client_for(user).get(reverse("goals:goal_list")).status_code == status


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner_rep", 403), ("manager", 200), ("other_rep", 403), ("marketing", 403), ("admin", 200)],
)
def test_only_managers_and_admins_open_the_create_form(cast: Cast, role: str, status: int) -> None:
    user = cast.roles()[role]
    assert client_for(user).get(reverse("goals:goal_create")).status_code == status


def test_posts_are_refused_like_the_pages(cast: Cast, goals: dict[str, Goal]) -> None:
    own = goals["own"]
    revise = {
        "new_target": "1",
        "reason": RevisionReason.ECONOMY,
        "effective_from": "2026-03-10",
    }
    url = reverse("goals:goal_revise", args=[own.pk])
    assert client_for(cast.rep).post(url, revise).status_code == 403
    assert client_for(cast.other_rep).post(url, revise).status_code == 404
    assert client_for(cast.marketing).post(url, revise).status_code == 403
    assert not GoalRevision.objects.exists()
    split_url = reverse("goals:goal_split", args=[goals["team"].pk])
    target = {f"target_{cast.rep.pk}": "10"}
    assert client_for(cast.rep).post(split_url, target).status_code == 403
    assert client_for(cast.other_manager).post(split_url, target).status_code == 404
    assert not goals["team"].splits.exists()


def test_a_rep_sees_their_goals_their_teams_and_the_companys(
    cast: Cast, goals: dict[str, Goal]
) -> None:
    body = shown(client_for(cast.rep).get(reverse("goals:goal_list")))
    assert body.count('data-testid="goal"') == 3
    assert "Alice Rep" in body and "Team North" in body and "Company" in body
    assert "Bob Rep" not in body and "Charlie Rep" not in body and "Team South" not in body
    assert "New goal" not in body


def test_a_manager_sees_their_teams_goals_and_can_filter(
    cast: Cast, goals: dict[str, Goal]
) -> None:
    client = client_for(cast.manager)
    body = shown(client.get(reverse("goals:goal_list")))
    assert body.count('data-testid="goal"') == 4
    assert "Bob Rep" in body and "Charlie Rep" not in body and "Team South" not in body
    body = shown(client.get(reverse("goals:goal_list"), {"owner_kind": "rep"}))
    assert body.count('data-testid="goal"') == 2
    body = shown(client.get(reverse("goals:goal_list"), {"rep": cast.teammate.pk}))
    assert body.count('data-testid="goal"') == 1 and "Bob Rep" in body
    body = shown(client.get(reverse("goals:goal_list"), {"period": "past"}))
    assert "No goals match these filters." in body
    body = shown(client.get(reverse("goals:goal_list"), {"month": "2026-03"}))
    assert body.count('data-testid="goal"') == 4
    body = shown(client.get(reverse("goals:goal_list"), {"month": "2026-13"}))
    assert "Give a month as YYYY-MM" in body


def test_an_empty_list_invites_to_set_a_goal(cast: Cast) -> None:
    body = shown(client_for(cast.manager).get(reverse("goals:goal_list"), {"period": "all"}))
    assert "No goals yet." in body and reverse("goals:goal_create") in body


def test_the_list_shows_actual_attainment_pace_and_status(cast: Cast) -> None:
    goal = make_goal(cast, target="31000")
    team_goal = make_goal(cast, kind=OwnerKind.TEAM, target="31000")
    company = make_goal(cast, kind=OwnerKind.COMPANY, target="31000")
    # Up to the 15th (15 of 31 days): the pace needs 15,000.
    fact(cast.rep, dt.date(2026, 3, 2), revenue_won=Decimal("9000"))
    fact(cast.teammate, dt.date(2026, 3, 3), revenue_won=Decimal("6000"))
    fact(cast.other_rep, dt.date(2026, 3, 4), revenue_won=Decimal("20000"))
    # Today's and February's facts do not count.
    fact(cast.rep, dt.date(2026, 3, 16), revenue_won=Decimal("50000"))
    fact(cast.rep, dt.date(2026, 2, 28), revenue_won=Decimal("50000"))
    body = shown(client_for(cast.admin).get(reverse("goals:goal_list")))
    assert "Figures up to 03/15/2026" in body
    progress = goal_progress([goal, team_goal, company], today=dt.date(2026, 3, 16))
    rows = {row.goal.pk: row for row in progress}
    assert rows[goal.pk].actual == Decimal("9000")
    assert rows[goal.pk].status == "at_risk"  # 9,000 / 15,000 = 0.6
    assert rows[team_goal.pk].actual == Decimal("15000")
    assert rows[team_goal.pk].status == "on_track"
    assert rows[company.pk].actual == Decimal("35000")
    assert "text-bg-danger" in body and "At risk" in body and "On track" in body


def test_list_queries_do_not_grow_with_goals(
    cast: Cast, goals: dict[str, Goal], django_assert_num_queries
) -> None:
    client = client_for(cast.manager)
    url = reverse("goals:goal_list")
    # 1 session, 2 user, 3 the manager's teams and members (access), 4 count,
    # 5 the page of goals, 6 team members of the team goals, 7 the facts of all
    # goals (one join), 8-9 the rep and team filter choices.
    with django_assert_num_queries(9):
        assert shown(client.get(url)).count('data-testid="goal"') == 4
    make_goal(cast, rep=cast.teammate, metric=Metric.DEALS_WON, target="3")
    make_goal(cast, kind=OwnerKind.TEAM, metric=Metric.NEW_LEADS, target="30")
    with django_assert_num_queries(9):
        assert shown(client.get(url)).count('data-testid="goal"') == 6


def test_the_list_is_paginated(cast: Cast) -> None:
    for _ in range(26):
        make_goal(cast, metric=Metric.DEALS_WON, target="3")
    client = client_for(cast.manager)
    body = shown(client.get(reverse("goals:goal_list")))
    assert body.count('data-testid="goal"') == 25 and "Page 1 of 2" in body
    body = shown(client.get(reverse("goals:goal_list"), {"page": 2}))
    assert body.count('data-testid="goal"') == 1


# --- Create -------------------------------------------------------------------------------


def test_a_manager_creates_a_goal_for_a_rep(cast: Cast) -> None:
    response = client_for(cast.manager).post(
        reverse("goals:goal_create"),
        {
            "owner_kind": "rep",
            "rep": cast.rep.pk,
            "metric": "activities",
            "activity_kind": "call",
            "period_kind": "quarter",
            "start": "2026-02-10",
            "target": "120",
        },
        follow=True,
    )
    goal = Goal.objects.get()
    assert (goal.start, goal.end, goal.activity_kind) == (
        dt.date(2026, 1, 1),
        dt.date(2026, 3, 31),
        "call",
    )
    assert "Goal created." in shown(response)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target": "-5"}, "The target cannot be negative."),
        ({"metric": "deals_won", "target": "2.5"}, "This target is a count"),
        ({"rep": ""}, "Choose the sales rep."),
        ({"period_kind": "custom"}, "Give the last day of the period."),
        ({"metric": "revenue_won", "activity_kind": "call"}, "An activity type goes with"),
        ({"rep": "999999"}, "Select a valid choice"),
    ],
)
def test_bad_goals_show_a_message_and_save_nothing(cast: Cast, changes: dict, message: str) -> None:
    data = {
        "owner_kind": "rep",
        "rep": cast.rep.pk,
        "metric": "revenue_won",
        "period_kind": "month",
        "start": "2026-03-01",
        "target": "1000",
        **changes,
    }
    response = client_for(cast.manager).post(reverse("goals:goal_create"), data)
    assert response.status_code == 200
    assert message in shown(response)
    assert not Goal.objects.exists()


def test_a_manager_cannot_create_for_another_team(cast: Cast) -> None:
    data = {
        "owner_kind": "team",
        "team": cast.other_team.pk,
        "metric": "revenue_won",
        "period_kind": "month",
        "start": "2026-03-01",
        "target": "1000",
    }
    response = client_for(cast.manager).post(reverse("goals:goal_create"), data)
    assert "Select a valid choice" in shown(response)
    data["owner_kind"] = "company"
    response = client_for(cast.manager).post(reverse("goals:goal_create"), data)
    assert "Select a valid choice" in shown(response)
    assert not Goal.objects.exists()


# --- Detail, revise ----------------------------------------------------------------------------


def test_the_detail_shows_revisions_and_the_target_on_a_date(cast: Cast) -> None:
    goal = make_goal(cast, target="30000")
    goal_revise(
        goal=goal,
        actor=cast.manager,
        new_target=Decimal("25000"),
        reason=RevisionReason.ECONOMY,
        comment="Slow market",
        effective_from=dt.date(2026, 3, 10),
        today=dt.date(2026, 3, 16),
    )
    client = client_for(cast.rep)
    url = reverse("goals:goal_detail", args=[goal.pk])
    body = shown(client.get(url))
    assert 'data-testid="revision"' in body and "Slow market" in body and "Economy" in body
    assert "Maria Manager" in body
    assert 'data-testid="revise"' not in body  # a rep reads, does not revise
    body = shown(client.get(url, {"on": "2026-03-05"}))
    assert "30,000.00" in body.split('data-testid="target-on"')[1].split("</p>")[0]
    body = shown(client.get(url, {"on": "2026-03-12"}))
    assert "25,000.00" in body.split('data-testid="target-on"')[1].split("</p>")[0]


def test_a_manager_revises_through_the_form(cast: Cast) -> None:
    goal = make_goal(cast)
    url = reverse("goals:goal_revise", args=[goal.pk])
    client = client_for(cast.manager)
    response = client.post(
        url, {"new_target": "20000", "reason": "other", "effective_from": "2026-03-05"}
    )
    assert "Say what the other reason is." in shown(response)
    response = client.post(
        url, {"new_target": "20000", "reason": "economy", "effective_from": "2026-04-05"}
    )
    assert "The revision counts from a day between" in shown(response)
    assert not GoalRevision.objects.exists()
    response = client.post(
        url,
        {"new_target": "20000", "reason": "competition", "effective_from": "2026-03-05"},
        follow=True,
    )
    assert "Target revised." in shown(response)
    goal.refresh_from_db()
    assert goal.target == Decimal("20000")


# --- Split --------------------------------------------------------------------------------------


def test_the_split_preview_is_prefilled_and_saves_the_edited_targets(cast: Cast) -> None:
    team_goal = make_goal(cast, kind=OwnerKind.TEAM, target="1000.01")
    client = client_for(cast.manager)
    url = reverse("goals:goal_split", args=[team_goal.pk])
    body = shown(client.get(url))
    # The team's members (Alice and Bob) are offered a share; Charlie is in another team.
    assert f'name="target_{cast.rep.pk}"' in body and f'name="target_{cast.teammate.pk}"' in body
    assert f'name="target_{cast.other_rep.pk}"' not in body
    assert "1,000.01" in body.split('data-testid="suggested-total"')[1].split("</p>")[0]
    response = client.post(
        url, {f"target_{cast.rep.pk}": "600", f"target_{cast.teammate.pk}": "300"}, follow=True
    )
    assert "Goal split among 2 reps." in shown(response)
    assert sorted(team_goal.splits.values_list("target", flat=True)) == [
        Decimal("300.00"),
        Decimal("600.00"),
    ]
    body = shown(client.get(reverse("goals:goal_detail", args=[team_goal.pk])))
    assert body.count('data-testid="split-row"') == 2
    warning = body.split('data-testid="split-warning"')[1].split("</div>")[0]
    assert "100.01 less" in warning


def test_a_split_adding_up_shows_no_warning(cast: Cast) -> None:
    team_goal = make_goal(cast, kind=OwnerKind.TEAM, target="900")
    goal_split(
        goal=team_goal,
        actor=cast.manager,
        targets={cast.rep: Decimal("450"), cast.teammate: Decimal("450")},
    )
    body = shown(client_for(cast.manager).get(reverse("goals:goal_detail", args=[team_goal.pk])))
    assert 'data-testid="split-warning"' not in body
    # The rep sees the team goal and only their own share.
    body = shown(client_for(cast.rep).get(reverse("goals:goal_detail", args=[team_goal.pk])))
    assert body.count('data-testid="split-row"') == 1 and 'data-testid="split"' not in body


# --- Reviews -------------------------------------------------------------------------------------


def test_a_manager_records_a_review_and_marks_it_done(cast: Cast) -> None:
    goal = make_goal(cast)
    client = client_for(cast.manager)
    url = reverse("goals:goal_review_create", args=[goal.pk])
    bad = {
        "cause": "price",
        "corrective_action": "Discount policy",
        "action_owner": cast.rep.pk,
        "due_on": "2026-03-01",
    }
    assert "The due date cannot be in the past." in shown(client.post(url, bad))
    outsider = {**bad, "due_on": "2026-03-31", "action_owner": cast.other_rep.pk}
    assert "Select a valid choice" in shown(client.post(url, outsider))
    assert not GoalReview.objects.exists()
    response = client.post(url, {**bad, "due_on": "2026-03-31"}, follow=True)
    assert "Review recorded." in shown(response) and "Discount policy" in shown(response)
    review = GoalReview.objects.get()
    done_url = reverse("goals:goal_review_done", args=[review.pk])
    assert client_for(cast.other_rep).post(done_url).status_code == 404
    assert client_for(cast.marketing).post(done_url).status_code == 403
    assert client_for(cast.teammate).post(done_url).status_code == 404  # not her goal
    # The action owner may close it.
    response = client_for(cast.rep).post(done_url, follow=True)
    assert "Corrective action marked done." in shown(response)
    review.refresh_from_db()
    assert review.status == ReviewStatus.DONE and review.done_at is not None


def test_the_review_list_shows_on_the_goal(cast: Cast) -> None:
    goal = make_goal(cast)
    goal_review_create(
        goal=goal,
        actor=cast.manager,
        cause="delivery",
        corrective_action="Talk to production",
        action_owner=cast.manager,
        due_on=dt.date(2026, 3, 20),
        today=dt.date(2026, 3, 16),
    )
    body = shown(client_for(cast.rep).get(reverse("goals:goal_detail", args=[goal.pk])))
    assert "Delivery or manufacturing delay" in body and "Talk to production" in body
    assert "Record the review" not in body  # the rep reads only
    # A teammate sees the team goal, not Alice's: 404, like someone without a team.
    assert (
        client_for(cast.teammate).get(reverse("goals:goal_detail", args=[goal.pk])).status_code
        == 404
    )
    lonely = UserFactory(display_name="Lonely")
    assert client_for(lonely).get(reverse("goals:goal_detail", args=[goal.pk])).status_code == 404


def test_a_rep_who_sees_a_team_goal_cannot_close_its_review(cast: Cast) -> None:
    team_goal = make_goal(cast, kind=OwnerKind.TEAM)
    review = goal_review_create(
        goal=team_goal,
        actor=cast.manager,
        cause="pipeline",
        corrective_action="More calls",
        action_owner=cast.rep,
        due_on=dt.date(2026, 3, 20),
        today=dt.date(2026, 3, 16),
    )
    done_url = reverse("goals:goal_review_done", args=[review.pk])
    assert client_for(cast.teammate).post(done_url).status_code == 403
    review.refresh_from_db()
    assert review.status == ReviewStatus.OPEN


def test_admin_lists_reviews_awards_and_read_only_snapshots(cast: Cast) -> None:
    goal = make_goal(cast)
    goal_review_create(
        goal=goal,
        actor=cast.manager,
        cause="price",
        corrective_action="New price list",
        action_owner=cast.rep,
        due_on=dt.date(2026, 3, 20),
        today=dt.date(2026, 3, 16),
    )
    client = client_for(cast.admin)
    body = shown(client.get(reverse("admin:goals_goalreview_changelist")))
    assert "Price not competitive" in body
    assert client.get(reverse("admin:goals_award_changelist")).status_code == 200
    assert client.get(reverse("admin:goals_award_add")).status_code == 200
    assert client.get(reverse("admin:goals_forecastsnapshot_changelist")).status_code == 200
    assert client.get(reverse("admin:goals_forecastsnapshot_add")).status_code == 403


def test_without_filters_the_list_shows_the_goals_in_force(cast: Cast) -> None:
    make_goal(cast, start=dt.date(2026, 1, 1))  # January: over
    body = shown(client_for(cast.manager).get(reverse("goals:goal_list")))
    assert "No goals in force now." in body and "Show all periods" in body
    body = shown(client_for(cast.manager).get(reverse("goals:goal_list"), {"period": "past"}))
    assert body.count('data-testid="goal"') == 1 and "Missed" in body
