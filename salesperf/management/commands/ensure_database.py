"""Create the database named by DATABASE_URL if the server does not have it yet.

`make run` calls this before `migrate`, so pointing DATABASE_URL at a fresh
PostgreSQL server is enough: nobody has to run createdb by hand.
"""

from __future__ import annotations

from typing import Any

import psycopg2
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg2 import sql


class Command(BaseCommand):
    help = "Create the configured PostgreSQL database if it does not exist."

    def handle(self, *args: Any, **options: Any) -> None:
        db = settings.DATABASES["default"]
        params = {
            "host": db.get("HOST") or None,
            "port": db.get("PORT") or None,
            "user": db.get("USER") or None,
            "password": db.get("PASSWORD") or None,
        }
        try:
            connection = psycopg2.connect(dbname=db["NAME"], **params)
        except psycopg2.OperationalError as error:
            if "does not exist" not in str(error):
                raise CommandError(f"Cannot reach PostgreSQL: {error}".strip()) from None
        else:
            connection.close()
            return
        # Not there: create it from the maintenance database.
        try:
            connection = psycopg2.connect(dbname="postgres", **params)
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
            connection.close()
        except psycopg2.Error as error:
            raise CommandError(f"Cannot create database {db['NAME']!r}: {error}".strip()) from None
        self.stdout.write(f"Created database {db['NAME']}.")
