"""Reads behind the dashboards (team, company, rep): periods, per-rep figures, goals,
estimate coverage, funnel, trends and the pipeline.

Everything is read from the daily facts (``DailyRepFact``) by SUM, grouped in
SQL (GROUP BY rep, week, month, product line), so a dashboard costs the same
small number of queries for 1 rep or 100. The exceptions are those DESIGN.md
names: the median sales cycle and repeat business (``raw_deal_kpis``), the
pipeline (open estimates, ``goals.forecast``) and the drill-down lists.

Like ``goals.selectors``, these functions do not scope by themselves: the views
resolve the team or rep through ``accounts.access`` first and pass ids in.
A rep id list of ``None`` means the whole company.

Facts are written by the nightly job, so they run up to yesterday:
``Period.facts_end`` is the last day a figure can include.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import (
    Prefetch,
    Q,
    QuerySet,
    Sum,
)
from django.template.defaultfilters import floatformat
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from feedback.services import is_working_day
from goals.kpis import FACT_COLUMNS, MONEY_COLUMNS
from goals.models import DailyRepFact, Goal, Metric, OwnerKind
from goals.selectors import (
    STATUS_COLOURS,
    Kpis,
    goal_actual,
    goal_target_on,
    kpis_from_totals,
    pace,
    ratio,
)
from goals.selectors import pace_status as selectors_pace_status
from goals.services import period_bounds
from leads.models import DealStatus

RepIds = list[int] | None  # None: every rep of the company (and the unassigned leads)
ZERO = Decimal(0)


def percent(share: Decimal | None) -> Decimal | None:
    """A share (0..1) as a percentage, for display; None stays None."""
    return share * 100 if share is not None else None


def display(value: Any, fmt: str) -> str:
    """A KPI as shown (localised numbers; shares as percentages; "—" when undefined).

    Formatted here rather than by a template include per figure: a dashboard shows
    dozens, and an include each was a third of the page's rendering time.
    """
    if value is None:
        return "—"
    if fmt == "money":
        return f"{floatformat(value, '0g')}\u00a0{settings.BASE_CURRENCY}"
    if fmt == "share":
        return f"{floatformat(value * 100, 1)}\u00a0%"
    if fmt == "percent":
        return f"{floatformat(value, 1)}\u00a0%"
    if fmt == "ratio":
        return f"{floatformat(value, 2)}\u00d7"  # the multiplication sign
    if fmt in ("days", "score"):
        return floatformat(value, 1)
    return floatformat(value, "0g")


# --- Periods ---------------------------------------------------------------------------

PERIOD_CHOICES = [
    ("this_month", _("This month")),
    ("last_month", _("Last month")),
    ("this_quarter", _("This quarter")),
    ("this_year", _("This year")),
    ("custom", _("Custom")),
]
DEFAULT_PERIOD = "this_month"
MAX_CUSTOM_DAYS = 2 * 366  # "two years at most", leap day included


@dataclass(frozen=True)
class Period:
    """The range a dashboard shows, and ``today`` (read once per request)."""

    key: str
    start: date
    end: date
    today: date

    @property
    def facts_end(self) -> date:
        """The last day with facts: yesterday (the nightly job), or the period's end."""
        return min(self.end, self.today - timedelta(days=1))

    @property
    def is_running(self) -> bool:
        return self.start <= self.today <= self.end

    @property
    def measured_days(self) -> int:
        """Days of the period that have facts so far (0 before it starts)."""
        return max(0, (self.facts_end - self.start).days + 1)

    @property
    def previous(self) -> tuple[date, date]:
        """The same length just before the start.

        The length is that of the days measured so far, so a running month is
        compared with as many days before it (1-14 March with 15-28 February),
        never a half month with a whole one. A period not started yet compares
        its full length.
        """
        length = self.measured_days or (self.end - self.start).days + 1
        previous_end = self.start - timedelta(days=1)
        return previous_end - timedelta(days=length - 1), previous_end

    def months(self) -> list[tuple[date, date]]:
        """The months touching the period, each clipped to it: [(first day, last day)]."""
        months = []
        month_start = self.start.replace(day=1)
        while month_start <= self.end:
            _first, last = period_bounds("month", month_start)
            months.append((max(month_start, self.start), min(last, self.end)))
            month_start = last + timedelta(days=1)
        return months


