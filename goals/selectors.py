"""Reads of goals and KPIs.

KPIs come from the daily facts (``DailyRepFact``) by SUM, so a period and a
rollup (rep, team, company, product line, territory) cost one query whatever
their size. What is not additive — the median sales cycle and the repeat
business rate — is read from the raw deals of the range, in one more query.

The caller passes the reps it may show (from ``accounts.access``, e.g.
``users_for_user(user=...)`` narrowed to a team): these selectors do not scope
by themselves. Every ratio whose denominator is zero is ``None``, never an
exception.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import (
    Aggregate,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import TruncDate

from accounts.access import get_or_404, managed_team_and_member_ids
from accounts.models import ProductLine, Role, Territory, User
from goals.kpis import ACTIVITY_COLUMNS, FACT_COLUMNS, MONEY_COLUMNS
from goals.models import DailyRepFact, Goal, GoalRevision, Metric, OwnerKind
from leads.models import ActivityKind, DealStatus

Number = Decimal | int
RepScope = QuerySet[User] | Iterable[int]


def ratio(numerator: Number | None, denominator: Number | None) -> Decimal | None:
    """numerator ÷ denominator as a Decimal; None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return Decimal(numerator) / Decimal(denominator)


def attainment(actual: Number | None, target: Number | None) -> Decimal | None:
    """Quota attainment: actual ÷ target of the goal (1 = met). None without a target."""
    return ratio(actual, target)


def elapsed_share(start: date, end: date, today: date) -> Decimal:
    """The share of the period [start, end] elapsed by the end of ``today`` (0 to 1)."""
    total = (end - start).days + 1
    elapsed = (min(today, end) - start).days + 1
    return Decimal(max(0, min(elapsed, total))) / Decimal(total)


def pace(
    actual: Number | None, target: Number | None, start: date, end: date, today: date
) -> Decimal | None:
    """actual / (target * elapsed share of the period); 1 or more is on track.

    ``today`` is the last day included in ``actual`` (yesterday when ``actual``
    comes from the nightly facts). None before the period starts or without a target.
    """
    if target is None:
        return None
    return ratio(actual, Decimal(target) * elapsed_share(start, end, today))


@dataclass(frozen=True)
class Kpis:
    """Every KPI of DESIGN.md for one scope and date range. Ratios are Decimals
    (shares 0..1 except CSAT 0..100 and NPS -100..100); None where undefined."""

    start: date
    end: date
    # Deals closed in range.
    sales_volume: Decimal
    deals_won: int
    deals_lost: int
    average_ticket: Decimal | None
    win_rate: Decimal | None
    # Leads.
    leads_created: int
    leads_decided: int
    leads_decided_won: int
    lead_conversion_rate: Decimal | None
    funnel_mql_share: Decimal | None
    funnel_sql_share: Decimal | None
    funnel_won_share: Decimal | None
    leads_reached_mql: int
    leads_reached_sql: int
    # Sales cycle (days from lead created to deal won, won deals in range with a lead).
    sales_cycle_mean_days: Decimal | None
    sales_cycle_median_days: Decimal | None
    # Repeat business (from the raw deals).
    customers_won: int
    repeat_customers: int
    repeat_business_rate: Decimal | None
    # Estimates issued in range.
    estimates_issued: int
    estimate_value_issued: Decimal
    revenue_quota: Decimal | None
    estimate_coverage: Decimal | None
    # Customer satisfaction.
    csat_answered: int
    csat: Decimal | None
    nps_answered: int
    nps: Decimal | None
    surveys_sent: int
    surveys_answered: int
    survey_response_rate: Decimal | None
    # Activities by kind (every ActivityKind value), and their total.
    activities: dict[str, int] = field(default_factory=dict)

    @property
    def activities_total(self) -> int:
        return sum(self.activities.values())


def _rep_filter(reps: RepScope, include_unassigned: bool, prefix: str) -> Q:
    if isinstance(reps, QuerySet):
        condition = Q(**{f"{prefix}__in": reps.values("pk")})
    else:
        condition = Q(**{f"{prefix}__in": list(reps)})
    if include_unassigned:
        condition |= Q(**{f"{prefix}__isnull": True})
    return condition


