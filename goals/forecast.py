"""The weighted pipeline and the forecast for a period's end.

DESIGN.md: weighted pipeline = sum of open estimate amount times stage probability,
the probabilities being ``settings.PIPELINE_STAGE_PROBABILITIES`` (by the stage
of the estimate's lead; an estimate without a lead counts as "sql"; a lead
already won, lost or disqualified counts 0 — its revenue is in the deals).
An estimate is open while it is a draft or sent and not past its valid-until day.

The forecast for a period's end is what is already won in the period plus the
weighted value of the open estimates that will be decided by then (valid until
a day within the period): the estimates that run past the period's end cannot
be counted on for it.

These read raw estimates (a snapshot of now, not a daily fact): one query for
any number of reps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, DecimalField, F, Q, QuerySet, Sum, Value, When
from django.db.models.functions import TruncMonth, TruncQuarter, TruncYear

from accounts.models import Role, Team, User
from goals.models import DailyRepFact, ForecastSnapshot, PeriodKind, SnapshotKind
from goals.services import period_bounds
from leads.models import OPEN_ESTIMATE_STATUSES, Estimate, Stage

RepScope = QuerySet[User] | Iterable[int]
ZERO = Decimal(0)
CENT = Decimal("0.01")


def _probability() -> Case:
    """The probability of an estimate's lead's stage, as a SQL expression.

    Reads the estimate's copy of the stage (``Estimate.lead_stage``): no join to
    the lead.
    """
    probabilities = settings.PIPELINE_STAGE_PROBABILITIES
    whens = [
        When(lead_stage=stage, then=Value(Decimal(str(probability))))
        for stage, probability in probabilities.items()
    ]
    no_lead = Decimal(str(probabilities.get(Stage.SQL, 0)))
    return Case(
        When(lead__isnull=True, then=Value(no_lead)),
        *whens,
        default=Value(ZERO),
        output_field=DecimalField(max_digits=6, decimal_places=4),
    )


def open_estimates(*, reps: RepScope, today: date, until: date | None = None) -> QuerySet[Estimate]:
    """The open estimates of the reps on ``today``; with ``until``, only those decided by then."""
    owners = Q(owner__in=reps.values("pk")) if isinstance(reps, QuerySet) else Q(owner__in=reps)
    estimates = Estimate.objects.filter(
        owners, status__in=OPEN_ESTIMATE_STATUSES, valid_until__gte=today
    )
    if until is not None:
        estimates = estimates.filter(valid_until__lte=until)
    return estimates


def weighted_pipeline_by_rep(
    *, reps: RepScope, today: date, until: date | None = None
) -> dict[int, Decimal]:
    """{rep id: weighted pipeline} of open estimates, one query; reps without any are absent."""
    rows = (
        open_estimates(reps=reps, today=today, until=until)
        .values("owner")
        .annotate(
            weighted=Sum(
                F("amount") * _probability(),
                output_field=DecimalField(max_digits=20, decimal_places=6),
            )
        )
        .values_list("owner", "weighted")
    )
    return {owner: (weighted or ZERO).quantize(Decimal("0.01")) for owner, weighted in rows}


@dataclass(frozen=True)
class Forecast:
    won_to_date: Decimal  # revenue won in the period up to today
    weighted_pipeline: Decimal  # open estimates decided by the period's end, weighted
    forecast: Decimal  # the sum of both: the revenue expected by the period's end


def forecast_for(*, won_to_date: Decimal, reps: RepScope, today: date, end: date) -> Forecast:
    """The forecast for the period ending ``end``, given what is already won (one query).

    ``won_to_date`` comes from the caller (the facts' ``revenue_won`` of the
    period so far), so a dashboard that already summed it pays no second query.
    """
    pipeline = sum(
        weighted_pipeline_by_rep(reps=reps, today=today, until=end).values(), ZERO
    ).quantize(Decimal("0.01"))
    return Forecast(
        won_to_date=won_to_date, weighted_pipeline=pipeline, forecast=won_to_date + pipeline
    )


# --- Snapshots ---------------------------------------------------------------------------

SNAPSHOT_PERIOD_KINDS = (PeriodKind.MONTH, PeriodKind.QUARTER, PeriodKind.YEAR)


def snapshots_due(today: date) -> list[tuple[str, str, date, date]]:
    """(period kind, snapshot kind, start, end) of the snapshots to take on ``today``.

    The first day of a month, quarter or year takes its period-start snapshot (the
    one accuracy is measured on); every Monday takes a weekly one of each period
    running. A Monday that is also a first day takes the period-start one only:
    there is one row per rep, period and day.
    """
    due = []
    for period_kind in SNAPSHOT_PERIOD_KINDS:
        start, end = period_bounds(period_kind, today)
        if today == start:
            due.append((period_kind, SnapshotKind.PERIOD_START, start, end))
        elif today.weekday() == 0:
            due.append((period_kind, SnapshotKind.WEEKLY, start, end))
    return due


def forecast_snapshots_take(*, today: date) -> int:
    """Freeze today's forecast of every active salesperson with a team; returns the rows due.

    For each period due (``snapshots_due``): won so far from the facts up to
    yesterday (0 on the first day), plus the weighted pipeline decided by the
    period's end. Queries do not grow with the number of reps: the people (1),
    the won revenue of every period at once (1), the pipeline per period (≤ 3)
    and one INSERT. Safe to repeat: a row already there for (rep, period, day)
    is kept as first taken (ON CONFLICT DO NOTHING), so a rerun or a retried
    task changes nothing.
    """
    due = snapshots_due(today)
    if not due:
        return 0
    people = list(
        User.objects.filter(
            is_active=True, role__in=(Role.REP, Role.MANAGER), team__isnull=False
        ).values_list("pk", "team_id")
    )
    if not people:
        return 0
    rep_ids = [pk for pk, _team in people]
    yesterday = today - timedelta(days=1)
    earliest = min(start for _kind, _snap, start, _end in due)
    won_by_period = {
        f"won_{period_kind}": Sum("revenue_won", filter=Q(day__gte=start))
        for period_kind, _snap, start, _end in due
    }
    won = {
        row["rep"]: row
        for row in DailyRepFact.objects.filter(
            rep__in=rep_ids, day__gte=earliest, day__lte=yesterday
        )
        .values("rep")
        .annotate(**won_by_period)
    }
    rows = []
    for period_kind, snapshot_kind, start, end in due:
        pipeline = weighted_pipeline_by_rep(reps=rep_ids, today=today, until=end)
        for rep_id, team_id in people:
            won_to_date = (won.get(rep_id, {}).get(f"won_{period_kind}") or ZERO).quantize(CENT)
            weighted = pipeline.get(rep_id, ZERO)
            rows.append(
                ForecastSnapshot(
                    rep_id=rep_id,
                    team_id=team_id,
                    period_kind=period_kind,
                    period_start=start,
                    period_end=end,
                    kind=snapshot_kind,
                    taken_on=today,
                    won_to_date=won_to_date,
                    weighted_pipeline=weighted,
                    forecast=won_to_date + weighted,
                )
            )
    ForecastSnapshot.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    return len(rows)


# --- Accuracy ----------------------------------------------------------------------------


def forecast_accuracy(forecast: Decimal | None, actual: Decimal | None) -> Decimal | None:
    """1 - |forecast - actual| ÷ actual (DESIGN.md); None without a forecast or when actual is 0.

    Not clamped: forecasting three times what was won gives -1, which says more
    than a floor of 0 would.
    """
    if forecast is None or actual is None or actual == 0:
        return None
    return 1 - abs(Decimal(forecast) - Decimal(actual)) / Decimal(actual)


def period_starts_back(period_kind: str, today: date, count: int) -> list[date]:
    """The first days of the ``count`` whole periods before the one of ``today``, newest first."""
    starts = []
    current, _end = period_bounds(period_kind, today)
    for _ in range(count):
        current, _end = period_bounds(period_kind, current - timedelta(days=1))
        starts.append(current)
    return starts


@dataclass(frozen=True)
class AccuracyCell:
    """One rep (or a team) in one period."""

    period_start: date
    period_end: date
    forecast: Decimal | None  # the period-start snapshot's forecast; None: none was taken
    actual: Decimal  # revenue won in the period

    @property
    def accuracy(self) -> Decimal | None:
        return forecast_accuracy(self.forecast, self.actual)

    @property
    def accuracy_percent(self) -> Decimal | None:
        accuracy = self.accuracy
        return accuracy * 100 if accuracy is not None else None


@dataclass(frozen=True)
class CurrentForecast:
    """The period running now: how it started and the latest weekly view of it."""

    at_start: ForecastSnapshot | None
    latest: ForecastSnapshot | None  # the newest weekly snapshot, None before the first Monday


@dataclass(frozen=True)
class AccuracyRow:
    rep: User | None  # None: the team's total
    cells: list[AccuracyCell]
    current: CurrentForecast


@dataclass(frozen=True)
class AccuracyTable:
    period_kind: str
    periods: list[tuple[date, date]]  # newest first
    current_period: tuple[date, date]
    rows: list[AccuracyRow]  # one per rep
    team_row: AccuracyRow


def forecast_accuracy_for_team(
    *, team: Team, members: list[User], period_kind: str, count: int, today: date
) -> AccuracyTable:
    """Forecast accuracy of a team's reps and of the team over the last ``count`` periods.

    A rep's forecast is their own period-start snapshot. The team's is the sum of
    the snapshots taken for the team (its ``team`` when taken, so a rep who has
    since moved still counts where they were), against what those same reps
    won: a rep who joined mid-period, without a snapshot, does not make the team
    look wrong. Three queries whatever the number of reps and periods: the
    snapshots, and the revenue won per rep and period (grouped in SQL).
    """
    starts = period_starts_back(period_kind, today, count)
    periods = [period_bounds(period_kind, start) for start in starts]
    current = period_bounds(period_kind, today)
    member_ids = [member.pk for member in members]
    snapshots = list(
        ForecastSnapshot.objects.filter(
            Q(team=team) | Q(rep__in=member_ids),
            period_kind=period_kind,
            period_start__gte=starts[-1] if starts else current[0],
            period_start__lte=current[0],
        )
        .filter(Q(kind=SnapshotKind.PERIOD_START) | Q(period_start=current[0]))
        .order_by("taken_on", "pk")
    )
    rep_ids = set(member_ids) | {snapshot.rep_id for snapshot in snapshots}
    truncate = {
        PeriodKind.MONTH: TruncMonth,
        PeriodKind.QUARTER: TruncQuarter,
        PeriodKind.YEAR: TruncYear,
    }[period_kind]
    actual: dict[tuple[int, date], Decimal] = {}
    if starts:
        for rep_id, period, won in (
            DailyRepFact.objects.filter(rep__in=rep_ids, day__gte=starts[-1], day__lt=current[0])
            .annotate(period=truncate("day"))
            .values("rep", "period")
            .annotate(won=Sum("revenue_won"))
            .values_list("rep", "period", "won")
        ):
            actual[(rep_id, period)] = won or ZERO

    at_start: dict[tuple[int, date], ForecastSnapshot] = {}
    latest_weekly: dict[int, ForecastSnapshot] = {}
    team_current: list[ForecastSnapshot] = []
    for snapshot in snapshots:
        if snapshot.kind == SnapshotKind.PERIOD_START:
            at_start[(snapshot.rep_id, snapshot.period_start)] = snapshot
        elif snapshot.period_start == current[0]:
            latest_weekly[snapshot.rep_id] = snapshot  # ordered by day: the last one wins
        if snapshot.team_id == team.pk and snapshot.period_start == current[0]:
            team_current.append(snapshot)

    rows = []
    for member in members:
        cells = []
        for start, end in periods:
            snapshot = at_start.get((member.pk, start))
            cells.append(
                AccuracyCell(
                    period_start=start,
                    period_end=end,
                    forecast=snapshot.forecast if snapshot else None,
                    actual=actual.get((member.pk, start), ZERO),
                )
            )
        rows.append(
            AccuracyRow(
                rep=member,
                cells=cells,
                current=CurrentForecast(
                    at_start=at_start.get((member.pk, current[0])),
                    latest=latest_weekly.get(member.pk),
                ),
            )
        )

    team_cells = []
    for start, end in periods:
        taken = [
            s
            for s in snapshots
            if s.team_id == team.pk
            and s.kind == SnapshotKind.PERIOD_START
            and s.period_start == start
        ]
        team_cells.append(
            AccuracyCell(
                period_start=start,
                period_end=end,
                forecast=sum((s.forecast for s in taken), ZERO) if taken else None,
                actual=sum((actual.get((s.rep_id, start), ZERO) for s in taken), ZERO),
            )
        )
    team_row = AccuracyRow(
        rep=None, cells=team_cells, current=_team_current(team_current, current[0])
    )
    return AccuracyTable(
        period_kind=period_kind,
        periods=periods,
        current_period=current,
        rows=rows,
        team_row=team_row,
    )


def _team_current(snapshots: list[ForecastSnapshot], start: date) -> CurrentForecast:
    """The team's current period as unsaved snapshots summing its reps' (for display only)."""

    def total(kind: str, day: date | None) -> ForecastSnapshot | None:
        chosen = [s for s in snapshots if s.kind == kind and (day is None or s.taken_on == day)]
        if not chosen:
            return None
        first = chosen[0]
        return ForecastSnapshot(
            team_id=first.team_id,
            period_kind=first.period_kind,
            period_start=first.period_start,
            period_end=first.period_end,
            kind=kind,
            taken_on=first.taken_on,
            won_to_date=sum((s.won_to_date for s in chosen), ZERO),
            weighted_pipeline=sum((s.weighted_pipeline for s in chosen), ZERO),
            forecast=sum((s.forecast for s in chosen), ZERO),
        )

    weekly_days = [s.taken_on for s in snapshots if s.kind == SnapshotKind.WEEKLY]
    return CurrentForecast(
        at_start=total(SnapshotKind.PERIOD_START, None),
        latest=total(SnapshotKind.WEEKLY, max(weekly_days)) if weekly_days else None,
    )
