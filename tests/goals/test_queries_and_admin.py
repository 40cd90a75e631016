"""Query counts of kpis_for, and the Django admin of goals and facts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from goals.kpis import compute_facts_range
from goals.models import DailyRepFact, GoalRevision, Metric, OwnerKind, PeriodKind, RevisionReason
from goals.selectors import kpis_for
from goals.services import goal_create, goal_revise
from leads.models import DealStatus, Stage
from tests.conftest import Cast, client_for
from tests.factories import UserFactory
from tests.goals.builders import activity, deal, estimate, lead, local

pytestmark = pytest.mark.django_db

START, END = dt.date(2026, 3, 1), dt.date(2026, 3, 31)


@pytest.fixture(autouse=True)
def _company_time_zone(settings) -> None:
    settings.TIME_ZONE = "Europe/Stockholm"


def busy_reps(cast: Cast, count: int) -> list[User]:
    reps = [UserFactory(team=cast.team) for _ in range(count)]
    for n, rep in enumerate(reps):
        day = START + dt.timedelta(days=n % 28)
        won = lead(
            owner=rep,
            created=local(2026, 2, 20),
            stage=Stage.WON,
            mql=local(2026, 2, 21),
            sql=local(2026, 2, 22),
            decided=local(day.year, day.month, day.day, 15),
        )
        deal(owner=rep, close_date=day, lead=won, amount=1000 + n)
        deal(owner=rep, close_date=day, status=DealStatus.LOST)
        estimate(owner=rep, issued_on=day)
        activity(owner=rep, at=local(day.year, day.month, day.day, 10))
    compute_facts_range(dt.date(2026, 2, 1), END)
    return reps


@pytest.mark.parametrize("as_queryset", [False, True])
def test_kpis_for_takes_the_same_queries_for_1_and_20_reps(
    cast: Cast, django_assert_num_queries, as_queryset: bool
) -> None:
    """Expected queries, whatever the number of reps, days or rows:
    1. SUM of every fact column over the scope and range (DailyRepFact);
    2. the raw won deals of the range: median cycle, customers, repeat customers.
    A queryset of reps is a subquery of those two, not a query of its own."""
    reps = busy_reps(cast, 20)
    for scope in (reps[:1], reps):
        ids = [rep.pk for rep in scope]
        reps_arg = User.objects.filter(pk__in=ids) if as_queryset else ids
        with django_assert_num_queries(2):
            k = kpis_for(reps=reps_arg, start=START, end=END)
        assert k.deals_won == len(scope)
        assert k.sales_cycle_median_days is not None


# --- Admin -------------------------------------------------------------------------------


@pytest.fixture
def revised_goal(cast: Cast):
    goal = goal_create(
        actor=cast.admin,
        owner_kind=OwnerKind.REP,
        rep=cast.rep,
        metric=Metric.REVENUE_WON,
        period_kind=PeriodKind.MONTH,
        start=START,
        target=Decimal(50000),
    )
    goal_revise(
        goal=goal,
        actor=cast.manager,
        new_target=Decimal(65000),
        reason=RevisionReason.COMPETITION,
        comment="Rival left the market",
        effective_from=dt.date(2026, 3, 10),
        today=dt.date(2026, 3, 12),
    )
    return goal


def test_admin_shows_a_goal_with_its_revisions(cast: Cast, revised_goal) -> None:
    client = client_for(cast.admin)
    page = client.get(reverse("admin:goals_goal_change", args=[revised_goal.pk]))
    assert page.status_code == 200
    assert "Rival left the market" in page.content.decode()
    assert client.get(reverse("admin:goals_goal_changelist")).status_code == 200
    revisions = client.get(reverse("admin:goals_goalrevision_changelist"))
    assert "65000" in revisions.content.decode()


def test_admin_cannot_change_a_target_without_a_revision(cast: Cast, revised_goal) -> None:
    client = client_for(cast.admin)
    url = reverse("admin:goals_goal_change", args=[revised_goal.pk])
    page = client.get(url).content.decode()
    assert 'name="target"' not in page
    assert 'name="target"' in client.get(reverse("admin:goals_goal_add")).content.decode()


def test_admin_revisions_and_facts_are_read_only(cast: Cast, revised_goal) -> None:
    busy_reps(cast, 2)
    client = client_for(cast.admin)
    fact = DailyRepFact.objects.first()
    assert client.get(reverse("admin:goals_dailyrepfact_changelist")).status_code == 200
    assert client.get(reverse("admin:goals_dailyrepfact_add")).status_code == 403
    assert client.get(reverse("admin:goals_goalrevision_add")).status_code == 403
    # The change page only shows (no save): a POST changes nothing.
    url = reverse("admin:goals_dailyrepfact_change", args=[fact.pk])
    assert client.get(url).status_code == 200
    client.post(url, {"deals_won": 999})
    fact.refresh_from_db()
    assert fact.deals_won != 999
    revision = GoalRevision.objects.get()
    client.post(reverse("admin:goals_goalrevision_change", args=[revision.pk]), {"new_target": "1"})
    revision.refresh_from_db()
    assert revision.new_target == Decimal(65000)


@pytest.mark.parametrize("role", ["owner_rep", "manager", "other_rep", "marketing"])
def test_admin_is_for_staff_only(cast: Cast, revised_goal, role: str) -> None:
    client = client_for(cast.roles()[role])
    for url in (
        reverse("admin:goals_goal_changelist"),
        reverse("admin:goals_goal_change", args=[revised_goal.pk]),
        reverse("admin:goals_dailyrepfact_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]


def test_fact_changelist_queries_do_not_grow_with_rows(cast: Cast) -> None:
    """Session, user, the page's count-free list with its rep, product line and
    territory joined in (list_select_related), date hierarchy, filters: a constant."""
    client = client_for(cast.admin)
    url = reverse("admin:goals_dailyrepfact_changelist")
    busy_reps(cast, 3)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    busy_reps(cast, 12)
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(many) == len(few)
