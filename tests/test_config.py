"""Configuration from the environment: good values work, bad ones name the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from salesperf.config import read_config, redis_url_for_cache

BASE_DIR = Path(settings.BASE_DIR)
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k3y-" + "abcdefghij0123456789ABCDEFGHIJ!@#$%^&*()-_=+xyz",
    "ALLOWED_HOSTS": "sales.example.com, www.example.com",
    "DATABASE_URL": "postgres://salesperf:s3cret@db.internal:5432/salesperf",
    "REDIS_URL": "redis://cache.internal:6379/2",
    "EMAIL_URL": "smtp+tls://mailer:pw@smtp.example.com:587",
    "TIME_ZONE": "America/Sao_Paulo",
    "BASE_CURRENCY": "BRL",
    "PORT": "9000",
}


def test_production_values_are_read() -> None:
    config = read_config(PRODUCTION)
    assert config.debug is False
    assert config.allowed_hosts == ["sales.example.com", "www.example.com"]
    assert config.database["HOST"] == "db.internal"
    assert config.database["NAME"] == "salesperf"
    assert config.redis_url == "redis://cache.internal:6379/2"
    assert config.email["EMAIL_HOST"] == "smtp.example.com"
    assert config.email["EMAIL_USE_TLS"] is True
    assert (config.time_zone, config.base_currency, config.port) == (
        "America/Sao_Paulo",
        "BRL",
        9000,
    )


def test_unset_database_and_redis_mean_embedded_and_debug_has_dev_defaults() -> None:
    config = read_config({"DEBUG": "true"})
    assert config.database is None and config.redis_url is None
    assert config.secret_key  # a dev key, only with DEBUG on
    assert "localhost" in config.allowed_hosts


def test_socket_urls() -> None:
    config = read_config({"DEBUG": "1", "DATABASE_URL": "postgres://postgres@%2Ftmp%2Fpg/sp"})
    assert config.database["HOST"] == "/tmp/pg"
    assert redis_url_for_cache("redis+socket:///x/redis.sock") == "unix:///x/redis.sock"
    assert redis_url_for_cache("redis://h:6379/0") == "redis://h:6379/0"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("DEBUG", "maybe", "expected true or false"),
        ("SECRET_KEY", "", "must be set when DEBUG is off"),
        ("SECRET_KEY", "short", "too short"),
        ("ALLOWED_HOSTS", " , ", "comma-separated list"),
        ("DATABASE_URL", "mysql://root@localhost/sales", "needs PostgreSQL"),
        ("DATABASE_URL", "postgres://user@host:5432/", "names no database"),
        ("REDIS_URL", "http://localhost:6379", "expected redis://"),
        ("REDIS_URL", "redis://", "names no host"),
        ("EMAIL_URL", "pigeon://coop", "unknown scheme"),
        ("TIME_ZONE", "Europe/Atlantis", "not a known time zone"),
        ("BASE_CURRENCY", "euro", "three-letter ISO 4217"),
        ("PORT", "eighty", "port number"),
        ("PORT", "70000", "port number"),
        ("SITE_URL", "sales.example.com", "public address"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(ImproperlyConfigured) as error:
        read_config({**PRODUCTION, variable: value})
    assert f"Environment variable {variable}:" in str(error.value)
    assert says in str(error.value)


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if key not in PRODUCTION}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**clean, **env, "SALESPERF_SKIP_DOTENV": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_start_fails_with_a_message_naming_the_variable() -> None:
    result = _manage("check", env={**PRODUCTION, "TIME_ZONE": "Mars/Olympus"})
    assert result.returncode != 0
    assert (
        "Environment variable TIME_ZONE: 'Mars/Olympus' is not a known time zone" in result.stderr
    )


def test_check_deploy_is_clean_with_production_values() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