def _pk(value: Any) -> int | None:
    return getattr(value, "pk", value)


def fact_totals(
    *,
    reps: RepScope,
    start: date,
    end: date,
    product_line: ProductLine | int | None = None,
    territory: Territory | int | None = None,
    include_unassigned: bool = False,
) -> dict[str, Any]:
    """The SUM of every fact column over the scope and range (one query); zeros when empty."""
    facts = DailyRepFact.objects.filter(
        _rep_filter(reps, include_unassigned, "rep"), day__gte=start, day__lte=end
    )
    if product_line is not None:
        facts = facts.filter(product_line=_pk(product_line))
    if territory is not None:
        facts = facts.filter(territory=_pk(territory))
    totals = facts.aggregate(**{column: Sum(column) for column in FACT_COLUMNS})
    zero = {column: Decimal(0) if column in MONEY_COLUMNS else 0 for column in FACT_COLUMNS}
    return {column: zero[column] if value is None else value for column, value in totals.items()}


class Median(Aggregate):
    function = "percentile_cont"
    name = "median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def cycle_days() -> Func:
    """Days from the lead's creation (company day) to the deal's close date, at least 0.

    Read from the deal's copy of the lead's creation time (no join); only for deals
    whose ``lead`` is set (filter ``lead__isnull=False``), as the facts count them.
    """
    lead_day = TruncDate("lead_created_at", tzinfo=ZoneInfo(settings.TIME_ZONE))
    return Func(
        F("close_date"),
        lead_day,
        template="GREATEST(0, %(expressions)s)",
        arg_joiner=" - ",
        output_field=IntegerField(),
    )


def _owner_condition(reps: RepScope | None) -> tuple[str, list[Any]]:
    """`` AND d.owner_id …`` for the reps (a queryset, as a subquery, or ids); "" for None."""
    if reps is None:
        return "", []
    if isinstance(reps, QuerySet):
        sql, params = reps.values("pk").query.sql_with_params()
        return f" AND d.owner_id IN ({sql})", list(params)
    return " AND d.owner_id = ANY(%s)", [list(reps)]


def raw_deal_kpis(
    *,
    reps: RepScope | None,
    start: date,
    end: date,
    product_line: ProductLine | int | None = None,
    territory: Territory | int | None = None,
    previous_start: date | None = None,
) -> dict[str, Any]:
    """What is not additive, from the raw won deals of the range (one query).

    - ``cycle_median``: median days from lead created to deal won (deals with a lead);
    - ``customers``: customers with a won deal in range (in the scope);
    - ``repeat``: of those, the ones who had a won deal before the range — with
      anyone, on any product line: they came back to the company. This cannot be
      a daily fact: whether a customer is "new" depends on the range's start,
      and distinct customers do not add up over days.

    ``reps`` None is the whole company. With ``previous_start``, the same three for
    [previous_start, start - 1] too, in the same query, under ``previous_`` keys
    (the dashboards' change against the period before).

    Written in SQL: "had a won deal before the range" is an EXISTS per deal on the
    (customer, status, close date) index, where the ORM's ``customer__in`` hashed
    every customer who ever bought (80 % of the query on 150,000 deals), and the ORM
    took about as long to build the dashboards' two-range query as PostgreSQL took
    to run it. The cycle reads the deal's copy of its lead's creation time
    (``Deal.lead_created_at``): no join to a million leads.
    """
    days = "GREATEST(0, d.close_date - (d.lead_created_at AT TIME ZONE %s)::date)"
    zone = settings.TIME_ZONE
    before = (
        "EXISTS (SELECT 1 FROM leads_deal e WHERE e.customer_id = d.customer_id "
        "AND e.status = %s AND e.close_date < %s)"
    )
    # (rows of the range, its first day): the range itself, then the one before it.
    ranges = [("d.close_date >= %s", start)]
    if previous_start is not None:
        ranges.append(("d.close_date < %s", previous_start))
    columns: list[str] = []
    params: list[Any] = []
    for in_range, first_day in ranges:
        columns += [
            f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {days}) "
            f"FILTER (WHERE {in_range} AND d.lead_id IS NOT NULL)",
            f"COUNT(DISTINCT d.customer_id) FILTER (WHERE {in_range})",
            f"COUNT(DISTINCT d.customer_id) FILTER (WHERE {in_range} AND {before})",
        ]
        params += [zone, start, start, start, DealStatus.WON.value, first_day]
    owners, owner_params = _owner_condition(reps)
    where = f"d.status = %s AND d.close_date >= %s AND d.close_date <= %s{owners}"
    params += [DealStatus.WON.value, previous_start or start, end, *owner_params]
    for column, value in (("product_line_id", product_line), ("territory_id", territory)):
        if value is not None:
            where += f" AND d.{column} = %s"
            params.append(_pk(value))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM leads_deal d WHERE {where}", params)  # noqa: S608
        row = cursor.fetchone()
    keys = ["cycle_median", "customers", "repeat"]
    if previous_start is not None:
        keys += [f"previous_{key}" for key in keys]
    return dict(zip(keys, row, strict=True))


