"""`ensure_database` creates the configured database once, then leaves it alone."""

from __future__ import annotations

import uuid
from io import StringIO

import psycopg2
import pytest
from django.conf import settings
from django.core.management import call_command


def _server_params() -> dict[str, str | None]:
    db = settings.DATABASES["default"]
    return {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
    }


def _exists(name: str) -> bool:
    connection = psycopg2.connect(dbname="postgres", **_server_params())
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            return cursor.fetchone() is not None
    finally:
        connection.close()


def test_creates_a_missing_database_once(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"salesperf_ensure_{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(settings.DATABASES["default"], "NAME", name)
    try:
        out = StringIO()
        call_command("ensure_database", stdout=out)
        assert f"Created database {name}." in out.getvalue()
        assert _exists(name)
        again = StringIO()
        call_command("ensure_database", stdout=again)
        assert again.getvalue() == ""
    finally:
        connection = psycopg2.connect(dbname="postgres", **_server_params())
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.close()
