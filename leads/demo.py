"""Demo and benchmark data for the sales pipeline (``manage.py seed_demo``).

One generator serves both scales. It tells each lead's story in order — created,
qualified through the temperature stages, MQL, SQL, then won, lost or
disqualified, or still open today — and derives every other record from that
story: the customer and its contacts, estimates, deals, activities, the lead's
history (LeadEvent) and the lead's own summary fields (stage, temperature,
reached_mql_at, reached_sql_at, decided_at, lost_reason, last_contact_at,
score). The rules the application relies on therefore hold by construction.

Rows are written with PostgreSQL ``COPY`` in chunks, never saved one by one:
``created_at`` must lie in the past (auto_now_add would overwrite it), and the
benchmark scale (a million leads) has to load in minutes. Primary keys of the
tables that other rows point to are reserved up front from their sequences
while the tables are locked against other writers. For the benchmark scale the
copies run in a background thread while the next chunk is generated, and the
tables' secondary indexes and foreign keys are dropped for the load and
rebuilt after it, in the same transaction.

Times are kept as float days relative to the reference day's local midnight
(negative: the past). Day ``n`` maps to 08:00 to 18:00 company time on
``today + n``, so every timestamp is a business hour, later days are later
instants, and a date field is the local date of its timestamp. Nothing is
dated today or later except open to-dos: the history ends before today.

Everything is drawn from ``random.Random`` with a fixed seed: the same reps,
product lines and reference day give the same data.
"""

from __future__ import annotations

import io
import json
import math
import queue
import random
import threading
import time
import unicodedata
import zoneinfo
from bisect import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from itertools import accumulate
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import translation
from django.utils.translation import gettext

from accounts.models import ProductLine, User
from leads.models import (
    CONTACT_KINDS,
    Activity,
    Contact,
    Customer,
    Deal,
    Estimate,
    Lead,
    LeadEvent,
    LostReason,
    normalise_phone,
)
from leads.scoring import (
    LeadFeatures,
    leads_rescore_open,
    score_compute,
    scoring_config,
    win_model_recompute,
)

PIPELINE_SEED = "salesperf-demo:pipeline"
LARGE_PIPELINE_SEED = "salesperf-demo:large-pipeline"

# Every email of the benchmark data ends so; it marks the large data as present.
LARGE_EMAIL_SUFFIX = ".bench.example"
NORMAL_EMAIL_SUFFIX = ".example"

HISTORY_DAYS = 365
# The tables the pipeline seed writes.
PIPELINE_TABLES = (
    Customer,
    Contact,
    Lead,
    Lead.product_lines.through,
    LeadEvent,
    Estimate,
    Deal,
    Activity,
)
NULL = "\\N"
Progress = Callable[[str], None]


# --- Who the customers are, per territory --------------------------------------


@dataclass(frozen=True)
class CustomerLocale:
    language: str
    country: str
    cities: tuple[str, ...]
    phone_prefix: str  # country and area code, digits follow
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    company_roots: tuple[str, ...]
    company_kinds: tuple[str, ...]
    company_pattern: str  # {root}, {kind}
    streets: tuple[str, ...]
    address_pattern: str  # {street}, {number}


SWEDISH = dict(
    language="sv",
    country="Sweden",
    first_names=("Anna", "Eva", "Maria", "Karin", "Lena", "Erik", "Lars", "Karl", "Per", "Jonas"),
    last_names=("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson"),
    company_roots=("Nord", "Berg", "Sjö", "Fjäll", "Lind", "Ek", "Stål", "Vind", "Ljus", "Skog"),
    company_kinds=("kraft", "bygg", "data", "teknik", "handel", "logistik", "verken", "konsult"),
    company_pattern="{root}{kind} AB",
    streets=("Storgatan", "Kungsgatan", "Drottninggatan", "Industrivägen", "Hamngatan"),
    address_pattern="{street} {number}",
)
BRAZILIAN = dict(
    language="pt-br",
    country="Brazil",
    first_names=("Ana", "Maria", "Juliana", "Patrícia", "Carla", "José", "Paulo", "Carlos"),
    last_names=("Silva", "Santos", "Oliveira", "Souza", "Lima", "Pereira", "Carvalho", "Gomes"),
    company_roots=("Alfa", "Vale", "Horizonte", "Paulista", "Atlântico", "Serra", "Nova", "Ponte"),
    company_kinds=("Tecnologia", "Logística", "Alimentos", "Comércio", "Engenharia", "Sistemas"),
    company_pattern="{root} {kind} Ltda.",
    streets=("Rua Augusta", "Avenida Paulista", "Rua das Flores", "Avenida Brasil", "Rua XV"),
    address_pattern="{street}, {number}",
)
ITALIAN = dict(
    language="it",
    country="Italy",
    first_names=("Giulia", "Francesca", "Paola", "Laura", "Giuseppe", "Marco", "Andrea", "Paolo"),
    last_names=("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Gallo", "Conti"),
    company_roots=("Lombarda", "Alpina", "Adriatica", "Aurora", "Padana", "Tirrena", "Centrale"),
    company_kinds=("Meccanica", "Impianti", "Logistica", "Alimentari", "Informatica", "Servizi"),
    company_pattern="{kind} {root} S.r.l.",
    streets=("Via Roma", "Via Garibaldi", "Corso Italia", "Via Mazzini", "Viale Europa"),
    address_pattern="{street} {number}",
)
RUSSIAN = dict(
    language="ru",
    country="Russia",
    first_names=("Анна", "Елена", "Ольга", "Мария", "Александр", "Сергей", "Андрей", "Дмитрий"),
    last_names=("Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков"),
    company_roots=("Север", "Волга", "Урал", "Нева", "Балт", "Сибирь", "Восток", "Альфа"),
    company_kinds=("строй", "торг", "снаб", "тех", "пром", "сервис", "логистик", "инвест"),
    company_pattern="ООО «{root}{kind}»",  # noqa: RUF001 - Cyrillic on purpose
    streets=("ул. Ленина", "Невский пр.", "ул. Мира", "Садовая ул.", "ул. Гагарина"),
    address_pattern="{street}, д. {number}",
)
ENGLISH = dict(
    language="en",
    country="United Kingdom",
    cities=("London", "Manchester", "Leeds", "Bristol", "Edinburgh"),
    phone_prefix="+44 20",
    first_names=("Emily", "Sophie", "Hannah", "Lucy", "Jack", "Harry", "George", "Oliver"),
    last_names=("Smith", "Jones", "Williams", "Taylor", "Davies", "Evans", "Wilson", "Hughes"),
    company_roots=("Thames", "Pennine", "Northgate", "Albion", "Kingsway", "Riverside", "Oakwood"),
    company_kinds=("Logistics", "Systems", "Engineering", "Foods", "Retail", "Consulting"),
    company_pattern="{root} {kind} Ltd",
    streets=("High Street", "Station Road", "Church Lane", "Victoria Road", "Mill Lane"),
    address_pattern="{number} {street}",
)


def _locale(base: dict[str, Any], cities: tuple[str, ...], phone_prefix: str) -> CustomerLocale:
    return CustomerLocale(**{**base, "cities": cities, "phone_prefix": phone_prefix})


# Keyed by Territory.code (accounts' demo catalogue). A territory not listed
# gets the English locale.
TERRITORY_LOCALES: dict[str, CustomerLocale] = {
    "stockholm": _locale(SWEDISH, ("Stockholm", "Uppsala", "Södertälje", "Västerås"), "+46 8"),
    "gothenburg": _locale(SWEDISH, ("Göteborg", "Borås", "Kungsbacka", "Trollhättan"), "+46 31"),
    "malmo": _locale(SWEDISH, ("Malmö", "Lund", "Helsingborg", "Ystad"), "+46 40"),
    "sao-paulo": _locale(BRAZILIAN, ("São Paulo", "Campinas", "Santos", "Guarulhos"), "+55 11"),
    "rio-de-janeiro": _locale(BRAZILIAN, ("Rio de Janeiro", "Niterói", "Petrópolis"), "+55 21"),
    "milan": _locale(ITALIAN, ("Milano", "Bergamo", "Monza", "Brescia"), "+39 02"),
    "rome": _locale(ITALIAN, ("Roma", "Latina", "Viterbo", "Tivoli"), "+39 06"),
    "moscow": _locale(RUSSIAN, ("Москва", "Химки", "Подольск", "Мытищи"), "+7 495"),
    "saint-petersburg": _locale(RUSSIAN, ("Санкт-Петербург", "Гатчина", "Пушкин"), "+7 812"),
}
ENGLISH_LOCALE = CustomerLocale(**ENGLISH)
# Online customers buy from anywhere: mostly English-speaking, the rest from the other markets.
ONLINE_LOCALES: tuple[CustomerLocale, ...] = (
    ENGLISH_LOCALE,
    ENGLISH_LOCALE,
    ENGLISH_LOCALE,
    TERRITORY_LOCALES["stockholm"],
    TERRITORY_LOCALES["sao-paulo"],
    TERRITORY_LOCALES["milan"],
    TERRITORY_LOCALES["moscow"],
)

