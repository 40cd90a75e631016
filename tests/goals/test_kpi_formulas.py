"""Each KPI of DESIGN.md on hand-made data, read through the facts (kpis_for)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from goals import kpis
from goals.kpis import ACTIVITY_COLUMNS, FactSource, compute_facts_range
from goals.models import DailyRepFact
from goals.selectors import attainment, elapsed_share, kpis_for, pace, ratio
from leads.models import ActivityKind, DealStatus, Stage
from tests.conftest import Cast
from tests.factories import ProductLineFactory, TerritoryFactory
from tests.factories_leads import CustomerFactory
from tests.goals.builders import activity, deal, estimate, lead, local

pytestmark = pytest.mark.django_db

MARCH = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))


@pytest.fixture(autouse=True)
def _company_time_zone(settings) -> None:
    settings.TIME_ZONE = "Europe/Stockholm"


@pytest.fixture
def march(cast: Cast) -> Cast:
    """Rep's March 2026 (numbers worked out in the comments), and a little noise around it."""
    rep = cast.rep
    a, b, c = (CustomerFactory(owner=rep) for _ in range(3))
    line = ProductLineFactory(name="Boilers")
    # Leads. L0 was created in February and won in March.
    l0 = lead(
        owner=rep,
        created=local(2026, 2, 25, 9),
        stage=Stage.WON,
        mql=local(2026, 2, 26),
        sql=local(2026, 2, 27),
        decided=local(2026, 3, 5),
    )
    l1 = lead(
        owner=rep,
        created=local(2026, 3, 10, 23, 30),
        stage=Stage.WON,
        mql=local(2026, 3, 12),
        sql=local(2026, 3, 15),
        decided=local(2026, 3, 20),
    )
    lead(
        owner=rep,
        created=local(2026, 3, 2),
        stage=Stage.LOST,
        mql=local(2026, 3, 3),
        decided=local(2026, 3, 18),
    )
    lead(owner=rep, created=local(2026, 3, 4), stage=Stage.DISQUALIFIED, decided=local(2026, 3, 6))
    lead(owner=rep, created=local(2026, 3, 8), stage=Stage.MQL, mql=local(2026, 3, 9))
    # Deals: A bought in February and again in March (repeat); B twice in March (not
    # repeat: nothing before the range); C lost.
    deal(owner=rep, customer=a, close_date=dt.date(2026, 2, 10), amount=500)
    deal(owner=rep, customer=a, close_date=dt.date(2026, 3, 5), amount=1000, lead=l0, line=line)
    deal(owner=rep, customer=b, close_date=dt.date(2026, 3, 20), amount=3000, lead=l1)
    deal(owner=rep, customer=b, close_date=dt.date(2026, 3, 25), amount=2000)
    deal(owner=rep, customer=c, close_date=dt.date(2026, 3, 15), amount=700, status=DealStatus.LOST)
    # Estimates: 4000 + 8000 issued in March; a draft and a February one do not count.
    estimate(owner=rep, issued_on=dt.date(2026, 3, 3), amount=4000)
    estimate(owner=rep, issued_on=dt.date(2026, 3, 28), amount=8000)
    estimate(owner=rep, issued_on=None, amount=9999)
    estimate(owner=rep, issued_on=dt.date(2026, 2, 27), amount=5000)
    # Activities: 2 calls, an email, a meeting, a to-do demo done; an open to-do and a
    # February call do not count.
    activity(owner=rep, at=local(2026, 3, 2), kind=ActivityKind.CALL)
    activity(owner=rep, at=local(2026, 3, 31, 23, 50), kind=ActivityKind.CALL)
    activity(owner=rep, at=local(2026, 3, 3), kind=ActivityKind.EMAIL)
    activity(owner=rep, at=local(2026, 3, 4), kind=ActivityKind.MEETING)
    activity(
        owner=rep,
        at=local(2026, 3, 6),
        kind=ActivityKind.DEMO,
        due=local(2026, 3, 6),
        done=local(2026, 3, 6, 15),
    )
    activity(owner=rep, at=local(2026, 3, 7), kind=ActivityKind.CALL, due=local(2026, 3, 7))
    activity(owner=rep, at=local(2026, 2, 28, 23, 59), kind=ActivityKind.CALL)
    # Someone else's big deal: never in rep's figures.
    deal(owner=cast.other_rep, close_date=dt.date(2026, 3, 10), amount=99999)
    compute_facts_range(dt.date(2026, 2, 1), dt.date(2026, 6, 30))
    return cast


def test_deal_kpis(march: Cast) -> None:
    k = kpis_for(reps=[march.rep.pk], start=MARCH[0], end=MARCH[1])
    assert k.sales_volume == Decimal("6000.00")
    assert k.deals_won == 3
    assert k.deals_lost == 1
    assert k.average_ticket == Decimal("2000.00")
    assert k.win_rate == Decimal("0.75")