def period_for(key: str, today: date, start: date | None = None, end: date | None = None) -> Period:
    """The period ``key`` around ``today``; custom takes ``start``/``end`` (validated before)."""
    if key == "last_month":
        first, last = period_bounds("month", today.replace(day=1) - timedelta(days=1))
    elif key == "this_quarter":
        first, last = period_bounds("quarter", today)
    elif key == "this_year":
        first, last = period_bounds("year", today)
    elif key == "custom" and start is not None and end is not None:
        first, last = start, end
    else:
        key = DEFAULT_PERIOD
        first, last = period_bounds("month", today)
    return Period(key=key, start=first, end=last, today=today)


# --- Facts grouped by rep --------------------------------------------------------------


def zero_totals() -> dict[str, Any]:
    return {column: ZERO if column in MONEY_COLUMNS else 0 for column in FACT_COLUMNS}


def add_totals(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The column-wise sum of fact rows (pure: no query)."""
    total = zero_totals()
    for row in rows:
        for column in FACT_COLUMNS:
            total[column] += row[column]
    return total


def _facts(rep_ids: RepIds, start: date, end: date) -> QuerySet[DailyRepFact]:
    facts = DailyRepFact.objects.filter(day__gte=start, day__lte=end)
    if rep_ids is not None:
        facts = facts.filter(rep__in=rep_ids)
    return facts


def _sums(columns: Sequence[str] = FACT_COLUMNS, prefix: str = "sum_") -> dict[str, Sum]:
    # Prefixed: an annotation may not carry the name of a model field.
    return {f"{prefix}{column}": Sum(column) for column in columns}


def _unprefix(row: dict[str, Any], prefix: str = "sum_") -> dict[str, Any]:
    totals = zero_totals()
    for column in FACT_COLUMNS:
        value = row.get(f"{prefix}{column}")
        if value is not None:
            totals[column] = value
    return totals


def facts_by_rep(
    *,
    rep_ids: RepIds,
    start: date,
    end: date,
    columns: Sequence[str] = FACT_COLUMNS,
) -> dict[int | None, dict[str, Any]]:
    """{rep id: summed fact columns} over [start, end], ONE query (GROUP BY rep).

    ``columns`` narrows the sums to what the caller needs (the others stay 0).
    With ``rep_ids=None`` (the company) the key ``None`` holds the leads nobody
    owns yet (marketing's pool). Reps without facts are absent.
    """
    rows = _facts(rep_ids, start, end).values("rep").annotate(**_sums(columns)).order_by()
    return {row["rep"]: _unprefix(row) for row in rows}


def scope_totals(*, rep_ids: RepIds, start: date, end: date) -> dict[str, Any]:
    """Summed fact columns of the whole scope over [start, end] (one query)."""
    return _unprefix(_facts(rep_ids, start, end).aggregate(**_sums()))


def scope_kpis(
    *,
    rep_ids: RepIds,
    period: Period,
    totals: dict[str, Any],
    previous_totals: dict[str, Any],
    quota: Decimal | None,
    previous_quota: Decimal | None,
) -> tuple[Kpis, Kpis]:
    """Every KPI of DESIGN.md for the period (facts up to yesterday) and the period
    before, from already summed facts plus the raw-deal figures of both (one query)."""
    previous_start, previous_end = period.previous
    raw = raw_deal_figures(
        rep_ids=rep_ids, start=period.start, end=period.facts_end, previous_start=previous_start
    )
    result = []
    for key, facts, first, last, revenue_quota in (
        ("", totals, period.start, period.facts_end, quota),
        ("previous_", previous_totals, previous_start, previous_end, previous_quota),
    ):
        median = raw[f"{key}cycle_median"]
        result.append(
            kpis_from_totals(
                facts,
                start=first,
                end=last,
                cycle_median=Decimal(str(median)) if median is not None else None,
                customers_won=raw[f"{key}customers"],
                repeat_customers=raw[f"{key}repeat"],
                revenue_quota=revenue_quota,
            )
        )
    return result[0], result[1]


def average_totals(totals: dict[str, Any], count: int) -> dict[str, Any]:
    """Every column ÷ ``count``: a team's average rep. Ratios built from it equal the team's."""
    if count <= 0:
        return zero_totals()
    return {column: Decimal(value) / count for column, value in totals.items()}


# --- Change against the previous period ------------------------------------------------


@dataclass(frozen=True)
class Change:
    """How a figure moved against the previous period: direction and percent (None: n/a)."""

    direction: str  # "up", "down", "flat" or "" (nothing to compare)
    percent: Decimal | None

    @property
    def arrow(self) -> str:
        return {"up": "▲", "down": "▼", "flat": "▶"}.get(self.direction, "")

    @property
    def label(self) -> str:
        """ "▲ 12 %", "▲ new" (from nothing), "▶ 0 %"; "" when there is nothing to compare."""
        if not self.direction:
            return ""
        if self.percent is None:
            return f"{self.arrow} {_('new')}"
        return f"{self.arrow} {floatformat(abs(self.percent), 0)}\u00a0%"


def change(current: Any, previous: Any) -> Change:
    """Percent change; from 0 to something is "up" without a percent, None on either side is ""."""
    if current is None or previous is None:
        return Change("", None)
    current, previous = Decimal(current), Decimal(previous)
    if current == previous:
        return Change("flat", Decimal(0))
    direction = "up" if current > previous else "down"
    if previous == 0:
        return Change(direction, None)
    return Change(direction, ((current - previous) / abs(previous) * 100).quantize(Decimal("1")))


# Each card: (Kpis attribute, label, format, drill-down kind or "", better when higher).
KPI_CARDS: list[tuple[str, Any, str, str, bool]] = [
    ("sales_volume", _("Sales volume"), "money", "deals-won", True),
    ("deals_won", _("Deals won"), "count", "deals-won", True),
    ("average_ticket", _("Average ticket"), "money", "deals-won", True),
    ("win_rate", _("Win rate"), "share", "deals-lost", True),
    ("lead_conversion_rate", _("Lead conversion"), "share", "leads-decided", True),
    ("funnel_won_share", _("Leads created that were won"), "share", "leads-created", True),
    ("sales_cycle_median_days", _("Sales cycle, median (days)"), "days", "deals-won", False),
    ("sales_cycle_mean_days", _("Sales cycle, mean (days)"), "days", "deals-won", False),
    ("repeat_business_rate", _("Repeat business"), "share", "deals-won", True),
    ("estimate_coverage", _("Estimate coverage"), "ratio", "estimates-issued", True),
    ("csat", _("CSAT"), "score", "", True),
    ("nps", _("NPS"), "score", "", True),
    ("survey_response_rate", _("Survey response rate"), "share", "", True),
    ("activities_total", _("Activities"), "count", "", True),
]


@dataclass(frozen=True)
class KpiCard:
    name: str
    label: Any
    format: str
    value: Any
    previous: Any
    change: Change
    drill: str
    good: bool | None  # the change is good news (True), bad (False), or neither (None)

    @property
    def shown(self) -> str:
        return display(self.value, self.format)

    @property
    def change_class(self) -> str:
        return {True: "text-success", False: "text-danger"}.get(self.good, "text-body-secondary")


def kpi_cards(current: Kpis, previous: Kpis) -> list[KpiCard]:
    cards = []
    for name, label, fmt, drill, higher_is_better in KPI_CARDS:
        value, before = getattr(current, name), getattr(previous, name)
        moved = change(value, before)
        good = None
        if moved.direction in ("up", "down"):
            good = (moved.direction == "up") == higher_is_better
        cards.append(KpiCard(name, label, fmt, value, before, moved, drill, good))
    return cards


# --- Funnel ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelStep:
    label: Any
    count: int
    share: Decimal | None  # of the leads created
    conversion: Decimal | None  # from the step before

    @property
    def share_percent(self) -> Decimal | None:
        return percent(self.share)

    @property
    def conversion_percent(self) -> Decimal | None:
        return percent(self.conversion)


def funnel(totals: dict[str, Any]) -> list[FunnelStep]:
    """Suspect → MQL → SQL → won for the cohort of leads created in the range (from facts)."""
    counts = [
        (_("Leads created"), totals["leads_created"]),
        (_("Reached MQL"), totals["leads_created_reached_mql"]),
        (_("Reached SQL"), totals["leads_created_reached_sql"]),
        (_("Won"), totals["leads_created_won"]),
    ]
    created = counts[0][1]
    steps = []
    for index, (label, count) in enumerate(counts):
        before = counts[index - 1][1] if index else None
        steps.append(
            FunnelStep(
                label=label,
                count=count,
                share=ratio(count, created),
                conversion=ratio(count, before) if index else None,
            )
        )
    return steps


# --- One scan of the period (and of the one before): per rep, week, month, line ----------


@dataclass
class PeriodFacts:
    """What a dashboard reads from the facts of its period, all from ONE scan."""

    by_rep: dict[int | None, dict[str, Any]]
    weekly: list[dict[str, Any]]  # chart rows: week, revenue, win rate %
    monthly: list[dict[str, Any]]  # chart rows: month, CSAT, NPS
    issued: dict[tuple[int, int | None, date], Decimal]  # (rep, line, month): estimates
    # {rep id: summed facts of the previous range} (empty without ``previous_start``)
    previous_by_rep: dict[int | None, dict[str, Any]] = field(default_factory=dict)

    @property
    def previous_totals(self) -> dict[str, Any]:
        """The previous range summed over every rep read."""
        return add_totals(self.previous_by_rep.values())


def _sum_into(target: list[Any], values: Sequence[Any]) -> None:
    # A group's SUM is never NULL (the columns are NOT NULL and a group has rows).
    for index, value in enumerate(values):
        target[index] += value


def _as_totals(values: list[Any]) -> dict[str, Any]:
    return dict(zip(FACT_COLUMNS, values, strict=True))


_ZERO_ROW = tuple(ZERO if column in MONEY_COLUMNS else 0 for column in FACT_COLUMNS)


def _row_for(groups: dict[Any, list[Any]], key: Any) -> list[Any]:
    """The running sums of ``key`` (zeros the first time)."""
    row = groups.get(key)
    if row is None:
        row = groups[key] = list(_ZERO_ROW)
    return row


def _period_facts_sql(
    rep_ids: RepIds, start: date, end: date, previous_start: date | None, chart_rep: int | None
) -> tuple[str, list[Any]]:
    """The query of ``period_facts``: rows of (current?, rep, line, week, month, sums...).

    Two shapes, as the planner handles them best. A team's few thousand facts: one
    scan of both ranges, the previous range's rows folded to the rep by CASE (a
    serial hash aggregate). The company's: a UNION ALL of the two ranges grouped by
    plain columns (CASE groups were estimated at one per row: a sort of every fact),
    which the planner runs in parallel; for a team that parallel plan was slower,
    its workers' start-up costing more than they save on 2 cores.
    """
    week = "date_trunc('week', f.day::timestamp)::date"
    month = "date_trunc('month', f.day::timestamp)::date"
    sums = ", ".join(f'SUM(f."{column}")' for column in FACT_COLUMNS)
    table = DailyRepFact._meta.db_table
    if rep_ids is not None and previous_start is not None:
        current = "f.day >= %s"
        sql = (
            f"SELECT {current}, f.rep_id, "  # noqa: S608
            f"CASE WHEN {current} THEN f.product_line_id END, "
            f"CASE WHEN {current} THEN {week} END, CASE WHEN {current} THEN {month} END, "
            f"{sums} FROM {table} f "
            "WHERE (f.rep_id = ANY(%s) AND f.day >= %s AND f.day <= %s) "
            "OR (f.rep_id = ANY(%s) AND f.day >= %s AND f.day < %s) GROUP BY 1, 2, 3, 4, 5"
        )
        # The previous range of the charted rep only, when there is one (the rep
        # dashboard compares the rep, not their team, with the period before).
        previous_reps = [chart_rep] if chart_rep is not None else list(rep_ids)
        params = [start] * 4 + [list(rep_ids), start, end, previous_reps, previous_start, start]
        return sql, params
    reps = " AND f.rep_id = ANY(%s)" if rep_ids is not None else ""
    rep_param = [list(rep_ids)] if rep_ids is not None else []
    sql = (
        f"SELECT true, f.rep_id, f.product_line_id, {week}, {month}, {sums} "  # noqa: S608
        f"FROM {table} f WHERE f.day >= %s AND f.day <= %s{reps} "
        f"GROUP BY f.rep_id, f.product_line_id, {week}, {month}"
    )
    params: list[Any] = [start, end, *rep_param]
    if previous_start is not None:
        sql += (
            f" UNION ALL SELECT false, f.rep_id, NULL, NULL, NULL, {sums} "  # noqa: S608
            f"FROM {table} f WHERE f.day >= %s AND f.day <= %s{reps} GROUP BY f.rep_id"
        )
        params += [previous_start, start - timedelta(days=1), *rep_param]
    return sql, params


def period_facts(
    *,
    rep_ids: RepIds,
    start: date,
    end: date,
    previous_start: date | None = None,
    chart_rep: int | None = None,
) -> PeriodFacts:
    """Facts of [start, end] (and of [previous_start, start - 1]) in ONE query.

    A plain GROUP BY at the finest grain the page needs (rep, product line, ISO
    week and month of the period; rep alone for the previous range), then the
    per-rep totals, the weekly revenue and win rate, the monthly CSAT and NPS and
    the estimate value per rep, product line and month are added up here. That is
    a few hundred rows for a team; GROUPING SETS over the raw facts summed all
    thirty columns four times in SQL (and sorted every row), twice the time, and
    the previous range was a second query.

    Weeks are ISO weeks (Monday first); a week or month cut by the range counts
    only its days inside it. With ``rep_ids=None`` the rep ``None`` (leads nobody
    owns yet) is one of the per-rep keys. ``chart_rep`` narrows the charts, the
    estimates issued and the previous range to one rep (the rep dashboard reads its
    team's totals in the same scan).
    """
    sql, params = _period_facts_sql(rep_ids, start, end, previous_start, chart_rep)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    by_rep: dict[int | None, list[Any]] = {}
    previous: dict[int | None, list[Any]] = {}
    # The charts need a few columns: only those are added up by week and month.
    weekly_columns = [FACT_COLUMNS.index(c) for c in ("revenue_won", "deals_won", "deals_lost")]
    monthly_columns = [
        FACT_COLUMNS.index(c)
        for c in (
            "csat_satisfied",
            "csat_answered",
            "nps_promoters",
            "nps_detractors",
            "nps_answered",
        )
    ]
    weeks: dict[date, list[Any]] = {}
    months: dict[date, list[Any]] = {}
    issued: dict[tuple[int, int | None, date], Decimal] = {}
    money = FACT_COLUMNS.index("estimate_value_issued")
    for is_current, rep, line_id, week_day, month_day, *values in rows:
        if not is_current:
            _sum_into(_row_for(previous, rep), values)
            continue
        _sum_into(_row_for(by_rep, rep), values)
        if chart_rep is not None and rep != chart_rep:
            continue
        week = _row_for(weeks, week_day)
        for index in weekly_columns:
            week[index] += values[index]
        month = _row_for(months, month_day)
        for index in monthly_columns:
            month[index] += values[index]
        if rep is not None and values[money]:
            key = (rep, line_id, month_day)
            issued[key] = issued.get(key, ZERO) + values[money]
    result = PeriodFacts(
        by_rep={rep: _as_totals(values) for rep, values in by_rep.items()},
        weekly=[],
        monthly=[],
        issued={key: value for key, value in issued.items() if value},
        previous_by_rep={rep: _as_totals(values) for rep, values in previous.items()},
    )
    for week_day in sorted(weeks):
        totals = _as_totals(weeks[week_day])
        won, lost = totals["deals_won"], totals["deals_lost"]
        result.weekly.append(
            {
                "week": week_day.isoformat(),
                "revenue": str(totals["revenue_won"]),
                "win_rate": _percent(ratio(won, won + lost)),
            }
        )
    for month_day in sorted(months):
        totals = _as_totals(months[month_day])
        result.monthly.append(
            {
                "month": month_day.isoformat()[:7],
                "csat": _percent(ratio(totals["csat_satisfied"], totals["csat_answered"])),
                "nps": _percent(
                    ratio(
                        totals["nps_promoters"] - totals["nps_detractors"],
                        totals["nps_answered"],
                    )
                ),
            }
        )
    return result


def _percent(share: Decimal | None) -> float | None:
    # Chart data only (json_script): a float is what Chart.js draws; money stays a string.
    return round(float(share * 100), 1) if share is not None else None


# --- What is not additive: from the raw won deals ---------------------------------------


def raw_deal_figures(
    *, rep_ids: RepIds, start: date, end: date, previous_start: date
) -> dict[str, Any]:
    """The median sales cycle, customers won and repeat customers of [start, end] and
    of the days before it, [previous_start, start - 1], in ONE query.

    Same definitions as ``goals.selectors.raw_deal_kpis`` (the keys of the previous
    range carry a ``previous_`` prefix), but "had a won deal before the range" is an
    EXISTS per deal on the (customer, status, close date) index instead of a hash of
    every customer who ever bought: on 150,000 deals that hash was 80 % of the query.
    The lead's creation time is a primary-key lookup per won deal rather than a
    join: for the whole company the planner chose to hash all million leads for a
    join (1.4 s). Each lookup sits inside the FILTER of the range it counts for, so
    a deal pays only its own range's lookups.

    Written in SQL: the ORM built this query (two subqueries, two EXISTS, six
    filtered aggregates) in about as long as PostgreSQL took to run it for a team.
    """
    days = (
        "GREATEST(0, d.close_date - ((SELECT l.created_at FROM leads_lead l "
        "WHERE l.id = d.lead_id) AT TIME ZONE %(zone)s)::date)"
    )

    def before(day: str) -> str:
        return (
            "EXISTS (SELECT 1 FROM leads_deal e WHERE e.customer_id = d.customer_id "  # noqa: S608
            f"AND e.status = %(won)s AND e.close_date < %({day})s)"
        )

    current, previous = "d.close_date >= %(start)s", "d.close_date < %(start)s"
    owners = " AND d.owner_id = ANY(%(reps)s)" if rep_ids is not None else ""
    sql = (
        "SELECT "  # noqa: S608
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {days}) "
        f"FILTER (WHERE {current} AND d.lead_id IS NOT NULL), "
        f"COUNT(DISTINCT d.customer_id) FILTER (WHERE {current}), "
        f"COUNT(DISTINCT d.customer_id) FILTER (WHERE {current} AND {before('start')}), "
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {days}) "
        f"FILTER (WHERE {previous} AND d.lead_id IS NOT NULL), "
        f"COUNT(DISTINCT d.customer_id) FILTER (WHERE {previous}), "
        f"COUNT(DISTINCT d.customer_id) FILTER (WHERE {previous} AND {before('previous_start')}) "
        "FROM leads_deal d WHERE d.status = %(won)s "
        f"AND d.close_date >= %(previous_start)s AND d.close_date <= %(end)s{owners}"
    )
    params = {
        "zone": settings.TIME_ZONE,
        "won": DealStatus.WON.value,
        "start": start,
        "previous_start": previous_start,
        "end": end,
        "reps": list(rep_ids) if rep_ids is not None else None,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    keys = ("cycle_median", "customers", "repeat")
    return dict(zip([*keys, *(f"previous_{key}" for key in keys)], row, strict=True))


# --- Goals -----------------------------------------------------------------------------


REVISIONS_ATTR = "dashboard_revisions"


def rep_goals(*, rep_ids: RepIds, start: date, end: date, revisions: bool = True) -> list[Goal]:
    """Rep goals overlapping [start, end], with their revisions (two queries) or without (one).

    The revisions are a list in the goal's ``REVISIONS_ATTR`` attribute (``goal_progress``
    reads it), not ``goal.revisions.all()``.
    """
    goals = Goal.objects.filter(owner_kind=OwnerKind.REP, start__lte=end, end__gte=start)
    if rep_ids is not None:
        goals = goals.filter(rep__in=rep_ids)
    goals = goals.select_related("product_line", "territory")
    if revisions:
        # A plain list per goal (``to_attr``): a related manager's queryset per goal,
        # which ``prefetch_related("revisions")`` builds, was most of this read's time.
        goals = goals.prefetch_related(Prefetch("revisions", to_attr=REVISIONS_ATTR))
    return list(goals.order_by("rep_id", "metric", "start", "pk"))


def goal_fact_totals(goals: Sequence[Goal], through: date) -> dict[int, dict[str, Any]]:
    """{goal id: summed facts of its rep, period (up to ``through``), product line and
    territory}, in ONE query for any number of goals.

    The facts are summed once per goal window (the distinct goal periods: usually a
    month, maybe a quarter and a year; a UNION ALL of one grouped SELECT each, with
    literal bounds so the planner estimates them right) by rep, product line and
    territory; each goal then adds up, here, the few groups matching its narrowing.
    Joining every goal to the raw facts read a rep's rows once per goal, and a join
    on the windows in SQL was estimated at a million rows (and JIT-compiled: 4 s).
    """
    windows = sorted({(goal.start, min(goal.end, through)) for goal in goals})
    windows = [(first, last) for first, last in windows if first <= last]
    found: dict[tuple[date, date], dict[int, list[tuple[Any, ...]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    if windows:
        sums = ", ".join(f'SUM("{column}")' for column in FACT_COLUMNS)
        select = (
            "SELECT %s::date, %s::date, rep_id, product_line_id, territory_id, "  # noqa: S608
            f"{sums} FROM {DailyRepFact._meta.db_table} "
            "WHERE day >= %s AND day <= %s AND rep_id = ANY(%s) "
            "GROUP BY rep_id, product_line_id, territory_id"
        )
        sql = " UNION ALL ".join([select] * len(windows))
        params: list[Any] = []
        for first, last in windows:
            reps = sorted(
                {g.rep_id for g in goals if (g.start, min(g.end, through)) == (first, last)}
            )
            params += [first, last, first, last, reps]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for first, last, rep, line, territory, *values in cursor.fetchall():
                found[(first, last)][rep].append((line, territory, values))
    result = {}
    for goal in goals:
        totals = zero_totals()
        window = (goal.start, min(goal.end, through))
        for line, territory, values in found.get(window, {}).get(goal.rep_id, []):
            if goal.product_line_id is not None and line != goal.product_line_id:
                continue
            if goal.territory_id is not None and territory != goal.territory_id:
                continue
            for column, value in zip(FACT_COLUMNS, values, strict=True):
                if value is not None:
                    totals[column] += value
        result[goal.pk] = totals
    return result


# Ratio metrics: the score so far is compared with the target as it is; pace and
# "needed per day" (which assume an amount that grows day by day) do not apply.
RATIO_METRICS = (Metric.CSAT, Metric.NPS)


def working_days(start: date, end: date) -> int:
    """Working days (Mon-Fri, not COMPANY_HOLIDAYS) in [start, end]."""
    count, day = 0, start
    while day <= end:
        count += is_working_day(day)
        day += timedelta(days=1)
    return count


def pace_status(value: Decimal | None) -> str:
    """``goals.selectors.pace_status`` of the pace, "" without one."""
    return "" if value is None else selectors_pace_status(value)


STATUS_LABELS = {"on_track": _("On track"), "at_risk": _("At risk"), "behind": _("Behind")}


@dataclass(frozen=True)
class GoalProgress:
    goal: Goal
    target: Decimal
    actual: Decimal | None
    attainment: Decimal | None
    pace: Decimal | None
    status: str
    needed_per_day: Decimal | None  # per remaining working day; None when not applicable
    remaining_days: int | None

    @property
    def colour(self) -> str:
        return STATUS_COLOURS.get(self.status, "secondary")

    @property
    def attainment_percent(self) -> Decimal | None:
        return percent(self.attainment)

    @property
    def pace_percent(self) -> Decimal | None:
        return percent(self.pace)

    @property
    def status_label(self) -> Any:
        return STATUS_LABELS.get(self.status, "")


def goal_progress(goal: Goal, totals: dict[str, Any], today: date) -> GoalProgress:
    """Attainment, pace and what is still needed per working day, facts up to yesterday.

    The target is the one in force today (or on the goal's last day once it is
    over). "Needed per remaining working day" spreads what is missing over the
    working days from today to the goal's end (today still counts: its sales
    are not in the facts yet).
    """
    through = min(goal.end, today - timedelta(days=1))
    revisions = getattr(goal, REVISIONS_ATTR, None)  # loaded by ``rep_goals``
    if revisions is None:
        revisions = goal.revisions.all()
    target = goal_target_on(goal, min(max(today, goal.start), goal.end), revisions)
    actual = goal_actual(goal, totals)
    attainment_value = ratio(actual, target)
    needed = remaining = None
    if goal.metric in RATIO_METRICS:
        pace_value = None
        status = "" if actual is None else ("on_track" if actual >= target else "behind")
    else:
        pace_value = pace(actual, target, goal.start, goal.end, through)
        status = pace_status(pace_value)
        if today <= goal.end:
            remaining = working_days(max(today, goal.start), goal.end)
            missing = max(ZERO, target - (actual or ZERO))
            if remaining:
                needed = (missing / remaining).quantize(Decimal("0.01"))
            elif missing == 0:
                needed = ZERO
    return GoalProgress(
        goal=goal,
        target=target,
        actual=actual,
        attainment=attainment_value,
        pace=pace_value,
        status=status,
        needed_per_day=needed,
        remaining_days=remaining,
    )


def goals_progress(goals: Sequence[Goal], today: date) -> dict[int, list[GoalProgress]]:
    """{rep id: [progress of each goal]}; the facts of every goal in one query."""
    totals = goal_fact_totals(goals, today - timedelta(days=1))
    by_rep: dict[int, list[GoalProgress]] = defaultdict(list)
    for goal in goals:
        by_rep[goal.rep_id].append(goal_progress(goal, totals[goal.pk], today))
    return dict(by_rep)


# --- Revenue quota and estimate coverage -----------------------------------------------


def _prorated(goal: Goal, start: date, end: date) -> Decimal:
    """The goal's target for the part of its period inside [start, end] (by days)."""
    overlap = (min(goal.end, end) - max(goal.start, start)).days + 1
    if overlap <= 0:
        return ZERO
    return goal.target * overlap / ((goal.end - goal.start).days + 1)