def kpis_for(
    *,
    reps: RepScope,
    start: date,
    end: date,
    product_line: ProductLine | int | None = None,
    territory: Territory | int | None = None,
    revenue_quota: Decimal | None = None,
    include_unassigned: bool = False,
) -> Kpis:
    """Every KPI for the reps (a queryset or ids) over [start, end], in two queries.

    ``revenue_quota`` is the revenue target for the same scope and range
    (e.g. ``revenue_quota_for`` of the goals shown), the denominator of the
    estimate coverage. ``include_unassigned`` adds the leads nobody owns yet
    (marketing's pool) to the lead KPIs: for company-wide figures.
    """
    totals = fact_totals(
        reps=reps,
        start=start,
        end=end,
        product_line=product_line,
        territory=territory,
        include_unassigned=include_unassigned,
    )
    raw = raw_deal_kpis(
        reps=reps, start=start, end=end, product_line=product_line, territory=territory
    )
    median = raw["cycle_median"]
    return kpis_from_totals(
        totals,
        start=start,
        end=end,
        cycle_median=Decimal(str(median)) if median is not None else None,
        customers_won=raw["customers"],
        repeat_customers=raw["repeat"],
        revenue_quota=revenue_quota,
    )


def kpis_from_totals(
    totals: dict[str, Any],
    *,
    start: date,
    end: date,
    cycle_median: Decimal | None,
    customers_won: int,
    repeat_customers: int,
    revenue_quota: Decimal | None,
) -> Kpis:
    """The KPI formulas of DESIGN.md over summed facts (pure: no queries)."""
    revenue = Decimal(totals["revenue_won"])
    won, lost = totals["deals_won"], totals["deals_lost"]
    created = totals["leads_created"]
    nps_answered = totals["nps_answered"]
    average_ticket = ratio(revenue, won)
    return Kpis(
        start=start,
        end=end,
        sales_volume=revenue,
        deals_won=won,
        deals_lost=lost,
        average_ticket=average_ticket.quantize(Decimal("0.01")) if average_ticket else None,
        win_rate=ratio(won, won + lost),
        leads_created=created,
        leads_decided=totals["leads_decided"],
        leads_decided_won=totals["leads_decided_won"],
        lead_conversion_rate=ratio(totals["leads_decided_won"], totals["leads_decided"]),
        funnel_mql_share=ratio(totals["leads_created_reached_mql"], created),
        funnel_sql_share=ratio(totals["leads_created_reached_sql"], created),
        funnel_won_share=ratio(totals["leads_created_won"], created),
        leads_reached_mql=totals["leads_reached_mql"],
        leads_reached_sql=totals["leads_reached_sql"],
        sales_cycle_mean_days=ratio(totals["cycle_days_sum"], totals["cycle_count"]),
        sales_cycle_median_days=cycle_median,
        customers_won=customers_won,
        repeat_customers=repeat_customers,
        repeat_business_rate=ratio(repeat_customers, customers_won),
        estimates_issued=totals["estimates_issued"],
        estimate_value_issued=Decimal(totals["estimate_value_issued"]),
        revenue_quota=revenue_quota,
        estimate_coverage=ratio(totals["estimate_value_issued"], revenue_quota),
        csat_answered=totals["csat_answered"],
        csat=_times_100(ratio(totals["csat_satisfied"], totals["csat_answered"])),
        nps_answered=nps_answered,
        nps=_times_100(ratio(totals["nps_promoters"] - totals["nps_detractors"], nps_answered)),
        surveys_sent=totals["surveys_sent"],
        surveys_answered=totals["surveys_answered"],
        survey_response_rate=ratio(totals["surveys_answered"], totals["surveys_sent"]),
        activities={kind: totals[column] for kind, column in ACTIVITY_COLUMNS.items()},
    )


