"""CSV import of leads and customers: read, map, check every row, import in one transaction.

The steps, each a function here; the pages, the Celery task (``leads.tasks.import_run``)
and ``manage.py import_leads`` all go through them:

1. ``import_job_create``: decode the file (UTF-8 with or without a BOM, UTF-16 with
   a BOM, else Windows-1252 / Latin-1 with a note), find the delimiter (comma,
   semicolon or tab), check the limits, keep the text in an ``ImportJob`` (so any
   worker can read it) with guessed column → field mapping.
2. ``import_job_map``: the user's mapping; queues the check.
3. ``import_job_check``: every row checked; each bad row gets its line and reason,
   duplicates (within the file, and against existing leads or customers) are flagged.
4. ``import_job_confirm`` then ``import_job_import``: the valid rows (without the
   duplicates, unless asked) go in with one transaction, set-based: ids reserved
   from the sequence, then COPY of the rows, their product lines and their
   history, each lead already scored; leads without an owner are routed one by one
   (routing is per lead by nature). Anything failing rolls everything back and the
   job shows "failed" with the reason.

Line numbers are the rows a spreadsheet shows: the header is line 1, the first
row of data line 2 (a cell with a line break inside quotes is still one row).

The import checks the rows again inside its transaction (product lines, owners or
existing leads may have changed since the check), so what goes in is what is
valid at that moment; the job's counts and errors are those of that last check.
When nothing the rows refer to has changed (same fingerprint, ``_check_fingerprint``)
it takes the rows the check kept in the cache instead of reading the file again,
and only looks the duplicates up again.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import logging
import queue
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone, translation
from django.utils.formats import get_format
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.access import users_for_user
from accounts.models import ProductLine, Role, Territory, User
from leads.models import (
    OPEN_STAGES,
    TEMPERATURE_STAGES,
    Customer,
    CustomerKind,
    ImportJob,
    ImportKind,
    ImportStatus,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadSource,
    RoutingRule,
    Stage,
    normalise_phone,
)
from leads.services import temperature_for

logger = logging.getLogger(__name__)

# --- Limits ----------------------------------------------------------------------------

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
PREVIEW_ROWS = 10
# The check saves its progress (processed_rows) every this many rows.
PROGRESS_EVERY = 5_000
# Rows per COPY batch of the import (and per progress step).
BATCH_SIZE = 10_000
# Errors shown on the page (all of them are in the rejected-rows CSV).
ERRORS_SHOWN = 100
# Leads routed by one import at most: routing goes one lead at a time (some
# milliseconds each on a large data set), and the import must end within its task's
# time limit.
ROUTE_AT_MOST = 10_000
DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {
    ",": gettext_lazy("comma"),
    ";": gettext_lazy("semicolon"),
    "\t": gettext_lazy("tab"),
}
ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-16": "UTF-16",
    "cp1252": "Windows-1252",
    "latin-1": "Latin-1 (ISO-8859-1)",
}

# Who may import what: everybody imports leads (reps get them as their own,
# marketing unassigned); customers are the sales side's.
KIND_ROLES: dict[str, set[str]] = {
    ImportKind.LEADS: {Role.REP, Role.MANAGER, Role.MARKETING, Role.ADMIN},
    ImportKind.CUSTOMERS: {Role.REP, Role.MANAGER, Role.ADMIN},
}
# Roles that may name an owner in a column (others: reps own what they import,
# marketing imports unassigned leads).
OWNER_COLUMN_ROLES = {Role.MANAGER, Role.ADMIN}
REMAPPABLE = (ImportStatus.UPLOADED, ImportStatus.VALIDATED, ImportStatus.FAILED)


def kinds_for_user(user: User) -> list[str]:
    return [kind for kind, roles in KIND_ROLES.items() if user.role in roles]


# --- Fields and the guesses from column names ------------------------------------------


@dataclass(frozen=True)
class ImportField:
    key: str
    label: Promise
    # Lower-case column names (without accents) that mean this field, in the
    # languages of the installation.
    names: tuple[str, ...]
    help: Promise | str = ""


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split("|"))


_EMAIL_NAMES = _names(
    "email|e mail|mail|email address|e mail address|e post|epost|correo|correo electronico|"
    "endereco de email|posta elettronica|почта|электронная почта|эл почта"
)
_PHONE_NAMES = _names(
    "phone|telephone|tel|mobile|cell|phone number|mobile phone|telefone|celular|telefono|"
    "cellulare|telefon|mobil|telefonnummer|mobilnummer|телефон|мобильный|тел"
)
_TERRITORY_NAMES = _names(
    "territory|region|area|sales territory|territorio|regiao|regione|zona|omrade|distrikt|"
    "территория|регион"
)
_OWNER_NAMES = _names(
    "owner|owner email|rep|sales rep|assigned to|salesperson|account owner|responsavel|"
    "vendedor|proprietario|responsabile|venditore|agare|saljare|ansvarig|ответственный|"
    "владелец|менеджер"
)

LEAD_FIELDS: tuple[ImportField, ...] = (
    ImportField(
        "contact_name",
        gettext_lazy("Contact name"),
        _names(
            "contact name|name|contact|full name|person|first and last name|nome|nome completo|"
            "contato|nome do contato|contatto|nominativo|namn|kontakt|kontaktperson|имя|фио|"
            "контакт|контактное лицо"
        ),
    ),
    ImportField(
        "company_name",
        gettext_lazy("Company"),
        _names(
            "company|company name|organisation|organization|account|business|empresa|companhia|"
            "organizacao|azienda|societa|ditta|foretag|bolag|foretagsnamn|компания|организация|"
            "фирма"
        ),
    ),
    ImportField("email", gettext_lazy("Email"), _EMAIL_NAMES),
    ImportField("phone", gettext_lazy("Phone"), _PHONE_NAMES),
    ImportField(
        "source",
        gettext_lazy("Source"),
        _names(
            "source|lead source|origin|channel|fonte|origem|canal|origine|canale|kalla|kanal|"
            "источник|канал"
        ),
        gettext_lazy("A source from the list, by its name or code, in any case."),
    ),
    ImportField(
        "product_lines",
        gettext_lazy("Product lines"),
        _names(
            "product lines|product line|product|products|interest|produto|produtos|"
            "linha de produto|prodotto|prodotti|linea di prodotto|produkt|produkter|"
            "produktlinje|продукт|продукты|линейка"
        ),
        gettext_lazy("Names of product lines we sell; several separated by ; or |."),
    ),
    ImportField(
        "territory",
        gettext_lazy("Territory"),
        _TERRITORY_NAMES,
        gettext_lazy("A territory's name or code."),
    ),
    ImportField(
        "timeframe",
        gettext_lazy("Buying timeframe"),
        _names(
            "timeframe|buying timeframe|decision date|expected close|close date|"
            "expected decision|prazo|data de decisao|previsao|scadenza|data decisione|tidsram|"
            "beslutsdatum|срок|дата решения"
        ),
        gettext_lazy("A date: YYYY-MM-DD or DD/MM/YYYY."),
    ),
    ImportField(
        "estimated_value",
        gettext_lazy("Estimated value"),
        _names(
            "estimated value|value|amount|deal value|budget|valor|valor estimado|orcamento|"
            "valore|importo|budget previsto|varde|belopp|сумма|стоимость|бюджет"
        ),
        gettext_lazy("An amount such as 1234.50, 1,234.50 or 1 234,50."),
    ),
    ImportField(
        "stage",
        gettext_lazy("Stage"),
        _names(
            "stage|status|lead stage|lead status|etapa|estagio|fase|stadio|fas|steg|стадия|этап|"
            "статус"
        ),
        gettext_lazy("An open stage (suspect, cold, warm, hot, MQL, SQL); empty: suspect."),
    ),
    ImportField(
        "owner",
        gettext_lazy("Owner"),
        _OWNER_NAMES,
        gettext_lazy("The email of a rep or manager you can give leads to; empty: unassigned."),
    ),
)

CUSTOMER_IMPORT_FIELDS: tuple[ImportField, ...] = (
    ImportField(
        "name",
        gettext_lazy("Name"),
        _names(
            "name|customer|customer name|company|company name|client|account|nome|cliente|"
            "empresa|azienda|ragione sociale|kund|kundnamn|foretag|namn|клиент|компания|"
            "название|наименование"
        ),
    ),
    ImportField(
        "kind",
        gettext_lazy("Kind"),
        _names("kind|type|customer type|tipo|typ|тип"),
        gettext_lazy("Company or person; empty: company."),
    ),
    ImportField("email", gettext_lazy("Email"), _EMAIL_NAMES),
    ImportField("phone", gettext_lazy("Phone"), _PHONE_NAMES),
    ImportField(
        "address",
        gettext_lazy("Address"),
        _names("address|street|street address|endereco|indirizzo|via|adress|gatuadress|адрес"),
    ),
    ImportField(
        "city",
        gettext_lazy("City"),
        _names("city|town|cidade|citta|comune|stad|ort|город"),
    ),
    ImportField(
        "country",
        gettext_lazy("Country"),
        _names("country|pais|paese|nazione|land|страна"),
    ),
    ImportField(
        "language",
        gettext_lazy("Language"),
        _names("language|idioma|lingua|sprak|язык"),
        gettext_lazy("For surveys and emails: a language code or name; empty: English."),
    ),
    ImportField(
        "territory",
        gettext_lazy("Territory"),
        _TERRITORY_NAMES,
        gettext_lazy("A territory's name or code."),
    ),
    ImportField(
        "notes",
        gettext_lazy("Notes"),
        _names(
            "notes|note|comments|comment|remarks|observacoes|observacao|commenti|anteckningar|"
            "kommentar|примечание|комментарий|заметки"
        ),
    ),
    ImportField(
        "owner",
        gettext_lazy("Owner"),
        _OWNER_NAMES,
        gettext_lazy("The email of a rep or manager; empty: you (a manager) or nobody (an admin)."),
    ),
)

CONTACT_FIELDS = ("contact_name", "company_name", "email", "phone")


def fields_for(*, kind: str, user: User) -> tuple[ImportField, ...]:
    """The fields a column can be mapped to: the owner only for managers and admins."""
    fields = LEAD_FIELDS if kind == ImportKind.LEADS else CUSTOMER_IMPORT_FIELDS
    if user.role not in OWNER_COLUMN_ROLES:
        fields = tuple(f for f in fields if f.key != "owner")
    return fields


def _plain(text: str) -> str:
    """Lower case, no accents (ö → o, but Cyrillic kept), words separated by one space."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(char for char in text if not unicodedata.combining(char))
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def guess_mapping(*, header: list[str], kind: str, user: User) -> dict[str, int]:
    """{field: column index} from the column names: exact names first, then a column
    whose name contains a field's word (``Contact email`` → email). Each field and
    each column is used at most once; the leftmost column wins."""
    fields = fields_for(kind=kind, user=user)
    plain = [_plain(name) for name in header]
    names = {f.key: {_plain(name) for name in f.names} for f in fields}
    mapping: dict[str, int] = {}
    used: set[int] = set()
    for import_field in fields:
        for index, name in enumerate(plain):
            if index not in used and name in names[import_field.key]:
                mapping[import_field.key] = index
                used.add(index)
                break
    # Contained words: email and phone first, they are the least ambiguous.
    ordered = sorted(fields, key=lambda f: f.key not in ("email", "phone"))
    for import_field in ordered:
        if import_field.key in mapping:
            continue
        for index, name in enumerate(plain):
            words = f" {name} "
            if index not in used and any(
                f" {word} " in words for word in names[import_field.key] if len(word) > 3
            ):
                mapping[import_field.key] = index
                used.add(index)
                break
    return mapping