def test_lead_conversion_counts_lost_and_disqualified(march: Cast) -> None:
    k = kpis_for(reps=[march.rep.pk], start=MARCH[0], end=MARCH[1])
    # Decided in March: L0 won, L1 won, lost, disqualified.
    assert (k.leads_decided, k.leads_decided_won) == (4, 2)
    assert k.lead_conversion_rate == Decimal("0.5")


def test_funnel_is_the_cohort_created_in_range(march: Cast) -> None:
    k = kpis_for(reps=[march.rep.pk], start=MARCH[0], end=MARCH[1])
    # Created in March: L1 (won), lost, disqualified, MQL. L0 is February's.
    assert k.leads_created == 4
    assert k.funnel_mql_share == Decimal("0.75")
    assert k.funnel_sql_share == Decimal("0.25")
    assert k.funnel_won_share == Decimal("0.25")
    # Flows: reached MQL in March: L1, lost, open MQL; SQL: L1.
    assert (k.leads_reached_mql, k.leads_reached_sql) == (3, 1)


def test_sales_cycle_mean_and_median(march: Cast) -> None:
    k = kpis_for(reps=[march.rep.pk], start=MARCH[0], end=MARCH[1])
    # Feb 25 → Mar 5: 8 days; Mar 10 (23:30) → Mar 20: 10 days; the third won deal has no lead.
    assert k.sales_cycle_mean_days == Decimal(9)
    assert k.sales_cycle_median_days == Decimal(9)


def test_repeat_business(march: Cast) -> None:
    k = kpis_for(reps=[march.rep.pk], start=MARCH[0], end=MARCH[1])
    # A had a won deal in February; B won twice in March but never before.
    assert (k.customers_won, k.repeat_customers) == (2, 1)
    assert k.repeat_business_rate == Decimal("0.5")
    # From February on, A's February deal is in the range: nobody is a repeat customer.
    k = kpis_for(reps=[march.rep.pk], start=dt.date(2026, 2, 1), end=MARCH[1])
    assert (k.customers_won, k.repeat_customers, k.repeat_business_rate) == (2, 0, Decimal(0))


def test_estimate_coverage(march: Cast) -> None:
    k = kpis_for(reps=[march.rep.pk], start=MARCH[0], end=MARCH[1], revenue_quota=Decimal(6000))
    assert (k.estimates_issued, k.estimate_value_issued) == (2, Decimal("12000.00"))
    assert k.estimate_coverage == Decimal(2)
    assert kpis_for(reps=[march.rep.pk], start=MARCH[0], end=MARCH[1]).estimate_coverage is None
    zero_quota = kpis_for(
        reps=[march.rep.pk], start=MARCH[0], end=MARCH[1], revenue_quota=Decimal(0)
    )
    assert zero_quota.estimate_coverage is None


def test_activities_by_kind(march: Cast) -> None:
    k = kpis_for(reps=[march.rep.pk], start=MARCH[0], end=MARCH[1])
    assert k.activities == {
        "call": 2,
        "email": 1,
        "meeting": 1,
        "demo": 1,
        "sales_meeting": 0,
        "event": 0,
        "follow_up": 0,
        "note": 0,
    }
    assert k.activities_total == 5


def test_scope_team_and_company(march: Cast) -> None:
    team = kpis_for(reps=march.team.members.all(), start=MARCH[0], end=MARCH[1])
    assert team.sales_volume == Decimal("6000.00")
    everyone = kpis_for(reps=[march.rep.pk, march.other_rep.pk], start=MARCH[0], end=MARCH[1])
    assert everyone.sales_volume == Decimal("105999.00")
    assert everyone.deals_won == 4


def test_product_line_and_territory_narrowing(march: Cast) -> None:
    boilers = DailyRepFact.objects.filter(product_line__name="Boilers").first()
    k = kpis_for(
        reps=[march.rep.pk], start=MARCH[0], end=MARCH[1], product_line=boilers.product_line
    )
    assert (k.sales_volume, k.deals_won, k.leads_created) == (Decimal("1000.00"), 1, 0)
    nowhere = kpis_for(
        reps=[march.rep.pk], start=MARCH[0], end=MARCH[1], territory=TerritoryFactory()
    )
    assert nowhere.sales_volume == Decimal(0)