_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        # ъ and ь are dropped.
        (
            *"abvgdee",
            "zh",
            *"ziyklmnoprstuf",
            "kh",
            "ts",
            "ch",
            "sh",
            "shch",
            *("", "y", "", "e"),
            "yu",
            "ya",
        ),
        strict=True,
    )
)


def _ascii(text: str) -> str:
    """Lower-case ASCII for email addresses: accents dropped, Cyrillic transliterated."""
    text = "".join(_CYRILLIC.get(char, char) for char in text.lower())
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(char for char in text if char.isalnum())


# --- Products and prices ----------------------------------------------------------

# (lowest, highest) amount of one sale, by product line name in lower case.
PRODUCT_PRICES: dict[str, tuple[int, int]] = {
    "software licences": (4_000, 90_000),
    "hardware": (2_000, 45_000),
    "implementation services": (8_000, 120_000),
    "support contracts": (1_500, 25_000),
    "training": (800, 12_000),
}
DEFAULT_PRICES = (2_000, 40_000)


# --- Sources, reasons, activities -----------------------------------------------

# (source, weight, brought in by marketing, share that starts as a suspect, conversion factor)
SOURCES: tuple[tuple[str, int, bool, float, float], ...] = (
    ("referral", 8, False, 0.05, 1.5),
    ("existing_customer", 7, False, 0.05, 1.6),
    ("purchased_list", 8, True, 0.75, 0.45),
    ("email_campaign", 12, True, 0.40, 0.8),
    ("inbound_content", 12, True, 0.50, 0.9),
    ("social_media", 9, True, 0.50, 0.8),
    ("webinar", 7, True, 0.30, 1.1),
    ("trade_show", 7, True, 0.25, 1.1),
    ("networking", 6, False, 0.15, 1.2),
    ("local_advertising", 4, True, 0.50, 0.7),
    ("live_chat", 8, True, 0.30, 1.0),
    ("recycled", 4, False, 0.30, 0.8),
    ("other", 3, False, 0.30, 0.8),
)
SOURCE_POINTS = {
    "referral": 20,
    "existing_customer": 20,
    "trade_show": 10,
    "webinar": 10,
    "networking": 10,
    "live_chat": 8,
    "inbound_content": 6,
    "recycled": 5,
    "email_campaign": 4,
    "social_media": 4,
    "local_advertising": 3,
    "other": 2,
    "purchased_list": 0,
}
LOST_REASONS = (
    ("price", 25),
    ("competitor", 20),
    ("no_budget", 20),
    ("product_fit", 10),
    ("delivery_delay", 6),
    ("customer_service", 5),
    ("rep_performance", 5),
    ("other", 9),
)
DISQUALIFIED_REASONS = (("no_budget", 40), ("product_fit", 30), ("competitor", 10), ("other", 20))

# Activity kinds by phase of the lead, with weights.
PHASE_KINDS: dict[str, tuple[tuple[str, int], ...]] = {
    "early": (("email", 5), ("call", 4), ("note", 2)),
    "nurture": (("call", 4), ("email", 4), ("event", 1), ("follow_up", 2), ("note", 1)),
    "qualified": (("call", 3), ("email", 3), ("meeting", 2), ("demo", 2), ("note", 1)),
    "closing": (
        ("meeting", 3),
        ("demo", 2),
        ("call", 3),
        ("email", 3),
        ("sales_meeting", 2),
        ("follow_up", 2),
    ),
}
SUBJECTS = {
    "call": ("Call with {who}", "Discovery call: {who}", "Follow-up call with {who}"),
    "email": ("Email to {who}", "Sent information to {who}", "Answered questions from {who}"),
    "meeting": ("Meeting with {who}", "Needs analysis with {who}", "On-site visit: {who}"),
    "demo": ("Product demo for {who}", "Online demo: {who}"),
    "sales_meeting": ("Pipeline review: {who}", "Deal strategy: {who}"),
    "event": ("Met {who} at a trade show", "{who} attended our webinar"),
    "follow_up": ("Follow up with {who}", "Check in with {who}"),
    "note": ("Note: {who}", "Background research on {who}"),
}
OUTCOMES = {
    "call": ("Reached, interested", "Left a voicemail", "No answer", "Asked to call back later"),
    "email": ("", "Replied", "No reply yet"),
    "meeting": ("Positive", "Needs a proposal", "Decision maker missing"),
    "demo": ("Went well", "Questions on integration", "Asked for a trial"),
}
# Activities in each stage of a lead: (kind mix, how many on average).
PHASE_ACTIVITY: dict[str, tuple[str, float]] = {
    "suspect": ("early", 0.5),
    "cold": ("nurture", 1.2),
    "warm": ("nurture", 1.2),
    "hot": ("nurture", 1.2),
    "mql": ("qualified", 1.2),
    "sql": ("closing", 3.5),
}
NEXT_STEP_KINDS = ("call", "follow_up", "email", "meeting", "demo")
CONTACT_TITLES = ("CEO", "CFO", "Purchasing manager", "IT manager", "Operations manager")
CONTACT_KIND_SET = frozenset(str(kind) for kind in CONTACT_KINDS)


# --- How leads move: one profile per scale -------------------------------------------


@dataclass(frozen=True)
class PipelineProfile:
    """How likely each step of a lead's story is, per phase: it advances, is
    disqualified, or (the rest) stalls, staying in that stage. The source of the
    lead and the rep's skill scale the chance to advance (and to win).
    """

    suspect_advance: float
    suspect_disqualify: float
    nurture_to_mql: float
    nurture_disqualify: float
    mql_to_sql: float
    mql_disqualify: float
    sql_win: float
    sql_lose: float
    lost_with_deal: float  # lost leads that had a deal on the table (a lost deal)
    second_deal: float  # won leads with two product lines that buy both
    repeat_customer: float  # SQL leads that are an existing customer buying again
    activity_factor: float  # scales the activities logged in each stage
    next_step: float  # open leads (past suspect) with a to-do for the next step
    full_history: bool  # every LeadEvent; otherwise only the "created" one


NORMAL_PROFILE = PipelineProfile(
    suspect_advance=0.78,
    suspect_disqualify=0.08,
    nurture_to_mql=0.62,
    nurture_disqualify=0.17,
    mql_to_sql=0.72,
    mql_disqualify=0.14,
    sql_win=0.48,
    sql_lose=0.47,
    lost_with_deal=0.75,
    second_deal=0.35,
    repeat_customer=0.25,
    activity_factor=1.0,
    next_step=0.75,
    full_history=True,
)

# Tuned to the benchmark's sizes (DESIGN.md): per million leads about 300,000
# estimates, 150,000 deals and 1,000,000 activities, with about 100,000
# customers. Fewer leads get far enough for a deal than in the demo, so more
# of them are still open; about a quarter of the decided ones are won.
LARGE_PROFILE = PipelineProfile(
    suspect_advance=0.72,
    suspect_disqualify=0.12,
    nurture_to_mql=0.55,
    nurture_disqualify=0.22,
    mql_to_sql=0.56,
    mql_disqualify=0.15,
    sql_win=0.50,
    sql_lose=0.44,
    lost_with_deal=0.45,
    second_deal=0.12,
    repeat_customer=0.50,
    activity_factor=0.33,
    next_step=0.25,
    full_history=False,
)


# --- Results -------------------------------------------------------------------------


@dataclass
class PipelineResult:
    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


# --- COPY writing ----------------------------------------------------------------------