def _revenue_goals(goals: Iterable[Goal]) -> list[Goal]:
    # Territory-narrowed goals are left out: they overlap the rep's other revenue
    # goals (a territory cuts across product lines), and adding them would count
    # the same quota twice.
    return [g for g in goals if g.metric == Metric.REVENUE_WON and g.territory_id is None]


def rep_quota(
    goals: Iterable[Goal], start: date, end: date, line_ids: Sequence[int], line: int | None = None
) -> Decimal | None:
    """A rep's revenue quota for [start, end], on one product line or (``line=None``) in all.

    Chosen rule (DESIGN.md leaves it open): the rep's revenue goals narrowed to
    that product line, prorated by days to the range; a rep with none on that line
    has their unnarrowed revenue goal split evenly over the active product lines.
    For all lines: the unnarrowed goals, else the sum of the narrowed ones.
    None when the rep has no revenue goal that applies.
    """
    revenue = _revenue_goals(goals)
    unnarrowed = [g for g in revenue if g.product_line_id is None]
    if line is None:
        chosen = unnarrowed or [g for g in revenue if g.product_line_id is not None]
        if not chosen:
            return None
        return sum((_prorated(g, start, end) for g in chosen), ZERO)
    on_line = [g for g in revenue if g.product_line_id == line]
    if on_line:
        return sum((_prorated(g, start, end) for g in on_line), ZERO)
    if unnarrowed and line_ids:
        return sum((_prorated(g, start, end) for g in unnarrowed), ZERO) / len(line_ids)
    return None


