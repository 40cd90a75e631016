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
from itertools import pairwise
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import (
    Prefetch,
    Q,
    QuerySet,
)
from django.template.defaultfilters import floatformat
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from feedback.conf import holidays as company_holidays
from goals.kpis import FACT_COLUMNS, MONEY_COLUMNS, WEEKLY_FACTS
from goals.models import DailyRepFact, Goal, Metric, OwnerKind
from goals.selectors import (
    STATUS_COLOURS,
    Kpis,
    goal_actual,
    goal_target_on,
    kpis_from_totals,
    metric_columns,
    pace,
    ratio,
    raw_deal_kpis,
)
from goals.selectors import pace_status as selectors_pace_status
from goals.services import period_bounds

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


def facts_by_rep(
    *,
    rep_ids: RepIds,
    start: date,
    end: date,
    columns: Sequence[str] = FACT_COLUMNS,
) -> dict[int | None, dict[str, Any]]:
    """{rep id: summed fact columns} over [start, end], ONE query (GROUP BY rep).

    Read like ``period_facts``: the weekly sums where whole segments fit, the daily
    facts at the edges. ``columns`` narrows the sums to what the caller needs (the
    others stay 0); rows where they are all 0 are skipped (a leaderboard of revenue
    sums the quarter of the rows that hold any). With ``rep_ids=None`` (the
    company) the key ``None`` holds the leads nobody owns yet (marketing's pool).
    Reps without facts are absent.
    """
    where = _Where()
    parts = []
    for alias, table, condition in where.sources(start, end, rep_ids):
        listed = ", ".join(f'{alias}."{column}"' for column in columns)
        if set(columns) != set(FACT_COLUMNS):
            condition += " AND (" + " OR ".join(f'{alias}."{c}" <> 0' for c in columns) + ")"
        parts.append(f"SELECT {alias}.rep_id, {listed} FROM {table} {alias} WHERE {condition}")  # noqa: S608
    if not parts:
        return {}
    sums = ", ".join(f'SUM("{column}")' for column in columns)
    sql = f"SELECT rep_id, {sums} FROM ({' UNION ALL '.join(parts)}) AS u GROUP BY rep_id"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, where.params)
        rows = cursor.fetchall()
    result = {}
    for rep, *values in rows:
        totals = zero_totals()
        totals.update(zip(columns, values, strict=True))
        result[rep] = totals
    return result


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
    raw = raw_deal_kpis(
        reps=rep_ids, start=period.start, end=period.facts_end, previous_start=previous_start
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


def weekly_span(start: date, end: date) -> tuple[date, date] | None:
    """The whole week-in-month segments inside [start, end], as (first day, last day).

    The weekly sums (``goals_weeklyrepfact``) hold one row per rep, product line and
    segment: the days of one ISO week that fall in one month, so a segment starts
    on a Monday or on the 1st. Days of [start, end] outside the span (at most six
    at each end) are read from the daily facts. None when no whole segment fits.
    """

    def boundary(day: date) -> bool:
        return day.weekday() == 0 or day.day == 1

    first = start
    while not boundary(first) and first <= end:
        first += timedelta(days=1)
    after = end + timedelta(days=1)
    while not boundary(after) and after > first:
        after -= timedelta(days=1)
    if after <= first:
        return None
    return first, after - timedelta(days=1)


def _daily_ranges(
    start: date, end: date, span: tuple[date, date] | None
) -> list[tuple[date, date]]:
    """The days of [start, end] that the weekly span leaves to the daily facts."""
    if span is None:
        return [(start, end)] if start <= end else []
    ranges = []
    if start < span[0]:
        ranges.append((start, span[0] - timedelta(days=1)))
    if span[1] < end:
        ranges.append((span[1] + timedelta(days=1), end))
    return ranges


class _Where:
    """WHERE clauses over the weekly sums (alias ``w``) and the daily facts (``f``);
    ``params`` collects their parameters in order."""

    def __init__(self) -> None:
        self.params: list[Any] = []

    def reps(self, alias: str, ids: RepIds) -> str:
        if ids is None:
            return ""
        self.params.append(list(ids))
        return f" AND {alias}.rep_id = ANY(%s)"

    def in_span(self, span: tuple[date, date], ids: RepIds) -> str:
        """The weekly rows of the segments in ``span`` (see ``weekly_span``)."""
        # A segment's first day is the later of its week's Monday and its month's 1st.
        self.params.extend([span[0] - timedelta(days=6), span[1], span[0], span[1]])
        return (
            "w.week >= %s AND w.week <= %s AND GREATEST(w.week, w.month) BETWEEN %s AND %s"
            + self.reps("w", ids)
        )

    def on_days(self, ranges: list[tuple[date, date]], ids: RepIds) -> str:
        """The daily rows of these day ranges."""
        days = " OR ".join(["f.day BETWEEN %s AND %s"] * len(ranges))
        self.params.extend(day for pair in ranges for day in pair)
        return f"({days})" + self.reps("f", ids)

    def sources(
        self, start: date, end: date, ids: RepIds, weekly: bool = True
    ) -> list[tuple[str, str, str]]:
        """(alias, table, condition) of the rows covering [start, end]: the weekly sums of
        its whole segments, the daily facts of its edges; as many as there are parts.
        Only the daily facts when not ``weekly`` (the weekly sums have no territory)."""
        span = weekly_span(start, end) if weekly else None
        edges = _daily_ranges(start, end, span)
        found = []
        if span is not None:
            found.append(("w", WEEKLY_FACTS, self.in_span(span, ids)))
        if edges:
            found.append(("f", DailyRepFact._meta.db_table, self.on_days(edges, ids)))
        return found


# What the charts and the coverage read at the fine grain (rep, line, week, month).
FINE_COLUMNS = (
    "revenue_won",
    "deals_won",
    "deals_lost",
    "csat_satisfied",
    "csat_answered",
    "nps_promoters",
    "nps_detractors",
    "nps_answered",
    "estimate_value_issued",
)
TOTALS, FINE, PREVIOUS = 0, 1, 2  # the kinds of row of ``_period_facts_sql``


def _period_facts_sql(
    rep_ids: RepIds, start: date, end: date, previous_start: date | None, chart_rep: int | None
) -> tuple[str, list[Any]]:
    """The query of ``period_facts``: rows of (kind, rep, line, week, month, sums...).

    Kinds: ``TOTALS`` (the range's sums of a rep, all columns), ``FINE`` (a rep's
    product line, week and month, only ``FINE_COLUMNS``, NULL elsewhere: the charts
    and the coverage; the charted rep only when there is one) and ``PREVIOUS`` (the
    previous range's sums of a rep). Each kind is read from the weekly sums of the
    whole segments inside its range and from the daily facts of the days at its
    edges, one UNION ALL branch each: a rep may have a row of each source, added up
    by the caller. A team's year reads ~4,400 weekly rows instead of ~55,000 daily
    ones, and the thirty columns are summed in SQL, not in Python.
    """
    week = "date_trunc('week', f.day::timestamp)::date"
    month = "date_trunc('month', f.day::timestamp)::date"
    daily, weekly = DailyRepFact._meta.db_table, WEEKLY_FACTS
    branches: list[str] = []
    where = _Where()

    def totals(kind: int, first: date, last: date, reps: RepIds) -> None:
        for alias, table, condition in where.sources(first, last, reps):
            sums = ", ".join(f'SUM({alias}."{column}")' for column in FACT_COLUMNS)
            branches.append(
                f"SELECT {kind}, {alias}.rep_id, NULL::bigint, NULL::date, NULL::date, {sums} "  # noqa: S608
                f"FROM {table} {alias} WHERE {condition} GROUP BY {alias}.rep_id"
            )

    def fine(alias: str) -> str:
        # NULL typed as the column's sum: UNION ALL resolves types branch by branch.
        value = 'w."{}"' if alias == "w" else 'SUM(f."{}")'
        return ", ".join(
            value.format(column)
            if column in FINE_COLUMNS
            else ("NULL::numeric" if column in MONEY_COLUMNS else "NULL::bigint")
            for column in FACT_COLUMNS
        )

    totals(TOTALS, start, end, rep_ids)
    fine_reps = [chart_rep] if chart_rep is not None else rep_ids
    span = weekly_span(start, end)
    if span is not None:
        condition = where.in_span(span, fine_reps)
        branches.append(
            f"SELECT {FINE}, w.rep_id, w.product_line_id, w.week, w.month, {fine('w')} "  # noqa: S608
            f"FROM {weekly} w WHERE {condition}"
        )
    edges = _daily_ranges(start, end, span)
    if edges:
        condition = where.on_days(edges, fine_reps)
        branches.append(
            f"SELECT {FINE}, f.rep_id, f.product_line_id, {week}, {month}, {fine('f')} "  # noqa: S608
            f"FROM {daily} f WHERE {condition} "
            f"GROUP BY f.rep_id, f.product_line_id, {week}, {month}"
        )
    if previous_start is not None and previous_start < start:
        # The previous range of the charted rep only, when there is one (the rep
        # dashboard compares the rep, not their team, with the period before).
        totals(PREVIOUS, previous_start, start - timedelta(days=1), fine_reps)
    return " UNION ALL ".join(branches), where.params


def period_facts(
    *,
    rep_ids: RepIds,
    start: date,
    end: date,
    previous_start: date | None = None,
    chart_rep: int | None = None,
) -> PeriodFacts:
    """Facts of [start, end] (and of [previous_start, start - 1]) in ONE query.

    Read from the weekly sums where whole segments fit and from the daily facts at
    the edges (``_period_facts_sql``): each rep's totals of the range and of the
    previous one come summed from SQL (a row per source, added up here), and the
    rows at the finest grain the page needs (rep, product line, ISO week and month)
    give the weekly revenue and win rate, the monthly CSAT and NPS and the
    estimate value per rep, product line and month. GROUPING SETS over the raw
    facts summed all thirty columns four times in SQL (and sorted every row),
    twice the time.

    Weeks are ISO weeks (Monday first); a week or month cut by the range counts
    only its days inside it. With ``rep_ids=None`` the rep ``None`` (leads nobody
    owns yet) is one of the per-rep keys. ``chart_rep`` narrows the charts, the
    estimates issued and the previous range to one rep (the rep dashboard reads its
    team's totals in the same scan).
    """
    sql, params = _period_facts_sql(rep_ids, start, end, previous_start, chart_rep)
    rows: list[tuple[Any, ...]] = []
    if sql:  # nothing to read before a period's first day
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    by_rep: dict[int | None, list[Any]] = {}
    previous: dict[int | None, list[Any]] = {}
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
    for kind, rep, line_id, week_day, month_day, *values in rows:
        if kind == TOTALS:
            _sum_into(_row_for(by_rep, rep), values)
            continue
        if kind == PREVIOUS:
            _sum_into(_row_for(previous, rep), values)
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


def _segments(windows: Iterable[tuple[date, date]]) -> list[tuple[date, date]]:
    """The windows cut at every window's edges: disjoint day ranges, each inside one
    window or more, covering every window exactly (a quarter and the month inside it
    give the quarter's other months and that month)."""
    windows = list(windows)
    cuts = sorted(
        {first for first, _last in windows} | {last + timedelta(1) for _f, last in windows}
    )
    return [
        (first, following - timedelta(1))
        for first, following in pairwise(cuts)
        if any(
            w_first <= first and following - timedelta(1) <= w_last for w_first, w_last in windows
        )
    ]


def goal_fact_totals(goals: Sequence[Goal], through: date) -> dict[int, dict[str, Any]]:
    """{goal id: summed facts of its rep, period (up to ``through``), product line and
    territory}, in ONE query for any number of goals.

    The goal periods (usually a month, maybe a quarter and a year) are cut into
    disjoint day segments, so a day of facts is read once however many goals
    cover it. Each segment is grouped (rep, product line, territory) in a UNION
    ALL, over the reps whose goals cover it, with literal bounds so the planner
    estimates it right, summing only the columns the goals' metrics read (the
    others stay 0): from the weekly sums where whole weeks fit and no goal covering
    it is narrowed to a territory (they have none), else from the daily facts. Each
    goal then adds up, here, the groups of its segments that match its narrowing.
    Joining every goal to the raw facts read a rep's rows once per goal, and a join
    on the windows in SQL was estimated at a million rows (and JIT-compiled: 4 s).
    """
    window_of = {goal.pk: (goal.start, min(goal.end, through)) for goal in goals}
    segments = _segments(w for w in window_of.values() if w[0] <= w[1])
    columns = sorted({column for goal in goals for column in metric_columns(goal)})
    found: dict[tuple[date, date], dict[int, list[tuple[Any, ...]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    if segments and columns:
        where = _Where()
        selects = []
        for first, last in segments:
            covering = [
                goal
                for goal in goals
                if window_of[goal.pk][0] <= first and last <= window_of[goal.pk][1]
            ]
            reps = sorted({goal.rep_id for goal in covering})
            # The weekly sums have no territory: only segments no territory goal covers.
            weekly = all(goal.territory_id is None for goal in covering)
            for alias, table, condition in where.sources(first, last, reps, weekly):
                territory = "NULL::bigint" if alias == "w" else "f.territory_id"
                sums = ", ".join(f'SUM({alias}."{column}")' for column in columns)
                # The segment's days as literals (dates, never user text): its
                # condition's parameters are already in ``where.params``.
                selects.append(
                    f"SELECT DATE '{first.isoformat()}', DATE '{last.isoformat()}', "  # noqa: S608
                    f"{alias}.rep_id, {alias}.product_line_id, {territory}, {sums} "
                    f"FROM {table} {alias} WHERE {condition} "
                    f"GROUP BY {alias}.rep_id, {alias}.product_line_id"
                    + (", f.territory_id" if alias == "f" else "")
                )
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(selects), where.params)
            for first, last, rep, line, territory, *values in cursor.fetchall():
                found[(first, last)][rep].append((line, territory, values))
    result = {}
    for goal in goals:
        totals = zero_totals()
        goal_first, goal_last = window_of[goal.pk]
        for first, last in segments:
            if not goal_first <= first <= last <= goal_last:
                continue
            for line, territory, values in found[(first, last)].get(goal.rep_id, []):
                if goal.product_line_id is not None and line != goal.product_line_id:
                    continue
                if goal.territory_id is not None and territory != goal.territory_id:
                    continue
                for column, value in zip(columns, values, strict=True):
                    totals[column] += value
        result[goal.pk] = totals
    return result


# Ratio metrics: the score so far is compared with the target as it is; pace and
# "needed per day" (which assume an amount that grows day by day) do not apply.
RATIO_METRICS = (Metric.CSAT, Metric.NPS)


def working_days(start: date, end: date) -> int:
    """Working days (Mon-Fri, not COMPANY_HOLIDAYS) in [start, end] (0 if end < start).

    Counted by whole weeks, not day by day: a team page asks for every goal.
    """
    if end < start:
        return 0
    weeks, rest = divmod((end - start).days + 1, 7)
    weekdays = weeks * 5 + sum((start.weekday() + offset) % 7 < 5 for offset in range(rest))
    holidays = sum(start <= day <= end and day.weekday() < 5 for day in company_holidays())
    return weekdays - holidays


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
    # Each rep's revenue goals once, then per month only those overlapping it: a
    # year has twelve months of goals, and rep_quota runs per month, rep and line.
    revenue = {rep_id: _revenue_goals(goals) for rep_id, goals in goals_by_rep.items()}
    table = []
    for first, last in months:
        month = CoverageMonth(first, last)
        in_month = {
            rep_id: [goal for goal in goals if goal.start <= last and goal.end >= first]
            for rep_id, goals in revenue.items()
        }
        for label, members in groups:
            row = CoverageRow(label)
            for line_id in line_ids:
                value, quotas = ZERO, []
                for rep in members:
                    value += issued.get((rep.pk, line_id, first.replace(day=1)), ZERO)
                    quota = rep_quota(in_month.get(rep.pk, []), first, last, line_ids, line_id)
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
