"""Small builders for the KPI tests: pipeline rows in any state, at any moment.

They write rows directly (through the factories and set-based updates), because
the KPI job reads raw rows and the tests need states and timestamps services
would never produce on demand (a lead created months ago, a deal back-dated).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from django.db import connection, models

from accounts.models import ProductLine, Territory, User
from leads.models import (
    Activity,
    ActivityKind,
    Customer,
    Deal,
    DealStatus,
    Estimate,
    EstimateStatus,
    Lead,
    LostReason,
    Stage,
)
from tests.factories import ProductLineFactory
from tests.factories_leads import (
    ActivityFactory,
    CustomerFactory,
    DealFactory,
    EstimateFactory,
    LeadFactory,
)

STOCKHOLM = zoneinfo.ZoneInfo("Europe/Stockholm")


def local(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    """An aware moment in the company's time zone (Europe/Stockholm in these tests)."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=STOCKHOLM)


def set_created_at(model: type[models.Model], moments: dict[int, dt.datetime]) -> None:
    """created_at is auto_now_add: set it afterwards, in one UPDATE."""
    if not moments:
        return
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS t SET created_at = v.at "  # noqa: S608 - our table name
            "FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, at) WHERE t.id = v.id",
            [list(moments), list(moments.values())],
        )


def lead(
    *,
    owner: User | None,
    created: dt.datetime,
    stage: str = Stage.SUSPECT,
    mql: dt.datetime | None = None,
    sql: dt.datetime | None = None,
    decided: dt.datetime | None = None,
    lines: Sequence[ProductLine] = (),
    territory: Territory | None = None,
    customer: Customer | None = None,
) -> Lead:
    """A lead in any state; won/lost/disqualified need ``decided``."""
    row = LeadFactory(
        owner=owner,
        team=owner.team if owner else None,
        stage=stage,
        reached_mql_at=mql,
        reached_sql_at=sql,
        decided_at=decided,
        lost_reason=LostReason.PRICE if stage in (Stage.LOST, Stage.DISQUALIFIED) else "",
        territory=territory,
        customer=customer,
    )
    if lines:
        row.product_lines.set(lines)
    set_created_at(Lead, {row.pk: created})
    row.refresh_from_db()
    return row


def deal(
    *,
    owner: User,
    close_date: dt.date,
    amount: Decimal | int | str = "1000.00",
    status: str = DealStatus.WON,
    customer: Customer | None = None,
    line: ProductLine | None = None,
    territory: Territory | None = None,
    lead: Lead | None = None,
) -> Deal:
    return DealFactory(
        owner=owner,
        close_date=close_date,
        amount=Decimal(amount),
        status=status,
        lost_reason=LostReason.COMPETITOR if status == DealStatus.LOST else "",
        customer=customer or CustomerFactory(owner=owner),
        product_line=line or ProductLineFactory(),
        territory=territory,
        lead=lead,
    )


def estimate(
    *,
    owner: User,
    issued_on: dt.date | None,
    amount: Decimal | int | str = "1000.00",
    customer: Customer | None = None,
    line: ProductLine | None = None,
    lead: Lead | None = None,
    status: str | None = None,
) -> Estimate:
    return EstimateFactory(
        owner=owner,
        issued_on=issued_on,
        amount=Decimal(amount),
        status=status or (EstimateStatus.SENT if issued_on else EstimateStatus.DRAFT),
        customer=customer or CustomerFactory(owner=owner),
        product_line=line or ProductLineFactory(),
        lead=lead,
        valid_until=(issued_on or dt.date(2026, 1, 1)) + dt.timedelta(days=30),
    )


def activity(
    *,
    owner: User,
    at: dt.datetime,
    kind: str = ActivityKind.CALL,
    lead: Lead | None = None,
    deal: Deal | None = None,
    customer: Customer | None = None,
    due: dt.datetime | None = None,
    done: dt.datetime | None = None,
) -> Activity:
    if lead is None and deal is None and customer is None:
        customer = CustomerFactory(owner=owner)
    return ActivityFactory(
        owner=owner,
        kind=kind,
        occurred_at=at,
        lead=lead,
        deal=deal,
        customer=customer,
        due_at=due,
        done_at=done,
    )


def fact_rows(**filters: Any) -> list[dict[str, Any]]:
    """Every fact row (without its surrogate id), in key order: what a rerun must reproduce."""
    from goals.models import DailyRepFact

    fields = [f.attname for f in DailyRepFact._meta.fields if f.name != "id"]
    return list(
        DailyRepFact.objects.filter(**filters)
        .order_by("day", "rep_id", "product_line_id", "territory_id")
        .values(*fields)
    )


def ids(users: Iterable[User]) -> list[int]:
    return [user.pk for user in users]
