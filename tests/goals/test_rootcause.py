"""Root cause of a missed or at-risk goal: the figures on hand-made data, the page, its queries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from feedback.models import CaseSource, FollowUpCase
from goals.models import DailyRepFact, Goal, Metric, OwnerKind, PeriodKind
from goals.rootcause import root_cause
from goals.services import goal_create
from leads.models import DealStatus, LeadEvent, LeadEventKind, LostReason, Stage
from tests.conftest import Cast, client_for
from tests.factories import ProductLineFactory, TerritoryFactory
from tests.factories_leads import CustomerFactory, DealFactory, LeadFactory

pytestmark = pytest.mark.django_db

MARCH = dt.date(2026, 3, 1)
TODAY = dt.date(2026, 3, 16)  # facts up to the 15th: 15 of 31 days


@pytest.fixture(autouse=True)
def _frozen(settings, time_machine) -> None:
    settings.TIME_ZONE = "Europe/Stockholm"
    time_machine.move_to(dt.datetime(2026, 3, 16, 11, tzinfo=dt.UTC), tick=False)


def rep_goal(cast: Cast, target: str = "31000", metric: str = Metric.REVENUE_WON, **extra) -> Goal:
    return goal_create(
        actor=cast.manager,
        owner_kind=OwnerKind.REP,
        rep=extra.pop("rep", cast.rep),
        metric=metric,
        period_kind=PeriodKind.MONTH,
        start=MARCH,
        target=Decimal(target),
        **extra,
    )


def lost(rep, reason: str, amount: str, day: dt.date = dt.date(2026, 3, 5)) -> None:
    DealFactory(
        owner=rep,
        customer=CustomerFactory(owner=rep),
        status=DealStatus.LOST,
        lost_reason=reason,
        amount=Decimal(amount),
        close_date=day,
    )


def lead_left(rep, from_stage: str, to_stage: str, at: dt.datetime) -> None:
    lead = LeadFactory(owner=rep, team=rep.team, stage=to_stage, lost_reason=LostReason.PRICE)
    event = LeadEvent.objects.create(
        lead=lead, kind=LeadEventKind.STAGE, from_value=from_stage, to_value=to_stage
    )
    LeadEvent.objects.filter(pk=event.pk).update(created_at=at)


@pytest.fixture
def story(cast: Cast) -> Goal:
    """Alice is at risk in March: 9,000 of the 15,000 the pace needs by the 15th."""
    hardware, software = ProductLineFactory(name="Hardware"), ProductLineFactory(name="Software")
    north = TerritoryFactory(name="North coast")
    goal = rep_goal(cast)
    for day, line, revenue in (
        (dt.date(2026, 3, 2), hardware, "2000"),
        (dt.date(2026, 3, 3), software, "7000"),
        # The previous period's first 15 days (29 Jan - 12 Feb): hardware sold more.
        (dt.date(2026, 2, 1), hardware, "8000"),
        (dt.date(2026, 2, 2), software, "6000"),
        # After those 15 days: not compared.
        (dt.date(2026, 2, 20), hardware, "90000"),
    ):
        DailyRepFact.objects.create(
            rep=cast.rep,
            day=day,
            product_line=line,
            territory=north,
            revenue_won=Decimal(revenue),
            deals_won=1,
            deals_lost=3 if day.month == 3 else 0,
            act_call=2 if day.month == 3 else 10,
            estimate_value_issued=Decimal("20000") if day.month == 3 else 0,
            leads_decided=2,
            leads_decided_won=0 if day.month == 3 else 1,
            csat_answered=2,
            csat_satisfied=1,
        )
    # The teammate does better: the team average is higher.
    DailyRepFact.objects.create(
        rep=cast.teammate,
        day=dt.date(2026, 3, 4),
        revenue_won=Decimal("30000"),
        deals_won=5,
        leads_decided=2,
        leads_decided_won=2,
        csat_answered=4,
        csat_satisfied=4,
    )
    lost(cast.rep, LostReason.PRICE, "1000")
    lost(cast.rep, LostReason.PRICE, "2000")
    lost(cast.rep, LostReason.DELIVERY_DELAY, "9000")
    lost(cast.rep, LostReason.PRODUCT_FIT, "500", day=dt.date(2026, 2, 27))  # before March
    lost(cast.teammate, LostReason.COMPETITOR, "500")  # not Alice's
    zone = timezone.get_current_timezone()
    lead_left(cast.rep, Stage.SQL, Stage.LOST, dt.datetime(2026, 3, 4, 10, tzinfo=zone))
    lead_left(cast.rep, Stage.SQL, Stage.LOST, dt.datetime(2026, 3, 5, 10, tzinfo=zone))
    lead_left(cast.rep, Stage.COLD, Stage.DISQUALIFIED, dt.datetime(2026, 3, 6, 10, tzinfo=zone))
    # The night before March, in Stockholm: February.
    lead_left(cast.rep, Stage.HOT, Stage.LOST, dt.datetime(2026, 2, 28, 23, 30, tzinfo=zone))
    FollowUpCase.objects.create(
        customer=CustomerFactory(owner=cast.rep),
        rep=cast.rep,
        team=cast.team,
        source=CaseSource.MANUAL,
        summary="Invoice wrong",
        deadline=timezone.now() + dt.timedelta(days=2),
    )
    return goal


def test_the_figures_of_an_at_risk_goal(cast: Cast, story: Goal) -> None:
    analysis = root_cause(goal=story, today=TODAY)
    assert analysis.needs_review
    assert analysis.progress.actual == Decimal("9000")
    assert analysis.gap_to_target == Decimal("22000")
    assert analysis.gap_to_pace == Decimal("6000")  # 31,000 x 15/31 = 15,000 needed
    sections = analysis.sections
    lines = {row.label: (row.current, row.previous) for row in sections["product_lines"].rows}
    assert lines == {
        "Hardware": (Decimal(2000), Decimal(8000)),
        "Software": (Decimal(7000), Decimal(6000)),
    }
    assert "Hardware" in sections["product_lines"].sentence
    lost_rows = [(row.label, row.count, row.amount) for row in sections["lost_deals"].rows]
    assert lost_rows == [
        ("Price not competitive", 2, Decimal("3000.00")),
        ("Delivery or manufacturing delay", 1, Decimal("9000.00")),
    ]
    assert sections["lost_deals"].sentence == "Most lost deals were lost on: Price not competitive."
    funnel = [(row.label, row.count) for row in sections["funnel"].rows]
    assert funnel == [("SQL", 2), ("Cold", 1)]
    assert "SQL" in sections["funnel"].sentence
    win = {row.label: (row.scope, row.average) for row in sections["win_rate"].rows}
    # Alice won 2 of 8 in March; the team (Alice and Bob) 7 of 13.
    assert win["Win rate"] == (Decimal(2) / 8, Decimal(7) / 13)
    assert win["Lead conversion"] == (Decimal(0), Decimal(2) / 6)
    assert "Win rate" in sections["win_rate"].sentence
    coverage = sections["coverage"].rows[2].scope
    # 40,000 issued against the quota prorated to 15 of 31 days (15,000): 2.67 < 3.
    assert round(coverage, 2) == Decimal("2.67")
    assert "below the standard" in sections["coverage"].sentence
    assert "fell from 20 to 4" in sections["activities"].sentence
    assert analysis.open_case_count == 1
    assert "CSAT" in sections["satisfaction"].sentence


def test_a_goal_on_track_still_renders_and_says_so(cast: Cast) -> None:
    goal = rep_goal(cast, target="1000")
    DailyRepFact.objects.create(rep=cast.rep, day=dt.date(2026, 3, 2), revenue_won=900)
    analysis = root_cause(goal=goal, today=TODAY)
    assert not analysis.needs_review
    assert analysis.sections["lost_deals"].sentence == "No deals were lost in this period."
    body = client_for(cast.manager).get(reverse("goals:goal_root_cause", args=[goal.pk]))
    text = body.content.decode()
    assert "This goal is neither missed nor at risk." in text
    assert "on track" in text


def test_the_page_shows_each_section_with_its_sentence(cast: Cast, story: Goal) -> None:
    response = client_for(cast.manager).get(reverse("goals:goal_root_cause", args=[story.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    for section in (
        "gap",
        "product-lines",
        "territories",
        "lost-deals",
        "funnel",
        "win-rate",
        "coverage",
        "activities",
        "satisfaction",
    ):
        assert f'data-testid="section-{section}"' in body
    assert "Most lost deals were lost on: Price not competitive." in body
    assert "Invoice wrong" in body


def test_a_team_goal_is_compared_with_the_company(cast: Cast) -> None:
    goal = goal_create(
        actor=cast.manager,
        owner_kind=OwnerKind.TEAM,
        team=cast.team,
        metric=Metric.DEALS_WON,
        period_kind=PeriodKind.MONTH,
        start=MARCH,
        target=Decimal(10),
    )
    day = dt.date(2026, 3, 2)
    DailyRepFact.objects.create(rep=cast.rep, day=day, deals_won=1, deals_lost=3)
    DailyRepFact.objects.create(rep=cast.other_rep, day=day, deals_won=4, deals_lost=0)
    lost(cast.other_rep, LostReason.PRICE, "100")  # another team's: not in the breakdown
    analysis = root_cause(goal=goal, today=TODAY)
    assert analysis.progress.actual == 1
    win = analysis.sections["win_rate"].rows[0]
    assert (win.scope, win.average) == (Decimal("0.25"), Decimal(5) / 8)
    assert analysis.sections["lost_deals"].rows == []


def test_root_cause_queries_do_not_grow_with_data(
    cast: Cast, story: Goal, django_assert_num_queries
) -> None:
    client = client_for(cast.manager)
    url = reverse("goals:goal_root_cause", args=[story.pk])
    # 1 session, 2 user, 3 the manager's teams and members (access), 4 the goal,
    # 5 may the manager set it (is the rep in scope), 6 the goal's facts (progress;
    # a rep goal needs no members query), 7 the rep's team members, 8 the facts by
    # period, line and territory, 9 lost deals by reason, 10 leads lost by stage,
    # 11 the team's facts, 12 the revenue goals (quota), 13 the open cases.
    with django_assert_num_queries(13):
        assert client.get(url).status_code == 200
    for _ in range(3):
        lost(cast.rep, LostReason.CUSTOMER_SERVICE, "10")
        DailyRepFact.objects.create(
            rep=cast.rep, day=dt.date(2026, 3, 9), product_line=ProductLineFactory(), revenue_won=1
        )
    with django_assert_num_queries(13):
        assert client.get(url).status_code == 200