# --- Reading the file ------------------------------------------------------------------


@dataclass(frozen=True)
class CsvFile:
    text: str
    encoding: str
    delimiter: str
    header: list[str]
    rows: int


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise ValidationError(
            _(
                "This is a spreadsheet workbook, not a CSV file: save it as “CSV UTF-8” "
                "in your spreadsheet and upload that."
            )
        )
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise ValidationError(
                _("The file says it is UTF-16 but cannot be read as such.")
            ) from None
    if b"\x00" in data:
        raise ValidationError(
            _(
                "This does not look like a text file (it contains binary data): save it as "
                "“CSV UTF-8” in your spreadsheet and upload that."
            )
        )
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _sniff_delimiter(text: str) -> str:
    """The candidate that splits the header line most; a single column file: comma.

    The header is the most regular line of a CSV and is short, so counting there is
    predictable (csv.Sniffer guesses from the data and can pick a comma in an amount).
    """
    first_line = text.split("\n", 1)[0]
    # Ignore what is inside quotes: "Name, first" is one column.
    unquoted = re.sub(r'"[^"]*"', "", first_line)
    counts = {delimiter: unquoted.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _reader(text: str, delimiter: str) -> Iterator[list[str]]:
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def _is_blank(cells: list[str]) -> bool:
    return not "".join(cells).strip()


_LOOKS_LIKE_DATA = re.compile(r"^[\d\s.,/:+\-()€$£%]+$|@")


def read_csv(data: bytes) -> CsvFile:
    """Decode and check a file: limits, header, rows. ValidationError with a clear message."""
    if len(data) > MAX_FILE_BYTES:
        raise ValidationError(
            _("The file is %(size)s; at most %(limit)s can be imported at once: split it.")
            % {"size": filesizeformat(len(data)), "limit": filesizeformat(MAX_FILE_BYTES)}
        )
    if not data.strip():
        raise ValidationError(_("The file is empty."))
    text, encoding = _decode(data)
    if not text.strip():
        raise ValidationError(_("The file is empty."))
    delimiter = _sniff_delimiter(text)
    reader = _reader(text, delimiter)
    line = 1
    try:
        header = [cell.strip() for cell in next(reader)]
        while header and not header[-1]:
            header.pop()  # spreadsheets export trailing empty columns
        if not header:
            raise ValidationError(_("The first line is empty: it must name the columns."))
        data_like = [cell for cell in header if cell and _LOOKS_LIKE_DATA.search(cell)]
        if data_like or all(not cell for cell in header):
            raise ValidationError(
                _(
                    "The first line must name the columns (for example Name, Email, Phone); "
                    "it looks like data: “%(cell)s”. Add a header line."
                )
                % {"cell": (data_like or header)[0][:50]}
            )
        header = [
            cell or _("Column %(number)d") % {"number": i + 1} for i, cell in enumerate(header)
        ]
        rows = 0
        for line, cells in enumerate(reader, start=2):  # noqa: B007 (line is read in except)
            if not _is_blank(cells):
                rows += 1
                if rows > MAX_ROWS:
                    raise ValidationError(
                        _(
                            "The file has more than %(limit)s rows; split it into files of at "
                            "most %(limit)s rows."
                        )
                        % {"limit": f"{MAX_ROWS:,}"}
                    )
    except csv.Error as error:
        raise ValidationError(
            _("Line %(line)d could not be read: %(error)s.") % {"line": line + 1, "error": error}
        ) from None
    if rows == 0:
        raise ValidationError(_("The file has a header line but no rows to import."))
    return CsvFile(text=text, encoding=encoding, delimiter=delimiter, header=header, rows=rows)


def encoding_note(encoding: str) -> str:
    """What the user should know about how the file was read ('' for UTF-8)."""
    if encoding in ("utf-8", "utf-16"):
        return ""
    return _(
        "The file is not UTF-8; it was read as %(encoding)s. Check that accented letters "
        "look right in the preview, or save the file as “CSV UTF-8” and upload it again."
    ) % {"encoding": ENCODING_NAMES.get(encoding, encoding)}


def preview_rows(text: str, *, delimiter: str, rows: int = PREVIEW_ROWS) -> list[list[str]]:
    """The first non-blank rows after the header (of a text that may be cut short)."""
    found: list[list[str]] = []
    reader = _reader(text, delimiter)
    try:
        next(reader, None)
        for cells in reader:
            if not _is_blank(cells):
                found.append(cells)
                if len(found) >= rows:
                    break
    except csv.Error:
        pass  # a head cut inside a quoted cell: show what was read
    return found


# --- Values: sources, stages, dates, amounts --------------------------------------------


def _choice_key(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").replace("-", " ").split())


@lru_cache(maxsize=16)
def _choice_lookup(choices: type, language_codes: tuple[str, ...]) -> dict[str, str]:
    """{plain code or label in any of the languages: value}; parts of labels too
    ("Networking / chamber of commerce" → networking, chamber of commerce)."""
    lookup: dict[str, str] = {}
    for value in choices.values:
        lookup[_choice_key(value)] = value
    for language in language_codes:
        with translation.override(language):
            for value, label in choices.choices:
                text = str(label)
                lookup.setdefault(_choice_key(text), value)
                for part in re.split(r"\s*/\s*|\s*\(", text):
                    part = _choice_key(part.rstrip(")… "))
                    if len(part) > 3:
                        lookup.setdefault(part, value)
    return lookup


def choice_lookup(choices: type) -> dict[str, str]:
    return _choice_lookup(choices, tuple(code for code, _name in settings.LANGUAGES))


_DAY_FIRST = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")


def parse_date(value: str, *, formats: Iterable[str] = ()) -> date | None:
    """ISO (2026-03-31, also with a time after it), DD/MM/YYYY (or with . or -), then
    the given formats (the user's language's). None when it is none of these."""
    iso = value[:10] if len(value) > 10 and value[10] in " T" else value
    if len(iso) == 10 and iso[4] == "-":
        try:
            return date.fromisoformat(iso)
        except ValueError:
            return None
    match = _DAY_FIRST.match(value)
    if match:
        day, month, year = (int(part) for part in match.groups())
        try:
            return date(year, month, day)
        except ValueError:
            pass  # 12/31/2026: maybe the user's locale puts the month first
    for date_format in formats:
        try:
            return datetime.strptime(value, date_format).date()
        except ValueError:
            continue
    return None


_AMOUNT = re.compile(r"^([^\d.,+\-]*)([+\-]?[\d.,]*\d[\d.,]*)([^\d.,]*)$")
# Around the number: nothing, a currency symbol, an ISO code (SEK) or a local sign (kr).
_CURRENCY = re.compile("^(?:|[€$£¥₽]|R\\$|[A-Z]{3}|kr|:-|\u0440\u0443\u0431\\.?|\u0440\\.)$")
_SPACES = re.compile(r"[\s'\u2019\u00a0\u202f]")
MAX_AMOUNT = Decimal("999999999999.99")
CENTS = Decimal("0.01")


def parse_amount(value: str) -> Decimal:
    """An amount with its separators worked out: "1 234,50", "1.234,50", "1,234.50",
    "€ 1234.5" → Decimal. Both separators: the last one is the decimal point. One
    kind: a thousands separator when it groups by three (1,234 or 1.234.567),
    otherwise the decimal point (12,5). ValueError with the reason otherwise."""
    compact = _SPACES.sub("", value)
    match = _AMOUNT.match(compact)
    if not match or not (_CURRENCY.match(match.group(1)) and _CURRENCY.match(match.group(3))):
        raise ValueError(_("Not an amount: “%(value)s”.") % {"value": value})
    number = match.group(2)
    commas, dots = number.count(","), number.count(".")
    if commas and dots:
        decimal_mark = "," if number.rfind(",") > number.rfind(".") else "."
        thousands = "." if decimal_mark == "," else ","
        if number.count(decimal_mark) > 1:
            raise ValueError(_("Not an amount: “%(value)s”.") % {"value": value})
        number = number.replace(thousands, "").replace(decimal_mark, ".")
    elif commas or dots:
        mark = "," if commas else "."
        digits = number.lstrip("+-")
        if re.fullmatch(rf"[1-9]\d{{0,2}}(\{mark}\d{{3}})+", digits):
            number = number.replace(mark, "")
        elif number.count(mark) == 1:
            number = number.replace(mark, ".")
        else:
            raise ValueError(_("Not an amount: “%(value)s”.") % {"value": value})
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise ValueError(_("Not an amount: “%(value)s”.") % {"value": value}) from None
    if amount < 0:
        raise ValueError(_("The estimated value cannot be negative."))
    if amount > MAX_AMOUNT:
        raise ValueError(_("“%(value)s” is too large.") % {"value": value})
    rounded = amount.quantize(CENTS)
    if amount != rounded:
        raise ValueError(_("“%(value)s” has more than two decimals.") % {"value": value})
    return rounded


# --- Checking rows ---------------------------------------------------------------------


class LeadRow(NamedTuple):
    line: int
    contact_name: str
    company_name: str
    email: str
    phone: str
    phone_normalised: str
    source: str
    territory_id: int | None
    timeframe: date | None
    estimated_value: Decimal | None
    owner_id: int | None
    team_id: int | None
    stage: str
    product_line_ids: tuple[int, ...]


class CustomerRow(NamedTuple):
    line: int
    kind: str
    name: str
    email: str
    phone: str
    phone_normalised: str
    address: str
    city: str
    country: str
    language: str
    territory_id: int | None
    notes: str
    owner_id: int | None


@dataclass
class CheckResult:
    total: int = 0
    valid: list[Any] = field(default_factory=list)
    # {"line": n, "reason": text} of rows that cannot be imported, in line order.
    errors: list[dict[str, Any]] = field(default_factory=list)
    # line → why the valid row looks like one already there.
    duplicates: dict[int, str] = field(default_factory=dict)

    def flagged(self) -> list[dict[str, Any]]:
        """Errors and duplicates in line order, as stored on the job."""
        rows = [*self.errors]
        rows += [
            {"line": line, "reason": reason, "duplicate": True}
            for line, reason in self.duplicates.items()
        ]
        return sorted(rows, key=lambda row: row["line"])


def _too_long(label: Promise, value: str, limit: int) -> str | None:
    """The message when ``value`` is too long; ``label`` is lazy: translated only then."""
    if len(value) > limit:
        return _("%(field)s is too long (%(length)d characters, at most %(limit)d).") % {
            "field": label,
            "length": len(value),
            "limit": limit,
        }
    return None


# The usual addresses, checked in one regex match; anything else (international
# domains, quoted parts…) goes through Django's validator, the one EmailField uses.
_PLAIN_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)


class _Lookups:
    """What the rows refer to, read once per check: territories, product lines, owners."""

    def __init__(self, *, actor: User, owner_column: bool) -> None:
        self.territories: dict[str, int] = {}
        self.inactive_territories: set[str] = set()
        for pk, name, code, active in Territory.objects.values_list(
            "pk", "name", "code", "is_active"
        ):
            for key in (name.strip().lower(), code.strip().lower()):
                if active:
                    self.territories.setdefault(key, pk)
                else:
                    self.inactive_territories.add(key)
        self.product_lines: dict[str, int] = {}
        self.inactive_product_lines: set[str] = set()
        for pk, name, active in ProductLine.objects.values_list("pk", "name", "is_active"):
            if active:
                self.product_lines[name.strip().lower()] = pk
            else:
                self.inactive_product_lines.add(name.strip().lower())
        # People the actor may give leads or customers to (the rule of
        # services._check_actor_may_assign and _check_can_own): visible, active,
        # rep or manager.
        self.owners: dict[str, tuple[int, int | None, str]] = {}
        if owner_column:
            for pk, email, team_id, display_name in (
                users_for_user(user=actor)
                .filter(is_active=True, role__in=(Role.REP, Role.MANAGER))
                .values_list("pk", "email", "team_id", "display_name")
            ):
                self.owners[email.lower()] = (pk, team_id, display_name)


class _Checker:
    """Checks the cells of one row at a time; each distinct value of a column that
    repeats (source, territory, date, amount…) is worked out once."""

    def __init__(self, *, job: ImportJob, actor: User) -> None:
        self.actor = actor
        mapping = job.mapping or {}
        columns: dict[str, int] = mapping.get("columns", {})
        self.width = len(job.header)
        allowed = {f.key for f in fields_for(kind=job.kind, user=actor)}
        self.columns = {key: int(index) for key, index in columns.items() if key in allowed}
        self.lookups = _Lookups(actor=actor, owner_column="owner" in self.columns)
        self._memo: dict[tuple[str, str], tuple[Any, str | None]] = {}

    def _index(self, key: str) -> int | None:
        return self.columns.get(key)

    @staticmethod
    def _cell(cells: list[str], index: int | None) -> str:
        if index is None or index >= len(cells):
            return ""
        return cells[index].strip()

    def _remember(
        self, kind: str, raw: str, work: Callable[[str], tuple[Any, str | None]]
    ) -> tuple[Any, str | None]:
        key = (kind, raw)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = work(raw)
        return found

    def _width_problem(self, cells: list[str]) -> str | None:
        if not _is_blank(cells[self.width :]):
            return _("This row has %(cells)d cells but the header names %(columns)d columns.") % {
                "cells": len(cells),
                "columns": self.width,
            }
        return None

    # Values shared by leads and customers.

    def _email(self, raw: str) -> tuple[Any, str | None]:
        email = raw.lower()
        problem = _too_long(gettext_lazy("Email"), email, 254)
        if problem:
            return "", problem
        if _PLAIN_EMAIL.match(email):
            return email, None
        try:
            validate_email(email)
        except ValidationError:
            return "", _("Not an email address: “%(value)s”.") % {"value": raw}
        return email, None

    def _phone(self, raw: str) -> tuple[Any, str | None]:
        problem = _too_long(gettext_lazy("Phone"), raw, 40)
        if problem:
            return ("", ""), problem
        digits = normalise_phone(raw)
        if not digits:
            return ("", ""), _("Not a phone number: “%(value)s”.") % {"value": raw}
        return (raw, digits), None

    def _territory(self, raw: str) -> tuple[Any, str | None]:
        key = raw.lower()
        if key in self.lookups.territories:
            return self.lookups.territories[key], None
        if key in self.lookups.inactive_territories:
            return None, _("The territory “%(value)s” is no longer active.") % {"value": raw}
        return None, _("Unknown territory “%(value)s”.") % {"value": raw}

    def _owner(self, raw: str) -> tuple[Any, str | None]:
        owner = self.lookups.owners.get(raw.lower())
        if owner is None:
            # The same message whether the person exists or not: nothing about
            # people outside the actor's teams is given away.
            return None, _("No one you can give this to has the email “%(value)s”.") % {
                "value": raw
            }
        return owner, None

    def check(self, line: int, cells: list[str]) -> tuple[Any, str | None]:
        raise NotImplementedError

    def duplicates(self, rows: list[Any]) -> dict[int, str]:
        raise NotImplementedError


def _array_literal(values: Iterable[str]) -> str:
    """A PostgreSQL text[] literal, sent as one string parameter: a hundred thousand
    values parse at once, where an ARRAY[…] of parameters costs seconds of planning."""
    quoted = (value.replace("\\", "\\\\").replace('"', '\\"') for value in values)
    return "{" + ",".join(f'"{value}"' for value in quoted) + "}"


def _existing(model: type, expression: str, values: set[str], *, partial: str = "") -> set[str]:
    """Those of ``values`` equal to ``expression`` (SQL over the model's table, e.g.
    ``lower(email)``) for some row: one query, an index probe per value where the
    expression is indexed (a semi-join; PostgreSQL reads the table once otherwise).

    ``partial`` repeats the condition of a partial index on ``expression`` (such as
    ``phone_normalised <> ''``): PostgreSQL uses a partial index only when the query
    says its condition holds. Without it the phone lookup read the whole lead table
    (4 s on a million leads, in the check and again in the import); with it, 0.2 s."""
    if not values:
        return set()
    table = model._meta.db_table
    extra = f" AND {partial}" if partial else ""
    sql = (
        "SELECT t.value FROM unnest(%s::text[]) AS t(value) "  # noqa: S608 (names from code)
        f"WHERE EXISTS (SELECT 1 FROM {table} WHERE {expression} = t.value{extra})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_array_literal(values)])
        return {row[0] for row in cursor.fetchall()}


class LeadChecker(_Checker):
    def __init__(self, *, job: ImportJob, actor: User) -> None:
        super().__init__(job=job, actor=actor)
        options = job.mapping or {}
        self.default_source = options.get("default_source", "")
        self.sources = choice_lookup(LeadSource)
        self.stages = choice_lookup(Stage)
        self.date_formats = tuple(get_format("DATE_INPUT_FORMATS", lang=actor.language))
        # Reps import leads they own; marketing unassigned ones; managers and admins
        # name an owner in a column (or leave it empty: unassigned).
        self.forced_owner: tuple[int, int | None, str] | None = None
        if actor.role == Role.REP:
            self.forced_owner = (actor.pk, actor.team_id, actor.display_name)
        self.owner_names: dict[int, str] = {}
        if self.forced_owner:
            self.owner_names[actor.pk] = actor.display_name
        for owner_id, _team, name in self.lookups.owners.values():
            self.owner_names[owner_id] = name
        index = self._index
        self.i_contact, self.i_company = index("contact_name"), index("company_name")
        self.i_email, self.i_phone = index("email"), index("phone")
        self.i_source, self.i_lines = index("source"), index("product_lines")
        self.i_territory, self.i_timeframe = index("territory"), index("timeframe")
        self.i_value, self.i_stage = index("estimated_value"), index("stage")
        self.i_owner = index("owner")

    def _source(self, raw: str) -> tuple[Any, str | None]:
        found = self.sources.get(_choice_key(raw))
        if found is None:
            return "", _("Unknown source “%(value)s”: use a source from the list.") % {"value": raw}
        return found, None

    def _stage(self, raw: str) -> tuple[Any, str | None]:
        found = self.stages.get(_choice_key(raw))
        if found is None:
            return "", _("Unknown stage “%(value)s”.") % {"value": raw}
        if found not in OPEN_STAGES:
            return "", _(
                "A lead is imported in an open stage (suspect, cold, warm, hot, MQL or SQL), "
                "not “%(value)s”."
            ) % {"value": raw}
        return found, None

    def _product_lines(self, raw: str) -> tuple[Any, str | None]:
        lines = self.lookups.product_lines
        names = [raw] if raw.lower() in lines else [n.strip() for n in re.split(r"[;|]", raw)]
        found: list[int] = []
        for name in names:
            key = name.lower()
            if not key:
                continue
            if key in lines:
                if lines[key] not in found:
                    found.append(lines[key])
            elif key in self.lookups.inactive_product_lines:
                return (), _("The product line “%(value)s” is no longer sold.") % {"value": name}
            else:
                return (), _("Unknown product line “%(value)s”.") % {"value": name}
        return tuple(found), None

    def _timeframe(self, raw: str) -> tuple[Any, str | None]:
        found = parse_date(raw, formats=self.date_formats)
        if found is None:
            return None, _("Not a date: “%(value)s” (write it as YYYY-MM-DD or DD/MM/YYYY).") % {
                "value": raw
            }
        return found, None

    def _value(self, raw: str) -> tuple[Any, str | None]:
        try:
            return parse_amount(raw), None
        except ValueError as error:
            return None, str(error)

    def check(self, line: int, cells: list[str]) -> tuple[LeadRow | None, str | None]:
        cell, remember = self._cell, self._remember
        problems: list[str] = []
        if len(cells) > self.width:
            problem = self._width_problem(cells)
            if problem:
                problems.append(problem)
        contact_name = cell(cells, self.i_contact)
        company_name = cell(cells, self.i_company)
        if len(contact_name) > 200 or len(company_name) > 200:
            for label, value in (
                (gettext_lazy("Contact name"), contact_name),
                (gettext_lazy("Company"), company_name),
            ):
                problem = _too_long(label, value, 200)
                if problem:
                    problems.append(problem)
        email = raw = cell(cells, self.i_email)
        if raw:
            email, problem = self._email(raw)  # nearly all different: not remembered
            if problem:
                problems.append(problem)
        phone = raw = cell(cells, self.i_phone)
        phone_normalised = ""
        if raw:
            (phone, phone_normalised), problem = self._phone(raw)
            if problem:
                problems.append(problem)
        if not (contact_name or company_name or email or phone or problems):
            problems.append(_("Give at least a name, a company, an email or a phone."))
        raw = cell(cells, self.i_source)
        if raw:
            source, problem = remember("source", raw, self._source)
            if problem:
                problems.append(problem)
        elif self.default_source:
            source = self.default_source
        else:
            source = ""
            problems.append(_("No source: fill in the source or choose a default source."))
        raw = cell(cells, self.i_lines)
        product_line_ids: tuple[int, ...] = ()
        if raw:
            product_line_ids, problem = remember("lines", raw, self._product_lines)
            if problem:
                problems.append(problem)
        raw = cell(cells, self.i_territory)
        territory_id = None
        if raw:
            territory_id, problem = remember("territory", raw, self._territory)
            if problem:
                problems.append(problem)
        raw = cell(cells, self.i_timeframe)
        timeframe = None
        if raw:
            timeframe, problem = remember("timeframe", raw, self._timeframe)
            if problem:
                problems.append(problem)
        raw = cell(cells, self.i_value)
        estimated_value = None
        if raw:
            estimated_value, problem = remember("value", raw, self._value)
            if problem:
                problems.append(problem)
        raw = cell(cells, self.i_stage)
        stage = Stage.SUSPECT.value
        if raw:
            stage, problem = remember("stage", raw, self._stage)
            if problem:
                problems.append(problem)
        owner_id = team_id = None
        if self.forced_owner:
            owner_id, team_id, _name = self.forced_owner
        else:
            raw = cell(cells, self.i_owner)
            if raw:
                owner, problem = remember("owner", raw, self._owner)
                if problem:
                    problems.append(problem)
                else:
                    owner_id, team_id, _name = owner
        if problems:
            return None, " ".join(problems)
        return (
            LeadRow(
                line,
                contact_name,
                company_name,
                email,
                phone,
                phone_normalised,
                source,
                territory_id,
                timeframe,
                estimated_value,
                owner_id,
                team_id,
                stage,
                product_line_ids,
            ),
            None,
        )

    def duplicates(self, rows: list[LeadRow]) -> dict[int, str]:
        """Same email or normalised phone as an earlier row, or as any existing lead
        (whoever's: the reason names nothing of it)."""
        found: dict[int, str] = {}
        first_email: dict[str, int] = {}
        first_phone: dict[str, int] = {}
        for row in rows:
            if row.email:
                first = first_email.setdefault(row.email, row.line)
                if first != row.line:
                    found[row.line] = _("Same email as line %(line)d.") % {"line": first}
                    continue
            if row.phone_normalised:
                first = first_phone.setdefault(row.phone_normalised, row.line)
                if first != row.line:
                    found[row.line] = _("Same phone as line %(line)d.") % {"line": first}
        emails = _existing(Lead, "lower(email)", set(first_email))
        # The values are never empty: the condition of the partial index lead_phone_norm.
        phones = _existing(
            Lead, "phone_normalised", set(first_phone), partial="phone_normalised <> ''"
        )
        for row in rows:
            if row.line in found:
                continue
            if row.email in emails:
                found[row.line] = _("A lead with this email already exists.")
            elif row.phone_normalised in phones:
                found[row.line] = _("A lead with this phone already exists.")
        return found


class CustomerChecker(_Checker):
    def __init__(self, *, job: ImportJob, actor: User) -> None:
        super().__init__(job=job, actor=actor)
        self.kinds = choice_lookup(CustomerKind)
        self.languages: dict[str, str] = {}
        for code, name in settings.LANGUAGES:
            self.languages[code.lower()] = code
            self.languages[code.split("-")[0].lower()] = code
            self.languages[str(name).lower()] = code
            with translation.override("en"):
                self.languages[str(name).lower()] = code
            info = translation.get_language_info(code)
            self.languages[info["name"].lower()] = code
            self.languages[info["name_local"].lower()] = code
        self.default_language = Customer._meta.get_field("language").default
        # customer_create: a rep or manager owns what they add unless told otherwise;
        # a rep cannot name anyone else.
        self.default_owner_id = actor.pk if actor.role in (Role.REP, Role.MANAGER) else None
        self.owner_column = actor.role in OWNER_COLUMN_ROLES
        self.i = {f.key: self._index(f.key) for f in CUSTOMER_IMPORT_FIELDS}

    def _kind(self, raw: str) -> tuple[Any, str | None]:
        found = self.kinds.get(_choice_key(raw))
        if found is None:
            return "", _("Unknown kind “%(value)s”: company or person.") % {"value": raw}
        return found, None

    def _language(self, raw: str) -> tuple[Any, str | None]:
        found = self.languages.get(raw.lower())
        if found is None:
            return "", _("Unknown language “%(value)s”.") % {"value": raw}
        return found, None

    def check(self, line: int, cells: list[str]) -> tuple[CustomerRow | None, str | None]:
        cell, remember, i = self._cell, self._remember, self.i
        problems: list[str] = []
        if len(cells) > self.width:
            problem = self._width_problem(cells)
            if problem:
                problems.append(problem)
        name = cell(cells, i["name"])
        if not name:
            problems.append(_("A customer needs a name."))
        texts = {}
        for key, label, limit in (
            ("name", gettext_lazy("Name"), 200),
            ("city", gettext_lazy("City"), 100),
            ("country", gettext_lazy("Country"), 100),
        ):
            texts[key] = cell(cells, i[key])
            problem = _too_long(label, texts[key], limit)
            if problem:
                problems.append(problem)
        kind = CustomerKind.COMPANY.value
        raw = cell(cells, i["kind"])
        if raw:
            kind, problem = remember("kind", raw, self._kind)
            if problem:
                problems.append(problem)
        email = raw = cell(cells, i["email"])
        if raw:
            email, problem = self._email(raw)  # nearly all different: not remembered
            if problem:
                problems.append(problem)
        phone = raw = cell(cells, i["phone"])
        phone_normalised = ""
        if raw:
            (phone, phone_normalised), problem = self._phone(raw)
            if problem:
                problems.append(problem)
        language = self.default_language
        raw = cell(cells, i["language"])
        if raw:
            language, problem = remember("language", raw, self._language)
            if problem:
                problems.append(problem)
        territory_id = None
        raw = cell(cells, i["territory"])
        if raw:
            territory_id, problem = remember("territory", raw, self._territory)
            if problem:
                problems.append(problem)
        owner_id = self.default_owner_id
        raw = cell(cells, i.get("owner")) if self.owner_column else ""
        if raw:
            owner, problem = remember("owner", raw, self._owner)
            if problem:
                problems.append(problem)
            else:
                owner_id = owner[0]
        if problems:
            return None, " ".join(problems)
        return (
            CustomerRow(
                line,
                kind,
                name,
                email,
                phone,
                phone_normalised,
                cell(cells, i["address"]),
                texts["city"],
                texts["country"],
                language,
                territory_id,
                cell(cells, i["notes"]),
                owner_id,
            ),
            None,
        )

    def duplicates(self, rows: list[CustomerRow]) -> dict[int, str]:
        """The rule of ``services.customer_duplicates`` (same email, normalised phone or
        name in any case), for all rows at once: three indexed queries, not one per row."""
        found: dict[int, str] = {}
        firsts: dict[str, dict[str, int]] = {"email": {}, "phone": {}, "name": {}}
        messages = {
            "email": _("Same email as line %(line)d."),
            "phone": _("Same phone as line %(line)d."),
            "name": _("Same name as line %(line)d."),
        }
        for row in rows:
            for key, value in (
                ("email", row.email),
                ("phone", row.phone_normalised),
                ("name", row.name.lower()),
            ):
                if not value:
                    continue
                first = firsts[key].setdefault(value, row.line)
                if first != row.line:
                    found[row.line] = messages[key] % {"line": first}
                    break
        existing = {
            "email": _existing(Customer, "lower(email)", set(firsts["email"])),
            "phone": _existing(Customer, "phone_normalised", set(firsts["phone"])),
            "name": _existing(Customer, "lower(name)", set(firsts["name"])),
        }
        reasons = {
            "email": _("A customer with this email already exists."),
            "phone": _("A customer with this phone already exists."),
            "name": _("A customer with this name already exists."),
        }
        for row in rows:
            if row.line in found:
                continue
            for key, value in (
                ("email", row.email),
                ("phone", row.phone_normalised),
                ("name", row.name.lower()),
            ):
                if value and value in existing[key]:
                    found[row.line] = reasons[key]
                    break
        return found


def checker_for(*, job: ImportJob, actor: User) -> _Checker:
    if job.kind == ImportKind.CUSTOMERS:
        return CustomerChecker(job=job, actor=actor)
    return LeadChecker(job=job, actor=actor)


Progress = Callable[[int], None]


# The check's valid rows and errors are kept this long for the import to reuse.
CHECK_KEPT_SECONDS = 24 * 60 * 60
# Part of the fingerprint: raise it when the way a row is checked changes, so that
# results kept by older code are never reused.
CHECK_VERSION = 1


def _check_key(job_id: int) -> str:
    return f"leads:import:{job_id}:checked"


def _check_fingerprint(job: ImportJob, checker: _Checker) -> str | None:
    """A hash of everything a lead check's valid rows and errors depend on: the file,
    the mapping, the importer (role, team, language) and what the rows refer to as
    read now (territories, product lines, owners the importer may name, active or
    not). Equal fingerprints give equal rows and errors, so the import can reuse
    the check's instead of reading the file again; duplicates depend on the leads
    in the table and are always looked up again. None for customer imports (they
    are checked again in full)."""
    if not isinstance(checker, LeadChecker):
        return None
    mapping = job.mapping or {}
    lookups = checker.lookups
    actor = checker.actor
    state = (
        CHECK_VERSION,
        hashlib.blake2b(job.content.encode(), digest_size=32).hexdigest(),
        mapping.get("file", {}).get("delimiter", ","),
        list(job.header),
        translation.get_language(),
        (actor.pk, actor.role, actor.team_id, actor.display_name),
        sorted(checker.columns.items()),
        checker.width,
        checker.default_source,
        checker.date_formats,
        checker.forced_owner,
        sorted(lookups.territories.items()),
        sorted(lookups.inactive_territories),
        sorted(lookups.product_lines.items()),
        sorted(lookups.inactive_product_lines),
        sorted(lookups.owners.items()),
    )
    return hashlib.blake2b(repr(state).encode(), digest_size=32).hexdigest()


def check_rows(
    *,
    job: ImportJob,
    actor: User,
    progress: Progress | None = None,
    reuse: bool = False,
) -> CheckResult:
    """Every non-blank row of the job's file checked; duplicates among the valid ones.

    The valid rows and errors are kept in the cache with their fingerprint
    (``_check_fingerprint``). With ``reuse`` (the import), kept ones with the same
    fingerprint are taken instead of checking the file again: the import's second
    check then costs the duplicate lookups only. Without the cache the rows are
    simply checked again.
    """
    checker = checker_for(job=job, actor=actor)
    fingerprint = _check_fingerprint(job, checker)
    if reuse and fingerprint is not None:
        try:
            kept = cache.get(_check_key(job.pk))
        except Exception:  # the cache is a shortcut: without it, check again
            logger.warning("Import %s: the kept check could not be read", job.pk, exc_info=True)
            kept = None
        if kept is not None and kept[0] == fingerprint:
            result = CheckResult(total=kept[1], valid=kept[2], errors=kept[3])
            result.duplicates = checker.duplicates(result.valid)
            return result
    result = CheckResult()
    reader = _reader(job.content, (job.mapping or {}).get("file", {}).get("delimiter", ","))
    next(reader, None)
    check, valid, errors = checker.check, result.valid, result.errors
    processed = 0
    for line, cells in enumerate(reader, start=2):
        if _is_blank(cells):
            continue
        row, problem = check(line, cells)
        if problem is None:
            valid.append(row)
        else:
            errors.append({"line": line, "reason": problem})
        processed += 1
        if progress is not None and processed % PROGRESS_EVERY == 0:
            progress(processed)
    result.total = processed
    result.duplicates = checker.duplicates(valid)
    if fingerprint is not None and not reuse:
        try:
            cache.set(
                _check_key(job.pk),
                (fingerprint, result.total, result.valid, result.errors),
                CHECK_KEPT_SECONDS,
            )
        except Exception:
            logger.warning("Import %s: the check could not be kept", job.pk, exc_info=True)
    return result


# --- The job's steps ----------------------------------------------------------------------


def _queue(job_id: int) -> None:
    from leads.tasks import import_run

    transaction.on_commit(lambda: import_run.delay(job_id=job_id))


def import_job_create(*, actor: User, kind: str, file_name: str, data: bytes) -> ImportJob:
    """Read and check the file, store it with guessed columns (status uploaded)."""
    if kind not in KIND_ROLES:
        raise ValidationError({"kind": _("Choose leads or customers.")})
    if actor.role not in KIND_ROLES[kind]:
        raise ValidationError({"kind": _("You cannot import customers.")})
    csv_file = read_csv(data)
    columns = guess_mapping(header=csv_file.header, kind=kind, user=actor)
    return ImportJob.objects.create(
        kind=kind,
        uploaded_by=actor,
        file_name=(file_name or "import.csv")[:255],
        content=csv_file.text,
        header=csv_file.header,
        mapping={
            "file": {"delimiter": csv_file.delimiter, "encoding": csv_file.encoding},
            "columns": columns,
            "default_source": "",
            "route": True,
        },
        total_rows=csv_file.rows,
    )


def import_job_map(
    *,
    job: ImportJob,
    actor: User,
    columns: dict[str, int],
    default_source: str = "",
    route: bool = True,
    queue: bool = True,
) -> ImportJob:
    """Save which column holds which field and start the check (status validating).

    The rules are the uploader's, whoever maps (an admin may help): the import is
    theirs. ``queue`` False leaves the check to the caller (the management command
    runs it in its own process). Refused while the job is being checked or imported.
    """
    allowed = {f.key: f for f in fields_for(kind=job.kind, user=job.uploaded_by)}
    unknown = set(columns) - set(allowed)
    if unknown:
        raise ValidationError(
            _("These fields cannot be imported here: %(fields)s.")
            % {"fields": ", ".join(sorted(unknown))}
        )
    if any(not 0 <= int(index) < len(job.header) for index in columns.values()):
        raise ValidationError(_("Choose columns of the file."))
    if len(set(columns.values())) != len(columns):
        raise ValidationError(_("Each column can fill only one field."))
    if job.kind == ImportKind.LEADS:
        if not set(columns) & set(CONTACT_FIELDS):
            raise ValidationError(
                _("Choose at least one column for the contact name, company, email or phone.")
            )
        if default_source and default_source not in LeadSource.values:
            raise ValidationError({"default_source": _("Choose a source from the list.")})
        if "source" not in columns and not default_source:
            raise ValidationError(
                {"default_source": _("Choose the source column, or a source for all rows.")}
            )
    elif "name" not in columns:
        raise ValidationError(_("Choose the column with the customer's name."))
    mapping = {
        **(job.mapping or {}),
        "columns": {key: int(index) for key, index in columns.items()},
        "default_source": default_source if job.kind == ImportKind.LEADS else "",
        "route": bool(route),
        "import_duplicates": False,
    }
    with transaction.atomic():
        claimed = ImportJob.objects.filter(pk=job.pk, status__in=REMAPPABLE).update(
            mapping=mapping,
            status=ImportStatus.VALIDATING,
            processed_rows=0,
            valid_rows=0,
            duplicate_rows=0,
            imported_rows=0,
            errors=[],
            failure="",
            finished_at=None,
        )
        if not claimed:
            raise ValidationError(_("This import is being checked or imported already."))
        if queue:
            _queue(job.pk)
    return _job_without_content(job.pk)


def _fail(job_id: int, *, status_from: str, reason: str) -> None:
    ImportJob.objects.filter(pk=job_id, status=status_from).update(
        status=ImportStatus.FAILED, failure=reason[:2000], finished_at=timezone.now()
    )


def _failure_text(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return _("%(error)s. Nothing was imported.") % {
        "error": f"{type(error).__name__}: {error}".strip().rstrip(".")
    }


def import_job_check(*, job_id: int, progress: Progress | None = None) -> ImportJob:
    """Check every row of a job in "validating"; save counts, errors and duplicates.

    Progress is saved in ``processed_rows`` every PROGRESS_EVERY rows. Safe to
    repeat: it starts from the file again and writes the same result; a job no
    longer in "validating" (remapped, or already checked) is left as it is.
    """
    job = ImportJob.objects.select_related("uploaded_by").get(pk=job_id)
    if job.status != ImportStatus.VALIDATING:
        return _job_without_content(job_id)
    actor = job.uploaded_by

    def save_progress(processed: int) -> None:
        ImportJob.objects.filter(pk=job_id, status=ImportStatus.VALIDATING).update(
            processed_rows=processed
        )
        if progress is not None:
            progress(processed)

    try:
        with translation.override(actor.language):
            result = check_rows(job=job, actor=actor, progress=save_progress)
    except Exception as error:
        logger.exception("Import %s: the check failed", job_id)
        with translation.override(actor.language):
            _fail(job_id, status_from=ImportStatus.VALIDATING, reason=_failure_text(error))
        return _job_without_content(job_id)
    ImportJob.objects.filter(pk=job_id, status=ImportStatus.VALIDATING).update(
        status=ImportStatus.VALIDATED,
        total_rows=result.total,
        processed_rows=result.total,
        valid_rows=len(result.valid),
        duplicate_rows=len(result.duplicates),
        errors=result.flagged(),
    )
    return _job_without_content(job.pk)


def importable_rows(job: ImportJob, *, import_duplicates: bool | None = None) -> int:
    """How many rows an import would bring in, from the last check's counts."""
    if import_duplicates is None:
        import_duplicates = bool((job.mapping or {}).get("import_duplicates"))
    return job.valid_rows - (0 if import_duplicates else job.duplicate_rows)


def import_job_confirm(
    *, job: ImportJob, actor: User, import_duplicates: bool, queue: bool = True
) -> ImportJob:
    """Validated → importing, with the user's choice about duplicates; queues the import."""
    if job.status != ImportStatus.VALIDATED:
        raise ValidationError(_("Only a checked import can be started."))
    if importable_rows(job, import_duplicates=import_duplicates) <= 0:
        raise ValidationError(_("There are no rows to import."))
    mapping = {**(job.mapping or {}), "import_duplicates": bool(import_duplicates)}
    with transaction.atomic():
        claimed = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.VALIDATED).update(
            status=ImportStatus.IMPORTING, mapping=mapping, imported_rows=0, failure=""
        )
        if not claimed:
            raise ValidationError(_("This import is being checked or imported already."))
        if queue:
            _queue(job.pk)
    cache.delete(progress_key(job.pk))
    return _job_without_content(job.pk)


def progress_key(job_id: int) -> str:
    """Where the import saves how many rows are in so far: a cache key, because the
    rows go in inside one transaction, which the status page cannot see into."""
    return f"leads:import:{job_id}:imported"


def import_job_import(
    *, job_id: int, now: datetime | None = None, progress: Progress | None = None
) -> ImportJob:
    """Import the valid rows of a job in "importing", all in one transaction.

    The rows are checked again inside the transaction. Duplicates are left out
    unless the user chose to import them. On any failure nothing is imported and
    the job is "failed" with the reason. Safe to repeat: the job row is locked for
    the whole import, and a job no longer "importing" is left as it is, so a
    redelivered task imports nothing twice.
    """
    now = now or timezone.now()
    job = _job_without_content(job_id)
    if job.status != ImportStatus.IMPORTING:
        return job
    actor = job.uploaded_by

    def report(done: int) -> None:
        cache.set(progress_key(job_id), done, 60 * 60)
        if progress is not None:
            progress(done)

    # How long each part took: logged, for whoever wonders why an import is slow.
    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = time.monotonic() - clock
        clock = time.monotonic()

    try:
        with translation.override(actor.language), transaction.atomic():
            job = (
                ImportJob.objects.select_for_update(of=("self",))
                .select_related("uploaded_by")
                .get(pk=job_id)
            )
            if job.status != ImportStatus.IMPORTING:
                return job
            with connection.cursor() as cursor:
                # One transaction, all or nothing either way; not waiting for the WAL
                # flush at commit risks, on a server crash right after, only this
                # import being lost as a whole, never half of it.
                cursor.execute("SET LOCAL synchronous_commit = off")
            result = check_rows(job=job, actor=actor, reuse=True)
            take_duplicates = bool((job.mapping or {}).get("import_duplicates"))
            rows = [
                row for row in result.valid if take_duplicates or row.line not in result.duplicates
            ]
            lap("check")
            if job.kind == ImportKind.CUSTOMERS:
                _insert_customers(rows, actor=actor, now=now, report=report)
                lap("insert")
            else:
                route_all = bool((job.mapping or {}).get("route", True))
                to_route = _to_route(rows, route_all=route_all)
                _check_routing_size(len(to_route))  # before the work, not after
                lead_ids = _insert_leads(rows, job=job, actor=actor, now=now, report=report)
                lap("insert")
                timings["routed"] = _route_new_leads(
                    [lead_ids[position] for position in to_route], now=now
                )
                lap("routing")
            flagged = result.flagged()
            if take_duplicates:
                flagged = [row for row in flagged if not row.get("duplicate")]
            ImportJob.objects.filter(pk=job_id).update(
                status=ImportStatus.DONE,
                total_rows=result.total,
                processed_rows=result.total,
                valid_rows=len(result.valid),
                duplicate_rows=len(result.duplicates),
                errors=flagged,
                imported_rows=len(rows),
                finished_at=now,
            )
        lap("commit")  # deferred foreign-key checks run here
        logger.info(
            "Import %s: %d rows in %.1f s (%s)",
            job_id,
            len(rows),
            sum(seconds for name, seconds in timings.items() if name != "routed"),
            ", ".join(f"{name} {value:.1f}" for name, value in timings.items() if name != "routed"),
            extra={"import_timings": timings},
        )
    except Exception as error:
        logger.exception("Import %s failed; nothing was imported", job_id)
        with translation.override(actor.language):
            _fail(job_id, status_from=ImportStatus.IMPORTING, reason=_failure_text(error))
    finally:
        cache.delete_many([progress_key(job_id), _check_key(job_id)])
    return _job_without_content(job_id)


def _job_without_content(job_id: int) -> ImportJob:
    """The job as the callers need it after a step: its file is not read again."""
    return ImportJob.objects.select_related("uploaded_by").defer("content").get(pk=job_id)


def import_job_advance(*, job_id: int) -> str:
    """What the Celery task runs: check or import, whichever the job is waiting for."""
    job = ImportJob.objects.filter(pk=job_id).only("status").first()
    if job is None:
        return "missing"
    if job.status == ImportStatus.VALIDATING:
        return import_job_check(job_id=job_id).status
    if job.status == ImportStatus.IMPORTING:
        return import_job_import(job_id=job_id).status
    return job.status


# --- Set-based insert: COPY ---------------------------------------------------------------

# COPY's text format: backslash escapes, \N for NULL.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"


def _text(value: str) -> str:
    return value.translate(_COPY_ESCAPES)


def _copy_batch(cursor: Any, table: str, columns: tuple[str, ...], lines: list[str]) -> None:
    """COPY ``lines`` (tab-separated, escaped) into ``table`` with a DB-API ``cursor`` of
    the transaction's connection: one round trip per batch."""
    if not lines:
        return
    buffer = io.StringIO("\n".join(lines) + "\n")
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    if hasattr(cursor, "copy_expert"):  # psycopg2
        cursor.copy_expert(sql, buffer, size=1 << 20)
    else:  # psycopg 3
        with cursor.copy(sql) as copy:
            copy.write(buffer.getvalue())


class _CopyWriter:
    """Sends the COPY batches from a second thread, on the connection (and so in the
    transaction) of the caller: PostgreSQL inserts one batch while Python prepares the
    next, which keeps both cores busy. The caller must not use the connection until
    ``close``; an error in a batch is raised by the next ``put`` or by ``close``.
    """

    def __init__(self) -> None:
        connection.ensure_connection()
        self._cursor = connection.connection.cursor()
        self._queue: queue.Queue[tuple[str, tuple[str, ...], list[str]] | None] = queue.Queue(
            maxsize=3
        )
        self._error: BaseException | None = None
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="import-copy", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None and not self._abandoned:
                try:
                    _copy_batch(self._cursor, *item)
                except BaseException as error:  # handed to the caller's thread
                    self._error = error

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, table: str, columns: tuple[str, ...], lines: list[str]) -> None:
        self._raise()
        self._queue.put((table, columns, lines))

    def close(self) -> None:
        """Wait for every batch to be in; raise the first error, if any."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._cursor.close()
        self._raise()

    def __enter__(self) -> _CopyWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
            return
        # The caller failed: skip what is still queued, wait for the thread, let the
        # caller's error through (the transaction is rolled back anyway).
        self._abandoned = True
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._cursor.close()


def _reserve_ids(model: type, count: int) -> list[int]:
    """``count`` ids from the table's own sequence, so that other inserts never collide."""
    if not count:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, count],
        )
        return [row[0] for row in cursor.fetchall()]


