"""The nightly KPI job: raw pipeline rows → additive daily facts (``DailyRepFact``).

Set-based SQL only, in one transaction per run:

1. the leads the run needs are projected once into a narrow temporary table
   (``kpi_lead``: owner, territory, single product line, and the company-time
   days it was created, decided, reached MQL and SQL). The lead table is wide
   (search vector, score breakdown): reading it once instead of once per
   source and per month is what keeps a year's rebuild short;
2. for each month of the days asked, one ``CREATE TEMP TABLE … AS SELECT``
   aggregates every source (deals, leads, estimates, activities, and what the
   feedback app adds) by fact key: a UNION ALL of one grouped SELECT per
   source, grouped again (the nightly run also recomputes single sources on
   the older days their late edits touched, see ``nightly_plan``);
3. that result is applied to the facts table: rows that differ are upserted
   (``INSERT … ON CONFLICT DO UPDATE``), facts of those days that no longer
   have any source are zeroed, and rows left all zero are deleted. So a deal
   deleted or moved to another day leaves nothing behind, a rerun writes
   nothing at all, and readers never see a day half rebuilt.

Day boundaries are the company's (``settings.TIME_ZONE``): dates stay dates
(a deal's close date, an estimate's issue date); timestamps are converted with
``AT TIME ZONE``, so a lead created at 23:30 on a daylight-saving day lands on
that day.

Safe to repeat: a rerun over the same rows leaves identical facts. Runs are
serialised by an advisory lock, and the unique key keeps one row per
(day, rep, product line, territory) whatever happens.

Which rows land where is documented on ``goals.models.DailyRepFact``.
"""

from __future__ import annotations

import logging
import time as clock
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction

from goals.models import DailyRepFact
from leads.models import ActivityKind, DealStatus, Stage

logger = logging.getLogger(__name__)

FACTS = DailyRepFact._meta.db_table
# The facts summed by (week inside a month, rep, product line): a materialized view
# (migration goals 0003) that every run refreshes once its facts are written.
WEEKLY_FACTS = "goals_weeklyrepfact"
# One column per activity kind; every kind must have one (checked by the tests).
ACTIVITY_COLUMNS: dict[str, str] = {kind.value: f"act_{kind.value}" for kind in ActivityKind}

MONEY_COLUMNS = ("revenue_won", "estimate_value_issued")
COUNT_COLUMNS = (
    "deals_won",
    "deals_lost",
    "cycle_days_sum",
    "cycle_count",
    "leads_created",
    "leads_created_reached_mql",
    "leads_created_reached_sql",
    "leads_created_won",
    "leads_decided",
    "leads_decided_won",
    "leads_reached_mql",
    "leads_reached_sql",
    "estimates_issued",
    *ACTIVITY_COLUMNS.values(),
    "csat_answered",
    "csat_satisfied",
    "nps_answered",
    "nps_promoters",
    "nps_detractors",
    "surveys_sent",
    "surveys_answered",
)
FACT_COLUMNS = MONEY_COLUMNS + COUNT_COLUMNS
KEY_COLUMNS = ("day", "rep_id", "product_line_id", "territory_id")

# Runs never overlap (any constant would do: it only has to be the same for all).
ADVISORY_LOCK_KEY = 0x6B70695F66616374  # "kpi_fact"
# Enough for the hash joins and aggregates of a month on the benchmark data set
# to stay in memory; a bigger month spills to disk, it does not fail.
WORK_MEM = "64MB"
NIGHTLY_WINDOW_DAYS = 7

LEAD_STAGE = "kpi_lead"  # the run's lead projection (temporary table)
NEW_FACTS = "kpi_new"  # one month's recomputed facts (temporary table)

_CLOSED = ", ".join(f"'{stage}'" for stage in (Stage.WON, Stage.LOST, Stage.DISQUALIFIED))


