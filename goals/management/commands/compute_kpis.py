"""Compute the daily KPI facts: one day, a range, or a rebuild of the last year."""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from goals.kpis import compute_facts, compute_facts_range, nightly


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = (
        "Compute the daily KPI facts (goals.DailyRepFact). Without options: the nightly "
        "job for today (yesterday, the trailing week and the days late edits touched)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--date", help="Recompute this one day (YYYY-MM-DD).")
        group.add_argument(
            "--rebuild",
            action="store_true",
            help="Recompute the last 365 days up to yesterday.",
        )
        parser.add_argument("--from", dest="start", help="First day of a range (YYYY-MM-DD).")
        parser.add_argument("--to", dest="end", help="Last day of a range (YYYY-MM-DD).")

    def handle(self, *args: Any, **options: Any) -> None:
        yesterday = timezone.localdate() - timedelta(days=1)
        ranged = options["start"] or options["end"]
        if ranged and (options["date"] or options["rebuild"]):
            raise CommandError("Give --date, --rebuild or --from/--to, not several.")
        began = time.perf_counter()
        if options["date"]:
            what = options["date"]
            rows = compute_facts(days=[_day(options["date"])])
        elif options["rebuild"] or ranged:
            end = _day(options["end"]) if options["end"] else yesterday
            start = _day(options["start"]) if options["start"] else end - timedelta(days=364)
            if end < start:
                raise CommandError("--to is before --from.")
            what = f"{start.isoformat()} to {end.isoformat()}"
            rows = compute_facts_range(start, end)
        else:
            what = f"nightly run for {timezone.localdate().isoformat()}"
            rows = nightly(timezone.localdate())
        elapsed = time.perf_counter() - began
        self.stdout.write(f"KPI facts {what}: {rows} rows in {elapsed:.2f} s")