def _esc(text: str) -> str:
    """A value for COPY's text format (tab-separated, backslash escapes)."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "")
        )
    return text


@dataclass(frozen=True)
class _Table:
    name: str
    db_table: str
    columns: tuple[str, ...]


def _table(name: str, model: Any, columns: Sequence[str]) -> _Table:
    db_columns = tuple(model._meta.get_field(column).column for column in columns)
    return _Table(name=name, db_table=model._meta.db_table, columns=db_columns)


def _tables() -> dict[str, _Table]:
    """Tables in the order they are copied: each only points to tables before it."""
    product_lines_through = Lead.product_lines.through
    return {
        "customers": _table(
            "customers",
            Customer,
            [
                "id",
                "kind",
                "name",
                "email",
                "phone",
                "phone_normalised",
                "address",
                "city",
                "country",
                "language",
                "territory",
                "owner",
                "notes",
                "extra",
                "created_by",
                "created_at",
                "updated_at",
            ],
        ),
        "contacts": _table(
            "contacts",
            Contact,
            ["customer", "name", "title", "email", "phone", "language", "is_primary", "created_at"],
        ),
        "leads": _table(
            "leads",
            Lead,
            [
                "id",
                "customer",
                "contact_name",
                "company_name",
                "email",
                "phone",
                "phone_normalised",
                "source",
                "territory",
                "timeframe",
                "estimated_value",
                "owner",
                "team",
                "stage",
                "temperature",
                "temperature_overridden",
                "lost_reason",
                "score",
                "score_breakdown",
                "last_contact_at",
                "reached_mql_at",
                "reached_sql_at",
                "decided_at",
                "assigned_by_rule",
                "created_by",
                "created_at",
                "updated_at",
            ],
        ),
        "lead product lines": _table(
            "lead product lines", product_lines_through, ["lead", "productline"]
        ),
        "lead events": _table(
            "lead events",
            LeadEvent,
            ["lead", "kind", "from_value", "to_value", "reason", "comment", "actor", "created_at"],
        ),
        "estimates": _table(
            "estimates",
            Estimate,
            [
                "id",
                "customer",
                "lead",
                "owner",
                "product_line",
                "title",
                "amount",
                "valid_until",
                "status",
                "issued_on",
                "decided_on",
                "created_at",
                "updated_at",
            ],
        ),
        "deals": _table(
            "deals",
            Deal,
            [
                "id",
                "customer",
                "lead",
                "estimate",
                "owner",
                "product_line",
                "territory",
                "title",
                "amount",
                "close_date",
                "status",
                "lost_reason",
                "created_at",
                "updated_at",
            ],
        ),
        "activities": _table(
            "activities",
            Activity,
            [
                "kind",
                "subject",
                "notes",
                "outcome",
                "occurred_at",
                "due_at",
                "done_at",
                "owner",
                "lead",
                "customer",
                "deal",
                "created_at",
            ],
        ),
    }


class _CopyWriter:
    """Buffers rows per table and sends them with COPY … FROM STDIN.

    ``flush`` copies the buffered tables in dependency order. Foreign keys are
    checked when each COPY ends (SET CONSTRAINTS ALL IMMEDIATE in ``_run``), so
    a bad row fails at once instead of at commit. With ``background`` the
    copies run in a thread on the same connection while the main thread
    generates the next chunk (psycopg2 releases the GIL while PostgreSQL
    works): the main thread must not use the connection until ``close``.
    """

    def __init__(self, tables: dict[str, _Table], *, background: bool) -> None:
        self.tables = tables
        self.buffers: dict[str, list[str]] = {name: [] for name in tables}
        self.counts: Counter[str] = Counter()
        self.background = background
        self._jobs: queue.Queue[list[tuple[_Table, str]] | None] = queue.Queue(maxsize=1)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def add(self, table: str, row: str) -> None:
        self.buffers[table].append(row)

    def flush(self) -> None:
        job = []
        for name, rows in self.buffers.items():
            if rows:
                job.append((self.tables[name], "\n".join(rows) + "\n"))
                self.counts[name] += len(rows)
                rows.clear()
        connection.ensure_connection()
        if not self.background:
            self._copy(connection.connection, job)
            return
        if self._thread is None:
            # Django's connection handler is per thread: the worker is given the DB-API connection.
            self._thread = threading.Thread(
                target=self._work, args=(connection.connection,), name="seed-copy", daemon=True
            )
            self._thread.start()
        self._put(job)

    def close(self) -> None:
        """Wait for the copies still running; raise what failed in them."""
        if self._thread is not None:
            if self._thread.is_alive():
                self._put(None)
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error

    def _put(self, job: list[tuple[_Table, str]] | None) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._jobs.put(job, timeout=1)
                return
            except queue.Full:
                continue

    def _work(self, raw_connection: Any) -> None:
        try:
            while (job := self._jobs.get()) is not None:
                self._copy(raw_connection, job)
        except BaseException as error:  # handed to the main thread
            self._error = error
            # Drain so the main thread's put never waits on a dead worker.
            while True:
                try:
                    self._jobs.get_nowait()
                except queue.Empty:
                    break

    @staticmethod
    def _copy(raw_connection: Any, job: list[tuple[_Table, str]]) -> None:
        with raw_connection.cursor() as cursor:
            for table, text in job:
                cursor.copy_expert(
                    f"COPY {table.db_table} ({', '.join(table.columns)}) FROM STDIN",
                    io.StringIO(text),
                    1 << 20,
                )


def _reserve_ids(models: Iterable[Any]) -> dict[str, int]:
    """The next free primary key of each model's table, other writers locked out.

    The tables are locked (SHARE ROW EXCLUSIVE: readers go on, writers wait)
    until the transaction ends, so the keys from here up are ours; the
    sequences are moved past them in ``_release_ids``.
    """
    firsts = {}
    with connection.cursor() as cursor:
        tables = ", ".join(model._meta.db_table for model in models)
        cursor.execute(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")
        for model in models:
            table = model._meta.db_table
            cursor.execute(
                f"SELECT GREATEST(nextval(pg_get_serial_sequence(%s, 'id')), "  # noqa: S608
                f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}))",
                [table],
            )
            firsts[table] = cursor.fetchone()[0]
    return firsts


def _release_ids(next_ids: dict[str, int]) -> None:
    with connection.cursor() as cursor:
        for table, next_id in next_ids.items():
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, false)", [table, next_id]
            )


@contextmanager
def _without_secondary_indexes(models: Sequence[Any], progress: Progress | None) -> Iterator[None]:
    """Load with the tables' foreign keys and secondary indexes dropped; rebuild them after.

    The usual bulk-load recipe (pg_restore does the same): building an index
    once over a million rows is several times faster than updating it a
    million times, and one validating join per foreign key beats a trigger
    per row. Everything happens in the caller's transaction, so a failure
    rolls the definitions back with the data. Primary keys and unique
    constraints stay. The tables are locked for others until the commit.
    """
    tables = [model._meta.db_table for model in models]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, quote_ident(conname), pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) "
            "ORDER BY 1, 2",
            [tables],
        )
        foreign_keys = cursor.fetchall()
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT EXISTS ("
            "  SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid"
            "  AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')) "
            "ORDER BY 1",
            [tables],
        )
        indexes = cursor.fetchall()
        for table, name, _ in foreign_keys:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
    yield
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            cursor.execute(definition)
        for table, name, definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
    if progress is not None:
        progress(
            f"  rebuilt {len(indexes)} indexes and checked {len(foreign_keys)} foreign keys "
            f"in {time.monotonic() - started:.1f} s"
        )


# --- Time -------------------------------------------------------------------------------


class _Clock:
    """Float days relative to the reference day's local midnight → timestamps and dates."""

    WORKDAY_MINUTES = 10 * 60

    def __init__(self, today: date, *, days_back: int, days_ahead: int = 400) -> None:
        tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
        self.today = today
        # Where the history ends: the reference day's local midnight.
        self.midnight = datetime.combine(today, dt_time(0), tzinfo=tz)
        self.first_day = -days_back - 5
        # Epoch seconds of 08:00 local time on each day: DST-correct.
        self.day_start = [
            int(datetime.combine(today + timedelta(days=offset), dt_time(8), tzinfo=tz).timestamp())
            for offset in range(self.first_day, days_ahead)
        ]
        self.date_text = [
            (today + timedelta(days=offset)).isoformat()
            for offset in range(self.first_day, days_ahead)
        ]
        self.weekday = [
            (today + timedelta(days=offset)).weekday()
            for offset in range(self.first_day, days_ahead)
        ]
        # Timestamps to the minute, each formatted once: a million leads need
        # millions of them and formatting dominated the generator's time.
        self._minutes: dict[int, str] = {}

    def ts(self, t: float) -> str:
        """The UTC timestamp of ``t`` for COPY, to the minute."""
        minute = math.floor(t * self.WORKDAY_MINUTES)
        text = self._minutes.get(minute)
        if text is None:
            day, of_day = divmod(minute, self.WORKDAY_MINUTES)
            epoch = self.day_start[day - self.first_day] + of_day * 60
            text = datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:00+00")
            self._minutes[minute] = text
        return text

    def datetime(self, t: float) -> datetime:
        """``t`` as an aware datetime, to the minute like ``ts``."""
        minute = math.floor(t * self.WORKDAY_MINUTES)
        day, of_day = divmod(minute, self.WORKDAY_MINUTES)
        return datetime.fromtimestamp(self.day_start[day - self.first_day] + of_day * 60, tz=UTC)

    def date(self, t: float) -> str:
        return self.date_text[math.floor(t) - self.first_day]

    def day(self, t: float) -> int:
        return math.floor(t)

    def date_of_day(self, day: int) -> str:
        return self.date_text[day - self.first_day]

    def is_weekend(self, t: float) -> bool:
        return self.weekday[math.floor(t) - self.first_day] >= 5