def _times_100(share: Decimal | None) -> Decimal | None:
    return share * 100 if share is not None else None


# --- Goals -----------------------------------------------------------------------


def goal_target_on(
    goal: Goal, day: date, revisions: Iterable[GoalRevision] | None = None
) -> Decimal:
    """The target in force on ``day``.

    The newest revision in force by then (latest ``effective_from``, then the
    later one made) gives it; before any revision is in force, the target the
    goal was created with — the ``old_target`` of the first revision made.
    ``revisions`` may be passed when already loaded (prefetched), else one query.
    """
    rows = list(revisions) if revisions is not None else list(goal.revisions.all())
    if not rows:
        return goal.target
    in_force = [r for r in rows if r.effective_from <= day]
    if in_force:
        latest = max(in_force, key=lambda r: (r.effective_from, r.revised_at, r.pk or 0))
        return latest.new_target
    first_made = min(rows, key=lambda r: (r.revised_at, r.pk or 0))
    return first_made.old_target


def goal_actual(goal: Goal, totals: dict[str, Any]) -> Decimal | None:
    """The goal's metric out of summed facts of its scope and period (see ``fact_totals``)."""
    if goal.metric == Metric.REVENUE_WON:
        return Decimal(totals["revenue_won"])
    if goal.metric == Metric.DEALS_WON:
        return Decimal(totals["deals_won"])
    if goal.metric == Metric.ESTIMATE_VALUE:
        return Decimal(totals["estimate_value_issued"])
    if goal.metric == Metric.NEW_LEADS:
        return Decimal(totals["leads_created"])
    if goal.metric == Metric.ACTIVITIES:
        if goal.activity_kind:
            return Decimal(totals[ACTIVITY_COLUMNS[goal.activity_kind]])
        return Decimal(sum(totals[column] for column in ACTIVITY_COLUMNS.values()))
    if goal.metric == Metric.CSAT:
        return _times_100(ratio(totals["csat_satisfied"], totals["csat_answered"]))
    if goal.metric == Metric.NPS:
        return _times_100(
            ratio(totals["nps_promoters"] - totals["nps_detractors"], totals["nps_answered"])
        )
    raise ValueError(f"unknown metric {goal.metric}")


def revenue_quota_for(goals: Iterable[Goal]) -> Decimal | None:
    """The revenue quota of a scope: the sum of its revenue-won goals' targets, None if none."""
    targets = [goal.target for goal in goals if goal.metric == Metric.REVENUE_WON]
    return sum(targets, Decimal(0)) if targets else None


# --- Goals a user may see, and their progress ----------------------------------------------


def goals_for_user(*, user: Any) -> QuerySet[Goal]:
    """Goals the user may see.

    - admin: all;
    - manager: the goals of the teams they manage and of those teams' members
      (and their own), and the company's goals (for context);
    - rep: their own goals, their team's and the company's (for context);
    - marketing, inactive, anonymous: none (the pages refuse them with 403 anyway).
    """
    goals = Goal.objects.all()
    if not (user.is_authenticated and user.is_active):
        return goals.none()
    if user.role == Role.ADMIN:
        return goals
    company = Q(owner_kind=OwnerKind.COMPANY)
    if user.role == Role.MANAGER:
        team_ids, member_ids = managed_team_and_member_ids(user)
        return goals.filter(
            company | Q(team__in=team_ids) | Q(rep__in=sorted({user.pk, *member_ids}))
        )
    if user.role == Role.REP:
        visible = company | Q(rep=user.pk)
        if user.team_id:
            visible |= Q(team=user.team_id)
        return goals.filter(visible)
    return goals.none()


