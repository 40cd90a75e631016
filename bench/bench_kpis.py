"""Benchmark of the nightly KPI job (goals.kpis) on whatever pipeline the database holds.

    DATABASE_URL=postgres://…/salesperf_seed REDIS_URL=redis://… \\
        .venv/bin/python bench/bench_kpis.py [--days 365] [--end YYYY-MM-DD]
        [--repeat 3] [--keep] [--analyze]

Meant for the large data set (``seed_demo --scale large``: 1,000,000 leads,
300,000 estimates, 150,000 deals, a million activities). Times, in one run:

- ``compute_facts`` for one day (yesterday), and the whole nightly job
  (yesterday, the trailing week and the days late edits touched);
- the rebuild of a year (``compute_facts_range``, a month per transaction);
- the bare SQL aggregation over the same rows: the same lead projection and
  SELECT … GROUP BY per month, without writing a fact.

Targets (DESIGN.md): a day < 5 s; a year < 2 min, within 2 times the bare SQL.

It never writes the pipeline: the facts table is created in a schema of its
own (``kpi_bench``, first on the search path, so the job's SQL writes there and
reads ``public`` for everything else) and dropped at the end unless ``--keep``.
The database needs no ``goals`` migration for this, and gets none.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesperf.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402
from django.utils import timezone  # noqa: E402

from goals import kpis  # noqa: E402
from goals.models import DailyRepFact  # noqa: E402

SCHEMA = "kpi_bench"


def _search_path(sender: Any, connection: Any, **kwargs: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SET search_path TO {SCHEMA}, public")


def create_facts_table() -> None:
    """The facts table (with its unique key and indexes) and the weekly sums over it
    (as migration goals 0003 creates them), in the bench schema only."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        cursor.execute(f"CREATE SCHEMA {SCHEMA}")
        cursor.execute(f"SET search_path TO {SCHEMA}, public")
    connection_created.connect(_search_path)
    with connection.schema_editor() as editor:
        editor.create_model(DailyRepFact)
    weekly = importlib.import_module("goals.migrations.0003_weekly_rep_facts")
    with connection.cursor() as cursor:
        cursor.execute(weekly.CREATE)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = %s",
            [DailyRepFact._meta.db_table],
        )
        schemas = {row[0] for row in cursor.fetchall()}
    assert SCHEMA in schemas, schemas


def drop_facts_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        result = {}
        for table in ("leads_lead", "leads_estimate", "leads_deal", "leads_activity"):
            cursor.execute(f"SELECT count(*) FROM public.{table}")  # noqa: S608 - constant
            result[table] = cursor.fetchone()[0]
        cursor.execute(
            "SELECT (min(created_at) AT TIME ZONE %s)::date,"
            " (max(created_at) AT TIME ZONE %s)::date FROM public.leads_lead",
            [settings.TIME_ZONE, settings.TIME_ZONE],
        )
        first, last = cursor.fetchone()
    result["first_lead_day"], result["last_lead_day"] = first, last
    return result


def timed(label: str, action: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - began)
    best, median = min(times), statistics.median(times)
    extra = f" (best {best:.2f} s of {repeat})" if repeat > 1 else ""
    print(f"  {label:<48} {median:8.2f} s{extra}   → {result}")
    return median, result


def bare_aggregation(days: list[date]) -> int:
    """The job's SQL for these days without writing a fact: the lead projection, then per
    month the same SELECT … GROUP BY, wrapped in one more SUM per column so every column
    is computed and a single row comes back (fetching the rows would time the client).
    Rolled back: nothing stays.
    """
    select, columns = kpis.aggregation_sql()
    sums = ", ".join(f"SUM({column})" for column in columns)
    names = ", ".join((*kpis.KEY_COLUMNS, *columns))
    rows = 0
    with transaction.atomic(), connection.cursor() as cursor:
        kpis._begin(cursor)
        kpis._stage_leads(cursor, kpis.chunk_params(days))
        for month in kpis.months_of(days):
            cursor.execute(
                f"SELECT count(*), {sums} FROM ({select}) AS facts({names})",  # noqa: S608
                kpis.chunk_params(month),
            )
            rows += cursor.fetchone()[0]
        transaction.set_rollback(True)
    return rows