# --- The generator ------------------------------------------------------------------------


@dataclass
class _Rep:
    id: int
    name: str
    team_id: int | None
    team_name: str
    territories: list[tuple[int | None, str]]  # (territory id, code)
    skill: float
    # Customers of this rep: creation times (sorted) and the matching customers.
    customer_times: list[float] = field(default_factory=list)
    customers: list[_CustomerInfo] = field(default_factory=list)


@dataclass
class _Story:
    """What happened to a lead: its stage moves (time, from, to, reason), in order."""

    created: float
    timeframe: int | None  # day of the expected decision
    stage: str
    moves: list[tuple[float, str, str, str]] = field(default_factory=list)
    reached_mql: float | None = None
    reached_sql: float | None = None
    decided: float | None = None
    lost_reason: str = ""

    def move(self, at: float, stage: str, reason: str = "") -> None:
        self.moves.append((at, self.stage, stage, reason))
        self.stage = stage


@dataclass
class _CustomerInfo:
    id: int
    name: str
    is_company: bool
    contact_name: str
    email: str
    phone: str
    territory_id: int | None


@dataclass
class _ProductLineInfo:
    id: int
    name: str
    low: int
    high: int


class _Generator:
    def __init__(
        self,
        *,
        rng: random.Random,
        profile: PipelineProfile,
        reps: Sequence[User],
        product_lines: Sequence[ProductLine],
        marketing: User | None,
        today: date,
        email_suffix: str,
        writer: _CopyWriter,
        first_ids: dict[str, int],
    ) -> None:
        self.rng = rng
        self.profile = profile
        self.clock = _Clock(today, days_back=HISTORY_DAYS)
        self.writer = writer
        self.email_suffix = email_suffix
        self.marketing_id = marketing.pk if marketing else None
        self.reps = [self._rep(user) for user in reps]
        self.product_lines = [
            _ProductLineInfo(
                line.pk, line.name, *PRODUCT_PRICES.get(line.name.lower(), DEFAULT_PRICES)
            )
            for line in product_lines
        ]
        self.next_customer = first_ids[Customer._meta.db_table]
        self.next_lead = first_ids[Lead._meta.db_table]
        self.next_estimate = first_ids[Estimate._meta.db_table]
        self.next_deal = first_ids[Deal._meta.db_table]
        self.always_email = email_suffix == LARGE_EMAIL_SUFFIX
        self.hot_days: int = settings.LEAD_HOT_DAYS
        self.warm_days: int = settings.LEAD_WARM_DAYS

        self.sources = [source for source, *_ in SOURCES]
        self.source_cum = list(accumulate(weight for _, weight, *_ in SOURCES))
        self.source_info = {source: rest for source, _, *rest in SOURCES}
        self.lost_reasons = [reason for reason, _ in LOST_REASONS]
        self.lost_cum = list(accumulate(weight for _, weight in LOST_REASONS))
        self.disq_reasons = [reason for reason, _ in DISQUALIFIED_REASONS]
        self.disq_cum = list(accumulate(weight for _, weight in DISQUALIFIED_REASONS))
        self.phase_kinds = {
            phase: ([kind for kind, _ in kinds], list(accumulate(w for _, w in kinds)))
            for phase, kinds in PHASE_KINDS.items()
        }
        self._ascii_cache: dict[str, str] = {}
        self._random = rng.random
        # Scores come from the application's own rules (leads.scoring), as of the
        # end of the history, without a learned model (none exists yet).
        self.scoring = scoring_config()
        self.now = self.clock.midnight
        self._scores: dict[tuple[Any, ...], tuple[int, str]] = {}
        # Texts of the timeline as the services write them (in English, like the lead's
        # services do outside a request).
        with translation.override("en"):
            self.reason_labels = {value: str(label) for value, label in LostReason.choices}
            self.matches_timeframe = gettext("Matches the timeframe")
            self.deal_reason = gettext("Deal %(deal)s")
            self.routing_rules = {
                rep.team_id: gettext('Rule "%(rule)s" (%(strategy)s in %(team)s)')
                % {"rule": "Territory routing", "strategy": "round robin", "team": rep.team_name}
                for rep in self.reps
            }

    # -- setup

    def _rep(self, user: User) -> _Rep:
        territories = [(t.pk, t.code) for t in sorted(user.territories.all(), key=lambda t: t.code)]
        # A rep's own generator: adding a rep does not change the others' skill.
        skill = random.Random(f"{PIPELINE_SEED}:{user.email}").uniform(0.75, 1.25)  # noqa: S311
        return _Rep(
            id=user.pk,
            name=user.display_name,
            team_id=user.team_id,
            team_name=user.team.name if user.team else "",
            territories=territories or [(None, "")],
            skill=skill,
        )

    # -- small helpers

    def _one(self, items: Sequence[Any]) -> Any:
        # random.choice is several times slower, and this runs millions of times.
        return items[int(self._random() * len(items))]

    def _pick(self, items: Sequence[str], cum: Sequence[int]) -> str:
        return items[bisect(cum, self.rng.random() * cum[-1])]

    def _ascii(self, text: str) -> str:
        value = self._ascii_cache.get(text)
        if value is None:
            value = self._ascii_cache[text] = _ascii(text)
        return value

    def _locale(self, code: str) -> CustomerLocale:
        if code == "online":
            return self._one(ONLINE_LOCALES)
        return TERRITORY_LOCALES.get(code, ENGLISH_LOCALE)

    def _phone(self, locale: CustomerLocale) -> str:
        number = self.rng.randrange(1_000_000, 9_999_999)
        return f"{locale.phone_prefix} {number // 10_000} {number % 10_000:04d}"

    def _amount(self, line: _ProductLineInfo) -> int:
        # Log-uniform: many small sales, a few large ones; whole hundreds.
        value = line.low * (line.high / line.low) ** self.rng.random()
        return max(100, int(value / 100) * 100)

    def _family_name(self, locale: CustomerLocale, first_name: str) -> str:
        last = self._one(locale.last_names)
        if locale.language == "ru" and first_name[-1] in "ая":
            last += "а"  # noqa: RUF001 - Russian family names agree with a woman's first name
        return last

    def _who(self, locale: CustomerLocale) -> dict[str, Any]:
        """The person (and company) a new lead comes from."""
        rng = self.rng
        first = self._one(locale.first_names)
        last = self._family_name(locale, first)
        is_company = rng.random() < 0.7
        if is_company:
            root, kind = self._one(locale.company_roots), self._one(locale.company_kinds)
            company = locale.company_pattern.format(root=root, kind=kind)
            domain = self._ascii(root + kind)
        else:
            company, domain = "", self._one(("mail", "post"))
        return {
            "contact_name": f"{first} {last}",
            "company_name": company,
            "is_company": is_company,
            "email": f"{self._ascii(first)}.{self._ascii(last)}@{domain}{self.email_suffix}",
            "phone": self._phone(locale),
        }

    def _temperature(self, timeframe_day: float | None, t: float) -> str:
        if timeframe_day is None:
            return "cold"
        days = timeframe_day - math.floor(t)
        return "hot" if days <= self.hot_days else "warm" if days <= self.warm_days else "cold"

    # -- the lead's story

    def lead_times(self, count: int) -> list[float]:
        """Creation times over the past year, fewer at weekends, oldest first."""
        rng = self.rng
        times = []
        while len(times) < count:
            t = -HISTORY_DAYS + rng.random() * HISTORY_DAYS
            if self.clock.is_weekend(t) and rng.random() < 0.8:
                continue
            times.append(t)
        times.sort()
        return times

    def lead(self, rep: _Rep, created: float) -> None:
        """One lead and everything that follows from its story."""
        rng = self.rng
        lead_id = self.next_lead
        self.next_lead += 1

        source = self._pick(self.sources, self.source_cum)
        from_marketing, suspect_share, conversion = self.source_info[source]
        territory_id, territory_code = self._one(rep.territories)
        locale = self._locale(territory_code)
        created_by = (
            self.marketing_id if from_marketing and self.marketing_id is not None else rep.id
        )
        # Product lines of interest: mostly one, some two or three.
        roll = rng.random()
        line_count = 1 if roll < 0.68 else 2 if roll < 0.93 else 3
        lines = rng.sample(self.product_lines, min(line_count, len(self.product_lines)))

        story = self._story(
            created=created,
            starts_as_suspect=rng.random() < suspect_share,
            conversion=conversion,
            skill=rep.skill,
        )
        owner_at, routed = self._owner_at(story, from_marketing=from_marketing)
        # An owned lead is in its owner's team; marketing hands some unowned MQLs to a team.
        team_id, handed_at = rep.team_id, None
        if owner_at is None:
            team_id = None
            if story.stage == "mql" and rng.random() < 0.6:
                team_id = rep.team_id
                assert story.reached_mql is not None
                handed_at = story.reached_mql + 0.6 * (
                    min(0.0, story.reached_mql + 3) - story.reached_mql
                )

        # Who it is: an existing customer buying again, or someone new who
        # becomes a customer when the lead is sales-qualified.
        customer: _CustomerInfo | None = None
        customer_at: float | None = None
        if source in ("existing_customer", "recycled") or (
            story.reached_sql is not None and rng.random() < self.profile.repeat_customer
        ):
            known = bisect(rep.customer_times, created)
            if known:
                customer = rep.customers[rng.randrange(known)]
                customer_at = created
        if customer is None and source == "existing_customer":
            source = "referral"  # nobody to come back yet: a customer's referral instead
        if customer is not None:
            who = {
                "contact_name": customer.contact_name,
                "company_name": customer.name if customer.is_company else "",
                "is_company": customer.is_company,
                "email": customer.email,
                "phone": customer.phone,
            }
            territory_id = customer.territory_id or territory_id
        else:
            who = self._who(locale)
            if story.reached_sql is not None:
                customer_at = story.reached_sql
                customer = self._customer(rep, who, locale, territory_id, customer_at)
        # Benchmark leads always carry their marker email.
        email = who["email"] if self.always_email or rng.random() < 0.92 else ""
        phone = who["phone"] if rng.random() < 0.75 else ""
        estimated_value: int | None = sum(self._amount(line) for line in lines)
        if story.stage == "suspect" and rng.random() < 0.5:
            estimated_value = None
        name = who["company_name"] or who["contact_name"]

        estimates: list[tuple[Any, ...]] = []
        deals: list[tuple[Any, ...]] = []
        if story.reached_sql is not None and customer is not None:
            self._estimates_and_deals(story, lines, customer, estimates, deals)
        elif customer is not None and story.stage in ("hot", "mql") and rng.random() < 0.3:
            # A returning customer already asked for a first price.
            at = max(created, -20 + rng.random() * 19)
            estimates.append(
                (
                    self._next_estimate(),
                    customer,
                    lines[0],
                    self._amount(lines[0]),
                    at,
                    None,
                    "draft",
                )
            )
        activities = self._activities(
            story,
            owner_at=owner_at,
            rep_id=rep.id,
            customer=customer,
            customer_at=customer_at,
            deals=deals,
            name=name,
        )
        # Last contact and recent contacts: done contact activities, as the services count.
        last_contact = None
        recent_contacts = 0
        for kind, _, occurred, due, done, *_ in activities:
            if kind in CONTACT_KIND_SET and (due is None or done is not None) and occurred < 0:
                last_contact = occurred if last_contact is None else max(last_contact, occurred)
                recent_contacts += occurred >= -self.scoring["engagement_days"]
        if story.stage == "won":
            # Won through its deal, as deal_record records it.
            at, before, after, _ = story.moves[-1]
            title = self._deal_title(deals[0][2], deals[0][1])
            story.moves[-1] = (at, before, after, self.deal_reason % {"deal": title})

        # Temperature from the timeframe, as of today (open) or of the decision.
        temperature = self._temperature(
            story.timeframe, story.decided if story.decided is not None else 0.0
        )
        score, breakdown = self._score(
            source=source,
            temperature=temperature,
            territory_id=territory_id,
            has_lines=bool(lines),
            recent_contacts=recent_contacts,
            email=email,
            phone=phone,
            contact_name=who["contact_name"],
            company=bool(who["company_name"] or customer is not None),
            last_contact=last_contact,
            created=created,
        )

        # --- rows
        clock = self.clock
        ts = clock.ts
        add = self.writer.add
        last_change = story.moves[-1][0] if story.moves else created
        if owner_at is not None:
            last_change = max(last_change, owner_at)
        timeframe = story.timeframe
        add(
            "leads",
            "\t".join(
                (
                    str(lead_id),
                    str(customer.id) if customer is not None else NULL,
                    _esc(who["contact_name"]),
                    _esc(who["company_name"]),
                    email,
                    phone,
                    normalise_phone(phone),
                    source,
                    str(territory_id) if territory_id else NULL,
                    clock.date_of_day(timeframe) if timeframe is not None else NULL,
                    f"{estimated_value}.00" if estimated_value is not None else NULL,
                    str(rep.id) if owner_at is not None else NULL,
                    str(team_id) if team_id else NULL,
                    story.stage,
                    temperature,
                    "f",
                    story.lost_reason,
                    str(score),
                    breakdown,
                    ts(last_contact) if last_contact is not None else NULL,
                    ts(story.reached_mql) if story.reached_mql is not None else NULL,
                    ts(story.reached_sql) if story.reached_sql is not None else NULL,
                    ts(story.decided) if story.decided is not None else NULL,
                    self.routing_rules[rep.team_id] if routed else "",
                    str(created_by),
                    ts(created),
                    ts(last_change),
                )
            ),
        )
        for line in lines:
            add("lead product lines", f"{lead_id}\t{line.id}")
        self._events(
            story,
            lead_id=lead_id,
            rep=rep,
            created_by=created_by,
            owner_at=owner_at,
            routed=routed,
            handed_at=handed_at,
        )
        for estimate in estimates:
            self._write_estimate(estimate, lead_id=lead_id, owner_id=rep.id)
        for deal in deals:
            self._write_deal(deal, lead_id=lead_id, owner_id=rep.id, territory_id=territory_id)
        for (
            kind,
            subject,
            occurred,
            due,
            done,
            owner,
            customer_id,
            deal_id,
            outcome,
            made,
        ) in activities:
            add(
                "activities",
                "\t".join(
                    (
                        kind,
                        _esc(subject),
                        "",
                        outcome,
                        ts(occurred),
                        ts(due) if due is not None else NULL,
                        ts(done) if done is not None else NULL,
                        str(owner),
                        str(lead_id),
                        str(customer_id) if customer_id else NULL,
                        str(deal_id) if deal_id else NULL,
                        ts(made),
                    )
                ),
            )

    def _story(
        self, *, created: float, starts_as_suspect: bool, conversion: float, skill: float
    ) -> _Story:
        """The stages a lead went through until today, and when.

        Each phase ends in a step forward, a disqualification or a stall (the
        lead stays where it is); a step that would fall on today or later has
        not happened yet. The temperature stages follow the calendar: a lead
        with a timeframe warms up on the days its decision comes within 90 and
        30 days.
        """
        rng = self.rng
        profile = self.profile
        timeframe: int | None = None
        if rng.random() < (0.15 if starts_as_suspect else 0.65):
            roll = rng.random()
            offset = (
                rng.uniform(10, 45)
                if roll < 0.3
                else rng.uniform(45, 120)
                if roll < 0.7
                else rng.uniform(120, 300)
            )
            timeframe = math.floor(created + offset)
            if timeframe in (self.hot_days, self.warm_days):
                # The temperature would change today, after the history ends: a day later.
                timeframe += 1
        story = _Story(
            created=created,
            timeframe=timeframe,
            stage="suspect" if starts_as_suspect else self._temperature(timeframe, created),
        )
        today = 0.0

        def step(advance: float, disqualify: float, factor: float) -> str:
            # The profile's advance share scaled by source and rep; the rest is
            # split between disqualify and stall in the profile's ratio.
            rest = 1 - advance
            advance = min(0.95, advance * factor)
            roll = rng.random()
            if roll < advance:
                return "advance"
            return "disqualify" if roll < advance + (1 - advance) * disqualify / rest else "stall"

        t = created
        if story.stage == "suspect":
            result = step(profile.suspect_advance, profile.suspect_disqualify, conversion)
            nxt = t + 1 + rng.expovariate(1 / 12)
            if result == "disqualify" and nxt < today:
                self._disqualify(story, nxt)
            elif result == "advance" and nxt < today:
                story.move(nxt, self._temperature(timeframe, nxt))
                t = nxt
        if story.stage in ("cold", "warm", "hot"):
            heat = {"hot": 1.3, "warm": 1.1, "cold": 0.85}[story.stage]
            result = step(profile.nurture_to_mql, profile.nurture_disqualify, conversion * heat)
            if timeframe is not None and timeframe - t > 20:
                nxt = t + rng.uniform(0.3, 0.8) * (timeframe - t)
            else:
                nxt = t + 2 + rng.expovariate(1 / 35)
            until = today if result == "stall" else min(nxt, today)
            if timeframe is not None:
                for threshold in (self.warm_days, self.hot_days):
                    crossing = timeframe - threshold + 0.01
                    if t < crossing < until:
                        new = self._temperature(timeframe, crossing)
                        if new != story.stage:
                            story.move(crossing, new)
            if result == "disqualify" and nxt < today:
                self._disqualify(story, nxt)
            elif result == "advance" and nxt < today:
                story.move(nxt, "mql")
                story.reached_mql = t = nxt
        if story.stage == "mql":
            result = step(profile.mql_to_sql, profile.mql_disqualify, conversion * skill)
            if timeframe is not None and timeframe - t > 10:
                nxt = t + rng.uniform(0.2, 0.6) * (timeframe - t)
            else:
                nxt = t + 1 + rng.expovariate(1 / 18)
            if result == "disqualify" and nxt < today:
                self._disqualify(story, nxt)
            elif result == "advance" and nxt < today:
                story.move(nxt, "sql")
                story.reached_sql = t = nxt
        if story.stage == "sql":
            # Good reps and warm sources win more; the rest of the decided are lost.
            win = min(0.9, profile.sql_win * skill * (1.15 if conversion > 1.2 else 1.0))
            lose = (1 - win) * profile.sql_lose / (1 - profile.sql_win)
            if timeframe is not None and timeframe - t > 5:
                # Decided around the expected day, never before it became SQL.
                nxt = max(t + 0.5 + rng.random(), timeframe + rng.uniform(-10, 20))
            else:
                nxt = t + 5 + rng.expovariate(1 / 28)
            roll = rng.random()
            if roll < win + lose and nxt < today:
                if roll < win:
                    story.move(nxt, "won")
                else:
                    story.lost_reason = self._pick(self.lost_reasons, self.lost_cum)
                    if skill < 0.85 and rng.random() < 0.3:
                        story.lost_reason = "rep_performance"
                    story.move(nxt, "lost", story.lost_reason)
                story.decided = nxt
        return story

    def _disqualify(self, story: _Story, at: float) -> None:
        story.lost_reason = self._pick(self.disq_reasons, self.disq_cum)
        story.move(at, "disqualified", story.lost_reason)
        story.decided = at

    def _owner_at(self, story: _Story, *, from_marketing: bool) -> tuple[float | None, bool]:
        """When the rep got the lead (None: still unassigned), and whether routing gave it.

        Sales' own leads are theirs from the start. Marketing's are routed at
        once, or handed over when they become SQL, or still wait unassigned.
        """
        if not from_marketing:
            return story.created, False
        if self.rng.random() < 0.85:
            owner_at = story.created + self.rng.uniform(0.01, 0.9)
            if story.moves and story.moves[0][0] < owner_at:
                owner_at = (story.created + story.moves[0][0]) / 2
            return owner_at, True
        if story.reached_sql is not None:
            return story.reached_sql - 0.001, False
        return None, False

    def _events(
        self,
        story: _Story,
        *,
        lead_id: int,
        rep: _Rep,
        created_by: int,
        owner_at: float | None,
        routed: bool,
        handed_at: float | None,
    ) -> None:
        """The lead's timeline in order, worded as the services word it: created,
        assigned (by routing or to its creator), handed to a team, each stage move
        (a temperature move also as a temperature event), lost or disqualified
        with the reason's label, won through its deal."""
        ts = self.clock.ts
        add = self.writer.add
        initial = story.moves[0][1] if story.moves else story.stage
        if not self.profile.full_history:
            add(
                "lead events",
                f"{lead_id}\tcreated\t\t{initial}\t\t\t{created_by}\t{ts(story.created)}",
            )
            return
        created = story.created
        marketing = self.marketing_id
        events: list[tuple[float, str, str, str, str, int | None]] = [
            (created, "created", "", initial, "", created_by)
        ]
        if owner_at is not None:
            if routed:
                events.append(
                    (owner_at, "owner", "", rep.name, self.routing_rules[rep.team_id], None)
                )
            else:
                events.append((owner_at, "owner", "", rep.name, "", created_by))
        if handed_at is not None:
            events.append((handed_at, "team", "", rep.team_name, "", marketing))
        temperatures = ("cold", "warm", "hot")
        for at, before, after, reason in story.moves:
            # Before a rep has it, marketing works the lead.
            actor = rep.id if owner_at is not None and at >= owner_at else marketing
            if before in temperatures and after in temperatures:
                why = self.matches_timeframe
                events.append((at, "temperature", before, after, why, actor))
                events.append((at, "stage", before, after, why, actor))
            else:
                label = self.reason_labels.get(reason, reason)
                events.append((at, "stage", before, after, label, actor))
        events.sort(key=lambda event: event[0])  # stable: same instant keeps the order above
        for at, kind, before, after, reason, actor in events:
            add(
                "lead events",
                f"{lead_id}\t{kind}\t{_esc(before)}\t{_esc(after)}\t{_esc(reason[:200])}\t\t"
                f"{actor if actor is not None else NULL}\t{ts(at)}",
            )

    # -- customers

    def _customer(
        self,
        rep: _Rep,
        who: dict[str, Any],
        locale: CustomerLocale,
        territory_id: int | None,
        at: float,
    ) -> _CustomerInfo:
        """A new customer (company or person) with its contacts, created at ``at``."""
        rng = self.rng
        customer_id = self.next_customer
        self.next_customer += 1
        is_company = who["is_company"]
        name = who["company_name"] if is_company else who["contact_name"]
        customer = _CustomerInfo(
            id=customer_id,
            name=name,
            is_company=is_company,
            contact_name=who["contact_name"],
            email=who["email"],
            phone=who["phone"],
            territory_id=territory_id,
        )
        # Kept in creation order: later leads pick among customers that existed before them.
        position = bisect(rep.customer_times, at)
        rep.customer_times.insert(position, at)
        rep.customers.insert(position, customer)
        address = locale.address_pattern.format(
            street=self._one(locale.streets), number=rng.randint(1, 180)
        )
        domain = who["email"].split("@", 1)[1]
        ts = self.clock.ts(at)
        self.writer.add(
            "customers",
            "\t".join(
                (
                    str(customer_id),
                    "company" if is_company else "person",
                    _esc(name),
                    f"info@{domain}" if is_company else who["email"],
                    who["phone"],
                    normalise_phone(who["phone"]),
                    _esc(address),
                    _esc(self._one(locale.cities)),
                    locale.country,
                    locale.language,
                    str(territory_id) if territory_id else NULL,
                    str(rep.id),
                    "",
                    "{}",
                    str(rep.id),
                    ts,
                    ts,
                )
            ),
        )
        title = self._one(CONTACT_TITLES) if is_company else ""
        self.writer.add(
            "contacts",
            f"{customer_id}\t{_esc(who['contact_name'])}\t{title}\t{who['email']}\t"
            f"{who['phone']}\t{locale.language}\tt\t{ts}",
        )
        if is_company:
            for _ in range(self._one((0, 1, 1, 2))):
                first = self._one(locale.first_names)
                last = self._family_name(locale, first)
                email = f"{self._ascii(first)}.{self._ascii(last)}@{domain}"
                self.writer.add(
                    "contacts",
                    f"{customer_id}\t{_esc(first + ' ' + last)}\t{self._one(CONTACT_TITLES)}\t"
                    f"{email}\t{self._phone(locale)}\t{locale.language}\tf\t{ts}",
                )
        return customer

    # -- estimates and deals

    def _next_estimate(self) -> int:
        value = self.next_estimate
        self.next_estimate += 1
        return value

    def _next_deal(self) -> int:
        value = self.next_deal
        self.next_deal += 1
        return value

    def _estimates_and_deals(
        self,
        story: _Story,
        lines: list[_ProductLineInfo],
        customer: _CustomerInfo,
        estimates: list[tuple[Any, ...]],
        deals: list[tuple[Any, ...]],
    ) -> None:
        """Fill ``estimates`` with (id, customer, line, amount, issued, decided, status) and
        ``deals`` with (id, customer, line, amount, closed, status, reason, estimate id)."""
        rng = self.rng
        sql_at = story.reached_sql
        assert sql_at is not None
        decided = story.decided
        span = max((decided if decided is not None else 0.0) - sql_at, 0.2)
        # One estimate per product line of interest.
        if story.stage == "won":
            # The main line is bought; another one sometimes too, else its quote is turned down.
            for index, line in enumerate(lines):
                amount = self._amount(line)
                issued = sql_at + rng.uniform(0.05, 0.6) * span
                if index and rng.random() >= self.profile.second_deal:
                    estimates.append(
                        (self._next_estimate(), customer, line, amount, issued, decided, "rejected")
                    )
                    continue
                if rng.random() < 0.25:
                    # A first quote was turned down, a revised one accepted.
                    first = sql_at + (issued - sql_at) * 0.4
                    higher = int(amount * 1.15 / 100) * 100
                    estimates.append(
                        (self._next_estimate(), customer, line, higher, first, issued, "rejected")
                    )
                estimate_id = None
                if rng.random() < 0.9:  # else bought without a formal estimate
                    estimate_id = self._next_estimate()
                    estimates.append(
                        (estimate_id, customer, line, amount, issued, decided, "accepted")
                    )
                deals.append(
                    (self._next_deal(), customer, line, amount, decided, "won", "", estimate_id)
                )
        elif story.stage == "lost":
            quoted = rng.random() < 0.7
            for index, line in enumerate(lines):
                amount = self._amount(line)
                estimate_id = None
                if quoted:
                    estimate_id = self._next_estimate()
                    issued = sql_at + rng.uniform(0.05, 0.6) * span
                    status = "rejected" if rng.random() < 0.75 else "expired"
                    estimates.append((estimate_id, customer, line, amount, issued, decided, status))
                if index == 0 and rng.random() < self.profile.lost_with_deal:
                    deal_id = self._next_deal()
                    reason = story.lost_reason
                    deals.append(
                        (deal_id, customer, line, amount, decided, "lost", reason, estimate_id)
                    )
        elif story.stage == "sql":
            # Being negotiated: sent estimates (re-issued if the first ran out), or drafts.
            since = max(sql_at, -40)
            for line in lines:
                issued = since + rng.uniform(0.05, 0.9) * -since
                status = "draft" if rng.random() < 0.25 else "sent"
                estimates.append(
                    (
                        self._next_estimate(),
                        customer,
                        line,
                        self._amount(line),
                        issued,
                        None,
                        status,
                    )
                )

    @staticmethod
    def _deal_title(line: _ProductLineInfo, customer: _CustomerInfo) -> str:
        """Title of an estimate and of the deal it becomes."""
        return f"{line.name}: {customer.name}"[:200]

    def _write_estimate(self, row: tuple[Any, ...], *, lead_id: int, owner_id: int) -> None:
        estimate_id, customer, line, amount, issued, decided, status = row
        clock = self.clock
        issued_day = clock.day(issued)
        valid_until = issued_day + self._one((14, 30, 30, 30, 60))
        decided_day = clock.day(decided) if decided is not None else None
        # Expired as estimates_expire_due does it: decided on its last valid day.
        if status == "expired":
            # Nobody answered in time: it ran out before the lead was decided.
            valid_until = max(issued_day, min(valid_until, (decided_day or 0) - 1))
            decided_day = valid_until
        elif status in ("accepted", "rejected"):
            valid_until = max(valid_until, decided_day or 0)
        elif status == "sent" and valid_until < 0:
            # Sent long ago and never answered: it has expired by now.
            status = "expired"
            decided_day = valid_until
        elif status == "draft":
            valid_until = max(valid_until, 14)
        updated = decided if decided is not None and status != "sent" else issued
        self.writer.add(
            "estimates",
            "\t".join(
                (
                    str(estimate_id),
                    str(customer.id),
                    str(lead_id),
                    str(owner_id),
                    str(line.id),
                    _esc(self._deal_title(line, customer)),
                    f"{amount}.00",
                    clock.date_of_day(valid_until),
                    status,
                    clock.date_of_day(issued_day) if status != "draft" else NULL,
                    clock.date_of_day(decided_day)
                    if decided_day is not None and status not in ("draft", "sent")
                    else NULL,
                    clock.ts(issued),
                    clock.ts(max(updated, issued)),
                )
            ),
        )

    def _write_deal(
        self, row: tuple[Any, ...], *, lead_id: int, owner_id: int, territory_id: int | None
    ) -> None:
        deal_id, customer, line, amount, closed, status, reason, estimate_id = row
        ts = self.clock.ts(closed)
        self.writer.add(
            "deals",
            "\t".join(
                (
                    str(deal_id),
                    str(customer.id),
                    str(lead_id),
                    str(estimate_id) if estimate_id else NULL,
                    str(owner_id),
                    str(line.id),
                    str(territory_id) if territory_id else NULL,
                    _esc(self._deal_title(line, customer)),
                    f"{amount}.00",
                    self.clock.date(closed),
                    status,
                    reason,
                    ts,
                    ts,
                )
            ),
        )

    # -- activities

    def _activities(
        self,
        story: _Story,
        *,
        owner_at: float | None,
        rep_id: int,
        customer: _CustomerInfo | None,
        customer_at: float | None,
        deals: list[tuple[Any, ...]],
        name: str,
    ) -> list[tuple[Any, ...]]:
        """Rows (kind, subject, occurred, due, done, owner, customer id, deal id, outcome,
        created): what was done in each phase of the story, the check-in after a
        sale, and the next step of an open lead (a to-do, some overdue)."""
        rng = self.rng
        factor = self.profile.activity_factor
        # Before a rep has the lead, marketing works on it.
        marketing = self.marketing_id if self.marketing_id is not None else rep_id
        rows: list[tuple[Any, ...]] = []

        def activity(
            kind: str, at: float, due: float | None, done: float | None, deal_id: int | None
        ) -> None:
            is_done = due is None or done is not None
            rows.append(
                (
                    kind,
                    self._one(SUBJECTS[kind]).format(who=name)[:200],
                    at,
                    due,
                    done,
                    rep_id if owner_at is not None and at >= owner_at else marketing,
                    customer.id
                    if customer is not None and customer_at is not None and at >= customer_at
                    else None,
                    deal_id,
                    self._one(OUTCOMES[kind]) if is_done and kind in OUTCOMES else "",
                    # A to-do is written down a few days before it is due.
                    at if is_done else min(max(story.created, at - 3), -0.001),
                )
            )

        moves = story.moves
        end = story.decided if story.decided is not None else 0.0
        bounds = [story.created] + [move[0] for move in moves] + [end]
        stages = [moves[0][1] if moves else story.stage] + [move[2] for move in moves]
        for index, stage in enumerate(stages):
            start, stop = bounds[index], bounds[index + 1]
            if stop <= start or stage in ("won", "lost", "disqualified"):
                continue
            phase, mean = PHASE_ACTIVITY.get(stage, ("closing", 3.5))
            kinds, cum = self.phase_kinds[phase]
            for _ in range(int(mean * factor * 2 * rng.random() + 0.5)):
                at = start + (stop - start) * rng.random()
                kind = self._pick(kinds, cum)
                if rng.random() < 0.3:
                    activity(kind, at, at, at, None)  # planned as a to-do, then done
                else:
                    activity(kind, at, None, None, None)
        if deals and deals[0][5] == "won":
            # The check-in with the customer after the sale.
            at = deals[0][4] + rng.uniform(7, 30)
            if at < 0:
                activity("follow_up", at, at, at, deals[0][0])
            elif rng.random() < 0.7:
                activity("follow_up", at, at, None, deals[0][0])
        if (
            story.decided is None
            and owner_at is not None
            and rng.random() < self.profile.next_step * (1.0 if story.stage != "suspect" else 0.4)
        ):
            # The next step: a to-do due soon, or already overdue.
            due = rng.uniform(0.01, 14) if rng.random() < 0.72 else -rng.uniform(0.5, 20)
            due = max(due, story.created + 0.1)
            activity(self._one(NEXT_STEP_KINDS), due, due, None, None)
        return rows

    # -- score

    def _score(
        self,
        *,
        source: str,
        temperature: str,
        territory_id: int | None,
        has_lines: bool,
        recent_contacts: int,
        email: str,
        phone: str,
        contact_name: str,
        company: bool,
        last_contact: float | None,
        created: float,
    ) -> tuple[int, str]:
        """The score and its breakdown (JSON text for COPY) by the application's rules.

        Memoised on everything the rules look at: the decay line depends on the
        day of the last contact (or of creation), not the time, so a million leads
        need far fewer computations.
        """
        reference = last_contact if last_contact is not None else created
        key = (
            source,
            temperature,
            territory_id is None,
            has_lines,
            recent_contacts,
            bool(email),
            bool(phone),
            bool(contact_name),
            company,
            last_contact is None,
            math.floor(reference),
        )
        cached = self._scores.get(key)
        if cached is None:
            moment = self.clock.datetime(reference)
            features = LeadFeatures(
                pk=0,
                score=0,
                score_breakdown=[],
                win_probability=None,
                source=source,
                temperature=temperature,
                territory_id=territory_id,
                product_line_ids=[0] if has_lines else [],
                has_active_product_line=has_lines,
                territory_covered=territory_id is not None,  # the rep covers it
                recent_contacts=recent_contacts,
                email=email,
                phone=phone,
                contact_name=contact_name,
                company_name="x" if company else "",
                customer_id=None,
                last_contact_at=moment if last_contact is not None else None,
                created_at=moment,
            )
            result = score_compute(features, model=None, now=self.now, config=self.scoring)
            cached = self._scores[key] = (result.score, _esc(json.dumps(result.breakdown)))
        return cached