def goal_get_for_user(*, user: Any, pk: Any) -> Goal:
    """One goal the user may see (with its owner, product line and territory), else 404."""
    return get_or_404(
        goals_for_user(user=user).select_related("rep", "team", "product_line", "territory"),
        pk=pk,
    )


@dataclass(frozen=True)
class GoalProgress:
    """How a goal stands: target in force, actual so far, attainment, pace and its status.

    ``status`` is one of ``STATUS_LABELS``'s keys; ``colour`` a Bootstrap colour.
    """

    goal: Goal
    target: Decimal
    actual: Decimal | None
    attainment: Decimal | None
    pace: Decimal | None
    status: str
    last_day: date

    @property
    def colour(self) -> str:
        return STATUS_COLOURS[self.status]

    @property
    def needed_by_now(self) -> Decimal | None:
        """What the target prorated to the days elapsed asks for by ``last_day``."""
        if self.goal.metric in RATE_METRICS:
            return None
        return self.target * elapsed_share(self.goal.start, self.goal.end, self.last_day)


ON_TRACK, BEHIND, AT_RISK = "on_track", "behind", "at_risk"
MET, MISSED, NOT_STARTED, NO_DATA = "met", "missed", "not_started", "no_data"
STATUS_COLOURS = {
    ON_TRACK: "success",
    BEHIND: "warning",
    AT_RISK: "danger",
    MET: "success",
    MISSED: "danger",
    NOT_STARTED: "secondary",
    NO_DATA: "secondary",
}
# CSAT and NPS are rates: compared with the target as they are, not prorated by time.
RATE_METRICS = (Metric.CSAT, Metric.NPS)


def goal_status(goal: Goal, actual: Decimal | None, target: Decimal, last_day: date) -> str:
    """The status shown for a goal, with facts up to ``last_day`` (yesterday).

    Over: met or missed. Not started: no day of it counted yet. Otherwise the
    pace against ``GOAL_PACE_ON_TRACK`` / ``GOAL_PACE_AT_RISK``; a rate (CSAT,
    NPS) is on track at or above the target, else behind.
    """
    if last_day < goal.start:
        return NOT_STARTED
    if actual is None:
        return NO_DATA
    if goal.metric in RATE_METRICS:
        met = actual >= target
        if last_day >= goal.end:
            return MET if met else MISSED
        return ON_TRACK if met else BEHIND
    if last_day >= goal.end:
        return MET if actual >= target else MISSED
    goal_pace = pace(actual, target, goal.start, goal.end, last_day)
    return ON_TRACK if goal_pace is None else pace_status(goal_pace)


def pace_status(goal_pace: Decimal) -> str:
    """On track at or above ``GOAL_PACE_ON_TRACK``, at risk below ``GOAL_PACE_AT_RISK``,
    behind in between: the one reading of a pace, for goal pages and dashboards alike."""
    if goal_pace >= settings.GOAL_PACE_ON_TRACK:
        return ON_TRACK
    if goal_pace < settings.GOAL_PACE_AT_RISK:
        return AT_RISK
    return BEHIND


def goal_scope_rep_ids(goals: Iterable[Goal]) -> dict[int, list[int] | None]:
    """The reps whose facts make each goal's actual (one query for all the team goals).

    A rep goal: the rep; a team goal: the team's current members; a company
    goal: None (everyone). Without a team goal in the list there is nothing to
    read (Django runs no query for an empty ``IN``).
    """
    goals = list(goals)
    team_ids = sorted({goal.team_id for goal in goals if goal.team_id is not None})
    members: dict[int, list[int]] = {team_id: [] for team_id in team_ids}
    for pk, team_id in User.objects.filter(team__in=team_ids).values_list("pk", "team"):
        members[team_id].append(pk)
    scope: dict[int, list[int] | None] = {}
    for goal in goals:
        if goal.owner_kind == OwnerKind.REP:
            scope[goal.pk] = [goal.rep_id]
        elif goal.owner_kind == OwnerKind.TEAM:
            scope[goal.pk] = sorted(members[goal.team_id])
        else:
            scope[goal.pk] = None
    return scope


