"""Leaderboards: order and ties, metrics, and who sees which board."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import User
from goals.dashboards import competition_ranks
from goals.kpis import compute_facts_range, refresh_weekly_facts
from goals.leaderboards import BoardMetric, leaderboard
from goals.models import DailyRepFact, Goal, Metric, OwnerKind, PeriodKind
from tests.conftest import Cast, client_for
from tests.factories import UserFactory
from tests.goals.builders import deal

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 16, 11, 0, tzinfo=dt.UTC)
START, END = dt.date(2026, 3, 1), dt.date(2026, 3, 15)


@pytest.fixture(autouse=True)
def _frozen(settings, time_machine) -> None:
    settings.TIME_ZONE = "Europe/Stockholm"
    time_machine.move_to(NOW, tick=False)


def test_competition_ranks_share_ties() -> None:
    assert competition_ranks([9, 7, 7, 5]) == [1, 2, 2, 4]
    assert competition_ranks([]) == []


def test_ties_share_a_rank_and_are_listed_by_name(cast: Cast) -> None:
    zed = UserFactory(team=cast.team, display_name="Zed Rep")
    for rep, amount in [(cast.rep, "500"), (cast.teammate, "900"), (zed, "500")]:
        deal(owner=rep, close_date=dt.date(2026, 3, 2), amount=amount)
    compute_facts_range(START, END)
    board = leaderboard(
        reps=[cast.rep, cast.teammate, zed], metric=BoardMetric.REVENUE, start=START, end=END
    )
    assert [(row.rep.display_name, row.rank) for row in board.rows] == [
        ("Bob Rep", 1),
        ("Alice Rep", 2),
        ("Zed Rep", 2),
    ]


def fact(rep: User, **columns: int) -> None:
    """A fact written directly, as the KPI job would (its weekly sums refreshed too)."""
    DailyRepFact.objects.create(day=dt.date(2026, 3, 3), rep=rep, **columns)
    refresh_weekly_facts()


def test_csat_needs_five_answers_to_rank(cast: Cast) -> None:
    fact(cast.rep, csat_answered=5, csat_satisfied=4)
    fact(cast.teammate, csat_answered=4, csat_satisfied=4)
    board = leaderboard(
        reps=[cast.rep, cast.teammate], metric=BoardMetric.CSAT, start=START, end=END
    )
    assert [(row.rep, row.value, row.rank) for row in board.rows] == [
        (cast.rep, Decimal("80.0"), 1),
        (cast.teammate, None, None),
    ]
    assert board.ranked == 1


def test_attainment_of_the_revenue_goal(cast: Cast) -> None:
    fact(cast.rep, revenue_won=1500)
    fact(cast.teammate, revenue_won=9000)  # no goal: not ranked
    Goal.objects.create(
        owner_kind=OwnerKind.REP,
        rep=cast.rep,
        period_kind=PeriodKind.MONTH,
        start=dt.date(2026, 3, 1),
        end=dt.date(2026, 3, 31),
        metric=Metric.REVENUE_WON,
        target=Decimal(3000),
    )
    board = leaderboard(
        reps=[cast.rep, cast.teammate],
        metric=BoardMetric.ATTAINMENT,
        start=START,
        end=END,
        quota_end=dt.date(2026, 3, 31),
    )
    assert [(row.rep, row.value) for row in board.rows] == [
        (cast.rep, Decimal("50.0")),
        (cast.teammate, None),
    ]


def test_deals_and_activities_metrics(cast: Cast) -> None:
    fact(cast.rep, deals_won=2, act_call=3, act_email=1)
    fact(cast.teammate, deals_won=3, act_demo=1)
    deals = leaderboard(reps=[cast.rep, cast.teammate], metric="deals_won", start=START, end=END)
    assert [row.rep for row in deals.rows] == [cast.teammate, cast.rep]
    acts = leaderboard(reps=[cast.rep, cast.teammate], metric="activities", start=START, end=END)
    assert [(row.rep, row.value) for row in acts.rows] == [(cast.rep, 4), (cast.teammate, 1)]


@pytest.fixture
def company(cast: Cast) -> Cast:
    fact(cast.rep, revenue_won=300)
    fact(cast.teammate, revenue_won=100)
    fact(cast.other_rep, revenue_won=900)
    return cast


def board_names(response) -> list[str]:
    html = response.content.decode()
    return [part.split("</td>", 1)[0] for part in html.split('data-testid="name">')[1:]]


def test_rep_sees_the_team_board_and_only_their_company_rank(company: Cast) -> None:
    response = client_for(company.rep).get(reverse("goals:leaderboard"))
    html = response.content.decode()
    assert board_names(response) == ["Alice Rep", "Bob Rep"]
    assert "number 2 of 3" in html
    assert "Charlie Rep" not in html and "900" not in html
    # Asking for the company board or another team changes nothing for a rep.
    asked = client_for(company.rep).get(reverse("goals:leaderboard"), {"board": "company"})
    assert "Charlie Rep" not in asked.content.decode()
    other = {"board": company.other_team.pk}
    assert (
        "Charlie Rep"
        not in client_for(company.rep).get(reverse("goals:leaderboard"), other).content.decode()
    )


def test_manager_sees_their_team_and_their_reps_company_ranks(company: Cast) -> None:
    client = client_for(company.manager)
    assert board_names(client.get(reverse("goals:leaderboard"))) == ["Alice Rep", "Bob Rep"]
    ranks = client.get(reverse("goals:leaderboard"), {"board": "company"})
    assert board_names(ranks) == ["Alice Rep", "Bob Rep"]
    assert "Charlie Rep" not in ranks.content.decode()
    assert [row.rank for row in ranks.context["company_rows"]] == [2, 3]
    other = client.get(reverse("goals:leaderboard"), {"board": company.other_team.pk})
    assert other.status_code == 404


def test_admin_sees_the_company_board(company: Cast) -> None:
    response = client_for(company.admin).get(reverse("goals:leaderboard"), {"metric": "revenue"})
    assert board_names(response) == ["Charlie Rep", "Alice Rep", "Bob Rep"]


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner_rep", 200), ("manager", 200), ("other_rep", 200), ("marketing", 403), ("admin", 200)],
)
def test_leaderboard_per_role(cast: Cast, role: str, status: int) -> None:
    assert client_for(cast.roles()[role]).get(reverse("goals:leaderboard")).status_code == status


def test_bad_metric_gets_a_message(cast: Cast) -> None:
    response = client_for(cast.admin).get(reverse("goals:leaderboard"), {"metric": "height"})
    assert response.status_code == 200
    assert "Choose a metric from the list." in response.content.decode()


@pytest.mark.parametrize("count", [1, 5])
def test_leaderboard_queries_do_not_grow(cast: Cast, django_assert_num_queries, count: int) -> None:
    for _ in range(count):
        fact(UserFactory(team=cast.team), revenue_won=100)
    client = client_for(cast.admin)
    # 1-2. session and user; 3. teams for the picker; 4. facts by rep; 5. the people.
    with django_assert_num_queries(5):
        client.get(reverse("goals:leaderboard"), {"board": "company"})
    rep = client_for(cast.rep)
    # 1-2. session and user; 3. the team; 4. its members; 5. facts by rep (team);
    # 6-7. facts by rep (company) and the people, for the rep's own company rank.
    with django_assert_num_queries(7):
        rep.get(reverse("goals:leaderboard"))