LEAD_COLUMNS = (
    "id",
    "customer_id",
    "contact_name",
    "company_name",
    "email",
    "phone",
    "phone_normalised",
    "source",
    "territory_id",
    "timeframe",
    "estimated_value",
    "owner_id",
    "team_id",
    "stage",
    "temperature",
    "temperature_overridden",
    "lost_reason",
    "score",
    "score_breakdown",
    "win_probability",
    "last_contact_at",
    "reached_mql_at",
    "reached_sql_at",
    "decided_at",
    "assigned_by_rule",
    "created_by_id",
    "created_at",
    "updated_at",
)
EVENT_COLUMNS = (
    "lead_id",
    "kind",
    "from_value",
    "to_value",
    "reason",
    "comment",
    "actor_id",
    "created_at",
)
CUSTOMER_COLUMNS = (
    "kind",
    "name",
    "email",
    "phone",
    "phone_normalised",
    "address",
    "city",
    "country",
    "language",
    "territory_id",
    "owner_id",
    "notes",
    "extra",
    "created_by_id",
    "created_at",
    "updated_at",
)


def _covered_territories() -> set[int]:
    """Territories an active rep covers: the scoring's "fit: territory" rule, read once."""
    return set(
        User.territories.through.objects.filter(
            territory__is_active=True, user__is_active=True, user__role=Role.REP
        ).values_list("territory_id", flat=True)
    )