_GOAL_TOTALS_SQL = """
WITH g AS (
    SELECT * FROM unnest(%s::bigint[], %s::date[], %s::date[], %s::bigint[], %s::bigint[],
                         %s::boolean[], %s::boolean[], %s::text[], %s::text[])
        AS g(goal_id, start_day, end_day, product_line_id, territory_id, whole_company,
             with_unassigned, metric, activity_kind)
), pairs AS (
    SELECT * FROM unnest(%s::bigint[], %s::bigint[]) AS p(goal_id, rep_id)
), matched AS (
    -- Rep and team goals: their reps' facts (the (rep, day) index does the work).
    SELECT g.goal_id, g.metric, g.activity_kind, {columns}
    FROM pairs p
    JOIN g ON g.goal_id = p.goal_id
    JOIN goals_dailyrepfact f
      ON f.rep_id = p.rep_id AND f.day BETWEEN g.start_day AND g.end_day
     AND (g.product_line_id IS NULL OR f.product_line_id = g.product_line_id)
     AND (g.territory_id IS NULL OR f.territory_id = g.territory_id)
    WHERE NOT g.whole_company
    UNION ALL
    -- Company goals: every rep's facts (and nobody's leads for new leads).
    SELECT g.goal_id, g.metric, g.activity_kind, {columns}
    FROM g
    JOIN goals_dailyrepfact f
      ON f.day BETWEEN g.start_day AND g.end_day
     AND (f.rep_id IS NOT NULL OR g.with_unassigned)
     AND (g.product_line_id IS NULL OR f.product_line_id = g.product_line_id)
     AND (g.territory_id IS NULL OR f.territory_id = g.territory_id)
    WHERE g.whole_company
)
SELECT goal_id, COALESCE(SUM({main}), 0), COALESCE(SUM({answered}), 0),
       COALESCE(SUM({detractors}), 0)
FROM matched
GROUP BY goal_id
"""

# What each metric sums (goal_actual reads these columns): the main column and,
# for the rates, the answers (and the detractors of NPS).
_MAIN_COLUMN = {
    Metric.REVENUE_WON: "revenue_won",
    Metric.DEALS_WON: "deals_won",
    Metric.ESTIMATE_VALUE: "estimate_value_issued",
    Metric.NEW_LEADS: "leads_created",
    Metric.CSAT: "csat_satisfied",
    Metric.NPS: "nps_promoters",
}
_ANSWERED_COLUMN = {Metric.CSAT: "csat_answered", Metric.NPS: "nps_answered"}


def metric_columns(goal: Goal) -> tuple[str, ...]:
    """The fact columns ``goal_actual`` reads for the goal's metric."""
    if goal.metric == Metric.ACTIVITIES:
        if goal.activity_kind:
            return (ACTIVITY_COLUMNS[goal.activity_kind],)
        return tuple(ACTIVITY_COLUMNS.values())
    columns = [_MAIN_COLUMN[goal.metric]]
    if goal.metric in _ANSWERED_COLUMN:
        columns.append(_ANSWERED_COLUMN[goal.metric])
    if goal.metric == Metric.NPS:
        columns.append("nps_detractors")
    return tuple(columns)


def _goal_totals_sql() -> str:
    columns = sorted(
        {*_MAIN_COLUMN.values(), *_ANSWERED_COLUMN.values(), "nps_detractors"}
        | set(ACTIVITY_COLUMNS.values())
    )
    main = "CASE metric " + " ".join(
        f"WHEN '{metric}' THEN {column}" for metric, column in _MAIN_COLUMN.items()
    )
    every_activity = " + ".join(ACTIVITY_COLUMNS.values())
    by_kind = " ".join(f"WHEN '{kind}' THEN {column}" for kind, column in ACTIVITY_COLUMNS.items())
    main += (
        f" WHEN '{Metric.ACTIVITIES}' THEN CASE activity_kind {by_kind} ELSE {every_activity} END"
    )
    main += " ELSE 0 END"
    answered = "CASE metric " + " ".join(
        f"WHEN '{metric}' THEN {column}" for metric, column in _ANSWERED_COLUMN.items()
    )
    answered += " ELSE 0 END"
    detractors = f"CASE WHEN metric = '{Metric.NPS}' THEN nps_detractors ELSE 0 END"
    return _GOAL_TOTALS_SQL.format(
        columns=", ".join(f"f.{column}" for column in columns),
        main=main,
        answered=answered,
        detractors=detractors,
    )


