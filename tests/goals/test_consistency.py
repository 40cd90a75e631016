"""THE consistency test: every KPI read from the facts equals the same KPI computed
straight from the raw rows, for several ranges and scopes.

The data set is random but seeded: a few reps in two teams, unassigned leads,
three product lines, two territories, about four months of leads (some created
a minute before or after midnight, across the spring daylight-saving change),
estimates, deals (back-dated ones, repeat customers) and activities (open and
done to-dos). The expected KPIs are computed below in plain Python from the
rows as loaded, with Python's own time-zone conversion, independently of the
job's SQL.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
from collections.abc import Callable
from dataclasses import asdict
from decimal import Decimal
from typing import Any

import pytest

from accounts.models import ProductLine, User
from goals.kpis import compute_facts_range
from goals.selectors import Kpis, kpis_for
from leads.models import (
    Activity,
    ActivityKind,
    Customer,
    Deal,
    DealStatus,
    Estimate,
    EstimateStatus,
    Lead,
    LeadSource,
    LostReason,
    Stage,
)
from tests.conftest import Cast
from tests.factories import ProductLineFactory, TerritoryFactory, UserFactory
from tests.goals.builders import STOCKHOLM, set_created_at

pytestmark = pytest.mark.django_db

FIRST_DAY = dt.date(2025, 12, 1)
LAST_DAY = dt.date(2026, 3, 31)
CLOSED = (Stage.WON, Stage.LOST, Stage.DISQUALIFIED)


@pytest.fixture(autouse=True)
def _company_time_zone(settings) -> None:
    settings.TIME_ZONE = "Europe/Stockholm"


# --- The data set ------------------------------------------------------------------


def _moment(rng: random.Random, start: dt.date, end: dt.date) -> dt.datetime:
    """A local moment between two days; a third of them in the first or last hour of a day."""
    day = start + dt.timedelta(days=rng.randrange((end - start).days + 1))
    roll = rng.random()
    hour = 0 if roll < 0.15 else 23 if roll < 0.33 else rng.randrange(8, 19)
    return dt.datetime.combine(day, dt.time(hour, rng.randrange(60)), tzinfo=STOCKHOLM)


def _later(rng: random.Random, moment: dt.datetime, days: int) -> dt.datetime:
    return moment + dt.timedelta(minutes=rng.randrange(days * 24 * 60))


def build_data_set(cast: Cast) -> dict[str, Any]:
    rng = random.Random(20260329)  # noqa: S311 - test data, not secrets
    reps = [
        cast.rep,
        cast.teammate,
        cast.other_rep,
        UserFactory(team=cast.other_team),
        UserFactory(team=cast.team),
    ]
    lines = [ProductLineFactory() for _ in range(3)]
    territories = [TerritoryFactory(), TerritoryFactory()]
    customers = Customer.objects.bulk_create(
        Customer(
            name=f"Customer {n}",
            owner=rng.choice(reps),
            territory=rng.choice([*territories, None]),
        )
        for n in range(40)
    )

    leads, created, line_sets = [], {}, []
    for n in range(500):
        at = _moment(rng, FIRST_DAY, LAST_DAY)
        mql = sql = decided = None
        stage = rng.choice([Stage.SUSPECT, Stage.COLD, Stage.WARM, Stage.HOT])
        if rng.random() < 0.6:
            mql, stage = _later(rng, at, 20), Stage.MQL
            if rng.random() < 0.6:
                sql, stage = _later(rng, mql, 15), Stage.SQL
                roll = rng.random()
                if roll < 0.4:
                    decided, stage = _later(rng, sql, 20), Stage.WON
                elif roll < 0.7:
                    decided, stage = _later(rng, sql, 20), Stage.LOST
        if stage not in CLOSED and rng.random() < 0.2:
            decided, stage = _later(rng, at, 30), Stage.DISQUALIFIED
        if stage in (Stage.LOST, Stage.DISQUALIFIED) and rng.random() < 0.15:
            decided, stage = None, Stage.SUSPECT  # recycled: no longer decided
        leads.append(
            Lead(
                contact_name=f"Prospect {n}",
                source=LeadSource.WEBINAR,
                owner=None if rng.random() < 0.1 else rng.choice(reps),
                territory=rng.choice([*territories, None]),
                customer=rng.choice([*customers, None]),
                stage=stage,
                reached_mql_at=mql,
                reached_sql_at=sql,
                decided_at=decided,
                lost_reason=LostReason.PRICE if stage in (Stage.LOST, Stage.DISQUALIFIED) else "",
            )
        )
        line_sets.append(rng.sample(lines, rng.choice([0, 1, 1, 1, 2])))
    leads = Lead.objects.bulk_create(leads)
    for row, moment in zip(leads, (_moment(rng, FIRST_DAY, LAST_DAY) for _ in leads), strict=True):
        # Creation before every later step of the lead's story.
        steps = [t for t in (row.reached_mql_at, row.reached_sql_at, row.decided_at) if t]
        created[row.pk] = min([moment, *steps]) - dt.timedelta(minutes=rng.randrange(0, 3000))
    set_created_at(Lead, created)
    Lead.product_lines.through.objects.bulk_create(
        Lead.product_lines.through(lead_id=row.pk, productline_id=line.pk)
        for row, chosen in zip(leads, line_sets, strict=True)
        for line in chosen
    )

    deals = []
    won_leads = [row for row in leads if row.stage == Stage.WON]
    for row in won_leads:
        close = row.decided_at.astimezone(STOCKHOLM).date()
        if rng.random() < 0.1:  # back-dated before the lead was recorded
            close = created[row.pk].astimezone(STOCKHOLM).date() - dt.timedelta(days=3)
        deals.append((row, close, DealStatus.WON, row.customer or rng.choice(customers)))
    for _ in range(180):
        close = FIRST_DAY - dt.timedelta(days=60) + dt.timedelta(days=rng.randrange(180))
        status = DealStatus.WON if rng.random() < 0.65 else DealStatus.LOST
        deals.append((rng.choice([*leads, None, None, None]), close, status, rng.choice(customers)))
    deals = Deal.objects.bulk_create(
        Deal(
            customer=customer,
            lead=lead,
            owner=(lead.owner if lead and lead.owner else rng.choice(reps)),
            product_line=rng.choice(lines),
            territory=rng.choice([*territories, None]),
            amount=Decimal(rng.randrange(100, 500000)) / 100,
            close_date=close,
            status=status,
            lost_reason=LostReason.PRICE if status == DealStatus.LOST else "",
        )
        for lead, close, status, customer in deals
    )

    Estimate.objects.bulk_create(
        Estimate(
            customer=rng.choice(customers),
            lead=rng.choice([*leads, None]),
            owner=rng.choice(reps),
            product_line=rng.choice(lines),
            amount=Decimal(rng.randrange(100, 900000)) / 100,
            valid_until=LAST_DAY,
            status=EstimateStatus.DRAFT if issued is None else EstimateStatus.SENT,
            issued_on=issued,
        )
        for issued in (
            None
            if rng.random() < 0.15
            else FIRST_DAY + dt.timedelta(days=rng.randrange((LAST_DAY - FIRST_DAY).days + 1))
            for _ in range(300)
        )
    )

    activities = []
    for n in range(800):
        at = _moment(rng, FIRST_DAY, LAST_DAY)
        roll = rng.random()
        deal = rng.choice(deals) if roll < 0.2 else None
        lead = rng.choice(leads) if 0.2 <= roll < 0.7 or (deal and rng.random() < 0.5) else None
        customer = rng.choice(customers) if lead is None and deal is None else None
        roll = rng.random()
        due = at if roll < 0.3 else None
        done = _later(rng, at, 2) if roll < 0.15 else None
        activities.append(
            Activity(
                kind=rng.choice(ActivityKind.values),
                subject=f"Activity {n}",
                occurred_at=at,
                due_at=due,
                done_at=done,
                owner=rng.choice(reps),
                lead=lead,
                deal=deal,
                customer=customer or (lead.customer if lead else None),
            )
        )
    Activity.objects.bulk_create(activities)
    return {"reps": reps, "lines": lines, "territories": territories}


# --- The KPIs straight from the raw rows -----------------------------------------------


def local_day(moment: dt.datetime | None) -> dt.date | None:
    return moment.astimezone(STOCKHOLM).date() if moment else None


def share(numerator: Any, denominator: Any) -> Decimal | None:
    return Decimal(numerator) / Decimal(denominator) if denominator else None


class Raw:
    """Every pipeline row, loaded once; KPIs computed with plain loops."""

    def __init__(self) -> None:
        self.leads = {lead.pk: lead for lead in Lead.objects.all()}
        self.lines_of: dict[int, list[int]] = {}
        for lead_id, line_id in Lead.product_lines.through.objects.values_list(
            "lead_id", "productline_id"
        ):
            self.lines_of.setdefault(lead_id, []).append(line_id)
        self.customers = {customer.pk: customer for customer in Customer.objects.all()}
        self.deals = list(Deal.objects.all())
        self.deals_by_id = {deal.pk: deal for deal in self.deals}
        self.estimates = list(Estimate.objects.all())
        self.activities = list(Activity.objects.all())

    def lead_line(self, lead_id: int | None) -> int | None:
        lines = self.lines_of.get(lead_id, [])
        return lines[0] if len(lines) == 1 else None

    def kpis(
        self,
        *,
        reps: set[int],
        unassigned: bool,
        start: dt.date,
        end: dt.date,
        line: int | None,
        territory: int | None,
        quota: Decimal | None,
    ) -> Kpis:
        def in_range(day: dt.date | None) -> bool:
            return day is not None and start <= day <= end

        def matches(owner: int | None, line_id: int | None, territory_id: int | None) -> bool:
            mine = owner in reps or (owner is None and unassigned)
            return (
                mine
                and (line is None or line_id == line)
                and (territory is None or territory_id == territory)
            )

        deals = [
            d
            for d in self.deals
            if in_range(d.close_date) and matches(d.owner_id, d.product_line_id, d.territory_id)
        ]
        won = [d for d in deals if d.status == DealStatus.WON]
        lost = [d for d in deals if d.status == DealStatus.LOST]
        volume = sum((d.amount for d in won), Decimal(0))
        cycles = [
            max(0, (d.close_date - local_day(self.leads[d.lead_id].created_at)).days)
            for d in won
            if d.lead_id
        ]
        customers = {d.customer_id for d in won}
        repeat = {
            customer
            for customer in customers
            if any(
                d.customer_id == customer and d.status == DealStatus.WON and d.close_date < start
                for d in self.deals
            )
        }

        leads = [
            lead
            for lead in self.leads.values()
            if matches(lead.owner_id, self.lead_line(lead.pk), lead.territory_id)
        ]
        created = [lead for lead in leads if in_range(local_day(lead.created_at))]
        decided = [
            lead for lead in leads if lead.stage in CLOSED and in_range(local_day(lead.decided_at))
        ]

        def estimate_territory(e: Estimate) -> int | None:
            lead = self.leads.get(e.lead_id)
            return (lead.territory_id if lead else None) or self.customers[
                e.customer_id
            ].territory_id

        estimates = [
            e
            for e in self.estimates
            if in_range(e.issued_on)
            and matches(e.owner_id, e.product_line_id, estimate_territory(e))
        ]
        estimate_value = sum((e.amount for e in estimates), Decimal(0))

        def activity_place(a: Activity) -> tuple[int | None, int | None]:
            deal = self.deals_by_id.get(a.deal_id)
            lead = self.leads.get(a.lead_id)
            customer = self.customers.get(a.customer_id)
            line_id = deal.product_line_id if deal else self.lead_line(a.lead_id)
            territories = [
                deal.territory_id if deal else None,
                lead.territory_id if lead else None,
                customer.territory_id if customer else None,
            ]
            return line_id, next((t for t in territories if t is not None), None)

        activities = {kind: 0 for kind in ActivityKind.values}
        for a in self.activities:
            if a.due_at is not None and a.done_at is None:
                continue
            if in_range(local_day(a.occurred_at)) and matches(a.owner_id, *activity_place(a)):
                activities[a.kind] += 1

        average = volume / len(won) if won else None
        median = statistics.median(cycles) if cycles else None
        return Kpis(
            start=start,
            end=end,
            sales_volume=volume,
            deals_won=len(won),
            deals_lost=len(lost),
            average_ticket=average.quantize(Decimal("0.01")) if average is not None else None,
            win_rate=share(len(won), len(won) + len(lost)),
            leads_created=len(created),
            leads_decided=len(decided),
            leads_decided_won=sum(1 for lead in decided if lead.stage == Stage.WON),
            lead_conversion_rate=share(
                sum(1 for lead in decided if lead.stage == Stage.WON), len(decided)
            ),
            funnel_mql_share=share(sum(1 for x in created if x.reached_mql_at), len(created)),
            funnel_sql_share=share(sum(1 for x in created if x.reached_sql_at), len(created)),
            funnel_won_share=share(sum(1 for x in created if x.stage == Stage.WON), len(created)),
            leads_reached_mql=sum(1 for x in leads if in_range(local_day(x.reached_mql_at))),
            leads_reached_sql=sum(1 for x in leads if in_range(local_day(x.reached_sql_at))),
            sales_cycle_mean_days=share(sum(cycles), len(cycles)),
            sales_cycle_median_days=Decimal(str(median)) if median is not None else None,
            customers_won=len(customers),
            repeat_customers=len(repeat),
            repeat_business_rate=share(len(repeat), len(customers)),
            estimates_issued=len(estimates),
            estimate_value_issued=estimate_value,
            revenue_quota=quota,
            estimate_coverage=share(estimate_value, quota),
            # No feedback app yet: no answers, no surveys.
            csat_answered=0,
            csat=None,
            nps_answered=0,
            nps=None,
            surveys_sent=0,
            surveys_answered=0,
            survey_response_rate=None,
            activities=activities,
        )


RANGES = [
    ("January", dt.date(2026, 1, 1), dt.date(2026, 1, 31)),
    ("Q1", dt.date(2026, 1, 1), dt.date(2026, 3, 31)),
    ("DST day", dt.date(2026, 3, 29), dt.date(2026, 3, 29)),
    ("mid-Feb to mid-Mar", dt.date(2026, 2, 15), dt.date(2026, 3, 10)),
    ("everything", dt.date(2025, 9, 1), dt.date(2026, 6, 30)),
    ("empty", dt.date(2027, 1, 1), dt.date(2027, 1, 31)),
]

Scope = Callable[[Cast, dict[str, Any]], dict[str, Any]]
SCOPES: dict[str, Scope] = {
    "rep": lambda cast, world: {"reps": [cast.rep.pk]},
    "team North": lambda cast, world: {"reps": User.objects.filter(team=cast.team)},
    "team South": lambda cast, world: {"reps": User.objects.filter(team=cast.other_team)},
    "company": lambda cast, world: {"reps": User.objects.all(), "include_unassigned": True},
    "all reps": lambda cast, world: {"reps": [rep.pk for rep in world["reps"]]},
    "product line": lambda cast, world: {
        "reps": User.objects.all(),
        "include_unassigned": True,
        "product_line": world["lines"][0],
    },
    "rep and product line": lambda cast, world: {
        "reps": [cast.rep.pk],
        "product_line": world["lines"][1],
    },
    "team and territory": lambda cast, world: {
        "reps": User.objects.filter(team=cast.team),
        "territory": world["territories"][0],
    },
    "line and territory": lambda cast, world: {
        "reps": User.objects.all(),
        "include_unassigned": True,
        "product_line": world["lines"][2].pk,
        "territory": world["territories"][1].pk,
    },
}


def _expected(
    raw: Raw, scope: dict[str, Any], start: dt.date, end: dt.date, quota: Decimal
) -> Kpis:
    reps = scope["reps"]
    rep_ids = {user.pk for user in reps} if not isinstance(reps, list) else set(reps)
    line = scope.get("product_line")
    territory = scope.get("territory")
    return raw.kpis(
        reps=rep_ids,
        unassigned=scope.get("include_unassigned", False),
        start=start,
        end=end,
        line=getattr(line, "pk", line),
        territory=getattr(territory, "pk", territory),
        quota=quota,
    )


def test_kpis_from_the_facts_equal_the_kpis_from_the_raw_rows(cast: Cast) -> None:
    world = build_data_set(cast)
    compute_facts_range(dt.date(2025, 9, 1), dt.date(2026, 6, 30))
    raw = Raw()
    quota = Decimal("123456.78")
    compared = 0
    for scope_name, make_scope in SCOPES.items():
        for range_name, start, end in RANGES:
            scope = make_scope(cast, world)
            actual = kpis_for(start=start, end=end, revenue_quota=quota, **scope)
            expected = _expected(raw, scope, start, end, quota)
            differences = {
                name: (value, asdict(expected)[name])
                for name, value in asdict(actual).items()
                if value != asdict(expected)[name]
            }
            assert not differences, f"{scope_name}, {range_name}: {differences}"
            compared += 1
    assert compared == len(SCOPES) * len(RANGES)

    # The data set is not trivially empty where it matters.
    whole = _expected(raw, SCOPES["company"](cast, world), *RANGES[1][1:], quota)
    assert whole.deals_won > 20 and whole.deals_lost > 5
    assert whole.leads_created > 200 and whole.leads_decided > 50
    assert whole.repeat_customers > 0 and whole.customers_won > whole.repeat_customers
    assert whole.sales_cycle_median_days is not None
    assert whole.estimates_issued > 100
    assert all(count > 0 for count in whole.activities.values())
    rep_only = _expected(raw, SCOPES["rep"](cast, world), *RANGES[1][1:], quota)
    assert 0 < rep_only.deals_won < whole.deals_won
    dst = _expected(raw, SCOPES["company"](cast, world), *RANGES[2][1:], quota)
    assert dst.leads_created > 0


def test_the_facts_add_up_to_the_raw_totals(cast: Cast) -> None:
    """Every source row lands in exactly one fact row: no double counting across
    product lines or territories (a lead about several lines is counted once)."""
    build_data_set(cast)
    compute_facts_range(dt.date(2025, 9, 1), dt.date(2026, 6, 30))
    everything = kpis_for(
        reps=User.objects.all(),
        include_unassigned=True,
        start=dt.date(2025, 9, 1),
        end=dt.date(2026, 6, 30),
    )
    assert everything.leads_created == Lead.objects.count()
    assert everything.deals_won + everything.deals_lost == Deal.objects.count()
    assert everything.estimates_issued == Estimate.objects.exclude(issued_on=None).count()
    open_todos = Activity.objects.filter(due_at__isnull=False, done_at__isnull=True).count()
    assert everything.activities_total == Activity.objects.count() - open_todos
    by_line = sum(
        kpis_for(
            reps=User.objects.all(),
            include_unassigned=True,
            start=dt.date(2025, 9, 1),
            end=dt.date(2026, 6, 30),
            product_line=line,
        ).leads_created
        for line in ProductLine.objects.all()
    )
    lines_of = Raw().lines_of
    several_or_none = sum(
        1 for pk in Lead.objects.values_list("pk", flat=True) if len(lines_of.get(pk, [])) != 1
    )
    assert 0 < several_or_none < Lead.objects.count()
    assert by_line + several_or_none == Lead.objects.count()