# --- Entry points -------------------------------------------------------------------------


def pipeline_exists() -> bool:
    return Lead.objects.exists()


def large_pipeline_exists() -> bool:
    return Lead.objects.filter(email__endswith=LARGE_EMAIL_SUFFIX).exists()


def _run(
    *,
    profile: PipelineProfile,
    seed: str,
    reps: Sequence[User],
    product_lines: Sequence[ProductLine],
    marketing: User | None,
    today: date,
    email_suffix: str,
    lead_counts: Sequence[int],
    chunk: int,
    rebuild_indexes: bool,
    progress: Progress | None,
) -> PipelineResult:
    """Generate ``lead_counts[i]`` leads for ``reps[i]`` and COPY everything, ``chunk`` leads
    at a time. Must run inside a transaction (the id reservation locks hold until its end)."""
    if not connection.in_atomic_block:
        # The id reservation and the dropped indexes must end with the data: commit or rollback.
        raise RuntimeError("The pipeline seed runs inside transaction.atomic().")
    started = time.monotonic()
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    total = sum(lead_counts)
    writer = _CopyWriter(_tables(), background=chunk < total)
    first_ids = _reserve_ids([Customer, Lead, Estimate, Deal])
    generator = _Generator(
        rng=rng,
        profile=profile,
        reps=reps,
        product_lines=product_lines,
        marketing=marketing,
        today=today,
        email_suffix=email_suffix,
        writer=writer,
        first_ids=first_ids,
    )
    # Leads are made oldest first (so the keys follow creation), each by a random rep.
    times = generator.lead_times(total)
    owners = [index for index, count in enumerate(lead_counts) for _ in range(count)]
    rng.shuffle(owners)
    loading = (
        _without_secondary_indexes(PIPELINE_TABLES, progress) if rebuild_indexes else nullcontext()
    )
    with connection.cursor() as cursor:
        # Foreign keys checked as each COPY ends (in order: parents first), not all at
        # commit. This also runs the checks still pending from earlier writes of the
        # transaction, which would otherwise forbid altering the tables.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with loading:
        last_report = started
        try:
            for number, (rep_index, created) in enumerate(zip(owners, times, strict=True), start=1):
                generator.lead(generator.reps[rep_index], created)
                if number % chunk == 0 or number == total:
                    writer.flush()
                    now = time.monotonic()
                    if progress is not None and (now - last_report > 5 or number == total):
                        last_report = now
                        rows = sum(writer.counts.values())
                        progress(
                            f"  {number:>9,} / {total:,} leads, {rows:,} rows "
                            f"({rows / (now - started):,.0f} rows/s)"
                        )
        finally:
            writer.close()
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # Django's default again
    _release_ids(
        {
            Customer._meta.db_table: generator.next_customer,
            Lead._meta.db_table: generator.next_lead,
            Estimate._meta.db_table: generator.next_estimate,
            Deal._meta.db_table: generator.next_deal,
        }
    )
    return PipelineResult(counts=writer.counts, seconds=time.monotonic() - started)