def _totals_of(goal: Goal, main: Any, answered: Any, detractors: Any) -> dict[str, Any]:
    """A ``fact_totals``-shaped dict holding what ``goal_actual`` reads for the goal's metric."""
    totals = {column: Decimal(0) if column in MONEY_COLUMNS else 0 for column in FACT_COLUMNS}
    if goal.metric == Metric.ACTIVITIES:
        # All of it in one column: goal_actual adds the columns up, or reads this one.
        column = ACTIVITY_COLUMNS[goal.activity_kind or ActivityKind.CALL]
        totals[column] = main
        return totals
    totals[_MAIN_COLUMN[goal.metric]] = main
    if goal.metric in _ANSWERED_COLUMN:
        totals[_ANSWERED_COLUMN[goal.metric]] = answered
    if goal.metric == Metric.NPS:
        totals["nps_detractors"] = detractors
    return totals


def goal_fact_totals(goals: Iterable[Goal], *, last_day: date) -> dict[int, dict[str, Any]]:
    """For each goal, its scope's facts over its period up to ``last_day``, summed.

    Only the columns the goal's metric reads are summed (the rest stay 0): a
    company goal over a year sums a year of facts, so three sums, not thirty.
    Two queries whatever the number of goals: the team members
    (``goal_scope_rep_ids``), then one SQL joining the facts to a list of
    (goal, period, product line, territory, metric) and of (goal, rep) pairs.
    """
    goals = list(goals)
    if not goals:
        return {}
    scope = goal_scope_rep_ids(goals)
    pair_goals: list[int] = []
    pair_reps: list[int] = []
    for goal in goals:
        for rep_id in scope[goal.pk] or ():
            pair_goals.append(goal.pk)
            pair_reps.append(rep_id)
    params = [
        [goal.pk for goal in goals],
        [goal.start for goal in goals],
        [min(goal.end, last_day) for goal in goals],
        [goal.product_line_id for goal in goals],
        [goal.territory_id for goal in goals],
        [scope[goal.pk] is None for goal in goals],
        [goal.metric == Metric.NEW_LEADS for goal in goals],
        [goal.metric for goal in goals],
        [goal.activity_kind for goal in goals],
        pair_goals,
        pair_reps,
    ]
    sums: dict[int, tuple[Any, Any, Any]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_goal_totals_sql(), params)
        for goal_id, main, answered, detractors in cursor.fetchall():
            sums[goal_id] = (main, answered, detractors)
    return {goal.pk: _totals_of(goal, *sums.get(goal.pk, (0, 0, 0))) for goal in goals}


def goal_progress(goals: Iterable[Goal], *, today: date) -> list[GoalProgress]:
    """Progress of each goal, in the order given, from the facts up to yesterday (2 queries).

    The nightly job has counted up to yesterday, so yesterday is the last day of
    the actual and of the pace. The target is the one in force (``goal.target``).
    """
    goals = list(goals)
    last_day = today - timedelta(days=1)
    totals = goal_fact_totals(goals, last_day=last_day)
    rows = []
    for goal in goals:
        target = Decimal(goal.target)
        counted = last_day >= goal.start
        actual = goal_actual(goal, totals[goal.pk]) if counted else None
        goal_pace = (
            pace(actual, target, goal.start, goal.end, last_day)
            if counted and goal.metric not in RATE_METRICS
            else None
        )
        rows.append(
            GoalProgress(
                goal=goal,
                target=target,
                actual=actual,
                attainment=attainment(actual, target) if goal.metric != Metric.NPS else None,
                pace=goal_pace,
                status=goal_status(goal, actual, target, last_day),
                last_day=last_day,
            )
        )
    return rows
