"""The weekly sums (goals_weeklyrepfact) and the dashboards' reads through them.

A dashboard's range is read from the weekly sums where whole week-in-month
segments fit and from the daily facts at its edges: every figure must be what
the daily facts alone give, whatever the range's first and last day.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.db import connection

from goals import dashboards as dash
from goals.kpis import FACT_COLUMNS, MONEY_COLUMNS, WEEKLY_FACTS, refresh_weekly_facts
from goals.models import DailyRepFact
from tests.conftest import Cast
from tests.factories import ProductLineFactory, TerritoryFactory

pytestmark = pytest.mark.django_db

FIRST, LAST = dt.date(2025, 12, 20), dt.date(2026, 4, 10)


@pytest.fixture
def facts(cast: Cast) -> Cast:
    """Random facts every few days for three reps, nobody's leads, two lines, a territory."""
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    lines = [ProductLineFactory(), ProductLineFactory(), None]
    territories = [TerritoryFactory(), None]
    rows = []
    day = FIRST
    while day <= LAST:
        for rep in (cast.rep, cast.teammate, cast.other_rep, None):
            for line in rng.sample(lines, rng.randrange(0, 3)):
                values = {
                    column: Decimal(rng.randrange(0, 50000)) / 100
                    if column in MONEY_COLUMNS
                    else rng.randrange(0, 4)
                    for column in FACT_COLUMNS
                }
                rows.append(
                    DailyRepFact(
                        day=day,
                        rep=rep,
                        product_line=line,
                        territory=rng.choice(territories),
                        **values,
                    )
                )
        day += dt.timedelta(days=rng.choice([1, 1, 2, 3]))
    DailyRepFact.objects.bulk_create(rows, ignore_conflicts=True)
    refresh_weekly_facts()
    return cast


def test_weekly_rows_are_the_daily_facts_summed_by_week_inside_a_month(facts: Cast) -> None:
    sums = ", ".join(f"SUM({column})" for column in FACT_COLUMNS)
    columns = ", ".join(FACT_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT date_trunc('month', day)::date, date_trunc('week', day)::date, rep_id, "  # noqa: S608
            f"product_line_id, {sums} FROM goals_dailyrepfact GROUP BY 1, 2, 3, 4"
        )
        expected = sorted(cursor.fetchall(), key=repr)
        cursor.execute(
            f"SELECT month, week, rep_id, product_line_id, {columns} FROM {WEEKLY_FACTS}"  # noqa: S608
        )
        weekly = sorted(cursor.fetchall(), key=repr)
    assert weekly == expected
    # A week across two months is two rows: 29 Dec 2025 - 4 Jan 2026.
    months = {row[0] for row in weekly if row[1] == dt.date(2025, 12, 29)}
    assert months == {dt.date(2025, 12, 1), dt.date(2026, 1, 1)}


def test_a_run_of_the_kpi_job_refreshes_them(cast: Cast) -> None:
    from goals.kpis import compute_facts_range
    from tests.goals.builders import deal

    deal(owner=cast.rep, close_date=dt.date(2026, 3, 3), amount="1200")
    compute_facts_range(dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT week, rep_id, revenue_won FROM {WEEKLY_FACTS}")  # noqa: S608
        assert cursor.fetchall() == [(dt.date(2026, 3, 2), cast.rep.pk, Decimal("1200.00"))]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (dt.date(2026, 1, 1), dt.date(2026, 3, 31)),  # a quarter
        (dt.date(2026, 2, 1), dt.date(2026, 2, 28)),  # a month
        (dt.date(2026, 3, 1), dt.date(2026, 3, 15)),  # a running month
        (dt.date(2025, 12, 31), dt.date(2026, 1, 2)),  # inside one week, across a year
        (dt.date(2026, 1, 7), dt.date(2026, 3, 18)),  # Wednesdays: edges both ends
        (dt.date(2026, 2, 2), dt.date(2026, 2, 8)),  # exactly one week
        (dt.date(2026, 3, 10), dt.date(2026, 3, 10)),  # one day
        (dt.date(2026, 5, 1), dt.date(2026, 5, 31)),  # no facts at all
    ],
)
@pytest.mark.parametrize("scope", ["team", "rep", "company"])
def test_dashboard_reads_equal_the_daily_facts_alone(
    facts: Cast, monkeypatch: pytest.MonkeyPatch, start: dt.date, end: dt.date, scope: str
) -> None:
    kwargs = {"start": start, "end": end, "previous_start": start - dt.timedelta(days=45)}
    if scope == "team":
        kwargs["rep_ids"] = [facts.rep.pk, facts.teammate.pk]
    elif scope == "rep":
        kwargs.update(rep_ids=[facts.rep.pk, facts.teammate.pk], chart_rep=facts.rep.pk)
    else:
        kwargs["rep_ids"] = None
    through_weeks = dash.period_facts(**kwargs)
    monkeypatch.setattr(dash, "weekly_span", lambda start, end: None)
    daily_only = dash.period_facts(**kwargs)
    assert through_weeks.by_rep == daily_only.by_rep
    assert through_weeks.previous_by_rep == daily_only.previous_by_rep
    assert through_weeks.weekly == daily_only.weekly
    assert through_weeks.monthly == daily_only.monthly
    assert through_weeks.issued == daily_only.issued


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (dt.date(2026, 1, 1), dt.date(2026, 3, 31)),
        (dt.date(2026, 1, 7), dt.date(2026, 3, 18)),
        (dt.date(2026, 3, 10), dt.date(2026, 3, 10)),
    ],
)
@pytest.mark.parametrize(
    "columns", [FACT_COLUMNS, ("revenue_won",), ("csat_answered", "csat_satisfied")]
)
def test_leaderboard_sums_equal_the_daily_facts_alone(
    facts: Cast, monkeypatch: pytest.MonkeyPatch, start: dt.date, end: dt.date, columns: tuple
) -> None:
    for rep_ids in ([facts.rep.pk, facts.other_rep.pk], None):
        kwargs = {"rep_ids": rep_ids, "start": start, "end": end, "columns": columns}
        through_weeks = dash.facts_by_rep(**kwargs)
        with monkeypatch.context() as patch:
            patch.setattr(dash, "weekly_span", lambda start, end: None)
            daily_only = dash.facts_by_rep(**kwargs)
        assert through_weeks == daily_only
        assert through_weeks  # the random facts give every range something


def test_weekly_span_is_whole_segments_only() -> None:
    # Wed 7 Jan - Wed 18 Mar 2026: from Monday 12 Jan to Sunday 15 Mar.
    assert dash.weekly_span(dt.date(2026, 1, 7), dt.date(2026, 3, 18)) == (
        dt.date(2026, 1, 12),
        dt.date(2026, 3, 15),
    )
    # A month's 1st starts a segment and its last day ends one, whatever the weekday.
    assert dash.weekly_span(dt.date(2026, 2, 1), dt.date(2026, 2, 28)) == (
        dt.date(2026, 2, 1),
        dt.date(2026, 2, 28),
    )
    assert dash.weekly_span(dt.date(2026, 2, 3), dt.date(2026, 2, 8)) is None
    assert dash.weekly_span(dt.date(2026, 3, 10), dt.date(2026, 3, 9)) is None
