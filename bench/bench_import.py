"""Benchmark of the CSV import (leads.importing): check and import of a 100,000-row file.

    DATABASE_URL=postgres://… REDIS_URL=redis://… .venv/bin/python bench/bench_import.py
        [--rows 100000] [--bad 0.02] [--duplicates 0.01] [--unassigned 0]
        [--as admin@example.com] [--large] [--keep]

Generates a CSV of leads with realistic values (names, companies, emails, phones in
several formats, sources by label or code, product lines, territories by name or
code, timeframes as ISO or DD/MM/YYYY, amounts as "1 234,50" or "1,234.50", open
stages, owners by email) and some bad rows, then times the steps through the same
functions the pages and the Celery task use (not the web layer):

- read: decode, delimiter, limits, store the ImportJob (import_job_create);
- check: every row checked, duplicates looked up (import_job_check);
- import: the rows checked again inside the transaction (the check's rows reused
  when nothing they refer to changed; duplicates looked up again), COPY of the
  leads, their product lines and history, scores, routing, commit
  (import_job_import).

Prints valid rows per second for each step and overall, the Python process's CPU
time, and the load average (other jobs on the machine change every figure). Targets: import ≥ 20,000
valid rows/s (the issue), the whole ≥ 5,000 valid rows/s (DESIGN.md).

``--large`` first makes sure the benchmark data set is there (``seed_demo --scale
large``: 100 reps in 10 teams, and the large pipeline where that command has it).
The organisation is created when missing either way. ``--unassigned`` is the share
of rows without an owner, which are routed one by one by ``leads.routing`` (with a
catch-all routing rule made for the run when the database has none).
Everything is rolled back afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import random
import sys
import time
import unicodedata
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesperf.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import ProductLine, Role, Team, Territory, User  # noqa: E402
from leads import importing  # noqa: E402
from leads.models import (  # noqa: E402
    ImportJob,
    ImportStatus,
    Lead,
    LeadEvent,
    LeadSource,
    RoutingRule,
)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "Anna Erik Maria Lars Karin Johan Sofia Marco Giulia Luca Chiara Ana João Beatriz "
    "Pedro Olga Ivan Dmitri Elena Sergei Emma Oliver Noah Mia Lucas Sara Nils Ingrid"
)
LAST_NAMES = _words(
    "Svensson Johansson Andersson Rossi Bianchi Esposito Silva Santos Oliveira Ivanov "
    "Petrova Sokolov Smith Jones Brown Nilsson Lindqvist Ferrari Costa Pereira Kuznetsova"
)
COMPANY_WORDS = _words(
    "Nordic Baltic Alpine Verde Aurora Polar Sol Atlas Vega Orion Delta Nova Prima "
    "Stella Terra Luna Borea Iris"
)
COMPANY_KINDS = ("AB", "S.p.A.", "Ltda", "OOO", "Ltd", "Group", "Industri", "Tech")
DOMAINS = ("example.com", "example.org", "example.net", "mail.example", "corp.example")
STAGES = ("", "", "suspect", "cold", "warm", "Hot", "MQL", "sql")
HEADER = (
    "Contact name,Company,Email,Phone,Source,Product lines,Territory,Timeframe,"
    "Estimated value,Stage,Owner"
)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _quote(cell: str) -> str:
    if any(char in cell for char in ',"\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def _amount(rng: random.Random) -> str:
    value = rng.randrange(50_000, 50_000_000) / 100
    style = rng.random()
    if style < 0.4:
        return f"{value:.2f}"
    if style < 0.7:
        return f"{value:,.2f}"  # 1,234.50
    return f"{value:,.2f}".replace(",", " ").replace(".", ",")  # 1 234,50


def _phone(rng: random.Random) -> str:
    digits = f"{rng.randrange(10**8, 10**9)}"
    style = rng.random()
    if style < 0.3:
        return f"+46 {digits[:2]} {digits[2:5]} {digits[5:]}"
    if style < 0.6:
        return f"0{digits[:2]}-{digits[2:5]} {digits[5:]}"
    return f"+39 {digits[:3]} {digits[3:]}"


def generate_csv(
    *,
    rows: int,
    bad_share: float,
    duplicate_share: float,
    unassigned_share: float,
    owners: list[str],
    product_lines: list[str],
    territories: list[tuple[str, str]],
    run: str,
    seed: int = 20260302,
) -> bytes:
    """The file, and nothing random about it beyond ``seed`` and ``run`` (in the emails)."""
    rng = random.Random(seed)
    today = timezone.localdate()
    sources = [*LeadSource.values, *(str(label) for label in LeadSource.labels)]
    lines = [HEADER]
    emails: list[str] = []
    for number in range(rows):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        company = (
            f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}"
        )
        email = f"{_ascii(first)}.{_ascii(last)}.{run}{number}@{rng.choice(DOMAINS)}".lower()
        if emails and rng.random() < duplicate_share:
            email = rng.choice(emails).upper()
        emails.append(email)
        lines_wanted = rng.sample(product_lines, k=rng.choice((0, 1, 1, 1, 2)))
        territory = rng.choice(territories)
        timeframe = today + timedelta(days=rng.randrange(-10, 240))
        cells = [
            f"{first} {last}",
            company,
            email,
            _phone(rng) if rng.random() < 0.8 else "",
            rng.choice(sources),
            "; ".join(lines_wanted),
            territory[rng.random() < 0.5],
            timeframe.isoformat() if rng.random() < 0.5 else timeframe.strftime("%d/%m/%Y"),
            _amount(rng) if rng.random() < 0.7 else "",
            rng.choice(STAGES),
            "" if rng.random() < unassigned_share else rng.choice(owners),
        ]
        if rng.random() < bad_share:
            broken = rng.randrange(5)
            if broken == 0:
                cells[2] = email.replace("@", " at ")
            elif broken == 1:
                cells[4] = "carrier pigeon"
            elif broken == 2:
                cells[7] = "31/02/2026"
            elif broken == 3:
                cells[8] = "lots"
            else:
                cells[9] = "won"
        lines.append(",".join(_quote(cell) for cell in cells))
    return ("\n".join(lines) + "\n").encode()


def ensure_organisation(*, large: bool) -> None:
    if large or User.objects.filter(role=Role.REP, is_active=True).count() < 10:
        call_command("seed_demo", scale="large", verbosity=0)


class TimingsHandler(logging.Handler):
    """Keeps the per-part timings that leads.importing logs after an import."""

    def __init__(self) -> None:
        super().__init__()
        self.timings: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.timings = getattr(record, "import_timings", self.timings)


def load_average() -> str:
    """The machine's load (1, 5, 15 minutes) and cores: the figures depend on it."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:>10,.0f} valid rows/s" if seconds else "—"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--bad", type=float, default=0.02, help="Share of bad rows.")
    parser.add_argument("--duplicates", type=float, default=0.01, help="Share of duplicates.")
    parser.add_argument(
        "--unassigned", type=float, default=0.0, help="Share of rows without an owner (routed)."
    )
    parser.add_argument("--as", dest="as_email", default="", help="Importer (default: an admin).")
    parser.add_argument("--large", action="store_true", help="Load the large data set first.")
    parser.add_argument("--keep", action="store_true", help="Keep the imported leads.")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="Also time PostgreSQL alone inserting the same lead rows (the lower bound).",
    )
    args = parser.parse_args()

    ensure_organisation(large=args.large)
    actor = (
        User.objects.get(email__iexact=args.as_email)
        if args.as_email
        else User.objects.filter(role=Role.ADMIN, is_active=True).order_by("pk").first()
    )
    if actor is None:
        print("No admin to import as: run `manage.py seed_demo` first.")
        return 1
    owners = list(
        User.objects.filter(role=Role.REP, is_active=True).values_list("email", flat=True)
    )
    product_lines = list(ProductLine.objects.filter(is_active=True).values_list("name", flat=True))
    territories = list(Territory.objects.filter(is_active=True).values_list("name", "code"))
    run = f"r{int(time.time())}"
    data = generate_csv(
        rows=args.rows,
        bad_share=args.bad,
        duplicate_share=args.duplicates,
        unassigned_share=args.unassigned,
        owners=owners,
        product_lines=product_lines,
        territories=territories,
        run=run,
    )
    existing = Lead.objects.count()
    print(
        f"Data set: {existing:,} leads already in the database; {len(owners)} reps, "
        f"{len(product_lines)} product lines, {len(territories)} territories."
    )
    print(
        f"File: {args.rows:,} rows, {len(data) / 1e6:.1f} MB; importing as {actor.email} "
        f"({actor.role})."
    )

    timings = TimingsHandler()
    logging.getLogger("leads.importing").addHandler(timings)
    # Everything runs in one outer transaction, rolled back at the end (unless
    # --keep): the data set stays as it was, and rows of an aborted transaction are
    # cleaned by VACUUM at once (deleted ones would wait for every older transaction
    # on the server). The import's own transaction is then a savepoint, so its
    # deferred foreign-key checks, which a real import runs at commit, are run (and
    # timed) explicitly with SET CONSTRAINTS ALL IMMEDIATE.
    with transaction.atomic():
        if args.unassigned and not RoutingRule.objects.filter(is_active=True).exists():
            # Rows without an owner are routed one by one: give them a rule to go by.
            team = Team.objects.filter(members__role=Role.REP, is_active=True).first()
            RoutingRule.objects.create(name="Benchmark: everything", team=team)
        print(f"Load average at the start: {load_average()}")
        started = time.perf_counter()
        cpu_started = time.process_time()
        job = importing.import_job_create(
            actor=actor, kind="leads", file_name=f"bench-{run}.csv", data=data
        )
        read_done = time.perf_counter()
        job = importing.import_job_map(
            job=job, actor=actor, columns=job.mapping["columns"], route=True, queue=False
        )
        job = importing.import_job_check(job_id=job.pk)
        check_done = time.perf_counter()
        cpu_check_done = time.process_time()
        assert job.status == ImportStatus.VALIDATED, job.failure
        job = importing.import_job_confirm(
            job=job, actor=actor, import_duplicates=False, queue=False
        )
        job = importing.import_job_import(job_id=job.pk)
        with connection.cursor() as cursor:
            commit_started = time.perf_counter()
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            timings.timings["commit"] = time.perf_counter() - commit_started
        import_done = time.perf_counter()
        cpu_import_done = time.process_time()
        if job.status != ImportStatus.DONE:
            print(f"The import failed: {job.failure}")
            return 1
        report(
            job=job,
            actor=actor,
            timings=timings.timings,
            steps=(
                ("read + store", read_done - started, None),
                ("check", check_done - read_done, job.valid_rows),
                ("import", import_done - check_done, job.imported_rows),
                ("overall", import_done - started, job.imported_rows),
            ),
        )
        print(
            f"  Python CPU time: check + read {cpu_check_done - cpu_started:.2f} s, "
            f"import {cpu_import_done - cpu_check_done:.2f} s (the rest of each step is "
            "PostgreSQL, or waiting for a core)"
        )
        print(f"Load average at the end: {load_average()}")
        floor_rows = dump_imported_leads(job=job, actor=actor) if args.floor else ""
        transaction.set_rollback(not args.keep)

    if not args.keep:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM {Lead._meta.db_table}, {LeadEvent._meta.db_table}")
    if floor_rows:
        seconds = copy_alone(floor_rows)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_indexes WHERE tablename = %s", [Lead._meta.db_table]
            )
            (indexes,) = cursor.fetchone()
        print(
            f"  for reference, PostgreSQL alone: COPY of the same {job.imported_rows:,} lead "
            f"rows ({indexes} indexes, foreign keys; no history, no product lines, no Python) "
            f"{seconds:.2f} s {rate(job.imported_rows, seconds)} (load {load_average()})"
        )
    return 0


