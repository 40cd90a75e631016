"""CSV and XLSX export of a lead list, with spreadsheet formula injection neutralised.

A cell that starts with = + - @ (or a tab, carriage return or NUL, which some
spreadsheets skip before reading a formula) is run as a formula when the file is
opened: a lead typed in by a web form as ``=HYPERLINK("http://evil", "click")``
would. ``neutralise`` prefixes such text with a single quote, which spreadsheets
show as text. Numbers and dates are written as such and are never formulas.
"""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef, QuerySet, TextChoices
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import ProductLine
from leads.models import Lead, LeadSource, LostReason, Stage, Temperature

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\0")
# Excel's last row is 1,048,576; one of them is the header.
XLSX_MAX_ROWS = 1_048_575


def neutralise(value: Any) -> Any:
    """``value`` unchanged, unless it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


@dataclass(frozen=True)
class Labels:
    """Choice labels translated once per export: Django's get_FOO_display() hashes
    every label of the field on each call, which would cost more than the row."""

    source: dict[str, str]
    stage: dict[str, str]
    temperature: dict[str, str]
    lost_reason: dict[str, str]

    @classmethod
    def current(cls) -> Labels:
        def of(choices: type[TextChoices]) -> dict[str, str]:
            return {value: str(label) for value, label in choices.choices}

        return cls(of(LeadSource), of(Stage), of(Temperature), of(LostReason))


# (header, value key, labels to translate it with). Rows are dicts from .values():
# building model instances (with four related ones and a product line query each)
# would cost several times more than writing the row.
COLUMNS: list[tuple[Any, str, str | None]] = [
    (gettext_lazy("ID"), "pk", None),
    (gettext_lazy("Created"), "created_at", None),
    (gettext_lazy("Contact name"), "contact_name", None),
    (gettext_lazy("Company"), "company_name", None),
    (gettext_lazy("Email"), "email", None),
    (gettext_lazy("Phone"), "phone", None),
    (gettext_lazy("Customer"), "customer__name", None),
    (gettext_lazy("Source"), "source", "source"),
    (gettext_lazy("Stage"), "stage", "stage"),
    (gettext_lazy("Temperature"), "temperature", "temperature"),
    (gettext_lazy("Temperature set by hand"), "temperature_overridden", None),
    (gettext_lazy("Score"), "score", None),
    (gettext_lazy("Win probability"), "win_probability", None),
    (gettext_lazy("Owner"), "owner__display_name", None),
    (gettext_lazy("Team"), "team__name", None),
    (gettext_lazy("Territory"), "territory__name", None),
    (gettext_lazy("Product lines"), "product_line_names", None),
    (gettext_lazy("Buying timeframe"), "timeframe", None),
    (gettext_lazy("Estimated value"), "estimated_value", None),
    (gettext_lazy("Last contact"), "last_contact_at", None),
    (gettext_lazy("Lost / disqualified reason"), "lost_reason", "lost_reason"),
]


def export_values(leads: QuerySet[Lead]) -> QuerySet[Lead, dict[str, Any]]:
    """The values each row needs, in one query: related names joined, product lines
    as an array from a correlated subquery (an index lookup per lead, still streamable)."""
    names = ProductLine.objects.filter(leads=OuterRef("pk")).order_by("name").values("name")
    return leads.annotate(product_line_names=ArraySubquery(names)).values(
        *(key for _title, key, _labels in COLUMNS)
    )


def header() -> list[str]:
    return [str(title) for title, _key, _labels in COLUMNS]


def lead_rows(leads: Iterable[dict[str, Any]]) -> Iterator[list[Any]]:
    """One row of typed, neutralised values per lead (text cells made safe)."""
    labels = Labels.current()
    columns = [(key, getattr(labels, kind) if kind else None) for _title, key, kind in COLUMNS]
    for lead in leads:
        row = []
        for key, translate in columns:
            value = lead[key]
            if translate is not None:
                value = translate.get(value, value)
            elif isinstance(value, list):
                value = ", ".join(value)
            row.append(neutralise("" if value is None and translate else value))
        yield row


def _local(value: dt.datetime) -> dt.datetime:
    """Datetimes in the user's time zone, without tzinfo (spreadsheets have none)."""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return value.replace(tzinfo=None, microsecond=0)


def csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, dt.datetime):
        return _local(value).isoformat(sep=" ", timespec="minutes")
    if isinstance(value, dt.date | Decimal | int):
        return str(value)
    return neutralise(str(value))


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[list[Any]]) -> Iterator[str]:
    """The CSV file as lines: a UTF-8 byte order mark (Excel reads accents), header, rows."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(header())
    for row in rows:
        yield writer.writerow([csv_text(value) for value in row])


def xlsx_cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _local(value)
    if isinstance(value, str):
        return neutralise(value)
    return value


def xlsx_file(rows: Iterable[list[Any]]) -> IO[bytes]:
    """The rows as an .xlsx workbook in a temporary file (rewound), written row by row.

    openpyxl's write-only mode keeps memory flat however many rows; beyond Excel's
    row limit the sheet ends with a note instead of a broken file.
    """
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=str(gettext_lazy("Leads")))
    sheet.append(header())
    for count, row in enumerate(rows, start=1):
        if count > XLSX_MAX_ROWS - 1:
            sheet.append([_("More rows than a spreadsheet holds: export as CSV for all.")])
            break
        sheet.append([xlsx_cell(value) for value in row])
    output = tempfile.TemporaryFile()  # noqa: SIM115 (the response closes it)
    workbook.save(output)
    output.seek(0)
    return output