def _demo_reps(reps: Iterable[User]) -> list[User]:
    return sorted(
        User.objects.filter(pk__in=[rep.pk for rep in reps])
        .select_related("team")
        .prefetch_related("territories"),
        key=lambda user: user.email,
    )


def seed_pipeline(
    *,
    reps: Sequence[User],
    product_lines: Sequence[ProductLine],
    marketing: User | None,
    today: date,
    leads_per_rep: tuple[int, int] = (160, 310),
    progress: Progress | None = None,
) -> PipelineResult | None:
    """A year of history ending before ``today`` for each rep: leads in every
    stage with their customers, estimates, deals, activities and events.

    Safe to repeat: returns None and writes nothing when any lead exists.
    ``leads_per_rep`` counts the leads meant for a rep; some marketing leads
    stay unassigned, so a rep owns a little fewer.
    """
    if pipeline_exists():
        return None
    reps = _demo_reps(reps)
    if not reps:
        return PipelineResult()
    sizes = random.Random(f"{PIPELINE_SEED}:sizes")  # noqa: S311 - demo data
    counts = [sizes.randint(*leads_per_rep) for _ in reps]
    result = _run(
        profile=NORMAL_PROFILE,
        seed=PIPELINE_SEED,
        reps=reps,
        product_lines=list(product_lines),
        marketing=marketing,
        today=today,
        email_suffix=NORMAL_EMAIL_SUFFIX,
        lead_counts=counts,
        chunk=max(sum(counts), 1),
        rebuild_indexes=False,
        progress=progress,
    )
    # What the nightly jobs would have done by now: learn from the decided leads and
    # rescore the open ones with it (recording a score event where a score changed).
    end_of_history = _Clock(today, days_back=0, days_ahead=1).midnight
    win_model_recompute(now=end_of_history)
    leads_rescore_open(now=end_of_history)
    return result