class _NewLeadScorer:
    """The score of a lead just created, as ``leads.scoring.lead_rescore`` would give it.

    A new lead has no activity, no customer and was created ``now``, so its score
    depends only on its own fields: each distinct combination is computed once by
    the scoring module's own ``score_compute``.
    """

    def __init__(self, *, now: datetime) -> None:
        from leads.scoring import latest_win_model, scoring_config

        self.now = now
        self.config = scoring_config()
        self.model = latest_win_model()
        self.covered = _covered_territories()
        self._memo: dict[tuple[Any, ...], tuple[int, str, str]] = {}

    def score(self, row: LeadRow, temperature: str) -> tuple[int, str, str]:
        """(score, breakdown as COPY text, win probability as COPY text)."""
        covered = row.territory_id in self.covered
        key = (
            row.source,
            temperature,
            # Without a win model the territory and the lines count only as
            # covered / given; with one, each is evidence of its own.
            row.territory_id if self.model else (row.territory_id is not None, covered),
            row.product_line_ids if self.model else bool(row.product_line_ids),
            bool(row.email),
            bool(row.phone),
            bool(row.contact_name),
            bool(row.company_name),
        )
        found = self._memo.get(key)
        if found is None:
            from leads.scoring import LeadFeatures, score_compute

            features = LeadFeatures(
                pk=0,
                score=0,
                score_breakdown=[],
                win_probability=None,
                source=row.source,
                temperature=temperature,
                territory_id=row.territory_id,
                product_line_ids=list(row.product_line_ids),
                # The check accepts active product lines only.
                has_active_product_line=bool(row.product_line_ids),
                territory_covered=covered,
                recent_contacts=0,
                email=row.email,
                phone=row.phone,
                contact_name=row.contact_name,
                company_name=row.company_name,
                customer_id=None,
                last_contact_at=None,
                created_at=self.now,
            )
            result = score_compute(features, model=self.model, now=self.now, config=self.config)
            found = self._memo[key] = (
                result.score,
                _text(json.dumps(result.breakdown, ensure_ascii=False)),
                NULL if result.win_probability is None else str(result.win_probability),
            )
        return found