@dataclass(frozen=True)
class FactSource:
    """One source's contribution to the facts.

    ``sql`` is a SELECT of the key columns (``day, rep_id, product_line_id,
    territory_id``) followed by ``columns``, grouped by the key, keeping only
    rows whose day ``= ANY(%(days)s)``. Parameters: ``%(tz)s`` (company time
    zone), ``%(first)s`` / ``%(last)s`` (first and last day), ``%(lo)s`` /
    ``%(hi)s`` (the instants the first day and the day after the last begin,
    for indexed timestamp ranges), ``%(days)s`` (date[] of exactly the days:
    they need not be contiguous). Lead attributes come from the ``kpi_lead``
    projection (see ``_stage_leads``), joined on ``id``: ``owner_id``,
    ``territory_id``, ``product_line_id`` (its only one, else NULL),
    ``updated_at``, ``won``, ``reached_mql``, ``reached_sql`` (booleans) and the
    company days ``created_day``, ``decided_day``, ``mql_day``, ``sql_day``.

    ``touched_sql`` (optional) returns the days (one date column) whose facts of
    this source may have changed through edits made in [``%(since)s``,
    ``%(until)s``): the nightly run recomputes this source's columns on them.
    """

    name: str
    sql: str
    columns: tuple[str, ...]
    touched_sql: str | None = None


DEAL_SOURCE = FactSource(
    name="deals",
    columns=("revenue_won", "deals_won", "deals_lost", "cycle_days_sum", "cycle_count"),
    sql=f"""
    SELECT d.close_date, d.owner_id, d.product_line_id, d.territory_id,
        COALESCE(SUM(d.amount) FILTER (WHERE d.status = '{DealStatus.WON}'), 0),
        COUNT(*) FILTER (WHERE d.status = '{DealStatus.WON}'),
        COUNT(*) FILTER (WHERE d.status = '{DealStatus.LOST}'),
        -- A deal back-dated before its lead was recorded counts 0 days.
        COALESCE(SUM(GREATEST(0, d.close_date - l.created_day))
            FILTER (WHERE d.status = '{DealStatus.WON}'), 0),
        COUNT(l.id) FILTER (WHERE d.status = '{DealStatus.WON}')
    FROM leads_deal d
    LEFT JOIN {LEAD_STAGE} l ON l.id = d.lead_id
    WHERE d.close_date BETWEEN %(first)s AND %(last)s AND d.close_date = ANY(%(days)s)
    GROUP BY 1, 2, 3, 4
    """,  # noqa: S608 - the SQL holds constants only, never input
    touched_sql="""
    SELECT close_date FROM leads_deal WHERE updated_at >= %(since)s AND updated_at < %(until)s
    """,
)