def test_an_empty_period_gives_zeros_and_no_ratios(march: Cast) -> None:
    k = kpis_for(
        reps=[march.rep.pk],
        start=dt.date(2026, 6, 1),
        end=dt.date(2026, 6, 30),
        revenue_quota=Decimal(100),
    )
    assert (k.sales_volume, k.deals_won, k.deals_lost, k.leads_created) == (Decimal(0), 0, 0, 0)
    assert k.estimate_coverage == Decimal(0)
    for name in (
        "average_ticket",
        "win_rate",
        "lead_conversion_rate",
        "funnel_mql_share",
        "funnel_sql_share",
        "funnel_won_share",
        "sales_cycle_mean_days",
        "sales_cycle_median_days",
        "repeat_business_rate",
        "csat",
        "nps",
        "survey_response_rate",
    ):
        assert getattr(k, name) is None, name
    assert k.activities_total == 0


def test_nobody_in_scope(march: Cast) -> None:
    k = kpis_for(reps=[], start=MARCH[0], end=MARCH[1])
    assert (k.sales_volume, k.win_rate, k.customers_won) == (Decimal(0), None, 0)


def test_only_lost_deals_give_a_zero_win_rate_and_no_average_ticket(cast: Cast) -> None:
    deal(owner=cast.rep, close_date=dt.date(2026, 3, 3), status=DealStatus.LOST)
    compute_facts_range(*MARCH)
    k = kpis_for(reps=[cast.rep.pk], start=MARCH[0], end=MARCH[1])
    assert (k.win_rate, k.average_ticket, k.sales_volume) == (Decimal(0), None, Decimal(0))


def test_survey_kpis_come_from_the_feedback_hook(cast: Cast, monkeypatch) -> None:
    """The feedback app plugs its sources in; with a hand-made one in their place, CSAT,
    NPS and the response rate follow DESIGN.md."""
    assert {source.name for source in kpis.feedback_fact_sources()} == {
        "survey answers",
        "survey invitations",
    }
    survey_source = FactSource(
        name="surveys (test)",
        columns=(
            "csat_answered",
            "csat_satisfied",
            "nps_answered",
            "nps_promoters",
            "nps_detractors",
            "surveys_sent",
            "surveys_answered",
        ),
        sql=f"""
        SELECT %(first)s::date, {cast.rep.pk}::bigint, NULL::bigint, NULL::bigint,
            10, 8, 20, 9, 5, 12, 9
        WHERE %(first)s::date = ANY(%(days)s)
        """,
    )
    monkeypatch.setattr(kpis, "feedback_fact_sources", lambda: [survey_source])
    compute_facts_range(dt.date(2026, 3, 1), dt.date(2026, 3, 1))
    k = kpis_for(reps=[cast.rep.pk], start=MARCH[0], end=MARCH[1])
    assert k.csat == Decimal(80)  # 8 of 10 answered 4 or 5
    assert k.nps == Decimal(20)  # 45 % promoters - 25 % detractors
    assert k.survey_response_rate == Decimal("0.75")  # 9 of 12


def test_every_activity_kind_has_a_fact_column() -> None:
    columns = {field.name for field in DailyRepFact._meta.fields}
    assert set(ACTIVITY_COLUMNS) == set(ActivityKind.values)
    assert set(ACTIVITY_COLUMNS.values()) <= columns


# --- Attainment and pace ------------------------------------------------------------


def test_ratio_never_divides_by_zero() -> None:
    assert ratio(5, 0) is None
    assert ratio(None, 3) is None
    assert ratio(3, None) is None
    assert ratio(0, 4) == Decimal(0)


def test_attainment() -> None:
    assert attainment(Decimal(750), Decimal(1000)) == Decimal("0.75")
    assert attainment(Decimal(750), Decimal(0)) is None
    assert attainment(Decimal(750), None) is None


def test_pace_is_actual_over_the_elapsed_share_of_the_target() -> None:
    start, end = dt.date(2026, 4, 1), dt.date(2026, 4, 30)
    # 10 of 30 days elapsed: a third of 900 = 300 expected so far.
    assert elapsed_share(start, end, dt.date(2026, 4, 10)) == Decimal(10) / Decimal(30)
    assert pace(Decimal(300), Decimal(900), start, end, dt.date(2026, 4, 10)) == Decimal(1)
    assert pace(Decimal(150), Decimal(900), start, end, dt.date(2026, 4, 10)) == Decimal("0.5")
    # After the period, pace is the attainment.
    assert pace(Decimal(450), Decimal(900), start, end, dt.date(2026, 5, 20)) == Decimal("0.5")
    # Before it starts nothing is expected yet: no pace (not a division by zero).
    assert pace(Decimal(0), Decimal(900), start, end, dt.date(2026, 3, 31)) is None
    assert pace(Decimal(100), Decimal(0), start, end, dt.date(2026, 4, 10)) is None
    assert pace(Decimal(100), None, start, end, dt.date(2026, 4, 10)) is None
