"""The KPI job: day boundaries, idempotence, stale facts, the nightly window, command, task."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db.models import Sum

from goals.kpis import compute_facts, compute_facts_range, nightly, nightly_days
from goals.models import DailyRepFact
from goals.tasks import compute_kpis_nightly, compute_kpis_rebuild
from leads.models import ActivityKind, DealStatus, Lead, LeadEvent, LeadEventKind, Stage
from tests.conftest import Cast
from tests.factories import ProductLineFactory, TerritoryFactory
from tests.goals.builders import activity, deal, estimate, fact_rows, lead, local

pytestmark = pytest.mark.django_db

SPRING_FORWARD = dt.date(2026, 3, 29)  # Europe/Stockholm: 02:00 → 03:00, a 23-hour day
FALL_BACK = dt.date(2026, 10, 25)  # 03:00 → 02:00, a 25-hour day


@pytest.fixture(autouse=True)
def _company_time_zone(settings) -> None:
    settings.TIME_ZONE = "Europe/Stockholm"


def facts_on(day: dt.date, **filters) -> dict:
    return DailyRepFact.objects.filter(day=day, **filters).aggregate(
        leads=Sum("leads_created"),
        calls=Sum("act_call"),
        revenue=Sum("revenue_won"),
        won=Sum("deals_won"),
        decided=Sum("leads_decided"),
        created_sql=Sum("leads_created_reached_sql"),
        estimates=Sum("estimates_issued"),
    )


@pytest.mark.parametrize("day", [SPRING_FORWARD, FALL_BACK])
def test_daylight_saving_days_keep_their_late_and_early_hours(cast: Cast, day: dt.date) -> None:
    """23:30 local on the changeover day is that day (in UTC it is already 21:30 or
    22:30 of it); 00:30 is that day too, though in UTC it is the evening before."""
    late = local(day.year, day.month, day.day, 23, 30)
    early = local(day.year, day.month, day.day, 0, 30)
    lead(owner=cast.rep, created=late)
    lead(owner=cast.rep, created=early)
    activity(owner=cast.rep, at=late)
    # Just outside: the evening before and the first minute after.
    before = local(day.year, day.month, day.day, 0, 0) - dt.timedelta(minutes=1)
    after = local(day.year, day.month, day.day, 0, 0) + dt.timedelta(days=1)
    lead(owner=cast.rep, created=before)
    lead(owner=cast.rep, created=after)
    assert early.astimezone(dt.UTC).date() == day - dt.timedelta(days=1)

    compute_facts_range(day - dt.timedelta(days=1), day + dt.timedelta(days=1))

    assert facts_on(day)["leads"] == 2
    assert facts_on(day)["calls"] == 1
    assert facts_on(day - dt.timedelta(days=1))["leads"] == 1
    assert facts_on(day + dt.timedelta(days=1))["leads"] == 1


def test_a_single_day_run_sees_only_that_day(cast: Cast) -> None:
    lead(owner=cast.rep, created=local(2026, 3, 29, 23, 30))
    lead(owner=cast.rep, created=local(2026, 3, 30, 0, 10))
    assert compute_facts(days=[SPRING_FORWARD]) == 1
    assert list(DailyRepFact.objects.values_list("day", "leads_created")) == [(SPRING_FORWARD, 1)]


def test_a_day_on_old_leads_takes_their_territory_line_and_age(cast: Cast) -> None:
    """Computing one day still knows the leads its rows point to, however old: a call
    and an estimate on January leads count in their territory and product line, and
    a deal's sales cycle runs from its lead's creation in January."""
    day = dt.date(2026, 5, 5)
    places = [(ProductLineFactory(), TerritoryFactory()) for _ in range(3)]
    called, quoted, sold = (
        lead(owner=cast.rep, created=local(2026, 1, 5 + n), lines=[line], territory=territory)
        for n, (line, territory) in enumerate(places)
    )
    activity(owner=cast.rep, at=local(2026, 5, 5, 10), lead=called)
    estimate(owner=cast.rep, issued_on=day, lead=quoted, line=places[1][0], amount=2500)
    deal(owner=cast.rep, close_date=day, lead=sold, line=places[2][0], territory=places[2][1])

    compute_facts(days=[day])

    facts = {
        (fact.product_line, fact.territory): fact for fact in DailyRepFact.objects.filter(day=day)
    }
    assert set(facts) == set(places)
    assert facts[places[0]].act_call == 1
    assert facts[places[1]].estimates_issued == 1
    sale = facts[places[2]]
    assert (sale.cycle_days_sum, sale.cycle_count) == ((day - dt.date(2026, 1, 7)).days, 1)


@pytest.fixture
def busy_week(cast: Cast) -> Cast:
    line, territory = ProductLineFactory(), TerritoryFactory()
    for offset in range(7):
        day = dt.date(2026, 5, 4) + dt.timedelta(days=offset)
        won = lead(
            owner=cast.rep,
            created=local(2026, 4, 20 + offset),
            stage=Stage.WON,
            mql=local(2026, 4, 27),
            sql=local(2026, 4, 28),
            decided=local(day.year, day.month, day.day, 16),
            lines=[line],
            territory=territory,
        )
        deal(owner=cast.rep, close_date=day, amount=1000 + offset, lead=won, line=line)
        deal(owner=cast.teammate, close_date=day, status=DealStatus.LOST)
        estimate(owner=cast.rep, issued_on=day, line=line)
        activity(owner=cast.rep, at=local(day.year, day.month, day.day, 9), lead=won)
        lead(owner=None, created=local(day.year, day.month, day.day, 8))
    return cast


def test_running_twice_gives_identical_rows(busy_week: Cast) -> None:
    first = compute_facts_range(dt.date(2026, 4, 1), dt.date(2026, 5, 31))
    rows = fact_rows()
    assert first == len(rows) > 0
    second = compute_facts_range(dt.date(2026, 4, 1), dt.date(2026, 5, 31))
    assert second == first
    assert fact_rows() == rows
    # A single day again, and an overlapping set of days: still the same rows.
    compute_facts(days=[dt.date(2026, 5, 6)])
    compute_facts(days=[dt.date(2026, 4, 22), dt.date(2026, 5, 6), dt.date(2026, 5, 10)])
    assert fact_rows() == rows


def test_a_deleted_deal_leaves_no_facts(busy_week: Cast) -> None:
    day = dt.date(2026, 5, 5)
    compute_facts(days=[day])
    assert facts_on(day, rep=busy_week.teammate)["won"] == 0
    assert DailyRepFact.objects.filter(day=day, rep=busy_week.teammate).exists()

    busy_week.teammate.deals.all().delete()
    compute_facts(days=[day])

    # The teammate's only fact that day was the lost deal: the row is gone, not zeroed.
    assert not DailyRepFact.objects.filter(day=day, rep=busy_week.teammate).exists()
    assert facts_on(day, rep=busy_week.rep)["won"] == 1


def test_a_deal_moved_to_another_day_moves_its_facts(busy_week: Cast) -> None:
    compute_facts_range(dt.date(2026, 5, 1), dt.date(2026, 5, 31))
    moved = busy_week.rep.deals.get(close_date=dt.date(2026, 5, 4))
    moved.close_date = dt.date(2026, 5, 20)
    moved.save()
    compute_facts(days=[dt.date(2026, 5, 4), dt.date(2026, 5, 20)])
    # The 4th keeps its other facts (the lead decided, the estimate) but not the deal.
    assert facts_on(dt.date(2026, 5, 4))["revenue"] == 0
    assert facts_on(dt.date(2026, 5, 4))["won"] == 0
    assert facts_on(dt.date(2026, 5, 4))["decided"] == 1
    assert facts_on(dt.date(2026, 5, 20))["revenue"] == Decimal("1000.00")


def test_unassigned_leads_are_kept_without_a_rep(busy_week: Cast) -> None:
    compute_facts_range(dt.date(2026, 5, 4), dt.date(2026, 5, 10))
    assert DailyRepFact.objects.filter(rep=None).aggregate(n=Sum("leads_created"))["n"] == 7


# --- The nightly window -------------------------------------------------------------

TODAY = dt.date(2026, 6, 10)


def test_nightly_covers_yesterday_and_the_trailing_week(cast: Cast) -> None:
    assert nightly_days(TODAY) == {TODAY - dt.timedelta(days=n) for n in range(1, 9)}


def test_nightly_recomputes_the_creation_day_of_a_lead_that_progressed(cast: Cast) -> None:
    """The cohort caveat: a lead created in March that reaches SQL in June changes
    March's funnel; the nightly run recomputes March's day because the lead changed."""
    created = local(2026, 3, 15)
    old = lead(owner=cast.rep, created=created, stage=Stage.MQL, mql=local(2026, 3, 20))
    compute_facts_range(dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    assert facts_on(created.date())["created_sql"] == 0

    with time_machine.travel(local(2026, 6, 9, 14), tick=False):
        old.stage, old.reached_sql_at = Stage.SQL, local(2026, 6, 9, 14)
        old.save()
    with time_machine.travel(local(2026, 6, 10, 2), tick=False):
        assert created.date() in nightly_days(TODAY)
        nightly(TODAY)

    assert facts_on(created.date())["created_sql"] == 1
    assert facts_on(dt.date(2026, 6, 9))["leads"] == 0  # reaching SQL is a flow fact of that day
    assert DailyRepFact.objects.get(day=dt.date(2026, 6, 9)).leads_reached_sql == 1


def test_nightly_drops_the_old_decision_of_a_recycled_lead(cast: Cast) -> None:
    decided = local(2026, 2, 10)
    lost = lead(owner=cast.rep, created=local(2026, 2, 1), stage=Stage.LOST, decided=decided)
    event = LeadEvent.objects.create(
        lead=lost, kind=LeadEventKind.STAGE, from_value=Stage.SQL, to_value=Stage.LOST
    )
    LeadEvent.objects.filter(pk=event.pk).update(created_at=decided)
    compute_facts_range(dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert facts_on(decided.date())["decided"] == 1

    with time_machine.travel(local(2026, 6, 9, 11), tick=False):
        Lead.objects.filter(pk=lost.pk).update(
            stage=Stage.SUSPECT, decided_at=None, updated_at=local(2026, 6, 9, 11)
        )
        nightly(TODAY)

    assert facts_on(decided.date())["decided"] is None


def test_nightly_picks_up_a_deal_recorded_late_with_an_old_close_date(cast: Cast) -> None:
    with time_machine.travel(local(2026, 6, 9, 16), tick=False):
        deal(owner=cast.rep, close_date=dt.date(2026, 4, 2), amount=4321)
        activity(owner=cast.rep, at=local(2026, 4, 3, 10), kind=ActivityKind.MEETING)
    with time_machine.travel(local(2026, 6, 10, 2), tick=False):
        nightly(TODAY)
    assert facts_on(dt.date(2026, 4, 2))["revenue"] == Decimal("4321.00")
    assert DailyRepFact.objects.get(day=dt.date(2026, 4, 3)).act_meeting == 1


def test_open_to_dos_in_the_future_are_not_facts(cast: Cast) -> None:
    with time_machine.travel(local(2026, 6, 9, 16), tick=False):
        activity(owner=cast.rep, at=local(2026, 6, 20), due=local(2026, 6, 20))
        activity(
            owner=cast.rep, at=local(2026, 6, 25), due=local(2026, 6, 25), done=local(2026, 6, 9)
        )
    with time_machine.travel(local(2026, 6, 10, 2), tick=False):
        assert max(nightly_days(TODAY)) == TODAY - dt.timedelta(days=1)


# --- Command and task -----------------------------------------------------------------


def test_command_one_day_a_range_and_a_rebuild(busy_week: Cast) -> None:
    out = StringIO()
    call_command("compute_kpis", "--date", "2026-05-05", stdout=out)
    assert "2026-05-05" in out.getvalue()
    assert set(DailyRepFact.objects.values_list("day", flat=True)) == {dt.date(2026, 5, 5)}

    out = StringIO()
    call_command("compute_kpis", "--from", "2026-05-01", "--to", "2026-05-31", stdout=out)
    assert " rows in " in out.getvalue()
    assert DailyRepFact.objects.filter(day__month=5).values("day").distinct().count() == 7

    with time_machine.travel(local(2026, 5, 12, 12), tick=False):
        call_command("compute_kpis", "--rebuild", stdout=StringIO())
    # The leads were created in April: the rebuild of the last year covers them.
    assert DailyRepFact.objects.filter(day__month=4).exists()


def test_command_without_options_runs_the_nightly_job(busy_week: Cast) -> None:
    out = StringIO()
    with time_machine.travel(local(2026, 5, 12, 2), tick=False):
        call_command("compute_kpis", stdout=out)
    assert "nightly run for 2026-05-12" in out.getvalue()
    assert max(DailyRepFact.objects.values_list("day", flat=True)) == dt.date(2026, 5, 10)


@pytest.mark.parametrize(
    "args",
    [
        ["--date", "2026-13-01"],
        ["--from", "2026-05-10", "--to", "2026-05-01"],
        ["--date", "2026-05-01", "--from", "2026-04-01"],
    ],
)
def test_command_refuses_bad_input(cast: Cast, args: list[str]) -> None:
    with pytest.raises(CommandError):
        call_command("compute_kpis", *args, stdout=StringIO())
    assert not DailyRepFact.objects.exists()


def test_nightly_task_takes_the_run_day_as_an_iso_date(busy_week: Cast) -> None:
    with time_machine.travel(local(2026, 5, 12, 2), tick=False):
        rows = compute_kpis_nightly.delay("2026-05-12").get()
    assert rows > 0
    # The window is May 3 to 11; the week's data is on the 4th to the 10th. The leads'
    # April creation days are outside it (nothing changed them lately).
    days = set(DailyRepFact.objects.values_list("day", flat=True))
    assert days == {dt.date(2026, 5, 4) + dt.timedelta(days=n) for n in range(7)}
    # Without a day (what beat sends) it is the company's today, read once at the start.
    with time_machine.travel(local(2026, 5, 12, 2), tick=False):
        assert compute_kpis_nightly.delay().get() == rows


def test_rebuild_task(busy_week: Cast) -> None:
    assert compute_kpis_rebuild.delay("2026-04-01", "2026-05-31").get() == len(fact_rows())


# --- The nightly run equals a rebuild ------------------------------------------------


def test_the_nightly_run_leaves_the_same_facts_as_a_full_rebuild(cast: Cast) -> None:
    """After late edits of every kind the nightly run sees, its facts are exactly
    those of a rebuild of every day — it just recomputes less."""
    from tests.goals.test_consistency import build_data_set

    everything = (dt.date(2025, 9, 1), dt.date(2026, 6, 30))
    with time_machine.travel(local(2026, 4, 20, 12), tick=False):
        world = build_data_set(cast)
        compute_facts_range(*everything)
    before = fact_rows()

    with time_machine.travel(local(2026, 5, 5, 15), tick=False):
        leads = list(Lead.objects.order_by("pk"))
        # Old leads progress (their creation days' cohort changes) ...
        for old in [lead for lead in leads if lead.stage == Stage.MQL][:15]:
            old.stage, old.reached_sql_at = Stage.SQL, local(2026, 5, 5, 15)
            old.save()
        # ... one is recycled (no longer decided on its old day) ...
        recycled = next(lead for lead in leads if lead.stage == Stage.LOST)
        event = LeadEvent.objects.create(
            lead=recycled, kind=LeadEventKind.STAGE, from_value=Stage.SQL, to_value=Stage.LOST
        )
        LeadEvent.objects.filter(pk=event.pk).update(created_at=recycled.decided_at)
        recycled.stage, recycled.decided_at, recycled.lost_reason = Stage.SUSPECT, None, ""
        recycled.save()
        # ... one changes hands, with all its days.
        moved = next(lead for lead in leads if lead.stage == Stage.WON and lead.owner_id)
        moved.owner = cast.other_rep
        moved.save()
        # A deal recorded late, an estimate issued long ago edited, a call logged
        # late, an old to-do done today.
        deal(owner=cast.rep, close_date=dt.date(2026, 2, 11), amount=777, line=world["lines"][0])
        old_estimate = estimate(owner=cast.teammate, issued_on=dt.date(2026, 3, 3))
        old_estimate.amount = Decimal("31415.92")
        old_estimate.save()
        activity(owner=cast.teammate, at=local(2026, 1, 20, 23, 45), kind=ActivityKind.DEMO)
        todo = activity(
            owner=cast.rep, at=local(2026, 2, 2), kind=ActivityKind.CALL, due=local(2026, 2, 2)
        )
    with time_machine.travel(local(2026, 5, 6, 2), tick=False):
        todo.done_at = local(2026, 5, 5, 16)
        todo.save()
        nightly(dt.date(2026, 5, 6))
    after_nightly = fact_rows()

    compute_facts_range(*everything)
    assert after_nightly == fact_rows()
    assert after_nightly != before


def test_a_rerun_writes_no_row(busy_week: Cast) -> None:
    """Readers see no churn: recomputing unchanged days rewrites nothing (no new row
    versions), so dashboards and the table's bloat do not pay for the nightly window."""
    from django.db import connection

    def versions() -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, ctid::text FROM goals_dailyrepfact ORDER BY id")
            return cursor.fetchall()

    compute_facts_range(dt.date(2026, 4, 1), dt.date(2026, 5, 31))
    first = versions()
    compute_facts_range(dt.date(2026, 4, 1), dt.date(2026, 5, 31))
    assert versions() == first