def report(
    *,
    job: ImportJob,
    actor: User,
    timings: dict[str, float],
    steps: tuple[tuple[str, float, int | None], ...],
) -> None:
    unassigned = Lead.objects.filter(
        created_by=actor, owner__isnull=True, created_at=job.finished_at
    ).count()
    print(
        f"Rows: {job.total_rows:,}; valid {job.valid_rows:,}; with errors "
        f"{job.total_rows - job.valid_rows:,}; duplicates {job.duplicate_rows:,}; imported "
        f"{job.imported_rows:,} (routed {int(timings.get('routed', 0)):,}; "
        f"left unassigned {unassigned:,})."
    )
    for step, seconds, rows in steps:
        print(f"  {step:<14} {seconds:7.2f} s {'' if rows is None else rate(rows, seconds)}")
        if step == "import":
            for part in ("check", "insert", "routing", "commit"):
                if part in timings:
                    print(f"    {part:<12} {timings[part]:7.2f} s")


def dump_imported_leads(*, job: ImportJob, actor: User) -> str:
    """The imported lead rows as COPY text, to time PostgreSQL alone inserting them."""
    columns = ", ".join(importing.LEAD_COLUMNS)
    buffer = io.StringIO()
    with connection.cursor() as cursor:
        query = cursor.mogrify(
            f"COPY (SELECT {columns} FROM {Lead._meta.db_table} "  # noqa: S608
            "WHERE created_at = %s AND created_by_id = %s) TO STDOUT",
            [job.finished_at, actor.pk],
        ).decode()
        cursor.cursor.copy_expert(query, buffer)
    return buffer.getvalue()


def copy_alone(rows: str) -> float:
    """Seconds to COPY ``rows`` into the lead table with its foreign-key checks (then
    rolled back): the floor under the import's "insert" and "commit" for the leads."""
    columns = ", ".join(importing.LEAD_COLUMNS)
    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.cursor.copy_expert(
            f"COPY {Lead._meta.db_table} ({columns}) FROM STDIN", io.StringIO(rows)
        )
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return seconds


if __name__ == "__main__":
    sys.exit(main())