def seed_large_pipeline(
    *,
    reps: Sequence[User],
    product_lines: Sequence[ProductLine],
    marketing: User | None,
    today: date,
    leads: int = 1_000_000,
    chunk: int = 25_000,
    progress: Progress | None = None,
) -> PipelineResult | None:
    """The benchmark data: ``leads`` leads over ``reps`` with, per million
    leads, about 300,000 estimates, 150,000 deals, 1,000,000 activities and
    100,000 customers; one "created" event per lead.

    Safe to repeat: returns None and writes nothing when benchmark leads exist.
    """
    if large_pipeline_exists():
        return None
    reps = _demo_reps(reps)
    if not reps:
        return PipelineResult()
    # Some reps get more leads than others (0.6x to 1.4x the average).
    sizes = random.Random(f"{LARGE_PIPELINE_SEED}:sizes")  # noqa: S311 - demo data
    weights = [sizes.uniform(0.6, 1.4) for _ in reps]
    total_weight = sum(weights)
    counts = [int(leads * weight / total_weight) for weight in weights]
    for index in range(leads - sum(counts)):
        counts[index % len(counts)] += 1
    return _run(
        profile=LARGE_PROFILE,
        seed=LARGE_PIPELINE_SEED,
        reps=reps,
        product_lines=list(product_lines),
        marketing=marketing,
        today=today,
        email_suffix=LARGE_EMAIL_SUFFIX,
        lead_counts=counts,
        chunk=chunk,
        rebuild_indexes=True,
        progress=progress,
    )


def analyze_pipeline_tables(*, vacuum: bool = False) -> None:
    """Fresh statistics for the planner after a bulk load (VACUUM also sets the
    visibility map, so index-only scans work at once; it cannot run in a transaction)."""
    tables = [model._meta.db_table for model in PIPELINE_TABLES]
    with connection.cursor() as cursor:
        cursor.execute(f"{'VACUUM (ANALYZE)' if vacuum else 'ANALYZE'} {', '.join(tables)}")