# Each lead counts on up to four days — its creation day (the cohort counts),
# the day it was decided, the days it reached MQL and SQL — one branch each.
_LEAD_BRANCH = """
    SELECT l.{day_column} AS day, l.owner_id, l.product_line_id, l.territory_id, {values}
    FROM {stage} AS l
    WHERE l.{day_column} BETWEEN %(first)s AND %(last)s AND l.{day_column} = ANY(%(days)s)
"""
_LEAD_BRANCHES = "\n    UNION ALL\n".join(
    _LEAD_BRANCH.format(stage=LEAD_STAGE, day_column=day_column, values=values)
    for day_column, values in (
        ("created_day", "1, l.reached_mql::int, l.reached_sql::int, l.won::int, 0, 0, 0, 0"),
        ("decided_day", "0, 0, 0, 0, 1, l.won::int, 0, 0"),
        ("mql_day", "0, 0, 0, 0, 0, 0, 1, 0"),
        ("sql_day", "0, 0, 0, 0, 0, 0, 0, 1"),
    )
)
LEAD_SOURCE = FactSource(
    name="leads",
    columns=(
        "leads_created",
        "leads_created_reached_mql",
        "leads_created_reached_sql",
        "leads_created_won",
        "leads_decided",
        "leads_decided_won",
        "leads_reached_mql",
        "leads_reached_sql",
    ),
    sql=f"""
    SELECT day, owner_id, product_line_id, territory_id,
        SUM(created), SUM(created_mql), SUM(created_sql), SUM(created_won),
        SUM(decided), SUM(decided_won), SUM(mql), SUM(sql)
    FROM ({_LEAD_BRANCHES}) AS v(day, owner_id, product_line_id, territory_id,
        created, created_mql, created_sql, created_won, decided, decided_won, mql, sql)
    GROUP BY 1, 2, 3, 4
    """,  # noqa: S608
    # The cohort caveat: a lead created months ago that progresses today changes
    # the facts of its creation day. Every day a changed lead counts on now, and
    # the days of its earlier decisions (a recycled lead is no longer decided there).
    touched_sql=f"""
    WITH changed AS (
        SELECT id, created_day, decided_day, mql_day, sql_day FROM {LEAD_STAGE}
        WHERE updated_at >= %(since)s AND updated_at < %(until)s
    )
    SELECT created_day FROM changed
    UNION SELECT decided_day FROM changed
    UNION SELECT mql_day FROM changed
    UNION SELECT sql_day FROM changed
    UNION SELECT (e.created_at AT TIME ZONE %(tz)s)::date
        FROM leads_leadevent e JOIN changed c ON c.id = e.lead_id
        WHERE e.kind = 'stage' AND e.to_value IN ({_CLOSED})
    """,  # noqa: S608
)

ESTIMATE_SOURCE = FactSource(
    name="estimates",
    columns=("estimate_value_issued", "estimates_issued"),
    sql=f"""
    SELECT e.issued_on, e.owner_id, e.product_line_id,
        COALESCE(l.territory_id, c.territory_id),
        SUM(e.amount), COUNT(*)
    FROM leads_estimate e
    JOIN leads_customer c ON c.id = e.customer_id
    LEFT JOIN {LEAD_STAGE} l ON l.id = e.lead_id
    WHERE e.issued_on BETWEEN %(first)s AND %(last)s AND e.issued_on = ANY(%(days)s)
    GROUP BY 1, 2, 3, 4
    """,  # noqa: S608
    touched_sql="""
    SELECT issued_on FROM leads_estimate WHERE updated_at >= %(since)s AND updated_at < %(until)s
    """,
)

_ACTIVITY_COUNTS = ",\n        ".join(
    f"COUNT(*) FILTER (WHERE a.kind = '{kind}')" for kind in ACTIVITY_COLUMNS
)
ACTIVITY_SOURCE = FactSource(
    name="activities",
    columns=tuple(ACTIVITY_COLUMNS.values()),
    sql=f"""
    SELECT (a.occurred_at AT TIME ZONE %(tz)s)::date, a.owner_id,
        -- A deal always has a product line: the lead's counts only without a deal.
        COALESCE(d.product_line_id, l.product_line_id),
        COALESCE(d.territory_id, l.territory_id, c.territory_id),
        {_ACTIVITY_COUNTS}
    FROM leads_activity a
    LEFT JOIN leads_deal d ON d.id = a.deal_id
    LEFT JOIN {LEAD_STAGE} l ON l.id = a.lead_id
    LEFT JOIN leads_customer c ON c.id = a.customer_id
    WHERE a.occurred_at >= %(lo)s AND a.occurred_at < %(hi)s
        -- An open to-do has not happened yet.
        AND (a.due_at IS NULL OR a.done_at IS NOT NULL)
        AND (a.occurred_at AT TIME ZONE %(tz)s)::date = ANY(%(days)s)
    GROUP BY 1, 2, 3, 4
    """,  # noqa: S608
    touched_sql="""
    SELECT (occurred_at AT TIME ZONE %(tz)s)::date FROM leads_activity
    WHERE (created_at >= %(since)s AND created_at < %(until)s)
        OR (done_at >= %(since)s AND done_at < %(until)s)
    """,
)


