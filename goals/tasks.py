"""Background work of the goals app. Tasks are thin: they take ISO dates and call goals.kpis."""

from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone


# On the large data set the nightly run takes about 10 s and a year's rebuild about
# 35 s (bench/bench_kpis.py); the limits leave room for a slow night.
@shared_task(soft_time_limit=20 * 60, time_limit=25 * 60)
def compute_kpis_nightly(day_iso: str | None = None) -> int:
    """The nightly KPI facts for the night before ``day_iso`` (the run's day, normally
    today): yesterday, the trailing week and the days late edits touched.

    The beat entry passes nothing: the day is then read once when the task
    starts, in the company's time zone. A rerun (or a redelivery after a worker
    died) leaves the same rows: each run recomputes whole days in one
    transaction and writes only what changed.
    """
    from goals.kpis import nightly

    today = date.fromisoformat(day_iso) if day_iso else timezone.localdate()
    return nightly(today)


@shared_task(soft_time_limit=20 * 60, time_limit=25 * 60)
def compute_kpis_rebuild(start_iso: str | None = None, end_iso: str | None = None) -> int:
    """Rebuild the facts of [start_iso, end_iso]; by default the last 400 days up to yesterday.

    Weekly, for what the nightly window cannot see (deals deleted or moved off
    an old day). Safe to repeat, like the nightly job.
    """
    from goals.kpis import compute_facts_range

    end = date.fromisoformat(end_iso) if end_iso else timezone.localdate() - timedelta(days=1)
    start = date.fromisoformat(start_iso) if start_iso else end - timedelta(days=399)
    return compute_facts_range(start, end)


@shared_task(soft_time_limit=5 * 60, time_limit=10 * 60)
def take_forecast_snapshots(day_iso: str) -> int:
    """Freeze the forecasts due on ``day_iso`` (period starts, Mondays).

    Given its day, so a retry after midnight still takes the snapshot of the day
    it was meant for; a rerun keeps the rows already taken.
    """
    from goals.forecast import forecast_snapshots_take

    return forecast_snapshots_take(today=date.fromisoformat(day_iso))


@shared_task
def take_forecast_snapshots_today() -> str:
    """The beat entry: reads today once, in the company's time zone, and queues the work."""
    day_iso = timezone.localdate().isoformat()
    take_forecast_snapshots.delay(day_iso)
    return day_iso
