"""Take the forecast snapshots due on a day (the nightly job's work, by hand or for a backfill)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from goals.forecast import forecast_snapshots_take


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = (
        "Take the forecast snapshots due on a day (period starts; Mondays). Without "
        "--date: today. For past days, won-so-far comes from the facts of that day but "
        "the weighted pipeline is the one open now: a backfill is an estimate. Rows "
        "already taken are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="The day to take them for (YYYY-MM-DD).")
        parser.add_argument("--to", dest="end", help="With --date: every day up to this one.")

    def handle(self, *args: Any, **options: Any) -> None:
        start = _day(options["date"]) if options["date"] else timezone.localdate()
        end = _day(options["end"]) if options["end"] else start
        if end < start:
            raise CommandError("--to is before --date.")
        total = 0
        day = start
        while day <= end:
            total += forecast_snapshots_take(today=day)
            day += timedelta(days=1)
        what = f"{start.isoformat()} to {end.isoformat()}"
        self.stdout.write(f"Forecast snapshots {what}: {total} due")
