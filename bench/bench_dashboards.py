"""Benchmark of the dashboards and the leaderboard (server time) on the large data set.

    DATABASE_URL=postgres://… REDIS_URL=redis://… .venv/bin/python bench/bench_dashboards.py
        [--runs 30] [--period this_month] [--explain]

Needs ``python manage.py seed_demo --scale large`` and its facts (``compute_kpis``).
Each page is requested ``--runs`` times through Django's test client (middleware,
scoping, queries, templates), after two warm-up requests: the team dashboard as
the manager of the biggest team, the company dashboard as an admin, the rep
dashboard as the rep with the most facts, and the leaderboards. Prints the
median and 95th percentile of the server time, the median SQL time and the
number of queries per request, and the slowest query of each page (``--explain``:
with its EXPLAIN ANALYZE). Target (DESIGN.md): median < 100 ms.

If the database has no rep goals for the current month, revenue goals are
created for every rep first (one ``bulk_create``), so goals, pace and coverage
are measured too. Nothing else is written (besides the sessions of the logins).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesperf.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import ProductLine, Role, Team, User  # noqa: E402
from goals.models import DailyRepFact, Goal, Metric, OwnerKind, PeriodKind  # noqa: E402
from goals.services import period_bounds  # noqa: E402


def ensure_goals() -> int:
    """Revenue goals for every rep for this month (one overall, one per product line)."""
    start, end = period_bounds(PeriodKind.MONTH, timezone.localdate())
    if Goal.objects.filter(owner_kind=OwnerKind.REP, start__lte=end, end__gte=start).exists():
        return 0
    lines = list(ProductLine.objects.filter(is_active=True)[:3])
    goals = []
    for rep in User.objects.filter(role=Role.REP, is_active=True):
        common = {
            "owner_kind": OwnerKind.REP,
            "rep": rep,
            "period_kind": PeriodKind.MONTH,
            "start": start,
            "end": end,
            "metric": Metric.REVENUE_WON,
        }
        goals.append(Goal(target=Decimal(100_000), **common))
        goals += [Goal(target=Decimal(20_000), product_line=line, **common) for line in lines]
    Goal.objects.bulk_create(goals)
    return len(goals)


def pick_users() -> dict[str, User]:
    """The manager of the biggest team, an admin, and that team's rep with the most facts."""
    team = Team.objects.annotate(size=Count("members")).order_by("-size").first()
    manager = team.managers.first() if team else None
    admin = User.objects.filter(role=Role.ADMIN, is_active=True).first()
    rep_id = (
        DailyRepFact.objects.filter(rep__role=Role.REP, rep__team=team)
        .values("rep")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("rep", flat=True)
        .first()
    )
    rep = User.objects.filter(pk=rep_id).first()
    users = {"manager": manager, "admin": admin, "rep": rep}
    missing = [role for role, user in users.items() if user is None]
    if missing:
        sys.exit(f"No {', '.join(missing)} in this database: run seed_demo --scale large first.")
    return users  # type: ignore[return-value]


def measure(
    client: Client, url: str, params: dict[str, str], runs: int
) -> tuple[float, float, float, int, tuple[float, str]]:
    for _ in range(2):
        response = client.get(url, params)
        if response.status_code != 200:
            sys.exit(f"{url} {params} answered {response.status_code}")
    timings, sql_times = [], []
    queries = 0
    slowest = (0.0, "")
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            client.get(url, params)
            timings.append((time.perf_counter() - start) * 1000)
        queries = len(captured)
        sql_times.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
        for query in captured.captured_queries:
            if float(query["time"]) * 1000 > slowest[0]:
                slowest = (float(query["time"]) * 1000, query["sql"])
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
    return statistics.median(timings), p95, statistics.median(sql_times), queries, slowest


def explain(sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        for (line,) in cursor.fetchall():
            print("      " + line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--period", default="this_month")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest")
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["testserver", *settings.ALLOWED_HOSTS]
    settings.DEBUG = False
    facts = DailyRepFact.objects.count()
    if facts < 100_000:
        print(f"Warning: only {facts:,} fact rows; run compute_kpis on the large data set.")
    created = ensure_goals()
    if created:
        print(f"Created {created:,} revenue goals for this month.")
    users = pick_users()
    team = users["manager"].managed_teams.order_by("name", "pk").first()
    params = {"period": args.period}
    pages = [
        ("team dashboard", "manager", reverse("goals:team_dashboard", args=[team.pk]), params),
        ("company dashboard", "admin", reverse("goals:company_dashboard"), params),
        ("rep dashboard", "rep", reverse("goals:rep_dashboard", args=[users["rep"].pk]), params),
        ("rep dashboard (manager)", "manager",
         reverse("goals:rep_dashboard", args=[users["rep"].pk]), params),
        ("leaderboard (rep)", "rep", reverse("goals:leaderboard"), params),
        ("leaderboard (team)", "manager", reverse("goals:leaderboard"), params),
        ("leaderboard (company)", "admin", reverse("goals:leaderboard"),
         {**params, "metric": "attainment"}),
    ]  # fmt: skip
    print(f"Dashboards on {facts:,} fact rows, {args.runs} runs per page, period {args.period}")
    # Other work on the machine slows every figure down: say how much.
    started = time.perf_counter()
    sum(range(10**6))
    calibration = (time.perf_counter() - started) * 1000
    load = os.getloadavg()[0]
    print(f"load average {load:.1f}; sum(range(10**6)) took {calibration:.0f} ms (idle: ~15-20)")
    print(f"{'page':26} {'median':>8} {'p95':>8} {'sql':>8} {'queries':>8}  slowest query (ms)")
    # The pages with a target (DESIGN.md, the issue): the team and rep dashboards.
    targets = {"team dashboard", "rep dashboard", "rep dashboard (manager)"}
    medians = []
    clients: dict[str, Client] = {}
    for name, role, url, query in pages:
        if role not in clients:
            clients[role] = Client()
            clients[role].force_login(users[role])
        median, p95, sql, queries, slowest = measure(clients[role], url, query, args.runs)
        if name in targets:
            medians.append(median)
        flag = "  <-- over 100 ms" if name in targets and median >= 100 else ""
        print(
            f"{name:26} {median:8.1f} {p95:8.1f} {sql:8.1f} {queries:8d}  "
            f"{slowest[0]:.1f}: {slowest[1][:70]}{flag}"
        )
        if args.explain:
            explain(slowest[1])
    print(f"team and rep dashboards, worst median: {max(medians):.1f} ms (target < 100 ms)")


if __name__ == "__main__":
    main()