def feedback_fact_sources() -> list[FactSource]:
    """The survey facts (CSAT, NPS, response rate): the feedback app plugs in here.

    Return ``FactSource``s filling ``csat_answered``, ``csat_satisfied`` (4-5),
    ``nps_answered``, ``nps_promoters`` (9-10), ``nps_detractors`` (0-6) on
    the day answered, and ``surveys_sent`` / ``surveys_answered`` on the day
    sent, with a ``touched_sql`` for late answers.
    """
    from feedback.kpis import fact_sources as feedback_sources

    return feedback_sources()


def fact_sources() -> list[FactSource]:
    return [DEAL_SOURCE, LEAD_SOURCE, ESTIMATE_SOURCE, ACTIVITY_SOURCE, *feedback_fact_sources()]


@contextmanager
def _step(label: str, *args: Any) -> Iterator[None]:
    """Log how long a step took (DEBUG): where a slow night spent its time."""
    began = clock.perf_counter()
    yield
    logger.debug("%s: %.2f s", label % args, clock.perf_counter() - began)


# --- SQL building -----------------------------------------------------------------


def _column_type(column: str) -> str:
    return "numeric(14, 2)" if column in MONEY_COLUMNS else "integer"


def _source_select(source: FactSource, columns: Sequence[str]) -> str:
    """The source's SELECT padded with zeros to ``columns``, in that order."""
    unknown = set(source.columns) - set(FACT_COLUMNS)
    if unknown:
        raise ValueError(f"{source.name}: unknown fact columns {sorted(unknown)}")
    inner = ", ".join((*KEY_COLUMNS, *(f"c_{column}" for column in source.columns)))
    values = ", ".join(
        f"s.c_{column}" if column in source.columns else f"0::{_column_type(column)}"
        for column in columns
    )
    return (
        f"SELECT s.day, s.rep_id, s.product_line_id, s.territory_id, {values}\n"
        f"FROM ({source.sql}) AS s({inner})"
    )


def aggregation_sql(sources: Sequence[FactSource] | None = None) -> tuple[str, tuple[str, ...]]:
    """The SELECT … GROUP BY of the fact rows of some days, and the columns it fills.

    Needs the ``kpi_lead`` projection (``_stage_leads``) in the same transaction.
    """
    sources = list(sources if sources is not None else fact_sources())
    columns = tuple(c for c in FACT_COLUMNS if any(c in s.columns for s in sources))
    union = "\nUNION ALL\n".join(_source_select(source, columns) for source in sources)
    sums = ", ".join(f"SUM({c})::{_column_type(c)} AS {c}" for c in columns)
    sql = (
        f"SELECT day, rep_id, product_line_id, territory_id, {sums}\n"
        f"FROM (\n{union}\n) AS u({', '.join((*KEY_COLUMNS, *columns))})\n"
        "GROUP BY day, rep_id, product_line_id, territory_id"
    )
    return sql, columns