def scope_quota(goals_by_rep: dict[int, list[Goal]], start: date, end: date) -> Decimal | None:
    """The revenue quota of a scope: the sum of its reps' quotas (None if nobody has one)."""
    quotas = [rep_quota(goals, start, end, ()) for goals in goals_by_rep.values()]
    known = [quota for quota in quotas if quota is not None]
    return sum(known, ZERO) if known else None


@dataclass
class CoverageCell:
    issued: Decimal
    quota: Decimal | None
    coverage: Decimal | None

    @property
    def below_standard(self) -> bool:
        """Flagged red: below the standard, or estimates issued without any quota to cover."""
        return self.coverage is None or self.coverage < settings.ESTIMATE_COVERAGE_STANDARD


@dataclass
class CoverageRow:
    label: str  # a rep's name, or a team's on the company dashboard
    cells: list[CoverageCell] = field(default_factory=list)


@dataclass
class CoverageMonth:
    start: date
    end: date
    rows: list[CoverageRow] = field(default_factory=list)


def coverage_table(
    *,
    groups: Sequence[tuple[str, Sequence[User]]],
    lines: Sequence[Any],
    goals_by_rep: dict[int, list[Goal]],
    issued: dict[tuple[int, int | None, date], Decimal],
    months: Sequence[tuple[date, date]],
) -> list[CoverageMonth]:
    """Estimate coverage per month, row and product line: value issued ÷ quota (pure).

    A row is one rep (team and rep dashboards) or a team (the company's: the sum
    of its reps' estimates ÷ the sum of their quotas). A cell without any quota
    on that line shows no ratio.
    """
    line_ids = [line.pk for line in lines]
    table = []
    for first, last in months:
        month = CoverageMonth(first, last)
        for label, members in groups:
            row = CoverageRow(label)
            for line_id in line_ids:
                value, quotas = ZERO, []
                for rep in members:
                    value += issued.get((rep.pk, line_id, first.replace(day=1)), ZERO)
                    quota = rep_quota(goals_by_rep.get(rep.pk, []), first, last, line_ids, line_id)
                    if quota is not None:
                        quotas.append(quota)
                total_quota = sum(quotas, ZERO) if quotas else None
                row.cells.append(CoverageCell(value, total_quota, ratio(value, total_quota)))
            month.rows.append(row)
        table.append(month)
    return table