def _lead_line(
    lead_id: int,
    row: LeadRow,
    *,
    temperature: str,
    overridden: bool,
    scored: tuple[int, str, str],
    stamp: str,
    actor_id: str,
) -> str:
    score, breakdown, probability = scored
    return "\t".join(
        (
            str(lead_id),
            NULL,  # customer
            _text(row.contact_name),
            _text(row.company_name),
            _text(row.email),
            _text(row.phone),
            row.phone_normalised,
            row.source,
            NULL if row.territory_id is None else str(row.territory_id),
            NULL if row.timeframe is None else row.timeframe.isoformat(),
            NULL if row.estimated_value is None else str(row.estimated_value),
            NULL if row.owner_id is None else str(row.owner_id),
            NULL if row.team_id is None else str(row.team_id),
            row.stage,
            temperature,
            "t" if overridden else "f",
            "",  # lost reason
            str(score),
            breakdown,
            probability,
            NULL,  # last contact
            stamp if row.stage in (Stage.MQL, Stage.SQL) else NULL,
            stamp if row.stage == Stage.SQL else NULL,
            NULL,  # decided
            "",  # assigned by rule
            actor_id,
            stamp,
            stamp,
        )
    )


def _insert_leads(
    rows: list[LeadRow], *, job: ImportJob, actor: User, now: datetime, report: Progress
) -> list[int]:
    """COPY the leads (ids reserved first), their product lines and their history, in
    batches of BATCH_SIZE. Returns the new ids in row order.

    As ``lead_create`` does: the temperature is derived from the timeframe, or is the
    stage when the lead comes in cold, warm or hot (overridden when that differs from
    a given timeframe); the history has a "created" event and, for a lead with an
    owner, an "owner" event (routing counts those as leads given to a rep). The score
    and its breakdown are computed before the insert (``_NewLeadScorer``), so each row
    goes in once, complete; unlike ``lead_create`` no "score 0 → n" event is written
    for it: that event records a change, and a third history row per lead would cost
    the import a quarter of its time.
    """
    today = timezone.localdate(now)
    stamp = now.isoformat()
    actor_id = str(actor.pk)
    ids = _reserve_ids(Lead, len(rows))
    scorer = _NewLeadScorer(now=now)
    owner_ids = {row.owner_id for row in rows if row.owner_id is not None}
    owner_labels = {
        pk: _text(name[:200])
        for pk, name in User.objects.filter(pk__in=owner_ids).values_list("pk", "display_name")
    }
    created = LeadEventKind.CREATED.value
    owner_kind = LeadEventKind.OWNER.value
    comment = _text(_("Imported from %(file)s") % {"file": job.file_name})
    tables = (
        (Lead._meta.db_table, LEAD_COLUMNS),
        (Lead.product_lines.through._meta.db_table, ("lead_id", "productline_id")),
        (LeadEvent._meta.db_table, EVENT_COLUMNS),
    )
    temperatures: dict[date | None, str] = {}
    done = 0
    with _CopyWriter() as writer:
        for start in range(0, len(rows), BATCH_SIZE):
            leads: list[str] = []
            lines: list[str] = []
            events: list[str] = []
            batch = zip(
                ids[start : start + BATCH_SIZE], rows[start : start + BATCH_SIZE], strict=True
            )
            for lead_id, row in batch:
                derived = temperatures.get(row.timeframe)
                if derived is None:
                    derived = temperatures[row.timeframe] = temperature_for(
                        timeframe=row.timeframe, today=today
                    )
                temperature, overridden = derived, False
                if row.stage in TEMPERATURE_STAGES:
                    temperature = row.stage
                    overridden = row.stage != derived and row.timeframe is not None
                scored = scorer.score(row, temperature)
                leads.append(
                    _lead_line(
                        lead_id,
                        row,
                        temperature=temperature,
                        overridden=overridden,
                        scored=scored,
                        stamp=stamp,
                        actor_id=actor_id,
                    )
                )
                lines.extend(f"{lead_id}\t{line_id}" for line_id in row.product_line_ids)
                events.append(
                    f"{lead_id}\t{created}\t\t{row.stage}\t\t{comment}\t{actor_id}\t{stamp}"
                )
                if row.owner_id is not None:
                    label = owner_labels[row.owner_id]
                    events.append(f"{lead_id}\t{owner_kind}\t\t{label}\t\t\t{actor_id}\t{stamp}")
            for (table, columns), batch_lines in zip(tables, (leads, lines, events), strict=True):
                writer.put(table, columns, batch_lines)
            done += len(leads)
            report(done)  # handed to PostgreSQL: at most a batch ahead of what is in
    return ids