def _stage_leads(cursor: Any, params: dict[str, Any] | None) -> None:
    """Project the leads this run needs into ``kpi_lead`` (dropped with the transaction).

    With ``params``: the leads counted on those days, and those the days' deals,
    estimates and activities point to. Without: every lead (the nightly run,
    which also looks for the leads changed lately).
    The lead's product line is its only one; with several or none it has none.
    """
    needed = ""
    if params is not None:
        needed = """
        WHERE (l.created_at >= %(lo)s AND l.created_at < %(hi)s)
            OR (l.decided_at >= %(lo)s AND l.decided_at < %(hi)s)
            OR (l.reached_mql_at >= %(lo)s AND l.reached_mql_at < %(hi)s)
            OR (l.reached_sql_at >= %(lo)s AND l.reached_sql_at < %(hi)s)
            OR l.id IN (SELECT lead_id FROM leads_deal
                WHERE close_date BETWEEN %(first)s AND %(last)s AND close_date = ANY(%(days)s))
            OR l.id IN (SELECT lead_id FROM leads_estimate
                WHERE issued_on BETWEEN %(first)s AND %(last)s AND issued_on = ANY(%(days)s))
            OR l.id IN (SELECT lead_id FROM leads_activity
                WHERE occurred_at >= %(lo)s AND occurred_at < %(hi)s)
        """
    cursor.execute(f"DROP TABLE IF EXISTS {LEAD_STAGE}")
    # Counting each lead's lines streams in index order; the planner, misjudging
    # how many leads have one line, would hash them all and spill (1.2 s vs 0.45 s
    # for a million leads).
    cursor.execute("SELECT current_setting('enable_hashagg')")
    hashagg = cursor.fetchone()[0]
    cursor.execute("SET LOCAL enable_hashagg = off")
    cursor.execute(
        f"""
        CREATE TEMPORARY TABLE {LEAD_STAGE} ON COMMIT DROP AS
        SELECT l.id, l.owner_id, l.territory_id, lines.product_line_id, l.updated_at,
            l.stage = '{Stage.WON}' AS won,
            l.reached_mql_at IS NOT NULL AS reached_mql,
            l.reached_sql_at IS NOT NULL AS reached_sql,
            (l.created_at AT TIME ZONE %(tz)s)::date AS created_day,
            CASE WHEN l.stage IN ({_CLOSED})
                THEN (l.decided_at AT TIME ZONE %(tz)s)::date END AS decided_day,
            (l.reached_mql_at AT TIME ZONE %(tz)s)::date AS mql_day,
            (l.reached_sql_at AT TIME ZONE %(tz)s)::date AS sql_day
        FROM leads_lead l
        LEFT JOIN (
            SELECT lead_id, MIN(productline_id) AS product_line_id
            FROM leads_lead_product_lines GROUP BY lead_id HAVING COUNT(*) = 1
        ) lines ON lines.lead_id = l.id
        {needed}
        """,  # noqa: S608 - constants only
        params or {"tz": settings.TIME_ZONE},
    )
    cursor.execute("SELECT set_config('enable_hashagg', %s, true)", [hashagg])
    # Temporary tables get no automatic statistics: the joins need them.
    cursor.execute(f"ANALYZE {LEAD_STAGE}")


def _apply(cursor: Any, columns: Sequence[str], params: dict[str, Any]) -> tuple[int, int]:
    """Make the facts of ``params['days']`` in ``columns`` equal ``kpi_new``.

    Writes only what differs. Returns (rows recomputed, rows written or deleted).
    """
    day_filter = "day BETWEEN %(first)s AND %(last)s AND day = ANY(%(days)s)"
    keys = ", ".join(KEY_COLUMNS)
    listed = ", ".join(columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
    cursor.execute(f"SELECT count(*) FROM {NEW_FACTS}")  # noqa: S608
    rows = cursor.fetchone()[0]
    # New rows and rows whose values changed.
    cursor.execute(
        f"""
        INSERT INTO {FACTS} ({keys}, {listed})
        SELECT * FROM (
            SELECT {keys}, {listed} FROM {NEW_FACTS}
            EXCEPT
            SELECT {keys}, {listed} FROM {FACTS} WHERE {day_filter}
        ) AS changed
        ON CONFLICT ON CONSTRAINT dailyrepfact_key DO UPDATE SET {updates}
        """,  # noqa: S608
        params,
    )
    written = cursor.rowcount
    # Facts of these days whose sources are gone (a deal deleted or moved away).
    # NOT IN over the new keys is a hashed lookup whatever the planner thinks of
    # the facts' row count (their statistics lag behind a rebuild).
    key = "day, COALESCE(rep_id, 0), COALESCE(product_line_id, 0), COALESCE(territory_id, 0)"
    not_zero = " OR ".join(f"{c} <> 0" for c in columns)
    cursor.execute(
        f"""
        UPDATE {FACTS} SET {", ".join(f"{c} = 0" for c in columns)}
        WHERE {day_filter} AND ({not_zero})
            AND ({key}) NOT IN (SELECT {key} FROM {NEW_FACTS})
        """,  # noqa: S608
        params,
    )
    written += cursor.rowcount
    all_zero = " AND ".join(f"{c} = 0" for c in FACT_COLUMNS)
    cursor.execute(f"DELETE FROM {FACTS} WHERE {day_filter} AND {all_zero}", params)  # noqa: S608
    written += cursor.rowcount
    return rows, written


def chunk_params(days: Sequence[date]) -> dict[str, Any]:
    """SQL parameters for a sorted, non-empty list of distinct days."""
    zone = ZoneInfo(settings.TIME_ZONE)
    first, last = days[0], days[-1]
    return {
        "tz": settings.TIME_ZONE,
        "first": first,
        "last": last,
        "lo": datetime.combine(first, time.min, tzinfo=zone),
        "hi": datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone),
        "days": list(days),
    }


