"""``manage.py import_leads FILE``: the CSV import from a shell, through the same steps
as the pages (leads.importing), run in this process instead of a Celery worker.

    manage.py import_leads leads.csv --as manager@example.com
    manage.py import_leads customers.csv --kind customers --as rep@example.com
    manage.py import_leads list.csv --as admin@example.com \\
        --mapping 'Full name=contact_name,3=email,Notes=-' --default-source trade_show \\
        --skip-duplicates --dry-run

Prints the progress, the counts, and the line and reason of each row not imported.
Exits non-zero when the file cannot be read or the import fails (nothing imported).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from accounts.models import Role, User
from leads import importing
from leads.models import ImportJob, ImportKind, ImportStatus, LeadSource


def parse_mapping(text: str, *, header: list[str], allowed: list[str]) -> dict[int, str]:
    """'column=field,...' → {column index: field, or "" to leave the column out}.

    A column is its name in the header (any case) or its number, counting from 1.
    """
    names = {name.strip().lower(): index for index, name in enumerate(header)}
    found: dict[int, str] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        column, separator, field = part.rpartition("=")
        column, field = column.strip(), field.strip()
        if not separator or not column:
            raise CommandError(f"--mapping: “{part}” is not column=field.")
        if column.isdigit():
            index = int(column) - 1
            if not 0 <= index < len(header):
                raise CommandError(f"--mapping: the file has no column {column}.")
        elif column.lower() in names:
            index = names[column.lower()]
        else:
            raise CommandError(
                f"--mapping: no column “{column}” in the header ({', '.join(header)})."
            )
        if field in ("-", "", "ignore"):
            found[index] = ""
        elif field in allowed:
            found[index] = field
        else:
            raise CommandError(
                f"--mapping: unknown field “{field}”; use one of {', '.join(allowed)} or -."
            )
    return found


class Command(BaseCommand):
    help = "Import leads or customers from a CSV file (checks every row; all or nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The CSV file.")
        parser.add_argument("--kind", choices=list(ImportKind.values), default=ImportKind.LEADS)
        parser.add_argument(
            "--as",
            dest="as_email",
            metavar="EMAIL",
            help="Who imports (their access rules apply). Default: the first active admin.",
        )
        parser.add_argument(
            "--mapping",
            default="",
            help="'column=field,...' on top of the guesses from the header; field - leaves "
            "a column out. A column is its name or its number from 1.",
        )
        parser.add_argument(
            "--default-source",
            default="",
            choices=["", *LeadSource.values],
            help="Source of lead rows without one.",
        )
        parser.add_argument(
            "--no-route",
            action="store_true",
            help="Do not route leads without an owner (SQL leads are routed anyway).",
        )
        parser.add_argument(
            "--skip-duplicates",
            action="store_true",
            help="Leave out the rows that look like duplicates (by default they are imported).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Check every row, import nothing."
        )

    def _actor(self, email: str | None) -> User:
        if email:
            actor = User.objects.filter(email__iexact=email.strip(), is_active=True).first()
            if actor is None:
                raise CommandError(f"No active user has the email {email}.")
            return actor
        actor = User.objects.filter(role=Role.ADMIN, is_active=True).order_by("pk").first()
        if actor is None:
            raise CommandError("There is no active admin: name who imports with --as EMAIL.")
        return actor

    def handle(self, *args: Any, **options: Any) -> None:
        actor = self._actor(options["as_email"])
        path = Path(options["file"])
        try:
            data = path.read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror or error}.") from None
        with translation.override(actor.language):
            self._import(actor=actor, path=path, data=data, options=options)

    def _import(self, *, actor: User, path: Path, data: bytes, options: dict[str, Any]) -> None:
        kind = options["kind"]
        try:
            job = importing.import_job_create(
                actor=actor, kind=kind, file_name=path.name, data=data
            )
        except ValidationError as error:
            raise CommandError(f"{path}: {' '.join(error.messages)}") from None
        try:
            self._run(job=job, actor=actor, options=options)
        finally:
            if options["dry_run"]:
                ImportJob.objects.filter(pk=job.pk).delete()

    def _run(self, *, job: ImportJob, actor: User, options: dict[str, Any]) -> None:
        file_info = job.mapping.get("file", {})
        self.stdout.write(
            f"{job.file_name}: {job.total_rows} rows, "
            f"{importing.DELIMITER_NAMES.get(file_info.get('delimiter'), '?')} separated, "
            f"{importing.ENCODING_NAMES.get(file_info.get('encoding'), '?')}."
        )
        note = importing.encoding_note(file_info.get("encoding", "utf-8"))
        if note:
            self.stdout.write(self.style.WARNING(note))

        fields = importing.fields_for(kind=job.kind, user=actor)
        columns = dict(job.mapping.get("columns", {}))
        overrides = parse_mapping(
            options["mapping"], header=job.header, allowed=[f.key for f in fields]
        )
        for index, field in overrides.items():
            columns = {key: i for key, i in columns.items() if i != index and key != field}
            if field:
                columns[field] = index
        labels = {f.key: str(f.label) for f in fields}
        for key, index in sorted(columns.items(), key=lambda item: item[1]):
            self.stdout.write(f"  {job.header[index]} → {labels[key]}")
        try:
            job = importing.import_job_map(
                job=job,
                actor=actor,
                columns=columns,
                default_source=options["default_source"],
                route=not options["no_route"],
                queue=False,
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None

        total = job.total_rows
        job = importing.import_job_check(
            job_id=job.pk,
            progress=lambda done: self.stdout.write(f"Checked {done:,} of {total:,} rows…"),
        )
        if job.status == ImportStatus.FAILED:
            raise CommandError(job.failure)
        errors = job.total_rows - job.valid_rows
        self.stdout.write(
            f"Valid: {job.valid_rows:,}; with errors: {errors:,}; "
            f"possible duplicates: {job.duplicate_rows:,}."
        )
        for entry in job.errors:
            label = " (duplicate)" if entry.get("duplicate") else ""
            self.stdout.write(f"line {entry['line']}{label}: {entry['reason']}")

        if options["dry_run"]:
            self.stdout.write(self.style.SUCCESS("Dry run: nothing was imported."))
            return
        import_duplicates = not options["skip_duplicates"]
        if importing.importable_rows(job, import_duplicates=import_duplicates) <= 0:
            self.stdout.write(self.style.WARNING("No row can be imported."))
            return
        job = importing.import_job_confirm(
            job=job, actor=actor, import_duplicates=import_duplicates, queue=False
        )
        to_import = importing.importable_rows(job)
        job = importing.import_job_import(
            job_id=job.pk,
            progress=lambda done: self.stdout.write(f"Imported {done:,} of {to_import:,} rows…"),
        )
        if job.status != ImportStatus.DONE:
            raise CommandError(f"The import failed, nothing was imported: {job.failure}")
        self.stdout.write(self.style.SUCCESS(f"Imported {job.imported_rows:,} rows."))