def _to_route(rows: list[LeadRow], *, route_all: bool) -> list[int]:
    """Positions of the rows whose leads will be routed: no owner, routing asked for
    (or an SQL lead, which ``lead_create`` always routes), and an active rule that
    could match (its set conditions: territory, source, one of the product lines).
    Leads no rule can match are not sent to ``lead_route`` at all, sparing its queries.
    """
    rules = list(
        RoutingRule.objects.filter(is_active=True, team__is_active=True).values_list(
            "territory_id", "product_line_id", "source"
        )
    )
    if not rules:
        return []

    def may_match(row: LeadRow) -> bool:
        return any(
            (territory is None or territory == row.territory_id)
            and (not source or source == row.source)
            and (line is None or line in row.product_line_ids)
            for territory, line, source in rules
        )

    return [
        position
        for position, row in enumerate(rows)
        if row.owner_id is None and (route_all or row.stage == Stage.SQL) and may_match(row)
    ]


def _check_routing_size(count: int) -> None:
    if count > ROUTE_AT_MOST:
        raise ValidationError(
            _(
                "%(count)s leads without an owner would be routed, one at a time: at most "
                "%(limit)s can be in one import. Untick routing (they stay unassigned, to "
                "be given out later), name their owners in the file, or split it."
            )
            % {"count": f"{count:,}", "limit": f"{ROUTE_AT_MOST:,}"}
        )