def months_of(days: Iterable[date]) -> list[list[date]]:
    """The distinct days, sorted, one list per calendar month."""
    chunks: dict[tuple[int, int], list[date]] = {}
    for day in sorted(set(days)):
        chunks.setdefault((day.year, day.month), []).append(day)
    return list(chunks.values())


def _refresh(
    cursor: Any, sources: Sequence[FactSource], days: Iterable[date], *, by_month: bool = True
) -> tuple[int, int]:
    """Recompute the sources' columns on these days: a month per statement, or all
    the days in one (one source's facts on scattered days: a small aggregate, and
    one pass over the lead projection instead of one a month)."""
    rows = written = 0
    names = "+".join(source.name for source in sources)
    select, columns = aggregation_sql(sources)
    ordered = sorted(set(days))
    for chunk in months_of(ordered) if by_month else [ordered]:
        params = chunk_params(chunk)
        cursor.execute(f"DROP TABLE IF EXISTS {NEW_FACTS}")
        with _step("aggregate %s, %s days from %s", names, len(chunk), chunk[0]):
            cursor.execute(f"CREATE TEMPORARY TABLE {NEW_FACTS} ON COMMIT DROP AS {select}", params)
            cursor.execute(f"ANALYZE {NEW_FACTS}")
        with _step("apply %s, %s days from %s", names, len(chunk), chunk[0]):
            chunk_rows, chunk_written = _apply(cursor, columns, params)
        rows, written = rows + chunk_rows, written + chunk_written
    cursor.execute(f"DROP TABLE IF EXISTS {NEW_FACTS}")
    return rows, written


def _begin(cursor: Any, *, lock: bool = True) -> None:
    if lock:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
    cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
    # Compiling these large statements costs more than it saves (seconds a month).
    cursor.execute("SET LOCAL jit = off")


def _refresh_weekly(cursor: Any) -> None:
    """Bring the weekly sums up to the facts just written, in the same transaction.

    CONCURRENTLY: dashboards keep reading the old rows meanwhile, and only rows
    that changed are written (a rerun writes none). A whole refresh, whatever the
    days recomputed: about 1.6 s on the large data set's 424,000 facts.
    """
    with _step("weekly sums"):
        cursor.execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {WEEKLY_FACTS}")


def refresh_weekly_facts() -> None:
    """Refresh the weekly sums on their own (after facts written by other means: tests)."""
    with transaction.atomic(), connection.cursor() as cursor:
        _refresh_weekly(cursor)


def _end(cursor: Any) -> None:
    # ON COMMIT DROP would do, but inside an outer transaction (tests) the next
    # run in it must find the names free.
    cursor.execute(f"DROP TABLE IF EXISTS {LEAD_STAGE}")


# --- Entry points -------------------------------------------------------------------