# --- Ranking (shared with the leaderboards) ---------------------------------------------


def competition_ranks(values: Sequence[Any]) -> list[int]:
    """Ranks of values already sorted best first: ties share a rank (1, 2, 2, 4)."""
    ranks: list[int] = []
    for index, value in enumerate(values):
        if index and value == values[index - 1]:
            ranks.append(ranks[-1])
        else:
            ranks.append(index + 1)
    return ranks


def goals_by_rep(goals: Iterable[Goal]) -> dict[int, list[Goal]]:
    grouped: dict[int, list[Goal]] = defaultdict(list)
    for goal in goals:
        grouped[goal.rep_id].append(goal)
    return dict(grouped)


def team_members(team_id: int) -> QuerySet[User]:
    """A team's people, in display order (any role: a selling manager counts too)."""
    return User.objects.filter(team=team_id).order_by("display_name", "pk")


def company_people(rep_ids_with_facts: Iterable[int | None]) -> QuerySet[User]:
    """Everyone who belongs on a company dashboard: the reps, and whoever has facts."""
    ids = [pk for pk in rep_ids_with_facts if pk is not None]
    return (
        User.objects.filter(Q(role="rep", is_active=True) | Q(pk__in=ids))
        .select_related("team")
        .order_by("team__name", "display_name", "pk")
    )