def reads(end: date, repeat: int) -> None:
    """kpis_for over the facts just built: a rep's month, a team's quarter, the company's year."""
    from accounts.models import Team, User
    from goals.selectors import kpis_for
    from leads.models import Deal

    # A rep (and their team) with a deal on the last day: figures that are not all zero.
    last_deal = Deal.objects.filter(close_date__lte=end).order_by("-close_date", "-pk").first()
    rep = last_deal.owner
    team = rep.team or Team.objects.order_by("pk").first()
    month_start = end.replace(day=1)
    quarter_start = (month_start - timedelta(days=62)).replace(day=1)
    scopes = [
        (f"rep {rep}, {month_start:%Y-%m}", [rep.pk], month_start, False),
        (f"team {team}, 3 months", User.objects.filter(team=team), quarter_start, False),
        ("company, 365 days", User.objects.all(), end - timedelta(days=364), True),
    ]
    for label, reps, start, unassigned in scopes:
        timed(
            label,
            lambda reps=reps, start=start, unassigned=unassigned: (
                kpis_for(reps=reps, start=start, end=end, include_unassigned=unassigned).deals_won
            ),
            repeat,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365, help="Length of the rebuild.")
    parser.add_argument("--end", help="Last day of the rebuild (default: yesterday).")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of the one-day timings.")
    parser.add_argument("--keep", action="store_true", help="Keep the bench schema's facts.")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE the pipeline tables first (planner statistics only; no data changes).",
    )
    args = parser.parse_args()

    today = timezone.localdate()
    end = date.fromisoformat(args.end) if args.end else today - timedelta(days=1)
    start = end - timedelta(days=args.days - 1)
    data = counts()
    print(f"Database {connection.settings_dict['NAME']}, time zone {settings.TIME_ZONE}")
    print(
        "  {leads_lead:,} leads, {leads_estimate:,} estimates, {leads_deal:,} deals, "
        "{leads_activity:,} activities; leads created {first_lead_day} to {last_lead_day}".format(
            **data
        )
    )
    print(f"  rebuild range {start} to {end} ({args.days} days); facts in schema {SCHEMA}")
    create_facts_table()
    try:
        if args.analyze:
            with connection.cursor() as cursor:
                for table in ("leads_lead", "leads_estimate", "leads_deal", "leads_activity"):
                    cursor.execute(f"ANALYZE public.{table}")
        print("Year")
        rebuild, rows = timed(
            "rebuild (compute_facts_range)", lambda: kpis.compute_facts_range(start, end)
        )
        bare_year, _ = timed(
            "bare SQL, same SELECTs (no writing)",
            lambda: bare_aggregation(kpis.days_between(start, end)),
        )
        rebuild_again, _ = timed(
            "rebuild again (idempotent)", lambda: kpis.compute_facts_range(start, end)
        )
        print("Day")
        day, _ = timed(
            f"compute_facts for {end}", lambda: kpis.compute_facts(days=[end]), args.repeat
        )
        bare_day, _ = timed(f"bare SQL for {end}", lambda: bare_aggregation([end]), args.repeat)
        touched, _ = timed(
            "nightly_days (which days to recompute)",
            lambda: len(kpis.nightly_days(end + timedelta(days=1))),
            args.repeat,
        )
        nightly, _ = timed(
            f"nightly({end + timedelta(days=1)})",
            lambda: kpis.nightly(end + timedelta(days=1)),
            args.repeat,
        )
        print("Reads (kpis_for: 2 queries; facts by SUM, median and repeat business from deals)")
        reads(end, args.repeat)
        print("Summary")
        print(f"  fact rows for the year: {rows:,}")
        print(
            f"  year: rebuild {rebuild:.1f} s (target < 120 s), bare SQL {bare_year:.1f} s: "
            f"{rebuild / bare_year:.2f} times (target: at most 2); rerun {rebuild_again:.1f} s"
        )
        print(
            f"  day: compute_facts {day:.2f} s, bare SQL {bare_day:.2f} s; whole nightly job "
            f"{nightly:.2f} s (target < 5 s)"
        )
        del touched
    finally:
        if not args.keep:
            drop_facts_table()


if __name__ == "__main__":
    main()
