"""Benchmark of the lead list (server time) on the large data set.

    DATABASE_URL=postgres://… REDIS_URL=redis://… .venv/bin/python bench/bench_lead_list.py
        [--runs 30] [--migrate]

Needs ``python manage.py seed_demo --scale large`` (1,000,000 leads over 100 reps)
in the database. Each scenario is requested ``--runs`` times through Django's
test client (the whole request: middleware, scoping, queries, template), after
two warm-up requests, as a rep with the most leads, the manager of the biggest
team and an admin. Prints median and 95th percentile milliseconds, the median CPU
time of the Django process (less sensitive to other jobs on the machine than the
wall clock) and the number of SQL queries per request, with the load average.
Target (DESIGN.md): median < 100 ms.

Page 200 is measured as the list reaches it, through the Next link of page 199 (a
signed keyset cursor, made here as the view makes it), and, for information, as a
typed ``?page=200`` without a cursor, which falls back to OFFSET.
Nothing is written to the database (besides the sessions of the logins).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesperf.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.http import QueryDict  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402

from accounts.models import Role, Team, User  # noqa: E402
from leads.filters import DEFAULT_SORT, current_sort, leads_filtered  # noqa: E402
from leads.models import Lead  # noqa: E402
from leads.views_leads import LIST_FIELDS, PAGE_SIZE, _cursor  # noqa: E402

# Marks a scenario whose URL carries the cursor of the Next link that leads to its page.
KEYSET = "__keyset__"

SCENARIOS: list[tuple[str, dict[str, str]]] = [
    ("page 1, newest first", {}),
    ("filtered: stage=sql", {"stage": "sql"}),
    ("filtered: hot, score >= 40", {"temperature": "hot", "score_min": "40"}),
    ("no contact for 30 days", {"no_contact_days": "30"}),
    ("search: one word", {"q": "anna"}),
    ("search: two words", {"q": "maria silva"}),
    ("sorted: highest score", {"sort": "-score"}),
    # Page 200 as the list reaches it: the Next link of page 199 (a keyset cursor).
    ("page 200 (Next link)", {"page": "200", KEYSET: "1"}),
    ("page 200, stage=sql (Next)", {"page": "200", "stage": "sql", KEYSET: "1"}),
    # A typed ?page=200 without a cursor: the OFFSET fallback (reads 9,950 rows first).
    ("page 200 typed (OFFSET)", {"page": "200"}),
]


def pick_users() -> dict[str, User]:
    rep = (
        User.objects.filter(role=Role.REP, is_active=True)
        .annotate(lead_count=Count("leads"))
        .order_by("-lead_count")
        .first()
    )
    team = Team.objects.annotate(size=Count("members")).order_by("-size").first()
    manager = team.managers.first() if team else None
    admin = User.objects.filter(role=Role.ADMIN, is_active=True).first()
    users = {"rep": rep, "manager": manager, "admin": admin}
    missing = [role for role, user in users.items() if user is None]
    if missing:
        sys.exit(f"No {', '.join(missing)} in this database: run seed_demo --scale large first.")
    return users  # type: ignore[return-value]


def with_cursor(user: User, params: dict[str, str]) -> dict[str, str] | None:
    """``params`` plus the ``after`` cursor the Next link of the page before would carry
    (the last row of that page, signed as the view signs it); None past the end."""
    if KEYSET not in params:
        return params
    params = {name: value for name, value in params.items() if name != KEYSET}
    leads, form = leads_filtered(user=user, params=QueryDict(urlencode(params)))
    position = (int(params["page"]) - 1) * PAGE_SIZE - 1
    last = leads.only(*LIST_FIELDS).select_related("owner", "territory")[position : position + 1]
    if not last:
        return None
    sort_name = form.cleaned_data.get("sort") or DEFAULT_SORT
    return {**params, "after": _cursor(sort_name, current_sort(form), last[0])}


def measure(
    client: Client, url: str, params: dict[str, str], runs: int
) -> tuple[float, float, float, int]:
    """Median and 95th percentile wall-clock ms, median CPU ms of this process (the
    Django side, which other jobs on the machine slow down less), queries."""
    for _ in range(2):
        response = client.get(url, params)
        if response.status_code != 200:
            sys.exit(f"{url} {params} answered {response.status_code}")
    timings = []
    cpu = []
    queries = 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            start, start_cpu = time.perf_counter(), time.process_time()
            client.get(url, params)
            timings.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        queries = len(captured)
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
    return statistics.median(timings), p95, statistics.median(cpu), queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--migrate", action="store_true", help="apply migrations first")
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["testserver", *settings.ALLOWED_HOSTS]
    settings.DEBUG = False
    if args.migrate:
        call_command("migrate", verbosity=0)
    total = Lead.objects.count()
    if total < 100_000:
        print(f"Warning: only {total:,} leads; the target is measured on 1,000,000.")
    users = pick_users()
    url = reverse("leads:list")
    load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"Lead list on {total:,} leads, {args.runs} runs per scenario (server time, ms)")
    print(f"load average at the start: {load} (1, 5, 15 min; {os.cpu_count()} cores)")
    print(f"{'user':8} {'scenario':30} {'median':>8} {'p95':>8} {'cpu':>6} {'queries':>8}")
    medians = []
    for role, user in users.items():
        client = Client()
        client.force_login(user)
        for name, scenario in SCENARIOS:
            params = with_cursor(user, scenario)
            if params is None:
                print(f"{role:8} {name:30} (fewer rows than that page: skipped)")
                continue
            median, p95, cpu, queries = measure(client, url, params, args.runs)
            if "OFFSET" not in name:  # the typed-URL fallback is shown, not targeted
                medians.append(median)
            flag = "" if median < 100 else "  <-- over 100 ms"
            print(f"{role:8} {name:30} {median:8.1f} {p95:8.1f} {cpu:6.1f} {queries:8d}{flag}")
    load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"load average at the end: {load}")
    print(f"worst median (OFFSET fallback aside): {max(medians):.1f} ms (target < 100 ms)")


if __name__ == "__main__":
    main()
