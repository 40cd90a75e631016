"""CSV import of leads and customers (leads/importing.py, its pages, task and command)."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import ProductLine, Role, User
from leads import importing
from leads.models import (
    Customer,
    ImportJob,
    ImportKind,
    ImportStatus,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadSource,
    RoutingRule,
    Stage,
    Temperature,
)
from leads.scoring import lead_rescore
from leads.services import customer_duplicates
from tests.conftest import Cast, client_for
from tests.factories import ProductLineFactory, TerritoryFactory, UserFactory
from tests.factories_leads import CustomerFactory, LeadFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
TODAY = NOW.date()

LEAD_HEADER = "Name,Company,Email,Phone,Source,Product,Territory,Timeframe,Value,Stage,Owner"


def csv_bytes(*lines: str, encoding: str = "utf-8") -> bytes:
    return ("\n".join(lines) + "\n").encode(encoding)


@pytest.fixture(autouse=True)
def _frozen_time() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def catalogue(db: None) -> dict[str, Any]:
    return {
        "hardware": ProductLineFactory(name="Hardware"),
        "software": ProductLineFactory(name="Software"),
        "old": ProductLineFactory(name="Fax machines", is_active=False),
        "north": TerritoryFactory(name="Stockholm", code="sthlm"),
        "closed": TerritoryFactory(name="Atlantis", code="atl", is_active=False),
    }


def upload(
    actor: User,
    data: bytes,
    *,
    kind: str = ImportKind.LEADS,
    file_name: str = "leads.csv",
) -> ImportJob:
    return importing.import_job_create(actor=actor, kind=kind, file_name=file_name, data=data)


def check(
    job: ImportJob,
    actor: User,
    capture: Any,
    *,
    columns: dict[str, int] | None = None,
    default_source: str = "",
    route: bool = True,
) -> ImportJob:
    """Map (guessed columns unless given) and run the check through the queued task."""
    with capture(execute=True):
        importing.import_job_map(
            job=job,
            actor=actor,
            columns=job.mapping["columns"] if columns is None else columns,
            default_source=default_source,
            route=route,
        )
    job.refresh_from_db()
    return job


def run_import(
    job: ImportJob, actor: User, capture: Any, *, import_duplicates: bool = False
) -> ImportJob:
    with capture(execute=True):
        importing.import_job_confirm(job=job, actor=actor, import_duplicates=import_duplicates)
    job.refresh_from_db()
    return job


def errors_of(job: ImportJob) -> list[tuple[int, str]]:
    return [(e["line"], e["reason"]) for e in job.errors if not e.get("duplicate")]


def duplicates_of(job: ImportJob) -> list[tuple[int, str]]:
    return [(e["line"], e["reason"]) for e in job.errors if e.get("duplicate")]


# --- Rows: good, bad, duplicate ------------------------------------------------------------------


def test_every_bad_row_gets_its_spreadsheet_line_and_reason(
    cast: Cast, catalogue: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    LeadFactory(email="taken@example.org", owner=cast.other_rep)  # another team's lead
    data = csv_bytes(
        LEAD_HEADER,
        "Anna Svensson,Acme AB,Anna@Acme.se,+46 70 123 45 67,Webinar,Hardware,sthlm,"
        '2026-03-20,"1 234,50",warm,alice@example.com',
        "Bad Email,,anna@,,webinar,,,,,,",
        '"Two-line',  # a quoted cell with a line break is still one spreadsheet row
        'name",,,,fax,,,,,,',
        "",  # a blank row keeps its line number but is not a row to import
        "Old Line,,,,webinar,Fax machines,,,,,",
        "Far Away,,,,webinar,,Atlantis,,,,",
        "Nowhere,,,,webinar,,Mars,,,,",
        "Bad Date,,,,webinar,,,31/02/2026,,,",
        "Bad Value,,,,webinar,,,,12abc,,",
        "Negative,,,,webinar,,,,-5,,",
        "Won Already,,,,webinar,,,,,won,",
        "Stranger,,,,webinar,,,,,,charlie@example.com",
        ",,,,webinar,,,,,,",
        "Too Many,,,,webinar,,,,,,,extra",
        "Anna Again,,anna@acme.se,,referral,,,,,,",
        "Phone Twin,,,+46 (70) 123-45-67,referral,,,,,,",
        "Known Email,,TAKEN@example.org,,referral,,,,,,",
        "Bob Fine,,bob@fine.se,,Referral from a customer,Software;Hardware,STOCKHOLM,"
        '15/06/2026,"1,234.50",MQL,',
    )
    job = upload(cast.manager, data)
    job = check(job, cast.manager, django_capture_on_commit_callbacks)

    assert job.status == ImportStatus.VALIDATED
    assert errors_of(job) == [
        (3, "Not an email address: “anna@”."),
        (4, "Unknown source “fax”: use a source from the list."),
        (6, "The product line “Fax machines” is no longer sold."),
        (7, "The territory “Atlantis” is no longer active."),
        (8, "Unknown territory “Mars”."),
        (9, "Not a date: “31/02/2026” (write it as YYYY-MM-DD or DD/MM/YYYY)."),
        (10, "Not an amount: “12abc”."),
        (11, "The estimated value cannot be negative."),
        (
            12,
            "A lead is imported in an open stage (suspect, cold, warm, hot, MQL or SQL), "
            "not “won”.",
        ),
        # charlie is in a team the manager does not manage: same words as "nobody".
        (13, "No one you can give this to has the email “charlie@example.com”."),
        (14, "Give at least a name, a company, an email or a phone."),
        (15, "This row has 12 cells but the header names 11 columns."),
    ]
    assert duplicates_of(job) == [
        (16, "Same email as line 2."),
        (17, "Same phone as line 2."),
        # Another team's lead: flagged without saying whose.
        (18, "A lead with this email already exists."),
    ]
    assert (job.total_rows, job.valid_rows, job.duplicate_rows) == (17, 5, 3)
    assert job.processed_rows == 17
    assert "Charlie" not in str(job.errors)


def test_a_row_with_several_problems_lists_them_all(
    cast: Cast, catalogue: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    job = upload(cast.rep, csv_bytes("Name,Email,Source,Timeframe", "Eve,eve@,tv,tomorrow"))
    job = check(job, cast.rep, django_capture_on_commit_callbacks)
    assert errors_of(job) == [
        (
            2,
            "Not an email address: “eve@”. Unknown source “tv”: use a source from the list. "
            "Not a date: “tomorrow” (write it as YYYY-MM-DD or DD/MM/YYYY).",
        )
    ]


def test_import_creates_the_valid_leads_with_history_score_and_temperature(
    cast: Cast, catalogue: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    cast.rep.territories.add(catalogue["north"])  # the territory is covered: score points
    data = csv_bytes(
        LEAD_HEADER,
        "Anna Svensson,Acme AB,Anna@Acme.se,+46 70 123 45 67,Webinar,Hardware,sthlm,"
        '2026-03-20,"1 234,50",,bob@example.com',
        "Bad,,x@,,webinar,,,,,,",
        'Carl,,,,referral,Software | Hardware,,15/06/2026,"1,234.50",hot,',
        "Dora,,,,email campaign,,,,,SQL,",
    )
    job = upload(cast.manager, data)
    job = check(job, cast.manager, django_capture_on_commit_callbacks)
    job = run_import(job, cast.manager, django_capture_on_commit_callbacks)

    assert job.status == ImportStatus.DONE and job.imported_rows == 3
    assert job.finished_at == NOW
    anna = Lead.objects.get(contact_name="Anna Svensson")
    assert anna.email == "anna@acme.se" and anna.phone_normalised == "46701234567"
    assert anna.owner == cast.teammate and anna.team == cast.team
    assert anna.source == LeadSource.WEBINAR and anna.territory == catalogue["north"]
    assert anna.timeframe == dt.date(2026, 3, 20) and anna.estimated_value == Decimal("1234.50")
    # 18 days away: hot, derived from the timeframe (not set by hand).
    assert anna.stage == Stage.SUSPECT and anna.temperature == Temperature.HOT
    assert not anna.temperature_overridden
    assert list(anna.product_lines.all()) == [catalogue["hardware"]]
    assert anna.created_by == cast.manager and anna.created_at == NOW
    events = list(anna.events.order_by("pk").values_list("kind", "to_value", "actor"))
    assert events == [
        (LeadEventKind.CREATED, Stage.SUSPECT, cast.manager.pk),
        (LeadEventKind.OWNER, "Bob Rep", cast.manager.pk),
    ]
    assert anna.events.get(kind=LeadEventKind.CREATED).comment == "Imported from leads.csv"

    carl = Lead.objects.get(contact_name="Carl")
    # Hot by hand while the timeframe (105 days) says cold: an override, as lead_create does.
    assert carl.stage == Stage.HOT and carl.temperature == Temperature.HOT
    assert carl.temperature_overridden
    assert set(carl.product_lines.all()) == {catalogue["software"], catalogue["hardware"]}
    assert carl.owner is None and carl.estimated_value == Decimal("1234.50")
    dora = Lead.objects.get(contact_name="Dora")
    assert dora.stage == Stage.SQL and dora.reached_mql_at == NOW == dora.reached_sql_at

    # The scores written by the import are what the scoring module gives these leads.
    for lead in Lead.objects.all():
        before = (lead.score, lead.score_breakdown, lead.win_probability)
        assert before[0] > 0
        lead_rescore(lead=lead, now=NOW)
        lead.refresh_from_db()
        assert (lead.score, lead.score_breakdown, lead.win_probability) == before
    assert errors_of(job) == [(3, "Not an email address: “x@”.")]


def test_lead_columns_are_all_the_model_writes() -> None:
    """A field added to Lead must be added to the COPY too (or the import would miss it)."""
    written = {field.column for field in Lead._meta.concrete_fields if not field.generated}
    assert set(importing.LEAD_COLUMNS) == written
    assert set(importing.CUSTOMER_COLUMNS) == {
        field.column for field in Customer._meta.concrete_fields if field.column != "id"
    }


def test_nothing_is_half_imported_when_the_insert_fails_midway(
    cast: Cast,
    catalogue: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importing, "BATCH_SIZE", 2)
    copies: list[str] = []
    real_copy = importing._copy_batch

    def failing_copy(cursor: Any, table: str, columns: tuple[str, ...], lines: list[str]) -> None:
        if table == Lead._meta.db_table and copies.count(table) == 1:
            raise RuntimeError("disk full")
        copies.append(table)
        real_copy(cursor, table, columns, lines)

    monkeypatch.setattr(importing, "_copy_batch", failing_copy)
    rows = [f"Lead {n},,lead{n}@example.org,,webinar,Hardware,,,,," for n in range(5)]
    job = upload(cast.manager, csv_bytes(LEAD_HEADER, *rows))
    job = check(job, cast.manager, django_capture_on_commit_callbacks)
    job = run_import(job, cast.manager, django_capture_on_commit_callbacks)

    assert copies.count(Lead._meta.db_table) == 1  # the first batch went in, then it failed
    assert job.status == ImportStatus.FAILED
    assert job.failure == "RuntimeError: disk full. Nothing was imported."
    assert job.imported_rows == 0
    assert not Lead.objects.exists()
    assert not LeadEvent.objects.exists()
    assert not Lead.product_lines.through.objects.exists()
    page = client_for(cast.manager).get(reverse("leads:import_detail", args=[job.pk]))
    assert "The import failed: nothing was imported." in page.content.decode()
    assert "disk full" in page.content.decode()


def test_the_import_task_can_run_twice_without_importing_twice(
    cast: Cast, catalogue: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    from leads.tasks import import_run

    job = upload(cast.rep, csv_bytes("Name,Source", "Anna,webinar", "Bo,webinar"))
    job = check(job, cast.rep, django_capture_on_commit_callbacks)
    job = run_import(job, cast.rep, django_capture_on_commit_callbacks)
    assert import_run(job_id=job.pk) == ImportStatus.DONE
    assert import_run(job_id=0) == "missing"
    assert Lead.objects.count() == 2


# --- Duplicates: skip or import ------------------------------------------------------------------


@pytest.mark.parametrize(("import_duplicates", "expected"), [(False, 2), (True, 4)])
def test_duplicates_are_skipped_or_imported_as_chosen(
    cast: Cast,
    django_capture_on_commit_callbacks: Any,
    import_duplicates: bool,
    expected: int,
) -> None:
    LeadFactory(email="known@example.org", owner=cast.other_rep)
    data = csv_bytes(
        "Name,Email,Source",
        "Anna,anna@example.org,webinar",
        "Anna twin,ANNA@example.org,webinar",
        "Known,known@example.org,webinar",
        "Bo,bo@example.org,webinar",
    )
    job = check(upload(cast.rep, data), cast.rep, django_capture_on_commit_callbacks)
    assert job.duplicate_rows == 2 and importing.importable_rows(job) == 2
    job = run_import(
        job, cast.rep, django_capture_on_commit_callbacks, import_duplicates=import_duplicates
    )
    assert job.status == ImportStatus.DONE and job.imported_rows == expected
    assert Lead.objects.filter(created_by=cast.rep).count() == expected
    rejected = list(csv.reader(io.StringIO("".join(importing.rejected_rows_csv(job)))))
    # Skipped duplicates are in the rejected rows; imported ones are not.
    assert len(rejected) == (1 if import_duplicates else 3)


# --- Limits, encodings, delimiters ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"  \n\n", "The file is empty."),
        (b"Name,Email\n", "The file has a header line but no rows to import."),
        (b"Name,Email\n\n ,\n", "The file has a header line but no rows to import."),
        (
            b"Anna,anna@example.org\nBo,bo@example.org\n",
            "The first line must name the columns (for example Name, Email, Phone); it looks "
            "like data: \u201canna@example.org\u201d. Add a header line.",
        ),
        (
            b"2026-01-01,12\n",
            "The first line must name the columns (for example Name, Email, Phone); it looks "
            "like data: \u201c2026-01-01\u201d. Add a header line.",
        ),
        (b",,\nAnna,,\n", "The first line is empty: it must name the columns."),
        (
            b"PK\x03\x04 rest of a workbook",
            "This is a spreadsheet workbook, not a CSV file: save it as \u201cCSV UTF-8\u201d "
            "in your spreadsheet and upload that.",
        ),
        (
            b"Name\x00,Email\nA\x00,b\n",
            "This does not look like a text file (it contains binary data): save it as "
            "\u201cCSV UTF-8\u201d in your spreadsheet and upload that.",
        ),
        (
            codecs.BOM_UTF16_LE + b"N\x00a\x00m\xd8",
            "The file says it is UTF-16 but cannot be read as such.",
        ),
    ],
)
def test_unreadable_files_get_a_clear_message_and_save_nothing(
    cast: Cast, data: bytes, message: str
) -> None:
    with pytest.raises(ValidationError) as error:
        upload(cast.rep, data)
    assert error.value.messages == [message]
    assert not ImportJob.objects.exists()


def test_size_and_row_limits(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importing, "MAX_ROWS", 3)
    rows = [f"Lead {n},webinar" for n in range(3)]
    assert upload(cast.rep, csv_bytes("Name,Source", *rows)).total_rows == 3
    with pytest.raises(ValidationError) as error:
        upload(cast.rep, csv_bytes("Name,Source", *rows, "One too many,webinar"))
    assert error.value.messages == [
        "The file has more than 3 rows; split it into files of at most 3 rows."
    ]
    monkeypatch.setattr(importing, "MAX_FILE_BYTES", 100)
    with pytest.raises(ValidationError) as error:
        upload(cast.rep, b"Name\n" + b"x" * 100)
    assert error.value.messages == [
        "The file is 105\xa0bytes; at most 100\xa0bytes can be imported at once: split it."
    ]
    assert ImportJob.objects.count() == 1


def test_the_upload_page_refuses_a_file_over_the_size_limit_before_reading_it(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    import leads.forms_import

    monkeypatch.setattr(leads.forms_import, "MAX_FILE_BYTES", 10)
    response = client_for(cast.rep).post(
        reverse("leads:import_upload"),
        {"kind": "leads", "file": SimpleUploadedFile("big.csv", b"Name\n" + b"x" * 20)},
    )
    assert response.status_code == 200
    assert "The file is 25\xa0bytes; at most 10\xa0bytes" in response.content.decode()
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize(
    ("data", "delimiter", "encoding", "note"),
    [
        ("Name,Email\nÅsa,asa@example.se\n".encode(), ",", "utf-8", False),
        (codecs.BOM_UTF8 + "Name;Email\nÅsa;asa@example.se\n".encode(), ";", "utf-8", False),
        ("Name\tEmail\nÅsa\tasa@example.se\n".encode("utf-16"), "\t", "utf-16", False),
        ("Namn;E-post\r\nÅsa;asa@example.se\r\n".encode("cp1252"), ";", "cp1252", True),
        # 0x81 is not Windows-1252: read as Latin-1.
        (b"Name;Email\n\x81sa;asa@example.se\n", ";", "latin-1", True),
        # A comma inside a quoted header name does not make it comma-separated.
        ('"Name, first";Email\nÅsa;asa@example.se\n'.encode(), ";", "utf-8", False),
    ],
)
def test_encoding_and_delimiter_are_detected(
    cast: Cast, data: bytes, delimiter: str, encoding: str, note: bool
) -> None:
    job = upload(cast.rep, data)
    assert job.mapping["file"] == {"delimiter": delimiter, "encoding": encoding}
    assert len(job.header) == 2 and job.total_rows == 1
    assert bool(importing.encoding_note(encoding)) is note
    rows = importing.preview_rows(job.content, delimiter=delimiter)
    assert rows[0][1] == "asa@example.se"
    if encoding != "latin-1":
        assert rows[0][0] == "Åsa"


def test_the_page_says_how_a_non_utf8_file_was_read(cast: Cast) -> None:
    job = upload(cast.rep, "Namn;E-post\nÅsa;asa@example.se\n".encode("cp1252"))
    page = client_for(cast.rep).get(reverse("leads:import_detail", args=[job.pk])).content
    assert "it was read as Windows-1252" in page.decode()
    assert "Åsa" in page.decode()


# --- Mapping guesses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            ["Full name", "Company", "E-mail", "Phone number", "Lead source", "Notes"],
            {"contact_name": 0, "company_name": 1, "email": 2, "phone": 3, "source": 4},
        ),
        (
            ["Nome", "Empresa", "E-mail", "Telefone", "Origem", "Território"],
            {
                "contact_name": 0,
                "company_name": 1,
                "email": 2,
                "phone": 3,
                "source": 4,
                "territory": 5,
            },
        ),
        (
            ["Namn", "Företag", "E-post", "Telefon", "Källa", "Värde"],
            {
                "contact_name": 0,
                "company_name": 1,
                "email": 2,
                "phone": 3,
                "source": 4,
                "estimated_value": 5,
            },
        ),
        (
            ["Nominativo", "Azienda", "Email", "Cellulare", "Prodotto", "Scadenza"],
            {
                "contact_name": 0,
                "company_name": 1,
                "email": 2,
                "phone": 3,
                "product_lines": 4,
                "timeframe": 5,
            },
        ),
        (
            ["Имя", "Компания", "Электронная почта", "Мобильный", "Источник", "Стадия"],
            {
                "contact_name": 0,
                "company_name": 1,
                "email": 2,
                "phone": 3,
                "source": 4,
                "stage": 5,
            },
        ),
        # Words inside longer names; the email column does not become the contact's name.
        (
            ["Contact email", "Contact phone", "Contact name"],
            {"email": 0, "phone": 1, "contact_name": 2},
        ),
    ],
)
def test_mapping_is_guessed_from_column_names(
    cast: Cast, header: list[str], expected: dict[str, int]
) -> None:
    assert importing.guess_mapping(header=header, kind=ImportKind.LEADS, user=cast.rep) == expected


def test_the_owner_column_is_guessed_only_for_those_who_may_assign(cast: Cast) -> None:
    header = ["Name", "Owner"]
    assert "owner" not in importing.guess_mapping(header=header, kind="leads", user=cast.rep)
    assert importing.guess_mapping(header=header, kind="leads", user=cast.manager) == {
        "contact_name": 0,
        "owner": 1,
    }
    customers = importing.guess_mapping(
        header=["Kund", "Stad", "Land", "Språk"], kind="customers", user=cast.rep
    )
    assert customers == {"name": 0, "city": 1, "country": 2, "language": 3}


@pytest.mark.parametrize(
    ("columns", "default_source", "message"),
    [
        (
            {"source": 1},
            "",
            "Choose at least one column for the contact name, company, email or phone.",
        ),
        ({"contact_name": 0}, "", "Choose the source column, or a source for all rows."),
        (
            {"contact_name": 0, "owner": 1},
            "webinar",
            "These fields cannot be imported here: owner.",
        ),
        ({"contact_name": 9}, "webinar", "Choose columns of the file."),
        ({"contact_name": 0, "email": 0}, "webinar", "Each column can fill only one field."),
    ],
)
def test_a_mapping_without_what_is_needed_is_refused(
    cast: Cast, columns: dict[str, int], default_source: str, message: str
) -> None:
    job = upload(cast.rep, csv_bytes("Name,Source", "Anna,webinar"))
    with pytest.raises(ValidationError) as error:
        importing.import_job_map(
            job=job, actor=cast.rep, columns=columns, default_source=default_source, queue=False
        )
    assert error.value.messages == [message]
    job.refresh_from_db()
    assert job.status == ImportStatus.UPLOADED


def test_a_default_source_fills_rows_without_one(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    job = upload(cast.rep, csv_bytes("Name,Source", "Anna,", "Bo,referral"))
    job = check(job, cast.rep, django_capture_on_commit_callbacks, default_source="trade_show")
    run_import(job, cast.rep, django_capture_on_commit_callbacks)
    assert dict(Lead.objects.values_list("contact_name", "source")) == {
        "Anna": LeadSource.TRADE_SHOW,
        "Bo": LeadSource.REFERRAL,
    }


# --- Values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234", "1234.00"),
        ("1234.5", "1234.50"),
        ("12,5", "12.50"),
        ("1 234,50", "1234.50"),
        ("1\u00a0234,50", "1234.50"),
        ("1.234,50", "1234.50"),
        ("1,234.50", "1234.50"),
        ("1,234", "1234.00"),
        ("1.234.567", "1234567.00"),
        ("€ 1 234,50", "1234.50"),
        ("1234.50 kr", "1234.50"),
        ("1'234.50", "1234.50"),
    ],
)
def test_amounts_in_the_usual_ways(text: str, expected: str) -> None:
    assert importing.parse_amount(text) == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "Not an amount: “abc”."),
        ("1,2,3", "Not an amount: “1,2,3”."),
        ("1.234.56", "Not an amount: “1.234.56”."),
        ("0,125", "“0,125” has more than two decimals."),
        ("-5", "The estimated value cannot be negative."),
        ("1000000000000", "“1000000000000” is too large."),
        ("12 abc 3", "Not an amount: “12 abc 3”."),
    ],
)
def test_bad_amounts_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.") + "$"):
        importing.parse_amount(text)


@pytest.mark.parametrize(
    ("text", "formats", "expected"),
    [
        ("2026-03-31", (), dt.date(2026, 3, 31)),
        ("2026-03-31 00:00:00", (), dt.date(2026, 3, 31)),
        ("31/03/2026", (), dt.date(2026, 3, 31)),
        ("31.03.2026", (), dt.date(2026, 3, 31)),
        ("1/4/2026", (), dt.date(2026, 4, 1)),  # day first, whatever the language
        ("12/31/2026", ("%m/%d/%Y",), dt.date(2026, 12, 31)),  # the user's locale after
        ("31/02/2026", (), None),
        ("soon", (), None),
    ],
)
def test_dates(text: str, formats: tuple[str, ...], expected: dt.date | None) -> None:
    assert importing.parse_date(text, formats=formats) == expected


def test_sources_and_stages_are_read_by_code_or_label_in_any_case(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    data = csv_bytes(
        "Name,Source,Stage",
        "A,TRADE_SHOW,Cold",
        "B,Trade show or event,mql",
        "C,LinkedIn,",
        "D,Webinário,",  # not a label in any language
        "E,referral from a customer,SUSPECT",
    )
    job = check(upload(cast.rep, data), cast.rep, django_capture_on_commit_callbacks)
    assert [line for line, _reason in errors_of(job)] == [5]
    assert "Webinário" in errors_of(job)[0][1]
    job = run_import(job, cast.rep, django_capture_on_commit_callbacks)
    assert sorted(Lead.objects.values_list("contact_name", "source", "stage")) == [
        ("A", LeadSource.TRADE_SHOW, Stage.COLD),
        ("B", LeadSource.TRADE_SHOW, Stage.MQL),
        ("C", LeadSource.SOCIAL_MEDIA, Stage.SUSPECT),
        ("E", LeadSource.REFERRAL, Stage.SUSPECT),
    ]


# --- Who imports what ----------------------------------------------------------------------------


def test_reps_import_leads_they_own(cast: Cast, django_capture_on_commit_callbacks: Any) -> None:
    job = check(
        upload(cast.rep, csv_bytes("Name,Source", "Anna,webinar")),
        cast.rep,
        django_capture_on_commit_callbacks,
    )
    run_import(job, cast.rep, django_capture_on_commit_callbacks)
    lead = Lead.objects.get()
    assert lead.owner == cast.rep and lead.team == cast.team


def test_marketing_imports_unassigned_leads_that_stay_unassigned_when_not_routed(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    RoutingRule.objects.create(name="All to North", team=cast.team)
    data = csv_bytes("Name,Source,Stage", "Anna,webinar,mql", "Bo,webinar,sql")
    job = check(
        upload(cast.marketing, data),
        cast.marketing,
        django_capture_on_commit_callbacks,
        route=False,
    )
    run_import(job, cast.marketing, django_capture_on_commit_callbacks)
    owners = dict(Lead.objects.values_list("contact_name", "owner"))
    # SQL leads are always routed (as lead_create does); the others stay with marketing.
    assert owners["Anna"] is None
    assert owners["Bo"] in {cast.rep.pk, cast.teammate.pk}


def test_unassigned_leads_are_routed_after_the_insert(
    cast: Cast, catalogue: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    RoutingRule.objects.create(
        name="Hardware to North", team=cast.team, product_line=catalogue["hardware"]
    )
    data = csv_bytes(
        "Name,Source,Product,Owner",
        "Anna,webinar,Hardware,",
        "Bo,webinar,Hardware,",
        "Carl,webinar,Software,",
        "Dora,webinar,Hardware,charlie@example.com",
    )
    job = check(upload(cast.admin, data), cast.admin, django_capture_on_commit_callbacks)
    job = run_import(job, cast.admin, django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.DONE
    owners = dict(Lead.objects.values_list("contact_name", "owner"))
    assert {owners["Anna"], owners["Bo"]} == {cast.rep.pk, cast.teammate.pk}  # round robin
    assert owners["Carl"] is None  # no rule for software
    assert owners["Dora"] == cast.other_rep.pk  # the admin named the owner
    anna = Lead.objects.get(contact_name="Anna")
    assert anna.assigned_by_rule.startswith('Rule "Hardware to North"')


def test_managers_name_owners_in_their_teams_only(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    inactive = UserFactory(email="gone@example.com", team=cast.team, is_active=False)
    data = csv_bytes(
        "Name,Source,Owner",
        "Anna,webinar,BOB@example.com",
        "Bo,webinar,charlie@example.com",
        f"Carl,webinar,{inactive.email}",
        "Dora,webinar,marketing@example.com",
        "Eve,webinar,",
    )
    job = check(upload(cast.manager, data), cast.manager, django_capture_on_commit_callbacks)
    assert [line for line, _reason in errors_of(job)] == [3, 4, 5]
    run_import(job, cast.manager, django_capture_on_commit_callbacks)
    owners = dict(Lead.objects.values_list("contact_name", "owner"))
    assert owners == {"Anna": cast.teammate.pk, "Eve": None}


def test_marketing_cannot_import_customers(cast: Cast) -> None:
    with pytest.raises(ValidationError) as error:
        upload(cast.marketing, csv_bytes("Name", "Acme"), kind=ImportKind.CUSTOMERS)
    assert error.value.messages == ["You cannot import customers."]
    page = client_for(cast.marketing).get(reverse("leads:import_upload")).content.decode()
    assert 'value="customers"' not in page
    response = client_for(cast.marketing).post(
        reverse("leads:import_upload"),
        {"kind": "customers", "file": SimpleUploadedFile("c.csv", b"Name\nAcme\n")},
    )
    assert response.status_code == 200 and not ImportJob.objects.exists()


# --- Customers -----------------------------------------------------------------------------------


def test_customers_import_with_checks_and_duplicates(
    cast: Cast, catalogue: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    CustomerFactory(
        name="Known AB",
        email="info@known.se",
        phone="08-123 456",
        phone_normalised="08123456",
        owner=cast.other_rep,
    )
    data = csv_bytes(
        "Name;Type;Email;Phone;City;Language;Territory;Notes",
        "Acme AB;company;Info@Acme.se;+46 8 555 01;Stockholm;Svenska;sthlm;Met at =fair",
        "Pessoa Silva;Person;pessoa@example.br;;São Paulo;pt-br;;",
        ";company;nameless@example.se;;;;;",
        "Odd;robot;odd@;;;klingon;Mars;",
        "Known ab;;;;;;;",
        "Other;;info@known.se;;;;;",
        "Phone twin;;;08 123 456;;;;",
        "ACME AB;;;;;;;",
    )
    job = upload(cast.rep, data, kind=ImportKind.CUSTOMERS, file_name="customers.csv")
    job = check(job, cast.rep, django_capture_on_commit_callbacks)
    assert errors_of(job) == [
        (4, "A customer needs a name."),
        (
            5,
            "Unknown kind “robot”: company or person. Not an email address: “odd@”. "
            "Unknown language “klingon”. Unknown territory “Mars”.",
        ),
    ]
    assert duplicates_of(job) == [
        (6, "A customer with this name already exists."),
        (7, "A customer with this email already exists."),
        (8, "A customer with this phone already exists."),
        (9, "Same name as line 2."),
    ]
    # The set-based check follows services.customer_duplicates' rule.
    assert customer_duplicates(name="known ab").exists()
    assert customer_duplicates(phone="08 123 456").exists()
    job = run_import(job, cast.rep, django_capture_on_commit_callbacks)
    assert job.imported_rows == 2
    acme = Customer.objects.get(name="Acme AB")
    assert acme.email == "info@acme.se" and acme.phone_normalised == "46855501"
    assert acme.language == "sv" and acme.territory == catalogue["north"]
    assert acme.owner == cast.rep and acme.created_by == cast.rep
    assert acme.notes == "Met at =fair" and acme.extra == {}
    pessoa = Customer.objects.get(name="Pessoa Silva")
    assert pessoa.kind == "person" and pessoa.language == "pt-br" and pessoa.city == "São Paulo"


def test_admins_import_customers_for_anyone_or_nobody(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    data = csv_bytes("Name,Owner", "Acme,charlie@example.com", "Beta,")
    job = check(
        upload(cast.admin, data, kind=ImportKind.CUSTOMERS),
        cast.admin,
        django_capture_on_commit_callbacks,
    )
    run_import(job, cast.admin, django_capture_on_commit_callbacks)
    assert dict(Customer.objects.values_list("name", "owner")) == {
        "Acme": cast.other_rep.pk,
        "Beta": None,
    }


# --- Rejected rows CSV ---------------------------------------------------------------------------


def test_rejected_rows_download_has_the_original_cells_line_and_reason_neutralised(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    data = csv_bytes(
        "Name;Email;Source",
        "Good;good@example.org;webinar",
        '=HYPERLINK("http://evil");x@;webinar',
        "+cmd;-1@;@sum",
        '"Multi',
        'line";;tv',
    )
    job = check(
        upload(cast.rep, data, file_name="Källa.csv"), cast.rep, django_capture_on_commit_callbacks
    )
    response = client_for(cast.rep).get(reverse("leads:import_rejected", args=[job.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert "K%C3%A4lla-rejected.csv" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:]), delimiter=";"))
    assert rows == [
        ["Name", "Email", "Source", "line", "reason"],
        [
            '\'=HYPERLINK("http://evil")',
            "x@",
            "webinar",
            "3",
            "Not an email address: “x@”.",
        ],
        [
            "'+cmd",
            "'-1@",
            "'@sum",
            "4",
            "Not an email address: “-1@”. Unknown source “@sum”: use a source from the list.",
        ],
        ["Multi\nline", "", "tv", "5", "Unknown source “tv”: use a source from the list."],
    ]


# --- The pages, end to end -----------------------------------------------------------------------


def test_upload_preview_map_check_and_import_through_the_pages(
    cast: Cast, catalogue: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    client = client_for(cast.manager)
    page = client.get(reverse("leads:import_upload"))
    assert page.status_code == 200 and "No imports yet." in page.content.decode()
    data = csv_bytes(
        "Nome;E-mail;Origem;Responsável",
        "Ana;ana@example.br;webinar;bob@example.com",
        "Bad;ana@;webinar;",
    )
    response = client.post(
        reverse("leads:import_upload"),
        {"kind": "leads", "file": SimpleUploadedFile("../../etc/leads.csv", data)},
    )
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("leads:import_detail", args=[job.pk])
    assert job.file_name == "leads.csv" and job.uploaded_by == cast.manager

    page = client.get(response["Location"]).content.decode()
    assert "ana@example.br" in page  # the preview
    assert '<option value="contact_name" selected>' in page  # the guesses
    assert "semicolon separated" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("leads:import_detail", args=[job.pk]),
            {
                "column_0": "contact_name",
                "column_1": "email",
                "column_2": "source",
                "column_3": "owner",
                "default_source": "",
                "route": "on",
            },
        )
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == ImportStatus.VALIDATED
    page = client.get(reverse("leads:import_detail", args=[job.pk])).content.decode()
    assert "Not an email address: “ana@”." in page
    assert reverse("leads:import_rejected", args=[job.pk]) in page
    assert "1 row will be imported" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("leads:import_confirm", args=[job.pk]), {"duplicates": "skip"}
        )
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    page = client.get(reverse("leads:import_detail", args=[job.pk])).content.decode()
    assert "1 row was imported." in page
    assert Lead.objects.get().owner == cast.teammate
    # Done: the confirmation cannot be sent again.
    response = client.post(reverse("leads:import_confirm", args=[job.pk]), {"duplicates": "skip"})
    assert Lead.objects.count() == 1


def test_a_mapping_error_shows_on_the_form_and_saves_nothing(cast: Cast) -> None:
    job = upload(cast.rep, csv_bytes("Name,Email", "Ana,ana@example.br"))
    response = client_for(cast.rep).post(
        reverse("leads:import_detail", args=[job.pk]),
        {"column_0": "email", "column_1": "email", "default_source": "webinar"},
    )
    assert response.status_code == 200
    assert "Email is already filled by the column “Name”." in response.content.decode()
    response = client_for(cast.rep).post(
        reverse("leads:import_detail", args=[job.pk]),
        {"column_0": "contact_name", "column_1": "email", "default_source": ""},
    )
    assert "Choose the source column, or a source for all rows." in response.content.decode()
    job.refresh_from_db()
    assert job.status == ImportStatus.UPLOADED


def test_an_import_cannot_be_remapped_or_confirmed_while_running(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    job = upload(cast.rep, csv_bytes("Name,Source", "Ana,webinar"))
    job = importing.import_job_map(
        job=job, actor=cast.rep, columns={"contact_name": 0, "source": 1}, queue=False
    )
    assert job.status == ImportStatus.VALIDATING
    with pytest.raises(ValidationError):
        importing.import_job_map(job=job, actor=cast.rep, columns={"contact_name": 0}, queue=False)
    with pytest.raises(ValidationError):
        importing.import_job_confirm(job=job, actor=cast.rep, import_duplicates=False)
    response = client_for(cast.rep).post(
        reverse("leads:import_detail", args=[job.pk]), {"column_0": "contact_name"}
    )
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == ImportStatus.VALIDATING


# --- Progress ------------------------------------------------------------------------------------


def test_progress_is_saved_while_checking_and_shown_while_importing(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "PROGRESS_EVERY", 2)
    monkeypatch.setattr(importing, "BATCH_SIZE", 2)
    rows = [f"Lead {n},webinar" for n in range(5)]
    job = upload(cast.rep, csv_bytes("Name,Source", *rows))
    importing.import_job_map(
        job=job, actor=cast.rep, columns={"contact_name": 0, "source": 1}, queue=False
    )
    saved: list[int] = []

    def watch(done: int) -> None:
        saved.append(ImportJob.objects.get(pk=job.pk).processed_rows)

    job = importing.import_job_check(job_id=job.pk, progress=watch)
    assert saved == [2, 4] and job.processed_rows == 5
    assert importing.status_payload(job)["percent"] == 100

    importing.import_job_confirm(job=job, actor=cast.rep, import_duplicates=False, queue=False)
    # While the rows go in (inside one transaction) the count is in the cache, where
    # the status endpoint reads it.
    seen: list[Any] = []
    job = importing.import_job_import(
        job_id=job.pk, progress=lambda done: seen.append(cache.get(importing.progress_key(job.pk)))
    )
    assert seen == [2, 4, 5]
    client = client_for(cast.rep)
    final = client.get(reverse("leads:import_status", args=[job.pk])).json()
    assert final["status"] == "done" and final["finished"] and final["imported_rows"] == 5
    assert cache.get(importing.progress_key(job.pk)) is None


def test_the_status_endpoint_reads_the_import_progress_from_the_cache(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    rows = [f"Lead {n},webinar" for n in range(8)]
    job = check(
        upload(cast.rep, csv_bytes("Name,Source", *rows)),
        cast.rep,
        django_capture_on_commit_callbacks,
    )
    importing.import_job_confirm(job=job, actor=cast.rep, import_duplicates=False, queue=False)
    cache.set(importing.progress_key(job.pk), 2)
    status = client_for(cast.rep).get(reverse("leads:import_status", args=[job.pk])).json()
    assert status["status"] == "importing" and not status["finished"]
    assert (status["imported_rows"], status["percent"]) == (2, 25)


def test_a_running_job_page_polls_its_status(cast: Cast) -> None:
    job = upload(cast.rep, csv_bytes("Name,Source", "Ana,webinar"))
    importing.import_job_map(
        job=job, actor=cast.rep, columns={"contact_name": 0, "source": 1}, queue=False
    )
    page = client_for(cast.rep).get(reverse("leads:import_detail", args=[job.pk])).content
    assert reverse("leads:import_status", args=[job.pk]).encode() in page
    assert b"Checking every row" in page and b"setTimeout(poll, 2000)" in page


# --- Access --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner_rep", "manager", "other_rep", "marketing", "admin"])
def test_an_import_is_seen_by_its_uploader_and_admins_only(
    cast: Cast, role: str, django_capture_on_commit_callbacks: Any
) -> None:
    job = check(
        upload(cast.rep, csv_bytes("Name,Source", "Ana,webinar", "Bad,tv")),
        cast.rep,
        django_capture_on_commit_callbacks,
    )
    user = cast.roles()[role]
    client = client_for(user)
    visible = role in ("owner_rep", "admin")
    expected = 200 if visible else 404
    assert client.get(reverse("leads:import_detail", args=[job.pk])).status_code == expected
    assert client.get(reverse("leads:import_status", args=[job.pk])).status_code == expected
    assert client.get(reverse("leads:import_rejected", args=[job.pk])).status_code == expected
    post = client.post(reverse("leads:import_detail", args=[job.pk]), {"column_0": "email"})
    assert post.status_code == (200 if visible else 404)
    with django_capture_on_commit_callbacks(execute=True):
        confirm = client.post(
            reverse("leads:import_confirm", args=[job.pk]), {"duplicates": "skip"}
        )
    assert confirm.status_code == (302 if visible else 404)
    job.refresh_from_db()
    assert job.status == (ImportStatus.DONE if visible else ImportStatus.VALIDATED)
    assert client.get(reverse("leads:import_upload")).status_code == 200
    listed = client.get(reverse("leads:import_upload")).content.decode()
    assert (reverse("leads:import_detail", args=[job.pk]) in listed) is visible


def test_import_pages_need_a_login(cast: Cast) -> None:
    from django.test import Client

    job = upload(cast.rep, csv_bytes("Name,Source", "Ana,webinar"))
    for url in (
        reverse("leads:import_upload"),
        reverse("leads:import_detail", args=[job.pk]),
        reverse("leads:import_status", args=[job.pk]),
        reverse("leads:import_rejected", args=[job.pk]),
    ):
        assert Client().get(url).status_code == 302


def test_recent_imports_query_count_does_not_grow(cast: Cast) -> None:
    """Expected queries: session, user, the imports with their uploader (one JOIN)."""
    client = client_for(cast.admin)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("leads:import_upload")).status_code == 200
        return len(queries)

    upload(cast.rep, csv_bytes("Name,Source", "Ana,webinar"))
    before = count()
    upload(cast.manager, csv_bytes("Name,Source", "Ana,webinar"))
    upload(cast.marketing, csv_bytes("Name,Source", "Ana,webinar"))
    assert count() == before == 3


# --- The management command ----------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "leads.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_command_imports_and_reports_each_bad_row(
    cast: Cast, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "Who,Mail,Where from,Notes\nAna,ana@example.br,,hello\nBad,bad@,webinar,\n"
        "Twin,ana@example.br,referral,\n",
    )
    call_command(
        "import_leads",
        str(path),
        "--as",
        "manager@example.com",
        "--mapping",
        "Who=contact_name,2=email,Notes=-",
        "--default-source",
        "trade_show",
        "--skip-duplicates",
    )
    out = capsys.readouterr().out
    assert "Who → Contact name" in out and "Mail → Email" in out
    assert "Valid: 2; with errors: 1; possible duplicates: 1." in out
    assert "line 3: Not an email address: “bad@”." in out
    assert "line 4 (duplicate): Same email as line 2." in out
    assert "Imported 1 rows." in out
    lead = Lead.objects.get()
    assert lead.source == LeadSource.TRADE_SHOW and lead.created_by == cast.manager


def test_the_command_dry_run_imports_nothing(
    cast: Cast, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "Name,Source\nAna,webinar\n")
    call_command("import_leads", str(path), "--dry-run")  # as the first admin
    assert "Dry run: nothing was imported." in capsys.readouterr().out
    assert not Lead.objects.exists() and not ImportJob.objects.exists()


def test_the_command_imports_customers_with_progress(
    cast: Cast, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "PROGRESS_EVERY", 1)
    monkeypatch.setattr(importing, "BATCH_SIZE", 1)
    path = write(tmp_path, "Name,City\nAcme,Lund\nBeta,Malmö\n", "customers.csv")
    call_command("import_leads", str(path), "--kind", "customers", "--as", "alice@example.com")
    out = capsys.readouterr().out
    assert "Checked 2 of 2 rows…" in out and "Imported 2 of 2 rows…" in out
    assert set(Customer.objects.values_list("name", "owner")) == {
        ("Acme", cast.rep.pk),
        ("Beta", cast.rep.pk),
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv"], "Cannot read"),
        (["empty.csv"], "empty.csv: The file is empty."),
        (["ok.csv", "--as", "nobody@example.com"], "No active user has the email"),
        (["ok.csv", "--mapping", "Nope=email"], "no column “Nope” in the header"),
        (["ok.csv", "--mapping", "1=shoe_size"], "unknown field “shoe_size”"),
        (
            ["ok.csv", "--kind", "customers", "--as", "marketing@example.com"],
            "You cannot import customers.",
        ),
    ],
)
def test_the_command_fails_clearly(
    cast: Cast, tmp_path: Path, args: list[str], message: str
) -> None:
    write(tmp_path, "", "empty.csv")
    write(tmp_path, "Name,Source\nAna,webinar\n", "ok.csv")
    args = [str(tmp_path / args[0]), *args[1:]]
    with pytest.raises(CommandError, match=message):
        call_command("import_leads", *args)
    assert not Lead.objects.exists()


def test_no_admin_means_the_command_needs_as(tmp_path: Path, db: None) -> None:
    UserFactory(role=Role.REP)
    path = write(tmp_path, "Name,Source\nAna,webinar\n")
    with pytest.raises(CommandError, match="name who imports with --as"):
        call_command("import_leads", str(path))


def test_an_admin_helping_with_a_reps_import_maps_by_the_reps_rules(cast: Cast) -> None:
    job = upload(cast.rep, csv_bytes("Name,Source,Owner", "Ana,webinar,bob@example.com"))
    page = client_for(cast.admin).get(reverse("leads:import_detail", args=[job.pk]))
    assert 'value="owner"' not in page.content.decode()
    assert "Uploaded by Alice Rep." in page.content.decode()
    with pytest.raises(ValidationError):
        importing.import_job_map(
            job=job, actor=cast.admin, columns={"contact_name": 0, "owner": 2}, queue=False
        )


def test_duplicate_lookup_takes_any_characters(cast: Cast) -> None:
    odd = 'Acme, "The" {Best} \\ AB'
    CustomerFactory(name=odd, owner=cast.rep)
    assert importing._existing(Customer, "lower(name)", {odd.lower(), "other"}) == {odd.lower()}


def test_too_many_leads_to_route_fail_the_import_before_anything_goes_in(
    cast: Cast, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "ROUTE_AT_MOST", 2)
    RoutingRule.objects.create(name="All to North", team=cast.team)
    data = csv_bytes("Name,Source", "Anna,webinar", "Bo,webinar", "Carl,webinar")
    job = check(upload(cast.marketing, data), cast.marketing, django_capture_on_commit_callbacks)
    job = run_import(job, cast.marketing, django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.FAILED
    assert job.failure.startswith("3 leads without an owner would be routed, one at a time: ")
    assert not Lead.objects.exists()
    # Without routing they go in, unassigned.
    job = check(job, cast.marketing, django_capture_on_commit_callbacks, route=False)
    job = run_import(job, cast.marketing, django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.DONE
    assert Lead.objects.filter(owner__isnull=True).count() == 3


# --- The import reuses the check -------------------------------------------------------


def test_the_import_reuses_the_checked_rows_and_looks_up_duplicates_again(
    cast: Cast, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = csv_bytes(
        "Name,Email,Source",
        "Anna,anna@example.org,webinar",
        "Bo,bo@example.org,webinar",
        "Bad,not an address,webinar",
    )
    job = check(upload(cast.rep, data), cast.rep, django_capture_on_commit_callbacks)
    assert job.valid_rows == 2 and job.duplicate_rows == 0
    # Someone adds Bo's lead between the check and the import.
    LeadFactory(email="bo@example.org", owner=cast.other_rep)

    def read_again(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the file was checked again")

    monkeypatch.setattr(importing.LeadChecker, "check", read_again)
    job = run_import(job, cast.rep, django_capture_on_commit_callbacks)

    assert job.status == ImportStatus.DONE and job.imported_rows == 1
    assert Lead.objects.filter(email="anna@example.org", owner=cast.rep).exists()
    assert errors_of(job) == [(4, "Not an email address: “not an address”.")]
    assert duplicates_of(job) == [(3, "A lead with this email already exists.")]


def test_the_import_checks_the_file_again_when_what_it_refers_to_changed(
    cast: Cast, catalogue: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    data = csv_bytes(
        "Name,Email,Source,Product lines",
        "Anna,anna@example.org,webinar,Hardware",
        "Bo,bo@example.org,webinar,Software",
    )
    job = check(upload(cast.rep, data), cast.rep, django_capture_on_commit_callbacks)
    assert job.valid_rows == 2
    ProductLine.objects.filter(pk=catalogue["hardware"].pk).update(is_active=False)

    job = run_import(job, cast.rep, django_capture_on_commit_callbacks)

    assert job.status == ImportStatus.DONE and job.imported_rows == 1
    assert list(Lead.objects.values_list("contact_name", flat=True)) == ["Bo"]
    assert errors_of(job) == [(2, "The product line “Hardware” is no longer sold.")]


def test_the_import_checks_the_file_again_without_a_kept_check(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    data = csv_bytes("Name,Email,Source", "Anna,anna@example.org,webinar")
    job = check(upload(cast.rep, data), cast.rep, django_capture_on_commit_callbacks)
    cache.delete(importing._check_key(job.pk))  # expired, or the cache was flushed

    job = run_import(job, cast.rep, django_capture_on_commit_callbacks)

    assert job.status == ImportStatus.DONE and job.imported_rows == 1
    assert cache.get(importing._check_key(job.pk)) is None
