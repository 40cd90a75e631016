"""Forecast snapshots (the nightly job) and forecast accuracy (the formula and the page)."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.models import Role, User
from goals.forecast import (
    forecast_accuracy,
    forecast_accuracy_for_team,
    forecast_snapshots_take,
    snapshots_due,
)
from goals.models import DailyRepFact, ForecastSnapshot, PeriodKind, SnapshotKind
from goals.recognition import team_members
from goals.tasks import take_forecast_snapshots, take_forecast_snapshots_today
from leads.models import EstimateStatus
from tests.conftest import Cast, client_for
from tests.factories import UserFactory
from tests.goals.builders import estimate

pytestmark = pytest.mark.django_db

WEDNESDAY_FIRST = dt.date(2026, 4, 1)  # first day of April and of Q2, not of the year
MONDAY = dt.date(2026, 4, 13)


@pytest.fixture(autouse=True)
def _company_time_zone(settings) -> None:
    settings.TIME_ZONE = "Europe/Stockholm"


def won(rep: User, day: dt.date, amount: str) -> None:
    DailyRepFact.objects.create(rep=rep, day=day, revenue_won=Decimal(amount), deals_won=1)


def snapshot(rep: User, **fields) -> ForecastSnapshot:
    fields.setdefault("team", rep.team)
    fields.setdefault("period_kind", PeriodKind.MONTH)
    fields.setdefault("kind", SnapshotKind.PERIOD_START)
    fields.setdefault("taken_on", fields["period_start"])
    fields.setdefault("won_to_date", Decimal(0))
    fields.setdefault("weighted_pipeline", fields["forecast"])
    return ForecastSnapshot.objects.create(rep=rep, **fields)


def rows(**filters) -> list[tuple]:
    return list(
        ForecastSnapshot.objects.filter(**filters)
        .order_by("rep__display_name", "period_kind")
        .values_list(
            "rep__display_name",
            "period_kind",
            "kind",
            "won_to_date",
            "weighted_pipeline",
            "forecast",
        )
    )


# --- Which snapshots are due --------------------------------------------------------------


def test_first_day_of_a_month_and_quarter_takes_period_start_snapshots_only() -> None:
    assert snapshots_due(WEDNESDAY_FIRST) == [
        (PeriodKind.MONTH, SnapshotKind.PERIOD_START, dt.date(2026, 4, 1), dt.date(2026, 4, 30)),
        (PeriodKind.QUARTER, SnapshotKind.PERIOD_START, dt.date(2026, 4, 1), dt.date(2026, 6, 30)),
    ]


def test_a_monday_takes_weekly_snapshots_of_every_running_period() -> None:
    assert [(p, k) for p, k, _s, _e in snapshots_due(MONDAY)] == [
        (PeriodKind.MONTH, SnapshotKind.WEEKLY),
        (PeriodKind.QUARTER, SnapshotKind.WEEKLY),
        (PeriodKind.YEAR, SnapshotKind.WEEKLY),
    ]


def test_a_monday_that_starts_a_month_is_a_period_start_for_the_month() -> None:
    due = {p: k for p, k, _s, _e in snapshots_due(dt.date(2026, 6, 1))}
    assert due == {
        PeriodKind.MONTH: SnapshotKind.PERIOD_START,
        PeriodKind.QUARTER: SnapshotKind.WEEKLY,
        PeriodKind.YEAR: SnapshotKind.WEEKLY,
    }


def test_an_ordinary_day_takes_nothing(cast: Cast) -> None:
    assert forecast_snapshots_take(today=dt.date(2026, 4, 15)) == 0
    assert not ForecastSnapshot.objects.exists()


# --- Taking them ---------------------------------------------------------------------------


def test_weekly_snapshot_numbers(cast: Cast) -> None:
    won(cast.rep, dt.date(2026, 4, 2), "100.00")
    won(cast.rep, dt.date(2026, 3, 15), "50.00")  # this year, not this month or quarter
    won(cast.rep, MONDAY, "70.00")  # today: not in the facts yet at 02:40
    # Open, no lead (counts as SQL: 0.5), valid until 10 May: in the quarter, not the month.
    estimate(owner=cast.rep, issued_on=dt.date(2026, 4, 10), amount="1000.00")
    estimate(
        owner=cast.rep,
        issued_on=dt.date(2026, 4, 10),
        amount="9000.00",
        status=EstimateStatus.REJECTED,
    )

    forecast_snapshots_take(today=MONDAY)

    assert rows(rep=cast.rep) == [
        ("Alice Rep", "month", "weekly", Decimal("100.00"), Decimal("0.00"), Decimal("100.00")),
        ("Alice Rep", "quarter", "weekly", Decimal("100.00"), Decimal("500.00"), Decimal("600.00")),
        ("Alice Rep", "year", "weekly", Decimal("150.00"), Decimal("500.00"), Decimal("650.00")),
    ]
    taken = ForecastSnapshot.objects.get(rep=cast.rep, period_kind=PeriodKind.QUARTER)
    assert (taken.team, taken.taken_on, taken.period_start, taken.period_end) == (
        cast.team,
        MONDAY,
        dt.date(2026, 4, 1),
        dt.date(2026, 6, 30),
    )


def test_period_start_snapshot_has_nothing_won_yet(cast: Cast) -> None:
    won(cast.rep, dt.date(2026, 3, 31), "100.00")  # last month
    estimate(owner=cast.rep, issued_on=dt.date(2026, 3, 30), amount="400.00")

    forecast_snapshots_take(today=WEDNESDAY_FIRST)

    assert rows(rep=cast.rep) == [
        ("Alice Rep", "month", "period_start", Decimal(0), Decimal("200.00"), Decimal("200.00")),
        ("Alice Rep", "quarter", "period_start", Decimal(0), Decimal("200.00"), Decimal("200.00")),
    ]


def test_only_active_sales_people_with_a_team(cast: Cast) -> None:
    UserFactory(display_name="Gone", team=cast.team, is_active=False)
    UserFactory(display_name="Mark", team=cast.team, role=Role.MARKETING)
    UserFactory(display_name="Team lead", team=cast.team, role=Role.MANAGER)

    forecast_snapshots_take(today=WEDNESDAY_FIRST)

    names = set(ForecastSnapshot.objects.values_list("rep__display_name", flat=True))
    # The cast's managers, marketing and admin have no team.
    assert names == {"Alice Rep", "Bob Rep", "Charlie Rep", "Team lead"}


def test_running_twice_changes_nothing(cast: Cast) -> None:
    won(cast.rep, dt.date(2026, 4, 2), "100.00")
    forecast_snapshots_take(today=MONDAY)
    first = rows()

    won(cast.rep, dt.date(2026, 4, 3), "999.00")  # a late edit: the frozen forecast stays
    again = forecast_snapshots_take(today=MONDAY)

    assert again == len(first) == 9
    assert rows() == first


def test_queries_do_not_grow_with_reps(cast: Cast, django_assert_num_queries) -> None:
    def run() -> None:
        # 1 active salespeople with a team; 1 won so far per rep and period (one
        # GROUP BY); 3 weighted pipelines (month, quarter, year); 1 INSERT … ON CONFLICT.
        ForecastSnapshot.objects.all().delete()
        with django_assert_num_queries(6):
            forecast_snapshots_take(today=MONDAY)

    for rep in (cast.rep, cast.teammate):
        won(rep, dt.date(2026, 4, 2), "10.00")
        estimate(owner=rep, issued_on=dt.date(2026, 4, 10))
    run()
    extra = UserFactory(team=cast.team)
    won(extra, dt.date(2026, 4, 2), "10.00")
    estimate(owner=extra, issued_on=dt.date(2026, 4, 10))
    run()
    assert ForecastSnapshot.objects.count() == 12


def test_task_and_command_take_the_day_given(cast: Cast, time_machine) -> None:
    assert take_forecast_snapshots.delay(MONDAY.isoformat()).get() == 9
    out = io.StringIO()
    call_command("take_forecast_snapshots", "--date", "2026-04-01", stdout=out)
    assert "6 due" in out.getvalue()
    assert ForecastSnapshot.objects.filter(taken_on=WEDNESDAY_FIRST).count() == 6

    # The beat's wrapper reads today in the company's time zone: 1 April already
    # in Stockholm while still 31 March in UTC.
    time_machine.move_to(dt.datetime(2026, 3, 31, 22, 30, tzinfo=dt.UTC))
    assert take_forecast_snapshots_today.delay().get() == "2026-04-01"


# --- Accuracy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forecast", "actual", "expected"),
    [
        ("90", "100", Decimal("0.9")),
        ("110", "100", Decimal("0.9")),
        ("150", "100", Decimal("0.5")),  # over-forecast
        ("300", "100", Decimal("-1")),  # not clamped at 0
        ("0", "100", Decimal("0")),
        ("100", "0", None),  # nothing won: undefined
        (None, "100", None),  # no snapshot was taken
    ],
)
def test_accuracy_formula(forecast: str | None, actual: str, expected: Decimal | None) -> None:
    assert forecast_accuracy(Decimal(forecast) if forecast else None, Decimal(actual)) == expected


TODAY = dt.date(2026, 5, 20)
APRIL, MARCH, MAY = dt.date(2026, 4, 1), dt.date(2026, 3, 1), dt.date(2026, 5, 1)


@pytest.fixture
def history(cast: Cast) -> Cast:
    """April: Alice forecast 1000, won 800; Bob forecast 500, won 500. March: Alice only,
    and Charlie, in North then (moved to South since)."""
    snapshot(cast.rep, period_start=APRIL, period_end=dt.date(2026, 4, 30), forecast="1000")
    snapshot(cast.teammate, period_start=APRIL, period_end=dt.date(2026, 4, 30), forecast="500")
    snapshot(cast.rep, period_start=MARCH, period_end=dt.date(2026, 3, 31), forecast="200")
    snapshot(
        cast.other_rep,
        team=cast.team,
        period_start=MARCH,
        period_end=dt.date(2026, 3, 31),
        forecast="300",
    )
    won(cast.rep, dt.date(2026, 4, 3), "500.00")
    won(cast.rep, dt.date(2026, 4, 30), "300.00")
    won(cast.teammate, dt.date(2026, 4, 10), "500.00")
    won(cast.rep, dt.date(2026, 3, 10), "100.00")
    won(cast.other_rep, dt.date(2026, 3, 10), "300.00")
    won(cast.rep, dt.date(2026, 5, 2), "40.00")  # the current month: not measured yet
    # The current month: its start and two Mondays.
    snapshot(cast.rep, period_start=MAY, period_end=dt.date(2026, 5, 31), forecast="900")
    for day, amount in ((dt.date(2026, 5, 11), "700"), (dt.date(2026, 5, 18), "650")):
        snapshot(
            cast.rep,
            period_start=MAY,
            period_end=dt.date(2026, 5, 31),
            kind=SnapshotKind.WEEKLY,
            taken_on=day,
            forecast=amount,
        )
    return cast


def test_accuracy_per_rep_and_team(history: Cast) -> None:
    cast = history
    table = forecast_accuracy_for_team(
        team=cast.team,
        members=team_members(cast.team),
        period_kind=PeriodKind.MONTH,
        count=2,
        today=TODAY,
    )
    assert table.periods == [
        (APRIL, dt.date(2026, 4, 30)),
        (MARCH, dt.date(2026, 3, 31)),
    ]
    by_rep = {row.rep.display_name: row for row in table.rows}
    alice, bob = by_rep["Alice Rep"], by_rep["Bob Rep"]
    assert [(c.forecast, c.actual, c.accuracy) for c in alice.cells] == [
        (Decimal("1000.00"), Decimal("800.00"), Decimal("0.75")),
        (Decimal("200.00"), Decimal("100.00"), Decimal("0")),
    ]
    assert [(c.forecast, c.accuracy) for c in bob.cells] == [
        (Decimal("500.00"), Decimal(1)),
        (None, None),
    ]
    april, march = table.team_row.cells
    assert (april.forecast, april.actual) == (Decimal("1500.00"), Decimal("1300.00"))
    assert april.accuracy == 1 - Decimal(200) / Decimal(1300)
    # March counts Charlie, in North when his forecast was taken.
    assert (march.forecast, march.actual, march.accuracy) == (
        Decimal("500.00"),
        Decimal("400.00"),
        Decimal("0.75"),
    )
    assert alice.current.at_start.forecast == Decimal("900.00")
    assert alice.current.latest.taken_on == dt.date(2026, 5, 18)
    assert bob.current.at_start is None and bob.current.latest is None
    assert table.team_row.current.latest.forecast == Decimal("650.00")


def test_quarters(history: Cast) -> None:
    table = forecast_accuracy_for_team(
        team=history.team,
        members=team_members(history.team),
        period_kind=PeriodKind.QUARTER,
        count=1,
        today=TODAY,
    )
    assert table.periods == [(dt.date(2026, 1, 1), dt.date(2026, 3, 31))]
    assert table.current_period == (APRIL, dt.date(2026, 6, 30))
    alice = next(row for row in table.rows if row.rep == history.rep)
    assert (alice.cells[0].forecast, alice.cells[0].actual) == (None, Decimal("100.00"))


# --- The page ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner_rep", 200), ("manager", 200), ("other_rep", 200), ("marketing", 403), ("admin", 200)],
)
def test_page_per_role(history: Cast, time_machine, role: str, status: int) -> None:
    time_machine.move_to(dt.datetime(2026, 5, 20, 10, tzinfo=dt.UTC))
    response = client_for(history.roles()[role]).get(reverse("goals:forecast_accuracy"))
    assert response.status_code == status
    if status != 200:
        return
    body = response.content.decode()
    if role == "owner_rep":
        assert "Alice Rep" in body and "Bob Rep" not in body
        assert 'data-testid="team"' in body
    if role in ("manager", "admin"):
        assert "Alice Rep" in body and "Bob Rep" in body
        assert "75 %" in body
    if role == "other_rep":
        assert "Alice Rep" not in body and "Charlie Rep" in body


@pytest.mark.parametrize(("role", "status"), [("owner_rep", 200), ("other_rep", 404)])
def test_another_team_is_404(history: Cast, role: str, status: int) -> None:
    url = reverse("goals:forecast_accuracy") + f"?team={history.team.pk}"
    assert client_for(history.roles()[role]).get(url).status_code == status


def test_admin_picks_a_team_and_quarters(history: Cast, time_machine) -> None:
    time_machine.move_to(dt.datetime(2026, 5, 20, 10, tzinfo=dt.UTC))
    url = reverse("goals:forecast_accuracy")
    response = client_for(history.admin).get(
        url, {"team": history.other_team.pk, "period_kind": "quarter", "count": "3"}
    )
    body = response.content.decode()
    assert "Charlie Rep" in body and "Alice Rep" not in body
    assert body.count('data-testid="accuracy"') == 0


def test_without_a_team_an_empty_state(cast: Cast) -> None:
    lonely = UserFactory(display_name="Lonely")
    response = client_for(lonely).get(reverse("goals:forecast_accuracy"))
    assert "No team to show yet." in response.content.decode()


def test_page_queries_do_not_grow_with_reps(
    history: Cast, django_assert_num_queries, time_machine
) -> None:
    time_machine.move_to(dt.datetime(2026, 5, 20, 10, tzinfo=dt.UTC))
    client = client_for(history.manager)
    url = reverse("goals:forecast_accuracy")
    # 1 session, 2 user, 3 the first team the manager may see, 4 the members,
    # 5 the snapshots, 6 the won revenue per rep and month (GROUP BY),
    # 7-8 the team picker's choices (rendered by the select widget).
    with django_assert_num_queries(8):
        assert client.get(url).status_code == 200
    extra = UserFactory(team=history.team)
    snapshot(extra, period_start=APRIL, period_end=dt.date(2026, 4, 30), forecast="10")
    won(extra, dt.date(2026, 4, 3), "10.00")
    with django_assert_num_queries(8):
        assert "User " in client.get(url).content.decode()