def _route_new_leads(lead_ids: list[int], *, now: datetime) -> int:
    """``leads.routing.lead_route`` for each of these new leads, in order; returns how
    many got an owner. Routing is per lead by nature (round robin, capacities)."""
    from leads.routing import lead_route

    routed = 0
    for start in range(0, len(lead_ids), 1000):
        leads = Lead.objects.filter(pk__in=lead_ids[start : start + 1000]).order_by("pk")
        for lead in leads.only("pk", "owner_id", "team_id", "territory_id", "source"):
            if lead_route(lead=lead, now=now) is not None:
                routed += 1
    return routed


def _insert_customers(
    rows: list[CustomerRow], *, actor: User, now: datetime, report: Progress
) -> None:
    stamp = now.isoformat()
    actor_id = str(actor.pk)
    table = Customer._meta.db_table
    with _CopyWriter() as writer:
        for start in range(0, len(rows), BATCH_SIZE):
            batch = rows[start : start + BATCH_SIZE]
            lines = [
                "\t".join(
                    (
                        row.kind,
                        _text(row.name),
                        _text(row.email),
                        _text(row.phone),
                        row.phone_normalised,
                        _text(row.address),
                        _text(row.city),
                        _text(row.country),
                        row.language,
                        NULL if row.territory_id is None else str(row.territory_id),
                        NULL if row.owner_id is None else str(row.owner_id),
                        _text(row.notes),
                        "{}",  # extra
                        actor_id,
                        stamp,
                        stamp,
                    )
                )
                for row in batch
            ]
            writer.put(table, CUSTOMER_COLUMNS, lines)
            report(start + len(batch))


