"""The translation catalogues: complete, consistent, compiled and used by the pages.

``compile_translations`` builds the .mo files with polib; these tests compile
them once, then check what a user would notice: the login page speaks the four
languages, no catalogue has a hole or a fuzzy guess, and no translation loses or
invents a placeholder (which would crash or garble the page at render time).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings
from django.utils import translation

LANGUAGES = ["pt-br", "sv", "it", "ru"]
LOCALE_DIR = Path(settings.LOCALE_PATHS[0])
PO_FILES = sorted(LOCALE_DIR.glob("*/LC_MESSAGES/*.po"))
LOGIN_HEADING = "Log in to salesperf"

# %(name)s / %(count)d, positional %s / %d, and {{ name }} (template variables
# outside blocktranslate); "%%" is a literal percent sign, not a placeholder.
PERCENT_NAMED = re.compile(r"%\((\w+)\)[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")
PERCENT_POSITIONAL = re.compile(r"%[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")
TEMPLATE_VARIABLE = re.compile(r"{{\s*([\w.]+)\s*}}")
BRACE_FIELD = re.compile(r"(?<!{){(\w*)(?:![rsa])?(?::[^{}]*)?}(?!})")


@pytest.fixture(scope="module", autouse=True)
def compiled() -> Iterator[None]:
    """Compile the real catalogues, and make Django reload them.

    Overriding LOCALE_PATHS (with the same value) fires ``setting_changed``,
    which empties Django's cache of loaded translations: a language activated
    by an earlier test, before the .mo existed, is read again.
    """
    call_command("compile_translations", stdout=StringIO())
    with override_settings(LOCALE_PATHS=list(settings.LOCALE_PATHS)):
        yield


def po_id(path: Path) -> str:
    return path.relative_to(LOCALE_DIR).parts[0]


def placeholders(text: str, *, brace_format: bool) -> set[str]:
    text = text.replace("%%", "")
    found = {f"%({name})" for name in PERCENT_NAMED.findall(text)}
    found |= {match for match in PERCENT_POSITIONAL.findall(PERCENT_NAMED.sub("", text))}
    found |= {f"{{{{ {name} }}}}" for name in TEMPLATE_VARIABLE.findall(text)}
    if brace_format:
        found |= {f"{{{name}}}" for name in BRACE_FIELD.findall(TEMPLATE_VARIABLE.sub("", text))}
    return found


def test_every_language_has_a_catalogue() -> None:
    assert {po_id(path) for path in PO_FILES} >= {
        translation.to_locale(language) for language in LANGUAGES
    }


@pytest.mark.parametrize("language", LANGUAGES)
def test_login_heading_is_translated(language: str) -> None:
    with translation.override(language):
        translated = translation.gettext(LOGIN_HEADING)
    assert translated != LOGIN_HEADING
    assert translated.strip()
    assert "salesperf" in translated  # the product name stays as it is


@pytest.mark.parametrize("po_path", PO_FILES, ids=po_id)
def test_catalogue_is_complete_and_not_fuzzy(po_path: Path) -> None:
    catalogue = polib.pofile(str(po_path))
    assert not catalogue.metadata_is_fuzzy, f"{po_path}: the header is marked fuzzy"
    assert catalogue.metadata.get("Language") == po_id(po_path)
    assert [entry.msgid for entry in catalogue.fuzzy_entries()] == []
    empty = [
        entry.msgid
        for entry in catalogue
        if not entry.obsolete
        and (
            not entry.msgstr.strip()
            if not entry.msgid_plural
            else not entry.msgstr_plural
            or any(not form.strip() for form in entry.msgstr_plural.values())
        )
    ]
    assert empty == []
    assert catalogue.percent_translated() == 100


@pytest.mark.parametrize("po_path", PO_FILES, ids=po_id)
def test_translations_keep_the_placeholders(po_path: Path) -> None:
    catalogue = polib.pofile(str(po_path))
    nplurals = int(re.search(r"nplurals\s*=\s*(\d+)", catalogue.metadata["Plural-Forms"])[1])
    mismatches = []
    for entry in catalogue.translated_entries():
        brace = "python-brace-format" in entry.flags
        if entry.msgid_plural:
            assert len(entry.msgstr_plural) == nplurals, entry.msgid
            expected = placeholders(entry.msgid_plural, brace_format=brace)
            translations = list(entry.msgstr_plural.values())
        else:
            expected = placeholders(entry.msgid, brace_format=brace)
            translations = [entry.msgstr]
        for text in translations:
            if placeholders(text, brace_format=brace) != expected:
                mismatches.append((entry.msgid, text))
    assert mismatches == []


def test_placeholder_extraction() -> None:
    """The checker itself sees every kind of placeholder it claims to compare."""
    assert placeholders("Hi %(name)s, 50%% off {{ user.email }} %d", brace_format=False) == {
        "%(name)",
        "{{ user.email }}",
        "%d",
    }
    assert placeholders("{count} of {total:,}", brace_format=True) == {"{count}", "{total}"}


@pytest.mark.django_db
def test_login_page_speaks_italian() -> None:
    with translation.override("it"):
        italian = translation.gettext(LOGIN_HEADING)
    response = Client().get("/login/", HTTP_ACCEPT_LANGUAGE="it")
    assert response.status_code == 200
    assert response.headers["Content-Language"] == "it"
    content = response.content.decode()
    assert italian == "Accedi a salesperf"
    assert italian in content
    assert LOGIN_HEADING not in content


def test_compile_only_rebuilds_changed_catalogues(tmp_path: Path) -> None:
    messages = tmp_path / "sv" / "LC_MESSAGES"
    messages.mkdir(parents=True)
    po_path = messages / "django.po"
    po_path.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n"Language: sv\\n"\n\n'
        'msgid "Save"\nmsgstr "Spara"\n',
        encoding="utf-8",
    )
    mo_path = messages / "django.mo"

    def run() -> str:
        out = StringIO()
        with override_settings(LOCALE_PATHS=[tmp_path]):
            call_command("compile_translations", stdout=out)
        return out.getvalue()

    assert "Compiled 1 translation catalogue (0 up to date)" in run()
    assert polib.mofile(str(mo_path)).find("Save").msgstr == "Spara"
    assert "Compiled 0 translation catalogues (1 up to date)" in run()

    stat = mo_path.stat()
    os.utime(po_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert "Compiled 1 translation catalogue (0 up to date)" in run()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param('msgid "Save"\nmsgstr "Salva\n', id="unclosed-quote"),
        pytest.param('msgid "Save"\nmsgstr Salva\n', id="unquoted"),
        pytest.param("this is not a catalogue\n", id="garbage"),
        pytest.param('msgid "Save"\nmsgstr "Salva"\n\nmsgid "Save"\nmsgstr "Tieni"\n', id="dup"),
    ],
)
def test_compile_names_a_broken_catalogue(tmp_path: Path, content: str) -> None:
    messages = tmp_path / "it" / "LC_MESSAGES"
    messages.mkdir(parents=True)
    po_path = messages / "django.po"
    po_path.write_text(content, encoding="utf-8")
    with (
        override_settings(LOCALE_PATHS=[tmp_path]),
        pytest.raises(CommandError, match=re.escape(str(po_path))),
    ):
        call_command("compile_translations", stdout=StringIO())
    assert not (messages / "django.mo").exists()
