"""``manage.py compile_translations [--force]``: build the .mo files from the .po files.

Django's own ``compilemessages`` needs GNU gettext's ``msgfmt``; this command
uses polib (pure Python), so any machine with the virtualenv can build the
catalogues. It compiles every ``<locale path>/<language>/LC_MESSAGES/*.po`` of
``settings.LOCALE_PATHS`` into the ``.mo`` beside it, and leaves a ``.mo`` alone
when it is at least as new as its ``.po``: running it on every ``make run`` costs
a few ``stat`` calls. Fuzzy and untranslated entries are left out of the
``.mo``, as ``msgfmt`` does. A ``.po`` that cannot be parsed stops the command
with an error naming the file (exit status 1).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import polib
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

# A keyword line or a continuation line: one double-quoted string, escapes allowed.
STRING_LINE = re.compile(
    r'(?:(?:msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?)\s+)?"(?:[^"\\]|\\.)*"'
)


def check_syntax(po_path: Path) -> None:
    """Reject what polib would silently mangle: a .po must be UTF-8 and quote every string.

    polib reads ``msgstr "Salva`` (closing quote missing) as ``"Salv"``; msgfmt
    refuses it, and so does this check. Comment lines (``#...``) are not checked.
    """
    try:
        text = po_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CommandError(f"Cannot parse {po_path}: not UTF-8 ({exc})") from exc
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if line and not line.startswith("#") and not STRING_LINE.fullmatch(line):
            raise CommandError(f"Cannot parse {po_path}: syntax error on line {number}: {line}")


def catalogues(locale_paths: list[Path]) -> list[Path]:
    """Every ``<language>/LC_MESSAGES/*.po`` under the given locale directories, sorted."""
    found: list[Path] = []
    for locale_path in locale_paths:
        if locale_path.is_dir():
            found.extend(locale_path.glob("*/LC_MESSAGES/*.po"))
    return sorted(found)


def is_up_to_date(po_path: Path, mo_path: Path) -> bool:
    """True when the ``.mo`` exists and is not older than its ``.po``."""
    try:
        return mo_path.stat().st_mtime_ns >= po_path.stat().st_mtime_ns
    except FileNotFoundError:
        return False


def compile_catalogue(po_path: Path, mo_path: Path) -> None:
    """Parse ``po_path`` and write ``mo_path`` atomically (no half-written .mo on failure).

    Raises ``CommandError`` naming the file when the ``.po`` cannot be parsed.
    """
    check_syntax(po_path)
    try:
        catalogue = polib.pofile(str(po_path), check_for_duplicates=True)
    except (OSError, ValueError) as exc:  # polib reports syntax errors as OSError
        raise CommandError(f"Cannot parse {po_path}: {exc}") from exc
    fd, tmp_name = tempfile.mkstemp(dir=mo_path.parent, prefix=f".{mo_path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        catalogue.save_as_mofile(tmp_name)
        Path(tmp_name).chmod(0o644)
        Path(tmp_name).replace(mo_path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


class Command(BaseCommand):
    help = (
        "Compile the .po translation catalogues of LOCALE_PATHS into .mo files with polib "
        "(no gettext needed). Only catalogues whose .po is newer than the .mo are rebuilt."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Rebuild every .mo, even those newer than their .po.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        force: bool = options["force"]
        verbosity: int = options["verbosity"]
        compiled = skipped = 0
        for po_path in catalogues([Path(p) for p in settings.LOCALE_PATHS]):
            mo_path = po_path.with_suffix(".mo")
            if not force and is_up_to_date(po_path, mo_path):
                skipped += 1
                if verbosity >= 2:
                    self.stdout.write(f"Up to date: {mo_path}")
                continue
            compile_catalogue(po_path, mo_path)
            compiled += 1
            if verbosity >= 2:
                self.stdout.write(f"Compiled {po_path} -> {mo_path}")
        noun = "catalogue" if compiled == 1 else "catalogues"
        self.stdout.write(
            self.style.SUCCESS(f"Compiled {compiled} translation {noun} ({skipped} up to date).")
        )