# --- Reading a job back -------------------------------------------------------------------


def rejected_rows_csv(job: ImportJob) -> Iterator[str]:
    """The rows that were not (or will not be) imported: the file's own columns, then
    "line" and "reason"; cells a spreadsheet would run as formulas are neutralised.
    A UTF-8 BOM first, so that spreadsheets read the accents; same delimiter as the file.
    """
    from leads.exporting import neutralise

    delimiter = (job.mapping or {}).get("file", {}).get("delimiter", ",")
    import_duplicates = job.status == ImportStatus.DONE and bool(
        (job.mapping or {}).get("import_duplicates")
    )
    reasons: dict[int, str] = {}
    for entry in job.errors or []:
        if entry.get("duplicate") and import_duplicates:
            continue
        reasons[int(entry["line"])] = entry["reason"]

    class Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Echo(), delimiter=delimiter)
    yield "\ufeff" + writer.writerow(
        [neutralise(cell) for cell in [*job.header, _("line"), _("reason")]]
    )
    if not reasons:
        return
    last = max(reasons)
    reader = _reader(job.content, delimiter)
    next(reader, None)
    for line, cells in enumerate(reader, start=2):
        if line > last:
            break
        reason = reasons.get(line)
        if reason is None:
            continue
        padded = [*cells, *[""] * (len(job.header) - len(cells))]
        yield writer.writerow([neutralise(cell) for cell in [*padded, str(line), reason]])


def status_payload(job: ImportJob) -> dict[str, Any]:
    """What the progress poller needs: status, counts and a percentage."""
    if job.status == ImportStatus.IMPORTING:
        target = max(importable_rows(job), 1)
        done = int(cache.get(progress_key(job.pk)) or 0)
    elif job.status == ImportStatus.DONE:
        target = done = job.imported_rows
    else:
        target, done = job.total_rows, job.processed_rows
    percent = min(100, int(done * 100 / target)) if target else 0
    return {
        "status": job.status,
        "status_label": str(ImportStatus(job.status).label),
        "total_rows": job.total_rows,
        "processed_rows": job.processed_rows,
        "valid_rows": job.valid_rows,
        "duplicate_rows": job.duplicate_rows,
        "imported_rows": job.imported_rows if job.status != ImportStatus.IMPORTING else done,
        "percent": percent,
        # Nothing running: the page stops polling.
        "finished": job.status not in (ImportStatus.VALIDATING, ImportStatus.IMPORTING),
    }