def compute_facts(*, days: Iterable[date]) -> int:
    """Recompute every fact of exactly these days; returns the number of fact rows they have.

    One transaction: the days' facts are replaced as a whole or not at all. A
    rerun gives identical rows (and writes none), and a deal deleted or moved
    away leaves nothing behind on its old day.
    """
    days = sorted(set(days))
    if not days:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        _begin(cursor)
        with _step("lead projection"):
            _stage_leads(cursor, chunk_params(days))
        rows, written = _refresh(cursor, fact_sources(), days)
        _refresh_weekly(cursor)
        _end(cursor)
    logger.info("KPI facts: %s rows over %s days, %s written", rows, len(days), written)
    return rows


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def compute_facts_range(start: date, end: date) -> int:
    """Rebuild every day from ``start`` to ``end`` (inclusive), a month per statement."""
    if end < start:
        raise ValueError("end is before start")
    rows = compute_facts(days=days_between(start, end))
    # A rebuild replaces most of the table: refresh the planner's statistics, or
    # it guesses a day range's rows from a table that no longer exists (13x too
    # few seen on the large data set) and picks slow plans for the dashboards.
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {FACTS}")
        cursor.execute(f"ANALYZE {WEEKLY_FACTS}")
    return rows


def _touched(cursor: Any, source: FactSource, since: datetime, until: datetime) -> set[date]:
    if source.touched_sql is None:
        return set()
    cursor.execute(source.touched_sql, {"since": since, "until": until, "tz": settings.TIME_ZONE})
    return {row[0] for row in cursor.fetchall() if row[0] is not None}


def nightly_plan(cursor: Any, today: date) -> tuple[list[date], dict[str, set[date]]]:
    """The trailing window (all sources) and, per source, the older days edits touched.

    Needs the full ``kpi_lead`` projection. Late edits land on old days: a deal
    recorded today with last month's close date, a call logged late, a to-do
    done today, and above all the cohort counts of old leads that progressed.
    Edits of the whole window are looked at, so a night that failed is caught
    up the next. What no edit time reveals — a deal or estimate deleted, or
    moved off an old day; a lead's or customer's territory changed under old
    estimates and activities — the weekly rebuild puts right.
    """
    zone = ZoneInfo(settings.TIME_ZONE)
    yesterday = today - timedelta(days=1)
    window = days_between(yesterday - timedelta(days=NIGHTLY_WINDOW_DAYS), yesterday)
    since = datetime.combine(window[0], time.min, tzinfo=zone)
    until = datetime.combine(today, time.min, tzinfo=zone)
    extra = {}
    for source in fact_sources():
        # Only past days: an activity planned for later is not a fact yet.
        with _step("touched days of %s", source.name):
            touched = _touched(cursor, source, since, until)
        extra[source.name] = {d for d in touched if d < window[0]}
    return window, extra


def nightly(today: date) -> int:
    """The nightly job for the night before ``today``: facts up to yesterday. Safe to repeat.

    Every source on yesterday and the week before it; each source alone on the
    older days its late edits touched (see ``nightly_plan``). Returns the number
    of fact rows recomputed.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        _begin(cursor)
        with _step("lead projection"):
            _stage_leads(cursor, None)
        with _step("nightly plan"):
            window, extra = nightly_plan(cursor, today)
        rows, written = _refresh(cursor, fact_sources(), window)
        for source in fact_sources():
            if extra[source.name]:
                more_rows, more_written = _refresh(
                    cursor, [source], extra[source.name], by_month=False
                )
                rows, written = rows + more_rows, written + more_written
        _refresh_weekly(cursor)
        _end(cursor)
    older = sorted(set().union(*extra.values()))
    logger.info(
        "KPI facts nightly for %s: %s rows, %s written; window %s to %s, %s older days",
        today,
        rows,
        written,
        window[0],
        window[-1],
        len(older),
    )
    return rows


def nightly_days(today: date) -> set[date]:
    """Every day the nightly run for ``today`` recomputes something on (for tools and tests)."""
    with transaction.atomic(), connection.cursor() as cursor:
        _begin(cursor, lock=False)
        _stage_leads(cursor, None)
        window, extra = nightly_plan(cursor, today)
        _end(cursor)
    return set(window).union(*extra.values())
