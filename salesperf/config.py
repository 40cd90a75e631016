"""Reading the environment into settings, strictly.

Every variable is validated here; a bad value stops the start with a message that
names the variable and says what is expected, instead of a confusing error later.
``read_config`` takes the environment as a mapping so tests can try bad values.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
DEV_SECRET_KEY = "insecure-dev-only-secret-key-do-not-use-in-production"  # noqa: S105
REDIS_SCHEMES = {"redis", "rediss", "redis+socket", "unix"}
DATABASE_SCHEMES = {"postgres", "postgresql", "pgsql", "psql"}


def _fail(name: str, message: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"Environment variable {name}: {message}")


def parse_bool(name: str, value: str) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise _fail(name, f"expected true or false, got {value!r}.")


def parse_port(name: str, value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise _fail(name, f"expected a port number (1-65535), got {value!r}.") from None
    if not 1 <= port <= 65535:
        raise _fail(name, f"expected a port number (1-65535), got {value!r}.")
    return port


def parse_time_zone(name: str, value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _fail(name, f"{value!r} is not a known time zone (e.g. Europe/Stockholm).") from None
    return value


def parse_currency(name: str, value: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise _fail(name, f"expected a three-letter ISO 4217 code such as EUR, got {value!r}.")
    return value


def parse_hosts(name: str, value: str) -> list[str]:
    hosts = [host.strip() for host in value.split(",") if host.strip()]
    if not hosts:
        raise _fail(name, "expected a comma-separated list of host names.")
    return hosts


def parse_site_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise _fail(
            name,
            f"expected the app's public address, e.g. https://sales.example.com, got {value!r}.",
        )
    return value.rstrip("/")


def parse_database_url(name: str, value: str) -> dict[str, Any]:
    scheme = urlsplit(value).scheme
    if scheme not in DATABASE_SCHEMES:
        raise _fail(name, f"salesperf needs PostgreSQL (postgres://...), got {scheme or value!r}.")
    try:
        config = environ.Env.db_url_config(value)
    except Exception as error:  # django-environ raises several types on garbage
        raise _fail(name, f"cannot be read: {error}.") from None
    if not config.get("NAME"):
        raise _fail(name, "names no database (postgres://user@host:5432/DATABASE).")
    # A unix socket directory given percent-encoded as the host (postgres://u@%2Fpath/db).
    if config.get("HOST"):
        config["HOST"] = unquote(config["HOST"])
    return config


def parse_redis_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in REDIS_SCHEMES:
        raise _fail(name, f"expected redis://host:port/db or redis+socket:///path, got {value!r}.")
    if parts.scheme in {"redis", "rediss"} and not parts.hostname:
        raise _fail(name, f"names no host: {value!r}.")
    if parts.scheme in {"redis+socket", "unix"} and not parts.path:
        raise _fail(name, f"names no socket path: {value!r}.")
    return value


def parse_email_url(name: str, value: str) -> dict[str, Any]:
    try:
        config = environ.Env.email_url_config(value)
    except ImproperlyConfigured:
        schemes = ", ".join(sorted(environ.Env.EMAIL_SCHEMES))
        raise _fail(name, f"unknown scheme in {value!r}; use one of {schemes}.") from None
    if urlsplit(value).scheme == "filemail":
        # django-environ drops the leading slash of filemail:///absolute/path.
        config["EMAIL_FILE_PATH"] = urlsplit(value).path
    return config


def redis_url_for_cache(url: str) -> str:
    """Django's Redis cache speaks redis-py URLs; the broker speaks kombu URLs."""
    parts = urlsplit(url)
    if parts.scheme == "redis+socket":
        return f"unix://{parts.path}"
    return url


@dataclass(frozen=True)
class Config:
    debug: bool
    secret_key: str
    allowed_hosts: list[str]
    database: dict[str, Any] | None
    redis_url: str | None
    email: dict[str, Any]
    time_zone: str
    base_currency: str
    port: int
    default_from_email: str
    site_url: str
    csrf_trusted_origins: list[str] = field(default_factory=list)


def read_config(env: Mapping[str, str]) -> Config:
    """Validate the environment. ``database``/``redis_url`` are None when unset (embedded)."""
    debug = parse_bool("DEBUG", env.get("DEBUG", "false"))
    secret_key = env.get("SECRET_KEY", "")
    if not secret_key:
        if not debug:
            raise _fail("SECRET_KEY", "must be set when DEBUG is off (50+ random characters).")
        secret_key = DEV_SECRET_KEY
    elif not debug and (len(secret_key) < 50 or len(set(secret_key)) < 5):
        raise _fail("SECRET_KEY", "is too short or too simple: use 50+ random characters.")
    default_hosts = "localhost,127.0.0.1,[::1]" if debug else ""
    hosts_value = env.get("ALLOWED_HOSTS", default_hosts)
    if not hosts_value.strip():
        raise _fail("ALLOWED_HOSTS", "must be set when DEBUG is off (e.g. sales.example.com).")
    database_value = env.get("DATABASE_URL", "")
    redis_value = env.get("REDIS_URL", "")
    origins = env.get("CSRF_TRUSTED_ORIGINS", "")
    return Config(
        debug=debug,
        secret_key=secret_key,
        allowed_hosts=parse_hosts("ALLOWED_HOSTS", hosts_value),
        database=parse_database_url("DATABASE_URL", database_value) if database_value else None,
        redis_url=parse_redis_url("REDIS_URL", redis_value) if redis_value else None,
        email=parse_email_url("EMAIL_URL", env.get("EMAIL_URL", "consolemail://")),
        time_zone=parse_time_zone("TIME_ZONE", env.get("TIME_ZONE", "Europe/Stockholm")),
        base_currency=parse_currency("BASE_CURRENCY", env.get("BASE_CURRENCY", "EUR")),
        port=parse_port("PORT", env.get("PORT", "8000")),
        default_from_email=env.get("DEFAULT_FROM_EMAIL", "salesperf <noreply@localhost>"),
        site_url=parse_site_url("SITE_URL", env.get("SITE_URL", "http://127.0.0.1:8000")),
        csrf_trusted_origins=[o.strip() for o in origins.split(",") if o.strip()],
    )
